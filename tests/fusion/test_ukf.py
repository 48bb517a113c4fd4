"""The batched UKF against filterpy's UnscentedKalmanFilter on the same model (the reference)."""

from __future__ import annotations

import numpy as np
import pytest
from filterpy.common import Q_discrete_white_noise
from filterpy.kalman import MerweScaledSigmaPoints, UnscentedKalmanFilter
from synth import ring_projections

from fusion.ukf import SigmaWeights, constant_velocity_noise, predict, project_points, update


def test_process_noise_matches_filterpy():
    dt = np.array([0.01, 1 / 30, 0.2])
    Q = constant_velocity_noise(dt, 3.0)
    for b, d in enumerate(dt):
        ref = np.kron(Q_discrete_white_noise(dim=2, dt=d, var=9.0), np.eye(3))
        np.testing.assert_allclose(Q[b], ref, rtol=0, atol=1e-15)


@pytest.mark.parametrize("n_cams", [1, 3, 4, 12])  # from 4: more pixel coordinates than points (Woodbury)
@pytest.mark.parametrize(("alpha", "atol"), [(0.5, 1e-9), (1e-3, 1e-7)])
def test_batched_filter_equals_filterpy(alpha, atol, n_cams):
    """Equal to 1e-9 at the default alpha; at 1e-3 both lose digits to weights of order 1e6."""
    rng = np.random.default_rng(3)
    projections = ring_projections(n_cams)
    B, steps = 6, 25
    weights = SigmaWeights(6, alpha=alpha, beta=2.0, kappa=0.0)
    x0 = np.c_[rng.normal(0, 0.5, (B, 3)), np.zeros((B, 3))]
    P0 = np.tile(np.diag([0.03**2] * 3 + [1.0] * 3), (B, 1, 1))
    refs = []
    for b in range(B):
        f = UnscentedKalmanFilter(6, 2, 1 / 30, None, None, MerweScaledSigmaPoints(6, alpha, 2.0, 0.0))
        f.x, f.P = x0[b].copy(), P0[b].copy()
        refs.append(f)

    def fx(s, dt):
        out = s.copy()
        out[:3] += dt * s[3:]
        return out

    x, P = x0.copy(), P0.copy()
    truth = x0[:, :3].copy()
    vel = rng.normal(0, 0.8, (B, 3))
    for _ in range(steps):
        dt = rng.uniform(0.01, 0.05, B)  # views enter at their own times: steps differ per filter
        truth += vel * dt[:, None]
        z = project_points(truth, projections) + rng.normal(0, 1.5, (B, n_cams, 2))
        mask = rng.random((B, n_cams)) < 0.6
        mask[0] = False  # a filter with no view keeps its prediction
        var = rng.uniform(1.0, 9.0, (B, n_cams))
        Q = constant_velocity_noise(dt, 4.0)
        x, P = predict(x, P, dt, Q, weights)
        res = update(x, P, z, mask, var, projections, weights)
        x, P = res.x, res.P
        for b, f in enumerate(refs):
            f.Q = Q[b]
            f.predict(dt=dt[b], fx=fx)
            cams = np.nonzero(mask[b])[0]
            if len(cams):
                f.update(
                    z[b, cams].ravel(),
                    R=np.diag(np.repeat(var[b, cams], 2)),
                    hx=lambda s, cams=cams: project_points(s[:3], projections[cams]).ravel(),
                )
                d2 = float(f.y @ np.linalg.solve(f.S, f.y))
                np.testing.assert_allclose(res.mahalanobis2[b], d2, rtol=1e3 * atol)
            else:
                assert res.mahalanobis2[b] == 0.0 and res.n_views[b] == 0
            np.testing.assert_allclose(x[b], f.x, rtol=0, atol=atol)
            np.testing.assert_allclose(P[b], f.P, rtol=0, atol=atol)
    # The filter tracks: the position error ends well below the 2D noise's metric size (one view
    # leaves the depth unobserved).
    seen = np.arange(1, B)
    assert n_cams == 1 or np.median(np.linalg.norm(x[seen, :3] - truth[seen], axis=1)) < 0.02


def test_sigma_points_reproduce_mean_and_covariance():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(3, 6, 6))
    P = A @ np.swapaxes(A, 1, 2) + 0.1 * np.eye(6)
    x = rng.normal(size=(3, 6))
    w = SigmaWeights(6, alpha=0.3)
    s = w.points(x, P)
    mean = np.einsum("s,bsd->bd", w.Wm, s)
    dev = s - mean[:, None]
    cov = np.einsum("s,bsd,bse->bde", w.Wc, dev, dev) - (1 - w.alpha**2 + w.beta) * np.einsum(
        "bd,be->bde", dev[:, 0], dev[:, 0]
    )
    np.testing.assert_allclose(mean, x, atol=1e-12)
    np.testing.assert_allclose(cov, P, atol=1e-9)


def test_position_points_fold_the_velocity_points_into_the_centre():
    """For a function of the position, the 7 folded points give the 13 points' mean, covariance and
    cross-covariance with the state (what the update uses), to rounding."""
    rng = np.random.default_rng(4)
    A = rng.normal(size=(5, 6, 6))
    P = A @ np.swapaxes(A, 1, 2) * 0.01 + 1e-4 * np.eye(6)
    x = np.c_[rng.normal(0, 0.5, (5, 3)) + [0, 0, 4], rng.normal(0, 1, (5, 3))]
    projections = ring_projections(3)
    for w in (SigmaWeights(6), SigmaWeights(6, alpha=0.3, kappa=1.0)):
        full = w.points(x, P)  # (B, 13, 6)
        dev, wm, wc = w.position_points(P)
        assert dev.shape == (5, 7, 6) and wm.shape == wc.shape == (7,)
        np.testing.assert_allclose(wm.sum(), 1.0, atol=1e-12)
        for pts, m, c in ((full, w.Wm, w.Wc), (x[:, None] + dev, wm, wc)):
            h = project_points(pts[..., :3], projections).reshape(5, pts.shape[1], -1)
            mean = np.einsum("s,bsk->bk", m, h)
            cov = np.einsum("s,bsk,bsl->bkl", c, h - mean[:, None], h - mean[:, None])
            cross = np.einsum("s,bsi,bsk->bik", c, pts - x[:, None], h - mean[:, None])
            if pts is full:
                ref = (mean, cov, cross)
        np.testing.assert_allclose(mean, ref[0], rtol=1e-12)
        np.testing.assert_allclose(cov, ref[1], rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(cross, ref[2], rtol=1e-9, atol=1e-9)
