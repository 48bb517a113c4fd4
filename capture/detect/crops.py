"""Crop-only detection: run the 2D detector on regions of interest of a frame instead of the whole frame.

The node predicts where each live track will be in a camera's next frames and sends the boxes to
its worker (3D-guided regions of interest, as in Bultmann & Behnke, "Real-Time Multi-View 3D Human
Pose Estimation using Semantic Feedback to Smart Edge Sensors", RSS 2021). The worker then detects
on crops around those boxes (:class:`CropDetector`):

1. the boxes, in calibration pixels, are mapped to the pixels of the frame the detector sees
   (:func:`boxes_to_detector_px`: inverse of ``[[cameras]] image_map``, then the camera's turn);
2. on the grid (the default for YOLO11n-pose: a ladder of static input shapes,
   :func:`~capture.detect.crop_shapes.shape_ladder`, from ``roi_input_h x roi_input_w`` up to the
   full pass's input), the frame is letterboxed once as for the full pass, the boxes are mapped into
   that network input, widened by half a stride, merged when one model call on their union costs
   less than the calls on each (:func:`~capture.detect.crop_shapes.plan_crops`: network pixels plus
   :data:`~capture.detect.crop_shapes.CALL_PX` per call), and each crop is the window of the
   letterboxed input of its ladder shape, aligned to the model's stride
   (:func:`~capture.detect.crop_shapes.grid_windows`): the network sees exactly the full pass's
   pixels on the full pass's grid, so a person inside a window comes out as the full pass finds it;
3. without a ladder, each box is widened to the crop input's aspect (:func:`fit_aspect`),
   overlapping ones merge when the union costs little resolution (:func:`merge_boxes`), and each
   crop is cut from the full-resolution frame and letterboxed to the crop input (e.g. 256 x 160);
4. one model call per crop (the exports are static, batch 1, one input shape per file);
   keypoints and boxes come back in crop pixels and are shifted by the crop's origin
   (:func:`crop_to_frame`, and the letterbox's gain and padding on the grid);
5. a person seen in two crops is kept once (:func:`dedupe`): detections are ranked by whether the
   hint box they overlap most belongs to their own crop, then by score, and a detection whose box
   overlaps one kept from another crop (IoU, or most of the smaller box inside the larger) is dropped.

Why the grid: measured on the demo (1088 x 1920 portrait frames, 4 cameras, every 4th frame, hints
projected from the full-frame run's poses), against the full pass at 640 x 384: crops scaled to
256 x 160 sample a ~1100 px tall person at ~0.2 network px per frame px (the full pass: 0.33), lost
21 % of the full pass's confident joints and moved the rest by 13.6 px (median, frame pixels);
crops cut from the frame at the full pass's scale (a ladder shape each) 3.8 % and 8.5 px, and their
framing, moving with the person, made the 3D output jumpier (50 jumps > 10 cm against 23, a 12.7 cm
forearm std); grid windows 0.3 % and 0.57 px. The alignment is what matters: on one demo frame
(cam02) the windows' joints lie 0.5-1.2 px (median per person) from the full pass's, and 2-10 px
when the same windows are shifted by 8 or 16 network pixels off the stride grid. Every full-pass
joint lay inside the crops: the hint margins were not the cause.

Convention: boxes are (x0, y0, x1, y1) pixels with x0 < x1, y0 < y1; pixel (0, 0) is the centre of
the top-left pixel; a crop box has integer corners and covers pixels x0 .. x1 - 1, y0 .. y1 - 1.
"""

from __future__ import annotations

import logging
from typing import Final

import numpy as np

from capture.detect.crop_shapes import CALL_PX, fit_aspect, grid_windows, letterbox_geometry, plan_crops, shape_ladder
from capture.sources.image_map import rotate_px
from core.config import ImageMap

