"""Compiled loops of the track claims (:mod:`matching.track_claims`, :mod:`matching.unflip`).

A frame of the node has a few tracks, a few detections per view and 17 joints: numpy would spend
its time dispatching a few hundred tiny operations. These kernels (:func:`core.jit.kernel`) do one
pass each over all views, with the arithmetic and the decisions of the numpy versions they replace:

- :func:`project_kernel`: the tracks' predicted joints projected into every view, with their gates;
- :func:`claim_kernel`: each view's median joint distances between projected tracks and detections
  (pairs whose joint boxes lie further apart than the gate, or with fewer than half their joints
  within it, are not measured: their median is beyond the gate), and the claims of the views whose
  tracks' nearest detections are all different (the optimal assignment); the other views are flagged
  for the Hungarian method (``scipy.optimize.linear_sum_assignment``, outside);
- :func:`unflip_kernel`: left/right swaps of claimed detections undone in place;
- :func:`group_kernel`: the claimed detections ordered by track, tracks claimed in one view released.

Distances are numpy's ``hypot``, bit for bit: they are ranked and compared by square roots of sums of
squares (several times faster), and taken as ``hypot`` wherever those lie within 1e-12 (relative) of the
value or threshold that decides, far above their rounding, so the medians and the decisions are numpy's.

Array layouts (contiguous, float64 / int64 / bool): projected tracks ``uv`` (C, T, J, 2), detections
``pts`` (C, P, J, 2) and ``conf`` (C, P, J).
"""

from __future__ import annotations

import math

import numpy as np

from core.jit import kernel

__all__ = ["claim_kernel", "group_kernel", "project_kernel", "unflip_kernel"]

_BIG = 1e300  # box corners where no joint is known (as the numpy version's)
_FINITE, _TINY = 1e300, 1e-100  # square roots between these: their squares neither overflowed nor underflowed
_EPS = 1e-12  # relative margin far above the rounding of a square root of a sum of squares (a few 1e-16)


@kernel
def project_kernel(P, focal_px, preds, gate_m):
    """(C, 3, 4) projections, (C,) focal lengths (px), (T, J, 4) poses [x, y, z, conf] (m), gate (m) ->
    uv (C, T, J, 2) pixels, valid (C, T, J) (known and more than 0.1 m in front), gates (C, T) pixels
    (``gate_m`` focal / mean depth of the valid joints, 0 where none)."""
    C = P.shape[0]
    T, J = preds.shape[0], preds.shape[1]
    uv = np.empty((C, T, J, 2))
    valid = np.zeros((C, T, J), dtype=np.bool_)
    gates = np.zeros((C, T))
    for c in range(C):
        for t in range(T):
            n = 0
            total = 0.0
            for j in range(J):
                x, y, z = preds[t, j, 0], preds[t, j, 1], preds[t, j, 2]
                u = P[c, 0, 0] * x + P[c, 0, 1] * y + P[c, 0, 2] * z + P[c, 0, 3]
                v = P[c, 1, 0] * x + P[c, 1, 1] * y + P[c, 1, 2] * z + P[c, 1, 3]
                w = P[c, 2, 0] * x + P[c, 2, 1] * y + P[c, 2, 2] * z + P[c, 2, 3]
                ok = preds[t, j, 3] > 0 and w > 0.1
                valid[c, t, j] = ok
                if ok:
                    n += 1
                    total += w
                    uv[c, t, j, 0] = u / w
                    uv[c, t, j, 1] = v / w
                else:
                    uv[c, t, j, 0] = u
                    uv[c, t, j, 1] = v
            if n > 0:
                gates[c, t] = gate_m * focal_px[c] / max(total / n, 1e-3)
    return uv, valid, gates


