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

__all__ = ["EpipolarMatcher", "epipolar_distance_matrix", "group_by_affinity"]


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


def group_by_affinity(view_of: np.ndarray, dist: np.ndarray, max_dist: float) -> list[tuple[int, ...]]:
    """Group items of different views by average-linkage clustering with view exclusivity.

    Two clusters merge when no view appears in both, every cross pair is finite, and the mean
    cross distance is the smallest remaining and at most ``max_dist``.

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
    n = len(view_of)
    clusters: list[list[int]] = [[i] for i in range(n)]
    views: list[set[int]] = [{int(view_of[i])} for i in range(n)]
    link = np.array(dist, dtype=np.float64, copy=True)  # mean cross distance between clusters
    size = np.ones(n)
    alive = np.ones(n, dtype=bool)
    np.fill_diagonal(link, np.inf)
    while True:
        masked = np.where(alive[:, None] & alive[None, :], link, np.inf)
        flat = int(np.argmin(masked))
        i, j = divmod(flat, n)
        if not np.isfinite(masked[i, j]) or masked[i, j] > max_dist:
            break
        if views[i] & views[j]:
            link[i, j] = link[j, i] = np.inf
            continue
        # Average linkage: the merged cluster's distance is the size-weighted mean (inf stays inf).
        link[i, :] = (link[i, :] * size[i] + link[j, :] * size[j]) / (size[i] + size[j])
        link[:, i] = link[i, :]
        link[i, i] = np.inf
        size[i] += size[j]
        clusters[i] += clusters[j]
        views[i] |= views[j]
        alive[j] = False
        link[j, :] = link[:, j] = np.inf
    groups = [tuple(sorted(clusters[i])) for i in range(n) if alive[i]]
    return sorted(groups, key=lambda g: (-len(g), g))


class EpipolarMatcher:
    """Associates the 2D detections of all views of one frame into per-person groups.

    Args:
        rig: the calibrated cameras, in view order.
        min_conf: joints below this confidence are ignored.
        min_common: fewest joints seen in both views for a pair to be matchable.
        max_epipolar_px: largest mean symmetric epipolar distance of a group, pixels.

    Fundamental matrices are computed once at construction.
    """

    def __init__(self, rig: CameraRig, min_conf: float = 0.3, min_common: int = 5, max_epipolar_px: float = 30.0):
        self.rig = rig
        self.min_conf = min_conf
        self.min_common = min_common
        self.max_epipolar_px = max_epipolar_px
        C = len(rig)
        self._F = {(a, b): fundamental_matrix(rig[a], rig[b]) for a in range(C) for b in range(C) if a < b}

    def match(self, points_px: list[np.ndarray], conf: list[np.ndarray]) -> list[tuple[tuple[int, int], ...]]:
        """Group detections across views.

        Args:
            points_px: per view c, (P_c, J, 2) undistorted pixels (P_c may be 0).
            conf: per view c, (P_c, J) joint confidences.

        Returns:
            Person groups, each a tuple of (view index, detection index) with at most one detection
            per view; single-view groups included. Empty list when nobody is detected.
        """
        if len(points_px) != len(self.rig) or len(conf) != len(self.rig):
            raise ShapeError(f"expected {len(self.rig)} views; got {len(points_px)} and {len(conf)}")
        items = [(c, i) for c, pts in enumerate(points_px) for i in range(pts.shape[0])]
        if not items:
            return []
        offsets = np.cumsum([0] + [p.shape[0] for p in points_px])
        n = len(items)
        dist = np.full((n, n), np.inf)
        for (a, b), F in self._F.items():
            if points_px[a].shape[0] == 0 or points_px[b].shape[0] == 0:
                continue
            d = epipolar_distance_matrix(
                F, points_px[a], conf[a], points_px[b], conf[b], self.min_conf, self.min_common
            )
            dist[offsets[a] : offsets[a + 1], offsets[b] : offsets[b + 1]] = d
            dist[offsets[b] : offsets[b + 1], offsets[a] : offsets[a + 1]] = d.T
        view_of = np.array([c for c, _ in items])
        groups = group_by_affinity(view_of, dist, self.max_epipolar_px)
        return [tuple(items[k] for k in g) for g in groups]
