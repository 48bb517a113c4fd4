"""Crop-only detection: run the 2D detector on regions of interest of a frame instead of the whole frame.

The node predicts where each live track will be in a camera's next frames and sends the boxes to
its worker (3D-guided regions of interest, as in Bultmann & Behnke, "Real-Time Multi-View 3D Human
Pose Estimation using Semantic Feedback to Smart Edge Sensors", RSS 2021). The worker then detects
on crops around those boxes (:class:`CropDetector`):

1. the boxes, in calibration pixels, are mapped to the pixels of the frame the detector sees
   (:func:`boxes_to_detector_px`: inverse of ``[[cameras]] image_map``, then the camera's turn);
2. each box is widened to the crop input's aspect ratio around its centre (:func:`fit_aspect`), so
   the crop is filled with image rather than grey padding;
3. boxes that overlap so much that one crop costs less resolution than two crops cost time are
   merged (:func:`merge_boxes`);
4. each crop is cut from the full-resolution frame and given to the detector (one model call per
   crop: the YOLO11n-pose exports are static, batch 1, one input shape per file), whose letterbox
   scales it to the crop input (e.g. 256 x 160); keypoints and boxes come back in crop pixels and
   are shifted by the crop's origin (:func:`crop_to_frame`);
5. a person seen in two crops is kept once (:func:`dedupe`): detections are ranked by whether the
   hint box they overlap most belongs to their own crop, then by score, and a detection whose box
   overlaps one kept from another crop (IoU, or most of the smaller box inside the larger) is dropped.

Convention: boxes are (x0, y0, x1, y1) pixels with x0 < x1, y0 < y1; pixel (0, 0) is the centre of
the top-left pixel; a crop box has integer corners and covers pixels x0 .. x1 - 1, y0 .. y1 - 1.
"""

from __future__ import annotations

import logging
from typing import Final

import numpy as np

from core.config import ImageMap

__all__ = [
    "DEDUP_IOU",
    "DEDUP_IOMIN",
    "EDGE_PX",
    "MERGE_AREA_RATIO",
    "CropDetector",
    "boxes_to_detector_px",
    "crop_to_frame",
    "dedupe",
    "fit_aspect",
    "merge_boxes",
    "rotate_px",
]

log = logging.getLogger(__name__)

MERGE_AREA_RATIO: Final = 1.5
"""Two crop boxes are merged when their union's area is at most this times the larger one's: the
merged crop then loses at most ``1 - 1 / sqrt(1.5)`` = 18 % of the resolution, and saves a model call."""
DEDUP_IOU: Final = 0.5
"""Detections from different crops whose boxes overlap more (intersection over union) are one person."""
EDGE_PX: Final = 2.0
"""A detection box this close to an inner edge of its crop (pixels) is cut by the crop."""
DEDUP_IOMIN: Final = 0.7
"""... or whose intersection covers more of the smaller box than this (a person cut by a crop's edge)."""


