"""Tests for calibration/intrinsics.py: Zhang calibration, frame selection, outliers, error messages."""

from __future__ import annotations

import numpy as np
import pytest
from boards import random_board_poses, render_views
from scipy.spatial.transform import Rotation

from calibration.board import Board, BoardView, detect_board
from calibration.camera import Camera
from calibration.intrinsics import calibrate_intrinsics, coverage_mask, select_views
from core.errors import CalibrationError

SIZE = (640, 480)
CHARUCO = Board("charuco", 7, 5, 0.04, 0.03, "DICT_4X4_50")
GRID = Board("checkerboard", 9, 6, 0.03)


def _camera(
    name: str, fx: float, fy: float, cx: float, cy: float, dist=(0, 0, 0, 0, 0), yaw_deg: float = 0.0
) -> Camera:
    """A 640x480 camera placed somewhere in the world (its pose must not matter for intrinsics)."""
    R = Rotation.from_euler("zyx", [yaw_deg, 10.0, -5.0], degrees=True).as_matrix()
    K = np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1.0]])
    return Camera(name, K, np.array(dist, dtype=float), R, np.array([0.3, -1.2, 2.5]), SIZE)


CAMERAS = [
    _camera("cam0", 520.0, 520.0, 322.0, 238.0),
    _camera("cam1", 600.0, 601.0, 310.0, 250.0, (-0.12, 0.03, 0.0, 0.0, 0.0), 90.0),
    _camera("cam2", 680.0, 679.0, 330.0, 236.0, (-0.2, 0.06, 0.0005, -0.0008, 0.0), 180.0),
    _camera("cam3", 760.0, 760.0, 318.0, 244.0, (0.05, -0.02, 0.0, 0.0, 0.0), 270.0),
]


def _projected_views(cam: Camera, board: Board, poses, noise_px: float = 0.0, rng=None) -> list[BoardView]:
    """Board views made by projecting the corners (no image), optionally with Gaussian pixel noise."""
    views = []
    for i, (R, t) in enumerate(poses):
        uv = cam.project(board.object_points() @ R.T + t)
        if noise_px:
            uv = uv + rng.normal(scale=noise_px, size=uv.shape)
        views.append(BoardView(cam.name, i, np.arange(board.n_corners), uv, board.object_points()))
    return views


@pytest.mark.slow
def test_synthetic_charuco_images_recover_focal_within_half_percent(rng):
    """Issue acceptance: 4 virtual cameras, 18 rendered ChArUco poses each: f within 0.5%, centre within 3 px."""
    for cam in CAMERAS:
        poses = random_board_poses(CHARUCO, cam, 18, rng)
        images = render_views(CHARUCO, [cam], poses, rng=rng)[cam.name]
        views = [v for i, img in enumerate(images) if (v := detect_board(img, CHARUCO, cam.name, i)) is not None]
        assert len(views) >= 16, f"{cam.name}: board found in {len(views)} of 18 images"
        res = calibrate_intrinsics(views, SIZE)
        assert res.camera == cam.name and res.size == SIZE
        assert abs(res.K[0, 0] / cam.K[0, 0] - 1) < 0.005, (cam.name, res.K[0, 0])
        assert abs(res.K[1, 1] / cam.K[1, 1] - 1) < 0.005, (cam.name, res.K[1, 1])
        assert np.abs(res.K[:2, 2] - cam.K[:2, 2]).max() < 3.0, (cam.name, res.K[:2, 2])
        assert res.rms_px < 0.3 and res.per_view_rms_px.shape == (res.n_views_used,)
        # the lens: with the same K, the fitted and true distortion move points of the covered
        # region (up to 0.35 focal lengths off-axis) by the same amount, within 0.3 px
        X = np.stack(np.meshgrid(np.linspace(-0.35, 0.35, 9), np.linspace(-0.26, 0.26, 7), [1.0]), -1).reshape(-1, 3)
        true_lens = Camera("t", res.K, cam.dist, np.eye(3), np.zeros(3), SIZE).project(X)
        assert np.abs(res.to_camera().project(X) - true_lens).max() < 0.3, cam.name
        assert abs(res.dist[0] - cam.dist[0]) < 0.01, (cam.name, res.dist)


def test_exact_on_noise_free_corners(rng):
    cam = CAMERAS[2]
    views = _projected_views(cam, GRID, random_board_poses(GRID, cam, 15, rng))
    res = calibrate_intrinsics(views, SIZE, fix_k3=True)
    np.testing.assert_allclose(res.K, cam.K, atol=1e-3)
    np.testing.assert_allclose(res.dist, cam.dist, atol=1e-5)
    assert res.rms_px < 1e-3 and res.n_outliers == 0 and res.n_views_used == res.n_views_given == 15
    assert res.std_px.shape == (4,) and np.all(res.std_px >= 0)


def test_flags_fix_k3_and_tangential(rng):
    cam = _camera("c", 600.0, 600.0, 320.0, 240.0, (-0.15, 0.04, 0.002, -0.001, 0.01))
    views = _projected_views(cam, GRID, random_board_poses(GRID, cam, 15, rng), 0.1, rng)
    free = calibrate_intrinsics(views, SIZE, fix_k3=False)
    assert free.dist[4] != 0.0 and abs(free.dist[2] - 0.002) < 5e-4
    fixed = calibrate_intrinsics(views, SIZE, fix_k3=True, zero_tangent=True)
    assert fixed.dist[4] == 0.0 and fixed.dist[2] == 0.0 and fixed.dist[3] == 0.0
    assert fixed.rms_px > free.rms_px  # the true lens has tangential terms: the constrained fit is worse


