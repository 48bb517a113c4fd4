"""The CLI end to end: real processes (node + 4 workers) over loopback ZeroMQ, bad input, Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from calibration.io import read_calibration, write_json
from capture.cli import main as cli_main
from capture.outputs import read_poses_jsonl

DETS = Path(__file__).resolve().parents[1] / "data" / "demo_yolo11n"


def _demo_dir(shared_data: Path) -> Path:
    return shared_data / "pose2sim_demo_multiperson"


def test_demo_on_real_detections(shared_data, tmp_path, capsys):
    out = tmp_path / "run"
    code = cli_main(["demo", "--data", str(_demo_dir(shared_data)), "--detections", str(DETS), "--out", str(out)])
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames"] == 100 and summary["failed_processes"] == {}
    spans = sorted((t["first_frame"], t["last_frame"], t["n_frames"]) for t in summary["tracks"])
    # The two subjects keep one id each through all 100 frames; the bystander (two views) is its own track.
    assert spans == [(0, 99, 100)] * 3
    assert summary["reprojection_px"]["median"] <= 10
    pids = {w["pid"] for w in summary["workers"].values()}
    assert len(pids) == 4 and os.getpid() not in pids  # separate worker processes
    _, frames = read_poses_jsonl(out / "poses3d.jsonl")
    assert len(frames) == 100 and all(len(f.track_ids) == 3 for f in frames)
    trc = (out / f"person_{summary['tracks'][0]['id']}.trc").read_text().splitlines()
    assert trc[0].startswith("PathFileType") and len(trc) == 6 + 100
    assert "frames: 100" in capsys.readouterr().out


def _config(tmp_path: Path, calibration: Path, cameras: list[tuple[str, str]]) -> Path:
    lines = [f'calibration = "{calibration}"']
    for name, src in cameras:
        lines += ["[[cameras]]", f'name = "{name}"', f'source = "{src}"']
    path = tmp_path / "rig.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _error_line(capsys) -> str:
    err = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(err) == 1, err
    return err[0]


def test_calibration_with_one_camera_is_exit_2(shared_data, tmp_path, capsys):
    rig = read_calibration(_demo_dir(shared_data) / "calibration/Calib.qca.txt")
    one = tmp_path / "one.json"
    write_json(rig.subset(["cam01"]), one)
    cfg = _config(tmp_path, one, [("cam01", str(DETS / "cam01.json.gz"))])
    assert cli_main(["run", "--config", str(cfg), "--out", str(tmp_path / "o")]) == 2
    line = _error_line(capsys)
    assert "one.json" in line and "at least 2 cameras" in line


def test_unknown_camera_name_is_exit_2(shared_data, tmp_path, capsys):
    calib = _demo_dir(shared_data) / "calibration/Calib.qca.txt"
    cfg = _config(tmp_path, calib, [("cam01", str(DETS / "cam01.json.gz")), ("cam09", str(DETS / "cam02.json.gz"))])
    assert cli_main(["run", "--config", str(cfg), "--out", str(tmp_path / "o")]) == 2
    line = _error_line(capsys)
    assert "cam09" in line and "Calib.qca.txt" in line


def test_unreadable_video_is_exit_2(shared_data, tmp_path, capsys):
    calib = _demo_dir(shared_data) / "calibration/Calib.qca.txt"
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"this is not a video")
    cfg = _config(tmp_path, calib, [("cam01", str(bad)), ("cam02", str(DETS / "cam02.json.gz"))])
    assert cli_main(["run", "--config", str(cfg), "--out", str(tmp_path / "o")]) == 2
    assert "broken.mp4" in _error_line(capsys)


def test_unknown_config_key_is_exit_2(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[matching]\nmax_epipolar = 3.0\n")
    assert cli_main(["run", "--config", str(cfg)]) == 2
    assert "max_epipolar" in _error_line(capsys)


def _descendants_alive(marker: str) -> list[int]:
    alive = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if marker in (proc / "cmdline").read_bytes().decode(errors="replace"):
                    alive.append(int(proc.name))
            except OSError:
                continue
    return alive


@pytest.mark.slow
def test_ctrl_c_leaves_no_orphan_and_a_readable_folder(shared_data, tmp_path):
    out = tmp_path / "interrupted"
    cmd = [sys.executable, "-m", "capture.cli", "demo", "--data", str(_demo_dir(shared_data)),
           "--detections", str(DETS), "--out", str(out), "--realtime"]  # fmt: skip
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    poses = out / "poses3d.jsonl"
    deadline = time.monotonic() + 60
    # Interrupt early: the take lasts 1.7 s, and on a loaded machine the node may write late.
    while time.monotonic() < deadline and (not poses.exists() or len(poses.read_text().splitlines()) < 6):
        time.sleep(0.05)
    assert poses.exists(), proc.communicate()[0][-2000:]
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: SIGINT to the whole group
    assert proc.wait(30) == 130
    time.sleep(0.5)
    assert _descendants_alive(str(out)) == []
    _, frames = read_poses_jsonl(poses)
    assert 5 <= len(frames) < 100
    idx = [f.frame_idx for f in frames]
    assert idx == sorted(set(idx)) and idx[0] == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["interrupted"] is True and summary["frames"] == len(frames)
    # Live replay may skip frames on a loaded machine (freshest frame wins), but never silently: a
    # frame absent from the output was skipped by every camera, so each camera reports it skipped.
    absent = idx[-1] + 1 - len(idx)
    skipped = min(summary["skipped_at_source"].values()) + summary["frames_skipped_behind"]
    assert absent <= skipped, (absent, summary["skipped_at_source"], summary["frames_skipped_behind"])


def test_bench_node_prints_figures(shared_data, capsys):
    calib = _demo_dir(shared_data) / "calibration/Calib.qca.txt"
    assert (
        cli_main(
            ["bench", "node", "--calibration", str(calib), "--detections", str(DETS), "--repeats", "1", "--no-peer"]
        )
        == 0
    )
    figures = json.loads(capsys.readouterr().out)
    assert "peer_pose2sim" not in figures
    assert figures["frames"] == 100 and figures["tracks"] == 3
    assert figures["ms_per_frame"]["median"] > 0 and figures["ratio_to_baseline"] > 0


def test_demo_with_relative_paths(shared_data, tmp_path, monkeypatch):
    """Regression: relative --data/--detections were written as-is into the run's config.toml and
    then resolved against the run folder, so the node found no calibration and nothing was made."""
    monkeypatch.chdir(shared_data)
    rel_dets = os.path.relpath(DETS, shared_data)
    out = tmp_path / "rel"
    assert (
        cli_main(
            [
                "demo",
                "--data",
                "pose2sim_demo_multiperson",
                "--detections",
                rel_dets,
                "--out",
                str(out),
                "--max-frames",
                "10",
            ]
        )
        == 0
    )
    assert json.loads((out / "summary.json").read_text())["frames"] == 10
