"""Crop geometry: crop boxes of an aspect, network input shapes for crops, and how crops are planned.

The YOLO11n-pose exports are static (one input shape per ONNX file, exported once and cached), so a
crop's network input is picked from a few shapes (:func:`shape_ladder`) rather than made to measure.
:func:`pick_shape` gives a crop the smallest shape that samples it at least as finely as a given
scale; :func:`plan_crops` merges crops when one model call costs less than several;
:func:`grid_windows` places crops as stride-aligned windows of the full pass's network input
(:mod:`capture.detect.crops` explains why and uses them).
"""

from __future__ import annotations

from typing import Final

import numpy as np

__all__ = [
    "CALL_PX",
    "fit_aspect",
    "grid_windows",
    "letterbox_geometry",
    "pick_shape",
    "plan_crops",
    "shape_ladder",
]

CALL_PX: Final = 8_000
"""Fixed cost of one model call, in network input pixels. YOLO11n-pose with one onnxruntime thread,
measured on this project's 2-core CPU (CPU time, medians of 8 demo frames): 13.5 ms at 256 x 160,
19.8 at 320 x 192, 36.9 at 448 x 288, 70.2 at 640 x 384, i.e. about 2.2 ms + 0.277 us per input
pixel; 2.2 ms is the time of ~8,000 pixels."""


def shape_ladder(smallest_hw: tuple[int, int], largest_hw: tuple[int, int], stride: int = 32) -> list[tuple[int, int]]:
    """Network input shapes for crops, from the crop input up to the full frame's input's cost.

    Heights grow by two strides (64 px) from ``smallest_hw``; each width keeps the smallest's aspect
    ratio, rounded to a multiple of ``stride``; the ladder ends with the first shape whose area reaches
    the full input's, and the full input's own shape is added when no rung covers both its sides.

    Args:
        smallest_hw: the crop input (height, width), pixels (``[detector] roi_input_h, roi_input_w``).
        largest_hw: the full frame's network input (height, width), pixels.
        stride: the model's stride, pixels; every shape is a multiple of it.

    Returns:
        (height, width) shapes by increasing area, pixels; the first is ``smallest_hw``.

    Example:
        >>> shape_ladder((256, 160), (640, 384))
        [(256, 160), (320, 192), (384, 256), (448, 288), (512, 320), (576, 352), (640, 384)]
    """
    h0, w0 = (int(v) for v in smallest_hw)
    big_h, big_w = (int(v) for v in largest_hw)
    shapes = [(h0, w0)]
    h = h0
    while shapes[-1][0] * shapes[-1][1] < big_h * big_w:
        h += 2 * stride
        shapes.append((h, max(stride, round(h * w0 / h0 / stride) * stride)))
    if not any(sh >= big_h and sw >= big_w for sh, sw in shapes):
        shapes.append((big_h, big_w))
    return sorted(set(shapes), key=lambda hw: (hw[0] * hw[1], hw))


def pick_shape(boxes: np.ndarray, min_scale: float, shapes: list[tuple[int, int]], slack: float = 0.01) -> np.ndarray:
    """For each box, the smallest shape that samples it at ``min_scale`` network px per frame px or finer.

    Args:
        boxes: (K, 4) x0, y0, x1, y1, frame pixels.
        min_scale: network pixels per frame pixel a crop must keep (the full-frame pass's, e.g.
            640 / 1920 for 1088 x 1920 frames at 640 x 384).
        shapes: (height, width) network inputs by increasing area (:func:`shape_ladder`).
        slack: this fraction below ``min_scale`` is accepted (0: a shape must hold the box whole).

    Returns:
        (K,) int64 index into ``shapes``; -1 where none is large enough.

    Example:
        >>> pick_shape(np.array([[0.0, 0.0, 300.0, 900.0]]), 1 / 3, [(256, 160), (320, 192), (640, 384)]).tolist()
        [1]
    """
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    need_w, need_h = (b[:, 2] - b[:, 0]) * min_scale * (1 - slack), (b[:, 3] - b[:, 1]) * min_scale * (1 - slack)
    hw = np.array(shapes, np.float64).reshape(-1, 2)
    fits = (hw[None, :, 0] >= need_h[:, None]) & (hw[None, :, 1] >= need_w[:, None])  # (K, S)
    return np.where(fits.any(axis=1), np.argmax(fits, axis=1), -1).astype(np.int64)


def letterbox_geometry(
    frame_wh: tuple[int, int], input_hw: tuple[int, int]
) -> tuple[tuple[float, float], tuple[int, int]]:
    """Gain and padding of :func:`capture.detect.letterbox.letterbox` for a frame size, without an image.

    Args:
        frame_wh: (width, height) of the frame, pixels.
        input_hw: the network input (height, width), pixels.

    Returns:
        gain: (gain_x, gain_y), network pixels per frame pixel.
        pad: (left, top), network pixels: ``network px = frame px * gain + pad``.

    Example:
        >>> letterbox_geometry((1088, 1920), (640, 384))
        ((0.3336397058823529, 0.3333333333333333), (10, 0))
    """
    w, h = (int(v) for v in frame_wh)
    h_in, w_in = (int(v) for v in input_hw)
    r = min(h_in / h, w_in / w)
    new_w, new_h = max(round(w * r), 1), max(round(h * r), 1)
    return (new_w / w, new_h / h), (round((w_in - new_w) / 2 - 0.1), round((h_in - new_h) / 2 - 0.1))


