"""Tests for ``mvcap calibrate extrinsics`` (capture/calibrate/extrinsics.py): rendered boards, exit codes."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from scipy.spatial.transform import Rotation
from synth import look_at_camera

import capture.calibrate.extrinsics as cli
from calibration.board import Board
from calibration.camera import Camera, CameraRig
from calibration.io import read_calibration, write_json

PROG = "mvcap calibrate extrinsics: error: "
CHARUCO = Board("charuco", 7, 5, 0.07, 0.052, "DICT_4X4_50")
SIZE = (640, 480)
DIST = np.array([-0.1, 0.02, 0.0, 0.0, 0.0])
FLOOR = np.diag([1.0, -1.0, -1.0])  # world-from-board of a board lying face up: its z points down
FLOOR_T = np.array([-0.25, 0.8, 0.0])  # the board spans y from 0.8 down to 0.45 m, in front of the cameras


def _boards():
    """tests/calibration/boards.py (the board renderer), loaded by path: that folder is not a package."""
    path = Path(__file__).resolve().parents[2] / "calibration" / "boards.py"
    spec = importlib.util.spec_from_file_location("_calibration_boards", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _rig() -> CameraRig:
    """3 cameras on an arc 1.8 m from the origin, 1.5 m high, looking at (0, 0, 0.3)."""
    cams = []
    for i, a in enumerate(np.radians([60.0, 100.0, 140.0])):
        centre = np.array([1.8 * np.cos(a), 1.8 * np.sin(a), 1.5])
        cams.append(look_at_camera(f"cam{i}", centre, np.array([0.0, 0.0, 0.3]), f=600.0, size=SIZE, dist=DIST))
    return CameraRig(tuple(cams))


def _poses(rig: CameraRig, rng: np.random.Generator, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Frame 0: the board on the floor, face up; then n board poses near (0, 0, 0.6) facing the cameras."""
    mid = CHARUCO.object_points().mean(axis=0)
    poses = [(FLOOR, FLOOR_T)]
    target = np.mean([c.center for c in rig], axis=0)
    for _ in range(n):
        position = np.array([0.0, 0.0, 0.6]) + rng.uniform(-0.15, 0.15, 3)
        z = position - target - rng.normal(scale=0.4, size=3)
        z /= np.linalg.norm(z)
        x = np.cross([0.0, 0.0, 1.0], z)
        x /= np.linalg.norm(x)
        R = np.stack([x, np.cross(z, x), z], axis=1) @ Rotation.from_rotvec(rng.normal(scale=0.15, size=3)).as_matrix()
        poses.append((R, position - R @ mid))
    return poses


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """Image folders (cam0, cam2) and an MJPG video (cam1) of 9 simultaneous frames, and the intrinsics file."""
    rng = np.random.default_rng(3)
    boards = _boards()
    rig = _rig()
    folder = tmp_path_factory.mktemp("scene")
    images = boards.render_views(CHARUCO, list(rig), _poses(rig, rng, 8), rng=rng)
    blank = np.full(SIZE[::-1], 110, np.uint8)  # the board out of view: the frame still exists
    for name, frames in images.items():
        if name == "cam1":
            writer = cv2.VideoWriter(str(folder / "cam1.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, SIZE, isColor=False)
            for img in frames:
                writer.write(blank if img is None else img)
            writer.release()
            continue
        (folder / name).mkdir()
        for f, img in enumerate(frames):
            cv2.imwrite(str(folder / name / f"frame{f}.png"), blank if img is None else img)
    intrinsics = CameraRig(tuple(Camera(c.name, c.K, c.dist, np.eye(3), np.zeros(3), c.size) for c in rig))
    write_json(intrinsics, folder / "intrinsics.json")
    sources = {"cam0": folder / "cam0", "cam1": folder / "cam1.avi", "cam2": folder / "cam2"}
    return rig, folder, sources


def _argv(folder: Path, sources: dict, *rest: str) -> list[str]:
    argv = ["--board", CHARUCO.spec(), "--intrinsics", str(folder / "intrinsics.json")]
    for name, path in sources.items():
        argv += ["--camera", f"{name}={path}"]
    return [*argv, *rest]


def _run(capsys, argv: list[str]) -> tuple[int, str, str]:
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def _assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(PROG), err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def test_rendered_board_calibrates_the_rig_on_the_floor_frame(scene, tmp_path, capsys):
    rig, folder, sources = scene
    out = tmp_path / "calib.json"
    code, stdout, err = _run(capsys, _argv(folder, sources, "--out", str(out), "--floor-frame", "0"))
    assert code == 0, err
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert [c["name"] for c in summary["cameras"]] == ["cam0", "cam1", "cam2"]
    assert all(c["frames_read"] == 9 and c["views_found"] >= 7 for c in summary["cameras"])
    assert summary["rms_final_px"] < 0.5 and summary["reference"] == "cam0"
    assert {(e["a"], e["b"]) for e in summary["edges"]} == {("cam0", "cam1"), ("cam0", "cam2"), ("cam1", "cam2")}
    assert "cam0: board in" in err and "cam1 -- cam2" in err
    calib = read_calibration(out)
    assert calib.names == ("cam0", "cam1", "cam2")
    assert "floor in frame 0" in json.loads(out.read_text())["world_frame"]
    for cam in rig:  # world = the floor board, z up: x_w = FLIP @ (board coordinates)
        centre_w = FLOOR @ (FLOOR.T @ (cam.center - FLOOR_T))
        assert np.linalg.norm(calib[cam.name].center - centre_w) < 0.01, cam.name
        R_true = cam.R @ FLOOR @ FLOOR  # camera-from-floor-world
        angle = np.degrees(Rotation.from_matrix(calib[cam.name].R @ R_true.T).magnitude())
        assert angle < 0.2, (cam.name, angle)
        np.testing.assert_allclose(calib[cam.name].K, cam.K)  # the intrinsics are kept
        assert calib[cam.name].center[2] > 1.4


def test_every_and_reference(scene, tmp_path, capsys):
    rig, folder, sources = scene
    out = tmp_path / "calib.json"
    code, stdout, err = _run(capsys, _argv(folder, sources, "--out", str(out), "--reference", "cam1", "--every", "2"))
    assert code == 0, err
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert all(c["frames_read"] == 5 for c in summary["cameras"])  # frames 0, 2, 4, 6, 8
    calib = read_calibration(out)
    np.testing.assert_array_equal(calib["cam1"].R, np.eye(3))
    np.testing.assert_array_equal(calib["cam1"].t, np.zeros(3))
    baseline = np.linalg.norm(rig["cam0"].center - rig["cam2"].center)
    assert abs(np.linalg.norm(calib["cam0"].center - calib["cam2"].center) - baseline) < 0.01


@pytest.mark.parametrize(
    ("change", "fragments"),
    [
        (lambda a, f: [x.replace("cam2=", "cam9=") for x in a], ["no camera 'cam9'", "cam0, cam1, cam2"]),
        (lambda a, f: [f"cam2={f / 'nope'}" if x.startswith("cam2=") else x for x in a],
         ["nope: no such video file or image folder"]),
        (lambda a, f: [*a, "--reference", "camX"], ["--reference 'camX'"]),
        (lambda a, f: [*a, "--floor-frame", "99"], ["floor frame 99"]),
        (lambda a, f: [x.replace("intrinsics.json", "missing.json") for x in a], ["missing.json"]),
        (lambda a, f: [*a, "--every", "0"], ["--every must be >= 1"]),
        (lambda a, f: [x.replace("charuco:7x5", "charuco:7x") for x in a], ["board"]),
    ],
)  # fmt: skip
def test_bad_input_exits_2_with_one_line(scene, tmp_path, capsys, change, fragments):
    _, folder, sources = scene
    argv = change(_argv(folder, sources, "--out", str(tmp_path / "c.json")), folder)
    code, _, err = _run(capsys, argv)
    _assert_one_line_error(code, err, *fragments)
    assert not (tmp_path / "c.json").exists()


def test_bad_camera_spec_and_too_few_cameras(scene, tmp_path, capsys):
    _, folder, sources = scene
    base = ["--board", CHARUCO.spec(), "--intrinsics", str(folder / "intrinsics.json"), "--out", str(tmp_path / "c")]
    code, _, err = _run(capsys, [*base, "--camera", "cam0", "--camera", f"cam1={sources['cam1']}"])
    _assert_one_line_error(code, err, "NAME=PATH")
    code, _, err = _run(capsys, [*base, "--camera", f"cam0={sources['cam0']}"])
    _assert_one_line_error(code, err, "at least 2 cameras")
    code, _, err = _run(capsys, base)
    _assert_one_line_error(code, err, "--camera")


def test_frame_size_must_match_the_intrinsics(scene, tmp_path, capsys):
    rig, folder, sources = scene
    other = CameraRig(tuple(Camera(c.name, c.K, c.dist, c.R, c.t, (1280, 720)) for c in rig))
    write_json(other, tmp_path / "wrong.json")
    argv = [x.replace(str(folder / "intrinsics.json"), str(tmp_path / "wrong.json")) for x in _argv(folder, sources)]
    code, _, err = _run(capsys, [*argv, "--out", str(tmp_path / "c.json")])
    _assert_one_line_error(code, err, "frames are 640x480", "1280x720")


def test_cameras_without_shared_frames_are_named(scene, tmp_path, capsys):
    """cam2's images never show the board: it shares no frame with the others and is named."""
    _, folder, sources = scene
    lone = tmp_path / "lone"
    lone.mkdir()
    for f in range(9):
        cv2.imwrite(str(lone / f"frame{f}.png"), np.full(SIZE[::-1], 110, np.uint8))
    argv = _argv(folder, {"cam0": sources["cam0"], "cam1": sources["cam1"], "cam2": lone}, "--out", str(tmp_path / "c"))
    code, _, err = _run(capsys, argv)
    _assert_one_line_error(code, err, "cam2")


def test_write_failure_exits_1(scene, tmp_path, capsys):
    _, folder, sources = scene
    code, _, err = _run(capsys, _argv(folder, sources, "--out", str(tmp_path / "no_folder" / "calib.json")))
    assert code == 1 and err.strip().splitlines()[-1].startswith(PROG)
