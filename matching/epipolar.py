"""Cross-view person association by epipolar geometry.

Two detections of one person in views a and b have their joints on each other's epipolar lines
(Hartley & Zisserman §9.1). Their affinity is the confidence-weighted mean of the symmetric
point-to-epipolar-line distance over joints confident in both views, in pixels. Detections are then
grouped across all views by average-linkage agglomerative clustering that never puts two detections
of one view in a group (as in the multi-view matching of Dong et al. 2019, greedy variant).
"""

from __future__ import annotations

import numpy as np

from calibration.camera import CameraRig, fundamental_matrix
from core.errors import ShapeError

__all__ = [
    "EpipolarMatcher",
    "epipolar_distance_matrix",
    "group_by_affinity",
    "pairwise_epipolar_distances",
    "refine_groups",
]


def epipolar_distance_matrix(
    F: np.ndarray,
    pts_a: np.ndarray,
    conf_a: np.ndarray,
    pts_b: np.ndarray,
    conf_b: np.ndarray,
    min_conf: float = 0.3,
    min_common: int = 5,
) -> np.ndarray:
    """Mean symmetric point-to-epipolar-line distance between every detection pair of two views.

    Args:
        F: (3, 3) fundamental matrix with ``x_b^T F x_a = 0`` (undistorted pixels).
        pts_a: (Pa, J, 2) undistorted pixels in view a.
        conf_a: (Pa, J) joint confidences in view a.
        pts_b: (Pb, J, 2) undistorted pixels in view b.
        conf_b: (Pb, J) joint confidences in view b.
        min_conf: joints below this confidence are ignored.
        min_common: pairs with fewer joints confident in both views get ``inf``.

    Returns:
        (Pa, Pb) distances, pixels; ``inf`` where unmatchable. Each joint's term is
        ``(d(x_b, F x_a) + d(x_a, F^T x_b)) / 2``, weighted by ``min(conf_a, conf_b)``.

    Raises:
        ShapeError: the joint counts of the two views differ.
    """
    if pts_a.shape[1:] != pts_b.shape[1:] or pts_a.shape[-1] != 2:
        raise ShapeError(f"pts_a and pts_b must be (P, J, 2) with equal J; got {pts_a.shape} and {pts_b.shape}")
    ha = np.concatenate([pts_a, np.ones(pts_a.shape[:2] + (1,))], axis=-1)  # (Pa, J, 3)
    hb = np.concatenate([pts_b, np.ones(pts_b.shape[:2] + (1,))], axis=-1)  # (Pb, J, 3)
    lines_b = ha @ F.T  # (Pa, J, 3): epipolar lines in b of a's joints
    lines_a = hb @ F  # (Pb, J, 3): epipolar lines in a of b's joints
    # d(x_b, l_b) for every pair: (Pa, Pb, J)
    num_b = np.abs(np.einsum("ajk,bjk->abj", lines_b, hb))
    d_b = num_b / (np.hypot(lines_b[:, None, :, 0], lines_b[:, None, :, 1]) + 1e-12)
    num_a = np.abs(np.einsum("bjk,ajk->abj", lines_a, ha))
    d_a = num_a / (np.hypot(lines_a[None, :, :, 0], lines_a[None, :, :, 1]) + 1e-12)
    w = np.minimum(conf_a[:, None, :], conf_b[None, :, :])  # (Pa, Pb, J)
    w = np.where(w >= min_conf, w, 0.0)
    n_common = (w > 0).sum(axis=-1)
    dist = ((d_a + d_b) / 2 * w).sum(axis=-1) / np.maximum(w.sum(axis=-1), 1e-12)
    return np.where(n_common >= min_common, dist, np.inf)


def pairwise_epipolar_distances(
    F: np.ndarray,
    pts_a: np.ndarray,
    conf_a: np.ndarray,
    pts_b: np.ndarray,
    conf_b: np.ndarray,
    min_conf: float = 0.3,
    min_common: int = 5,
) -> np.ndarray:
    """:func:`epipolar_distance_matrix` for K view pairs at once (detections padded to P per view).

    Args:
        F: (K, 3, 3) fundamental matrices, ``x_b^T F_k x_a = 0``.
        pts_a: (K, P, J, 2) undistorted pixels of each pair's view a (padding: any finite value).
        conf_a: (K, P, J) their confidences (padding: 0).
        pts_b: (K, P, J, 2) undistorted pixels of each pair's view b.
        conf_b: (K, P, J) their confidences.
        min_conf: joints below this confidence are ignored.
        min_common: pairs with fewer joints confident in both views get ``inf``.

    Returns:
        (K, P, P) distances, pixels, with the same terms as :func:`epipolar_distance_matrix`;
        ``inf`` where unmatchable (padding included).
    """

    xa, ya, ca, ok_a = _joints_major(pts_a, conf_a, min_conf)
    xb, yb, cb, ok_b = _joints_major(pts_b, conf_b, min_conf)
    return _pair_distances(F, xa, ya, ca, ok_a, xb, yb, cb, ok_b, min_common)


