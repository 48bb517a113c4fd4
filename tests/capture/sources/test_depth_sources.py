"""Depth sources, the RGB-D worker, and RGB-D cameras through the reconstruction and the node.

Depth images are rendered from known people (tests/synth_depth.py: sphere-swept bodies in a room,
noise a z^2, flying pixels at silhouettes, 5% holes); the "detector" projects the true joints
with 1.5 px of noise.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest
import zmq
from procs import inproc_config, run_node_with_workers
from synth import look_at_camera, person
from synth_depth import detect, render_depth, room_depth, sensor_depth_mm

from calibration.camera import Camera, CameraRig
from calibration.io import write_json
from capture.outputs import read_poses_jsonl
from capture.pipeline import FrameReconstructor
from capture.service.node import Node
from capture.service.worker import Worker
from capture.service.worker import main as worker_main
from capture.sources.depth import DepthArraySource, DepthFolderSource, DepthLifter, open_depth_source
from capture.sources.detection_files import write_detections_json
from core.config import Config, FusionConfig, RGBDConfig, load_config
from core.errors import InputError
from core.skeleton import COCO17
from core.types import Detections2D
from fusion.rgbd import RGBDDetections, lift_joints

REPO = Path(__file__).resolve().parents[3]
DT_NS = 33_333_333  # 30 fps
PIXEL_NOISE_PX = 2.0
BOX = np.array([[0.0, 0.0, 1.0, 1.0, 0.9]], np.float32)


def _cam(name: str, yaw_deg: float, r: float = 3.0) -> Camera:
    a = np.deg2rad(90.0 + yaw_deg)
    c = np.array([r * np.cos(a), r * np.sin(a), 1.3])
    return look_at_camera(name, c, np.array([0.0, 0.0, 0.9]), f=525.0, size=(640, 480))


def _write_png_folder(folder: Path, images: list[np.ndarray], names: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, image in zip(names, images, strict=True):
        assert cv2.imwrite(str(folder / name), image)
    return folder


# -- depth sources -----------------------------------------------------------------------------------


def test_depth_folder_reads_16_bit_pngs_in_frame_order(tmp_path):
    images = [np.full((6, 8), 1000 * (k + 1), np.uint16) for k in range(3)]
    folder = _write_png_folder(tmp_path / "d", images, ["depth10.png", "depth2.png", "depth1.png"])
    (folder / "notes.txt").write_text("ignored")
    with open_depth_source(folder) as src:
        assert isinstance(src, DepthFolderSource) and src.size == (8, 6) and src.n_frames == 3
        # Natural order: depth1, depth2, depth10 are frames 0, 1, 2.
        assert [int(src.read(k)[0, 0]) for k in range(3)] == [3000, 2000, 1000]
        assert src.read(3) is None and src.read(-1) is None
        assert src.read(0).dtype == np.uint16


def test_depth_sources_refuse_what_is_not_uint16_depth(tmp_path):
    with pytest.raises(InputError, match="not a folder"):
        DepthFolderSource(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no .png depth image"):
        DepthFolderSource(tmp_path / "empty")
    eight = _write_png_folder(tmp_path / "eight", [np.zeros((6, 8), np.uint8)], ["0.png"])
    with pytest.raises(InputError, match=r"0\.png: depth must be a single-channel 16-bit image"):
        DepthFolderSource(eight)
    mixed = _write_png_folder(tmp_path / "mixed", [np.zeros((6, 8), np.uint16), np.zeros((3, 4), np.uint16)],
                              ["0.png", "1.png"])  # fmt: skip
    with pytest.raises(InputError, match=r"1\.png: depth image is 4x3"):
        DepthFolderSource(mixed).read(1)
    with pytest.raises(InputError, match="folder of 16-bit PNG images or a .npy"):
        open_depth_source(tmp_path / "depth.mp4")


def test_depth_recording_npy(tmp_path):
    stack = np.arange(3 * 4 * 5, dtype=np.uint16).reshape(3, 4, 5)
    np.save(tmp_path / "depth.npy", stack)
    src = open_depth_source(tmp_path / "depth.npy")
    assert isinstance(src, DepthArraySource) and src.size == (5, 4) and src.n_frames == 3
    assert np.array_equal(src.read(2), stack[2]) and src.read(3) is None
    src.close()
    assert src.read(0) is None
    np.save(tmp_path / "bad.npy", stack.astype(np.float32))
    with pytest.raises(InputError, match=r"bad\.npy: depth recording must be \(T, H, W\) uint16"):
        DepthArraySource(tmp_path / "bad.npy")
    (tmp_path / "junk.npy").write_bytes(b"not numpy")
    with pytest.raises(InputError, match=r"junk\.npy: cannot read depth recording"):
        DepthArraySource(tmp_path / "junk.npy")


# -- config ------------------------------------------------------------------------------------------


def test_config_reads_camera_depth_and_the_rgbd_example(tmp_path):
    cfg = load_config(REPO / "configs" / "rgbd_example.toml")
    depth = {c.name: c.depth for c in cfg.cameras}
    assert depth["kinect01"] == str((REPO / "configs" / "rgbd/kinect01/depth").resolve())
    assert depth["cam03"] == ""
    assert cfg.rgbd == RGBDConfig() and cfg.fusion.filter == "ukf"
    bad = tmp_path / "bad.toml"
    bad.write_text('[[cameras]]\nname = "a"\nsource = "a.mp4"\ndepth = 3\n')
    with pytest.raises(Exception, match="depth must be a path string"):
        load_config(bad)


# -- worker ------------------------------------------------------------------------------------------


def _scene(tmp_path: Path, n_frames: int, rng) -> tuple[CameraRig, list[list[np.ndarray]], list[np.ndarray]]:
    """A front RGB-D camera and a colour camera 90 degrees aside; person 0 walks in front of both,
    person 1 stands to the side and is detected by the RGB-D camera only. Writes the RGB-D
    camera's depth PNGs to tmp_path/depth; returns the rig, per frame the people, and per frame the
    (2, P, J, 3) detections of both cameras (person 1 missing from the colour camera's)."""
    rig = CameraRig((_cam("rgbd", 0.0), _cam("side", 90.0)))
    room = room_depth(rig[0])
    people, dets, images = [], [], []
    for f in range(n_frames):
        X = [person((-0.4 + 0.03 * f, 0.3), 0.0), person((1.0, -0.6), 0.0)]
        people.append(X)
        images.append(sensor_depth_mm(render_depth(rig[0], X, room), rng))
        dets.append([detect(rig[0], X, rng), detect(rig[1], X[:1], rng)])
    _write_png_folder(tmp_path / "depth", images, [f"{f:04d}.png" for f in range(n_frames)])
    return rig, people, dets


def test_depth_lifter_lifts_a_frame_with_its_depth_image(tmp_path, rng):
    rig, people, dets = _scene(tmp_path, 3, rng)
    (tmp_path / "depth" / "0001.png").unlink()  # frame 1 has no depth image: 0002.png is frame 1 now
    (tmp_path / "depth" / "0002.png").write_bytes(b"corrupt")
    lifter = DepthLifter(tmp_path / "depth", rig[0], RGBDConfig(), PIXEL_NOISE_PX)
    out = [lifter.lift(Detections2D("rgbd", f, 0, dets[f][0], np.tile(BOX, (2, 1)))) for f in range(3)]
    assert isinstance(out[0], RGBDDetections) and type(out[1]) is type(out[2]) is Detections2D
    assert out[0].camera == "rgbd" and out[0].joints3d.shape == (2, 17, 4)
    ok = out[0].joints3d[..., 3] > 0
    err = np.linalg.norm(out[0].joints3d[..., :3] - np.array(people[0]), axis=-1)[ok]
    assert ok.mean() > 0.9 and err.max() < 0.08
    assert (lifter.lifted, lifter.missing) == (1, 2)
    lifter.close()
    squashed = dataclasses.replace(rig[0], size=(640, 640))
    with pytest.raises(InputError, match="aspect ratios differ"):
        DepthLifter(tmp_path / "depth", squashed, RGBDConfig(), PIXEL_NOISE_PX)
    with pytest.raises(InputError, match="needs the camera's calibration"):
        Worker("rgbd", "unused.json", "inproc://x", depth=str(tmp_path / "depth"))


def test_worker_cli_refuses_a_bad_depth_source(tmp_path, capsys):
    rig = CameraRig((_cam("rgbd", 0.0), _cam("side", 90.0)))
    write_json(rig, tmp_path / "rig.json")
    dets = tmp_path / "rgbd.json"
    write_detections_json(dets, "rgbd", 30.0, [Detections2D("rgbd", 0, 0, np.zeros((0, 17, 3)), np.zeros((0, 5)))])
    args = ["--camera", "rgbd", "--source", str(dets), "--calibration", str(tmp_path / "rig.json")]
    assert worker_main([*args, "--depth", str(tmp_path / "nowhere.mp4")]) == 2
    assert worker_main([*args[:4], "--depth", str(tmp_path)]) == 2  # no calibration at all


# -- reconstruction and node -------------------------------------------------------------------------


def _views(rig: CameraRig, dets: list[np.ndarray], f: int, depth: np.ndarray | None) -> list[Detections2D]:
    out = []
    for c, d in enumerate(dets):
        v = Detections2D(rig[c].name, f, f * DT_NS, d.astype(np.float32), np.tile(BOX, (len(d), 1)))
        if c == 0 and depth is not None:
            lifted = lift_joints(rig[0], depth, d, RGBDConfig(), PIXEL_NOISE_PX)
            v = RGBDDetections.from_detections(v, lifted.joints, lifted.cov)
        out.append(v)
    return out


def _errors(poses: np.ndarray, truth: np.ndarray) -> np.ndarray:
    ok = poses[:, 3] > 0
    return np.where(ok, np.linalg.norm(poses[:, :3] - truth, axis=1), np.nan)


@pytest.mark.parametrize("filt", ["ukf", "none"])
def test_reconstructor_fuses_an_rgbd_camera_beside_a_colour_camera(tmp_path, rng, filt):
    """Person 0, seen by both cameras, is matched and triangulated across them (the RGB-D camera
    takes part in 2D matching); person 1, seen by the RGB-D camera alone, gets a track from its
    lifted joints and keeps it. 20 frames at 30 fps; errors of the last 12."""
    rig, people, dets = _scene(tmp_path, 20, rng)
    src = DepthFolderSource(tmp_path / "depth")
    rec = FrameReconstructor(rig, COCO17, fusion=FusionConfig(filter=filt, pixel_noise_px=PIXEL_NOISE_PX))
    ids: list[set[int]] = [set(), set()]
    errors: list[list[np.ndarray]] = [[], []]
    for f in range(20):
        res = rec.process(_views(rig, dets[f], f, src.read(f)), f * DT_NS)
        assert len(res.track_ids) == 2
        for k, (tid, members) in enumerate(zip(res.track_ids.tolist(), res.groups, strict=True)):
            p = 0 if len(members) == 2 else 1  # person 0: both views; person 1: the RGB-D view alone
            assert members[0][0] == 0
            ids[p].add(tid)
            if f >= 8:
                errors[p].append(_errors(res.poses[k], people[f][p]))
    assert len(ids[0]) == len(ids[1]) == 1 and ids[0] != ids[1]
    e0, e1 = np.array(errors[0]), np.array(errors[1])
    assert np.isfinite(e1).mean() > 0.9
    assert np.nanmedian(e0) < 0.02 and np.nanmedian(e1) < 0.04 and np.nanmax(np.nanmedian(e1, axis=0)) < 0.08


def test_node_with_an_rgbd_worker_publishes_the_person_only_it_sees(tmp_path, rng):
    """End to end over inproc ZeroMQ: the RGB-D worker reads detections and the depth PNG folder,
    lifts and sends joints3d; the node tracks person 1 (RGB-D view only) in 3D next to person 0."""
    n = 15
    rig, people, dets = _scene(tmp_path, n, rng)
    for c, cam in enumerate(rig):
        frames = [Detections2D(cam.name, f, f * DT_NS, dets[f][c].astype(np.float32),
                               np.tile(BOX, (len(dets[f][c]), 1))) for f in range(n)]  # fmt: skip
        write_detections_json(tmp_path / f"{cam.name}.json", cam.name, 30.0, frames)
    cfg = inproc_config(Config(fusion=FusionConfig(pixel_noise_px=PIXEL_NOISE_PX)))
    ctx = zmq.Context()
    out = tmp_path / "out"
    node = Node(rig, dataclasses.replace(cfg, node=dataclasses.replace(cfg.node, lossless=True)), out)
    workers = [
        Worker("rgbd", str(tmp_path / "rgbd.json"), cfg.node.input_endpoint, subscribe_timeout_s=20,
               depth=str(tmp_path / "depth"), camera_model=rig[0], pixel_noise_px=PIXEL_NOISE_PX),
        Worker("side", str(tmp_path / "side.json"), cfg.node.input_endpoint, subscribe_timeout_s=20),
    ]  # fmt: skip
    summary = run_node_with_workers(node, workers, ctx)
    assert summary["frames"] == n and summary["messages"]["malformed"] == 0
    assert workers[0].stats()["depth_lifted"] == n and workers[0].stats()["depth_missing"] == 0
    _, frames = read_poses_jsonl(out / "poses3d.jsonl")
    by_id: dict[int, list[np.ndarray]] = {}
    for fr in frames[6:]:
        for tid, pose in zip(fr.track_ids.tolist(), fr.poses, strict=True):
            d = [np.nanmedian(_errors(pose, X)) for X in people[fr.frame_idx]]
            by_id.setdefault(tid, []).append(np.array([int(np.argmin(d)), min(d)]))
    assert len(by_id) == 2
    who = {tid: set(np.array(v)[:, 0].astype(int).tolist()) for tid, v in by_id.items()}
    assert sorted(who.values(), key=min) == [{0}, {1}]  # one id per person, never swapped
    assert all(np.median(np.array(v)[:, 1]) < 0.05 for v in by_id.values())
