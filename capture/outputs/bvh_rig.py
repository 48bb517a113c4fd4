"""The rig behind BVH and VMC exports: a joint hierarchy derived from COCO-17, its rest pose and FK.

:data:`RIG` is the hierarchy (root ``Hips`` at the mid-hip; ``Spine`` to the mid-shoulder ``Neck``;
``Head`` at the mid-ears with the nose, eyes and ears as rigid children; clavicles, arms and legs).
:class:`RestEstimator` gives each person constant bone lengths (medians over the observed frames)
and a rigid face shape; :func:`forward_kinematics` places the joints of a solved motion
(:mod:`capture.outputs.bvh_solve` fits the rotations).

Convention: a right-handed, Y-up frame in metres (the BVH frame). The rest pose is a T-pose facing
+Z with the person's left along +X, legs along -Y and every joint's rest rotation the identity.
"""

from __future__ import annotations

from array import array
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import numpy as np

from core.errors import InputError, ShapeError
from core.skeleton import COCO17, Skeleton

__all__ = ["COCO_OF_RIG", "RIG", "RestEstimator", "RestPose", "RigJoint", "coco_positions", "forward_kinematics"]


@dataclass(frozen=True, slots=True)
class RigJoint:
    """One joint of the rig.

    Attributes:
        name: BVH joint name.
        parent: index of the parent joint in :data:`RIG`, -1 for the root.
        unity: Unity ``HumanBodyBones`` name (VMC), or None for a joint VMC does not send.
    """

    name: str
    parent: int
    unity: str | None


def _rig(rows: tuple[tuple[str, str, str | None], ...]) -> tuple[RigJoint, ...]:
    names = [r[0] for r in rows]
    return tuple(RigJoint(n, names.index(p) if p else -1, u) for n, p, u in rows)


RIG: Final = _rig(
    (
        ("Hips", "", "Hips"),
        ("LeftUpLeg", "Hips", "LeftUpperLeg"),
        ("LeftLeg", "LeftUpLeg", "LeftLowerLeg"),
        ("LeftFoot", "LeftLeg", "LeftFoot"),
        ("RightUpLeg", "Hips", "RightUpperLeg"),
        ("RightLeg", "RightUpLeg", "RightLowerLeg"),
        ("RightFoot", "RightLeg", "RightFoot"),
        ("Spine", "Hips", "Spine"),
        ("Neck", "Spine", "Neck"),
        ("Head", "Neck", "Head"),
        ("Nose", "Head", None),
        ("LeftEye", "Head", None),
        ("RightEye", "Head", None),
        ("LeftEar", "Head", None),
        ("RightEar", "Head", None),
        ("LeftShoulder", "Spine", "LeftShoulder"),
        ("LeftArm", "LeftShoulder", "LeftUpperArm"),
        ("LeftForeArm", "LeftArm", "LeftLowerArm"),
        ("LeftHand", "LeftForeArm", "LeftHand"),
        ("RightShoulder", "Spine", "RightShoulder"),
        ("RightArm", "RightShoulder", "RightUpperArm"),
        ("RightForeArm", "RightArm", "RightLowerArm"),
        ("RightHand", "RightForeArm", "RightHand"),
    )
)
"""The rig, parents before children in depth-first order (the BVH channel order)."""

COCO_OF_RIG: Final = {
    "Nose": "nose", "LeftEye": "left_eye", "RightEye": "right_eye", "LeftEar": "left_ear", "RightEar": "right_ear",
    "LeftArm": "left_shoulder", "RightArm": "right_shoulder", "LeftForeArm": "left_elbow",
    "RightForeArm": "right_elbow", "LeftHand": "left_wrist", "RightHand": "right_wrist", "LeftUpLeg": "left_hip",
    "RightUpLeg": "right_hip", "LeftLeg": "left_knee", "RightLeg": "right_knee", "LeftFoot": "left_ankle",
    "RightFoot": "right_ankle",
}  # fmt: skip
"""The COCO-17 joint placed at each rig joint (the others are derived: mid-hip, mid-shoulder, mid-ears)."""

_NAMES: Final = tuple(j.name for j in RIG)
_K: Final = len(RIG)
_X, _Y, _Z = np.eye(3)
_FACE: Final = ("nose", "left_eye", "right_eye", "left_ear", "right_ear")
_FACE_RIG: Final = ("Nose", "LeftEye", "RightEye", "LeftEar", "RightEar")
_TORSO: Final = ("left_hip", "right_hip", "left_shoulder", "right_shoulder")
_TORSO_RIG: Final = ("LeftUpLeg", "RightUpLeg", "LeftArm", "RightArm")