def test_selection_from_a_long_video_keeps_coverage_and_accuracy(rng):
    """300 views of a board swept slowly (a video): 30 are chosen, covering the image like all 300."""
    cam = CAMERAS[1]
    keys = random_board_poses(GRID, cam, 11, rng)
    poses = []
    for (R0, t0), (R1, t1) in zip(keys[:-1], keys[1:], strict=True):
        rel = Rotation.from_matrix(R1 @ R0.T).as_rotvec()
        for s in np.linspace(0, 1, 30, endpoint=False):
            poses.append((Rotation.from_rotvec(s * rel).as_matrix() @ R0, (1 - s) * t0 + s * t1))
    views = [v for v in _projected_views(cam, GRID, poses, 0.15, rng) if _inside(v.image_px)]
    assert len(views) > 200
    chosen = select_views(views, SIZE, 30)
    assert len(chosen) == 30 and len({v.frame for v in chosen}) == 30
    assert [v.frame for v in chosen] == sorted(v.frame for v in chosen)
    all_cover = coverage_mask(views, SIZE).mean()
    assert coverage_mask(chosen, SIZE).mean() >= 0.9 * all_cover
    evenly = views[:: len(views) // 30][:30]  # for comparison: every n-th frame
    assert coverage_mask(chosen, SIZE).mean() >= coverage_mask(evenly, SIZE).mean()
    res = calibrate_intrinsics(views, SIZE, max_views=30)
    assert res.n_views_used == 30 and res.n_views_given == len(views)
    assert abs(res.K[0, 0] / cam.K[0, 0] - 1) < 0.005 and np.abs(res.K[:2, 2] - cam.K[:2, 2]).max() < 3


def _inside(uv: np.ndarray) -> bool:
    return bool(np.all((uv >= 0) & (uv <= np.array(SIZE) - 1)))


def test_outlier_view_dropped_and_recalibrated(rng):
    cam = CAMERAS[0]
    views = _projected_views(cam, GRID, random_board_poses(GRID, cam, 14, rng), 0.1, rng)
    bad = views[5]
    shuffled = bad.image_px + rng.normal(scale=4.0, size=bad.image_px.shape)  # a badly misdetected board
    views[5] = BoardView(bad.camera, bad.frame, bad.ids, shuffled, bad.object_m)
    res = calibrate_intrinsics(views, SIZE)
    assert res.n_outliers == 1 and 5 not in res.frames.tolist() and res.n_views_used == 13
    assert res.rms_px < 0.2
    assert abs(res.K[0, 0] / cam.K[0, 0] - 1) < 0.003


def test_too_few_views_message(rng):
    cam = CAMERAS[0]
    views = _projected_views(cam, GRID, random_board_poses(GRID, cam, 3, rng))
    message = r"camera 'cam0': the board was found in 3 usable views; need at least 4"
    with pytest.raises(CalibrationError, match=message):
        calibrate_intrinsics(views, SIZE)
    short = [BoardView("cam0", 9, np.arange(5), views[0].image_px[:5], views[0].object_m[:5])]
    with pytest.raises(CalibrationError, match="found in 3 usable views"):  # 5 corners: not usable
        calibrate_intrinsics([*views, *short], SIZE)


def test_too_little_coverage_message(rng):
    """Boards only in the top-left corner of the image."""
    cam = CAMERAS[0]
    poses = []
    for _ in range(6):
        R = Rotation.from_rotvec(rng.normal(scale=0.3, size=3)).as_matrix()
        poses.append((cam.R.T @ R, cam.R.T @ (np.array([-0.55, -0.42, 1.6]) - cam.t)))
    views = _projected_views(cam, GRID, poses)
    assert all(_inside(v.image_px) for v in views)
    with pytest.raises(CalibrationError, match=r"the board covers only \d+% of the 640x480 image \(need 15%\)"):
        calibrate_intrinsics(views, SIZE)


def test_input_errors(rng):
    cam = CAMERAS[0]
    views = _projected_views(cam, GRID, random_board_poses(GRID, cam, 5, rng))
    other = [BoardView("camX", v.frame, v.ids, v.image_px, v.object_m) for v in views]
    with pytest.raises(CalibrationError, match="views of one camera"):
        calibrate_intrinsics(views + other, SIZE)
    with pytest.raises(CalibrationError, match="outside the 320x240 image"):
        calibrate_intrinsics(views, (320, 240))
    with pytest.raises(CalibrationError, match="image size must be positive"):
        calibrate_intrinsics(views, (0, 480))


def test_coverage_mask_full_and_empty():
    edges = [[-0.5, -0.5], [639.5, -0.5], [639.5, 479.5], [-0.5, 479.5]]  # the image's outer corners
    full = BoardView("c", 0, np.arange(4), edges, np.zeros((4, 3)))
    assert coverage_mask([full], SIZE).all()
    assert not coverage_mask([], SIZE).any()
    assert coverage_mask([full], SIZE).shape == (24, 32)


def test_to_camera_pose(rng):
    cam = CAMERAS[3]
    res = calibrate_intrinsics(_projected_views(cam, GRID, random_board_poses(GRID, cam, 6, rng)), SIZE)
    plain = res.to_camera()
    assert plain.name == "cam3" and plain.size == SIZE
    np.testing.assert_array_equal(plain.R, np.eye(3))
    np.testing.assert_array_equal(plain.t, np.zeros(3))
    posed = res.to_camera(cam.R, cam.t)
    np.testing.assert_allclose(posed.K, res.K)
    np.testing.assert_allclose(posed.center, cam.center)
