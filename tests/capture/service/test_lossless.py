"""Offline runs are lossless by construction: a loaded machine gives the same output as an idle one.

The demo's committed YOLO11n detections go through ``mvcap run`` (node and 4 workers, separate
processes, loopback TCP) once on an idle machine and once with every core saturated by busy loops;
``poses3d.jsonl`` must be byte-identical, frame 0 included, and the run must say it is complete.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from capture.outputs import read_poses_jsonl

DETS = Path(__file__).resolve().parents[2] / "data" / "demo_yolo11n"
CAMS = ("cam01", "cam02", "cam03", "cam04")


def _config(tmp: Path, shared_data: Path) -> Path:
    calib = shared_data / "pose2sim_demo_multiperson/calibration/Calib.qca.txt"
    cams = "".join(f'[[cameras]]\nname = "{c}"\nsource = "{DETS / (c + ".json.gz")}"\n' for c in CAMS)
    path = tmp / "rig.toml"
    path.write_text(f'calibration = "{calib}"\n{cams}')
    return path


def _run(cfg: Path, out: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "capture.cli", "run", "--config", str(cfg), "--out", str(out), "--no-overlays"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_loaded_machine_gives_the_idle_output_frame_0_included(shared_data, tmp_path, request):
    cfg = _config(tmp_path, shared_data)
    idle = _run(cfg, tmp_path / "idle")
    assert idle.returncode == 0, idle.stdout[-3000:] + idle.stderr[-3000:]
    request.getfixturevalue("cpu_hogs")
    loaded = _run(cfg, tmp_path / "loaded")
    assert loaded.returncode == 0, loaded.stdout[-3000:] + loaded.stderr[-3000:]
    a = (tmp_path / "idle" / "poses3d.jsonl").read_bytes()
    b = (tmp_path / "loaded" / "poses3d.jsonl").read_bytes()
    _, frames = read_poses_jsonl(tmp_path / "loaded" / "poses3d.jsonl")
    assert [f.frame_idx for f in frames] == list(range(100))
    assert a == b
    summary = json.loads((tmp_path / "loaded" / "summary.json").read_text())
    assert summary["complete"] and summary["lossless"] and summary["frames_missing_views"] == 0
    assert "result: complete" in loaded.stdout


def test_run_into_a_folder_holding_a_run_is_refused(shared_data, tmp_path):
    cfg = _config(tmp_path, shared_data)
    out = tmp_path / "taken"
    out.mkdir()
    (out / "poses3d.jsonl").write_text("precious\n")
    res = _run(cfg, out)
    assert res.returncode == 2 and "already holds a run" in res.stderr
    assert (out / "poses3d.jsonl").read_text() == "precious\n"


def test_worker_with_a_missing_source_exits_2_at_once(tmp_path):
    cmd = [sys.executable, "-m", "capture.cli", "worker", "--camera", "cam01", "--source", str(tmp_path / "no.mp4"),
           "--endpoint", "tcp://127.0.0.1:9"]  # fmt: skip
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert res.returncode == 2
    errors = [line for line in res.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and "no.mp4" in errors[0] and "Traceback" not in res.stderr