# Lengths used until (or unless) a person's own are measured, metres (adult medians, rounded).
_DEFAULT_LENGTHS: Final = {
    "hip_half": 0.10, "thigh_l": 0.42, "thigh_r": 0.42, "shin_l": 0.41, "shin_r": 0.41, "torso": 0.50,
    "clavicle": 0.18, "upper_arm_l": 0.29, "upper_arm_r": 0.29, "forearm_l": 0.26, "forearm_r": 0.26, "neck": 0.20,
}  # fmt: skip
# Face points in the head frame (origin mid-ears, x to the left ear, z forward), metres.
_DEFAULT_FACE: Final = {
    "nose": (0.0, -0.01, 0.105), "left_eye": (0.032, 0.02, 0.085), "right_eye": (-0.032, 0.02, 0.085),
    "left_ear": (0.075, 0.0, 0.0), "right_ear": (-0.075, 0.0, 0.0),
}  # fmt: skip

# ---------------------------------------------------------------------------------------------
# Rest pose


@dataclass(frozen=True, slots=True)
class RestPose:
    """A person's rig in the rest T-pose.

    Attributes:
        offsets: (K, 3) each joint's position relative to its parent's, metres, rest frame (the
            root's is zero); K = ``len(RIG)``.
        end_sites: (K, 3) End Site offset of each leaf joint (zero for the others), metres.
        lengths: the bone lengths it was made from, metres, by name (``thigh_l``, ``torso``...).
    """

    offsets: np.ndarray
    end_sites: np.ndarray
    lengths: Mapping[str, float]

    def __post_init__(self) -> None:
        for name in ("offsets", "end_sites"):
            arr = np.array(getattr(self, name), dtype=np.float64)
            if arr.shape != (_K, 3) or not np.isfinite(arr).all():
                raise ShapeError(f"{name} must be finite ({_K}, 3); got {arr.shape}")
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)

    @classmethod
    def from_lengths(cls, lengths: Mapping[str, float], face: Mapping[str, np.ndarray]) -> RestPose:
        """The T-pose of given bone lengths (missing ones take adult defaults) and face shape.

        Args:
            lengths: metres by name: ``hip_half``, ``thigh_l/_r``, ``shin_l/_r``, ``torso`` (mid-hip to
                mid-shoulder), ``clavicle`` (half the shoulder width), ``upper_arm_l/_r``,
                ``forearm_l/_r``, ``neck`` (mid-shoulder to mid-ears).
            face: (3,) head-frame position of ``nose``, ``left_eye``, ``right_eye``, ``left_ear``,
                ``right_ear`` (origin mid-ears, x to the left ear, y up, z forward), metres.
        """
        ln = {**_DEFAULT_LENGTHS, **{k: float(v) for k, v in lengths.items()}}
        fc = {**{k: np.asarray(v, float) for k, v in _DEFAULT_FACE.items()}, **face}
        off = {
            "LeftUpLeg": ln["hip_half"] * _X, "LeftLeg": -ln["thigh_l"] * _Y, "LeftFoot": -ln["shin_l"] * _Y,
            "RightUpLeg": -ln["hip_half"] * _X, "RightLeg": -ln["thigh_r"] * _Y, "RightFoot": -ln["shin_r"] * _Y,
            "Neck": ln["torso"] * _Y, "Head": ln["neck"] * _Y,
            "LeftShoulder": ln["torso"] * _Y, "LeftArm": ln["clavicle"] * _X,
            "LeftForeArm": ln["upper_arm_l"] * _X, "LeftHand": ln["forearm_l"] * _X,
            "RightShoulder": ln["torso"] * _Y, "RightArm": -ln["clavicle"] * _X,
            "RightForeArm": -ln["upper_arm_r"] * _X, "RightHand": -ln["forearm_r"] * _X,
        }  # fmt: skip
        off.update({rig: fc[coco] for rig, coco in zip(_FACE_RIG, _FACE, strict=True)})
        offsets = np.array([off.get(n, np.zeros(3)) for n in _NAMES])
        ends = np.zeros((_K, 3))
        leaves = set(range(_K)) - {j.parent for j in RIG}
        for k in leaves:
            name = _NAMES[k]
            if name.endswith("Foot"):
                ends[k] = 0.25 * ln["shin_l" if name.startswith("Left") else "shin_r"] * _Z
            elif name.endswith("Hand"):
                ends[k] = 0.4 * offsets[k]
            else:
                n = np.linalg.norm(offsets[k])
                ends[k] = 0.25 * offsets[k] if n > 1e-3 else 0.02 * _Z
        return cls(offsets, ends, ln)

    @classmethod
    def default(cls) -> RestPose:
        """The rest pose of adult default lengths and face."""
        return cls.from_lengths({}, {})


