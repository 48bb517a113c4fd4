"""Landscape and portrait frames get the same effective resolution: the demo rotated by 90 degrees.

The test rotates the first frames of the four Pose2Sim demo videos (portrait 1088x1920) into
landscape image folders, rotates the calibration with them, and runs the real detector through the
worker's own path (input shape from the frames, :func:`capture.detect.letterbox.input_hw_for_frame`) and
the node's reconstruction on both.

Rotating the videos also lays the people on their side, which a detector trained on upright people
does not handle (the strict xfail below measures it). A camera mounted on its side is configured
with ``[[cameras]] rotate``: the worker turns each frame upright for the detector and turns the
detections back into the landscape frame's pixels, so the landscape calibration is used as it is.
With that, the rotated run finds the same people at the same places with the same reprojection.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import cv2
import numpy as np
import pytest
from demo_assets import demo_folder, yolo_model

from calibration.camera import Camera, CameraRig
from calibration.checks import load_rig
from calibration.io import write_json
from capture.pipeline import FrameReconstructor
from capture.service.worker import Worker
from core.config import Config, load_config
from core.skeleton import COCO17

N_FRAMES = 6
DEMO_FPS = 60.0
NAMES = ("cam01", "cam02", "cam03", "cam04")
CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def rotate_camera(cam: Camera) -> Camera:
    """The camera whose images are ``cv2.rotate(image, ROTATE_90_CLOCKWISE)`` of ``cam``'s.

    A pixel (u, v) of a W x H image goes to (H - 1 - v, u): the camera turns by -90 degrees about
    its optical axis (x' = -y, y' = x), so fx and fy swap, cx' = H - 1 - cy, cy' = cx, and the
    tangential coefficients become p1' = p2, p2' = -p1 (radial ones are symmetric).
    """
    w, h = cam.size
    fx, fy, cx, cy = cam.K[0, 0], cam.K[1, 1], cam.K[0, 2], cam.K[1, 2]
    K = np.array([[fy, 0.0, h - 1 - cy], [0.0, fx, cx], [0.0, 0.0, 1.0]])
    Rz = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    k1, k2, p1, p2, k3 = cam.dist
    return Camera(cam.name, K, np.array([k1, k2, p2, -p1, k3]), Rz @ cam.R, Rz @ cam.t, (h, w))


def reconstruct(cfg: Config, rig: CameraRig, sources: dict[str, str], models: dict[str, str], rotate: int = 0) -> list:
    """Detect with each camera's worker path (no sockets) and reconstruct every frame; the frame results."""
    per_cam = []
    for cam in rig:
        worker = Worker(cam.name, sources[cam.name], "tcp://127.0.0.1:1", cfg.detector, models[cam.name], rotate=rotate)
        items = worker.frames.open()
        per_cam.append([worker._detect(i, s, img) for i, s, img in itertools.islice(items, N_FRAMES)])
        worker.frames.close()
    rec = FrameReconstructor(rig, COCO17, cfg.matching, cfg.triangulation, cfg.fusion)
    stamps = [round(f * 1e9 / DEMO_FPS) for f in range(N_FRAMES)]  # image folders replay at 30 fps: the videos' time
    return [rec.process([dets[f] for dets in per_cam], stamps[f]) for f in range(N_FRAMES)]


def test_rotated_camera_sees_the_rotated_image() -> None:
    cam = load_rig(demo_folder() / "calibration/Calib.qca.txt")[0]
    rot = rotate_camera(cam)
    X = cam.center + 4.0 * cam.R.T @ np.array([[0.3, -0.4, 1.0], [-0.2, 0.1, 1.0], [0.05, 0.5, 1.0]]).T
    uv, uv_rot = cam.project(X.T), rot.project(X.T)
    h = cam.size[1]
    np.testing.assert_allclose(uv_rot, np.column_stack([h - 1 - uv[:, 1], uv[:, 0]]), atol=1e-6)
    img = np.zeros((cam.size[1], cam.size[0]), np.uint8)
    img[5, 17] = 255  # row 5, column 17
    (v, u), _ = np.nonzero(cv2.rotate(img, cv2.ROTATE_90_CLOCKWISE)), None
    assert (u[0], v[0]) == (h - 1 - 5, 17)


