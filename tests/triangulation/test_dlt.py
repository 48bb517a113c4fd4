import numpy as np
import pytest
from synth import person, ring_rig

from core.errors import ShapeError
from triangulation.dlt import triangulate_dlt, triangulate_robust


def _obs(rig, X, rng=None, noise_px=0.0):
    uv = np.stack([cam.undistort_px(cam.project(X)) for cam in rig])  # (C, N, 2)
    if noise_px:
        uv = uv + rng.normal(scale=noise_px, size=uv.shape)
    return uv


def test_noise_free_exact(rig, rng):
    X = rng.uniform([-1, -1, 0], [1, 1, 2], size=(200, 3))
    got = triangulate_dlt(rig.projections(), _obs(rig, X), np.ones((4, 200)))
    assert np.abs(got - X).max() < 1e-6


def test_noise_free_exact_with_distortion(rng):
    rig = ring_rig(dist=np.array([-0.12, 0.05, 0.001, -0.0015, 0.0]))
    X = rng.uniform([-1, -1, 0], [1, 1, 2], size=(100, 3))
    uv = np.stack([cam.undistort_px(cam.project(X)) for cam in rig])
    res = triangulate_robust(rig.projections(), uv, np.ones((4, 100)))
    assert np.abs(res.points - X).max() < 1e-6
    assert (res.conf == 1).all()


def test_accuracy_under_pixel_noise(rig, rng):
    X = rng.uniform([-1, -1, 0], [1, 1, 2], size=(500, 3))
    got = triangulate_dlt(rig.projections(), _obs(rig, X, rng, noise_px=2.0), np.ones((4, 500)))
    err = np.linalg.norm(got - X, axis=1)
    # f = 1000 px at ~4 m: 2 px is ~8 mm per view; four views average it down.
    assert np.median(err) < 0.01
    assert err.max() < 0.05


def test_rigid_transform_equivariance(rig, rng):
    X = rng.uniform([-1, -1, 0], [1, 1, 2], size=(50, 3))
    P = rig.projections()
    uv = _obs(rig, X, rng, noise_px=1.0)
    R = np.linalg.qr(rng.normal(size=(3, 3)))[0]
    R *= np.sign(np.linalg.det(R))
    t = rng.normal(size=3)
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = R, t
    P2 = P @ np.linalg.inv(T)  # same cameras, world moved by (R, t)
    a = triangulate_dlt(P, uv, np.ones((4, 50)))
    b = triangulate_dlt(P2, uv, np.ones((4, 50)))
    # The algebraic (DLT) error is not exactly invariant to translation under noise: allow 1 mm.
    assert np.abs(b - (a @ R.T + t)).max() < 1e-3


def test_outlier_view_rejected(rig, rng):
    X = person((0.2, -0.1))
    uv = _obs(rig, X)
    uv[2, 9] += [80.0, -60.0]  # left wrist misplaced in one view
    res = triangulate_robust(rig.projections(), uv, np.ones((4, 17)), max_reproj_px=10.0)
    assert not res.used[2, 9] and res.used[:, 9].sum() == 3
    assert np.linalg.norm(res.points[9] - X[9]) < 1e-6
    assert res.used[:, [0, 5, 10]].all()


def test_joints_with_fewer_than_two_views_are_missing(rig):
    X = person((0.0, 0.0))
    uv = _obs(rig, X)
    conf = np.ones((4, 17))
    conf[1:, 3] = 0.0  # joint 3 seen by one view only
    conf[:, 4] = 0.1  # joint 4 below the confidence threshold everywhere
    res = triangulate_robust(rig.projections(), uv, conf, min_conf=0.3)
    assert res.conf[3] == 0 and res.conf[4] == 0
    assert (res.points[[3, 4]] == 0).all()
    assert (res.conf[[0, 1, 2, 5]] == 1).all()


def test_inconsistent_two_view_joint_is_missing(rig):
    X = person((0.0, 0.0))
    uv = _obs(rig, X)
    conf = np.ones((4, 17))
    conf[2:, 7] = 0.0
    uv[1, 7] += [0.0, 90.0]  # two views disagree: nothing to drop, so the joint is missing
    res = triangulate_robust(rig.projections(), uv, conf, max_reproj_px=10.0)
    assert res.conf[7] == 0


def test_shape_errors(rig):
    with pytest.raises(ShapeError, match="weights"):
        triangulate_dlt(rig.projections(), np.zeros((4, 3, 2)), np.ones((4, 2)))
    with pytest.raises(ShapeError, match="points_px"):
        triangulate_dlt(rig.projections(), np.zeros((3, 3, 2)), np.ones((3, 3)))
    with pytest.raises(ShapeError, match="min_views"):
        triangulate_robust(rig.projections(), np.zeros((4, 3, 2)), np.ones((4, 3)), min_views=1)


def test_equals_least_squares_of_the_weighted_rows(rig, rng):
    # The normal matrix built from per-camera constants is the one of the explicit DLT rows
    # w (u p3 - p1), w (v p3 - p2) (rows normalised by |p3[:3]|), solved with X4 = 1.
    X = rng.uniform([-1, -1, 0], [1, 1, 2], size=(20, 3))
    uv = _obs(rig, X, rng, noise_px=3.0)
    w = rng.uniform(0.2, 1.0, (4, 20))
    w[1, :5] = 0.0
    P = rig.projections() * rng.uniform(0.5, 2.0, (4, 1, 1))  # the scale of each P must not matter
    got = triangulate_dlt(P, uv, w)
    Pn = P / np.linalg.norm(P[:, 2, :3], axis=1)[:, None, None]
    for n in range(20):
        A = np.concatenate([w[:, n, None] * (uv[:, n, :1] * Pn[:, 2] - Pn[:, 0]),
                            w[:, n, None] * (uv[:, n, 1:] * Pn[:, 2] - Pn[:, 1])])  # fmt: skip
        ref = np.linalg.lstsq(A[:, :3], -A[:, 3], rcond=None)[0]
        np.testing.assert_allclose(got[n], ref, atol=1e-9)


