"""Tests for calibration/board.py: board geometry and validation, spec strings, corner detection."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from boards import board_texture, render_view
from scipy.spatial.transform import Rotation

import calibration.board as board_mod
from calibration.board import MIN_CHARUCO_CORNERS, Board, detect_board, parse_board
from calibration.camera import Camera
from core.errors import CalibrationError, ShapeError

CHECKER = Board("checkerboard", 8, 5, 0.04)
CHARUCO = Board("charuco", 7, 5, 0.04, 0.03, "DICT_4X4_50")


def _camera(f: float = 500.0, size=(640, 480), dist=None) -> Camera:
    """A camera at the world origin looking along +z (world = camera frame)."""
    K = np.array([[f, 0, size[0] / 2], [0, f, size[1] / 2], [0, 0, 1.0]])
    return Camera("cam0", K, np.zeros(5) if dist is None else dist, np.eye(3), np.zeros(3), size)


def _frontal_pose(cam: Camera, corner0_px: tuple[float, float], depth: float = 1.0):
    """Board parallel to the image at ``depth`` m with corner 0 (board origin) on pixel ``corner0_px``."""
    x = (corner0_px[0] - cam.K[0, 2]) / cam.K[0, 0] * depth
    y = (corner0_px[1] - cam.K[1, 2]) / cam.K[1, 1] * depth
    return np.eye(3), np.array([x, y, depth])


def _truth(board: Board, cam: Camera, pose) -> np.ndarray:
    return cam.project(board.object_points() @ pose[0].T + pose[1])


def _match_error(found: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Distance from each true corner to the nearest found one (a checkerboard's labelling may be flipped)."""
    return np.linalg.norm(truth[:, None] - found[None], axis=2).min(axis=1)


# --- Board and parse_board -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("chessboard", 8, 5, 0.04), "kind"),
        (("checkerboard", 2, 5, 0.04), "at least 3 x 3"),
        (("checkerboard", 8, 5, 0.0), "square_m"),
        (("checkerboard", 8, 5, float("nan")), "square_m"),
        (("checkerboard", 8, 5, 0.04, 0.03), "no marker_m"),
        (("charuco", 7, 5, 0.04, 0.04, "DICT_4X4_50"), "marker_m"),
        (("charuco", 7, 5, 0.04, None, "DICT_4X4_50"), "marker_m"),
        (("charuco", 7, 5, 0.04, 0.03, "DICT_9X9_50"), "unknown ArUco dictionary"),
        (("charuco", 7, 5, 0.04, 0.03, "getPredefinedDictionary"), "unknown ArUco dictionary"),
        (("charuco", 11, 11, 0.04, 0.03, "DICT_4X4_50"), "needs 60 markers"),
    ],
)
def test_board_validation_raises_one_line(args, fragment):
    with pytest.raises(CalibrationError, match=fragment) as info:
        Board(*args)
    assert "\n" not in str(info.value)


def test_object_points_checkerboard_row_major():
    pts = CHECKER.object_points()
    assert pts.shape == (40, 3) and CHECKER.n_corners == 40
    np.testing.assert_allclose(pts[9], [0.04, 0.04, 0.0])  # second row, second corner
    np.testing.assert_allclose(pts[-1], [7 * 0.04, 4 * 0.04, 0.0])


def test_object_points_charuco_match_opencv():
    dictionary = cv2.aruco.getPredefinedDictionary(cv2.aruco.DICT_4X4_50)
    cv_board = cv2.aruco.CharucoBoard((7, 5), 0.04, 0.03, dictionary)
    np.testing.assert_allclose(CHARUCO.object_points(), cv_board.getChessboardCorners(), atol=1e-7)
    assert CHARUCO.n_corners == 24


@pytest.mark.parametrize("spec", ["checkerboard:4x7:0.06", "charuco:5x7:0.04:0.03:DICT_4X4_50"])
def test_parse_board_round_trip(spec):
    board = parse_board(spec)
    assert board.spec() == spec
    assert parse_board(board.spec()) == board


def test_parse_board_values():
    assert parse_board("checkerboard:4x7:0.06") == Board("checkerboard", 4, 7, 0.06)
    assert parse_board("charuco:5X7:0.04:0.03:dict_5x5_100") == Board("charuco", 5, 7, 0.04, 0.03, "DICT_5X5_100")


