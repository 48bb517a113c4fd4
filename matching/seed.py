"""Start-up seeding for large rigs: a few spread views first, the other views by projection.

With no live track, every detection of every view must be grouped across views; all pairs of C views
cost C^2. Large rigs start instead from a few views spread around the scene: their detections are
grouped across views, triangulated, and the 3D people found claim their detections in all views as
live tracks would (:mod:`matching.track_claims`), leaving only what they do not explain to pairwise
grouping. This is the incremental cross-view association of Chen et al., "Cross-View Tracking for
Multi-Human 3D Pose Estimation at over 100 FPS", CVPR 2020 (each new view is matched to the 3D
targets, not to every other view), applied within the start-up frame.
"""

from __future__ import annotations

import numpy as np

__all__ = ["spread_views"]


def spread_views(centers: np.ndarray, k: int) -> np.ndarray:
    """``k`` views spread over the rig: farthest-point sampling of the camera centres.

    Starts from view 0, then repeatedly adds the view whose centre is farthest from those chosen
    (Gonzalez 1985); on a ring of cameras this gives views evenly around it, so that every person is
    seen by several of them from different sides.

    Args:
        centers: (C, 3) camera centres, metres, world frame.
        k: views wanted (all C when ``k >= C``).

    Returns:
        (min(k, C),) int64 view indices, sorted.

    Example:
        >>> a = np.linspace(0, 2 * np.pi, 8, endpoint=False)
        >>> spread_views(np.stack([np.cos(a), np.sin(a), 0 * a], axis=1), 4).tolist()
        [0, 2, 4, 6]
    """
    C = len(centers)
    if k >= C:
        return np.arange(C, dtype=np.int64)
    chosen = [0]
    dist = np.linalg.norm(centers - centers[0], axis=1)
    for _ in range(k - 1):
        nxt = int(np.argmax(dist))
        chosen.append(nxt)
        dist = np.minimum(dist, np.linalg.norm(centers - centers[nxt], axis=1))
    return np.sort(np.array(chosen, dtype=np.int64))
