"""Multi-way matching of detections across all views at once, with cycle consistency.

Pairwise matching decides each view pair alone, so its matches may disagree around a cycle of
views (a~b and b~c but not a~c). Multi-way matching finds one cycle-consistent assignment for all
views: a consistent assignment matrix is low-rank (rank = number of people), so the pairwise
affinity is denoised by a convex relaxation with a nuclear-norm penalty, solved by ADMM with
singular-value thresholding (Wang, Zhou & Daniilidis, "Multi-Image Semantic Matching by Mining
Consistent Features", CVPR 2018, eq. 5-9; Dong et al., "Fast and Robust Multi-Person 3D Pose
Estimation from Multiple Views", CVPR 2019, §3.2 and mvpose's ``matchSVT``). The relaxed matrix is
rounded to a partial permutation (at most one detection per view per person) and the groups are its
connected components.

Runs: :class:`MultiwayMatcher` first tries the fast path (mutual-best pairwise matches); when they
are already cycle-consistent (:func:`is_cycle_consistent`) their groups are returned, otherwise the
SVT relaxation runs.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import numpy as np

from calibration.camera import CameraRig
from core.errors import ShapeError
from matching.affinity import AffinityConfig, frame_affinity, stack_fundamentals
from matching.epipolar import group_by_affinity

__all__ = [
    "MultiwayMatcher",
    "SVTResult",
    "groups_from_matches",
    "is_cycle_consistent",
    "match_svt",
    "pairwise_matches",
    "round_to_matches",
]


class SVTResult(NamedTuple):
    """Result of :func:`match_svt`.

    Attributes:
        X: (N, N) symmetric relaxed assignment matrix in [0, 1], 1 on the diagonal, 0 within a view.
        n_iter: ADMM iterations run.
        converged: both residuals fell below the tolerance.
    """

    X: np.ndarray
    n_iter: int
    converged: bool


def _segments(view_of: np.ndarray, n_views: int) -> tuple[np.ndarray, int]:
    """(N,) slot of each item within its view, and the largest view size."""
    counts = np.bincount(view_of, minlength=n_views)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return np.arange(view_of.size) - starts[view_of], int(counts.max()) if counts.size else 0


def _project_rows_capped_simplex(Y: np.ndarray) -> np.ndarray:
    """Project every row segment onto {x >= 0, sum x <= 1} (Euclidean; Duchi et al., ICML 2008).

    Args:
        Y: (M, C, w) rows split into C segments of w entries.

    Returns:
        (M, C, w) projection: clipped at 0, and where the clipped sum exceeds 1, ``max(y - theta, 0)``
        with ``theta = max_k (sum of the k largest - 1) / k``.
    """
    Y = np.maximum(Y, 0.0)
    if Y.shape[-1] == 1:
        return np.minimum(Y, 1.0)
    over = Y.sum(axis=-1) > 1.0
    if not over.any():
        return Y
    seg = Y[over]  # (K, w) segments to project onto the simplex
    u = -np.sort(-seg, axis=-1)
    theta = ((np.cumsum(u, axis=-1) - 1.0) / np.arange(1, Y.shape[-1] + 1)).max(axis=-1, keepdims=True)
    Y[over] = np.maximum(seg - theta, 0.0)
    return Y


def _project_doubly_substochastic(X: np.ndarray, n_views: int, width: int) -> np.ndarray:
    """Approximate projection of every view-pair block onto doubly substochastic matrices.

    Alternates row and column projections onto capped simplices with Dykstra-style corrections,
    all blocks at once (mvpose's ``myproj2dpam``: at most 10 rounds, stop at a mean change below 1e-2).

    Args:
        X: (M, M) matrix in the padded layout, M = n_views * width.
        n_views: number of views C.
        width: slots per view w.

    Returns:
        (M, M) projection.
    """
    m = X.shape[0]
    X0 = X
    inc = np.zeros_like(X)
    for _ in range(10):
        A = X0 + inc
        X1 = _project_rows_capped_simplex(A.reshape(m, n_views, width)).reshape(m, m)
        B = X0 + X1 - A
        X2 = _project_rows_capped_simplex(B.T.reshape(m, n_views, width)).reshape(m, m).T
        inc = X2 - B
        change = np.abs(X2 - X).mean()
        X = X2
        if change < 1e-2:
            break
    return X


def _svt_symmetric(M: np.ndarray, tau: float) -> np.ndarray:
    """Singular-value soft thresholding of a symmetric matrix (Cai, Candes & Shen 2010).

    The singular values of a symmetric matrix are its eigenvalues' magnitudes, so
    ``Q = sum over |lambda| > tau of sign(lambda) (|lambda| - tau) u u^T`` from one ``eigh``.

    Args:
        M: (N, N) symmetric matrix.
        tau: threshold.

    Returns:
        (N, N) thresholded matrix.
    """
    evals, evecs = np.linalg.eigh(M)
    shrunk = np.sign(evals) * np.maximum(np.abs(evals) - tau, 0.0)
    keep = shrunk != 0.0
    return (evecs[:, keep] * shrunk[keep]) @ evecs[:, keep].T


def match_svt(
    affinity: np.ndarray,
    dims: np.ndarray | list[int],
    alpha: float = 0.5,
    lam: float = 50.0,
    mu: float = 64.0,
    max_iter: int = 500,
    tol: float = 5e-4,
    dual_stochastic: bool = True,
    stable_iters: int = 0,
    stable_tol: float = 5e-2,
) -> SVTResult:
    """Cycle-consistent relaxed matching by nuclear-norm minimisation with ADMM (Wang et al. 2018).

    Solves ``min_X <alpha - S, X> + lam ||X||_*`` subject to ``X`` symmetric, in [0, 1], identity
    diagonal, zero same-view blocks and (with ``dual_stochastic``) doubly substochastic view-pair
    blocks, by ADMM over the split ``X = Q``: ``Q`` by singular-value soft thresholding of
    ``X + Y / mu`` at ``lam / mu`` (the matrix is symmetric, so an eigendecomposition), ``X`` by the
    closed form and the projections, the dual ``Y += mu (X - Q)``, with residual balancing of
    ``mu``. Defaults are mvpose's ``matchSVT``; ``alpha`` is the affinity above which a pair is
    rewarded.

    Args:
        affinity: (N, N) affinity in [0, 1] of items stacked in view order (diagonal ignored).
        dims: (C,) number of items of each view, summing to N (mvpose's ``dimGroup`` is its cumulative sum).
        alpha: affinity threshold of the linear term.
        lam: nuclear-norm weight.
        mu: initial ADMM penalty.
        max_iter: most iterations.
        tol: primal and dual residual (Frobenius norm / N) below which it stops.
        dual_stochastic: project view-pair blocks onto doubly substochastic matrices each iteration.
        stable_iters: early stop once ``X > 0.5`` has not changed for this many iterations and both
            residuals are below ``stable_tol`` (0: run to ``tol``).
        stable_tol: residual bound of the early stop.

    Returns:
        The relaxed matrix, the iterations run and whether it converged.

    Raises:
        ShapeError: ``affinity`` not square or ``dims`` not summing to N.
    """
    S = np.array(affinity, dtype=np.float64)
    n = S.shape[0]
    if S.ndim != 2 or S.shape != (n, n):
        raise ShapeError(f"affinity must be (N, N); got {S.shape}")
    counts = np.asarray(dims, dtype=np.int64)
    if counts.ndim != 1 or counts.sum() != n or (counts < 0).any():
        raise ShapeError(f"dims must give per-view counts summing to N={n}; got {counts.tolist()}")
    if n == 0:
        return SVTResult(np.zeros((0, 0)), 0, True)
    # Padded layout: view c's items in slots [c * w, c * w + P_c) of M = C * w, so that the view-pair
    # blocks are reshapes. Padding rows and columns stay 0.
    n_views, width = counts.size, int(counts.max())
    m = n_views * width
    view_of = np.repeat(np.arange(n_views), counts)
    slot, _ = _segments(view_of, n_views)
    pos = view_of * width + slot  # (N,) padded index of each item
    valid = np.zeros(m, dtype=bool)
    valid[pos] = True
    view_p = np.repeat(np.arange(n_views), width)
    forbid = (view_p[:, None] == view_p[None, :]) | ~(valid[:, None] & valid[None, :])
    allowed = (~forbid).astype(np.float64)
    diag = np.zeros((m, m))
    diag[pos, pos] = 1.0
    np.fill_diagonal(S, 0.0)
    S = 0.5 * (S + S.T)
    S_p = np.zeros((m, m))
    S_p[np.ix_(pos, pos)] = S
    W = np.where(forbid, 0.0, alpha - S_p)
    X = S_p
    Y = np.zeros_like(S_p)
    stable_for, converged, n_iter = 0, False, 0
    binary = X > 0.5
    while n_iter < max_iter:
        n_iter += 1
        X_prev = X
        Q = _svt_symmetric(X + Y / mu, lam / mu)
        X = np.maximum(np.clip(Q - (W + Y) / mu, 0.0, 1.0) * allowed, diag)
        if dual_stochastic:
            X = np.maximum(_project_doubly_substochastic(X, n_views, width) * allowed, diag)
        X = 0.5 * (X + X.T)
        Y = Y + mu * (X - Q)
        p_res = np.linalg.norm(X - Q) / n
        d_res = mu * np.linalg.norm(X - X_prev) / n
        if p_res < tol and d_res < tol:
            converged = True
            break
        if stable_iters:
            new_binary = X > 0.5
            stable_for = stable_for + 1 if np.array_equal(new_binary, binary) else 0
            binary = new_binary
            if stable_for >= stable_iters and max(p_res, d_res) < stable_tol:
                break
        if p_res > 10 * d_res:
            mu *= 2.0
        elif d_res > 10 * p_res:
            mu /= 2.0
    X = 0.5 * (X + X.T)
    return SVTResult(X[np.ix_(pos, pos)], n_iter, converged)


def pairwise_matches(
    affinity: np.ndarray,
    view_of: np.ndarray,
    threshold: float = 0.5,
    method: Literal["mutual", "hungarian"] = "mutual",
) -> np.ndarray:
    """Match each pair of views on its own: a partial permutation per view pair.

    ``"mutual"``: items i (view a) and k (view b) match when k is i's best in b, i is k's best in a,
    and their affinity exceeds ``threshold`` (vectorised over all pairs). ``"hungarian"``: the
    assignment of largest total affinity per view pair (``scipy.optimize.linear_sum_assignment``),
    on the affinity thresholded at ``threshold`` (only for view pairs where thresholding alone
    leaves an item with two matches).

    Args:
        affinity: (N, N) symmetric affinity, items in any order.
        view_of: (N,) int view of each item.
        threshold: smallest affinity of a match (exclusive).
        method: ``"mutual"`` or ``"hungarian"``.

    Returns:
        (N, N) symmetric bool matches, False on the diagonal and within a view.

    Raises:
        ValueError: unknown ``method``.
    """
    n = view_of.size
    out = np.zeros((n, n), dtype=bool)
    if n == 0:
        return out
    cross = view_of[:, None] != view_of[None, :]
    A = np.where(cross, affinity, -np.inf)
    if method == "mutual":
        n_views = int(view_of.max()) + 1
        slot, width = _segments(view_of, n_views)
        padded = np.full((n, n_views, width), -np.inf)
        padded[:, view_of, slot] = A
        best_slot = padded.argmax(axis=-1)  # (N, C)
        best_val = padded.max(axis=-1)
        index = np.full((n_views, width), -1, dtype=np.int64)
        index[view_of, slot] = np.arange(n)
        best = index[np.arange(n_views)[None, :], best_slot]  # (N, C) item index of the best in view c
        rows, cols = np.nonzero(best_val > threshold)
        k = best[rows, cols]
        mutual = best[k, view_of[rows]] == rows
        out[rows[mutual], k[mutual]] = True
    elif method == "hungarian":
        from scipy.optimize import linear_sum_assignment

        above = A > threshold
        # Blocks where thresholding already gives a partial permutation need no assignment.
        n_views = int(view_of.max()) + 1
        onehot = np.zeros((n, n_views), dtype=np.int64)
        onehot[np.arange(n), view_of] = 1
        per_view = above.astype(np.int64) @ onehot  # (N, C): matches of item i in view c
        conflict = np.zeros((n_views, n_views), dtype=bool)
        rows, cols = np.nonzero(per_view > 1)
        conflict[view_of[rows], cols] = True
        conflict |= conflict.T
        plain = above & ~conflict[view_of[:, None], view_of[None, :]]
        out |= plain
        for a, b in zip(*np.nonzero(np.triu(conflict, 1)), strict=True):
            ia, ib = np.nonzero(view_of == a)[0], np.nonzero(view_of == b)[0]
            block = np.where(above[np.ix_(ia, ib)], affinity[np.ix_(ia, ib)], 0.0)
            r, c = linear_sum_assignment(block, maximize=True)
            keep = block[r, c] > threshold
            out[ia[r[keep]], ib[c[keep]]] = True
    else:
        raise ValueError(f"method must be 'mutual' or 'hungarian'; got {method!r}")
    return out | out.T


def is_cycle_consistent(matches: np.ndarray, view_of: np.ndarray) -> bool:
    """Whether pairwise matches are cycle-consistent: they form disjoint cliques, one item per view each.

    Equivalent to: if a~b and b~c then a~c, and no two items of one view are connected. Costs one
    connected-components pass and an (N, N) comparison.

    Args:
        matches: (N, N) symmetric bool pairwise matches.
        view_of: (N,) int view of each item.

    Returns:
        True when the matches are their own transitive closure and no component holds two items of one view.

    Example:
        >>> m = np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]], dtype=bool)  # 0~1, 1~2, not 0~2
        >>> is_cycle_consistent(m, np.array([0, 1, 2])), is_cycle_consistent(m | ~np.eye(3, dtype=bool), np.arange(3))
        (False, True)
    """
    n = view_of.size
    if n == 0:
        return True
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    _, labels = connected_components(csr_matrix(matches), directed=False)
    same = labels[:, None] == labels[None, :]
    closed = matches | np.eye(n, dtype=bool)
    if not np.array_equal(closed, same):
        return False
    n_views = int(view_of.max()) + 1
    per_view = np.zeros((labels.max() + 1, n_views), dtype=np.int64)
    np.add.at(per_view, (labels, view_of), 1)
    return bool((per_view <= 1).all())


def round_to_matches(
    X: np.ndarray, view_of: np.ndarray, threshold: float = 0.5, method: Literal["mutual", "hungarian"] = "hungarian"
) -> np.ndarray:
    """Round a relaxed assignment matrix to a partial permutation per view pair.

    Args:
        X: (N, N) relaxed matrix from :func:`match_svt`.
        view_of: (N,) int view of each item.
        threshold: smallest value of a match (exclusive).
        method: per view pair assignment, see :func:`pairwise_matches`.

    Returns:
        (N, N) symmetric bool matches with at most one match per item and view.
    """
    return pairwise_matches(X, view_of, threshold, method)


def groups_from_matches(
    matches: np.ndarray, view_of: np.ndarray, score: np.ndarray, threshold: float = 0.5
) -> list[tuple[int, ...]]:
    """Groups of items from pairwise matches: connected components, split where a view repeats.

    A component (``networkx.connected_components``) with two items of one view is split by
    average-linkage clustering on ``1 - score`` between its items, never joining two items of one
    view, merging while the mean linkage score is at least ``threshold``
    (:func:`matching.epipolar.group_by_affinity`).

    Args:
        matches: (N, N) symmetric bool matches.
        view_of: (N,) int view of each item.
        score: (N, N) affinity in [0, 1] used to split inconsistent components.
        threshold: smallest score of a merge when splitting.

    Returns:
        Groups of item indices (sorted), each with at most one item per view, singletons included,
        largest first; every item is in exactly one group.
    """
    import networkx as nx

    n = view_of.size
    graph = nx.Graph()
    graph.add_nodes_from(range(n))
    rows, cols = np.nonzero(np.triu(matches, 1))
    graph.add_edges_from(zip(rows.tolist(), cols.tolist(), strict=True))
    groups: list[tuple[int, ...]] = []
    for comp in nx.connected_components(graph):
        idx = np.array(sorted(comp))
        if np.unique(view_of[idx]).size == idx.size:
            groups.append(tuple(idx.tolist()))
            continue
        sub_views = view_of[idx]
        dist = np.where(sub_views[:, None] != sub_views[None, :], 1.0 - score[np.ix_(idx, idx)], np.inf)
        for g in group_by_affinity(view_of[idx], dist, 1.0 - threshold):
            groups.append(tuple(int(idx[k]) for k in g))
    return sorted(groups, key=lambda g: (-len(g), g))


class MultiwayMatcher:
    """Associates the 2D detections of all views of one frame by multi-way matching.

    Drop-in for :class:`matching.epipolar.EpipolarMatcher`: same ``match`` output. The affinity is
    :func:`matching.affinity.frame_affinity` (epipolar geometry, and appearance when descriptors are
    given: by default it only breaks geometric ties, :func:`matching.affinity.appearance_ratio`);
    groups come from the fast path when the mutual-best pairwise matches are cycle-consistent,
    otherwise from :func:`match_svt` rounded by per-pair Hungarian assignment.

    Args:
        rig: the calibrated cameras, in view order.
        affinity: affinity settings (defaults if None).
        alpha: ``match_svt`` affinity threshold.
        lam: ``match_svt`` nuclear-norm weight.
        mu: ``match_svt`` initial ADMM penalty.
        max_iter: ``match_svt`` most iterations.
        tol: ``match_svt`` residual tolerance.
        threshold: smallest affinity (fast path) or relaxed value (SVT) of a match.
        fast_path: skip SVT when the pairwise matches are already cycle-consistent.
        svt: run SVT at all; False keeps the mutual-best pairwise matches whatever their
            consistency (groups from their connected components, split where a view repeats):
            Dong et al.'s affinity without the multi-way step, for ablations.
        stable_iters: ``match_svt`` early stop after this many iterations without a change of the
            rounded matrix (0: run to ``tol`` as mvpose does).
        stable_tol: ``match_svt`` residual bound of the early stop.

    Attributes:
        last_n_iter: ADMM iterations of the last ``match`` (0 when the fast path answered).
        last_used_svt: whether the last ``match`` ran SVT.

    Fundamental matrices are computed once at construction.
    """

    def __init__(
        self,
        rig: CameraRig,
        affinity: AffinityConfig | None = None,
        alpha: float = 0.5,
        lam: float = 50.0,
        mu: float = 64.0,
        max_iter: int = 500,
        tol: float = 5e-4,
        threshold: float = 0.5,
        fast_path: bool = True,
        stable_iters: int = 15,
        stable_tol: float = 2e-2,
        svt: bool = True,
    ):
        self.rig = rig
        self.affinity = affinity or AffinityConfig()
        self.svt_kwargs = dict(
            alpha=alpha, lam=lam, mu=mu, max_iter=max_iter, tol=tol, stable_iters=stable_iters, stable_tol=stable_tol
        )
        self.threshold = threshold
        self.fast_path = fast_path
        self.svt = svt
        self._F = stack_fundamentals(rig)
        self.last_n_iter = 0
        self.last_used_svt = False

    def match(
        self,
        points_px: list[np.ndarray],
        conf: list[np.ndarray],
        descriptors: list[np.ndarray | None] | None = None,
    ) -> list[tuple[tuple[int, int], ...]]:
        """Group detections across views.

        Args:
            points_px: per view c, (P_c, J, 2) undistorted pixels (P_c may be 0).
            conf: per view c, (P_c, J) joint confidences.
            descriptors: per view c, (P_c, D) appearance descriptors or None; None for geometry only.

        Returns:
            Person groups, each a tuple of (view index, detection index) with at most one detection
            per view; detections matched in no other view come back as single-view groups. Largest
            groups first. Empty list when nobody is detected.

        Raises:
            ShapeError: the number of views differs from the rig, or inconsistent shapes.
        """
        if len(points_px) != len(self.rig) or len(conf) != len(self.rig):
            raise ShapeError(f"expected {len(self.rig)} views; got {len(points_px)} and {len(conf)}")
        self.last_n_iter, self.last_used_svt = 0, False
        aff, view_of, det_of = frame_affinity(points_px, conf, self._F, descriptors, self.affinity)
        if view_of.size == 0:
            return []
        matches = pairwise_matches(aff, view_of, self.threshold, "mutual")
        score = aff
        if self.svt and not (self.fast_path and is_cycle_consistent(matches, view_of)):
            counts = np.bincount(view_of, minlength=len(self.rig))
            result = match_svt(aff, counts, **self.svt_kwargs)
            self.last_n_iter, self.last_used_svt = result.n_iter, True
            matches = round_to_matches(result.X, view_of, self.threshold, "hungarian")
            score = result.X
        groups = groups_from_matches(matches, view_of, score, self.threshold)
        return [tuple((int(view_of[k]), int(det_of[k])) for k in g) for g in groups]
