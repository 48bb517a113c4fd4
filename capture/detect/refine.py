"""A second, top-down pass: each person's box cut from the full-resolution frame and its keypoints re-estimated.

The first pass (YOLO11n-pose on the whole frame at 640 x 384, or on 3D-guided crops) sees a
1088 x 1920 frame at a third of its resolution; a person 500 px tall covers some 170 input pixels.
The refinement (:class:`CropRefiner`) gives each person a network input of their own, as top-down
methods do (Xiao et al. 2018, "Simple Baselines for Human Pose Estimation and Tracking"; the
RTMPose pipeline of Jiang et al. 2023):

1. each first-pass box is grown by :data:`MARGIN` of its size on every side, then widened to the
   refinement input's aspect ratio and put inside the frame (:func:`refine_crop_boxes`, with
   :func:`capture.detect.crops.fit_aspect`);
2. the crop is cut from the frame at full resolution and given to the refinement model (``"yolo"``:
   YOLO11n-pose exported at the crop input, e.g. 256 x 192, whose letterbox scales the crop to it;
   ``"rtmpose"``: a user's RTMPose ONNX on the box inside the crop);
3. the model may see several people in the crop (someone in front, a bystander): the detection that
   is the first pass's person is picked by box overlap and keypoint distance (:func:`match_detection`);
4. with flip test-time augmentation (``[detector] refine_flip``), the crop is also mirrored, its
   detections mirrored back with left and right joints swapped (:func:`flip_poses`) and averaged
   with the unflipped ones, weighted by confidence (as in the flip test of Xiao et al. 2018 §4);
5. the refined keypoints are shifted to frame pixels (:func:`capture.detect.crops.crop_to_frame`) and
   fused with the first pass joint by joint (:func:`fuse_poses`): the more confident estimate, or,
   where both are confident and agree, their confidence-weighted average.

Boxes and scores stay the first pass's: the refinement changes keypoints only, so the people found,
their order are unchanged (re-ID descriptors are placed by the refined keypoints).

Measured on the demo (``mvcap bench frontend``, 100 frames x 4 cameras, 2 shared cores, two runs: quality
figures identical, CPU within 1 %): at 256 x 192 the refinement costs about 20 ms of CPU per person and
frame (+52 % worker CPU: 147 against 97 ms per frame and camera; flip doubles it: 208 ms; 320 x 256:
172 ms) and lowers the reprojection median
from 3.84 to 3.66 px and the joint jumps from 23 to 13, but raises the p90 (10.4 to 11.0 px) and the
worst forearm/shin spread (2.9 to 3.3 cm); with flip 3.55 px, 12 jumps, 2.9 cm. ``replace`` fusion
is worse than the first pass alone (48 jumps, 6.5 cm), ``average`` is the default fusion. The pass is
off by default: the gain is small for half as much CPU again.

Convention: pixel (0, 0) is the centre of the top-left pixel, so mirroring a crop ``W`` pixels wide
sends u to ``W - 1 - u`` (on the demo, the flipped pass's keypoints agree with the plain pass's to
-0.4 px median in u with this convention; ``W - u`` would give +0.6 px); boxes are (x0, y0, x1, y1)
frame pixels.
"""

from __future__ import annotations

import logging
from typing import Final

import numpy as np

from capture.detect.crops import crop_to_frame, fit_aspect
from core.errors import ConfigError, ShapeError
from core.skeleton import COCO17, Skeleton

__all__ = [
    "FUSE_MODES",
    "MARGIN",
    "MATCH_IOU",
    "REFINERS",
    "CropRefiner",
    "flip_poses",
    "fuse_poses",
    "make_refiner",
    "match_detection",
    "refine_crop_boxes",
]

log = logging.getLogger(__name__)