def rotate_px(uv: np.ndarray, rotate: int, frame_wh: tuple[int, int]) -> np.ndarray:
    """Pixels of the frame as recorded to the pixels of the frame turned ``rotate`` degrees clockwise.

    The inverse of :func:`capture.image_map.unrotate_px`: 90 degrees sends (u, v) to (H - 1 - v, u),
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


def boxes_to_detector_px(
    boxes: np.ndarray, image_map: ImageMap | None = None, rotate: int = 0, frame_wh: tuple[int, int] | None = None
) -> np.ndarray:
    """Boxes in calibration pixels to the pixels of the frame the detector sees.

    ``frame pixel = calibration pixel * scale + pad`` (:mod:`capture.image_map`), then the
    camera's turn (:func:`rotate_px`); the corners are re-ordered so that x0 < x1, y0 < y1.

    Args:
        boxes: (K, 4) x0, y0, x1, y1 in calibration pixels.
        image_map: the camera's mapping; None: frames have the calibration's size.
        rotate: degrees the worker turns each frame clockwise before detection.
        frame_wh: (width, height) of the recorded frame (before the turn), pixels; needed with ``rotate``.

    Returns:
        (K, 4) float64 x0, y0, x1, y1 in the detector's frame pixels.

    Example:
        >>> boxes_to_detector_px(np.array([[0.0, 512.0, 100.0, 612.0]]), ImageMap(0.5, 0.5, 25.0, 0.0)).tolist()
        [[25.0, 256.0, 75.0, 306.0]]
    """
    xy = np.asarray(boxes, dtype=np.float64).reshape(-1, 2, 2)
    if image_map is not None:
        xy = xy * np.array([image_map.scale_x, image_map.scale_y]) + np.array([image_map.pad_x, image_map.pad_y])
    if rotate:
        xy = rotate_px(xy, rotate, frame_wh)
    return np.concatenate([xy.min(axis=1), xy.max(axis=1)], axis=1)


def fit_aspect(boxes: np.ndarray, aspect_wh: float, frame_wh: tuple[int, int]) -> np.ndarray:
    """Widen boxes to a width / height ratio around their centres, then into the frame as integer crops.

    A box is only ever grown, on the side that is short for ``aspect_wh``; one that then leaves the
    frame is shifted back inside (so the crop keeps its shape), and one larger than the frame is cut
    at its edges (the detector's letterbox pads the difference).

    Args:
        boxes: (K, 4) x0, y0, x1, y1, frame pixels.
        aspect_wh: the crop input's width / height.
        frame_wh: (width, height) of the frame, pixels.

    Returns:
        (K, 4) int64 crop boxes inside [0, W] x [0, H] with x1 > x0, y1 > y0 (empty boxes grow to 1 px).

    Example:
        >>> fit_aspect(np.array([[100.0, 100.0, 200.0, 400.0]]), 0.5, (1000, 1000)).tolist()
        [[75, 100, 225, 400]]
    """
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    w, h = (int(v) for v in frame_wh)
    cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
    bw, bh = np.maximum(b[:, 2] - b[:, 0], 1.0), np.maximum(b[:, 3] - b[:, 1], 1.0)
    bw, bh = np.maximum(bw, bh * aspect_wh), np.maximum(bh, bw / aspect_wh)
    bw, bh = np.minimum(bw, w), np.minimum(bh, h)
    x0 = np.clip(cx - bw / 2, 0, w - bw)
    y0 = np.clip(cy - bh / 2, 0, h - bh)
    out = np.stack([np.floor(x0), np.floor(y0), np.ceil(x0 + bw), np.ceil(y0 + bh)], axis=1)
    out[:, 0::2] = np.clip(out[:, 0::2], 0, w)
    out[:, 1::2] = np.clip(out[:, 1::2], 0, h)
    return out.astype(np.int64)


def _area(b: np.ndarray) -> np.ndarray:
    return np.maximum(b[..., 2] - b[..., 0], 0) * np.maximum(b[..., 3] - b[..., 1], 0)


def merge_boxes(
    boxes: np.ndarray, aspect_wh: float, frame_wh: tuple[int, int], max_area_ratio: float = MERGE_AREA_RATIO
) -> tuple[np.ndarray, np.ndarray]:
    """Crop boxes for a set of hint boxes: each widened to the crop's aspect, overlapping ones merged.

    Greedy: while some pair's widened union covers at most ``max_area_ratio`` times the larger
    of the two, the pair with the smallest ratio becomes one crop (its union, widened again).

    Args:
        boxes: (K, 4) x0, y0, x1, y1 hint boxes, frame pixels.
        aspect_wh: the crop input's width / height.
        frame_wh: (width, height) of the frame, pixels.
        max_area_ratio: merge when ``area(union) <= max_area_ratio * max(area(a), area(b))``.

    Returns:
        crops: (M, 4) int64 crop boxes (:func:`fit_aspect`), M <= K.
        owner: (K,) int64 index of the crop each hint box went into.

    Example:
        >>> crops, owner = merge_boxes(np.array([[0, 0, 100, 200], [10, 0, 110, 200], [500, 0, 600, 200]]), 0.5,
        ...                            (1000, 1000))
        >>> crops.tolist(), owner.tolist()
        ([[0, 0, 110, 220], [500, 0, 600, 200]], [0, 0, 1])
    """
    raw = [np.asarray(b, dtype=np.float64) for b in np.asarray(boxes, dtype=np.float64).reshape(-1, 4)]
    members = [[k] for k in range(len(raw))]
    crops = [fit_aspect(b, aspect_wh, frame_wh)[0] for b in raw]
    while len(crops) > 1:
        best, pair = max_area_ratio, None
        for i in range(len(crops)):
            for j in range(i + 1, len(crops)):
                u = np.concatenate([np.minimum(raw[i][:2], raw[j][:2]), np.maximum(raw[i][2:], raw[j][2:])])
                ratio = _area(fit_aspect(u, aspect_wh, frame_wh)[0]) / max(_area(crops[i]), _area(crops[j]), 1)
                if ratio <= best:
                    best, pair = ratio, (i, j, u)
        if pair is None:
            break
        i, j, u = pair
        raw[i], crops[i], members[i] = u, fit_aspect(u, aspect_wh, frame_wh)[0], members[i] + members[j]
        del raw[j], crops[j], members[j]
    owner = np.zeros(len(boxes), np.int64)
    for c, ks in enumerate(members):
        owner[ks] = c
    return np.array(crops, np.int64).reshape(-1, 4), owner


def crop_to_frame(poses: np.ndarray, boxes: np.ndarray, crop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Detections made on a crop, in the frame's pixels: shifted by the crop's origin.

    Args:
        poses: (P, J, 3) float32 [u_px, v_px, conf] in crop pixels.
        boxes: (P, 5) float32 [x1, y1, x2, y2, score] in crop pixels.
        crop: (4,) integer crop box x0, y0, x1, y1 in frame pixels.

    Returns:
        The same poses (P, J, 3) and boxes (P, 5), float32, frame pixels (confidences and scores unchanged).
    """
    off = np.array([crop[0], crop[1]], np.float32)
    poses = np.array(poses, np.float32, copy=True)
    boxes = np.array(boxes, np.float32, copy=True)
    poses[..., :2] += off
    boxes[:, 0:2] += off
    boxes[:, 2:4] += off
    return poses, boxes


def _overlaps(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """IoU and intersection over the smaller area of box ``a`` (4,) against boxes ``b`` (N, 4)."""
    iw = np.clip(np.minimum(a[2], b[:, 2]) - np.maximum(a[0], b[:, 0]), 0, None)
    ih = np.clip(np.minimum(a[3], b[:, 3]) - np.maximum(a[1], b[:, 1]), 0, None)
    inter = iw * ih
    aa, ab = _area(a), _area(b)
    iou = inter / np.maximum(aa + ab - inter, 1e-9)
    iomin = inter / np.maximum(np.minimum(aa, ab), 1e-9)
    return iou, iomin


def dedupe(
    boxes: np.ndarray,
    crop_of: np.ndarray,
    hints: np.ndarray,
    owner: np.ndarray,
    crops: np.ndarray | None = None,
    frame_wh: tuple[int, int] | None = None,
) -> np.ndarray:
    """Which detections from several crops to keep, one per person.

    A detection is *cut* when its box reaches an edge of its crop that is not an edge of the frame
    (within :data:`EDGE_PX`): the person goes on outside the crop. It is *owned* when the hint box
    it overlaps most (IoU) went into its own crop, or it overlaps no hint box at all (someone new).
    Whole detections come first, then owned ones, then by score; a
    detection is dropped when its box overlaps one kept from another crop by more than
    :data:`DEDUP_IOU` (IoU) or :data:`DEDUP_IOMIN` (intersection over the smaller box: a person cut
    by a crop's edge). Two detections of one crop are both kept: the model's own NMS separated them
    (one person in front of another).

    Args:
        boxes: (P, 5) [x1, y1, x2, y2, score] detections of all crops, frame pixels.
        crop_of: (P,) int index of the crop each detection came from.
        hints: (K, 4) hint boxes, frame pixels.
        owner: (K,) int crop index of each hint box (:func:`merge_boxes`).
        crops: (M, 4) crop boxes, frame pixels; None: no detection is cut.
        frame_wh: (width, height) of the frame, pixels (with ``crops``).

    Returns:
        (P',) int64 indices of the kept detections, by descending priority.

    Example:
        >>> b = np.array([[0, 0, 10, 20, 0.9], [0, 0, 10, 12, 0.95], [50, 0, 60, 20, 0.8]])
        >>> dedupe(b, np.array([0, 1, 1]), np.array([[0, 0, 10, 20], [50, 0, 60, 20]]), np.array([0, 1])).tolist()
        [0, 2]
    """
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 5)
    if len(b) == 0:
        return np.zeros(0, np.int64)
    owned = np.ones(len(b), bool)
    hints = np.asarray(hints, dtype=np.float64).reshape(-1, 4)
    if len(hints):
        for p in range(len(b)):
            iou, _ = _overlaps(b[p, :4], hints)
            if iou.max() > 0:
                owned[p] = owner[int(np.argmax(iou))] == crop_of[p]
    crop_of = np.asarray(crop_of, dtype=np.int64)
    cut = np.zeros(len(b), bool)
    if crops is not None and len(crops):
        c = np.asarray(crops, dtype=np.float64)[crop_of]
        w, h = frame_wh
        inner = np.stack([c[:, 0] > 0, c[:, 1] > 0, c[:, 2] < w, c[:, 3] < h], axis=1)
        near = np.abs(b[:, :4] - c) <= EDGE_PX
        cut = (inner & near).any(axis=1)
    order = np.lexsort((-b[:, 4], ~owned, cut))
    keep: list[int] = []
    for p in order:
        others = [k for k in keep if crop_of[k] != crop_of[p]]  # within a crop, the model's NMS decided
        if others:
            iou, iomin = _overlaps(b[p, :4], b[others, :4])
            if (iou > DEDUP_IOU).any() or (iomin > DEDUP_IOMIN).any():
                continue
        keep.append(int(p))
    return np.array(keep, np.int64)


class CropDetector:
    """Detect people on crops of a frame around hint boxes (see the module docstring).

    Args:
        detector: a :class:`capture.detectors.Detector` whose network input is the crop input
            (e.g. YOLO11n-pose exported at 256 x 160): ``detect(image_bgr)`` letterboxes any crop to it.
        crop_hw: the crop input (height, width), pixels: sets the crops' aspect ratio.

    Attributes:
        last_crops: (M, 4) int64 crop boxes of the last call, frame pixels.
    """

    def __init__(self, detector: object, crop_hw: tuple[int, int]) -> None:
        self.detector = detector
        self.crop_hw = (int(crop_hw[0]), int(crop_hw[1]))
        self.last_crops = np.zeros((0, 4), np.int64)

    def plan(self, hints: np.ndarray, frame_wh: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """The crops for hint boxes (K, 4), frame pixels: ``(crops (M, 4) int64, owner (K,))`` (:func:`merge_boxes`)."""
        return merge_boxes(hints, self.crop_hw[1] / self.crop_hw[0], frame_wh)

    def detect(
        self, image_bgr: np.ndarray, hints: np.ndarray, plan: tuple[np.ndarray, np.ndarray] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Detect people on the crops around ``hints``.

        Args:
            image_bgr: (H, W, 3) uint8 BGR frame.
            hints: (K, 4) x0, y0, x1, y1 hint boxes in the frame's pixels.
            plan: :meth:`plan`'s result for these hints, if already made.

        Returns:
            poses: (P, J, 3) float32 [u_px, v_px, conf], frame pixels.
            boxes: (P, 5) float32 [x1, y1, x2, y2, score], frame pixels, kept by :func:`dedupe`.

        Raises:
            ShapeError: the frame is not (H, W, 3) uint8 (from the detector).
        """
        h, w = image_bgr.shape[:2]
        crops, owner = plan if plan is not None else self.plan(hints, (w, h))
        self.last_crops = crops
        all_poses, all_boxes, crop_of = [], [], []
        for c, (x0, y0, x1, y1) in enumerate(crops):
            poses, boxes = self.detector.detect(np.ascontiguousarray(image_bgr[y0:y1, x0:x1]))
            poses, boxes = crop_to_frame(poses, boxes, crops[c])
            all_poses.append(poses)
            all_boxes.append(boxes)
            crop_of += [c] * len(boxes)
        if not all_boxes:
            n_j = self.detector.skeleton.n_joints if hasattr(self.detector, "skeleton") else 17
            return np.zeros((0, n_j, 3), np.float32), np.zeros((0, 5), np.float32)
        poses, boxes = np.concatenate(all_poses), np.concatenate(all_boxes)
        keep = dedupe(boxes, np.array(crop_of, np.int64), hints, owner, crops, (w, h))
        return poses[keep], boxes[keep]
