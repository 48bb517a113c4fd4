"""The compiled track-claim loops (matching._claim_kernels) against plain numpy references.

The references are the numpy versions the kernels replaced: projection by matrix product, median
distances by :func:`core.numeric.masked_median`, the Hungarian assignment per view, and the left/right
test and swap by fancy indexing. Random inputs with unknown and unusable joints, NaN detections, exact
ties (integer pixels), padding, and empty cases.
"""

from __future__ import annotations

import numpy as np
import pytest

from core.numeric import masked_median
from matching._claim_kernels import claim_kernel, group_kernel
from matching.track_claims import claim_detections, project_tracks
from matching.tracks import assign_detections_to_tracks
from matching.unflip import unflip_claimed, unflip_xy

LEFT = np.array([1, 3, 5, 7, 9, 11, 13, 15])
RIGHT = np.array([2, 4, 6, 8, 10, 12, 14, 16])


def _project_ref(P, focal_px, preds, gate_m):
    C, (T, J) = len(P), preds.shape[:2]
    proj = (P[:, :, :3] @ preds[..., :3].reshape(-1, 3).T + P[:, :, 3:]).reshape(C, 3, T, J)
    depth = proj[:, 2]
    valid = (preds[..., 3] > 0)[None] & (depth > 0.1)
    uv = np.moveaxis(proj[:, :2] / np.where(valid, depth, 1.0)[:, None], 1, -1)
    n = valid.sum(axis=2)
    mean = np.where(valid, depth, 0.0).sum(axis=2) / np.maximum(n, 1)
    return uv, valid, np.where(n > 0, gate_m * focal_px[:, None] / np.maximum(mean, 1e-3), 0.0)


def _cost_ref(uv, valid, gates, pts, conf, min_conf, min_common):
    """(C, T, P) median pixel distances over joints known in the track and usable in the detection; inf
    where the joint boxes lie further apart than the gate (NaN boxes included), as numpy's pruning."""
    usable = conf >= min_conf
    both = valid[:, :, None] & usable[:, None]  # (C, T, P, J)
    diff = uv[:, :, None] - pts[:, None]
    cost = masked_median(np.hypot(diff[..., 0], diff[..., 1]), both, min_common)

    def box(xy, mask):  # (C, N, 2) lower and upper corners
        m = mask[..., None]
        return np.where(m, xy, 1e300).min(axis=2), np.where(m, xy, -1e300).max(axis=2)

    (t_lo, t_hi), (d_lo, d_hi) = box(uv, valid), box(pts, usable)
    gap = np.maximum(d_lo[:, None] - t_hi[:, :, None], t_lo[:, :, None] - d_hi[:, None])  # (C, T, P, 2)
    near = (gap <= gates[:, :, None, None]).all(axis=-1)
    return np.where(near, cost, np.inf)


def _claims_ref(cost, gates, counts):
    """The numpy claims: each track's nearest admissible detection where those are all different (first of
    equal costs), else the view's Hungarian assignment."""
    C, T, P = cost.shape
    claimed = np.full((C, P), -1, dtype=np.int64)
    for c, n in enumerate(counts):
        allowed = cost[c] <= gates[c][:, None]
        nearest = np.where(allowed, cost[c], np.inf).argmin(axis=1) if P else np.zeros(T, dtype=np.int64)
        has = allowed.any(axis=1)
        if np.bincount(nearest[has], minlength=P).max(initial=0) <= 1:
            claimed[c, nearest[has]] = np.nonzero(has)[0]
        elif n:
            claimed[c, :n] = assign_detections_to_tracks(cost[c, :, :n], gates[c])
    return claimed


def _unflip_ref(pts, conf, claimed, uv, valid, left, right, lifted, ratio=0.5):
    c_idx, p_idx = np.nonzero(claimed >= 0)
    if c_idx.size == 0 or left.size == 0:
        return 0
    t = claimed[c_idx, p_idx]
    D, U, V, Cf = pts[c_idx, p_idx], uv[c_idx, t], valid[c_idx, t], conf[c_idx, p_idx]
    dl, dr, ul, ur = D[:, left], D[:, right], U[:, left], U[:, right]

    def dist(a, b):
        return np.hypot(a[..., 0] - b[..., 0], a[..., 1] - b[..., 1])

    keep, swap = dist(dl, ul) + dist(dr, ur), dist(dl, ur) + dist(dr, ul)
    usable = V[:, left] & V[:, right] & (Cf[:, left] > 0) & (Cf[:, right] > 0)
    k, pair = np.nonzero(usable & (swap < ratio * keep))
    cv, p, li, ri = c_idx[k], p_idx[k], left[pair], right[pair]
    pts[cv, p, li], pts[cv, p, ri] = pts[cv, p, ri], pts[cv, p, li]
    conf[cv, p, li], conf[cv, p, ri] = conf[cv, p, ri], conf[cv, p, li]
    for view, lift in enumerate(lifted):
        if lift is not None:
            s = cv == view
            for arr in lift:
                arr[p[s], li[s]], arr[p[s], ri[s]] = arr[p[s], ri[s]], arr[p[s], li[s]]
    return int(k.size)