REFINERS: Final = ("yolo", "rtmpose")
"""Valid non-empty values of ``[detector] refine``."""
FUSE_MODES: Final = ("replace", "average")
"""Valid values of ``[detector] refine_fuse``."""
MARGIN: Final = 0.1
"""Each first-pass box is grown by this fraction of its width / height on every side before the aspect fix."""
MATCH_IOU: Final = 0.3
"""A crop detection whose box overlaps the first pass's box less than this (IoU) is someone else."""
MIN_CONF: Final = 0.3
"""Joints below this confidence take no part in matching, nor in the average of :func:`fuse_poses`."""
CLOSE_FRAC: Final = 0.1
"""Two estimates of a joint closer than this fraction of the person's box height are averaged (``average``)."""
CROP_SCORE: Final = 0.25
"""Person score threshold of the refinement model on a crop (the person is known to be there; the match decides)."""


def refine_crop_boxes(
    boxes: np.ndarray, crop_hw: tuple[int, int], frame_wh: tuple[int, int], margin: float = MARGIN
) -> np.ndarray:
    """The crop of each person box: grown by ``margin`` on every side, widened to the crop input's aspect.

    Args:
        boxes: (P, 4+) [x0, y0, x1, y1, ...] person boxes, frame pixels.
        crop_hw: refinement input (height, width), pixels: sets the aspect ratio.
        frame_wh: (width, height) of the frame, pixels.
        margin: fraction of the box's width (height) added left and right (top and bottom).

    Returns:
        (P, 4) int64 crop boxes inside the frame (:func:`capture.detect.crops.fit_aspect`).

    Example:
        >>> refine_crop_boxes(np.array([[100.0, 100.0, 200.0, 300.0, 0.9]]), (256, 192), (1000, 1000)).tolist()
        [[60, 80, 240, 320]]
    """
    b = np.asarray(boxes, dtype=np.float64).reshape(len(boxes), -1)[:, :4]
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    grown = b + margin * np.stack([-w, -h, w, h], axis=1)
    return fit_aspect(grown, crop_hw[1] / crop_hw[0], frame_wh)


