"""Joint rotations of a constant-length body from tracked COCO-17 joints: the solver behind BVH and VMC.

COCO-17 has no rotations, only 3D joints. :data:`RIG` is a hierarchy derived from it (root ``Hips``
at the mid-hip; ``Spine`` to the mid-shoulder ``Neck``; ``Head`` at the mid-ears with the nose, eyes
and ears as rigid children; clavicles, arms and legs). :class:`RestEstimator` gives each person
constant bone lengths (medians over the observed frames) and a rigid face shape; :class:`PoseSolver`
then fits, frame by frame and parents first, each joint's rotation so that its bone points from
where forward kinematics (FK) put the joint at the observed child joint (chains do not accumulate
length errors, and a bone whose start joint is missing still points at its end):

- two directions (pelvis: hip line and spine; chest: spine and shoulder line; upper arm and thigh:
  the bone and the bend of the next one): the TRIAD two-vector attitude (Black 1964; Shuster & Oh
  1981, section II), so the bone points exactly at its child and the twist follows the second
  direction (a nearly straight limb blends in its parent's frame);
- one direction (clavicles, neck, forearms, shins): the shortest arc from the rest direction to the
  observed one in the parent's frame (swing without twist, Rodrigues' formula);
- the head, and the pelvis when a hip is missing: a weighted Kabsch fit (Kabsch 1976; Umeyama 1991)
  of the rest face (nose, eyes, ears) or torso (hips, shoulders) to the seen points.

The local rotation of a joint is ``parent_world.T @ world``. FK of the result puts every joint back
where it was seen whenever the input has the rig's constant lengths (to 1e-5 m in
tests/capture/outputs/test_bvh.py; on real CMU Panoptic motion the median joint is within 1 cm).

Convention: the solver works in a right-handed, Y-up frame in metres (the BVH frame;
:func:`capture.outputs.bvh.yup_from_world` turns world points into it). The rest pose is a T-pose
facing +Z with the person's left along +X, legs along -Y and every joint's rest rotation the
identity (as Unity's VRM-normalised humanoids, which VMC receivers drive). The upper-arm twist
makes elbow flexion move the forearm towards +Z in the rest pose, the thigh's makes knee flexion
move the shin towards -Z. A joint whose inputs are missing (conf 0) or degenerate keeps its last
local rotation (the rest one before any), the root its last position.

Example:
    >>> rest = RestPose.default()
    >>> t_pose = np.tile(np.eye(3), (1, len(RIG), 1, 1))  # every joint at its rest rotation
    >>> joints, _ = forward_kinematics(np.zeros((1, 3)), t_pose, rest)
    >>> points = np.concatenate([coco_positions(joints), np.ones((1, 17, 1))], axis=2)  # conf 1
    >>> motion = PoseSolver(rest).solve(points)
    >>> bool(np.allclose(motion.local, t_pose)), motion.root.tolist()
    (True, [[0.0, 0.0, 0.0]])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from capture.outputs.bvh_rig import (
    _FACE,
    _FACE_RIG,
    _K,
    _NAMES,
    _TORSO,
    _TORSO_RIG,
    _X,
    _Y,
    _Z,
    COCO_OF_RIG,
    RIG,
    RestEstimator,
    RestPose,
    RigJoint,
    _check_points,
    _coco_indices,
    _cross,
    _norm,
    _unit,
    coco_positions,
    forward_kinematics,
)
from core.skeleton import COCO17, Skeleton

__all__ = [
    "COCO_OF_RIG",
    "RIG",
    "Motion",
    "PoseSolver",
    "RestEstimator",
    "RestPose",
    "RigJoint",
    "coco_positions",
    "forward_kinematics",
]


# ---------------------------------------------------------------------------------------------
# Solver


@dataclass(frozen=True, slots=True)
class Motion:
    """Solved rig motion of T frames.

    Attributes:
        root: (T, 3) root (mid-hip) position, metres, solver frame.
        local: (T, K, 3, 3) each joint's rotation relative to its parent (the root's: to the frame).
        held: (T, K) bool, True where the joint's inputs were missing and its last rotation was kept.
    """

    root: np.ndarray
    local: np.ndarray
    held: np.ndarray


def _triad(a: np.ndarray, b: np.ndarray, a_rest: np.ndarray, b_rest: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rotations (T, 3, 3) taking ``a_rest`` to ``a`` exactly and ``b_rest`` towards ``b``; ok (T,)."""
    u1, na = _unit(a)
    u2, nb = _unit(b - (b * u1).sum(-1, keepdims=True) * u1)
    obs = np.stack([u1, u2, _cross(u1, u2)], axis=-1)
    r1 = a_rest / np.linalg.norm(a_rest)
    r2 = b_rest - (b_rest @ r1) * r1
    r2 /= np.linalg.norm(r2)
    rest = np.stack([r1, r2, _cross(r1, r2)], axis=-1)
    return obs @ rest.T, (na > 1e-9) & (nb > 1e-3 * np.maximum(_norm(b), 1e-12))


