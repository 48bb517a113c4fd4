"""3D pictorial structures (3DPS): each joint picked among 3D candidates by exact tree inference.

Belagiannis et al., "3D Pictorial Structures for Multiple Human Pose Estimation", CVPR 2014 §3
(TPAMI 2016) and Dong et al., "Fast and Robust Multi-Person 3D Pose Estimation from Multiple
Views", CVPR 2019 §3.3 (reference code zju3dv/mvpose) model a person as a tree-structured
conditional random field over its joints: a unary term per joint from the 2D evidence of every
view, a pairwise term per bone from a prior on its length. The MAP pose is found by max-product
belief propagation, exact on a tree.

Per matched group (one person's 2D joints in several views), this module builds, for every joint,
K candidate 3D positions:

1. the DLT triangulation (:func:`triangulation.dlt.triangulate_dlt`) of every pair of views and of
   every pair of the joint's 2D candidates in those views (where the input carries several per view,
   e.g. OpenPose peaks);
2. the all-view weighted DLT and the robust triangulation (:func:`triangulation.dlt.triangulate_robust`);
3. optionally (``grid_size`` > 1) a ``grid_size``^3 grid of spacing ``grid_step_m`` around the
   candidate of 1-2 with the lowest unary cost (mvpose searches a grid around the triangulated joint).
   Off by default: on synthetic data it changes nothing measurable, and on Shelf (real OpenPose
   detections, node with ``[fusion] filter = "none"``, frames 300-600) it lowered per-frame PCP from
   96.69 to 94.88 (3 cm; 94.85 at 1.5 cm), mostly actor 2's lower arms: a grid point
   can fit a wrong third view halfway (about 10 px in 3 views costs less than 0 px in 2 views and one
   truncated), and joints then move off or become valid where the exact pair was right.

Costs are negative log-likelihoods (so max-product is min-sum):

- unary, per view c that saw the joint: ``0.5 / sigma^2 * (cbar_c t^2 - max_m conf_cm (t^2 - min(r_cm^2, t^2)))``,
  where r_cm is the distance (px) of the candidate's projection to the view's m-th 2D candidate,
  t = ``truncate_px`` and cbar_c the view's largest confidence; with one 2D candidate this is the
  confidence-weighted truncated quadratic ``0.5 conf min(r^2, t^2) / sigma^2``, so one wrong view
  adds at most ``0.5 t^2 / sigma^2`` and cannot dominate. A candidate behind a camera that saw the
  joint gets that view's full truncated cost plus ``behind_cost`` times it again (its projection
  there is meaningless);
- pairwise, per bone (parent p, child j): ``0.5 prior_weight ((|X_p - X_j| - mean) / std)^2``
  with the population prior of :mod:`triangulation.limb_priors`, or, where the caller knows the
  person's own length (a track's estimate), that mean with ``own_std_m``.

Inference (:func:`min_sum_tree`) is dynamic programming from the leaves to the roots over (K, K)
cost matrices per bone, batched over persons and candidates in numpy, then back-tracking from the
roots; the only Python loop is over the tree's edges.
"""

from __future__ import annotations

from functools import lru_cache
from itertools import combinations
from typing import Final

import numpy as np

from core.errors import ShapeError
from triangulation.dlt import TriangulationResult, triangulate_dlt, triangulate_robust
from triangulation.limb_priors import LimbPriors, coco17_priors, tree_order

__all__ = ["min_sum_tree", "pictorial_pose", "triangulate_pictorial"]

_INVALID: Final = 1e9
"""Unary cost of a candidate that does not exist (padding); finite so sums never give NaN."""

_DEFAULT_PRIORS: Final[LimbPriors] = coco17_priors()


