"""Semi-synthetic 2D detections: real 3D ground truth projected through real calibrations, plus noise.

Campus and CMU Panoptic come here without real 2D detections. To benchmark the 2D -> 3D part of the
pipeline on their real motion and real camera geometry, :func:`synthesize_detections` projects 3D
ground truth (COCO-17, metres) into every camera (with lens distortion) and applies a stated
:class:`NoiseModel`: Gaussian pixel noise, dropped joints, missed people, left/right flips and
human-shaped false detections. :func:`shelf14_to_coco17` and :func:`panoptic19_to_coco17` turn the
datasets' own skeletons into COCO-17.

Every random draw comes from the ``rng`` argument, so a seed fixes the whole output.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Final

import numpy as np

from calibration.camera import Camera, CameraRig
from capture.benchmarks.datasets import SHELF14
from capture.sources.detection_files import keypoint_boxes
from core.errors import ShapeError
from core.skeleton import COCO17
from core.types import Detections2D

__all__ = [
    "COCO17_FROM_PANOPTIC19",
    "SYNTHETIC_FROM_SHELF14",
    "NoiseModel",
    "panoptic19_to_coco17",
    "shelf14_to_coco17",
    "synthesize_detections",
    "synthesize_detections_with_ids",
]

_J: Final = COCO17.n_joints
_FLIP: Final[np.ndarray] = np.arange(_J)
for _left, _right in COCO17.left_right:
    _FLIP[_left], _FLIP[_right] = _right, _left
_FLIP.setflags(write=False)


@dataclass(frozen=True, slots=True)
class NoiseModel:
    """A stated 2D detector error model, applied per camera view.

    Defaults and where they come from:

    - ``sigma_px`` = 3 px: std of Gaussian noise per coordinate, in pixels of every camera whatever
      its resolution. The lowest level of the noise study in the project's FINDINGS.md (ground
      truth through 5 real Panoptic views with 3 / 5 / 10 px gave 11 / 18 / 40 mm MPJPE), i.e. a
      good detector at HD resolution; real detectors are worse (FINDINGS: YOLO11n-pose 640x384 on
      the Pose2Sim demo, median 21 px cross-view; the OpenPose detections of
      :mod:`capture.benchmarks.body25` lie a median 12-18 px per camera from the projected Shelf
      ground truth, part of which is the datasets' different joint definitions). Not scaled with
      image size by default, so 3 px is relatively larger on Campus (360x288) than on Panoptic
      (1920x1080).
    - ``sigma_rel`` = 0: optional extra std as a fraction of the person's projected height in that
      view (detector error grows with person size; chosen, 0.01-0.02 is a plausible setting). The
      two parts add in quadrature: ``sqrt(sigma_px**2 + (sigma_rel * height_px)**2)``.
    - ``joint_drop_prob`` = 0.05: a visible joint is reported missing (chosen).
    - ``miss_prob`` = 0.05: a person in view is not detected at all (chosen; FINDINGS: MoveNet
      missed a subject in 5 of 160 subject-views, about 3%, YOLO none).
    - ``false_per_view`` = 0.1: Poisson mean of false detections per view (chosen; FINDINGS: YOLO
      returned "a few small spurious boxes" on the demo).
    - ``flip_prob`` = 0.02: all left/right labels of a person are swapped in one view (chosen;
      FINDINGS: Pose2Sim's 3D output had left/right shoulder mix-ups at 2 of 100 frames).
    - ``conf_range`` = (0.5, 1.0): confidence of a kept joint, uniform (chosen).
    - ``false_conf_range`` = (0.2, 0.45): confidence of false-detection joints, uniform (FINDINGS:
      YOLO's spurious boxes scored 0.29-0.43).
    - ``false_height_frac`` = (0.2, 0.6): height of a false detection as a fraction of the image
      height, uniform (chosen).

    Raises:
        ValueError: a probability outside [0, 1], a negative std or rate, or a bad range.

    Example:
        >>> NoiseModel.zero().sigma_px
        0.0
    """

    sigma_px: float = 3.0
    sigma_rel: float = 0.0
    joint_drop_prob: float = 0.05
    miss_prob: float = 0.05
    false_per_view: float = 0.1
    flip_prob: float = 0.02
    conf_range: tuple[float, float] = (0.5, 1.0)
    false_conf_range: tuple[float, float] = (0.2, 0.45)
    false_height_frac: tuple[float, float] = (0.2, 0.6)

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name.endswith("_range") or f.name.endswith("_frac"):
                lo, hi = (float(v) for v in value)
                if not 0 <= lo <= hi <= 1 or (f.name == "false_height_frac" and lo <= 0):
                    raise ValueError(f"{f.name} must be (lo, hi) with 0 <= lo <= hi <= 1; got {value}")
                object.__setattr__(self, f.name, (lo, hi))
                continue
            value = float(value)
            if not np.isfinite(value) or value < 0 or (f.name.endswith("_prob") and value > 1):
                bound = "in [0, 1]" if f.name.endswith("_prob") else "finite and >= 0"
                raise ValueError(f"{f.name} must be {bound}; got {value}")
            object.__setattr__(self, f.name, value)

    @classmethod
    def zero(cls) -> NoiseModel:
        """No noise, drops, misses, flips or false detections; every kept joint has confidence 1."""
        return cls(
            sigma_px=0.0, sigma_rel=0.0, joint_drop_prob=0.0, miss_prob=0.0, false_per_view=0.0,
            flip_prob=0.0, conf_range=(1.0, 1.0),
        )  # fmt: skip


# A standing COCO-17 person seen from the front, metres: x to the image right, z up (the person's
# left is on the image right). Proportions of an adult about 1.7 m tall.
_FRONT_TEMPLATE: Final = np.array([
    [0.00, 1.62], [0.04, 1.66], [-0.04, 1.66], [0.08, 1.63], [-0.08, 1.63],
    [0.19, 1.42], [-0.19, 1.42], [0.24, 1.15], [-0.24, 1.15], [0.26, 0.90],
    [-0.26, 0.90], [0.11, 0.95], [-0.11, 0.95], [0.12, 0.50], [-0.12, 0.50],
    [0.12, 0.07], [-0.12, 0.07],
])  # fmt: skip


def synthesize_detections(
    rig: CameraRig,
    people_3d: Sequence[np.ndarray],
    rng: np.random.Generator,
    model: NoiseModel | None = None,
    frame_idx: int = 0,
    stamp_ns: int = 0,
    valid: Sequence[np.ndarray] | None = None,
) -> list[Detections2D]:
    """Noisy COCO-17 detections of every camera from 3D ground truth.

    See :func:`synthesize_detections_with_ids`, which also says which person each detection is.

    Example:
        >>> from calibration.camera import Camera, CameraRig
        >>> K = np.array([[1000.0, 0, 960], [0, 1000, 540], [0, 0, 1]])
        >>> cam = Camera("c0", K, np.zeros(5), np.eye(3), np.zeros(3), (1920, 1080))
        >>> person = np.c_[np.linspace(-0.2, 0.2, 17), np.linspace(-0.8, 0.8, 17), np.full(17, 4.0)]
        >>> dets = synthesize_detections(CameraRig((cam,)), [person], np.random.default_rng(0))
        >>> dets[0].poses.shape[1:], dets[0].poses.dtype
        ((17, 3), dtype('float32'))
    """
    return synthesize_detections_with_ids(rig, people_3d, rng, model, frame_idx, stamp_ns, valid)[0]


def synthesize_detections_with_ids(
    rig: CameraRig,
    people_3d: Sequence[np.ndarray],
    rng: np.random.Generator,
    model: NoiseModel | None = None,
    frame_idx: int = 0,
    stamp_ns: int = 0,
    valid: Sequence[np.ndarray] | None = None,
) -> tuple[list[Detections2D], list[np.ndarray]]:
    """Noisy COCO-17 detections of every camera from 3D ground truth, with the true identities.

    Per camera and person: project the joints with distortion (:meth:`Camera.project`); a joint is
    visible if it is valid, in front of the camera, its distorted pixel lies in the image
    ([-0.5, W - 0.5] x [-0.5, H - 0.5]) and its undistorted pixel lies within one image size of the
    image (which rejects the fold-back of strong radial distortion far outside the field of view).
    A person without visible joints is not in that view. Otherwise, in this order: the person is
    missed with ``miss_prob``; its left/right labels are swapped with ``flip_prob``; Gaussian noise is
    added; each visible joint is dropped with ``joint_drop_prob``; kept joints get a confidence from
    ``conf_range`` and are clipped to the image. A person whose joints were all dropped is left out.
    Then Poisson(``false_per_view``) false detections are added (a front-view human template of
    random height, position and mirroring, with the same noise and drops, confidences from
    ``false_conf_range``), and the order of people is shuffled.

    Args:
        rig: the cameras.
        people_3d: one (17, 3) COCO-17 pose per person, world coordinates, metres.
        rng: the random generator (every draw comes from it).
        model: the noise model; None means :class:`NoiseModel` defaults.
        frame_idx: frame index given to every :class:`Detections2D`.
        stamp_ns: time stamp given to every :class:`Detections2D`, nanoseconds.
        valid: optional (17,) bool per person; False marks a joint without ground truth, which is
            never visible.

    Returns:
        ``(detections, ids)``: one :class:`Detections2D` per camera in rig order, poses (P, 17, 3)
        float32 [u_px, v_px, conf] (missing joints all zero), boxes (P, 5) float32 around the kept
        joints with score = mean confidence of the kept joints; and per camera a (P,) int64 array
        with the index in ``people_3d`` of each detection, -1 for a false detection.

    Raises:
        ShapeError: a pose is not (17, 3) or not finite, or a ``valid`` mask is not (17,).
    """
    model = NoiseModel() if model is None else model
    poses_w = [_check_pose(f"people_3d[{i}]", p) for i, p in enumerate(people_3d)]
    masks = _masks(valid, len(poses_w))
    dets, ids = [], []
    for cam in rig:
        rows, who = [], []
        for i, (X, ok) in enumerate(zip(poses_w, masks, strict=True)):
            pose = _person_view(cam, X, ok, rng, model)
            if pose is not None:
                rows.append(pose)
                who.append(i)
        for _ in range(rng.poisson(model.false_per_view)):
            pose = _false_detection(cam, rng, model)
            if pose is not None:
                rows.append(pose)
                who.append(-1)
        order = rng.permutation(len(rows))
        poses = np.array([rows[k] for k in order], dtype=np.float32).reshape(len(rows), _J, 3)
        boxes = keypoint_boxes(poses)
        kept = poses[..., 2] > 0
        boxes[:, 4] = poses[..., 2].sum(axis=1) / np.maximum(kept.sum(axis=1), 1)
        dets.append(Detections2D(cam.name, frame_idx, stamp_ns, poses, boxes))
        ids.append(np.array([who[k] for k in order], dtype=np.int64))
    return dets, ids


def _check_pose(name: str, pose: object) -> np.ndarray:
    arr = np.asarray(pose, dtype=np.float64)
    if arr.shape != (_J, 3):
        raise ShapeError(f"{name} must be ({_J}, 3) COCO-17 metres; got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ShapeError(f"{name} must be finite; mark joints without ground truth with `valid`")
    return arr


def _masks(valid: Sequence[np.ndarray] | None, n: int) -> list[np.ndarray]:
    if valid is None:
        return [np.ones(_J, dtype=bool)] * n
    if len(valid) != n:
        raise ShapeError(f"valid must have one mask per person ({n}); got {len(valid)}")
    masks = [np.asarray(v, dtype=bool) for v in valid]
    for i, m in enumerate(masks):
        if m.shape != (_J,):
            raise ShapeError(f"valid[{i}] must be ({_J},); got {m.shape}")
    return masks


def _visible(cam: Camera, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distorted pixels (17, 2) and visibility (17,) of world points X (17, 3), metres."""
    width, height = cam.size
    uv = cam.project(X)
    pc = cam.to_camera(X)
    z = np.where(pc[:, 2] > 0, pc[:, 2], 1.0)
    pin = (pc[:, :2] / z[:, None]) @ cam.K[:2, :2].T + cam.K[:2, 2]
    inside = (uv[:, 0] >= -0.5) & (uv[:, 0] <= width - 0.5) & (uv[:, 1] >= -0.5) & (uv[:, 1] <= height - 0.5)
    near = (np.abs(pin[:, 0] - width / 2) <= 1.5 * width) & (np.abs(pin[:, 1] - height / 2) <= 1.5 * height)
    return uv, (pc[:, 2] > 0) & inside & near


def _person_view(
    cam: Camera, X: np.ndarray, ok: np.ndarray, rng: np.random.Generator, model: NoiseModel
) -> np.ndarray | None:
    """(17, 3) [u, v, conf] of one person in one camera, or None if not detected."""
    uv, vis = _visible(cam, X)
    vis &= ok
    if not vis.any() or rng.random() < model.miss_prob:
        return None
    if rng.random() < model.flip_prob:
        uv, vis = uv[_FLIP], vis[_FLIP]
    front = cam.to_camera(X)[:, 2] > 0
    height_px = np.ptp(uv[front & ok, 1]) if (front & ok).any() else 0.0
    return _finish(cam, uv, vis, height_px, model.conf_range, rng, model)


def _false_detection(cam: Camera, rng: np.random.Generator, model: NoiseModel) -> np.ndarray | None:
    width, height = cam.size
    lo, hi = model.false_height_frac
    h_px = rng.uniform(lo, hi) * height
    shape = _FRONT_TEMPLATE - [0.0, _FRONT_TEMPLATE[:, 1].min()]
    shape = shape / np.ptp(shape[:, 1]) * h_px
    if rng.random() < 0.5:  # seen from the back: the person's left is on the image left
        shape = shape * [-1.0, 1.0]
    half_w = np.abs(shape[:, 0]).max()
    cx = rng.uniform(half_w, max(half_w, width - 1 - half_w))
    foot_v = rng.uniform(h_px, max(h_px, height - 1))
    uv = np.stack([cx + shape[:, 0], foot_v - shape[:, 1]], axis=1)
    vis = (uv[:, 0] >= -0.5) & (uv[:, 0] <= width - 0.5) & (uv[:, 1] >= -0.5) & (uv[:, 1] <= height - 0.5)
    return _finish(cam, uv, vis, h_px, model.false_conf_range, rng, model)


def _finish(
    cam: Camera,
    uv: np.ndarray,
    vis: np.ndarray,
    height_px: float,
    conf_range: tuple[float, float],
    rng: np.random.Generator,
    model: NoiseModel,
) -> np.ndarray | None:
    """Add noise, drop joints, draw confidences; None if no joint is left."""
    sigma = np.hypot(model.sigma_px, model.sigma_rel * height_px)
    uv = uv + rng.normal(scale=sigma, size=uv.shape) if sigma > 0 else uv.copy()
    keep = vis & (rng.random(_J) >= model.joint_drop_prob)
    if not keep.any():
        return None
    width, height = cam.size
    uv[:, 0] = np.clip(uv[:, 0], -0.5, width - 0.5)
    uv[:, 1] = np.clip(uv[:, 1], -0.5, height - 0.5)
    out = np.zeros((_J, 3))
    out[keep, :2] = uv[keep]
    out[keep, 2] = rng.uniform(*conf_range, size=int(keep.sum()))
    return out


# --- dataset skeletons to COCO-17 -------------------------------------------------------------------

_SHELF = {n: i for i, n in enumerate(SHELF14)}
_SHELF_BODY: Final = [n for n in COCO17.joints if n in _SHELF]
_HEAD_OFFSETS: Final = {  # (up, forward, right) in head lengths |top_head - bottom_head|
    "nose": (0.50, 0.20, 0.0),
    "left_eye": (0.60, 0.15, -0.125),
    "right_eye": (0.60, 0.15, 0.125),
    "left_ear": (0.52, -0.05, -0.29),
    "right_ear": (0.52, -0.05, 0.29),
}

SYNTHETIC_FROM_SHELF14: Final[np.ndarray] = np.array([n in _HEAD_OFFSETS for n in COCO17.joints])
"""(17,) bool: the COCO-17 joints that :func:`shelf14_to_coco17` invents (nose, eyes, ears)."""
SYNTHETIC_FROM_SHELF14.setflags(write=False)


def shelf14_to_coco17(pose: np.ndarray) -> np.ndarray:
    """Make a COCO-17 pose from a Shelf/Campus 14-joint ground-truth pose.

    The 12 limb joints are copied by name. Nose, eyes and ears (:data:`SYNTHETIC_FROM_SHELF14`)
    are invented from the two head joints. With L = |top_head - bottom_head| and the head frame
    up = (top - bottom) / L, right = the shoulder axis (right minus left shoulder; the hip axis if the
    shoulders are degenerate) made orthogonal to up, forward = up x right, each joint is placed at
    bottom_head + L (a up + b forward + c right) with (a, b, c) = nose (0.50, 0.20, 0), eyes
    (0.60, 0.15, -+0.125), ears (0.52, -0.05, -+0.29), left first.

    Where the fractions come from: in the Shelf and Campus ground truth L is about 0.26 m and
    bottom_head lies about 0.12 m (0.47 L) above the shoulder midpoint m. The head rules the
    evaluations use (:class:`capture.benchmarks.datasets.HeadConvention`) assume the nose about
    0.5 L above bottom_head: mvpose's ``bottom = m + (nose - m) / 2`` and ``top_z = m_z + 1.5
    (nose - m)_z`` then give back the ground-truth head within a few cm, and VoxelPose's ear rule
    (``bottom = (m + ears) / 2``, ``top = 2 ears - bottom``) gives it back with ears at 0.52 L. The
    forward offsets (5 cm for the nose) and widths (eyes 6.5 cm apart, head 15 cm wide) are chosen
    from adult head proportions; none of this is measured on the actors.

    Convention: world z up is not assumed; the head frame comes from the pose itself. Units are
    those of the input (metres for the readers of :mod:`capture.benchmarks.datasets`).

    Args:
        pose: (14, 3) Shelf-14 pose (:data:`capture.benchmarks.datasets.SHELF14` order).

    Returns:
        (17, 3) COCO-17 pose, same units.

    Raises:
        ShapeError: ``pose`` is not (14, 3) or not finite.

    Example:
        >>> p = np.zeros((14, 3)); p[:, 2] = np.linspace(0.1, 1.4, 14)
        >>> p[8, 0], p[9, 0] = 0.2, -0.2  # right and left shoulder
        >>> p[12], p[13] = [0, 0, 1.5], [0, 0, 1.75]  # bottom and top of the head
        >>> shelf14_to_coco17(p)[0].round(3).tolist()  # nose, in front: forward = up x right = +y
        [0.0, 0.05, 1.625]
    """
    pose = np.asarray(pose, dtype=np.float64)
    if pose.shape != (len(SHELF14), 3) or not np.isfinite(pose).all():
        raise ShapeError(f"pose must be a finite ({len(SHELF14)}, 3) Shelf-14 pose; got {pose.shape}")
    out = np.zeros((_J, 3))
    for name in _SHELF_BODY:
        out[COCO17.index(name)] = pose[_SHELF[name]]
    bottom, top = pose[_SHELF["bottom_head"]], pose[_SHELF["top_head"]]
    length = np.linalg.norm(top - bottom)
    up = (top - bottom) / length if length > 1e-9 else np.array([0.0, 0.0, 1.0])
    right = np.eye(3)[np.argmin(np.abs(up))]  # last resort: any axis not along up
    for r_name, l_name in (("right_shoulder", "left_shoulder"), ("right_hip", "left_hip"), (None, None)):
        axis = pose[_SHELF[r_name]] - pose[_SHELF[l_name]] if r_name else right
        axis = axis - (axis @ up) * up
        if np.linalg.norm(axis) > 1e-9:
            right = axis / np.linalg.norm(axis)
            break
    forward = np.cross(up, right)
    for name, (a, b, c) in _HEAD_OFFSETS.items():
        out[COCO17.index(name)] = bottom + length * (a * up + b * forward + c * right)
    return out


_PANOPTIC19: Final = (
    "neck", "nose", "mid_hip", "left_shoulder", "left_elbow", "left_wrist", "left_hip", "left_knee",
    "left_ankle", "right_shoulder", "right_elbow", "right_wrist", "right_hip", "right_knee",
    "right_ankle", "left_eye", "left_ear", "right_eye", "right_ear",
)  # fmt: skip

COCO17_FROM_PANOPTIC19: Final[tuple[int, ...]] = tuple(_PANOPTIC19.index(n) for n in COCO17.joints)
"""Panoptic COCO-19 index of each COCO-17 joint. COCO-19 order from the Panoptic Studio toolbox
README (CMU-Perceptual-Computing-Lab/panoptic-toolbox): 0 Neck, 1 Nose, 2 BodyCenter, 3-5 left
shoulder/elbow/wrist, 6-8 left hip/knee/ankle, 9-11 right arm, 12-14 right leg, 15 lEye, 16 lEar,
17 rEye, 18 rEar (checked on the band1/band2 bodies: lEye - rEye points along lShoulder - rShoulder).

Example:
    >>> COCO17_FROM_PANOPTIC19
    (1, 15, 17, 16, 18, 3, 9, 4, 10, 5, 11, 6, 12, 7, 13, 8, 14)
"""


def panoptic19_to_coco17(joints: np.ndarray, min_conf: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Map a CMU Panoptic COCO-19 body to COCO-17 by joint name (Neck and BodyCenter are dropped).

    Args:
        joints: (19, 4) [x, y, z, conf], world coordinates in metres as
            :func:`capture.benchmarks.datasets.read_panoptic_bodies` returns them (conf -1 marks a
            missing joint).
        min_conf: joints with conf <= ``min_conf`` are invalid (VoxelPose's visibility threshold
            0.1, Tu et al. ECCV 2020 ``lib/dataset/panoptic.py``).

    Returns:
        ``(pose, valid)``: (17, 3) COCO-17 pose, metres (invalid joints keep their stored
        coordinates), and (17,) bool validity, ready for the ``valid`` argument of
        :func:`synthesize_detections`.

    Raises:
        ShapeError: ``joints`` is not (19, 4) or not finite.
    """
    joints = np.asarray(joints, dtype=np.float64)
    if joints.shape != (len(_PANOPTIC19), 4) or not np.isfinite(joints).all():
        raise ShapeError(f"joints must be a finite ({len(_PANOPTIC19)}, 4) Panoptic body; got {joints.shape}")
    mapped = joints[list(COCO17_FROM_PANOPTIC19)]
    return mapped[:, :3].copy(), mapped[:, 3] > min_conf
