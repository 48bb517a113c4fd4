"""Frames of another size than the calibration's image: map detections and cameras between the two.

A camera's ``[[cameras]] image_map`` (:class:`core.config.ImageMap`) states how its frames were made
from the calibrated images: scaled by ``scale_x``, ``scale_y``, then shifted by ``pad_x``, ``pad_y``
(padding when positive, cropping when negative)::

    frame pixel = calibration pixel * scale + pad        calibration pixel = (frame pixel - pad) / scale

Workers map their detections to calibration pixels (:func:`map_detections`), so everything on the
wire and in the node is in calibration pixels; overlays draw on the frames with
:func:`camera_in_frame`. The mapping is never guessed: :func:`check_image_map` refuses frames that
differ from the calibration without one, and a mapping that does not fit the frame.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from calibration.camera import Camera
from core.config import ImageMap
from core.errors import InputError
from core.types import Detections2D

__all__ = [
    "MIN_OVERLAP_IOU",
    "camera_in_frame",
    "check_image_map",
    "map_detections",
    "rotate_frame",
    "rotate_px",
    "rotated_size",
    "to_calibration_px",
    "unrotate_detections",
    "unrotate_px",
]

MIN_OVERLAP_IOU = 0.8
"""A mapped frame must cover the calibrated image with at least this intersection over union."""


def to_calibration_px(uv: np.ndarray, image_map: ImageMap) -> np.ndarray:
    """Frame pixels to calibration pixels.

    Args:
        uv: (..., 2) pixel coordinates (u, v) in the frame, pixels.
        image_map: the camera's mapping.

    Returns:
        (..., 2) float64 coordinates in the calibration's image, pixels.

    Example:
        >>> to_calibration_px(np.array([[25.0, 256.0]]), ImageMap(0.5, 0.5, 25.0, 0.0)).tolist()
        [[0.0, 512.0]]
    """
    uv = np.asarray(uv, dtype=np.float64)
    scale = np.array([image_map.scale_x, image_map.scale_y])
    pad = np.array([image_map.pad_x, image_map.pad_y])
    return (uv - pad) / scale


def rotated_size(frame_wh: tuple[int, int], rotate: int) -> tuple[int, int]:
    """(width, height) of a ``frame_wh`` frame turned ``rotate`` degrees clockwise (0, 90, 180, 270)."""
    return (frame_wh[1], frame_wh[0]) if rotate in (90, 270) else (frame_wh[0], frame_wh[1])


def rotate_frame(image: np.ndarray, rotate: int) -> np.ndarray:
    """The frame turned ``rotate`` degrees clockwise (``[[cameras]] rotate``), for the detector.

    Args:
        image: (H, W, ...) frame.
        rotate: 0, 90, 180 or 270 degrees clockwise; 0 returns ``image`` itself.

    Returns:
        (W, H, ...) for 90 and 270, (H, W, ...) otherwise; lossless (``cv2.rotate``).
    """
    if rotate == 0:
        return image
    import cv2

    codes = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}
    return cv2.rotate(image, codes[rotate])


def rotate_px(uv: np.ndarray, rotate: int, frame_wh: tuple[int, int]) -> np.ndarray:
    """Pixels of the frame as recorded to the pixels of the frame turned ``rotate`` degrees clockwise.

    The inverse of :func:`unrotate_px`: 90 degrees sends (u, v) to (H - 1 - v, u),
    180 to (W - 1 - u, H - 1 - v), 270 to (v, W - 1 - u) (OpenCV's ``cv2.rotate``, integer pixel centres).

    Args:
        uv: (..., 2) pixel coordinates in the recorded frame, pixels.
        rotate: 0, 90, 180 or 270 degrees clockwise.
        frame_wh: (width, height) of the recorded frame, pixels.

    Returns:
        (..., 2) float64 coordinates in the turned frame, pixels.

    Example:
        >>> rotate_px(np.array([[0.0, 0.0]]), 90, (4, 3)).tolist()
        [[2.0, 0.0]]
    """
    uv = np.asarray(uv, dtype=np.float64)
    u, v = uv[..., 0], uv[..., 1]
    w, h = frame_wh
    if rotate == 90:
        out = (h - 1 - v, u)
    elif rotate == 180:
        out = (w - 1 - u, h - 1 - v)
    elif rotate == 270:
        out = (v, w - 1 - u)
    else:
        return uv.copy()
    return np.stack(out, axis=-1)


def unrotate_px(uv: np.ndarray, rotate: int, frame_wh: tuple[int, int]) -> np.ndarray:
    """Pixels of the turned frame (:func:`rotate_frame`) back to the pixels of the frame as recorded.

    Turning back is turning on by the rest of a full turn: the turned frame's (u', v') comes from
    (v', H - 1 - u') after 90 degrees clockwise, (W - 1 - u', H - 1 - v') after 180 and
    (W - 1 - v', u') after 270 (:func:`rotate_px` of the turned frame by ``360 - rotate``).

    Args:
        uv: (..., 2) pixel coordinates in the turned frame, pixels.
        rotate: the turn, degrees clockwise (0, 90, 180, 270).
        frame_wh: (width, height) of the frame as recorded (before the turn), pixels.

    Returns:
        (..., 2) float64 pixel coordinates in the recorded frame.
    """
    return rotate_px(uv, (360 - rotate) % 360, rotated_size(frame_wh, rotate))


def unrotate_detections(dets: Detections2D, rotate: int, frame_wh: tuple[int, int]) -> Detections2D:
    """Detections made on the turned frame, in the pixels of the frame as recorded.

    Args:
        dets: detections on the frame turned ``rotate`` degrees clockwise (poses (P, J, 3), boxes (P, 5)).
        rotate: the turn, degrees clockwise; 0 returns ``dets`` unchanged.
        frame_wh: (width, height) of the recorded frame, pixels.

    Returns:
        The same detections in recorded-frame pixels; boxes stay (x0, y0, x1, y1, score) with x0 <= x1, y0 <= y1.
    """
    if rotate == 0:
        return dets
    poses = np.array(dets.poses, dtype=np.float32, copy=True)
    boxes = np.array(dets.boxes, dtype=np.float32, copy=True)
    poses[..., :2] = unrotate_px(poses[..., :2], rotate, frame_wh)
    if boxes.size:
        a = unrotate_px(boxes[:, 0:2], rotate, frame_wh)
        b = unrotate_px(boxes[:, 2:4], rotate, frame_wh)
        boxes[:, 0:2], boxes[:, 2:4] = np.minimum(a, b), np.maximum(a, b)
    return dataclasses.replace(dets, poses=poses, boxes=boxes)


def map_detections(dets: Detections2D, image_map: ImageMap | None) -> Detections2D:
    """A view's detections with keypoints and boxes in calibration pixels (confidences unchanged).

    Args:
        dets: detections in frame pixels (poses (P, J, 3) [u, v, conf], boxes (P, 5)).
        image_map: the camera's mapping; None returns ``dets`` unchanged.

    Returns:
        The same detections in calibration pixels; a box keeps its score.
    """
    if image_map is None:
        return dets
    poses = np.array(dets.poses, dtype=np.float32, copy=True)
    boxes = np.array(dets.boxes, dtype=np.float32, copy=True)
    poses[..., :2] = to_calibration_px(poses[..., :2], image_map)
    if boxes.size:
        boxes[:, 0:2] = to_calibration_px(boxes[:, 0:2], image_map)
        boxes[:, 2:4] = to_calibration_px(boxes[:, 2:4], image_map)
    return dataclasses.replace(dets, poses=poses, boxes=boxes)


def _iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def check_image_map(
    frame_wh: tuple[int, int],
    calib_wh: tuple[int, int],
    image_map: ImageMap | None,
    source: str = "frames",
    camera: str = "",
    calibration: str = "",
) -> None:
    """Refuse frames whose size differs from the calibration's without a mapping, or a mapping that does not fit.

    The frame, mapped into calibration pixels, must cover the calibrated image with an
    intersection over union of at least :data:`MIN_OVERLAP_IOU`: padding or cropping by a few
    percent passes; a wrong scale (e.g. 0.5 for a quarter-size frame) or a pad of the wrong sign or
    size does not.

    Args:
        frame_wh: (width, height) of the frames, pixels.
        calib_wh: (width, height) of the calibration's image, pixels.
        image_map: the camera's mapping, or None.
        source: the frames' source, first in the message.
        camera: the camera's name, for the message.
        calibration: the calibration file, for the message.

    Raises:
        InputError: no mapping for frames of another size, or a mapping that does not fit them.
    """
    (w, h), (cw, ch) = frame_wh, calib_wh
    calib = f"calibration {calibration} gives camera {camera} {cw}x{ch}"
    if image_map is None:
        if (w, h) != (cw, ch):
            raise InputError(
                f"{source}: frames are {w}x{h} but {calib}; use the matching frames, fix the calibration (or "
                "image_size), or give [[cameras]] image_map = {scale = ..., pad_x = ..., pad_y = ...} "
                "(calibration pixel = (frame pixel - pad) / scale)"
            )
        return
    (x0, y0), (x1, y1) = to_calibration_px(np.array([[0.0, 0.0], [w, h]]), image_map)
    iou = _iou((x0, y0, x1, y1), (0.0, 0.0, float(cw), float(ch)))
    if iou < MIN_OVERLAP_IOU:
        m = image_map
        raise InputError(
            f"{source}: image_map (scale {m.scale_x:g} x {m.scale_y:g}, pad {m.pad_x:g}, {m.pad_y:g}) maps the "
            f"{w}x{h} frames onto [{x0:.0f}, {x1:.0f}] x [{y0:.0f}, {y1:.0f}] but {calib} (overlap {iou:.2f} < "
            f"{MIN_OVERLAP_IOU}); check the mapping"
        )


def camera_in_frame(camera: Camera, image_map: ImageMap | None, frame_wh: tuple[int, int]) -> Camera:
    """The camera as seen in its mapped frames: projects world points to frame pixels.

    Lens distortion acts on normalised coordinates before the intrinsics, so the mapping is
    exact on K alone: ``K' = [[sx, 0, px], [0, sy, py], [0, 0, 1]] K`` (Hartley & Zisserman 2004,
    sec. 6.2: an affine change of image coordinates left-multiplies K).

    Args:
        camera: calibrated camera (calibration pixels).
        image_map: its mapping; None returns ``camera``.
        frame_wh: (width, height) of the frames, pixels (the returned camera's size).

    Returns:
        A camera with the same pose and distortion whose projections are frame pixels.
    """
    if image_map is None:
        return camera
    A = np.array([[image_map.scale_x, 0.0, image_map.pad_x], [0.0, image_map.scale_y, image_map.pad_y], [0, 0, 1]])
    return Camera(camera.name, A @ camera.K, camera.dist, camera.R, camera.t, (int(frame_wh[0]), int(frame_wh[1])))