def _scene(rng, C, T, P, J=17, integer=False, nan=False):
    """Tracks near a few centres, detections of them (or strangers) with noise, weak joints, padding."""
    centers = rng.uniform(0, 300, (max(T, 1), 2))
    uv = centers[None, :T, None] + rng.normal(scale=20, size=(C, T, J, 2))
    valid = rng.uniform(size=(C, T, J)) > 0.15
    counts = rng.integers(0, P + 1, C) if P else np.zeros(C, dtype=np.int64)
    pts, conf = np.zeros((C, P, J, 2)), np.zeros((C, P, J))
    for c in range(C):
        n = counts[c]
        src = rng.integers(0, max(T, 1), n)
        base = uv[c, src] if T else rng.uniform(0, 300, (n, J, 2))
        pts[c, :n] = base + rng.normal(scale=rng.uniform(2, 25), size=(n, J, 2))
        conf[c, :n] = rng.uniform(0.05, 1, (n, J))
    if integer:  # exact ties of distances
        uv, pts = np.round(uv / 4), np.round(pts / 4)
    if nan and pts.size:
        pts[rng.uniform(size=pts.shape[:3]) < 0.03] = np.nan
    gates = rng.uniform(2, 40, (C, T)) if not integer else rng.integers(1, 8, (C, T)).astype(float)
    return uv, valid, gates, pts, conf, counts.astype(np.int64)


@pytest.mark.parametrize("seed", range(6))
def test_project_kernel_equals_numpy(seed):
    rng = np.random.default_rng(seed)
    C, T, J = int(rng.integers(1, 6)), int(rng.integers(0, 5)), 17
    P = rng.normal(size=(C, 3, 4)) * [[500], [500], [1]]
    preds = np.concatenate([rng.normal(scale=2, size=(T, J, 3)), rng.uniform(-0.5, 1, (T, J, 1))], axis=2)
    preds[:1, :, 3] = 0.0  # an unknown track
    focal = rng.uniform(500, 1500, C)
    got, ref = project_tracks(P, focal, preds, 0.3), _project_ref(P, focal, preds, 0.3)
    assert got[0].shape == (C, T, J, 2) and got[1].dtype == bool
    np.testing.assert_allclose(got[0], ref[0], rtol=1e-12, atol=1e-9)
    np.testing.assert_array_equal(got[1], ref[1])
    np.testing.assert_allclose(got[2], ref[2], rtol=1e-12)


@pytest.mark.parametrize("seed", range(40))
def test_claim_kernel_costs_and_claims_equal_numpy(seed):
    rng = np.random.default_rng(seed)
    C, T, P = int(rng.integers(1, 6)), int(rng.integers(0, 7)), int(rng.integers(0, 8))
    uv, valid, gates, pts, conf, counts = _scene(rng, C, T, P, integer=seed % 3 == 1, nan=seed % 3 == 2)
    min_common = int(rng.integers(1, 8))
    claimed, cost, hungarian = claim_kernel(uv, valid, gates, pts, conf, counts, 0.3, min_common)
    ref = _cost_ref(uv, valid, gates, pts, conf, 0.3, min_common)
    within = ref <= gates[..., None]
    # Within the gates the medians are numpy's, bit for bit; beyond them the kernel may skip the pair.
    np.testing.assert_array_equal(cost[within], ref[within])
    assert not (cost[~within] <= gates[..., None].repeat(P, axis=2)[~within]).any()
    want = _claims_ref(ref, gates, counts)
    got = claim_detections(uv, valid, gates, pts, conf, counts, 0.3, min_common)
    np.testing.assert_array_equal(got, want)
    direct = ~hungarian
    np.testing.assert_array_equal(claimed[direct], want[direct])


def test_claim_kernel_empty_and_one_view():
    rng = np.random.default_rng(0)
    for C, T, P in ((0, 2, 3), (1, 0, 3), (1, 2, 0), (1, 3, 4)):
        uv, valid, gates, pts, conf, counts = _scene(rng, C, T, P)
        got = claim_detections(uv, valid, gates, pts, conf, counts, 0.3, 5)
        assert got.shape == (C, P) and got.dtype == np.int64
        np.testing.assert_array_equal(got, _claims_ref(_cost_ref(uv, valid, gates, pts, conf, 0.3, 5), gates, counts))


