"""Tests for calibration/bundle.py: exact recovery, Jacobian sparsity, fixed blocks, rigid objects."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation
from synth import look_at_camera

from calibration.bundle import (
    BundleProblem,
    ExtraResiduals,
    Observations,
    ParameterLayout,
    Refine,
    bundle_adjust,
    project_camera_points,
)
from calibration.camera import Camera
from core.errors import ShapeError

DIST = np.array([-0.2, 0.05, 1e-3, -5e-4, 0.0])


def _rig(n: int = 4, dist=DIST) -> list[Camera]:
    """n cameras on a 3 m ring at 1.5 m height looking at (0, 0, 1), 640x480, f 600 px."""
    out = []
    for i in range(n):
        a = 2 * np.pi * i / n
        center = np.array([3 * np.cos(a), 3 * np.sin(a), 1.5])
        out.append(look_at_camera(f"c{i}", center, np.array([0.0, 0.0, 1.0]), f=600.0, size=(640, 480), dist=dist))
    return out


def _perturb(cam: Camera, rng: np.random.Generator, rot: float = 0.02, trans: float = 0.05) -> Camera:
    dR = Rotation.from_rotvec(rng.normal(scale=rot, size=3)).as_matrix()
    return Camera(cam.name, cam.K, cam.dist, dR @ cam.R, cam.t + rng.normal(scale=trans, size=3), cam.size)


def _observe(cams: list[Camera], X: np.ndarray) -> Observations:
    cam_idx = np.repeat(np.arange(len(cams)), len(X))
    point_idx = np.tile(np.arange(len(X)), len(cams))
    return Observations(cam_idx, point_idx, np.concatenate([c.project(X) for c in cams]))


def test_project_camera_points_matches_camera_project(rng):
    cam = _rig(1)[0]
    X = rng.uniform(-0.5, 0.5, (50, 3)) + [0, 0, 1]
    Xc = cam.to_camera(X)
    m = len(X)
    intr = np.tile([cam.K[0, 0], cam.K[1, 1], cam.K[0, 2], cam.K[1, 2]], (m, 1))
    uv = project_camera_points(Xc, intr, np.zeros(m), np.tile(cam.dist, (m, 1)))
    np.testing.assert_allclose(uv, cam.project(X), atol=1e-9)


def test_recovers_perturbed_camera_and_points_noiseless(rng):
    """Two held cameras fix the gauge (including scale); a third camera and the points are recovered."""
    cams = _rig(3)
    X = rng.uniform(-0.6, 0.6, (40, 3)) + [0, 0, 1]
    obs = _observe(cams, X)
    start = [cams[0], cams[1], _perturb(cams[2], rng)]
    X0 = X + rng.normal(scale=0.02, size=X.shape)
    res = bundle_adjust(BundleProblem(start, obs, points=X0, fixed_cameras=[0, 1]), loss="linear")
    assert res.rms_initial_px > 1.0
    assert res.rms_final_px < 1e-6
    assert res.status > 0 and res.n_iterations >= 1
    np.testing.assert_allclose(res.points, X, atol=1e-6)
    np.testing.assert_allclose(res.cameras[2].R, cams[2].R, atol=1e-7)
    np.testing.assert_allclose(res.cameras[2].t, cams[2].t, atol=1e-6)


def test_fixed_cameras_stay_fixed(rng):
    cams = _rig(3)
    X = rng.uniform(-0.6, 0.6, (30, 3)) + [0, 0, 1]
    obs = _observe(cams, X)
    start = [_perturb(c, rng) for c in cams]
    # the held cameras are wrong: their residuals pull on them, yet they must not move
    res = bundle_adjust(BundleProblem(start, obs, X, fixed_cameras=[0, 2], fixed_points=True), loss="linear")
    for i in (0, 2):
        np.testing.assert_array_equal(res.cameras[i].R, start[i].R)
        np.testing.assert_array_equal(res.cameras[i].t, start[i].t)
        np.testing.assert_array_equal(res.cameras[i].K, start[i].K)
    np.testing.assert_array_equal(res.points, X)
    # camera 1 moved to where the held points and held cameras put it
    np.testing.assert_allclose(res.cameras[1].center, cams[1].center, atol=1e-5)
    assert not np.allclose(res.cameras[1].t, start[1].t)


def test_rigid_object_poses_recovered_with_known_layout(rng):
    """A board of known layout (held points) seen at 5 poses: the poses and a camera are recovered."""
    cams = _rig(2)
    gx, gy = np.meshgrid(np.arange(6) * 0.05, np.arange(4) * 0.05)
    board = np.stack([gx.ravel() - 0.125, gy.ravel() - 0.075, np.zeros(gx.size)], axis=1)
    Rq = Rotation.from_rotvec(rng.normal(scale=0.3, size=(5, 3)) + [0, 0, np.pi / 4]).as_matrix()
    tq = rng.uniform(-0.3, 0.3, (5, 3)) + [0, 0, 1]
    cam_idx, point_idx, pose_idx, uv = [], [], [], []
    for q in range(5):
        Xw = board @ Rq[q].T + tq[q]
        for c, cam in enumerate(cams):
            cam_idx += [c] * len(board)
            point_idx += list(range(len(board)))
            pose_idx += [q] * len(board)
            uv.append(cam.project(Xw))
    obs = Observations(cam_idx, point_idx, np.concatenate(uv), pose_idx=pose_idx)
    Rq0 = Rotation.from_rotvec(rng.normal(scale=0.05, size=(5, 3))).as_matrix() @ Rq
    problem = BundleProblem([cams[0], _perturb(cams[1], rng)], obs, board, Rq0, tq + 0.03, fixed_cameras=[0],
                            fixed_points=True)  # fmt: skip
    res = bundle_adjust(problem)
    assert res.rms_final_px < 1e-6
    np.testing.assert_allclose(res.R_pose, Rq, atol=1e-7)
    np.testing.assert_allclose(res.t_pose, tq, atol=1e-7)
    np.testing.assert_allclose(res.cameras[1].center, cams[1].center, atol=1e-6)


def _tiny_problem(rng, refine=Refine.NONE, extra=None) -> BundleProblem:
    """3 cameras, 2 poses, 5 points (2 world points, 3 object points), sparse visibility."""
    cams = [_perturb(c, rng) for c in _rig(3)]
    obs = Observations(
        cam_idx=[0, 0, 1, 1, 2, 2, 2, 0],
        point_idx=[0, 2, 1, 3, 4, 2, 0, 4],
        uv_px=rng.uniform(100, 400, (8, 2)),
        pose_idx=[-1, 0, -1, 1, 1, 0, -1, 0],
    )
    X = rng.uniform(-0.8, 0.8, (5, 3)) + [0, 0, 1]  # away from the image centres (k2 is felt)
    Rq = Rotation.from_rotvec(rng.normal(scale=0.2, size=(2, 3))).as_matrix()
    return BundleProblem(
        cams, obs, X, Rq, rng.normal(scale=0.1, size=(2, 3)), fixed_cameras=[0], fixed_points=[1],
        refine=refine, extra=extra,
    )  # fmt: skip


def _numeric_nonzeros(problem: BundleProblem, rng) -> np.ndarray:
    """Non-zero pattern of a dense central-difference Jacobian, at two random points (union)."""
    out = np.zeros((problem.residuals(problem.x0).size, problem.x0.size), dtype=bool)
    for _ in range(2):
        x = problem.x0 + rng.normal(scale=1e-3, size=problem.x0.size)
        for j in range(x.size):
            h = np.zeros_like(x)
            h[j] = 1e-6
            out[:, j] |= np.abs(problem.residuals(x + h) - problem.residuals(x - h)) > 1e-11
    return out


@pytest.mark.parametrize("refine", [Refine.NONE, Refine.FOCAL | Refine.PRINCIPAL_POINT | Refine.DISTORTION])
def test_jac_sparsity_equals_finite_difference_nonzeros(rng, refine):
    problem = _tiny_problem(rng, refine)
    pattern = problem.jac_sparsity().toarray()
    numeric = _numeric_nonzeros(problem, rng)
    assert pattern.shape == numeric.shape
    np.testing.assert_array_equal(pattern, numeric)


def test_free_parameter_count_follows_flags(rng):
    lay = ParameterLayout(3, 2, 5)
    base = _tiny_problem(rng).free.sum()
    # 2 free cameras x 6 + 2 poses x 6 + 4 free points x 3
    assert base == 2 * 6 + 2 * 6 + 4 * 3
    full = _tiny_problem(rng, Refine.FOCAL | Refine.DISTORTION).free
    assert full.sum() == base + 3 * 4  # fx, fy, k1, k2 of every camera, the held one included
    assert full[lay.camera_columns(0)].tolist() == [False] * 6 + [True, True, False, False, True, True]


def test_extra_residuals_are_appended_and_solved(rng):
    """An extra residual pulling a free point onto a target moves it there (sparsity on its columns)."""
    cams = _rig(2)
    X = rng.uniform(-0.5, 0.5, (10, 3)) + [0, 0, 1]
    obs = _observe(cams, X[:9])  # point 9 is seen by no camera: only the extra residual knows it
    lay = ParameterLayout(2, 0, 10)
    target = np.array([0.1, 0.2, 0.3])
    sparsity = np.zeros((3, lay.n_params), dtype=bool)
    sparsity[:, lay.point_columns(9)] = True
    extra = ExtraResiduals(lambda s: 100.0 * (s.points[9] - target), sparsity)
    res = bundle_adjust(BundleProblem(cams, obs, X, fixed_cameras=[0, 1], extra=extra), loss="linear")
    np.testing.assert_allclose(res.points[9], target, atol=1e-8)
    np.testing.assert_allclose(res.points[:9], X[:9], atol=1e-8)


def test_refines_focal_and_distortion(rng):
    """Focal length and k1 of one camera, wrong by 2% and 0.05, are recovered from a known object."""
    cams = _rig(3)
    X = rng.uniform(-0.7, 0.7, (80, 3)) + [0, 0, 1]
    obs = _observe(cams, X)
    bad = cams[1]
    K = bad.K.copy()
    K[0, 0] *= 1.02
    K[1, 1] *= 1.02
    start = [cams[0], Camera(bad.name, K, bad.dist + [0.05, 0, 0, 0, 0], bad.R, bad.t, bad.size), cams[2]]
    problem = BundleProblem(
        start, obs, X, fixed_cameras=[0, 1, 2], fixed_intrinsics=[0, 2], fixed_points=True,
        refine=Refine.FOCAL | Refine.DISTORTION,
    )  # fmt: skip
    res = bundle_adjust(problem, loss="linear")
    np.testing.assert_allclose(res.cameras[1].K, bad.K, atol=1e-5)
    np.testing.assert_allclose(res.cameras[1].dist, bad.dist, atol=1e-8)


def test_robust_loss_resists_outliers(rng):
    cams = _rig(4)
    X = rng.uniform(-0.6, 0.6, (40, 3)) + [0, 0, 1]
    obs = _observe(cams, X)
    uv = obs.uv_px.copy()
    uv += rng.normal(scale=0.3, size=uv.shape)
    bad = rng.choice(len(uv), 8, replace=False)
    uv[bad] += rng.uniform(30, 60, (8, 2))
    obs = Observations(obs.cam_idx, obs.point_idx, uv)
    start = [cams[0]] + [_perturb(c, rng) for c in cams[1:]]
    problem = BundleProblem(start, obs, X, fixed_cameras=[0], fixed_points=True)
    robust = bundle_adjust(problem, loss="soft_l1", f_scale_px=1.0)
    plain = bundle_adjust(problem, loss="linear")
    err = [max(np.linalg.norm(r.cameras[i].center - cams[i].center) for i in range(4)) for r in (robust, plain)]
    # 0.3 px noise alone leaves about 5 mm here; the outliers drag the plain solution 20+ cm
    assert err[0] < 0.02
    assert err[0] < err[1] / 10


def test_bad_input_raises(rng):
    cams = _rig(2)
    with pytest.raises(ShapeError, match="uv_px"):
        Observations([0, 1], [0, 0], np.zeros((3, 2)))
    with pytest.raises(ShapeError, match="cam_idx must be in"):
        BundleProblem(cams, Observations([0, 2], [0, 0], np.zeros((2, 2))), np.zeros((1, 3)))
    with pytest.raises(ShapeError, match="nothing to solve"):
        BundleProblem(cams, Observations([0, 1], [0, 0], np.zeros((2, 2))), np.zeros((1, 3)), fixed_cameras=[0, 1],
                      fixed_points=True)  # fmt: skip
    with pytest.raises(ShapeError, match="loss must be"):
        bundle_adjust(BundleProblem(cams, Observations([0], [0], np.zeros((1, 2))), np.zeros((1, 3))), loss="l2")
    with pytest.raises(ShapeError, match="weights"):
        Observations([0], [0], np.zeros((1, 2)), weights=[-1.0])
