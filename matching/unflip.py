"""Left/right consistency: undo the detector's left/right swaps against the track that claimed them.

2D pose detectors confuse left and right, mostly on people seen from behind. With two views, or
with the swap in several views, the swapped limbs triangulate consistently but wrongly, so the swap
cannot be found in 3D alone. A live track knows where each limb was: a detection whose swapped
left/right pair lies much closer to the track's projected pair than the unswapped one is swapped
back. The same test as the left/right check of the tracking-by-reprojection systems (e.g. the
cross-view tracking of Chen et al., CVPR 2020, which compares detections with projected tracks).
The test and the swaps run as one compiled loop over the claimed detections (:mod:`core.jit`).
"""

from __future__ import annotations

import numpy as np

from core.errors import ShapeError
from matching._claim_kernels import unflip_kernel

__all__ = ["unflip_claimed", "unflip_pixels", "unflip_xy"]


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
    return unflip_pixels(pts, conf, claimed, None, _f64(uv), valid, left, right, lifted, ratio)


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
    ``pts_xy`` is left as it was), and the projected tracks ``uv_xy`` (2, C, T, J)."""
    read, uv = (_f64(np.moveaxis(a, 0, -1)) for a in (pts_xy, uv_xy))
    return unflip_pixels(pts, conf, claimed, read, uv, valid, left, right, lifted, ratio)


def unflip_pixels(
    pts: np.ndarray,
    conf: np.ndarray,
    claimed: np.ndarray,
    read: np.ndarray | None,
    uv: np.ndarray,
    valid: np.ndarray,
    left: np.ndarray,
    right: np.ndarray,
    lifted: list[tuple[np.ndarray, np.ndarray] | None] | None = None,
    ratio: float = 0.5,
) -> int:
    """:func:`unflip_claimed` (no shape checks) with the projected tracks ``uv`` (C, T, J, 2) contiguous
    float64, the test reading ``read`` (a (C, P, J, 2) copy of ``pts``), or ``pts`` itself when None (a
    detection is tested before its own swaps). The loop is compiled (:func:`matching._claim_kernels.unflip_kernel`);
    ``pts`` and ``conf`` are swapped in place (through contiguous float64 copies where they are not)."""
    if left.size == 0 or claimed.size == 0:
        return 0
    work_pts, work_conf = _f64(pts), _f64(conf)
    swaps = unflip_kernel(
        work_pts,
        work_conf,
        work_pts if read is None else read,
        np.ascontiguousarray(claimed, dtype=np.int64),
        uv,
        np.ascontiguousarray(valid, dtype=np.bool_),
        np.ascontiguousarray(left, dtype=np.int64),
        np.ascontiguousarray(right, dtype=np.int64),
        float(ratio),
    )  # (S, 3) view, detection, pair
    if not len(swaps):
        return 0
    if work_pts is not pts:
        pts[...] = work_pts
    if work_conf is not conf:
        conf[...] = work_conf
    for view, lift in enumerate(lifted or ()):
        if lift is None:
            continue
        sel = swaps[swaps[:, 0] == view]
        p, li, ri = sel[:, 1], left[sel[:, 2]], right[sel[:, 2]]
        for arr in lift:
            arr[p, li], arr[p, ri] = arr[p, ri], arr[p, li]  # fancy indexing copies the right side
    return len(swaps)


def _f64(a: np.ndarray) -> np.ndarray:
    """``a`` as a contiguous float64 array (itself when it is one)."""
    return np.ascontiguousarray(a, dtype=np.float64)
