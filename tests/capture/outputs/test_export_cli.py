"""``mvcap export``: every format from one take, the up axis, and one-line errors (exit 2) on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_bvh import read_bvh_with_own_fk, synthetic_take

from capture.cli import main as cli_main
from capture.outputs import PosesWriter, read_poses_jsonl, trc_from_jsonl
from capture.outputs.bvh import yup_from_world, zup_from_world
from capture.outputs.bvh_solve import coco_positions
from capture.outputs.export import export_take, main, resolve_up
from core.errors import InputError
from core.skeleton import COCO17
from core.types import Poses3D

ezc3d = pytest.importorskip("ezc3d")


def _write_take(folder: Path, frames: list[Poses3D]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with PosesWriter(folder / "poses3d.jsonl", COCO17) as w:
        for fr in frames:
            w.write(fr)
    return folder


def _take(rng: np.random.Generator, up: str = "z", n: int = 30) -> list[Poses3D]:
    """Two people with constant bone lengths in a world whose ``up`` axis points up; 60 Hz, one index skipped."""
    a, b = synthetic_take(rng, n), synthetic_take(rng, n)
    b[..., 0] += 2.0  # side by side
    frames = []
    for f in range(n):
        if f == 7:
            continue
        pts = np.stack([a[f], b[f]] if f < 20 else [a[f]])
        pts[..., :3] = pts[..., :3] @ yup_from_world(up)  # Y-up points to the world (a rotation's inverse)
        if f == 3:
            pts[0, COCO17.index("left_wrist")] = 0.0
        frames.append(Poses3D(100 + f, 5 * 10**9 + f * 16_666_667, np.array([3, 8][: len(pts)]), pts))
    return frames


def test_all_formats_from_one_take_agree(tmp_path, rng, capsys):
    frames = _take(rng)
    take = _write_take(tmp_path / "take", frames)
    assert main(["--take", str(take), "--format", "trc,c3d,bvh,csv", "--out", str(tmp_path / "out")]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["frames"] == 29 and summary["rate_hz"] == pytest.approx(60.0) and summary["people"] == [3, 8]
    assert summary["up"] == "z" and len(summary["trc"]) == 2 and len(summary["bvh"]) == 2
    out = tmp_path / "out"
    # TRC: the same bytes as the streaming TRC exporter.
    trc_from_jsonl(take / "poses3d.jsonl", tmp_path / "ref", rate_hz=summary["rate_hz"])
    for name in ("person_3.trc", "person_8.trc"):
        assert (out / name).read_bytes() == (tmp_path / "ref" / name).read_bytes()
    # C3D: every seen joint, mm, on the frame-index grid (100..129).
    c3d = ezc3d.c3d(str(out / "poses3d.c3d"))
    pts = c3d["data"]["points"][:3].transpose(2, 1, 0) / 1000.0
    assert pts.shape == (30, 34, 3) and np.isnan(pts[7]).all() and np.isnan(pts[25, 17:]).all()
    for fr in frames:
        for tid, pose in zip(fr.track_ids.tolist(), fr.poses, strict=True):
            col = [3, 8].index(tid) * 17
            got = pts[fr.frame_idx - 100, col : col + 17]
            seen = pose[:, 3] > 0
            assert np.allclose(got[seen], pose[seen, :3], atol=1e-5) and np.isnan(got[~seen]).all()
    # CSV: the same values.
    rows = [ln.split(",") for ln in (out / "poses3d.csv").read_text().splitlines() if not ln.startswith("#")][1:]
    assert len(rows) == 17 * sum(len(f.track_ids) for f in frames)
    row = next(r for r in rows if r[:4] == ["104", f"{4 * 16_666_667e-9:.6f}", "8", "left_knee"])
    assert np.allclose([float(x) for x in row[4:7]], frames[4].poses[1, COCO17.index("left_knee"), :3], atol=1e-5)
    # BVH: one line per frame index, our FK within a centimetre of the input (held across the gap).
    _, fk, frame_time = read_bvh_with_own_fk(out / "person_3.bvh")
    assert fk.shape[0] == 30 and frame_time == pytest.approx(1 / 60, abs=1e-6)
    for fr in frames:
        pose = fr.poses[0]
        seen = pose[:, 3] > 0
        expected = pose[seen, :3] @ yup_from_world("z").T
        assert np.linalg.norm(coco_positions(fk)[fr.frame_idx - 100, seen] - expected, axis=1).max() < 0.01
    assert read_bvh_with_own_fk(out / "person_8.bvh")[1].shape[0] == 20  # frames 100..119
    info = json.loads((out / "export.json").read_text())
    assert info["world_up"] == "z" and info["files"]["c3d"] == ["poses3d.c3d"]
    assert "Euler ZXY" in info["conventions"]["bvh"] and "mm" in info["conventions"]["c3d"]


def test_up_axis_rotates_every_export_to_z_up(tmp_path, rng):
    """A y-down world (CMU Panoptic) exported with --up -y gives the same files as the same take z up."""
    take_z = _write_take(tmp_path / "z", _take(np.random.default_rng(4), "z"))
    take_y = _write_take(tmp_path / "y", _take(np.random.default_rng(4), "-y"))
    every = ["trc", "c3d", "bvh", "csv"]
    res_z = export_take(take_z / "poses3d.jsonl", tmp_path / "oz", every, bvh_units="cm")
    res_y = export_take(take_y / "poses3d.jsonl", tmp_path / "oy", every, up="-y", bvh_units="cm")
    assert res_z.up == ("z", "default (mvcap world convention: z up)") and res_y.up == ("-y", "--up")
    c3d_z = ezc3d.c3d(str(tmp_path / "oz/poses3d.c3d"))["data"]["points"]
    c3d_y = ezc3d.c3d(str(tmp_path / "oy/poses3d.c3d"))["data"]["points"]
    assert np.allclose(c3d_z, c3d_y, atol=0.01, equal_nan=True)  # mm
    for name in ("person_3.trc", "person_3.bvh"):
        lines_z = (tmp_path / "oz" / name).read_text().splitlines()
        lines_y = (tmp_path / "oy" / name).read_text().splitlines()
        nums_z = np.array([float(x) for ln in lines_z[6:] for x in ln.split() if ln[:1].isdigit() or ln[:1] == "-"])
        nums_y = np.array([float(x) for ln in lines_y[6:] for x in ln.split() if ln[:1].isdigit() or ln[:1] == "-"])
        assert nums_z.size > 100 and nums_z.shape == nums_y.shape and np.allclose(nums_z, nums_y, atol=2e-3)


def test_up_axis_comes_from_the_run_calibration(tmp_path):
    header = {"format": "mvcap-poses3d"}
    run = tmp_path / "run"
    run.mkdir()
    assert resolve_up(run, header)[0] == "z"  # a recorded take: no config
    in_header = resolve_up(run, {"world_frame": "right-handed, y down"})
    assert in_header == ("-y", "poses header world_frame 'right-handed, y down'")
    panoptic = tmp_path / "calibration_x.json"
    panoptic.write_text(json.dumps({"cameras": [{"name": "00_00", "distCoef": [0, 0, 0, 0, 0]}]}))
    (run / "config.toml").write_text(f'calibration = "{panoptic}"\n')
    assert resolve_up(run, header)[0] == "-y"
    ours = tmp_path / "rig.json"
    ours.write_text(json.dumps({"format": "mvcap-calibration", "version": 1, "world_frame": "right-handed, -x up"}))
    (run / "config.toml").write_text(f'calibration = "{ours}"\n')
    axis, why = resolve_up(run, header)
    assert axis == "-x" and "world_frame" in why
    (run / "config.toml").write_text(f'calibration = "{tmp_path / "Calib.qca.txt"}"\n')
    assert resolve_up(run, header)[0] == "z"
    assert resolve_up(run, header, "-Y") == ("-y", "--up")
    with pytest.raises(InputError, match="unknown up axis"):
        resolve_up(run, header, "north")
    assert np.allclose(zup_from_world("-x") @ [-1, 0, 0], [0, 0, 1])


def test_frames_that_go_back_are_sorted(tmp_path, rng):
    frames = _take(rng)
    take = _write_take(tmp_path / "take", frames[10:] + frames[:10])
    res = export_take(take / "poses3d.jsonl", tmp_path / "out", ["c3d", "bvh"])
    assert res.n_frames == len(frames)
    pts = ezc3d.c3d(str(tmp_path / "out/poses3d.c3d"))["data"]["points"][:3].transpose(2, 1, 0)
    assert np.allclose(pts[0, :17] / 1000, frames[0].poses[0, :, :3], atol=1e-5)
    _, fk, _ = read_bvh_with_own_fk(tmp_path / "out/person_3.bvh")
    assert np.allclose(coco_positions(fk)[0], frames[0].poses[0, :, :3] @ yup_from_world("z").T, atol=1e-3)


@pytest.mark.parametrize(
    "args,message",
    [
        (["--format", "trc,fbx"], "unknown export format(s) ['fbx']; valid: trc, c3d, bvh, csv"),
        (["--up", "north"], "unknown up axis 'north'"),
        (["--rate-hz", "0"], "--rate-hz must be > 0"),
    ],
)
def test_bad_options_are_one_line_exit_2(tmp_path, rng, capsys, args, message):
    take = _write_take(tmp_path / "take", _take(rng, n=3))
    assert main(["--take", str(take), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mvcap export: error: ") and message in err and err.count("\n") == 1


def test_missing_empty_and_personless_takes_are_exit_2(tmp_path, capsys):
    assert cli_main(["export", "--take", str(tmp_path / "nothing")]) == 2
    assert "cannot read poses" in capsys.readouterr().err
    empty = _write_take(tmp_path / "empty", [])
    assert main(["--take", str(empty), "--format", "bvh"]) == 2
    assert "the take holds no frame" in capsys.readouterr().err
    nobody = _write_take(tmp_path / "nobody", [Poses3D(0, 0, np.zeros(0, np.int64), np.zeros((0, 17, 4)))])
    assert main(["--take", str(nobody)]) == 2
    err = capsys.readouterr().err
    assert "holds 1 frames but no person" in err and err.count("\n") == 1
    assert not (nobody / "export.json").exists()


def test_read_only_output_is_exit_1(tmp_path, rng, capsys, read_only_dir):
    take = _write_take(tmp_path / "take", _take(rng, n=3))
    assert main(["--take", str(take), "--format", "csv,bvh", "--out", str(read_only_dir)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"mvcap export: error: {read_only_dir}") and "cannot write" in err and err.count("\n") == 1


def test_mvcap_export_dispatches_to_this_cli(tmp_path, rng, capsys):
    take = _write_take(tmp_path / "take", _take(rng, n=4))
    assert cli_main(["export", "--take", str(take), "--format", "csv"]) == 0
    assert json.loads(capsys.readouterr().out)["csv"] == [str(take / "poses3d.csv")]
    _, frames = read_poses_jsonl(take / "poses3d.jsonl")
    assert len(frames) == 4