def test_two_rigs_in_turn(rng):
    # Per-rig constants are reused from call to call: a different rig must not get the last one's.
    rigs = [ring_rig(4), ring_rig(5, radius=3.0)]
    X = rng.uniform([-1, -1, 0], [1, 1, 2], size=(30, 3))
    for r in rigs + rigs:
        res = triangulate_robust(r.projections(), _obs(r, X), np.ones((len(r), 30)))
        assert np.abs(res.points - X).max() < 1e-6


def _robust_reference(P, uv, conf, min_conf, max_px, min_views):
    """triangulate_robust one point at a time, as its docstring states it: least squares of the
    weighted rows, then the worst view above ``max_px`` dropped while more than ``min_views`` remain."""
    Pn = P / np.linalg.norm(P[:, 2, :3], axis=1)[:, None, None]
    C, N = conf.shape
    pts, out_conf, used_all, errs = np.zeros((N, 3)), np.zeros(N), np.zeros((C, N), bool), np.zeros((C, N))
    for n in range(N):
        used = conf[:, n] >= min_conf
        for _ in range(C - min_views + 1):
            w = np.where(used, conf[:, n], 0.0)[:, None]
            A = np.concatenate([w * (uv[:, n, :1] * Pn[:, 2] - Pn[:, 0]), w * (uv[:, n, 1:] * Pn[:, 2] - Pn[:, 1])])
            X = np.linalg.lstsq(A[:, :3], -A[:, 3], rcond=None)[0]
            q = P @ np.append(X, 1.0)
            err, depth = np.linalg.norm(q[:, :2] / q[:, 2:] - uv[:, n], axis=1), q[:, 2]
            worst = int(np.argmax(np.where(used, err, -1.0)))
            if err[worst] <= max_px or used.sum() <= min_views:
                break
            used[worst] = False
        if used.sum() >= min_views and (err[used] <= max_px).all() and (depth[used] > 0).all():
            pts[n], out_conf[n], used_all[:, n], errs[used, n] = X, conf[used, n].mean(), used, err[used]
    return pts, out_conf, used_all, errs


@pytest.mark.parametrize("seed", range(5))
def test_robust_equals_per_point_reference(seed):
    # Batched rounds (only the points that lost a view re-triangulated, view counts and weights kept
    # incrementally) give what the per-point loop gives, with several views wrong per point.
    rng = np.random.default_rng(seed)
    r = ring_rig(7, radius=4.0)
    X = rng.uniform([-1, -1, 0], [1, 1, 2], size=(60, 3))
    uv = _obs(r, X, rng, noise_px=1.0)
    bad = rng.uniform(size=uv.shape[:2]) < 0.2
    uv[bad] += rng.normal(scale=60.0, size=(int(bad.sum()), 2))
    conf = rng.uniform(0.0, 1.0, uv.shape[:2])
    res = triangulate_robust(r.projections(), uv, conf, 0.3, 8.0, 2)
    pts, out_conf, used, errs = _robust_reference(r.projections(), uv, conf, 0.3, 8.0, 2)
    assert (res.used == used).all() and used[:, (used.sum(axis=0) > 0)].any()
    assert ((~used).sum(axis=0) - (conf < 0.3).sum(axis=0)).max() >= 2  # some points lost several views
    np.testing.assert_allclose(res.points, pts, atol=1e-7)
    np.testing.assert_allclose(res.conf, out_conf, atol=1e-12)
    np.testing.assert_allclose(res.errors, errs, atol=1e-6)


def test_cramer_fallback_solves_what_lapack_solves(rng):
    # The fallback of a batch LAPACK finds singular: Cramer's rule on the same (N, 12) rows.
    from triangulation.dlt import _cramer

    A = rng.normal(size=(40, 3, 3)) + 4 * np.eye(3)
    b = rng.normal(size=(40, 3))
    R = np.concatenate([A.reshape(40, 9), b], axis=1)
    np.testing.assert_allclose(_cramer(R).T, np.linalg.solve(A, b[..., None])[..., 0], rtol=1e-10, atol=1e-12)


def test_degenerate_rays_give_finite_points_and_no_error(monkeypatch):
    # Two copies of the camera [I | 0] and a point on its optical axis: the rays coincide and the 3 x 3
    # system is exactly singular, which LAPACK refuses; the batch then goes to Cramer's rule. A point
    # with one weighted view is singular too. Neither may raise or give NaN.
    import triangulation.dlt as dlt

    calls = []
    cramer = dlt._cramer
    monkeypatch.setattr(dlt, "_cramer", lambda R: calls.append(len(R)) or cramer(R))
    P2 = np.stack([np.hstack([np.eye(3), np.zeros((3, 1))])] * 2)
    uv = np.zeros((2, 3, 2))
    uv[:, 1] = [0.1, -0.2]
    w = np.ones((2, 3))
    w[1, 2] = 0.0
    got = triangulate_dlt(P2, uv, w)
    assert calls == [3] and np.isfinite(got).all()
    res = triangulate_robust(P2, uv, w)
    assert np.isfinite(res.points).all() and res.conf[2] == 0