def _swing(d: np.ndarray, rest_dir: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Shortest-arc rotations (T, 3, 3) taking ``rest_dir`` to the directions ``d`` (T, 3); ok (T,)."""
    r = rest_dir / np.linalg.norm(rest_dir)
    u, n = _unit(d)
    v, c = _cross(np.broadcast_to(r, u.shape), u), u @ r
    vx = np.zeros((u.shape[0], 3, 3))
    vx[:, 0, 1], vx[:, 0, 2], vx[:, 1, 2] = -v[:, 2], v[:, 1], -v[:, 0]
    vx[:, 1, 0], vx[:, 2, 0], vx[:, 2, 1] = v[:, 2], -v[:, 1], v[:, 0]
    # Rodrigues for unit vectors: R = I + [v]x + [v]x^2 / (1 + c); a half turn (c = -1) about a normal.
    rot = np.eye(3) + vx + (vx @ vx) / np.maximum(1.0 + c, 1e-12)[:, None, None]
    normal = _cross(r, _X if abs(r[0]) < 0.9 else _Y)
    normal /= np.linalg.norm(normal)
    rot = np.where((c < -1.0 + 1e-9)[:, None, None], 2.0 * np.outer(normal, normal) - np.eye(3), rot)
    return rot, n > 1e-9


def _kabsch(rest: np.ndarray, obs: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted rigid fits obs ~ R rest + c: R (T, 3, 3), c (T, 3), ok (T,) (>= 3 non-collinear points)."""
    wsum = np.maximum(w.sum(1), 1e-12)
    rc = (w @ rest) / wsum[:, None]
    oc = np.einsum("tm,tmi->ti", w, obs) / wsum[:, None]
    h = np.einsum("tm,tmi,tmj->tij", w, rest[None] - rc[:, None], obs - oc[:, None])
    u, sv, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(np.swapaxes(vt, 1, 2) @ np.swapaxes(u, 1, 2)))
    dmat = np.zeros_like(h)
    dmat[:, 0, 0] = dmat[:, 1, 1] = 1.0
    dmat[:, 2, 2] = np.where(d == 0, 1.0, d)
    rot = np.swapaxes(vt, 1, 2) @ dmat @ np.swapaxes(u, 1, 2)
    center = oc - np.einsum("tij,tj->ti", rot, rc)
    ok = ((w > 0).sum(1) >= 3) & (sv[:, 1] > 1e-3 * np.maximum(sv[:, 0], 1e-12))
    return rot, center, ok