class _Samples:
    """Float samples of one measure: all of them, or the last ``max_samples``."""

    def __init__(self, max_samples: int | None):
        self._all = array("f")
        self._max = max_samples
        self._ring = np.zeros(max_samples or 0, np.float32)
        self._n = 0

    def extend(self, values: np.ndarray) -> None:
        values = np.asarray(values, np.float32).reshape(-1)
        if self._max is None:
            self._all.frombytes(values.tobytes())
            return
        for v in values[-self._max :]:
            self._ring[self._n % self._max] = v
            self._n += 1

    def median(self) -> float | None:
        data = np.frombuffer(self._all, np.float32) if self._max is None else self._ring[: min(self._n, self._max)]
        return float(np.median(data)) if data.size else None


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cross products of (..., 3) arrays (np.cross is slow on small arrays)."""
    out = np.empty(np.broadcast_shapes(a.shape, b.shape))
    out[..., 0] = a[..., 1] * b[..., 2] - a[..., 2] * b[..., 1]
    out[..., 1] = a[..., 2] * b[..., 0] - a[..., 0] * b[..., 2]
    out[..., 2] = a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]
    return out


def _norm(v: np.ndarray) -> np.ndarray:
    return np.linalg.norm(v, axis=-1)


def _unit(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = _norm(v)
    return v / np.where(n > 0, n, 1.0)[..., None], n


class RestEstimator:
    """A person's constant bone lengths and face shape: medians of what was seen.

    Args:
        skeleton: the joints' skeleton (COCO-17 names are looked up).
        max_samples: keep only the last this many samples of each measure (live streams); None
            keeps all (a take's export: the medians are over the whole take).

    Raises:
        InputError: the skeleton lacks a COCO-17 joint.
    """

    _MEASURES: Final = tuple(_DEFAULT_LENGTHS)

    def __init__(self, skeleton: Skeleton = COCO17, max_samples: int | None = None):
        self.idx = _coco_indices(skeleton)
        self.n_joints = skeleton.n_joints
        self._len = {m: _Samples(max_samples) for m in self._MEASURES}
        self._face = {f"{p}_{c}": _Samples(max_samples) for p in ("nose", "left_eye", "right_eye") for c in "xyz"}
        self._face["ear_half"] = _Samples(max_samples)

    def add(self, points: np.ndarray) -> None:
        """Add observed frames.

        Args:
            points: (T, J, 4) [x, y, z, conf] joints in any right-handed frame, metres; conf 0 missing.

        Raises:
            ShapeError: not (T, J, 4).
        """
        points = _check_points(points, self.n_joints)
        p, ok = points[..., :3], points[..., 3] > 0
        i = self.idx

        def seg(a: str, b: str, half: bool = False) -> np.ndarray:
            m = ok[:, i[a]] & ok[:, i[b]]
            return _norm(p[m, i[a]] - p[m, i[b]]) * (0.5 if half else 1.0)

        def mid_seg(a: tuple[str, str], b: tuple[str, str]) -> np.ndarray:
            m = ok[:, i[a[0]]] & ok[:, i[a[1]]] & ok[:, i[b[0]]] & ok[:, i[b[1]]]
            ma = (p[m, i[a[0]]] + p[m, i[a[1]]]) / 2
            return _norm((p[m, i[b[0]]] + p[m, i[b[1]]]) / 2 - ma)

        s = self._len
        s["hip_half"].extend(seg("left_hip", "right_hip", half=True))
        s["clavicle"].extend(seg("left_shoulder", "right_shoulder", half=True))
        for side, x in (("l", "left"), ("r", "right")):
            s[f"thigh_{side}"].extend(seg(f"{x}_hip", f"{x}_knee"))
            s[f"shin_{side}"].extend(seg(f"{x}_knee", f"{x}_ankle"))
            s[f"upper_arm_{side}"].extend(seg(f"{x}_shoulder", f"{x}_elbow"))
            s[f"forearm_{side}"].extend(seg(f"{x}_elbow", f"{x}_wrist"))
        s["torso"].extend(mid_seg(("left_hip", "right_hip"), ("left_shoulder", "right_shoulder")))
        s["neck"].extend(mid_seg(("left_shoulder", "right_shoulder"), ("left_ear", "right_ear")))
        # Face points in the head frame of frames that show both ears and the nose.
        m = ok[:, i["left_ear"]] & ok[:, i["right_ear"]] & ok[:, i["nose"]]
        le, re_, nose = p[m, i["left_ear"]], p[m, i["right_ear"]], p[m, i["nose"]]
        c = (le + re_) / 2
        x, half = _unit(le - re_)
        fwd = nose - c
        z, nz = _unit(fwd - (fwd * x).sum(-1, keepdims=True) * x)
        good = (half > 1e-3) & (nz > 1e-3)
        basis = np.stack([x, _cross(z, x), z], axis=-1)[good]  # columns: head axes in the input frame
        c = c[good]
        self._face["ear_half"].extend(half[good] / 2)
        for name in ("nose", "left_eye", "right_eye"):
            seen = ok[m, i[name]][good]
            local = np.einsum("tij,ti->tj", basis[seen], p[m, i[name]][good][seen] - c[seen])
            for col, axis in enumerate("xyz"):
                self._face[f"{name}_{axis}"].extend(local[:, col])

    def rest(self) -> RestPose:
        """The rest pose of the medians so far (defaults for what was never seen)."""
        lengths = {m: v for m, s in self._len.items() if (v := s.median()) is not None}
        face: dict[str, np.ndarray] = {}
        ear = self._face["ear_half"].median()
        if ear is not None:
            face["left_ear"], face["right_ear"] = ear * _X, -ear * _X
        for name in ("nose", "left_eye", "right_eye"):
            xyz = [self._face[f"{name}_{a}"].median() for a in "xyz"]
            if None not in xyz:
                face[name] = np.array(xyz, dtype=np.float64)
        return RestPose.from_lengths(lengths, face)


def _coco_indices(skeleton: Skeleton) -> dict[str, int]:
    try:
        return {name: skeleton.index(name) for name in COCO17.joints}
    except KeyError as exc:
        raise InputError(f"rotations need the COCO-17 joints: {exc.args[0]}") from None


def _check_points(points: np.ndarray, n_joints: int) -> np.ndarray:
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 3 or points.shape[1:] != (n_joints, 4):
        raise ShapeError(f"points must be (T, {n_joints}, 4); got {points.shape}")
    return points


def forward_kinematics(root: np.ndarray, local: np.ndarray, rest: RestPose) -> tuple[np.ndarray, np.ndarray]:
    """Joint positions and world rotations of a rig motion.

    Args:
        root: (T, 3) root positions, metres.
        local: (T, K, 3, 3) local joint rotations.
        rest: the rig's rest pose (offsets).

    Returns:
        positions (T, K, 3) metres and world rotations (T, K, 3, 3), in the frame of ``root``.

    Raises:
        ShapeError: inconsistent shapes.
    """
    root, local = np.asarray(root, float), np.asarray(local, float)
    if root.ndim != 2 or root.shape[1] != 3 or local.shape != (root.shape[0], _K, 3, 3):
        raise ShapeError(f"root must be (T, 3) and local (T, {_K}, 3, 3); got {root.shape} and {local.shape}")
    world = np.empty_like(local)
    pos = np.empty((root.shape[0], _K, 3))
    for k, joint in enumerate(RIG):
        if joint.parent < 0:
            world[:, k] = local[:, k]
            pos[:, k] = root + rest.offsets[k]
        else:
            world[:, k] = world[:, joint.parent] @ local[:, k]
            pos[:, k] = pos[:, joint.parent] + world[:, joint.parent] @ rest.offsets[k]
    return pos, world


def coco_positions(rig_positions: np.ndarray, skeleton: Skeleton = COCO17) -> np.ndarray:
    """COCO joints (T, J, 3) taken from rig joint positions (T, K, 3) (see :data:`COCO_OF_RIG`).

    Raises:
        InputError: the skeleton lacks a COCO-17 joint.
    """
    idx = _coco_indices(skeleton)
    out = np.zeros((rig_positions.shape[0], skeleton.n_joints, 3))
    for rig_name, coco in COCO_OF_RIG.items():
        out[:, idx[coco]] = rig_positions[:, _NAMES.index(rig_name)]
    return out
