"""Recording a take from the node's 3D stream: SIGKILL-safe, exportable."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import zmq

from capture import wire
from capture.cli import main as cli_main
from capture.outputs import read_poses_jsonl
from capture.service.launcher import free_tcp_endpoint
from core.types import Poses3D


def _frame(i: int) -> Poses3D:
    poses = np.zeros((2, 17, 4))
    poses[:, :, :3] = np.arange(2 * 17 * 3).reshape(2, 17, 3) * 0.01 + i * 0.001
    poses[:, :, 3] = 0.9
    return Poses3D(i, 1_000_000_000 + i * 16_666_667, np.array([1, 2]), poses)


def test_recording_killed_with_sigkill_is_readable_and_exportable(tmp_path):
    endpoint = free_tcp_endpoint()
    take = tmp_path / "take"
    ctx = zmq.Context()
    pub = ctx.socket(zmq.PUB)
    pub.bind(endpoint)
    rec = subprocess.Popen([sys.executable, "-m", "capture.service.record", "--endpoint", endpoint, "--out", str(take)])
    path = take / "poses3d.jsonl"
    sent, deadline = 0, time.monotonic() + 60
    try:
        # Publish until the recorder has written 30 frames, then kill it mid-stream (no clean-up).
        while time.monotonic() < deadline:
            pub.send_multipart(wire.encode_poses3d(_frame(sent), {"skeleton": "coco17"}))
            sent += 1
            time.sleep(0.005)
            if path.exists() and len(path.read_text().splitlines()) > 30:
                break
        os.kill(rec.pid, signal.SIGKILL)
        rec.wait(10)
    finally:
        pub.close(0)
        ctx.term()
    header, frames = read_poses_jsonl(path)
    assert header["joints"][0] == "nose" and len(frames) >= 30
    idx = [f.frame_idx for f in frames]
    assert idx == list(range(idx[0], idx[0] + len(idx)))  # every frame after the first one received
    assert np.allclose(frames[-1].poses, _frame(idx[-1]).poses, atol=1e-5)
    assert cli_main(["export", "--take", str(take)]) == 0
    trc = (take / "person_1.trc").read_text().splitlines()
    assert len(trc) == 6 + len(frames) and "60" in trc[2].split("\t")[0]


def test_export_of_missing_take_is_exit_2(tmp_path, capsys):
    assert cli_main(["export", "--take", str(tmp_path / "nothing")]) == 2
    assert "cannot read poses" in capsys.readouterr().err


def test_export_prints_figures(tmp_path, capsys):
    from capture.outputs import PosesWriter
    from core.skeleton import COCO17

    w = PosesWriter(tmp_path / "poses3d.jsonl", COCO17)
    for i in range(5):
        w.write(_frame(i))
    w.close()
    assert cli_main(["export", "--take", str(tmp_path)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["frames"] == 5 and abs(out["rate_hz"] - 60.0) < 0.01 and len(out["trc"]) == 2


def test_record_with_a_bad_endpoint_is_one_line_and_exit_2(tmp_path, capsys):
    assert cli_main(["record", "--endpoint", "tcp://nowhere:notaport", "--out", str(tmp_path / "take")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("mvcap record: error: tcp://nowhere:notaport: cannot connect")