@pytest.mark.parametrize(
    "spec", ["checkerboard:4x7", "checkerboard:4by7:0.06", "charuco:5x7:0.04:DICT_4X4_50", "circles:4x7:0.06", ""]
)
def test_parse_board_malformed(spec):
    with pytest.raises(CalibrationError, match="expected checkerboard:COLSxROWS"):
        parse_board(spec)


# --- checkerboard detection ------------------------------------------------------------------


def test_checkerboard_frontal_corners_are_where_drawn():
    """Squares of 20 px with corner 0 at pixel (200, 150): corner (c, r) is at (200 + 20 c, 150 + 20 r)."""
    cam = _camera()
    img = render_view(CHECKER, cam, _frontal_pose(cam, (200.0, 150.0)), noise=0.0, blur_px=0.5)
    view = detect_board(img, CHECKER, "cam0", 7)
    assert view is not None and view.camera == "cam0" and view.frame == 7
    assert len(view) == 40
    np.testing.assert_array_equal(view.ids, np.arange(40))
    np.testing.assert_allclose(view.object_m, CHECKER.object_points())
    c, r = np.meshgrid(np.arange(8), np.arange(5))
    expected = np.stack([200 + 20.0 * c.ravel(), 150 + 20.0 * r.ravel()], axis=1)
    assert _match_error(view.image_px, expected).max() < 0.3
    # the labelling is a symmetry of the grid: neighbours in id are neighbours in the image
    assert np.allclose(np.linalg.norm(np.diff(view.image_px.reshape(5, 8, 2), axis=1), axis=2), 20.0, atol=0.5)


def test_checkerboard_tilted_distorted_colour(rng):
    dist = np.array([-0.2, 0.05, 0.001, -0.001, 0.0])
    cam = _camera(f=560.0, dist=dist)
    R = Rotation.from_euler("xyz", [25, -20, 10], degrees=True).as_matrix()
    pose = (R, np.array([-0.15, -0.1, 0.9]))
    gray = render_view(CHECKER, cam, pose, rng=rng)
    bgr = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
    view = detect_board(bgr, CHECKER, "cam0", 0)
    assert view is not None
    err = _match_error(view.image_px, _truth(CHECKER, cam, pose))
    assert err.mean() < 0.1 and err.max() < 0.4
    bgra = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGRA)
    np.testing.assert_allclose(detect_board(bgra, CHECKER, "cam0", 0).image_px, view.image_px)


@pytest.mark.parametrize("second_pass", [True, False])
def test_checkerboard_large_image_search_then_refine(rng, monkeypatch, second_pass):
    """Searched at 640 px then refined at 1280x960: by the full-size second search, or by cornerSubPix."""
    if not second_pass:
        monkeypatch.setattr(board_mod, "_find_in_region", lambda *args, **kwargs: None)
    cam = _camera(f=1100.0, size=(1280, 960))
    R = Rotation.from_euler("xyz", [-20, 15, 5], degrees=True).as_matrix()
    pose = (R, np.array([0.05, -0.08, 1.2]))
    img = render_view(CHECKER, cam, pose, rng=rng)
    view = detect_board(img, CHECKER, "cam0", 0, search_px=640)
    assert view is not None
    err = _match_error(view.image_px, _truth(CHECKER, cam, pose))
    assert err.mean() < 0.15 and err.max() < 0.4


def test_checkerboard_not_found_returns_none(rng):
    cam = _camera()
    assert detect_board(np.full((480, 640), 200, np.uint8), CHECKER, "cam0", 0) is None
    assert detect_board(rng.integers(0, 256, (480, 640), dtype=np.uint8), CHECKER, "cam0", 0) is None
    # half the board out of the image: not every corner can be found
    cut = render_view(CHECKER, cam, _frontal_pose(cam, (520.0, 150.0)), rng=rng)
    assert cut is not None and detect_board(cut, CHECKER, "cam0", 0) is None
    # another board size in the image
    other = render_view(Board("checkerboard", 6, 4, 0.04), cam, _frontal_pose(cam, (200.0, 150.0)), rng=rng)
    assert detect_board(other, CHECKER, "cam0", 0) is None