def min_sum_tree(
    unary: np.ndarray, pairwise: np.ndarray, parents: np.ndarray, order: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Exact minimum of a tree-structured energy by dynamic programming (max-product in -log space).

    Minimises, independently for each of G problems,
    ``E(k) = sum_j unary[j, k_j] + sum_{j: parents[j] >= 0} pairwise[j, k_{parents[j]}, k_j]``
    over the labels k (one of K per node): messages are passed from the leaves to the roots
    (``m_j(k_p) = min_k (pairwise[j, k_p, k] + unary[j, k] + sum of m_c(k) over j's children c)``),
    each root takes its best label and the others are read back from the stored argmins (Pearl 1988;
    Felzenszwalb & Huttenlocher 2005 §3 for pictorial structures). Ties go to the lowest label.

    Args:
        unary: (G, J, K) cost of each label of each node.
        pairwise: (G, J, K, K) cost of each (parent label, child label) of node j's edge to its
            parent; rows of roots are ignored.
        parents: (J,) int parent of each node, -1 for a root (a forest is fine).
        order: optional (J,) topological order of the nodes (parents first), e.g.
            :attr:`LimbPriors.order`; computed (and ``parents`` checked) when omitted.

    Returns:
        labels: (G, J) int64 minimising labels.
        cost: (G,) the minimum energy.

    Raises:
        ShapeError: inconsistent shapes, or ``parents`` is not a forest.

    Example:
        >>> u = np.array([[[0.0, 1.0], [1.0, 0.0]]])  # two nodes, two labels each
        >>> pw = np.zeros((1, 2, 2, 2)); pw[0, 1] = [[0.0, 5.0], [5.0, 0.0]]  # labels must agree
        >>> labels, cost = min_sum_tree(u, pw, np.array([-1, 0]))
        >>> labels.tolist(), cost.tolist()
        ([[0, 0]], [1.0])
    """
    if unary.ndim != 3:
        raise ShapeError(f"unary must be (G, J, K); got {unary.shape}")
    G, J, K = unary.shape
    if pairwise.shape != (G, J, K, K):
        raise ShapeError(f"pairwise must be (G, J, K, K) = ({G}, {J}, {K}, {K}); got {pairwise.shape}")
    if np.shape(parents) != (J,):
        raise ShapeError(f"parents must be ({J},); got {np.shape(parents)}")
    order = tree_order(parents) if order is None else order
    belief = np.array(unary, dtype=np.float64)  # unary plus the messages of the children received so far
    best_child = np.zeros((G, J, K), dtype=np.int64)  # argmin over the child's label, per parent label
    for j in order[::-1]:  # children before parents
        p = parents[j]
        if p < 0:
            continue
        m = pairwise[:, j] + belief[:, j, None, :]  # (G, K_parent, K_child)
        best_child[:, j] = np.argmin(m, axis=2)
        belief[:, p] += m.min(axis=2)
    labels = np.zeros((G, J), dtype=np.int64)
    cost = np.zeros(G)
    g = np.arange(G)
    for j in order:
        p = parents[j]
        if p < 0:
            labels[:, j] = np.argmin(belief[:, j], axis=1)
            cost += belief[g, j, labels[:, j]]
        else:
            labels[:, j] = best_child[g, j, labels[:, p]]
    return labels, cost


def _grid_offsets(size: int, step_m: float) -> np.ndarray:
    """(size^3 - 1, 3) offsets of a centred cubic grid without its centre, metres (size odd)."""
    r = (np.arange(size) - (size - 1) / 2) * step_m
    g = np.stack(np.meshgrid(r, r, r, indexing="ij"), axis=-1).reshape(-1, 3)
    return g[np.any(g != 0, axis=1)]


def _unary(
    P: np.ndarray, X: np.ndarray, obs: np.ndarray, seen_conf: np.ndarray, sigma_px: float, t_px: float, behind: float
) -> np.ndarray:
    """(N, K) unary cost of candidates X (N, K, 3) against obs (C, N, M, 2) with seen_conf (C, N, M)."""
    N, K = X.shape[:2]
    proj = (X.reshape(1, N * K, 3) @ P[:, :, :3].transpose(0, 2, 1)).reshape(len(P), N, K, 3) + P[:, None, None, :, 3]
    depth = proj[..., 2]
    front = depth > 1e-9
    inv = 1.0 / np.where(front, depth, 1.0)
    du = (proj[..., 0] * inv)[..., None] - obs[:, :, None, :, 0]  # (C, N, K, M)
    dv = (proj[..., 1] * inv)[..., None] - obs[:, :, None, :, 1]
    t2 = t_px * t_px
    r2 = np.where(front[..., None], np.minimum(du * du + dv * dv, t2), t2)
    reward = np.max(seen_conf[:, :, None, :] * (t2 - r2), axis=3)  # (C, N, K)
    cbar = seen_conf.max(axis=2)  # (C, N)
    cost = cbar[:, :, None] * t2 - reward + behind * t2 * ((cbar[:, :, None] > 0) & ~front)
    return 0.5 / (sigma_px * sigma_px) * cost.sum(axis=0)


@lru_cache(maxsize=64)
def _pair_indices(C: int, M: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Views (a, b), a < b, and 2D candidates (m_a, m_b) of every pair candidate, each (C(C-1)/2 M^2,)."""
    pairs = np.array(list(combinations(range(C), 2)), dtype=np.int64).reshape(-1, 2)
    mm = np.array([(a, b) for a in range(M) for b in range(M)], dtype=np.int64)
    out = (
        np.repeat(pairs[:, 0], M * M),
        np.repeat(pairs[:, 1], M * M),
        np.tile(mm[:, 0], len(pairs)),
        np.tile(mm[:, 1], len(pairs)),
    )
    for a in out:
        a.setflags(write=False)
    return out


def _base_candidates(
    P: np.ndarray, obs: np.ndarray, seen_conf: np.ndarray, min_conf: float, max_reproj_px: float, min_views: int
) -> tuple[np.ndarray, np.ndarray]:
    """Triangulated candidates: every view pair x 2D candidate pair, all-view DLT, robust DLT.

    Returns (N, Kb, 3) positions (0 where invalid) and (N, Kb) validity, Kb = C(C-1)/2 M^2 + 2.
    """
    C, N, M, _ = obs.shape
    ia, ib, ma, mb = _pair_indices(C, M)
    Q = len(ia)
    q = np.arange(Q)
    wa, wb = seen_conf[ia, :, ma], seen_conf[ib, :, mb]  # (Q, N)
    ok = (wa > 0) & (wb > 0)
    obs_q = np.zeros((C, Q, N, 2))
    W = np.zeros((C, Q, N))
    obs_q[ia, q], obs_q[ib, q] = obs[ia, :, ma], obs[ib, :, mb]
    W[ia, q], W[ib, q] = np.where(ok, wa, 0.0), np.where(ok, wb, 0.0)
    X_pair = triangulate_dlt(P, obs_q.reshape(C, Q * N, 2), W.reshape(C, Q * N)).reshape(Q, N, 3)
    # The most confident 2D candidate of each view for the all-view triangulations.
    top = np.argmax(seen_conf, axis=2)  # (C, N)
    obs_top = np.take_along_axis(obs, top[:, :, None, None], axis=2)[:, :, 0]  # (C, N, 2)
    conf_top = np.take_along_axis(seen_conf, top[:, :, None], axis=2)[:, :, 0]  # (C, N)
    X_all = triangulate_dlt(P, obs_top, conf_top)
    rob = triangulate_robust(P, obs_top, conf_top, min_conf, max_reproj_px, min_views)
    n_seen = (conf_top > 0).sum(axis=0)
    X = np.concatenate([X_pair.transpose(1, 0, 2), X_all[:, None], rob.points[:, None]], axis=1)
    valid = np.concatenate([ok.T, (n_seen >= 2)[:, None], (rob.conf > 0)[:, None]], axis=1)
    return np.where(valid[..., None], X, 0.0), valid


def triangulate_pictorial(
    P: np.ndarray,
    points_px: np.ndarray,
    conf: np.ndarray,
    min_conf: float = 0.3,
    max_reproj_px: float = 15.0,
    min_views: int = 2,
    *,
    priors: LimbPriors | None = None,
    bone_lengths: np.ndarray | None = None,
    sigma_px: float = 6.0,
    truncate_px: float = 20.0,
    behind_cost: float = 1.0,
    grid_size: int = 1,
    grid_step_m: float = 0.03,
    prior_weight: float = 1.0,
    own_std_m: float = 0.02,
) -> TriangulationResult:
    """3D pictorial structures for G groups at once, a drop-in for :func:`triangulate_robust`.

    The N = G x J points are G persons' J joints, person-major (as ``capture.pipeline``
    lays groups out for the robust triangulation). Each person's joints are chosen jointly among
    their candidates (module docstring; Belagiannis et al. 2014 §3, Dong et al. 2019 §3.3).

    Args:
        P: (C, 3, 4) projection matrices for undistorted pixels.
        points_px: (C, N, 2) undistorted pixels, or (C, N, M, 2) with M 2D candidates per view and
            joint (e.g. OpenPose peaks).
        conf: (C, N) or (C, N, M) 2D confidences in [0, 1]; 0 means unseen.
        min_conf: 2D observations below this confidence are not used.
        max_reproj_px: a view supports the chosen point if it reprojects within this, pixels.
        min_views: smallest number of supporting views of a valid joint (>= 2).
        priors: the kinematic tree and population bone priors (default :func:`coco17_priors`); J is
            its skeleton's joint count.
        bone_lengths: optional (G, J) the persons' own length of each joint's bone to its tree
            parent, metres (:func:`triangulation.limb_priors.tree_bone_lengths` of a track's pose);
            0 = unknown (the population prior is used).
        sigma_px: scale of the 2D error in the unary cost, pixels.
        truncate_px: 2D distance beyond which a view's cost stops growing, pixels.
        behind_cost: extra cost of a candidate behind a camera that saw the joint, in units of one
            view's truncated cost.
        grid_size: odd number of grid points per axis around the best triangulated candidate (1: no grid).
        grid_step_m: grid spacing, metres.
        prior_weight: weight of the bone-length terms against the 2D evidence.
        own_std_m: standard deviation of the bone-length prior where ``bone_lengths`` is given, metres.

    Returns:
        A :class:`~triangulation.dlt.TriangulationResult`: ``points`` (N, 3) metres (0 where
        missing), ``conf`` (N,) mean confidence of the supporting views (0 = missing: fewer than
        ``min_views`` views saw the joint or support the chosen point), ``used`` (C, N) the
        supporting views, ``errors`` (C, N) their reprojection errors in pixels (to the nearest 2D
        candidate).

    Raises:
        ShapeError: inconsistent shapes, N not a multiple of J, ``min_views`` < 2 or an even or
            non-positive ``grid_size``.
    """
    priors = _DEFAULT_PRIORS if priors is None else priors
    J = priors.skeleton.n_joints
    C = P.shape[0]
    if P.shape != (C, 3, 4):
        raise ShapeError(f"P must be (C, 3, 4); got {P.shape}")
    if points_px.ndim == 3:
        points_px, conf = points_px[:, :, None, :], conf[:, :, None]
    if points_px.ndim != 4 or points_px.shape[0] != C or points_px.shape[3] != 2:
        raise ShapeError(f"points_px must be (C, N, 2) or (C, N, M, 2) with C = {C}; got {points_px.shape}")
    N, M = points_px.shape[1:3]
    if conf.shape != (C, N, M):
        raise ShapeError(f"conf must be (C, N) or (C, N, M) matching points_px; got {conf.shape}")
    if N % J:
        raise ShapeError(f"N = {N} points is not a whole number of {J}-joint persons")
    if min_views < 2:
        raise ShapeError(f"min_views must be >= 2; got {min_views}")
    if grid_size < 1 or grid_size % 2 == 0:
        raise ShapeError(f"grid_size must be odd and positive; got {grid_size}")
    G = N // J
    if bone_lengths is not None and bone_lengths.shape != (G, J):
        raise ShapeError(f"bone_lengths must be (G, J) = ({G}, {J}); got {bone_lengths.shape}")
    seen_conf = np.where(conf >= min_conf, conf, 0.0)
    seen = seen_conf.max(axis=2) > 0  # (C, N)
    joint_ok = seen.sum(axis=0) >= min_views  # (N,)

    # Candidates and their unary costs.
    X_base, ok_base = _base_candidates(P, points_px, seen_conf, min_conf, max_reproj_px, min_views)
    U_base = np.where(ok_base, _unary(P, X_base, points_px, seen_conf, sigma_px, truncate_px, behind_cost), _INVALID)
    center = X_base[np.arange(N), np.argmin(U_base, axis=1)]  # (N, 3)
    X_grid = center[:, None, :] + _grid_offsets(grid_size, grid_step_m)[None]  # (N, Kg, 3)
    U_grid = _unary(P, X_grid, points_px, seen_conf, sigma_px, truncate_px, behind_cost)
    X = np.concatenate([X_base, X_grid], axis=1)  # (N, K, 3)
    U = np.concatenate([U_base, U_grid], axis=1)
    U = np.where(joint_ok[:, None], U, 0.0)  # a missing joint: free, cut from the tree below
    K = X.shape[1]
    X, U, ok = X.reshape(G, J, K, 3), U.reshape(G, J, K), joint_ok.reshape(G, J)

    # Bone-length terms on the tree's edges, (G, J, K_parent, K_child): 0.5 w ((|X_p - X_j| - mean) / std)^2,
    # computed in place as (a |X_p - X_j| - b)^2 with a = sqrt(0.5 w) / std, b = a mean (0 on cut edges).
    par = np.maximum(priors.parents, 0)
    mean = np.broadcast_to(priors.mean_m, (G, J))
    std = np.broadcast_to(priors.std_m, (G, J))
    if bone_lengths is not None:
        own = bone_lengths > 0
        mean, std = np.where(own, bone_lengths, mean), np.where(own, own_std_m, std)
    edge_on = ok & ok[:, par] & (priors.parents >= 0)
    a = np.where(edge_on, np.sqrt(0.5 * prior_weight) / std, 0.0)[:, :, None, None]
    b = a * mean[:, :, None, None]
    sq = np.einsum("gjki,gjki->gjk", X, X)  # |X|^2, (G, J, K)
    pairwise = X[:, par] @ X.transpose(0, 1, 3, 2)  # dot products X_p . X_j, (G, J, K_parent, K_child)
    pairwise *= -2.0
    pairwise += sq[:, par, :, None]
    pairwise += sq[:, :, None, :]
    np.maximum(pairwise, 0.0, out=pairwise)
    np.sqrt(pairwise, out=pairwise)  # bone lengths
    pairwise *= a
    pairwise -= b
    np.square(pairwise, out=pairwise)

    labels, _ = min_sum_tree(U, pairwise, priors.parents, priors.order)
    best = np.take_along_axis(X, labels[:, :, None, None], axis=2)[:, :, 0].reshape(N, 3)
    return _support(P, best, points_px, seen_conf, joint_ok, max_reproj_px, min_views)


def _support(
    P: np.ndarray,
    X: np.ndarray,
    obs: np.ndarray,
    seen_conf: np.ndarray,
    joint_ok: np.ndarray,
    max_reproj_px: float,
    min_views: int,
) -> TriangulationResult:
    """Views supporting each chosen point (in front, within ``max_reproj_px`` of a 2D candidate)."""
    proj = np.einsum("cij,nj->cni", P[:, :, :3], X) + P[:, None, :, 3]  # (C, N, 3)
    front = proj[..., 2] > 1e-9
    uv = proj[..., :2] / np.where(front, proj[..., 2], 1.0)[..., None]
    dist = np.linalg.norm(uv[:, :, None, :] - obs, axis=-1)  # (C, N, M)
    dist = np.where(seen_conf > 0, dist, np.inf)
    m = np.argmin(dist, axis=2)
    err = np.take_along_axis(dist, m[..., None], axis=2)[..., 0]
    c = np.take_along_axis(seen_conf, m[..., None], axis=2)[..., 0]
    used = front & (err <= max_reproj_px) & joint_ok[None, :]
    n_used = used.sum(axis=0)
    valid = n_used >= min_views
    used &= valid[None, :]
    return TriangulationResult(
        points=np.where(valid[:, None], X, 0.0),
        conf=np.where(valid, np.where(used, c, 0.0).sum(axis=0) / np.maximum(n_used, 1), 0.0),
        used=used,
        errors=np.where(used, err, 0.0),
    )


def pictorial_pose(
    P: np.ndarray,
    obs_px: np.ndarray,
    conf: np.ndarray,
    *,
    bone_lengths: np.ndarray | None = None,
    **kwargs,
) -> np.ndarray:
    """3D pictorial structures for one person (Belagiannis et al. 2014; Dong et al. 2019).

    Args:
        P: (C, 3, 4) projection matrices for undistorted pixels.
        obs_px: (C, J, 2) undistorted pixels of the person's joints, or (C, J, M, 2) with M 2D
            candidates per view and joint.
        conf: (C, J) or (C, J, M) confidences; 0 = unseen.
        bone_lengths: optional (J,) the person's own bone lengths to each joint's tree parent,
            metres; 0 = unknown.
        **kwargs: the options of :func:`triangulate_pictorial` (``min_conf``, ``priors``, ...).

    Returns:
        (J, 4) [x, y, z, conf], metres in P's world frame; conf 0 = missing joint (coordinates 0).

    Raises:
        ShapeError: as :func:`triangulate_pictorial`.
    """
    bl = None if bone_lengths is None else np.asarray(bone_lengths, dtype=np.float64)[None]
    res = triangulate_pictorial(P, obs_px, conf, bone_lengths=bl, **kwargs)
    return np.concatenate([res.points, res.conf[:, None]], axis=1)