__all__ = [
    "DEDUP_IOU",
    "DEDUP_IOMIN",
    "EDGE_PX",
    "MERGE_AREA_RATIO",
    "CALL_PX",
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
STRIDE: Final = 32
"""The detector's stride, pixels: crop windows on the grid are aligned to it."""


def boxes_to_detector_px(
    boxes: np.ndarray, image_map: ImageMap | None = None, rotate: int = 0, frame_wh: tuple[int, int] | None = None
) -> np.ndarray:
    """Boxes in calibration pixels to the pixels of the frame the detector sees.

    ``frame pixel = calibration pixel * scale + pad`` (:mod:`capture.sources.image_map`), then the
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
        detector: a :class:`capture.detect.detector.Detector` whose network input is the crop input
            (e.g. YOLO11n-pose exported at 256 x 160): ``detect(image_bgr)`` letterboxes any crop to it.
        crop_hw: the crop input (height, width), pixels: the smallest shape, and the crops' aspect ratio.
        make: ``make(input_hw) -> Detector`` for the other shapes of the ladder (built on first use,
            then kept); None: every crop is cut from the frame and scaled to ``crop_hw``.
        max_hw: the full pass's network input (height, width), pixels; with ``make``, crops are
            stride-aligned windows of that input (:meth:`plan`), their shapes from
            :func:`~capture.detect.crop_shapes.shape_ladder` up to it.

    Attributes:
        shapes: the (height, width) network inputs crops may get, by increasing area.
        last_crops: (M, 4) int64 crop boxes of the last call, frame pixels.
        last_shapes: (M, 2) int64 their network inputs (height, width).
    """

    def __init__(
        self, detector: object, crop_hw: tuple[int, int], make: object | None = None,
        max_hw: tuple[int, int] | None = None,
    ) -> None:  # fmt: skip
        self.detector = detector
        self.crop_hw = (int(crop_hw[0]), int(crop_hw[1]))
        self.make = make
        self.max_hw = None if max_hw is None else (int(max_hw[0]), int(max_hw[1]))
        self.shapes = shape_ladder(self.crop_hw, max_hw) if make is not None and max_hw else [self.crop_hw]
        self._nets = {self.crop_hw: detector}
        self.last_crops = np.zeros((0, 4), np.int64)
        self.last_shapes = np.zeros((0, 2), np.int64)

    @property
    def on_grid(self) -> bool:
        """Whether crops are stride-aligned windows of the full pass's input (a ladder of shapes and its input)."""
        return len(self.shapes) > 1 and self.max_hw is not None

    def plan(self, hints: np.ndarray, frame_wh: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray, object]:
        """The crops for hint boxes.

        On the grid (:attr:`on_grid`): the hints in the full pass's input pixels
        (:func:`~capture.detect.crop_shapes.letterbox_geometry`), widened by half a stride on each
        side, planned at scale 1 (:func:`plan_crops`) and placed as stride-aligned windows
        (:func:`~capture.detect.crop_shapes.grid_windows`). Otherwise every crop has the crop input
        and overlapping crops merge by resolution lost (:func:`merge_boxes`).

        Args:
            hints: (K, 4) x0, y0, x1, y1 hint boxes, frame pixels.
            frame_wh: (width, height) of the frame, pixels.

        Returns:
            crops (M, 4) int64 frame pixels (clipped to the frame), owner (K,) int64 crop of each
            hint, shapes (M, 2) int64 network input (height, width) of each crop, and on the grid
            ``(windows (M, 4) int64 network input pixels, gain, pad)``, else None.
        """
        hints = np.asarray(hints, dtype=np.float64).reshape(-1, 4)
        if not self.on_grid:
            crops, owner = merge_boxes(hints, self.crop_hw[1] / self.crop_hw[0], frame_wh)
            return crops, owner, np.tile(np.array(self.crop_hw, np.int64), (len(crops), 1)), None
        (gx, gy), (left, top) = letterbox_geometry(frame_wh, self.max_hw)
        h_in, w_in = self.max_hw
        net = hints * [gx, gy, gx, gy] + [left, top, left, top]
        half = STRIDE / 2
        wide = np.clip(net + [-half, -half, half, half], 0, [w_in, h_in, w_in, h_in])
        _, owner, kind = plan_crops(wide, self.shapes, 1.0, (w_in, h_in), slack=0.0)
        shapes = np.array(self.shapes, np.int64).reshape(-1, 2)[kind]
        union = np.array([[*net[owner == c, :2].min(0), *net[owner == c, 2:].max(0)] for c in range(len(kind))])
        windows = grid_windows(union.reshape(-1, 4), shapes, (w_in, h_in), STRIDE)
        crops = (windows - [left, top, left, top]) / [gx, gy, gx, gy]
        crops = np.stack([np.floor(crops[:, 0]), np.floor(crops[:, 1]), np.ceil(crops[:, 2]), np.ceil(crops[:, 3])], 1)
        crops = np.clip(crops, 0, [*frame_wh, *frame_wh]).astype(np.int64)
        return crops, owner, shapes, (windows, (gx, gy), (left, top))

    def _net(self, hw: tuple[int, int]) -> object:
        if hw not in self._nets:
            self._nets[hw] = self.make(hw)
        return self._nets[hw]

    def _run(self, image_bgr: np.ndarray, plan: tuple) -> tuple[list, list]:
        """Each crop's detections in frame pixels: cut from the frame, or (on the grid) from its letterboxed input."""
        crops, _, shapes, grid = plan
        out_p, out_b = [], []
        if grid is not None:
            from capture.detect.letterbox import PAD_VALUE, letterbox

            windows, (gx, gy), (left, top) = grid
            padded, _, _ = letterbox(image_bgr, self.max_hw)
            h_in, w_in = padded.shape[:2]
        for c in range(len(crops)):
            net = self._net((int(shapes[c][0]), int(shapes[c][1])))
            if grid is None:
                x0, y0, x1, y1 = crops[c]
                poses, boxes = crop_to_frame(*net.detect(np.ascontiguousarray(image_bgr[y0:y1, x0:x1])), crops[c])
            else:
                x0, y0, x1, y1 = (int(v) for v in windows[c])
                sub = np.full((y1 - y0, x1 - x0, 3), PAD_VALUE, np.uint8)
                cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, w_in), min(y1, h_in)
                sub[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0] = padded[cy0:cy1, cx0:cx1]
                poses, boxes = net.detect(sub)  # the window is the network input: no resampling
                poses, boxes = crop_to_frame(poses, boxes, np.array([x0 - left, y0 - top, x1 - left, y1 - top]))
                poses[..., 0] /= gx
                poses[..., 1] /= gy
                boxes[:, 0:4:2] /= gx
                boxes[:, 1:4:2] /= gy
            out_p.append(poses)
            out_b.append(boxes)
        return out_p, out_b

    def detect(
        self, image_bgr: np.ndarray, hints: np.ndarray, plan: tuple | None = None
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
        plan = plan if plan is not None else self.plan(hints, (w, h))
        crops, owner, shapes, _ = plan
        self.last_crops, self.last_shapes = crops, shapes
        all_poses, all_boxes = self._run(image_bgr, plan)
        crop_of = [c for c, b in enumerate(all_boxes) for _ in range(len(b))]
        all_poses, all_boxes = [p for p in all_poses if len(p)], [b for b in all_boxes if len(b)]
        if not all_boxes:
            n_j = self.detector.skeleton.n_joints if hasattr(self.detector, "skeleton") else 17
            return np.zeros((0, n_j, 3), np.float32), np.zeros((0, 5), np.float32)
        poses, boxes = np.concatenate(all_poses), np.concatenate(all_boxes)
        keep = dedupe(boxes, np.array(crop_of, np.int64), hints, owner, crops, (w, h))
        return poses[keep], boxes[keep]