@pytest.mark.parametrize(
    "image", [np.zeros((48, 64), np.float32), np.zeros((48, 64, 2), np.uint8), np.zeros(64, np.uint8)]
)
def test_detect_board_rejects_bad_images(image):
    with pytest.raises(ShapeError, match="uint8"):
        detect_board(image, CHECKER, "cam0", 0)


def test_plausible_grid_refuses_scrambled_corners():
    """Regression: OpenCV 5's findChessboardCornersSB sometimes returns a full set of scrambled corners.

    (Seen with CALIB_CB_ACCURACY on the Pose2Sim board images: a calibration RMS of 30 px.)
    """
    c, r = np.meshgrid(np.arange(8), np.arange(5))
    grid = np.stack([100 + 20.0 * c.ravel(), 80 + 20.0 * r.ravel()], axis=1)
    H = np.array([[1.1, 0.2, 5.0], [-0.1, 0.9, 3.0], [4e-4, 2e-4, 1.0]])  # strong perspective
    warped = cv2.perspectiveTransform(grid.reshape(-1, 1, 2), H).reshape(-1, 2)
    assert board_mod._plausible_grid(grid, 8, 5) and board_mod._plausible_grid(warped, 8, 5)
    swapped = grid.copy()
    swapped[[3, 21]] = swapped[[21, 3]]
    assert not board_mod._plausible_grid(swapped, 8, 5)
    rows_shuffled = grid.reshape(5, 8, 2)[[0, 2, 1, 3, 4]].reshape(-1, 2)
    assert not board_mod._plausible_grid(rows_shuffled, 8, 5)
    transposed = grid.reshape(5, 8, 2).transpose(1, 0, 2).reshape(-1, 2)  # 8 rows of 5 read as 5 of 8
    assert not board_mod._plausible_grid(transposed, 8, 5)


# --- ChArUco detection -----------------------------------------------------------------------


def test_charuco_corners_and_ids(rng):
    cam = _camera(f=560.0, dist=np.array([-0.15, 0.03, 0.0, 0.0, 0.0]))
    R = Rotation.from_euler("xyz", [-20, 25, -15], degrees=True).as_matrix()
    pose = (R, np.array([-0.12, -0.08, 0.8]))
    view = detect_board(render_view(CHARUCO, cam, pose, rng=rng), CHARUCO, "cam0", 3)
    assert view is not None and len(view) == CHARUCO.n_corners
    np.testing.assert_array_equal(view.ids, np.arange(24))
    np.testing.assert_allclose(view.object_m, CHARUCO.object_points())
    err = np.linalg.norm(view.image_px - _truth(CHARUCO, cam, pose), axis=1)
    assert err.mean() < 0.15 and err.max() < 0.4


def test_charuco_partial_view_keeps_true_ids(rng):
    """Board half out of the image: the corners found carry their own ids (markers are coded)."""
    cam = _camera()
    pose = _frontal_pose(cam, (480.0, 200.0), depth=0.6)  # squares of 33 px, right half cut off
    view = detect_board(render_view(CHARUCO, cam, pose, rng=rng), CHARUCO, "cam0", 0)
    assert view is not None and MIN_CHARUCO_CORNERS <= len(view) < CHARUCO.n_corners
    assert set((view.ids % 6).tolist()) <= {0, 1, 2, 3}  # only the left columns are in view
    np.testing.assert_allclose(view.object_m, CHARUCO.object_points()[view.ids])
    assert np.abs(view.image_px - _truth(CHARUCO, cam, pose)[view.ids]).max() < 0.4


def test_charuco_too_few_corners_returns_none(rng):
    cam = _camera()
    pose = _frontal_pose(cam, (600.0, 200.0), depth=0.6)  # one column of corners in view at most
    img = render_view(CHARUCO, cam, pose, rng=rng)
    assert img is not None
    assert detect_board(img, CHARUCO, "cam0", 0) is None
    assert detect_board(np.full((480, 640), 255, np.uint8), CHARUCO, "cam0", 0) is None


def test_texture_maps_corners():
    """The renderer's texture-to-board map puts corner 0 between the first four squares."""
    texture, A = board_texture(CHECKER, px_per_square=10)
    u, v, _ = np.linalg.solve(A, [0.0, 0.0, 1.0])
    assert (u, v) == pytest.approx((19.5, 19.5))  # margin 10 px + one square of 10 px, pixel edges
    assert texture[15, 15] == 0 and texture[15, 25] == 255 and texture[5, 5] == 255