# Per joint: how its world rotation is fitted (see the module docstring). Bones aim from where forward
# kinematics put the joint at the observed child: chains do not accumulate length errors, and a bone
# whose start joint is missing still points at its end.
_RULES: Final = {
    "Hips": ("pelvis",),
    "Spine": ("triad", "neck", _Y, ("right_shoulder", "left_shoulder"), _X),
    "Neck": ("swing", "head", _Y),
    "Head": ("head",),
    "LeftShoulder": ("swing", "left_shoulder", _X),
    "RightShoulder": ("swing", "right_shoulder", -_X),
    "LeftArm": ("limb", "left_elbow", _X, ("left_elbow", "left_wrist"), _Z),
    "RightArm": ("limb", "right_elbow", -_X, ("right_elbow", "right_wrist"), _Z),
    "LeftForeArm": ("swing", "left_wrist", _X),
    "RightForeArm": ("swing", "right_wrist", -_X),
    "LeftUpLeg": ("limb", "left_knee", -_Y, ("left_knee", "left_ankle"), -_Z),
    "RightUpLeg": ("limb", "right_knee", -_Y, ("right_knee", "right_ankle"), -_Z),
    "LeftLeg": ("swing", "left_ankle", -_Y),
    "RightLeg": ("swing", "right_ankle", -_Y),
}
_TWIST_FALLBACK: Final = 0.1  # weight of the parent's frame in a limb's twist (a straight limb has no bend)
_HINGE_SIN: Final = np.sin(np.radians(20.0))  # bends beyond this angle set the twist alone (a pure hinge)


