"""Tests for calibration/camera.py: projection, undistortion, fundamental matrix, validation, rigs."""

from __future__ import annotations

import doctest

import cv2
import numpy as np
import pytest
from synth import look_at_camera

import calibration.camera
from calibration.camera import Camera, CameraRig, fundamental_matrix
from core.errors import CalibrationError

DIST = np.array([-0.25, 0.08, 1e-3, -5e-4, -0.01])  # k1, k2, p1, p2, k3: a strong but real lens


def _cam(name: str = "a", center=(4.0, 0.5, 1.5), dist=DIST) -> Camera:
    return look_at_camera(name, np.array(center), np.array([0.0, 0.0, 1.0]), dist=dist)


def _points(rng: np.random.Generator, n: int = 200) -> np.ndarray:
    """(n, 3) world points in a 2 m cube around (0, 0, 1), metres."""
    return rng.uniform(-1.0, 1.0, (n, 3)) + np.array([0.0, 0.0, 1.0])


def _pinhole(cam: Camera, X: np.ndarray) -> np.ndarray:
    h = X @ cam.P[:, :3].T + cam.P[:, 3]
    return h[:, :2] / h[:, 2:]


def test_project_matches_opencv(rng):
    cam, X = _cam(), _points(rng)
    uv = cam.project(X)
    ref = cv2.projectPoints(X, cv2.Rodrigues(cam.R)[0], cam.t, cam.K, cam.dist)[0].reshape(-1, 2)
    assert uv.shape == (len(X), 2)
    np.testing.assert_allclose(uv, ref, rtol=0, atol=1e-9)


def test_project_without_distortion_is_pinhole(rng):
    cam, X = _cam(dist=np.zeros(5)), _points(rng)
    assert not cam.has_distortion
    np.testing.assert_allclose(cam.project(X), _pinhole(cam, X), rtol=0, atol=1e-9)


def test_undistort_inverts_distortion(rng):
    cam, X = _cam(), _points(rng)
    und = cam.undistort_px(cam.project(X))
    np.testing.assert_allclose(und, _pinhole(cam, X), rtol=0, atol=1e-6)


def test_undistort_empty_and_no_distortion():
    cam = _cam(dist=np.zeros(5))
    pts = np.array([[10.0, 20.0]])
    np.testing.assert_array_equal(cam.undistort_px(pts), pts)
    assert _cam().undistort_px(np.zeros((0, 2))).shape == (0, 2)


def test_center_and_to_camera():
    cam = _cam(center=(3.0, -1.0, 2.0))
    np.testing.assert_allclose(cam.center, [3.0, -1.0, 2.0], atol=1e-12)
    target = cam.to_camera(np.array([[0.0, 0.0, 1.0]]))
    np.testing.assert_allclose(target[0, :2], 0.0, atol=1e-12)  # look_at target is on the axis
    assert target[0, 2] > 0


def test_arrays_are_read_only():
    cam = _cam()
    for arr in (cam.K, cam.dist, cam.R, cam.t):
        assert not arr.flags.writeable


def test_fundamental_matrix_epipolar_constraint(rng):
    a, b = _cam("a"), _cam("b", center=(-1.0, 4.0, 2.0), dist=np.zeros(5))
    X = _points(rng)
    xa = np.c_[_pinhole(a, X), np.ones(len(X))]
    xb = np.c_[_pinhole(b, X), np.ones(len(X))]
    F = fundamental_matrix(a, b)
    assert F.shape == (3, 3)
    assert np.linalg.norm(F) == pytest.approx(1.0)
    assert abs(np.linalg.det(F)) < 1e-12  # rank 2
    lines = xa @ F.T  # epipolar lines in view b
    dist_px = np.abs(np.einsum("ni,ni->n", xb, lines)) / np.hypot(lines[:, 0], lines[:, 1])
    assert dist_px.max() < 1e-6


def test_fundamental_matrix_matches_opencv_up_to_scale(rng):
    a, b = _cam("a"), _cam("b", center=(-1.0, 4.0, 2.0), dist=np.zeros(5))
    X = _points(rng)
    F = fundamental_matrix(a, b)
    F_cv, _ = cv2.findFundamentalMat(_pinhole(a, X), _pinhole(b, X), cv2.FM_8POINT)
    F_cv = F_cv / np.linalg.norm(F_cv)
    F_cv *= np.sign(np.sum(F_cv * F))
    np.testing.assert_allclose(F, F_cv, atol=1e-8)


@pytest.mark.parametrize(
    ("field", "value", "needle"),
    [
        ("K", np.eye(3)[:2], "K must be (3, 3)"),
        ("dist", np.zeros(3), "dist must have 4, 5 or 8"),
        ("dist", np.r_[np.zeros(5), 0.1, 0.0, 0.0], "rational"),
        ("R", np.diag([1.0, 1.0, -1.0]), "rotation"),
        ("R", 2 * np.eye(3), "rotation"),
        ("t", np.zeros(2), "t must be (3"),
        ("K", np.diag([1000.0, 1000.0, 2.0]), "K[2,2]"),
        ("K", np.diag([-1000.0, 1000.0, 1.0]), "positive focal"),
        ("K", np.full((3, 3), np.nan), "finite"),
        ("size", (0, 1080), "image size"),
    ],
)
def test_bad_camera_raises(field, value, needle):
    kwargs = {"K": np.diag([1000.0, 1000.0, 1.0]), "dist": np.zeros(5), "R": np.eye(3), "t": np.zeros(3)}
    kwargs["size"] = (1920, 1080)
    kwargs[field] = value
    with pytest.raises(CalibrationError) as info:
        Camera("bad", **kwargs)
    assert needle in str(info.value)
    assert "'bad'" in str(info.value)


def test_four_coefficient_distortion_is_padded():
    cam = _cam(dist=np.array([0.1, 0.01, 0.001, 0.002]))
    np.testing.assert_array_equal(cam.dist, [0.1, 0.01, 0.001, 0.002, 0.0])


def test_rig_lookup(rig):
    assert len(rig) == 4
    assert rig.names == ("cam0", "cam1", "cam2", "cam3")
    assert rig["cam2"] is rig[2]
    assert rig.index("cam3") == 3
    assert [c.name for c in rig] == list(rig.names)
    assert rig.subset(["cam3", "cam0"]).names == ("cam3", "cam0")
    P = rig.projections()
    assert P.shape == (4, 3, 4)
    np.testing.assert_allclose(P[1], rig[1].K @ np.c_[rig[1].R, rig[1].t])


def test_rig_unknown_name_lists_cameras(rig):
    with pytest.raises(CalibrationError, match="no camera 'cam9'.*cam0, cam1, cam2, cam3"):
        rig["cam9"]
    with pytest.raises(CalibrationError):
        rig.subset(["cam0", "nope"])


def test_rig_rejects_duplicates_and_empty(rig):
    with pytest.raises(CalibrationError, match="unique"):
        CameraRig((rig[0], rig[0]))
    with pytest.raises(CalibrationError, match="at least one"):
        CameraRig(())


def test_doctests():
    result = doctest.testmod(calibration.camera, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
