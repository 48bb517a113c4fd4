"""Kinematic trees with bone-length priors for 3D pictorial structures.

A 3D pictorial structure (Belagiannis et al., CVPR 2014 §3; Dong et al., CVPR 2019 §3.3) scores a
pose by its joints' 2D evidence and by the lengths of the bones of a *tree* over the joints, so that
the maximum-a-posteriori pose is found exactly by dynamic programming. COCO-17's drawn limbs
(:data:`core.skeleton.COCO17`) are not a tree: they hold the torso cycle (both hips, both shoulders)
and leave the head (nose, eyes, ears) unconnected to the body. :func:`coco17_priors` therefore
defines its own spanning tree, rooted at the left hip::

    left_hip -> right_hip -> right_knee -> right_ankle
             |           -> right_shoulder -> right_elbow -> right_wrist
             -> left_knee -> left_ankle
             -> left_shoulder -> left_elbow -> left_wrist
                              -> nose -> left_eye -> left_ear
                                      -> right_eye -> right_ear

Population means are fractions of the stature H from Drillis & Contini (1966), *Body segment
parameters*, Tech. Rep. 1166-03, NYU School of Engineering (as tabulated in Winter, *Biomechanics
and Motor Control of Human Movement*, 4th ed., Fig. 4.1): upper arm 0.186 H, forearm 0.146 H, thigh
0.245 H, shank 0.246 H, shoulder above hip 0.288 H (0.818 H - 0.530 H). At H = 1.70 m they agree
within 3 cm with the limb means mvpose measured on Shelf (zju3dv/mvpose, ``load_distribution``:
upper arm 0.29-0.30 m, forearm 0.245-0.25 m, thigh 0.39-0.40 m, shank 0.38 m). The hip-to-hip
distance of the hip keypoints (about 0.20 m, hip joint centres; Bell, Pedersen & Brand 1990, J.
Biomech. 23(6)) and the head's offsets (nose-shoulder about 0.27 m, nose-eye 0.04 m, eye-ear 0.085 m,
from the same stature fractions: eye level 0.936 H, shoulder 0.818 H, biacromial breadth 0.259 H)
are coarser, and their standard deviations larger. The standard deviations (4-6 cm on the limbs) are
wider than the population spread of the true segment lengths (about 4 % of H, 1-2 cm) because 2D
keypoints do not sit on the joint centres; mvpose uses twice its measured Shelf spread (7-8 cm).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from core.errors import ShapeError
from core.skeleton import COCO17, Skeleton

__all__ = ["LimbPriors", "coco17_priors", "limb_lengths_to_tree", "tree_bone_lengths", "tree_order"]

# (child, parent, mean as a fraction of stature, std in metres); the root (left_hip) has no row.
_COCO17_TREE: tuple[tuple[str, str, float, float], ...] = (
    ("right_hip", "left_hip", 0.118, 0.05),
    ("left_knee", "left_hip", 0.245, 0.05),
    ("left_ankle", "left_knee", 0.246, 0.05),
    ("right_knee", "right_hip", 0.245, 0.05),
    ("right_ankle", "right_knee", 0.246, 0.05),
    ("left_shoulder", "left_hip", 0.288, 0.06),
    ("right_shoulder", "right_hip", 0.288, 0.06),
    ("left_elbow", "left_shoulder", 0.186, 0.05),
    ("left_wrist", "left_elbow", 0.146, 0.04),
    ("right_elbow", "right_shoulder", 0.186, 0.05),
    ("right_wrist", "right_elbow", 0.146, 0.04),
    ("nose", "left_shoulder", 0.160, 0.06),
    ("left_eye", "nose", 0.025, 0.02),
    ("right_eye", "nose", 0.025, 0.02),
    ("left_ear", "left_eye", 0.050, 0.025),
    ("right_ear", "right_eye", 0.050, 0.025),
)


@dataclass(frozen=True, slots=True)
class LimbPriors:
    """A kinematic tree over a skeleton's joints with a Gaussian prior on each bone's length.

    Bone ``j`` joins joint ``j`` to its parent ``parents[j]``; roots have parent -1 and no bone.

    Attributes:
        skeleton: the skeleton whose joints the tree spans (J joints).
        parents: (J,) int64 parent index of each joint, -1 for a root.
        mean_m: (J,) mean length of each joint's bone to its parent, metres (0 for roots).
        std_m: (J,) its standard deviation, metres (1 for roots, unused).
        order: (J,) int64 joints in topological order (every parent before its children), derived.

    Raises:
        ShapeError: arrays not (J,), a parent out of range, a cycle, or a non-positive std.
    """

    skeleton: Skeleton
    parents: np.ndarray
    mean_m: np.ndarray
    std_m: np.ndarray
    order: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        J = self.skeleton.n_joints
        parents = np.asarray(self.parents, dtype=np.int64)
        mean = np.asarray(self.mean_m, dtype=np.float64)
        std = np.asarray(self.std_m, dtype=np.float64)
        if parents.shape != (J,) or mean.shape != (J,) or std.shape != (J,):
            raise ShapeError(
                f"parents, mean_m and std_m must be ({J},); got {parents.shape}, {mean.shape}, {std.shape}"
            )
        if not (std > 0).all():
            raise ShapeError("std_m must be positive")
        order = tree_order(parents)
        for name, arr in (("parents", parents), ("order", order), ("mean_m", mean), ("std_m", std)):
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)


def tree_order(parents: np.ndarray) -> np.ndarray:
    """Topological order of a forest given by parent indices (parents before children).

    Args:
        parents: (J,) int parent index of each node, -1 for a root.

    Returns:
        (J,) int64 node indices, roots first, then breadth first.

    Raises:
        ShapeError: a parent index out of range, or a cycle (some node never reached from a root).

    Example:
        >>> tree_order(np.array([2, -1, 1])).tolist()
        [1, 2, 0]
    """
    parents = np.asarray(parents, dtype=np.int64)
    J = parents.shape[0]
    if parents.ndim != 1 or ((parents < -1) | (parents >= J)).any():
        raise ShapeError(f"parents must be (J,) indices in [-1, J); got {parents.tolist()}")
    order = [int(j) for j in np.nonzero(parents < 0)[0]]
    i = 0
    while i < len(order):
        order += [int(c) for c in np.nonzero(parents == order[i])[0]]
        i += 1
    if len(order) != J:
        raise ShapeError(f"parents {parents.tolist()} is not a forest (it has a cycle)")
    return np.array(order, dtype=np.int64)


def coco17_priors(stature_m: float = 1.70, skeleton: Skeleton = COCO17) -> LimbPriors:
    """Population bone-length priors on the COCO-17 spanning tree (see the module docstring).

    Args:
        stature_m: the stature H the limb means scale with, metres (1.70 m: adult average).
        skeleton: a skeleton with the COCO-17 joint names (looked up by name).

    Returns:
        The :class:`LimbPriors`, rooted at ``left_hip``.

    Raises:
        KeyError: the skeleton lacks a COCO-17 joint name.
        ShapeError: ``stature_m`` is not positive.

    Example:
        >>> p = coco17_priors()
        >>> i = COCO17.index("left_wrist")
        >>> COCO17.joints[p.parents[i]], round(float(p.mean_m[i]), 3)
        ('left_elbow', 0.248)
    """
    if not stature_m > 0:
        raise ShapeError(f"stature_m must be positive; got {stature_m}")
    J = skeleton.n_joints
    parents = np.full(J, -1, dtype=np.int64)
    mean, std = np.zeros(J), np.ones(J)
    for child, parent, frac, sd in _COCO17_TREE:
        c = skeleton.index(child)
        parents[c], mean[c], std[c] = skeleton.index(parent), frac * stature_m, sd
    return LimbPriors(skeleton, parents, mean, std)


def tree_bone_lengths(poses: np.ndarray, priors: LimbPriors) -> np.ndarray:
    """Lengths of the tree's bones in 3D poses (e.g. a track's pose), metres.

    Args:
        poses: (G, J, 4) [x, y, z, conf] poses, metres; conf 0 = missing joint.
        priors: the tree.

    Returns:
        (G, J) length of each joint's bone to its parent; 0 for roots and where either joint is
        missing (0 means "unknown" to :func:`triangulation.pictorial.triangulate_pictorial`).

    Raises:
        ShapeError: ``poses`` is not (G, J, 4).
    """
    J = priors.skeleton.n_joints
    if poses.ndim != 3 or poses.shape[1:] != (J, 4):
        raise ShapeError(f"poses must be (G, {J}, 4); got {poses.shape}")
    par = np.maximum(priors.parents, 0)
    length = np.linalg.norm(poses[:, :, :3] - poses[:, par, :3], axis=-1)
    ok = (priors.parents >= 0) & (poses[:, :, 3] > 0) & (poses[:, par, 3] > 0)
    return np.where(ok, length, 0.0)


def limb_lengths_to_tree(lengths: np.ndarray, limbs: tuple[tuple[int, int], ...], priors: LimbPriors) -> np.ndarray:
    """Map per-limb lengths (e.g. a :class:`fusion.bones.BoneModel` estimate) onto the tree's bones.

    Args:
        lengths: (G, L) length of each limb, metres; NaN, inf or <= 0 means unknown.
        limbs: the L (a, b) joint index pairs the lengths belong to, e.g. ``skeleton.limbs``.
        priors: the tree.

    Returns:
        (G, J) length of each joint's bone to its parent, metres; 0 where the tree's bone is not
        among ``limbs`` (e.g. nose-shoulder for COCO-17) or its length is unknown.

    Raises:
        ShapeError: ``lengths`` is not (G, L).
    """
    if lengths.ndim != 2 or lengths.shape[1] != len(limbs):
        raise ShapeError(f"lengths must be (G, {len(limbs)}); got {lengths.shape}")
    out = np.zeros((lengths.shape[0], priors.skeleton.n_joints))
    index = {frozenset(ab): k for k, ab in enumerate(limbs)}
    for j, p in enumerate(priors.parents):
        k = index.get(frozenset((j, int(p))))
        if p >= 0 and k is not None:
            v = lengths[:, k]
            out[:, j] = np.where(np.isfinite(v) & (v > 0), v, 0.0)
    return out
