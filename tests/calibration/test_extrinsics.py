"""Tests for calibration/extrinsics.py: PnP, pose graph chaining, robust adjustment, world frame."""

from __future__ import annotations

import numpy as np
import pytest
from boards import random_board_poses, render_views
from scipy.spatial.transform import Rotation
from synth import look_at_camera

from calibration.board import Board, BoardView, detect_board
from calibration.camera import Camera, CameraRig
from calibration.extrinsics import board_pose_pnp, calibrate_extrinsics
from core.errors import CalibrationError

DIST = np.array([-0.1, 0.02, 0.0, 0.0, 0.0])
SIZE = (640, 480)
# a 9 x 6 grid of corners, 5 cm apart (OpenCV board frame: x along rows, y down, z into the board)
_GX, _GY = np.meshgrid(np.arange(9) * 0.05, np.arange(6) * 0.05)
BOARD = np.stack([_GX.ravel(), _GY.ravel(), np.zeros(_GX.size)], axis=1)
CENTRE = BOARD.mean(axis=0)


def _arc(n: int = 4, span_deg: float = 100.0, radius: float = 2.2, aim_z: float = 1.0) -> CameraRig:
    """n cameras on an arc around +y, 1.6 m high, looking at (0, 0, aim_z); 640x480, f 600 px."""
    cams = []
    for i, a in enumerate(np.radians(np.linspace(-span_deg / 2, span_deg / 2, n)) + np.pi / 2):
        centre = np.array([radius * np.cos(a), radius * np.sin(a), 1.6])
        cams.append(look_at_camera(f"cam{i}", centre, np.array([0.0, 0.0, aim_z]), f=600.0, size=SIZE, dist=DIST))
    return CameraRig(tuple(cams))


def _ring(n: int = 4, radius: float = 2.2) -> CameraRig:
    """n cameras on a full ring (90 degrees apart for n = 4): a board's face is seen by neighbours only."""
    cams = []
    for i in range(n):
        a = 2 * np.pi * i / n
        centre = np.array([radius * np.cos(a), radius * np.sin(a), 1.6])
        cams.append(look_at_camera(f"cam{i}", centre, np.array([0.0, 0.0, 1.0]), f=600.0, size=SIZE, dist=DIST))
    return CameraRig(tuple(cams))