def grid_windows(boxes: np.ndarray, shapes_hw: np.ndarray, input_wh: tuple[int, int], stride: int = 32) -> np.ndarray:
    """Windows of the full pass's network input, one per box, of given shapes, aligned to the model's stride.

    A window's origin is a multiple of ``stride``, so the network sees exactly the pixels, on exactly
    the sampling grid, of that part of the full pass's input: its convolutions then compute what the
    full pass computes there (up to the window's borders). The origin is the aligned one nearest to
    centring the box that keeps the box inside the window and the window inside the input; a window
    larger than the input is centred on it (the outside is padding).

    Args:
        boxes: (M, 4) x0, y0, x1, y1, network input pixels.
        shapes_hw: (M, 2) each window's (height, width), pixels, multiples of ``stride``.
        input_wh: (width, height) of the full network input, pixels, multiples of ``stride``.
        stride: the model's stride, pixels.

    Returns:
        (M, 4) int64 windows x0, y0, x1, y1, network input pixels (may reach outside the input).

    Example:
        >>> grid_windows(np.array([[40.0, 100.0, 140.0, 300.0]]), np.array([[256, 160]]), (384, 640)).tolist()
        [[0, 64, 160, 320]]
    """
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    out = np.zeros((len(b), 4), np.int64)
    for m in range(len(b)):
        for axis, size in ((0, int(shapes_hw[m][1])), (1, int(shapes_hw[m][0]))):
            lo_box, hi_box, full = b[m, axis], b[m, axis + 2], int(input_wh[axis])
            if size >= full:
                start = -((size - full) // 2 // stride) * stride
            else:
                target = min(max((lo_box + hi_box - size) / 2, 0.0), full - size)
                lo, hi = max(hi_box - size, 0.0), min(lo_box, full - size)  # box inside, window inside
                lo, hi = int(np.ceil(lo / stride)) * stride, int(np.floor(hi / stride)) * stride
                start = (
                    int(round(target / stride)) * stride
                    if lo > hi
                    else min(max(round(target / stride) * stride, lo), hi)
                )
                start = min(max(start, 0), full - size)
            out[m, axis], out[m, axis + 2] = start, start + size
    return out


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


def plan_crops(
    boxes: np.ndarray,
    shapes: list[tuple[int, int]],
    min_scale: float,
    frame_wh: tuple[int, int],
    call_px: int = CALL_PX,
    slack: float = 0.01,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Crops and their network inputs for hint boxes, each sampled at ``min_scale`` or finer, merged when cheaper.

    Each box gets its :func:`pick_shape` (the largest shape when none suffices: the crop is then
    sampled more coarsely) and is widened to that shape's aspect (:func:`fit_aspect`). Greedy: while
    some pair's union, on its own shape, costs less than the two crops (network pixels plus
    ``call_px`` per model call), the pair that saves most becomes one crop.

    Args:
        boxes: (K, 4) x0, y0, x1, y1 hint boxes, frame pixels.
        shapes: (height, width) network inputs by increasing area (:func:`shape_ladder`).
        min_scale: network pixels per frame pixel each crop must keep.
        frame_wh: (width, height) of the frame, pixels.
        call_px: fixed cost of one model call, network pixels (:data:`CALL_PX`).
        slack: see :func:`pick_shape`.

    Returns:
        crops: (M, 4) int64 crop boxes, frame pixels, M <= K.
        owner: (K,) int64 index of the crop each hint box went into.
        shape_of: (M,) int64 index into ``shapes`` of each crop's network input.

    Example:
        >>> crops, owner, shape_of = plan_crops(np.array([[0, 0, 90, 300], [60, 0, 150, 300]]),
        ...                                     [(128, 64), (192, 96)], 0.5, (1000, 1000))
        >>> crops.tolist(), owner.tolist(), shape_of.tolist()
        ([[0, 0, 150, 300]], [0, 0], [1])
    """
    raw = [np.asarray(b, dtype=np.float64) for b in np.asarray(boxes, dtype=np.float64).reshape(-1, 4)]
    area = [h * w + call_px for h, w in shapes]

    def shape(b: np.ndarray) -> int:
        k = int(pick_shape(b[None], min_scale, shapes, slack)[0])
        return k if k >= 0 else len(shapes) - 1

    members = [[k] for k in range(len(raw))]
    kind = [shape(b) for b in raw]
    while len(raw) > 1:
        best, pair = 0.0, None
        for i in range(len(raw)):
            for j in range(i + 1, len(raw)):
                u = np.concatenate([np.minimum(raw[i][:2], raw[j][:2]), np.maximum(raw[i][2:], raw[j][2:])])
                k = int(pick_shape(u[None], min_scale, shapes, slack)[0])
                saving = area[kind[i]] + area[kind[j]] - area[k] if k >= 0 else 0.0
                if saving > best:
                    best, pair = saving, (i, j, u, k)
        if pair is None:
            break
        i, j, u, k = pair
        raw[i], kind[i], members[i] = u, k, members[i] + members[j]
        del raw[j], kind[j], members[j]
    crops = [fit_aspect(b, shapes[k][1] / shapes[k][0], frame_wh)[0] for b, k in zip(raw, kind, strict=True)]
    owner = np.zeros(sum(len(m) for m in members), np.int64)
    for c, ks in enumerate(members):
        owner[ks] = c
    return np.array(crops, np.int64).reshape(-1, 4), owner, np.array(kind, np.int64)
