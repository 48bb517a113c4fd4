"""``mvcap calibrate offsets``: the node's TOML table from real detections, known shifts, one-line errors."""

from __future__ import annotations

import json
import shutil
import tomllib
from pathlib import Path

import numpy as np
import pytest

from capture.calibrate.offsets import main
from capture.sources.detection_files import read_detections_json, write_detections_json
from core.config import config_from_dict
from core.types import Detections2D

DEMO = Path(__file__).resolve().parents[2] / "data" / "demo_yolo11n"
QCA = "pose2sim_demo_multiperson/calibration/Calib.qca.txt"
FRAME_MS = 1000 / 60


def _run(capsys, *argv) -> tuple[int, list[str], str]:
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out.strip().splitlines(), err


def _one_error_line(err: str, *needles: str) -> None:
    lines = [line for line in err.strip().splitlines() if line]
    assert len(lines) == 1 and lines[0].startswith("mvcap calibrate offsets: error: "), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def _toml_offsets(lines: list[str]) -> dict[str, float]:
    """The [node] table the command prints, parsed as the node's config parser would take it."""
    start = lines.index("[node]")
    table = tomllib.loads("\n".join(lines[start : start + 2]))
    return dict(config_from_dict(table).node.clock_offsets_ms)


def test_demo_synchronised_cameras_table_within_one_frame(capsys):
    rc, lines, err = _run(capsys, "--detections", DEMO)
    assert rc == 0, err
    summary = json.loads(lines[-1])
    offsets = _toml_offsets(lines)
    assert list(offsets) == ["cam01", "cam02", "cam03", "cam04"] and offsets == summary["offsets_ms"]
    assert all(abs(v) < FRAME_MS for v in offsets.values()), offsets
    assert summary["method"] == "motion" and summary["reference"] == "cam01" and summary["unknown"] == []
    assert all(0.1 < c <= 1 for c in summary["confidence"].values())
    assert len(summary["pairs"]) == 6 and all(p["used"] for p in summary["pairs"])


def test_camera_started_late_is_recovered_and_reference_is_honoured(tmp_path, capsys):
    for cam in ("cam01", "cam02", "cam04"):
        shutil.copy(DEMO / f"{cam}.json.gz", tmp_path)
    # cam03 started 12 frames (200 ms) late and stamps its first frame 0: its clock is 200 ms behind.
    dets = read_detections_json(DEMO / "cam03.json.gz")[12:]
    period_ns = 1e9 / 60
    moved = [Detections2D("cam03", i, round(i * period_ns), d.poses, d.boxes) for i, d in enumerate(dets)]
    write_detections_json(tmp_path / "cam03.json.gz", "cam03", 60.0, moved)
    rc, lines, _ = _run(capsys, "--detections", tmp_path, "--max-offset-ms", "1000")
    assert rc == 0
    offsets = _toml_offsets(lines)
    assert abs(offsets["cam03"] + 200.0) < FRAME_MS, offsets
    rc, lines, _ = _run(capsys, "--detections", tmp_path, "--reference", "cam03")
    assert rc == 0
    summary = json.loads(lines[-1])
    assert summary["reference"] == "cam03" and summary["offsets_ms"]["cam03"] == 0.0
    assert all(abs(v - 200.0) < FRAME_MS for c, v in summary["offsets_ms"].items() if c != "cam03")


def test_calibration_orders_cameras_and_epipolar_refinement_runs(shared_data, tmp_path, capsys):
    calib = shared_data / QCA
    if not calib.is_file():
        pytest.skip(f"{calib} is absent")
    for cam in ("cam04", "cam02"):
        shutil.copy(DEMO / f"{cam}.json.gz", tmp_path)
    shutil.copy(DEMO / "cam01.json.gz", tmp_path / "stranger.json.gz")  # not in the calibration: ignored
    rc, lines, _ = _run(capsys, "--detections", tmp_path, "--calibration", calib)
    assert rc == 0
    motion = json.loads(lines[-1])
    assert list(motion["offsets_ms"]) == ["cam02", "cam04"]  # the calibration's order
    rc, lines, _ = _run(capsys, "--detections", tmp_path, "--calibration", calib, "--refine", "epipolar")
    assert rc == 0
    refined = json.loads(lines[-1])
    assert refined["method"] == "motion+epipolar"
    # The epipolar search stays within two frames of the motion estimate.
    assert abs(refined["offsets_ms"]["cam04"] - motion["offsets_ms"]["cam04"]) <= 2 * FRAME_MS + 1


def test_camera_without_people_is_reported_unknown_with_exit_1(tmp_path, capsys):
    for cam in ("cam01", "cam02"):
        shutil.copy(DEMO / f"{cam}.json.gz", tmp_path)
    empty = [
        Detections2D("cam09", i, round(i * 1e9 / 60), np.zeros((0, 17, 3), np.float32), np.zeros((0, 5), np.float32))
        for i in range(100)
    ]
    write_detections_json(tmp_path / "cam09.json.gz", "cam09", 60.0, empty)
    rc, lines, _ = _run(capsys, "--detections", tmp_path)
    assert rc == 1
    summary = json.loads(lines[-1])
    assert summary["unknown"] == ["cam09"] and summary["confidence"]["cam09"] == 0.0
    assert any("cam09" in line and "unknown" in line for line in lines if line.startswith("#"))
    assert abs(summary["offsets_ms"]["cam02"]) < FRAME_MS


def test_bad_input_exits_2_with_one_line(tmp_path, capsys):
    rc, _, err = _run(capsys, "--detections", tmp_path / "nope")
    assert rc == 2
    _one_error_line(err, "nope", "not a folder")
    shutil.copy(DEMO / "cam01.json.gz", tmp_path)
    rc, _, err = _run(capsys, "--detections", tmp_path)
    assert rc == 2
    _one_error_line(err, "at least 2 cameras")
    shutil.copy(DEMO / "cam02.json.gz", tmp_path)
    rc, _, err = _run(capsys, "--detections", tmp_path, "--reference", "cam07")
    assert rc == 2
    _one_error_line(err, "cam07", "cam01, cam02")
    rc, _, err = _run(capsys, "--detections", tmp_path, "--refine", "epipolar")
    assert rc == 2
    _one_error_line(err, "--calibration")
    rc, _, err = _run(capsys, "--detections", tmp_path, "--max-offset-ms", "-5")
    assert rc == 2
    _one_error_line(err, "--max-offset-ms")
    rc, _, err = _run(capsys, "--detections", tmp_path, "--calibration", tmp_path / "missing.json")
    assert rc == 2
    _one_error_line(err, "missing.json")
    (tmp_path / "cam03.json.gz").write_bytes(b"not gzip, not json")
    rc, _, err = _run(capsys, "--detections", tmp_path)
    assert rc == 2
    _one_error_line(err, "cam03.json.gz")
    rc, _, err = _run(capsys)  # --detections is required
    assert rc == 2
    _one_error_line(err, "--detections")