def _board_pose(rng: np.random.Generator, facing: np.ndarray, z: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """World-from-board pose near (0, 0, z) with the board's face (its -z) turned towards ``facing``."""
    position = np.array([0.0, 0.0, z]) + rng.uniform(-0.25, 0.25, 3)
    back = position - facing  # board z points away from the viewers
    z = back / np.linalg.norm(back)
    x = np.cross([0.0, 0.0, 1.0], z)
    x /= np.linalg.norm(x)
    R = np.stack([x, np.cross(z, x), z], axis=1)
    R = R @ Rotation.from_rotvec(rng.normal(scale=0.2, size=3)).as_matrix()
    return R, position - R @ CENTRE


def _views(rig: CameraRig, frame: int, R: np.ndarray, t: np.ndarray, rng, noise_px: float) -> list[BoardView]:
    """The views of a board at world-from-board (R, t) by every camera that sees its whole face."""
    X = BOARD @ R.T + t
    out = []
    for cam in rig:
        in_front = (cam.center - t) @ R[:, 2] < -0.3 * np.linalg.norm(cam.center - t)  # < ~72 deg off-axis
        uv = cam.project(X)
        inside = np.all((uv > 5) & (uv < np.array(SIZE) - 5))
        if in_front and inside and np.all(cam.to_camera(X)[:, 2] > 0):
            uv = uv + rng.normal(scale=noise_px, size=uv.shape)
            out.append(BoardView(cam.name, frame, np.arange(len(BOARD)), uv, BOARD))
    return out


def _scene(rig: CameraRig, rng, n_frames: int, noise_px: float = 0.3, pairs_only: bool = False, z: float = 1.0):
    """Board views over n_frames; with pairs_only the board faces the midpoint of two neighbours."""
    views, poses = [], {}
    centres = np.array([c.center for c in rig])
    for f in range(n_frames):
        if pairs_only:
            i = f % len(rig)
            facing = (centres[i] + centres[(i + 1) % len(rig)]) / 2
        else:
            facing = centres.mean(axis=0) + rng.normal(scale=0.5, size=3)
        R, t = _board_pose(rng, facing, z)
        poses[f] = (R, t)
        views += _views(rig, f, R, t, rng, noise_px)
    return views, poses


def _angle_deg(Ra: np.ndarray, Rb: np.ndarray) -> float:
    return float(np.degrees(Rotation.from_matrix(Ra @ Rb.T).magnitude()))


def _intrinsics_only(rig: CameraRig) -> CameraRig:
    return CameraRig(tuple(Camera(c.name, c.K, c.dist, np.eye(3), np.zeros(3), c.size) for c in rig))


def _errors(result, rig: CameraRig, ref: str = "cam0") -> tuple[float, float]:
    """Max rotation error (deg) and centre error (m) of the result, both rigs in ref's frame."""
    T = rig[ref]
    rot, pos = 0.0, 0.0
    for cam in rig:
        est = result.rig[cam.name]
        R_true = cam.R @ T.R.T  # camera-from-reference
        c_true = T.R @ cam.center + T.t  # centre in the reference frame
        R_est = est.R @ result.rig[ref].R.T
        c_est = result.rig[ref].R @ est.center + result.rig[ref].t
        rot = max(rot, _angle_deg(R_est, R_true))
        pos = max(pos, float(np.linalg.norm(c_est - c_true)))
    return rot, pos


def test_board_pose_pnp_exact_on_noiseless_view(rng):
    rig = _arc()
    R, t = _board_pose(rng, rig[1].center)
    (view,) = [v for v in _views(rig, 0, R, t, rng, 0.0) if v.camera == "cam1"]
    R_cb, t_cb, rms = board_pose_pnp(view, rig[1])
    np.testing.assert_allclose(R_cb, rig[1].R @ R, atol=1e-8)
    np.testing.assert_allclose(t_cb, rig[1].R @ t + rig[1].t, atol=1e-8)
    assert rms < 1e-6


def test_arc_of_four_cameras_recovered(rng):
    rig = _arc()
    views, _ = _scene(rig, rng, 12)
    assert len({v.camera for v in views}) == 4
    result = calibrate_extrinsics(views, _intrinsics_only(rig))
    rot, pos = _errors(result, rig)
    assert rot < 0.2 and pos < 0.01, (rot, pos)
    np.testing.assert_array_equal(result.rig["cam0"].R, np.eye(3))  # the reference is the world
    assert result.reference == "cam0" and result.rig.names == rig.names
    assert result.rms_final_px < 0.5 and result.rms_final_px <= result.rms_initial_px
    assert all(0.1 < r < 0.5 for r in result.per_camera_rms_px.values())  # 0.3 px noise per coordinate
    assert not result.rejected


def test_ring_without_a_frame_seen_by_all_is_chained(rng):
    """A full ring: the board is only ever seen by two neighbours, so the poses come from chaining."""
    rig = _ring()
    views, _ = _scene(rig, rng, 16, pairs_only=True)
    by_frame: dict[int, set[str]] = {}
    for v in views:
        by_frame.setdefault(v.frame, set()).add(v.camera)
    assert max(len(c) for c in by_frame.values()) == 2  # no frame seen by 3 or 4 cameras
    result = calibrate_extrinsics(views, _intrinsics_only(rig), reference="cam2")
    rot, pos = _errors(result, rig)
    assert rot < 0.2 and pos < 0.01, (rot, pos)
    tree = {(e.camera_a, e.camera_b) for e in result.edges if e.in_tree}
    assert len(tree) == 3 and all(int(b[-1]) - int(a[-1]) in (1, 3) for a, b in tree)  # neighbours only
    assert not any((e.camera_a, e.camera_b) == ("cam0", "cam2") for e in result.edges)


def test_checkerboard_labelled_from_either_end(rng):
    """A checkerboard's corners may be numbered from either end (OpenCV): 40% of views are reversed."""
    rig = _arc()
    views, _ = _scene(rig, rng, 12)
    n_flipped = 0
    for k, v in enumerate(views):
        if rng.random() < 0.4:
            ids = len(BOARD) - 1 - v.ids  # corner i labelled as the corner 180 degrees round the board
            views[k] = BoardView(v.camera, v.frame, ids, v.image_px, BOARD[ids])
            n_flipped += 1
    assert 0.25 * len(views) < n_flipped < 0.6 * len(views)
    result = calibrate_extrinsics(views, _intrinsics_only(rig))
    rot, pos = _errors(result, rig)
    assert rot < 0.2 and pos < 0.01, (rot, pos)
    assert not result.rejected and result.rms_final_px < 0.5


@pytest.mark.parametrize("kind", ["shuffled corners", "wrong frame"])
def test_one_outlier_view_is_rejected(rng, kind):
    """A view with wrong corners (shuffled: PnP fails) or of another instant (consistent but wrong)."""
    rig = _arc()
    views, poses = _scene(rig, rng, 12)
    i = next(k for k, v in enumerate(views) if v.camera == "cam2" and v.frame == 3)
    v = views[i]
    if kind == "shuffled corners":
        uv = v.image_px[rng.permutation(len(v))]
    else:  # the board seen by cam2 is where it was in frame 7, labelled frame 3
        R, t = poses[7]
        uv = rig["cam2"].project(BOARD @ R.T + t)
    views[i] = BoardView(v.camera, v.frame, v.ids, uv, v.object_m)
    result = calibrate_extrinsics(views, _intrinsics_only(rig))
    rot, pos = _errors(result, rig)
    assert rot < 0.2 and pos < 0.01, (rot, pos)
    assert [(r.camera, r.frame) for r in result.rejected] == [("cam2", 3)]
    assert result.rejected[0].reason == ("pnp" if kind == "shuffled corners" else "bundle")


def test_floor_frame_defines_a_z_up_world(rng):
    """A board lying face up on the floor (z = 0) in frame 100: the world is that board, z up."""
    rig = _arc(aim_z=0.3)
    views, _ = _scene(rig, rng, 10, z=0.5)
    # world-from-board for a board lying on the floor, face up: board z (into the board) points down
    R_floor = np.diag([1.0, -1.0, -1.0])
    t_floor = np.array([-0.2, 0.3, 0.0])
    floor = _views(rig, 100, R_floor, t_floor, rng, 0.3)
    assert len(floor) >= 2
    result = calibrate_extrinsics(views + floor, _intrinsics_only(rig), floor_frame=100)
    for cam in rig:  # world = floor board frame flipped: x_w = x_b, y_w = -y_b, z_w = -z_b
        est = result.rig[cam.name]
        c_board = R_floor.T @ (cam.center - t_floor)  # true centre in the board frame
        np.testing.assert_allclose(est.center, R_floor @ c_board, atol=0.01)
        assert _angle_deg(est.R, cam.R @ R_floor @ R_floor) < 0.2  # R_floor @ flip = I here
        assert est.center[2] > 1.0  # cameras are above the floor
    q = list(result.frames).index(100)
    np.testing.assert_allclose(result.R_board[q], np.diag([1.0, -1.0, -1.0]), atol=1e-12)  # world-from-board
    np.testing.assert_allclose(result.t_board[q], 0.0, atol=1e-12)
    assert "floor" in result.world_frame and "z up" in result.world_frame


def test_disconnected_cameras_are_named(rng):
    rig = _ring()
    views, _ = _scene(rig, rng, 16, pairs_only=True)
    # keep only frames seen by (cam0, cam1) and (cam2, cam3): two islands
    keep = [v for v in views if v.frame % 4 in (0, 2)]
    with pytest.raises(CalibrationError, match=r"camera\(s\) cam2, cam3 share no board frame.*cam0, cam1"):
        calibrate_extrinsics(keep, _intrinsics_only(rig))


def test_bad_arguments(rng):
    rig = _arc()
    views, _ = _scene(rig, rng, 4)
    with pytest.raises(CalibrationError, match="no intrinsics for camera"):
        calibrate_extrinsics(views, rig.subset(["cam0", "cam1"]))
    with pytest.raises(CalibrationError, match="reference camera 'camX'"):
        calibrate_extrinsics(views, rig, reference="camX")
    with pytest.raises(CalibrationError, match="floor frame 99"):
        calibrate_extrinsics(views, rig, floor_frame=99)
    with pytest.raises(CalibrationError, match="at least 2 cameras"):
        calibrate_extrinsics([v for v in views if v.camera == "cam0"], rig)
    # a subset of cameras, in the given order
    result = calibrate_extrinsics(views, rig, cameras=["cam1", "cam0"])
    assert result.rig.names == ("cam1", "cam0") and result.reference == "cam1"


CHARUCO = Board("charuco", 7, 5, 0.07, 0.052, "DICT_4X4_50")


def _detect(images: dict[str, list], board: Board) -> list[BoardView]:
    views = []
    for name, per_frame in images.items():
        for f, img in enumerate(per_frame):
            if img is not None and (v := detect_board(img, board, name, f)) is not None:
                views.append(v)
    return views


def test_rendered_charuco_ring_intrinsics_then_extrinsics(rng):
    """Issue acceptance on images: a ring of 4 cameras, rendered ChArUco, no frame seen by all.

    Intrinsics from 20 rendered views per camera, then extrinsics from 16 frames in which the board
    faces two neighbouring cameras: f within 0.5%, rotations within 0.2 deg, centres within 1 cm.
    """
    from calibration.intrinsics import calibrate_intrinsics

    rig = _ring(radius=1.5)
    calibrated = []
    for cam in rig:
        poses = random_board_poses(CHARUCO, cam, 20, rng)
        views = _detect(render_views(CHARUCO, [cam], poses, rng=rng), CHARUCO)
        res = calibrate_intrinsics(views, SIZE)
        assert abs(res.K[0, 0] / cam.K[0, 0] - 1) < 0.005, (cam.name, res.K)
        calibrated.append(res.to_camera())
    centres = np.array([c.center for c in rig])
    poses = []
    for f in range(16):
        i = f % 4
        R, t = _board_pose(rng, (centres[i] + centres[(i + 1) % 4]) / 2)
        poses.append((R, t - R @ (CHARUCO.object_points().mean(axis=0) - CENTRE)))
    views = _detect(render_views(CHARUCO, list(rig), poses, rng=rng), CHARUCO)
    per_frame: dict[int, set[str]] = {}
    for v in views:
        per_frame.setdefault(v.frame, set()).add(v.camera)
    assert max(map(len, per_frame.values())) == 2 and len(per_frame) >= 14
    result = calibrate_extrinsics(views, CameraRig(tuple(calibrated)))
    rot, pos = _errors(result, rig)
    assert rot < 0.2 and pos < 0.01, (rot, pos)
    assert result.rms_final_px < 0.5, result.per_camera_rms_px
