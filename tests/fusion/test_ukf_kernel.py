"""The compiled joint-filter kernels (fusion._ukf_kernels) against plain numpy references: the masked UKF
update as numpy computed it before (batched solves, the Woodbury form from 4 views), and the linear
predict and position spread written out."""

from __future__ import annotations

import numpy as np
import pytest
from synth import ring_projections

from fusion.live_tracks import confidence_from_std, position_std, predict_linear
from fusion.ukf import SigmaWeights, project_points, update


def _reference_update(x, P, z, mask, var, proj, w):
    """The numpy update (7 folded sigma points; S^-1 directly, or the N x N Woodbury inverse when 2 C > N)."""
    B, C = mask.shape
    L = np.linalg.cholesky((w.n + w.lam) * P)
    dev = np.zeros((B, 7, 6))
    dev[:, 1:4] = np.swapaxes(L[:, :, :3], 1, 2)
    dev[:, 4:] = -dev[:, 1:4]
    wm = np.r_[w.Wm[0] + w.Wm[4:7].sum() + w.Wm[10:].sum(), w.Wm[1:4], w.Wm[7:10]]
    wc = np.r_[w.Wc[0] + w.Wc[4:7].sum() + w.Wc[10:].sum(), w.Wc[1:4], w.Wc[7:10]]
    seen = np.repeat(mask, 2, axis=1)  # (B, 2C), [u0, v0, u1, ...]
    h = project_points(x[:, None, :3] + dev[..., :3], proj).reshape(B, 7, 2 * C)
    h = np.where(seen[:, None], h, 0.0)
    zp = np.einsum("k,bki->bi", wm, h)
    D = h - zp[:, None]
    y = np.where(seen, z.reshape(B, 2 * C) - zp, 0.0)
    r = np.repeat(var, 2, axis=1)
    if 2 * C > 7:
        r_inv = np.where(seen, 1.0 / r, 0.0)
        M = np.einsum("bki,bi,bli->bkl", D, r_inv, D) + np.diag(1.0 / wc)
        c = np.einsum("bki,bi,bi->bk", D, r_inv, y)
        sol = np.linalg.solve(M, np.concatenate([c[..., None], dev], axis=2))
        Xt = np.swapaxes(dev, 1, 2)
        x_new = x + (Xt @ sol[..., :1])[..., 0]
        P_new = P + Xt @ sol[..., 1:] - Xt @ (wc[:, None] * dev)
        d2 = np.einsum("bi,bi,bi->b", y, r_inv, y) - np.einsum("bk,bk->b", c, sol[..., 0])
    else:
        S = np.einsum("bki,k,bkj->bij", D, wc, D) + np.eye(2 * C) * np.where(seen, r, 1.0)[:, None]
        Pxz = np.einsum("bkr,k,bki->bri", dev, wc, D)
        sol = np.linalg.solve(S, np.concatenate([np.swapaxes(Pxz, 1, 2), y[..., None]], axis=2))
        x_new = x + (Pxz @ sol[..., -1:])[..., 0]
        P_new = P - Pxz @ sol[..., :-1]
        d2 = np.einsum("bi,bi->b", y, sol[..., -1])
    return x_new, P_new, d2, mask.sum(axis=1)


def _filters(rng, B, C):
    x = np.c_[rng.normal(0, 0.5, (B, 3)) + [0, 0, 1], rng.normal(0, 1.0, (B, 3))]
    A = rng.normal(0, 0.03, (B, 6, 6))
    P = A @ np.swapaxes(A, 1, 2) + np.diag([1e-4] * 3 + [0.05] * 3)
    proj = ring_projections(C)
    z = project_points(x[:, :3] + rng.normal(0, 0.02, (B, 3)), proj)
    var = rng.uniform(1.0, 9.0, (B, C))
    return x, P, z, var, proj


