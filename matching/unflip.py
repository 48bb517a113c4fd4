"""Left/right consistency: undo the detector's left/right swaps against the track that claimed them.

2D pose detectors confuse left and right, mostly on people seen from behind. With two views, or
with the swap in several views, the swapped limbs triangulate consistently but wrongly, so the swap
cannot be found in 3D alone. A live track knows where each limb was: a detection whose swapped
left/right pair lies much closer to the track's projected pair than the unswapped one is swapped
back. The same test as the left/right check of the tracking-by-reprojection systems (e.g. the
cross-view tracking of Chen et al., CVPR 2020, which compares detections with projected tracks).
"""

from __future__ import annotations

import numpy as np

from core.errors import ShapeError
from core.numeric import xy_first

__all__ = ["unflip_claimed", "unflip_xy"]


def unflip_claimed(
    pts: np.ndarray,
    conf: np.ndarray,
    claimed: np.ndarray,
    uv: np.ndarray,
    valid: np.ndarray,
    left: np.ndarray,
    right: np.ndarray,
    lifted: list[tuple[np.ndarray, np.ndarray] | None] | None = None,
    ratio: float = 0.5,
) -> int:
    """Swap back, in place, the left/right joint pairs of claimed detections of every view.

    For each claimed detection and left/right pair, with both joints confident (> 0) and both
    projected track joints known, the pair is swapped when the summed pixel distance of the swapped
    assignment is below ``ratio`` times that of the kept one.

    Args:
        pts: (C, P, J, 2) detections of every view (padded to P), undistorted pixels (modified).
        conf: (C, P, J) their confidences (modified).
        claimed: (C, P) track index of each detection, -1 for none (padding: -1).
        uv: (C, T, J, 2) tracks projected into every view, pixels.
        valid: (C, T, J) bool, projected joints that are known.
        left, right: (K,) int joint indices of the skeleton's left/right pairs.
        lifted: per view, an RGB-D view's lifted joints (P_c, J, 4) and covariances (P_c, J, 3, 3),
            swapped alike (modified), or None.
        ratio: how much closer the swapped pair must be.

    Returns:
        Number of left/right pairs swapped.

    Raises:
        ShapeError: inconsistent shapes.
    """
    if claimed.shape != pts.shape[:2] or conf.shape != pts.shape[:3] or uv.shape[0] != pts.shape[0]:
        raise ShapeError(f"expected pts (C, P, J, 2), conf (C, P, J), claimed (C, P); got {pts.shape}, "
                         f"{conf.shape}, {claimed.shape}")  # fmt: skip
    return unflip_xy(pts, conf, claimed, xy_first(pts), xy_first(uv), valid, left, right, lifted, ratio)


def unflip_xy(
    pts: np.ndarray,
    conf: np.ndarray,
    claimed: np.ndarray,
    pts_xy: np.ndarray,
    uv_xy: np.ndarray,
    valid: np.ndarray,
    left: np.ndarray,
    right: np.ndarray,
    lifted: list[tuple[np.ndarray, np.ndarray] | None] | None = None,
    ratio: float = 0.5,
) -> int:
    """:func:`unflip_claimed` (no shape checks) given the pixels also coordinate-first: ``pts_xy``
    (2, C, P, J), a copy of ``pts`` read for the test (``pts`` and ``conf`` are swapped in place;
    ``pts_xy`` is left as it was), and the projected tracks ``uv_xy`` (2, C, T, J). The per-joint
    arithmetic then runs on contiguous rows (numpy is slow on a trailing axis of 2)."""
    c_idx, p_idx = np.nonzero(claimed >= 0)
    if c_idx.size == 0 or left.size == 0:
        return 0
    t = claimed[c_idx, p_idx]
    D, U = pts_xy[:, c_idx, p_idx], uv_xy[:, c_idx, t]  # gathered once: (2, n, J)
    V, Cf = valid[c_idx, t], conf[c_idx, p_idx]  # (n, J)
    dl, dr, ul, ur = D[:, :, left], D[:, :, right], U[:, :, left], U[:, :, right]  # (2, n, pairs)
    a, b, c, d = dl - ul, dr - ur, dl - ur, dr - ul
    d_keep = np.hypot(a[0], a[1]) + np.hypot(b[0], b[1])
    d_swap = np.hypot(c[0], c[1]) + np.hypot(d[0], d[1])
    usable = V[:, left] & V[:, right] & (Cf[:, left] > 0) & (Cf[:, right] > 0)
    k, pair = np.nonzero(usable & (d_swap < ratio * d_keep))  # (n, pairs)
    if k.size == 0:
        return 0
    cv, p, li, ri = c_idx[k], p_idx[k], left[pair], right[pair]
    pts[cv, p, li], pts[cv, p, ri] = pts[cv, p, ri], pts[cv, p, li]  # fancy indexing copies the right side
    conf[cv, p, li], conf[cv, p, ri] = conf[cv, p, ri], conf[cv, p, li]
    for view, lift in enumerate(lifted or ()):
        if lift is None:
            continue
        sel = cv == view
        for arr in lift:
            arr[p[sel], li[sel]], arr[p[sel], ri[sel]] = arr[p[sel], ri[sel]], arr[p[sel], li[sel]]
    return int(k.size)
