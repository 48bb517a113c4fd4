"""A full disk or a read-only folder: one-line errors, exit codes 1/2, and readable partial outputs.

Real file systems: a tiny tmpfs that fills mid-take, and a read-only tmpfs (tests run as root,
where ``chmod`` does not stop writes; the fixtures skip where mounting is not permitted).
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import zmq
from procs import inproc_config, run_node_with_workers

from calibration.io import read_calibration
from capture import wire
from capture.outputs import read_poses_jsonl
from capture.service.launcher import free_tcp_endpoint
from capture.service.node import Node
from capture.service.record import Recorder
from capture.service.worker import Worker
from core.errors import OutputError
from core.types import Poses3D

DETS = Path(__file__).resolve().parents[2] / "data" / "demo_yolo11n"
CAMS = ("cam01", "cam02", "cam03", "cam04")


def test_node_on_a_disk_that_fills_mid_take(shared_data, tmpfs, caplog):
    out = tmpfs(48) / "run"  # 48 KiB: the demo's 3 people fill it after about 20 frames
    rig = read_calibration(shared_data / "pose2sim_demo_multiperson/calibration/Calib.qca.txt")
    cfg = inproc_config()
    node = Node(rig, cfg, out)
    workers = [Worker(c, str(DETS / f"{c}.json.gz"), cfg.node.input_endpoint, subscribe_timeout_s=10) for c in CAMS]
    result = run_node_with_workers(node, workers, zmq.Context())
    assert result["output_error"] and "No space left on device" in result["output_error"]
    assert not result["complete"] and result["output_error"].startswith(str(out))  # names the file
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    # One line for the output that failed, one for the summary that could not be written either.
    assert 1 <= len(errors) <= 2 and all("\n" not in e and "No space left" in e for e in errors), errors
    _, frames = read_poses_jsonl(out / "poses3d.jsonl")  # what was written stays readable
    assert 5 < len(frames) < 100 and [f.frame_idx for f in frames] == list(range(len(frames)))


def test_node_cli_on_a_read_only_folder_is_one_line_exit_1(shared_data, read_only_dir, tmp_path):
    calib = shared_data / "pose2sim_demo_multiperson/calibration/Calib.qca.txt"
    cfg = tmp_path / "node.toml"
    cfg.write_text(
        f'calibration = "{calib}"\n[node]\ninput_endpoint = "{free_tcp_endpoint()}"\n'
        f'output_endpoint = "{free_tcp_endpoint()}"\n'
    )
    out = read_only_dir / "run"
    cmd = [sys.executable, "-m", "capture.cli", "node", "--config", str(cfg), "--out", str(out)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert res.returncode == 1, res.stderr[-2000:]
    errors = [line for line in res.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and str(out) in errors[0] and "Traceback" not in res.stderr


def test_recorder_on_a_full_disk_keeps_what_it_wrote(tmpfs):
    take = tmpfs(32) / "take"
    endpoint = f"inproc://rec-{uuid.uuid4().hex}"
    ctx = zmq.Context()
    pub = ctx.socket(zmq.PUB)
    pub.bind(endpoint)
    rec = Recorder(endpoint, take, fsync=False)
    err: list[Exception] = []

    def record() -> None:
        try:
            rec.run(ctx)
        except OutputError as exc:
            err.append(exc)

    t = threading.Thread(target=record)
    t.start()
    time.sleep(0.3)
    poses = np.full((3, 17, 4), 0.5)
    for i in range(2000):
        if not t.is_alive():
            break
        pub.send_multipart(wire.encode_poses3d(Poses3D(i, i * 16_666_667, np.array([1, 2, 3]), poses)))
        time.sleep(0.002)
    t.join(10)
    pub.close(0)
    ctx.term()
    assert err and "No space left on device" in str(err[0]) and "\n" not in str(err[0])
    _, frames = read_poses_jsonl(take / "poses3d.jsonl")
    idx = [f.frame_idx for f in frames]
    assert len(idx) > 5 and idx == list(range(idx[0], idx[0] + len(idx)))