def _joints_major(
    pts: np.ndarray, conf: np.ndarray, min_conf: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(K, P, J, 2) pixels and (K, P, J) confidences -> x, y, weights (0 below ``min_conf``) as
    (J, P, K) and the (J, P, K) bool mask of usable joints."""
    ok = conf >= min_conf
    t = (2, 1, 0)
    return pts[..., 0].transpose(t), pts[..., 1].transpose(t), np.where(ok, conf, 0.0).transpose(t), ok.transpose(t)


def _pair_distances(F, xa, ya, ca, ok_a, xb, yb, cb, ok_b, min_common: int) -> np.ndarray:
    """:func:`pairwise_epipolar_distances` on (J, P, K) arrays (:func:`_joints_major`): (K, Pa, Pb).

    Layout (J, P, K): the pairs' outer products run over the K pairs contiguously, and the sums over
    joints add whole blocks.
    """
    f = F.transpose(1, 2, 0)  # (3, 3, K)
    lb = [f[i, 0] * xa + f[i, 1] * ya + f[i, 2] for i in range(3)]  # F x_a: lines in b, (J, Pa, K)
    la = [f[0, i] * xb + f[1, i] * yb + f[2, i] for i in range(2)]  # F^T x_b: lines in a, (J, Pb, K)
    # x_b^T F x_a is the numerator of both point-line distances (Hartley & Zisserman §9.2).
    d = lb[0][:, :, None] * xb[:, None]  # (J, Pa, Pb, K)
    d += lb[1][:, :, None] * yb[:, None]
    d += lb[2][:, :, None]
    np.abs(d, out=d)
    d *= (0.5 / (np.hypot(lb[0], lb[1]) + 1e-12))[:, :, None] + (0.5 / (np.hypot(la[0], la[1]) + 1e-12))[:, None]
    w = np.minimum(ca[:, :, None], cb[:, None])  # (J, Pa, Pb, K)
    d *= w
    num, den = d.sum(axis=0), w.sum(axis=0)  # (Pa, Pb, K)
    if ok_a.all() and ok_b.all():
        n_common = np.full(num.shape, d.shape[0])
    else:
        n_common = np.einsum("jpk,jqk->pqk", ok_a.astype(np.float64), ok_b.astype(np.float64))
    dist = np.where(n_common >= min_common, num / np.maximum(den, 1e-12), np.inf)
    return dist.transpose(2, 0, 1)


def group_by_affinity(view_of: np.ndarray, dist: np.ndarray, max_dist: float) -> list[tuple[int, ...]]:
    """Group items of different views by average-linkage clustering with view exclusivity.

    Two clusters merge when no view appears in both, every cross pair is finite, and the mean
    cross distance is the smallest remaining and at most ``max_dist``.

    Average linkage with the exclusivity (a cluster pair sharing a view is at infinite distance)
    is reducible: a merged cluster is never closer to a third than the nearer of its parts. The
    hierarchy is then the one of merging the closest pair first, and all pairs of mutual nearest
    clusters can merge in one round (Bruynooghe 1977; Murtagh 1983, reciprocal nearest neighbours),
    so a frame takes a few array rounds instead of one search of the N x N matrix per merge.
    (Pairs at exactly equal distances may resolve differently from a one-merge-at-a-time order.)

    Args:
        view_of: (N,) int view index of each item.
        dist: (N, N) symmetric pairwise distances (``inf`` for forbidden pairs).
        max_dist: largest mean linkage distance of a merge.

    Returns:
        Groups as tuples of item indices (sorted), including singletons, largest groups first.

    Example:
        >>> d = np.array([[np.inf, 1, 9], [1, np.inf, 9], [9, 9, np.inf]])
        >>> group_by_affinity(np.array([0, 1, 1]), d, 5.0)
        [(0, 1), (2,)]
    """
    view_of = np.asarray(view_of, dtype=np.int64)
    n = len(view_of)
    if n == 0:
        return []
    clusters: list[list[int]] = [[i] for i in range(n)]
    in_view = np.zeros((n, int(view_of.max()) + 1))  # 1 where a cluster holds an item of a view
    in_view[np.arange(n), view_of] = 1.0
    link = np.array(dist, dtype=np.float64, copy=True)  # mean cross distance between clusters
    link[view_of[:, None] == view_of[None, :]] = np.inf  # also the diagonal
    size = np.ones(n)
    rows = np.arange(n)
    while True:
        near = link.argmin(axis=1)
        near_d = link[rows, near]
        i = np.nonzero((near[near] == rows) & (rows < near) & (near_d <= max_dist))[0]  # mutual nearest pairs
        if i.size == 0:
            break
        j = near[i]
        si, sj = size[i], size[j]
        # Average linkage: the merged cluster's distance is the size-weighted mean (inf stays inf);
        # rows then columns, so that two clusters merged in one round get the mean over all four parts.
        link[i] = (link[i] * si[:, None] + link[j] * sj[:, None]) / (si + sj)[:, None]
        link[:, i] = (link[:, i] * si + link[:, j] * sj) / (si + sj)
        link[:, i] = link[i].T
        link[j, :] = np.inf
        link[:, j] = np.inf
        size[i] += sj
        size[j] = 0.0
        in_view[i] += in_view[j]
        in_view[j] = 0.0
        for a, b in zip(i.tolist(), j.tolist(), strict=True):
            clusters[a] += clusters[b]
        shared = (in_view[i] @ in_view.T) > 0  # (merged, N): clusters sharing a view (itself included)
        link[i[:, None], rows[None]] = np.where(shared, np.inf, link[i])
        link[:, i] = link[i].T
    groups = [tuple(sorted(clusters[k])) for k in range(n) if size[k] > 0]
    return sorted(groups, key=lambda g: (-len(g), g))


def refine_groups(
    view_of: np.ndarray, dist: np.ndarray, groups: list[tuple[int, ...]], max_dist: float
) -> list[tuple[int, ...]]:
    """Move single items between groups while that raises the total within-group affinity.

    Greedy agglomeration commits to its closest pairs first. With many views, two detections of
    different people can lie on each other's epipolar lines by chance (a ghost pair: any two rays
    in one epipolar plane meet, Hartley & Zisserman §9.1; likely when the cameras stand at one
    height and the people are of one height), closer than the true pairs' noise; once merged, they
    are barred from their own people's groups, which already hold their views. The partition
    objective that multi-view matching maximises (Dong et al. 2019; Wang et al. 2018) is the total
    within-group affinity ``sum over pairs (max_dist - d)``: a detection agreeing with the many
    views of its person gains far more there than in a pair. This local search (single-item moves,
    best gain first, as in correlation clustering's local search) moves an item to the group, or
    a singleton of its own, where its summed affinity is highest, keeping one item per view per
    group and no infinite pair; each move raises the objective, so it ends.

    Args:
        view_of: (N,) int view index of each item.
        dist: (N, N) symmetric pairwise distances (``inf`` for forbidden pairs).
        groups: a partition of the N items, e.g. from :func:`group_by_affinity`.
        max_dist: distance of zero affinity (pairs further apart lower the objective).

    Returns:
        The refined groups, as :func:`group_by_affinity` returns them (unchanged when no move helps).
    """
    n = len(view_of)
    if n < 3 or len(groups) < 2:
        return groups
    view_of = np.asarray(view_of, dtype=np.int64)
    G = len(groups) + n  # room for every item to leave into a singleton of its own
    label = np.empty(n, dtype=np.int64)
    for g, members in enumerate(groups):
        label[list(members)] = g
    d = np.asarray(dist, dtype=np.float64)
    finite = np.isfinite(d)
    np.fill_diagonal(finite, True)
    aff = np.where(finite, max_dist - np.where(finite, d, 0.0), 0.0)
    np.fill_diagonal(aff, 0.0)
    member = np.zeros((n, G))
    member[np.arange(n), label] = 1.0
    k = len(groups)
    gain, n_inf = np.zeros((n, G)), np.zeros((n, G))
    gain[:, :k] = aff @ member[:, :k]  # (N, G) summed affinity of each item to each group's items
    n_inf[:, :k] = (~finite).astype(np.float64) @ member[:, :k]  # infinite pairs with each group
    views = np.zeros((G, int(view_of.max()) + 1), dtype=np.int64)
    np.add.at(views, (label, view_of), 1)
    n_groups = len(groups)
    rows = np.arange(n)
    for _ in range(2 * n):
        own = gain[rows, label]
        ng = n_groups
        delta = np.where((n_inf[:, :ng] == 0) & (views[:ng, view_of].T == 0), gain[:, :ng] - own[:, None], -np.inf)
        best = delta.argmax(axis=1)
        best_d = delta[rows, best]
        shared = member[:, :ng].sum(axis=0)[label] > 1  # not alone in its group
        leave = np.where(shared, -own, -np.inf)  # gain of leaving into a singleton of its own
        m = int(np.argmax(np.maximum(best_d, leave)))
        if not max(best_d[m], leave[m]) > 1e-9:
            break
        g = label[m]
        if best_d[m] >= leave[m]:
            h = int(best[m])
        else:
            h, n_groups = n_groups, n_groups + 1
        member[m, g], member[m, h] = 0.0, 1.0
        gain[:, g] -= aff[:, m]
        gain[:, h] += aff[:, m]
        n_inf[:, g] -= ~finite[:, m]
        n_inf[:, h] += ~finite[:, m]
        views[g, view_of[m]] -= 1
        views[h, view_of[m]] += 1
        label[m] = h
    out = [tuple(np.nonzero(member[:, g])[0].tolist()) for g in range(n_groups)]
    return sorted((g for g in out if g), key=lambda g: (-len(g), g))


class EpipolarMatcher:
    """Associates the 2D detections of all views of one frame into per-person groups.

    Args:
        rig: the calibrated cameras, in view order.
        min_conf: joints below this confidence are ignored.
        min_common: fewest joints seen in both views for a pair to be matchable.
        max_epipolar_px: largest mean symmetric epipolar distance of a group, pixels.

    The fundamental matrices of all view pairs are computed once at construction and stacked, so
    that a frame's distances of every pair of views are one batched array operation.
    """

    def __init__(self, rig: CameraRig, min_conf: float = 0.3, min_common: int = 5, max_epipolar_px: float = 30.0):
        self.rig = rig
        self.min_conf = min_conf
        self.min_common = min_common
        self.max_epipolar_px = max_epipolar_px
        C = len(rig)
        self._F = {(a, b): fundamental_matrix(rig[a], rig[b]) for a in range(C) for b in range(C) if a < b}
        pairs = np.array(list(self._F), dtype=np.int64).reshape(-1, 2)
        self._pair_a, self._pair_b = pairs[:, 0], pairs[:, 1]
        self._F_stack = np.array(list(self._F.values())).reshape(-1, 3, 3)  # (C (C - 1) / 2, 3, 3)

    def distances(self, points_px: list[np.ndarray], conf: list[np.ndarray]) -> np.ndarray:
        """(N, N) epipolar distances (:func:`epipolar_distance_matrix`) between all N detections of the
        views, in view order; ``inf`` within a view and for unmatchable pairs."""
        counts = np.array([p.shape[0] for p in points_px], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(counts)])
        n, P = int(offsets[-1]), int(counts.max(initial=0))
        if n == 0:
            return np.full((0, 0), np.inf)
        J, C = points_px[int(np.argmax(counts))].shape[1], len(points_px)
        x, y, w = np.zeros((J, P, C)), np.zeros((J, P, C)), np.zeros((J, P, C))
        for c, (p, q) in enumerate(zip(points_px, conf, strict=True)):
            x[:, : p.shape[0], c], y[:, : p.shape[0], c], w[:, : p.shape[0], c] = p[..., 0].T, p[..., 1].T, q.T
        ok = w >= self.min_conf
        w = np.where(ok, w, 0.0)
        both = (counts[self._pair_a] > 0) & (counts[self._pair_b] > 0)
        a, b = self._pair_a[both], self._pair_b[both]
        d = _pair_distances(
            self._F_stack[both], x[..., a], y[..., a], w[..., a], ok[..., a], x[..., b], y[..., b], w[..., b],
            ok[..., b], self.min_common,
        )  # fmt: skip
        full = np.full((C, P, C, P), np.inf)  # padded layout, then the real detections taken out
        p = np.arange(P)
        full[a[:, None, None], p[None, :, None], b[:, None, None], p[None, None, :]] = d
        full[b[:, None, None], p[None, None, :], a[:, None, None], p[None, :, None]] = d
        real = (np.arange(C)[:, None] * P + p[None])[p[None] < counts[:, None]]  # view-major, as the items
        dist = full.reshape(C * P, C * P)[np.ix_(real, real)]
        return dist

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
            descriptors: per view c, (P_c, D) appearance descriptors, or None; not used by this
                matcher (the geometry alone decides), accepted so that matchers are interchangeable.

        Returns:
            Person groups, each a tuple of (view index, detection index) with at most one detection
            per view; single-view groups included. Empty list when nobody is detected.

        Raises:
            ShapeError: not one array per view of the rig.
        """
        if len(points_px) != len(self.rig) or len(conf) != len(self.rig):
            raise ShapeError(f"expected {len(self.rig)} views; got {len(points_px)} and {len(conf)}")
        items = [(c, i) for c, pts in enumerate(points_px) for i in range(pts.shape[0])]
        if not items:
            return []
        dist = self.distances(points_px, conf)
        view_of = np.array([c for c, _ in items])
        groups = group_by_affinity(view_of, dist, self.max_epipolar_px)
        groups = refine_groups(view_of, dist, groups, self.max_epipolar_px)
        return [tuple(items[k] for k in g) for g in groups]
