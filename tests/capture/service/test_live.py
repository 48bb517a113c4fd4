"""Live service: realtime replay, a worker killed and restarted mid-take, recording, status."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from synth import person, project_people, ring_rig

from calibration.io import write_json
from capture.detection_files import write_detections_json
from capture.outputs import read_poses_jsonl
from capture.service.launcher import free_tcp_endpoint
from core.types import Detections2D

FPS = 30.0
N_FRAMES = 240  # 8 s


def _write_scene(folder: Path) -> tuple[Path, list[str]]:
    """A synthetic 4-camera rig and 8 s of 30 fps detections of two walking people."""
    rng = np.random.default_rng(1)
    rig = ring_rig()
    calib = folder / "rig.json"
    write_json(rig, calib)
    per_cam: dict[str, list[Detections2D]] = {c.name: [] for c in rig}
    for f in range(N_FRAMES):
        t = f / FPS
        people = [person((np.cos(0.5 * t), np.sin(0.5 * t)), 0.5 * t), person((-0.8, 0.2 * np.sin(t)), 2.0)]
        for cam, d in zip(rig, project_people(rig, people, rng, 1.0), strict=True):
            boxes = np.tile([0.0, 0.0, 1.0, 1.0, 0.9], (len(people), 1))
            per_cam[cam.name].append(Detections2D(cam.name, f, int(t * 1e9), d.astype(np.float32), boxes))
    for name, dets in per_cam.items():
        write_detections_json(folder / f"{name}.json.gz", name, FPS, dets)
    return calib, list(per_cam)


def _py(*args: str, log: Path) -> subprocess.Popen:
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", *args], stdout=log.open("w"), stderr=subprocess.STDOUT, env=env)


@pytest.mark.slow
def test_worker_killed_and_restarted_mid_take(tmp_path):
    calib, cams = _write_scene(tmp_path)
    node_in, node_out = free_tcp_endpoint(), free_tcp_endpoint()
    cfg = tmp_path / "live.toml"
    cfg.write_text(
        f'calibration = "{calib}"\n[node]\ninput_endpoint = "{node_in}"\noutput_endpoint = "{node_out}"\n'
        "frame_timeout_s = 0.3\nheartbeat_timeout_s = 3.0\n"
    )
    out, take = tmp_path / "run", tmp_path / "take"
    node = _py("capture.service.node", "--config", str(cfg), "--out", str(out), log=tmp_path / "node.log")
    recorder = _py("capture.service.record", "--endpoint", node_out, "--out", str(take), log=tmp_path / "rec.log")
    epoch = time.time_ns() + int(4e9)

    def worker(cam: str) -> subprocess.Popen:
        src = str(tmp_path / f"{cam}.json.gz")
        args = [
            "--camera",
            cam,
            "--source",
            src,
            "--endpoint",
            node_in,
            "--epoch-ns",
            str(epoch),
            "--realtime",
        ]
        return _py("capture.service.worker", *args, log=tmp_path / f"w_{cam}.log")

    workers = {c: worker(c) for c in cams}
    victim = cams[2]
    rec_file = take / "poses3d.jsonl"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (not rec_file.exists() or len(rec_file.read_text().splitlines()) < 60):
            time.sleep(0.05)
        workers[victim].send_signal(signal.SIGKILL)  # crash: no end-of-stream message
        workers[victim].wait(10)
        time.sleep(0.5)
        workers[victim] = worker(victim)  # restarted: resumes at the current frame
        assert node.wait(60) == 0, (tmp_path / "node.log").read_text()[-3000:]
        time.sleep(0.5)
        recorder.send_signal(signal.SIGINT)
        assert recorder.wait(10) == 0
    finally:
        for p in [node, recorder, *workers.values()]:
            if p.poll() is None:
                p.kill()
    summary = json.loads((out / "summary.json").read_text())
    # The node published every frame: the other cameras' frames all arrived, the victim's gap is
    # filled with 3-view frames, and the recording holds every output frame.
    assert summary["frames"] == N_FRAMES
    others = [c for c in cams if c != victim]
    assert all(summary["frames_per_camera"][c] == N_FRAMES for c in others)
    assert 0 < summary["frames_per_camera"][victim] < N_FRAMES - 15
    assert summary["frames_missing_views"] >= 15
    hellos = [e for e in summary["camera_events"] if e["event"] == "hello" and e["camera"] == victim]
    assert len(hellos) == 2
    _, node_frames = read_poses_jsonl(out / "poses3d.jsonl")
    _, rec_frames = read_poses_jsonl(rec_file)
    assert [f.frame_idx for f in rec_frames] == [f.frame_idx for f in node_frames] == list(range(N_FRAMES))
    assert all(len(f.track_ids) == 2 for f in rec_frames[5:])
    ids = {tuple(sorted(f.track_ids.tolist())) for f in rec_frames[5:]}
    assert len(ids) == 1  # identities kept through the outage