@pytest.mark.parametrize("n_cams", [1, 2, 3, 4, 7, 32])
@pytest.mark.parametrize("weights", [SigmaWeights(6), SigmaWeights(6, alpha=0.3, kappa=1.0)])
def test_update_equals_the_numpy_reference(rng, n_cams, weights):
    B = 40
    x, P, z, var, proj = _filters(rng, B, n_cams)
    mask = rng.random((B, n_cams)) < 0.6
    mask[0] = False  # no view: the prediction stays
    mask[1] = False
    mask[1, -1] = True  # a single view
    mask[2] = True  # every view
    z[~mask] = np.nan  # what unseen views hold does not matter
    var[~mask] = 0.0
    res = update(x, P, z, mask, var, proj, weights)
    ref = _reference_update(x, P, np.nan_to_num(z), mask, np.where(mask, var, 1.0), proj, weights)
    np.testing.assert_allclose(res.x, ref[0], rtol=0, atol=1e-9)
    np.testing.assert_allclose(res.P, ref[1], rtol=0, atol=1e-12)
    np.testing.assert_allclose(res.mahalanobis2, ref[2], rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(res.n_views, ref[3])
    assert res.n_views.dtype == np.int64 and res.mahalanobis2[0] == 0.0
    np.testing.assert_array_equal(res.x[0], x[0])  # exactly
    np.testing.assert_array_equal(res.P[0], P[0])


def test_update_drops_unseen_views_exactly_and_takes_any_layout(rng):
    x, P, z, var, proj = _filters(rng, 6, 8)
    mask = np.zeros((6, 8), bool)
    mask[:, [1, 5, 6]] = True
    full = update(x, P, z, mask, var, proj)
    # Fortran-ordered and int-mask inputs give the same result.
    again = update(np.asfortranarray(x), P.transpose(0, 2, 1).copy().transpose(0, 2, 1), z, mask.astype(int), var, proj)
    np.testing.assert_array_equal(full.x, again.x)
    np.testing.assert_array_equal(full.P, again.P)
    # The Woodbury form with 3 seen views of 8 equals the direct form with those 3 views alone.
    sub = update(x, P, z[:, [1, 5, 6]], mask[:, [1, 5, 6]], var[:, [1, 5, 6]], proj[[1, 5, 6]])
    np.testing.assert_allclose(full.x, sub.x, rtol=0, atol=1e-10)
    np.testing.assert_allclose(full.P, sub.P, rtol=0, atol=1e-12)
    np.testing.assert_allclose(full.mahalanobis2, sub.mahalanobis2, rtol=1e-9)


def test_update_of_no_filter_and_errors(rng):
    for C in (1, 4):
        res = update(np.zeros((0, 6)), np.zeros((0, 6, 6)), np.zeros((0, C, 2)), np.zeros((0, C), bool),
                     np.zeros((0, C)), ring_projections(C))  # fmt: skip
        assert res.x.shape == (0, 6) and res.P.shape == (0, 6, 6) and res.n_views.shape == (0,)
    x, P, z, var, proj = _filters(rng, 3, 4)
    P[1, 4, 4] = -1.0  # not positive definite
    with pytest.raises(np.linalg.LinAlgError):
        update(x, P, z, np.ones((3, 4), bool), var, proj)


def test_linear_predict_and_spread_equal_plain_numpy(rng):
    B = 20
    x, P, *_ = _filters(rng, B, 1)
    dt = rng.uniform(0.0, 0.1, B)
    for accel in (3.0, rng.uniform(1.0, 6.0, B)):
        F = np.kron(np.array([[1.0, 0.0], [0.0, 1.0]]), np.eye(3)) + np.kron([[0.0, 1.0], [0.0, 0.0]], np.eye(3))
        Fb = np.tile(F, (B, 1, 1))
        Fb[:, :3, 3:] *= dt[:, None, None]
        var = np.broadcast_to(np.asarray(accel) ** 2, (B,))
        q = np.stack([[0.25 * dt**4, 0.5 * dt**3], [0.5 * dt**3, dt**2]]).transpose(2, 0, 1) * var[:, None, None]
        Q = np.einsum("bij,kl->bikjl", q, np.eye(3)).reshape(B, 6, 6)
        x1, P1 = predict_linear(x, P, dt, accel)
        np.testing.assert_allclose(x1, np.einsum("bij,bj->bi", Fb, x), rtol=0, atol=1e-15)
        np.testing.assert_allclose(P1, Fb @ P @ np.swapaxes(Fb, 1, 2) + Q, rtol=0, atol=1e-15)
    x0, P0 = predict_linear(np.zeros((0, 6)), np.zeros((0, 6, 6)), np.zeros(0), 2.0)
    assert x0.shape == (0, 6) and P0.shape == (0, 6, 6)
    P4 = P.reshape(4, 5, 6, 6)
    ref = np.sqrt(np.maximum(np.trace(P4[..., :3, :3], axis1=-2, axis2=-1), 0.0) / 3.0)
    np.testing.assert_array_equal(position_std(P4), ref)
    assert position_std(np.zeros((0, 17, 6, 6))).shape == (0, 17)
    assert position_std(P[0]) == ref[0, 0] and np.ndim(position_std(P[0])) == 0
    s = rng.uniform(0.0, 0.2, (4, 5))
    np.testing.assert_array_equal(confidence_from_std(s), 1.0 / (1.0 + (s / 0.05) ** 2))
    assert confidence_from_std(np.zeros((0, 3))).shape == (0, 3) and confidence_from_std(0.05) == 0.5
