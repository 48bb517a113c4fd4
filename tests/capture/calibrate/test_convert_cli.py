"""``mvcap calibrate convert``: any format to any format, one JSON summary line, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from synth import ring_rig

from calibration.camera import CameraRig
from calibration.io import read_calibration, read_qca, write_calibration, write_json
from capture.calibrate.convert import main, max_change_px

QCA = "pose2sim_demo_multiperson/calibration/Calib.qca.txt"
PANOPTIC = "panoptic/160906_band1/calibration_160906_band1.json"


def _need(shared_data: Path, rel: str) -> Path:
    path = shared_data / rel
    if not path.exists():
        pytest.skip(f"real data file {path} is absent")
    return path


def _run(capsys, *argv: str) -> tuple[int, dict | None, str]:
    """(exit code, parsed JSON summary or None, stderr)."""
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    lines = out.strip().splitlines()
    return rc, (json.loads(lines[-1]) if rc == 0 else None), err


def _one_error_line(err: str, *needles: str) -> None:
    lines = [line for line in err.strip().splitlines() if line]
    assert len(lines) == 1, err
    assert lines[0].startswith("mvcap calibrate convert: error: "), lines[0]
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def test_qca_to_toml_and_back(shared_data, tmp_path, capsys):
    src = _need(shared_data, QCA)
    rc, summary, _ = _run(capsys, src, tmp_path / "Calib.toml")
    assert rc == 0
    assert (summary["from"], summary["to"], summary["cameras"]) == ("qualisys", "toml", 4)
    assert summary["names"] == ["cam01", "cam02", "cam03", "cam04"] and summary["order_kept"]
    assert summary["max_change_px"] < 1e-6 and summary["size_stored"] and summary["distortion_dropped"] == []
    rc, summary, _ = _run(capsys, tmp_path / "Calib.toml", tmp_path / "again.qca.txt")
    assert rc == 0 and summary["from"] == "toml" and summary["max_change_px"] < 1e-6
    original, again = read_qca(src), read_qca(tmp_path / "again.qca.txt")
    assert max_change_px(original, again) < 1e-6


def test_panoptic_selection_keeps_the_given_order(shared_data, tmp_path, capsys):
    src = _need(shared_data, PANOPTIC)
    rc, summary, _ = _run(capsys, src, tmp_path / "sel.json", "--cameras", "00_16,00_03", "--to", "voxelpose")
    assert rc == 0 and summary["names"] == ["00_16", "00_03"] and summary["to"] == "voxelpose"
    assert summary["size_stored"] is False and summary["max_change_px"] < 1e-6
    assert read_calibration(tmp_path / "sel.json", size=(1920, 1080)).names == ("00_16", "00_03")


def test_distortion_needs_drop_flag_for_tum(tmp_path, capsys):
    rig = ring_rig(dist=np.array([0.05, -0.01, 0.0, 0.0, 0.0]))
    write_json(rig, tmp_path / "rig.json")
    rc, _, err = _run(capsys, tmp_path / "rig.json", tmp_path / "tum", "--to", "tum")
    assert rc == 2
    _one_error_line(err, "distortion", "--drop-distortion")
    assert not (tmp_path / "tum").exists()
    rc, summary, _ = _run(capsys, tmp_path / "rig.json", tmp_path / "tum", "--to", "tum", "--drop-distortion")
    assert rc == 0 and summary["distortion_dropped"] == list(rig.names) and len(summary["files"]) == 4
    assert summary["max_change_px"] > 1.0  # what dropping k1 = 0.05 moves at the image corners
    rc, _, err = _run(capsys, tmp_path / "tum", tmp_path / "back.json")
    assert rc == 2
    _one_error_line(err, "no image size")
    rc, summary, _ = _run(capsys, tmp_path / "tum", tmp_path / "back.json", "--size", "1920x1080")
    assert rc == 0 and summary["from"] == "tum" and summary["names"] == list(rig.names)
    assert summary["max_change_px"] < 1e-6


@pytest.mark.parametrize(
    ("argv", "needles"),
    [
        ((), ("required",)),
        (("{d}/rig.json",), ("OUT",)),
        (("{d}/rig.json", "{d}/o.json", "--to", "yaml"), ("yaml", "mvcap", "qualisys", "tum")),
        (("{d}/rig.json", "{d}/o.json", "--size", "12"), ("--size", "WIDTHxHEIGHT")),
        (("{d}/missing.json", "{d}/o.json"), ("missing.json", "cannot read")),
        (("{d}/rig.json", "{d}/o.yaml"), ("o.yaml", "format")),
        (("{d}/rig.json", "{d}/o.toml", "--to", "4da"), ("o.toml", ".json")),
        (("{d}/rig.json", "{d}/o.json", "--cameras", "cam0,nope"), ("'nope'",)),
        (("{d}/rig.json", "{d}/o.json", "--log-level", "LOUD"), ("LOUD",)),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv, needles, tmp_path, capsys):
    write_json(ring_rig(), tmp_path / "rig.json")
    rc, _, err = _run(capsys, *(a.format(d=tmp_path) for a in argv))
    assert rc == 2
    _one_error_line(err, *needles)
    assert not list(tmp_path.glob("o.*"))


def test_unwritable_output_is_exit_1(read_only_dir, tmp_path, capsys):
    write_json(ring_rig(), tmp_path / "rig.json")
    rc, _, err = _run(capsys, tmp_path / "rig.json", read_only_dir / "out.toml")
    assert rc == 1
    _one_error_line(err, "out.toml", "cannot write")


def test_max_change_px_sees_a_moved_camera():
    rig = ring_rig()
    cams = list(rig)
    moved = cams[1]
    cams[1] = type(moved)(moved.name, moved.K, moved.dist, moved.R, moved.t + np.array([0.001, 0.0, 0.0]), moved.size)
    change = max_change_px(rig, CameraRig(tuple(cams)))
    # 1 mm sideways at 0.5 m depth and f = 1000 px: 2 px
    assert change == pytest.approx(2.0, rel=1e-6)


def test_mvcap_cli_dispatches_convert(tmp_path, capsys):
    from capture.cli import main as mvcap

    write_calibration(ring_rig(), tmp_path / "rig.json")
    assert mvcap(["calibrate", "convert", str(tmp_path / "rig.json"), str(tmp_path / "rig.toml")]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["to"] == "toml"