@kernel(inline="always")
def _box(xy, mask, out):
    """Bounding box of the masked rows of ``xy`` (J, 2) into ``out`` = [x_lo, y_lo, x_hi, y_hi]
    (+-1e300 where none; a NaN coordinate makes its corners NaN, as numpy's min and max)."""
    out[0] = out[1] = _BIG
    out[2] = out[3] = -_BIG
    for j in range(xy.shape[0]):
        if mask[j]:
            for k in range(2):
                v = xy[j, k]
                if v < out[k] or v != v:
                    if out[k] == out[k]:
                        out[k] = v
                if v > out[2 + k] or v != v:
                    if out[2 + k] == out[2 + k]:
                        out[2 + k] = v


@kernel(inline="always")
def _exact_kth(approx, idx, n, k, a, b, hbuf):
    """The k-th smallest distance ``hypot(a[j] - b[j])`` over ``j = idx[:n]``, given ``approx[:n]`` (finite)
    those distances as square roots, sorted: the k-th of the hypots of the window of approximations
    within rounding of the k-th (those below it are smaller, those above larger), exactly."""
    lo_v, hi_v = approx[k] * (1.0 - _EPS), approx[k] * (1.0 + _EPS)
    i0 = k
    while i0 > 0 and approx[i0 - 1] >= lo_v:
        i0 -= 1
    i1 = k + 1
    while i1 < n and approx[i1] <= hi_v:
        i1 += 1
    for w in range(i1 - i0):
        j = idx[i0 + w]
        d = math.hypot(a[j, 0] - b[j, 0], a[j, 1] - b[j, 1])
        q = w
        while q > 0 and hbuf[q - 1] > d:
            hbuf[q] = hbuf[q - 1]
            q -= 1
        hbuf[q] = d
    return hbuf[k - i0]