def rotated_demo(tmp_path: Path) -> tuple[Config, CameraRig, CameraRig, dict[str, str], dict[str, str]]:
    """The demo's first frames and calibration, and the same turned 90 degrees clockwise (landscape)."""
    demo = demo_folder()
    rig = load_rig(demo / "calibration/Calib.qca.txt", names=list(NAMES))
    cfg = load_config(CONFIGS / "demo.toml")
    assert cfg.detector.fixed_input_hw is None  # the input follows each camera's frames
    rot_rig = CameraRig(tuple(rotate_camera(c) for c in rig))
    write_json(rot_rig, tmp_path / "rotated.json")
    rot_rig = load_rig(tmp_path / "rotated.json", names=list(NAMES))  # through the file, as a run reads it
    sources, rot_sources = {}, {}
    for name in NAMES:
        sources[name] = str(demo / f"videos/{name}.mp4")
        folder = tmp_path / name
        folder.mkdir()
        cap = cv2.VideoCapture(sources[name])
        for f in range(N_FRAMES):
            ok, frame = cap.read()
            assert ok
            assert cv2.imwrite(str(folder / f"{f:03d}.png"), cv2.rotate(frame, cv2.ROTATE_90_CLOCKWISE))
        cap.release()
        rot_sources[name] = str(folder)
    return cfg, rig, rot_rig, sources, rot_sources


def assert_same_people(upright: list, rotated: list) -> None:
    """Same people every frame, reprojection median within 10%, matched people within 5 cm."""
    people = [len(r.poses) for r in upright]
    assert [len(r.poses) for r in rotated] == people and sum(people) >= N_FRAMES  # the same people, every frame
    med = np.median(np.concatenate([r.reproj_px for r in upright]))
    med_rot = np.median(np.concatenate([r.reproj_px for r in rotated]))
    assert abs(med_rot - med) <= 0.1 * med, (med, med_rot)
    for a, b in zip(upright, rotated, strict=True):  # at the same places: matched people within 5 cm
        ok = (a.poses[:, None, :, 3] > 0) & (b.poses[None, :, :, 3] > 0)
        d = np.linalg.norm(a.poses[:, None, :, :3] - b.poses[None, :, :, :3], axis=-1)
        dist = np.where(ok, d, np.nan)
        assert np.nanmedian(dist, axis=-1).min(axis=1).max() < 0.05


@pytest.mark.slow
def test_rotated_demo_with_rotate_reconstructs_the_same_people(tmp_path: Path) -> None:
    cfg, rig, rot_rig, sources, rot_sources = rotated_demo(tmp_path)
    upright = reconstruct(cfg, rig, sources, dict.fromkeys(NAMES, str(yolo_model((640, 384)))))
    # rotate = 270 turns the landscape frames back upright for the detector: the portrait network input
    rotated = reconstruct(cfg, rot_rig, rot_sources, dict.fromkeys(NAMES, str(yolo_model((640, 384)))), rotate=270)
    assert_same_people(upright, rotated)
    for a, b in zip(upright, rotated, strict=True):  # the detections come back in the landscape frame's pixels
        assert a.reproj_px.size == b.reproj_px.size


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,  # only the measured shortfall: an error in the path itself must fail the test
    reason="without [[cameras]] rotate the detector sees the rotated demo's people on their side: YOLO11n-pose, "
    "trained on upright people, then finds about 1 of the 3 people per frame; input geometry is not the cause",
)
def test_rotated_demo_without_rotate_loses_people(tmp_path: Path) -> None:
    cfg, rig, rot_rig, sources, rot_sources = rotated_demo(tmp_path)
    upright = reconstruct(cfg, rig, sources, dict.fromkeys(NAMES, str(yolo_model((640, 384)))))
    rotated = reconstruct(cfg, rot_rig, rot_sources, dict.fromkeys(NAMES, str(yolo_model((384, 640)))))
    assert_same_people(upright, rotated)