class PoseSolver:
    """Fits the rig's joint rotations to observed COCO-17 joints, frame by frame, holding what is missing.

    Stateful: successive :meth:`solve` calls continue one take (held rotations carry over).

    Args:
        rest: the person's rest pose (:class:`RestEstimator`), whose face shape the head fit uses.
        skeleton: the input joints' skeleton (COCO-17 names are looked up).

    Raises:
        InputError: the skeleton lacks a COCO-17 joint.
    """

    def __init__(self, rest: RestPose, skeleton: Skeleton = COCO17):
        self.idx = _coco_indices(skeleton)
        self.n_joints = skeleton.n_joints
        rig_of = {coco: _NAMES.index(rig) for rig, coco in COCO_OF_RIG.items()}
        self._rig_of_coco = np.array([rig_of[name] for name in skeleton.joints])
        self.set_rest(rest)
        self._last_local = np.tile(np.eye(3), (_K, 1, 1))
        self._last_root = np.zeros(3)

    def set_rest(self, rest: RestPose) -> None:
        """Use another rest pose from now on (a live stream refines it; held rotations are kept)."""
        self.rest = rest
        self._face_rest = np.array([rest.offsets[_NAMES.index(n)] for n in _FACE_RIG])
        at_rest, _ = forward_kinematics(np.zeros((1, 3)), np.tile(np.eye(3), (1, _K, 1, 1)), rest)
        self._torso_rest = at_rest[0, [_NAMES.index(n) for n in _TORSO_RIG]]

    def _hold(self, k: int, local: np.ndarray, ok: np.ndarray) -> np.ndarray:
        """``local`` where ``ok``, else the last good one (carried over from earlier calls)."""
        if not ok.all():
            last = np.maximum.accumulate(np.where(ok, np.arange(ok.size), -1))
            local = np.where((last >= 0)[:, None, None], local[np.maximum(last, 0)], self._last_local[k])
        if local.shape[0]:
            self._last_local[k] = local[-1]
        return local

    def solve(self, points: np.ndarray) -> Motion:
        """Solve T frames of one person.

        Args:
            points: (T, J, 4) [x, y, z, conf] joints in the solver frame (right-handed, Y up, metres;
                see :func:`capture.outputs.bvh.yup_from_world`); conf 0 marks a missing joint.

        Returns:
            The motion; joints with missing inputs hold their last rotation (``held``).

        Raises:
            ShapeError: not (T, J, 4).
        """
        points = _check_points(points, self.n_joints)
        p, ok = points[..., :3], points[..., 3] > 0
        n = points.shape[0]
        i = self.idx
        seen = {name: (p[:, j], ok[:, j]) for name, j in i.items()}
        weight = {name: np.where(ok[:, j], points[:, j, 3], 0.0) for name, j in i.items()}
        (lh, lh_ok), (rh, rh_ok) = seen["left_hip"], seen["right_hip"]
        (ls, ls_ok), (rs, rs_ok) = seen["left_shoulder"], seen["right_shoulder"]
        seen["neck"] = ((ls + rs) / 2, ls_ok & rs_ok)
        # The pelvis as part of a rigid torso (hips and shoulders): its rotation when a hip is missing;
        # the root is then placed so that the seen hip stays exact.
        torso_rot, torso_center, torso_ok = _kabsch(
            self._torso_rest, np.stack([seen[j][0] for j in _TORSO], 1), np.stack([weight[j] for j in _TORSO], 1)
        )
        off = self.rest.offsets
        torso_root = np.where(
            (lh_ok & ~rh_ok)[:, None],
            lh - torso_rot @ off[_NAMES.index("LeftUpLeg")],
            np.where((rh_ok & ~lh_ok)[:, None], rh - torso_rot @ off[_NAMES.index("RightUpLeg")], torso_center),
        )
        both = lh_ok & rh_ok
        root_seen = both | torso_ok
        root = np.where(both[:, None], (lh + rh) / 2, torso_root)
        last = np.maximum.accumulate(np.where(root_seen, np.arange(n), -1))
        root = np.where((last >= 0)[:, None], root[np.maximum(last, 0)], self._last_root)
        if n:
            self._last_root = root[-1].copy()
        head_rot, head_center, head_ok = _kabsch(
            self._face_rest, np.stack([seen[f][0] for f in _FACE], 1), np.stack([weight[f] for f in _FACE], 1)
        )
        seen["head"] = (head_center, head_ok)

        eye = np.broadcast_to(np.eye(3), (n, 3, 3))
        world = np.empty((n, _K, 3, 3))
        local = np.empty((n, _K, 3, 3))
        pos = np.empty((n, _K, 3))
        held = np.zeros((n, _K), dtype=bool)
        for k, joint in enumerate(RIG):
            if joint.parent < 0:
                parent, pos[:, k] = eye, root
            else:
                parent = world[:, joint.parent]
                pos[:, k] = pos[:, joint.parent] + parent @ off[k]
            rule = _RULES.get(joint.name)
            if rule is None:  # hands, feet, face points: no rotation of their own
                lk, good = eye, np.ones(n, dtype=bool)
            elif rule[0] == "swing":
                target, good = seen[rule[1]]
                lk, nonzero = _swing(np.einsum("tji,tj->ti", parent, target - pos[:, k]), rule[2])
                good = good & nonzero
            else:
                if rule[0] == "head":
                    wk, good = head_rot, head_ok
                elif rule[0] == "pelvis":  # hip line and spine, else the torso fit
                    neck, neck_ok = seen["neck"]
                    spine = neck - root
                    wk, good = _triad(lh - rh, spine, _X, _Y)
                    good = good & both & neck_ok
                    wk = np.where(good[:, None, None], wk, torso_rot)
                    good = good | torso_ok
                elif rule[0] == "triad":
                    (target, t_ok), ((a, a_ok), (b, b_ok)) = seen[rule[1]], (seen[rule[3][0]], seen[rule[3][1]])
                    wk, good = _triad(target - pos[:, k], b - a, rule[2], rule[4])
                    good = good & t_ok & a_ok & b_ok
                else:  # limb: the bone, twisted by the bend of the next bone (the parent's frame if straight)
                    (target, good), ((a, a_ok), (b, b_ok)) = seen[rule[1]], (seen[rule[3][0]], seen[rule[3][1]])
                    bone = target - pos[:, k]
                    ua, _ = _unit(bone)
                    c = b - a
                    c_perp = c - (c * ua).sum(-1, keepdims=True) * ua
                    sin_bend = np.where(a_ok & b_ok, _norm(c_perp) / np.maximum(_norm(c), 1e-12), 0.0)
                    bend = np.where((a_ok & b_ok)[:, None], c_perp / np.maximum(_norm(c), 1e-12)[:, None], 0.0)
                    fallback = _TWIST_FALLBACK * np.clip(1.0 - sin_bend / _HINGE_SIN, 0.0, 1.0) ** 2
                    wk, nonzero = _triad(bone, bend + fallback[:, None] * (parent @ rule[4]), rule[2], rule[4])
                    good = good & nonzero
                lk = np.swapaxes(parent, 1, 2) @ wk
            held[:, k] = ~good
            local[:, k] = self._hold(k, np.array(lk), good)
            world[:, k] = parent @ local[:, k]
        return Motion(root, local, held)