def flip_poses(poses: np.ndarray, width: int, left_right: tuple[tuple[int, int], ...]) -> np.ndarray:
    """Poses found in a horizontally mirrored image, in the unmirrored image's pixels and joint labels.

    ``u`` becomes ``width - 1 - u`` and each (left, right) pair of joints swaps places: what the model
    called the left wrist in the mirror image is the person's right wrist. Missing joints (conf 0)
    stay at (0, 0).

    Args:
        poses: (P, J, 3) [u_px, v_px, conf] in the mirrored image's pixels.
        width: the image's width, pixels.
        left_right: (left index, right index) pairs (:attr:`core.skeleton.Skeleton.left_right`).

    Returns:
        (P, J, 3) float32 poses in the unmirrored image.

    Example:
        >>> p = np.array([[[10.0, 5.0, 0.9], [2.0, 7.0, 0.8]]])
        >>> flip_poses(p, 100, ((0, 1),)).tolist()
        [[[97.0, 7.0, 0.800000011920929], [89.0, 5.0, 0.8999999761581421]]]
    """
    out = np.array(poses, np.float32, copy=True)
    out[..., 0] = np.where(out[..., 2] > 0, width - 1 - out[..., 0], 0.0)
    order = np.arange(out.shape[1])
    for left, right in left_right:
        order[[left, right]] = [right, left]
    return out[:, order]


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of box ``a`` (4,) against boxes ``b`` (N, 4)."""
    iw = np.clip(np.minimum(a[2], b[:, 2]) - np.maximum(a[0], b[:, 0]), 0, None)
    ih = np.clip(np.minimum(a[3], b[:, 3]) - np.maximum(a[1], b[:, 1]), 0, None)
    inter = iw * ih
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - inter
    return inter / np.maximum(area, 1e-9)


def match_detection(
    pose: np.ndarray,
    box: np.ndarray,
    poses: np.ndarray,
    boxes: np.ndarray,
    min_iou: float = MATCH_IOU,
    min_conf: float = MIN_CONF,
) -> int:
    """Which of a crop's detections is the first pass's person.

    Candidates are the detections whose box overlaps ``box`` by at least ``min_iou`` (IoU). Among
    them the one with the smallest median distance over the joints both see with ``min_conf``,
    divided by the person's box height, plus ``1 - IoU``, wins: a person in front of another has a
    similar box but other keypoints. Without common confident joints the IoU alone decides.

    Args:
        pose: (J, 3) [u_px, v_px, conf] the first pass's pose.
        box: (4+,) [x0, y0, x1, y1, ...] the first pass's box, same pixels.
        poses: (N, J, 3) the crop's detections, same pixels.
        boxes: (N, 4+) their boxes.
        min_iou: least IoU of a candidate.
        min_conf: joints below are not compared.

    Returns:
        The index of the matching detection, or -1 when none overlaps enough.

    Example:
        >>> p, boxes = np.zeros((2, 17, 3)), np.array([[50, 0, 60, 20], [1, 0, 11, 20.0]])
        >>> match_detection(p[0], np.array([0, 0, 10, 20.0]), p, boxes)
        1
    """
    if len(boxes) == 0:
        return -1
    b = np.asarray(boxes, dtype=np.float64).reshape(len(boxes), -1)[:, :4]
    ref = np.asarray(box, dtype=np.float64)[:4]
    iou = _iou(ref, b)
    height = max(ref[3] - ref[1], 1.0)
    best, best_cost = -1, np.inf
    for n in np.flatnonzero(iou >= min_iou):
        both = (pose[:, 2] >= min_conf) & (poses[n, :, 2] >= min_conf)
        dist = np.median(np.linalg.norm(pose[both, :2] - poses[n, both, :2], axis=1)) / height if both.any() else 0.0
        cost = dist + 1.0 - iou[n]
        if cost < best_cost:
            best, best_cost = int(n), cost
    return best


def fuse_poses(
    first: np.ndarray,
    refined: np.ndarray,
    heights: np.ndarray,
    mode: str = "average",
    min_conf: float = MIN_CONF,
    close_frac: float = CLOSE_FRAC,
) -> np.ndarray:
    """Per joint, the first pass's estimate, the refined one, or their average, by confidence.

    ``replace``: each joint takes the estimate of higher confidence (the refined one on a tie).
    ``average``: the same, except where both confidences are at least ``min_conf`` and the two
    estimates lie within ``close_frac`` of the person's box height: there the position is their
    confidence-weighted mean and the confidence the larger one. A refined joint of confidence 0
    (no match, or not seen) leaves the first pass's joint unchanged.

    Args:
        first: (P, J, 3) [u_px, v_px, conf] first-pass poses.
        refined: (P, J, 3) refined poses, same pixels; conf 0 where there is none.
        heights: (P,) box heights, pixels (the scale of "close").
        mode: ``"replace"`` or ``"average"``.
        min_conf: confidence both estimates need to be averaged.
        close_frac: largest distance averaged, as a fraction of the box height.

    Returns:
        (P, J, 3) float32 fused poses.

    Raises:
        ConfigError: an unknown mode.
        ShapeError: ``first`` and ``refined`` differ in shape.

    Example:
        >>> a, b, h = np.array([[[10.0, 0.0, 0.5]]]), np.array([[[12.0, 0.0, 0.5]]]), np.array([100.0])
        >>> fuse_poses(a, b, h)[0, 0].tolist(), fuse_poses(a, b, h, "replace")[0, 0].tolist()
        ([11.0, 0.0, 0.5], [12.0, 0.0, 0.5])
    """
    if mode not in FUSE_MODES:
        raise ConfigError(f"refine fuse mode must be one of {', '.join(FUSE_MODES)}; got {mode!r}")
    first = np.asarray(first, np.float64)
    refined = np.asarray(refined, np.float64)
    if first.shape != refined.shape or first.ndim != 3 or first.shape[2] != 3:
        raise ShapeError(f"first and refined must both be (P, J, 3); got {first.shape} and {refined.shape}")
    c1, c2 = first[..., 2:3], refined[..., 2:3]
    out = np.where(c2 >= c1, refined, first)
    if mode == "average":
        close = np.linalg.norm(first[..., :2] - refined[..., :2], axis=-1) <= close_frac * np.asarray(heights)[:, None]
        both = (c1[..., 0] >= min_conf) & (c2[..., 0] >= min_conf) & close
        mean = (c1 * first[..., :2] + c2 * refined[..., :2]) / np.maximum(c1 + c2, 1e-9)
        out[..., :2] = np.where(both[..., None], mean, out[..., :2])
    return out.astype(np.float32)


def _average_flip(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Confidence-weighted mean of two (J, 3) estimates of one pose (conf: their mean); either may be all 0."""
    ca, cb = a[:, 2:3], b[:, 2:3]
    uv = (ca * a[:, :2] + cb * b[:, :2]) / np.maximum(ca + cb, 1e-9)
    return np.concatenate([uv, (ca + cb) / 2], axis=1)


