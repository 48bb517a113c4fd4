"""Top-down crop geometry and SimCC decoding, as in MMPose's RTMPose pipeline (numpy/OpenCV only).

SimCC (Li et al. 2022, "SimCC: a Simple Coordinate Classification Perspective for Human Pose
Estimation") classifies each keypoint's x and y separately over ``split_ratio`` bins per input
pixel; RTMPose (Jiang et al. 2023) decodes the argmax of each 1D vector and divides by the ratio.
The crop follows MMPose's ``GetBBoxCenterScale`` (padding 1.25) and ``TopdownAffine`` (box grown to
the model's aspect ratio, no rotation), as rtmlib re-implements them.
"""

from __future__ import annotations

import cv2
import numpy as np

from core.errors import ShapeError

__all__ = ["box_center_scale", "crop_affine", "crop_to_image", "decode_simcc", "warp_crops"]


def box_center_scale(
    boxes: np.ndarray, input_wh: tuple[int, int], padding: float = 1.25
) -> tuple[np.ndarray, np.ndarray]:
    """Centre and size of the crop of each box: padded, then grown to the model's aspect ratio.

    Args:
        boxes: (P, 4+) [x1, y1, x2, y2, ...] image pixels (extra columns ignored).
        input_wh: model input (width, height), pixels.
        padding: factor on the box width and height (MMPose's ``GetBBoxCenterScale``: 1.25).

    Returns:
        center: (P, 2) crop centres (x, y), image pixels.
        scale: (P, 2) crop sizes (width, height), image pixels, with width / height equal to the
            model's aspect (the shorter side grown, never shrunk).

    Raises:
        ShapeError: ``boxes`` is not (P, >=4).

    Example:
        >>> c, s = box_center_scale(np.array([[0.0, 0.0, 100.0, 100.0]]), (192, 256))
        >>> c.tolist(), s.tolist()
        ([[50.0, 50.0]], [[125.0, 166.66666666666666]])
    """
    boxes = np.asarray(boxes, dtype=np.float64)
    if boxes.ndim != 2 or boxes.shape[1] < 4:
        raise ShapeError(f"boxes must be (P, >=4); got {boxes.shape}")
    center = (boxes[:, 0:2] + boxes[:, 2:4]) / 2
    size = (boxes[:, 2:4] - boxes[:, 0:2]) * padding
    aspect = input_wh[0] / input_wh[1]
    w, h = size[:, 0], size[:, 1]
    wide = w > h * aspect
    scale = np.where(wide[:, None], np.column_stack([w, w / aspect]), np.column_stack([h * aspect, h]))
    return center, scale


def crop_affine(center: np.ndarray, scale: np.ndarray, input_wh: tuple[int, int]) -> np.ndarray:
    """Affine maps from image pixels to crop (model input) pixels.

    Convention: the crop centre maps to (w_in / 2, h_in / 2) and ``scale`` to the full input, so
    ``u_in = (u - cx) * w_in / sw + w_in / 2`` (the same for v with h_in / sh); this is MMPose's
    ``get_warp_matrix`` at rotation 0. Half-pixel offsets are not modelled (as in MMPose).

    Args:
        center: (P, 2) crop centres, image pixels.
        scale: (P, 2) crop sizes (width, height), image pixels.
        input_wh: model input (width, height), pixels.

    Returns:
        (P, 2, 3) matrices for ``cv2.warpAffine``.
    """
    center = np.asarray(center, dtype=np.float64)
    scale = np.asarray(scale, dtype=np.float64)
    w_in, h_in = input_wh
    sx, sy = w_in / scale[:, 0], h_in / scale[:, 1]
    mats = np.zeros((center.shape[0], 2, 3))
    mats[:, 0, 0] = sx
    mats[:, 1, 1] = sy
    mats[:, 0, 2] = w_in / 2 - center[:, 0] * sx
    mats[:, 1, 2] = h_in / 2 - center[:, 1] * sy
    return mats


def crop_to_image(
    points_in: np.ndarray, center: np.ndarray, scale: np.ndarray, input_wh: tuple[int, int]
) -> np.ndarray:
    """Map crop (model input) pixels back to image pixels: the inverse of :func:`crop_affine`.

    Args:
        points_in: (P, K, 2) points in each crop's input pixels.
        center: (P, 2) crop centres, image pixels.
        scale: (P, 2) crop sizes (width, height), image pixels.
        input_wh: model input (width, height), pixels.

    Returns:
        (P, K, 2) image pixels.
    """
    size = np.asarray(input_wh, dtype=np.float64)
    return points_in / size * scale[:, None, :] + center[:, None, :] - scale[:, None, :] / 2


def warp_crops(image: np.ndarray, mats: np.ndarray, input_wh: tuple[int, int]) -> np.ndarray:
    """Cut each crop from ``image`` with bilinear ``cv2.warpAffine`` (outside: black, as MMPose).

    Args:
        image: (H, W, 3) uint8 image.
        mats: (P, 2, 3) from :func:`crop_affine`.
        input_wh: model input (width, height), pixels.

    Returns:
        (P, h_in, w_in, 3) uint8 crops.
    """
    w_in, h_in = input_wh
    out = np.zeros((mats.shape[0], h_in, w_in, 3), np.uint8)
    for i, m in enumerate(mats):
        out[i] = cv2.warpAffine(image, m, (w_in, h_in), flags=cv2.INTER_LINEAR)
    return out


def decode_simcc(simcc_x: np.ndarray, simcc_y: np.ndarray, split_ratio: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """Argmax decoding of SimCC vectors to input pixels (MMPose ``get_simcc_maximum``).

    Args:
        simcc_x: (P, K, W * split_ratio) x-axis classification scores.
        simcc_y: (P, K, H * split_ratio) y-axis classification scores.
        split_ratio: bins per input pixel (RTMPose: 2.0).

    Returns:
        locs: (P, K, 2) float64 (x, y) in model input pixels (bin index / split_ratio); 0 where the
            score is <= 0.
        scores: (P, K) float64, min of the two maxima (MMPose), clipped to [0, 1] here: the
            :class:`capture.detect.detector.Detector` contract; 0 means missing.

    Raises:
        ShapeError: mismatched or non-3D inputs.

    Example:
        >>> x = np.zeros((1, 1, 8)); x[0, 0, 5] = 0.9
        >>> y = np.zeros((1, 1, 6)); y[0, 0, 2] = 0.7
        >>> locs, scores = decode_simcc(x, y, 2.0)
        >>> locs.tolist(), scores.tolist()
        ([[[2.5, 1.0]]], [[0.7]])
    """
    if simcc_x.ndim != 3 or simcc_y.ndim != 3 or simcc_x.shape[:2] != simcc_y.shape[:2]:
        raise ShapeError(f"simcc_x, simcc_y must be (P, K, Wx), (P, K, Wy); got {simcc_x.shape}, {simcc_y.shape}")
    ix, iy = simcc_x.argmax(axis=2), simcc_y.argmax(axis=2)
    vx = np.take_along_axis(simcc_x, ix[..., None], axis=2)[..., 0].astype(np.float64)
    vy = np.take_along_axis(simcc_y, iy[..., None], axis=2)[..., 0].astype(np.float64)
    scores = np.minimum(vx, vy)
    locs = np.stack([ix, iy], axis=-1).astype(np.float64) / split_ratio
    missing = scores <= 0
    locs[missing] = 0.0
    return locs, np.clip(scores, 0.0, 1.0)
