"""The compiled loops of the robust DLT (triangulation._dlt_kernels) and of core.numeric.masked_median
against straightforward per-point / per-row numpy references, edge cases included."""

import numpy as np
import pytest
from synth import ring_rig

from core.numeric import masked_median
from triangulation.dlt import _cramer, triangulate_dlt, triangulate_robust


def _reference(P, uv, conf, min_conf, max_px, min_views):
    """triangulate_robust point by point: the normal equations of the weighted rows (rows normalised by
    |p3[:3]|) solved by np.linalg.solve, the worst view in use above ``max_px`` dropped while more than
    ``min_views`` remain; a point with fewer than 2 weighted views is 0."""
    C, N = conf.shape
    Pn = P / np.linalg.norm(P[:, 2, :3], axis=1)[:, None, None]
    pts, out_conf, used_all, errs = np.zeros((N, 3)), np.zeros(N), np.zeros((C, N), bool), np.zeros((C, N))
    for n in range(N):
        used = conf[:, n] >= min_conf
        for _ in range(max(0, C - min_views) + 1):
            w = np.where(used, conf[:, n], 0.0)[:, None]
            A = np.concatenate([w * (uv[:, n, :1] * Pn[:, 2] - Pn[:, 0]), w * (uv[:, n, 1:] * Pn[:, 2] - Pn[:, 1])])
            X = np.zeros(3)
            if np.count_nonzero(w) >= 2:
                X = np.linalg.solve(A[:, :3].T @ A[:, :3], -A[:, :3].T @ A[:, 3])
            q = P @ np.append(X, 1.0)
            err, depth = np.linalg.norm(q[:, :2] / q[:, 2:] - uv[:, n], axis=1), q[:, 2]
            e = np.where(used, err, -1.0)
            if not C or e.max() <= max_px or used.sum() <= min_views:
                break
            used[np.argmax(e)] = False
        if used.sum() >= min_views and (err[used] <= max_px).all() and (depth[used] > 0).all():
            pts[n], out_conf[n], used_all[:, n], errs[used, n] = X, conf[used, n].mean(), used, err[used]
    return pts, out_conf, used_all, errs


def _scene(rng, C, N, outliers=0.15, unseen=0.3):
    r = ring_rig(max(C, 1), radius=4.0)
    P = r.projections()[:C] * rng.uniform(0.5, 2.0, (C, 1, 1))  # the scale of each P must not matter
    X = rng.uniform([-1, -1, 0], [1, 1, 2], size=(N, 3))
    uv = np.stack([cam.undistort_px(cam.project(X)) for cam in r])[:C].reshape(C, N, 2)
    uv = uv + rng.normal(scale=1.0, size=uv.shape)
    bad = rng.uniform(size=(C, N)) < outliers
    uv[bad] += rng.normal(scale=60.0, size=(int(bad.sum()), 2))
    conf = rng.uniform(0.2, 1.0, (C, N))
    conf[rng.uniform(size=(C, N)) < unseen] = 0.0
    return P, uv, conf


@pytest.mark.parametrize(
    ("C", "N", "min_conf", "max_px", "min_views"),
    [(4, 60, 0.3, 8.0, 2), (7, 80, 0.3, 8.0, 3), (32, 170, 0.3, 15.0, 2), (5, 50, 0.0, 10.0, 2),
     (2, 30, 0.3, 8.0, 2), (1, 10, 0.3, 8.0, 2), (0, 5, 0.3, 8.0, 2), (4, 0, 0.3, 8.0, 2)],
)  # fmt: skip
def test_robust_equals_per_point_reference(C, N, min_conf, max_px, min_views):
    rng = np.random.default_rng(C * 1000 + N)
    P, uv, conf = _scene(rng, C, N)
    res = triangulate_robust(P, uv, conf, min_conf, max_px, min_views)
    pts, out_conf, used, errs = _reference(P, uv, conf, min_conf, max_px, min_views)
    assert res.points.shape == (N, 3) and res.conf.shape == (N,) and res.used.shape == res.errors.shape == (C, N)
    assert res.used.dtype == bool and res.points.dtype == res.conf.dtype == res.errors.dtype == np.float64
    assert (res.used == used).all()
    np.testing.assert_allclose(res.points, pts, atol=1e-7)
    np.testing.assert_allclose(res.conf, out_conf, atol=1e-12)
    np.testing.assert_allclose(res.errors, errs, atol=1e-6)
    if C >= 4 and N:
        assert ((conf >= min_conf).sum(axis=0) - used.sum(axis=0)).max() >= 2  # some points lost several views