class CropRefiner:
    """The top-down refinement pass (see the module docstring).

    Args:
        model: ``"yolo"``: a :class:`capture.detect.detector.Detector` whose network input is the crop
            input (``detect(crop)`` letterboxes any crop to it); ``"rtmpose"``: an object with
            ``refine(image_bgr, boxes) -> (P, J, 3)`` (:class:`capture.detect.rtmpose.RtmPoseOnnx`).
        crop_hw: refinement input (height, width), pixels: sets the crops' aspect ratio.
        flip: also run each crop mirrored and average (flip test-time augmentation).
        fuse: :func:`fuse_poses` mode, ``"average"`` or ``"replace"``.
        margin: box growth on every side, fraction of its size.
        skeleton: the joint set (left/right pairs for the flip).

    Attributes:
        last_matched: people of the last call that the refinement found in their crop.
        calls: model calls of the last call.

    Raises:
        ConfigError: an unknown fuse mode.
    """

    def __init__(
        self,
        model: object,
        crop_hw: tuple[int, int],
        flip: bool = False,
        fuse: str = "average",
        margin: float = MARGIN,
        skeleton: Skeleton = COCO17,
    ) -> None:
        if fuse not in FUSE_MODES:
            raise ConfigError(f"refine fuse mode must be one of {', '.join(FUSE_MODES)}; got {fuse!r}")
        self.model = model
        self.crop_hw = (int(crop_hw[0]), int(crop_hw[1]))
        self.flip = bool(flip)
        self.fuse = fuse
        self.margin = float(margin)
        self.skeleton = skeleton
        self.top_down = hasattr(model, "refine")
        self.last_matched = 0
        self.calls = 0

    def _estimate(self, crop: np.ndarray, box: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The model's people in one crop, crop pixels: (N, J, 3), (N, 4+)."""
        self.calls += 1
        if self.top_down:
            return self.model.refine(crop, box[None, :4]), box[None, :4]
        return self.model.detect(crop)

    def _refine_one(self, crop: np.ndarray, pose: np.ndarray, box: np.ndarray) -> np.ndarray:
        """The person's refined pose (J, 3) in crop pixels (pose and box in crop pixels); conf 0 when not found."""
        n_j = pose.shape[0]
        poses, boxes = self._estimate(crop, box)
        k = match_detection(pose, box, poses, boxes)
        found = poses[k].astype(np.float64) if k >= 0 else np.zeros((n_j, 3))
        if not self.flip:
            return found
        width = crop.shape[1]
        mirrored_box = np.array([width - box[2], box[1], width - box[0], box[3]])
        poses, boxes = self._estimate(np.ascontiguousarray(crop[:, ::-1]), mirrored_box)
        if len(boxes):
            poses = flip_poses(poses, width, self.skeleton.left_right)
            boxes = np.asarray(boxes, np.float64).reshape(len(boxes), -1).copy()
            boxes[:, [0, 2]] = width - boxes[:, [2, 0]]
        k = match_detection(pose, box, poses, boxes)
        return _average_flip(found, poses[k].astype(np.float64) if k >= 0 else np.zeros((n_j, 3)))

    def estimate(self, image_bgr: np.ndarray, poses: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """The refinement model's keypoints of the first pass's people, before fusion.

        Args:
            image_bgr: (H, W, 3) uint8 BGR frame (full resolution, as the first pass saw it).
            poses: (P, J, 3) [u_px, v_px, conf] first-pass poses, frame pixels.
            boxes: (P, 5) [x1, y1, x2, y2, score] first-pass boxes, frame pixels.

        Returns:
            (P, J, 3) float32 refined poses, frame pixels, same people and order; all conf 0 for a
            person the refinement did not find in their crop.

        Raises:
            ShapeError: poses and boxes disagree in number or shape.
        """
        poses = np.asarray(poses, np.float32)
        boxes = np.asarray(boxes, np.float32)
        if poses.ndim != 3 or poses.shape[2] != 3 or boxes.ndim != 2 or len(boxes) != len(poses):
            raise ShapeError(f"poses must be (P, J, 3) and boxes (P, 5); got {poses.shape} and {boxes.shape}")
        self.calls, self.last_matched = 0, 0
        if len(poses) == 0:
            return poses.copy()
        h, w = image_bgr.shape[:2]
        crops = refine_crop_boxes(boxes, self.crop_hw, (w, h), self.margin)
        refined = np.zeros(poses.shape, np.float32)
        for p, (x0, y0, x1, y1) in enumerate(crops):
            off = np.array([x0, y0], np.float32)
            local = poses[p].copy()
            local[:, :2] -= off
            local_box = boxes[p, :4] - np.concatenate([off, off])
            crop = np.ascontiguousarray(image_bgr[y0:y1, x0:x1])
            found = self._refine_one(crop, local, local_box).astype(np.float32)
            if found[:, 2].max(initial=0.0) > 0:
                self.last_matched += 1
                found = crop_to_frame(found[None], np.zeros((0, 5), np.float32), crops[p])[0][0]
                found[found[:, 2] <= 0, :2] = 0.0
            refined[p] = found
        return refined

    def refine(self, image_bgr: np.ndarray, poses: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """Refined keypoints of the first pass's people: :meth:`estimate` fused with ``poses`` (:func:`fuse_poses`).

        Args:
            image_bgr: (H, W, 3) uint8 BGR frame (full resolution, as the first pass saw it).
            poses: (P, J, 3) [u_px, v_px, conf] first-pass poses, frame pixels.
            boxes: (P, 5) [x1, y1, x2, y2, score] first-pass boxes, frame pixels.

        Returns:
            (P, J, 3) float32 fused poses, frame pixels, same people and order (boxes are unchanged).

        Raises:
            ShapeError: poses and boxes disagree in number or shape.
        """
        refined = self.estimate(image_bgr, poses, boxes)
        if len(refined) == 0:
            return refined
        boxes = np.asarray(boxes, np.float32)
        return fuse_poses(poses, refined, boxes[:, 3] - boxes[:, 1], self.fuse)


def make_refiner(cfg: object, threads: int = 1) -> CropRefiner:
    """The refinement pass of a ``[detector]`` table (:class:`core.config.DetectorConfig`).

    ``refine = "yolo"``: YOLO11n-pose exported at ``refine_input_h`` x ``refine_input_w`` (once, in the
    cache; :func:`capture.assets.yolo_pose_onnx`), person score :data:`CROP_SCORE`. ``"rtmpose"``:
    the RTMPose ONNX file of ``[detector] model``, at its own input.

    Args:
        cfg: the detector settings (``refine``, ``refine_input_h``, ``refine_input_w``, ``refine_flip``,
            ``refine_fuse``, ``model``).
        threads: onnxruntime intra-op threads.

    Returns:
        The :class:`CropRefiner`.

    Raises:
        ConfigError: an unknown ``refine`` value, or ``"rtmpose"`` without a model file.
        InputError: the YOLO export or the model file cannot be loaded.
    """
    if cfg.refine == "yolo":
        from capture.detect.registry import make_detector

        hw = (cfg.refine_input_h, cfg.refine_input_w)
        model = make_detector("yolo11n-pose", model_path=None, input_hw=hw, score_threshold=CROP_SCORE, threads=threads)
    elif cfg.refine == "rtmpose":
        if not cfg.model:
            raise ConfigError('[detector] refine = "rtmpose" needs an RTMPose ONNX file: set [detector] model')
        from capture.detect.rtmpose import RtmPoseOnnx

        model = RtmPoseOnnx(cfg.model, box_source=None, threads=threads)
        hw = model.input_wh[::-1]
    else:
        raise ConfigError(f"[detector] refine must be empty or one of {', '.join(REFINERS)}; got {cfg.refine!r}")
    return CropRefiner(model, hw, flip=cfg.refine_flip, fuse=cfg.refine_fuse)