@kernel
def claim_kernel(uv, valid, gates, pts, conf, counts, min_conf, min_common):
    """Median-distance costs and the direct claims of every view.

    Args:
        uv: (C, T, J, 2) projected tracks, pixels; valid: (C, T, J) bool; gates: (C, T) pixels.
        pts: (C, P, J, 2) detections, pixels; conf: (C, P, J); counts: (C,) int64 real detections.
        min_conf: usable detected joints have at least this confidence.
        min_common: fewer joints usable in both give ``inf``.

    Returns:
        claimed (C, P) int64 track of each detection (-1: none) for the views solved directly;
        cost (C, T, P) median pixel distances where within the gate (else ``inf``, or the median where
            it was measured: the assignment admits neither);
        hungarian (C,) bool, views whose tracks' nearest detections collide (claims left at -1).
    """
    C, T, J = valid.shape
    P = pts.shape[1]
    claimed = np.full((C, P), -1, dtype=np.int64)
    cost = np.full((C, T, P), np.inf)
    hungarian = np.zeros(C, dtype=np.bool_)
    if T == 0 or P == 0:
        return claimed, cost, hungarian
    t_box = np.empty((T, 4))
    d_box = np.empty((P, 4))
    usable = np.empty((P, J), dtype=np.bool_)
    buf = np.empty(J)
    hbuf = np.empty(J)
    idx = np.empty(J, dtype=np.int64)
    nearest = np.empty(T, dtype=np.int64)
    hits = np.empty(P, dtype=np.int64)
    for c in range(C):
        for t in range(T):
            _box(uv[c, t], valid[c, t], t_box[t])
        for p in range(P):
            for j in range(J):
                usable[p, j] = conf[c, p, j] >= min_conf
            _box(pts[c, p], usable[p], d_box[p])
        hits[:] = 0
        for t in range(T):
            g = gates[c, t]
            g2 = g * g * (1.0 + 1e-9)
            best = np.inf
            nearest[t] = -1
            for p in range(P):
                # A median within the gate needs a joint within it: boxes further apart are not measured.
                if not (d_box[p, 0] - t_box[t, 2] <= g and t_box[t, 0] - d_box[p, 2] <= g):
                    continue
                if not (d_box[p, 1] - t_box[t, 3] <= g and t_box[t, 1] - d_box[p, 3] <= g):
                    continue
                # The median is within the gate only if its lower half is: count the joints within it
                # (squared, with a margin: a superset) before measuring and sorting.
                m = 0
                close = 0
                for j in range(J):
                    if valid[c, t, j] and usable[p, j]:
                        m += 1
                        dx, dy = uv[c, t, j, 0] - pts[c, p, j, 0], uv[c, t, j, 1] - pts[c, p, j, 1]
                        if dx * dx + dy * dy <= g2:
                            close += 1
                if m < min_common or m == 0 or close <= (m - 1) // 2:
                    continue  # inf: too few joints, or beyond the gate
                # Median over the joints known in both: distances sorted by square roots (faster than
                # hypot), the two middle ones then taken as hypot exactly (:func:`_exact_kth`).
                n = 0
                for j in range(J):
                    if valid[c, t, j] and usable[p, j]:
                        dx, dy = uv[c, t, j, 0] - pts[c, p, j, 0], uv[c, t, j, 1] - pts[c, p, j, 1]
                        d = math.sqrt(dx * dx + dy * dy)
                        if not (d < _FINITE) or 0.0 < d < _TINY:
                            break  # NaN, overflow or underflow: the plain path below
                        i = n  # insertion sort
                        while i > 0 and buf[i - 1] > d:
                            buf[i], idx[i] = buf[i - 1], idx[i - 1]
                            i -= 1
                        buf[i], idx[i] = d, j
                        n += 1
                lo, hi = (m - 1) // 2, m // 2
                if n == m:
                    a = _exact_kth(buf, idx, n, lo, uv[c, t], pts[c, p], hbuf)
                    b = a if hi == lo else _exact_kth(buf, idx, n, hi, uv[c, t], pts[c, p], hbuf)
                else:  # as numpy's sort of the row with inf where masked out: values, then inf, then NaN
                    n = 0
                    n_nan = 0
                    for j in range(J):
                        if valid[c, t, j] and usable[p, j]:
                            d = math.hypot(uv[c, t, j, 0] - pts[c, p, j, 0], uv[c, t, j, 1] - pts[c, p, j, 1])
                            if d != d:
                                n_nan += 1
                                continue
                            i = n
                            while i > 0 and buf[i - 1] > d:
                                buf[i] = buf[i - 1]
                                i -= 1
                            buf[i] = d
                            n += 1
                    a = buf[lo] if lo < n else (np.inf if lo < n + J - m else np.nan)
                    b = buf[hi] if hi < n else (np.inf if hi < n + J - m else np.nan)
                med = (a + b) / 2
                cost[c, t, p] = med
                if med <= g and med < best:  # first of the smallest admissible costs
                    best = med
                    nearest[t] = p
            if nearest[t] >= 0:
                hits[nearest[t]] += 1
        direct = True
        for p in range(P):
            if hits[p] > 1:
                direct = False
        if direct:
            for t in range(T):
                if nearest[t] >= 0:
                    claimed[c, nearest[t]] = t
        elif counts[c] > 0:
            hungarian[c] = True
    return claimed, cost, hungarian