def test_nan_pixels_of_unseen_views():
    # An unseen view (conf 0) adds 0 x its terms to the normal equations, as in the numpy code: a NaN
    # pixel there makes the point NaN, reported missing (never NaN, never an error); the others unchanged.
    rng = np.random.default_rng(3)
    P, uv, conf = _scene(rng, 6, 40)
    clean = triangulate_robust(P, uv, conf, 0.3, 8.0, 2)
    hit = np.zeros(40, bool)
    hit[::3] = True
    uv[(conf == 0) & hit] = np.nan
    hit &= (conf == 0).any(axis=0)
    res = triangulate_robust(P, uv, conf, 0.3, 8.0, 2)
    assert hit.any() and (res.conf[hit] == 0).all() and (res.points[hit] == 0).all() and not res.used[:, hit].any()
    assert (res.used[:, ~hit] == clean.used[:, ~hit]).all()
    np.testing.assert_array_equal(res.points[~hit], clean.points[~hit])


def test_non_contiguous_and_float32_inputs():
    rng = np.random.default_rng(4)
    P, uv, conf = _scene(rng, 5, 30)
    ref = triangulate_robust(P, uv, conf)
    res = triangulate_robust(P, np.asfortranarray(uv), conf.T.copy().T)
    assert (res.used == ref.used).all() and np.array_equal(res.points, ref.points)
    res32 = triangulate_robust(P, uv.astype(np.float32), conf.astype(np.float32))
    np.testing.assert_allclose(res32.points[res32.conf > 0], ref.points[res32.conf > 0], atol=1e-3)


def test_singular_systems_go_to_cramers_rule():
    # Two copies of one camera: the rays through one pixel coincide and the normal matrix is exactly
    # singular (a zero pivot, 0 / 0 by LU); the kernel solves it by Cramer's rule as triangulate_dlt's
    # fallback does: here the point on the optical axis in front of the cameras, valid, not NaN.
    P2 = np.stack([np.hstack([np.eye(3), [[0.0], [0.0], [4.0]]])] * 2)
    uv = np.zeros((2, 1, 2))
    w = np.ones((2, 1))
    res = triangulate_robust(P2, uv, w)
    assert np.isfinite(res.points).all() and res.used.all() and res.conf[0] == 1
    np.testing.assert_array_equal(res.points, triangulate_dlt(P2, uv, w))
    R = np.zeros((1, 12))
    R[0, [0, 4]] = 2.0  # its normal equations: diag(2, 2, 0), right-hand side 0
    np.testing.assert_array_equal(res.points, _cramer(R).T)


def _median_reference(values, mask, min_count):
    out = np.empty(values.shape[:-1])
    for idx in np.ndindex(out.shape):
        n = int(mask[idx].sum())
        s = np.sort(np.where(mask[idx], values[idx], np.inf))
        k = max(n, 1)
        with np.errstate(invalid="ignore"):
            out[idx] = (s[(k - 1) // 2] + s[k // 2]) / 2 if n >= min_count else np.inf
    return out


@pytest.mark.parametrize("seed", range(4))
def test_masked_median_equals_sorting_each_row(seed):
    # The compiled masked_median (core.numeric) with NaN, +-inf, ties, empty rows and long rows (np.sort).
    rng = np.random.default_rng(seed)
    for shape in [(5, 17), (3, 4, 17), (2, 3, 1), (0, 7), (6, 80), (17,)]:
        v = rng.normal(size=shape)
        if seed % 2:
            v = np.round(v)
        u = rng.uniform(size=shape)
        v[u < 0.1], v[(u > 0.1) & (u < 0.2)], v[(u > 0.2) & (u < 0.25)] = np.nan, np.inf, -np.inf
        mask = rng.uniform(size=shape) < rng.uniform(0.2, 1.0)
        for min_count in (0, 1, 3):
            got = masked_median(v, mask, min_count)
            ref = _median_reference(v, mask, min_count)
            assert isinstance(got, np.ndarray) and got.shape == ref.shape and got.dtype == np.float64
            np.testing.assert_array_equal(got, ref)