@pytest.mark.parametrize("seed", range(20))
def test_unflip_equals_numpy(seed):
    rng = np.random.default_rng(seed)
    C, T, P, J = int(rng.integers(1, 5)), int(rng.integers(1, 5)), int(rng.integers(1, 6)), 17
    uv, valid, _, pts, conf, counts = _scene(rng, C, T, P, integer=seed % 2 == 1)
    claimed = np.where(rng.uniform(size=(C, P)) < 0.7, rng.integers(0, T, (C, P)), -1)
    for c, p in zip(*np.nonzero(rng.uniform(size=(C, P)) < 0.5), strict=True):  # swapped detections
        pts[c, p, LEFT], pts[c, p, RIGHT] = pts[c, p, RIGHT], pts[c, p, LEFT].copy()
    conf[rng.uniform(size=conf.shape) < 0.1] = 0.0
    lifted = [None] + [(rng.normal(size=(P, J, 4)), rng.normal(size=(P, J, 3, 3))) for _ in range(C - 1)]
    ratio = float(rng.uniform(0.3, 1.2))
    want = [pts.copy(), conf.copy(), [None if x is None else tuple(a.copy() for a in x) for x in lifted]]
    n_ref = _unflip_ref(*want[:2], claimed, uv, valid, LEFT, RIGHT, want[2], ratio)
    got_pts, got_conf = pts.copy(), conf.copy()
    n = unflip_claimed(got_pts, got_conf, claimed, uv, valid, LEFT, RIGHT, lifted, ratio)
    assert n == n_ref
    np.testing.assert_array_equal(got_pts, want[0])
    np.testing.assert_array_equal(got_conf, want[1])
    for a, b in zip(lifted[1:], want[2][1:], strict=True):
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
    # The coordinate-first entry point: the same swaps, from a non-contiguous pts.
    xy_pts = np.moveaxis(np.moveaxis(pts, -1, 0).copy(), 0, -1)
    conf2 = conf.copy()
    n_xy = unflip_xy(
        xy_pts, conf2, claimed, np.moveaxis(pts, -1, 0), np.moveaxis(uv, -1, 0), valid, LEFT, RIGHT, None, ratio
    )
    assert n_xy == n_ref
    np.testing.assert_array_equal(xy_pts, want[0])
    np.testing.assert_array_equal(conf2, want[1])


def test_unflip_nothing_claimed_or_no_pairs():
    pts, conf = np.ones((2, 3, 17, 2)), np.ones((2, 3, 17))
    uv, valid = np.zeros((2, 1, 17, 2)), np.ones((2, 1, 17), bool)
    assert unflip_claimed(pts, conf, np.full((2, 3), -1), uv, valid, LEFT, RIGHT) == 0
    assert unflip_claimed(pts, conf, np.zeros((2, 3), int), uv, valid, LEFT[:0], RIGHT[:0]) == 0


@pytest.mark.parametrize("seed", range(10))
def test_group_kernel_equals_numpy(seed):
    rng = np.random.default_rng(seed)
    C, P, T = int(rng.integers(0, 6)), int(rng.integers(0, 6)), int(rng.integers(0, 5))
    claimed = (
        np.where(rng.uniform(size=(C, P)) < 0.6, rng.integers(0, max(T, 1), (C, P)), -1) if T else np.full((C, P), -1)
    )
    counts = rng.integers(0, P + 1, C).astype(np.int64)
    claimed[np.arange(P) >= counts[:, None]] = -1
    c_idx, i_idx = np.nonzero(claimed >= 0)
    t_idx = claimed[c_idx, i_idx]
    order = np.argsort(t_idx, kind="stable")
    n_views = np.bincount(t_idx, minlength=T)
    released = claimed.copy()
    for c, i in zip(c_idx, i_idx, strict=True):
        if n_views[claimed[c, i]] == 1:
            released[c, i] = -1
    left = ((released < 0) & (np.arange(P) < counts[:, None])).any(axis=1).sum()
    members, got_n, got_left = group_kernel(claimed, counts, T)
    np.testing.assert_array_equal(members, np.stack([c_idx[order], i_idx[order]], axis=1).reshape(-1, 2))
    np.testing.assert_array_equal(got_n, n_views)
    np.testing.assert_array_equal(claimed, released)
    assert got_left == left