@kernel
def unflip_kernel(pts, conf, read, claimed, uv, valid, left, right, ratio):
    """Swap back, in place, the left/right pairs of claimed detections much closer swapped.

    Args:
        pts: (C, P, J, 2) detections, pixels (modified); conf: (C, P, J) (modified).
        read: (C, P, J, 2) the detections the test reads: ``pts`` itself (a detection is tested
            before its own swaps) or a copy of it.
        claimed: (C, P) int64 track of each detection (-1: none).
        uv: (C, T, J, 2) projected tracks, pixels; valid: (C, T, J) bool.
        left, right: (K,) int64 joint indices of the left/right pairs.
        ratio: a pair is swapped when its swapped distance is below ``ratio`` times the kept one.

    Returns:
        (S, 3) int64 view, detection and pair index of each swap, by view, detection and pair.
    """
    C, P = claimed.shape
    K = left.shape[0]
    swaps = np.empty((C * P * K, 3), dtype=np.int64)
    flag = np.zeros(K, dtype=np.bool_)
    old = np.empty((K, 6))
    s = 0
    for c in range(C):
        for p in range(P):
            t = claimed[c, p]
            if t < 0:
                continue
            n = 0
            for k in range(K):  # every test reads the detection before its swaps
                li, ri = left[k], right[k]
                flag[k] = False
                if not (valid[c, t, li] and valid[c, t, ri] and conf[c, p, li] > 0 and conf[c, p, ri] > 0):
                    continue
                dlx, dly, drx, dry = read[c, p, li, 0], read[c, p, li, 1], read[c, p, ri, 0], read[c, p, ri, 1]
                ulx, uly, urx, ury = uv[c, t, li, 0], uv[c, t, li, 1], uv[c, t, ri, 0], uv[c, t, ri, 1]
                ax, ay, bx, by = dlx - ulx, dly - uly, drx - urx, dry - ury
                cx, cy, ex, ey = dlx - urx, dly - ury, drx - ulx, dry - uly
                keep = math.sqrt(ax * ax + ay * ay) + math.sqrt(bx * bx + by * by)
                swap = math.sqrt(cx * cx + cy * cy) + math.sqrt(ex * ex + ey * ey)
                if not (abs(swap - ratio * keep) > _EPS * (swap + ratio * keep)):
                    # Too close to call (or not finite) with square roots: numpy's hypot decides.
                    keep = math.hypot(ax, ay) + math.hypot(bx, by)
                    swap = math.hypot(cx, cy) + math.hypot(ex, ey)
                if swap < ratio * keep:
                    flag[k] = True
                    n += 1
            if n == 0:
                continue
            # As numpy's swap by fancy indexing: both sides read first, then every left, then every right.
            for k in range(K):
                if flag[k]:
                    li, ri = left[k], right[k]
                    old[k, 0], old[k, 1], old[k, 2] = pts[c, p, ri, 0], pts[c, p, ri, 1], conf[c, p, ri]
                    old[k, 3], old[k, 4], old[k, 5] = pts[c, p, li, 0], pts[c, p, li, 1], conf[c, p, li]
                    swaps[s, 0], swaps[s, 1], swaps[s, 2] = c, p, k
                    s += 1
            for k in range(K):
                if flag[k]:
                    li = left[k]
                    pts[c, p, li, 0], pts[c, p, li, 1], conf[c, p, li] = old[k, 0], old[k, 1], old[k, 2]
            for k in range(K):
                if flag[k]:
                    ri = right[k]
                    pts[c, p, ri, 0], pts[c, p, ri, 1], conf[c, p, ri] = old[k, 3], old[k, 4], old[k, 5]
    return swaps[:s].copy()


@kernel
def group_kernel(claimed, counts, T):
    """The claims by track; a track claimed in one view only releases its detection (in place).

    Args:
        claimed: (C, P) int64 track of each detection (-1: none; modified: singles set to -1).
        counts: (C,) int64 real detections per view.
        T: number of tracks.

    Returns:
        members (M, 2) int64 (view, detection) of every claim, by track then view then detection;
        n_views (T,) int64 claims per track (slices of ``members``);
        left_views: number of views with a real detection no track holds (after the release).
    """
    C, P = claimed.shape
    n_views = np.zeros(T, dtype=np.int64)
    for c in range(C):
        for p in range(P):
            if claimed[c, p] >= 0:
                n_views[claimed[c, p]] += 1
    start = np.empty(T, dtype=np.int64)
    total = 0
    for t in range(T):
        start[t] = total
        total += n_views[t]
    members = np.empty((total, 2), dtype=np.int64)
    for c in range(C):
        for p in range(P):
            t = claimed[c, p]
            if t >= 0:
                members[start[t], 0], members[start[t], 1] = c, p
                start[t] += 1
                if n_views[t] == 1:
                    claimed[c, p] = -1
    left_views = 0
    for c in range(C):
        for p in range(min(counts[c], P)):
            if claimed[c, p] < 0:
                left_views += 1
                break
    return members, n_views, left_views
