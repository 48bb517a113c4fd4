"""``mvcap bench frontend``: the table, rejected settings, the figures of a run against take_quality."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from capture.benchmarks import frontend
from capture.benchmarks.take_quality import take_quality
from capture.outputs import PosesWriter, read_poses_jsonl
from core.errors import ConfigError
from core.skeleton import COCO17
from core.types import Poses3D

DETS = Path(__file__).resolve().parents[1] / "data" / "demo_yolo11n"


def _figures(**kw) -> dict:
    fig = {"ids": 3, "people_per_frame": 2.95, "reprojection_px": {"median": 3.84, "p90": 10.4}, "jumps": 25,
           "limb_std_cm_max": 2.7, "detect_ms": 91.5, "cpu_ms": 120.0, "fps_wall": 6.1, "fps_2core": 4.17,
           "complete": True}  # fmt: skip
    return fig | kw


def test_table_has_one_line_per_setting_and_lists_skipped_ones_with_their_reason():
    rows = [
        {"setting": "default", "figures": _figures()},
        {"setting": "big", "figures": _figures(ids=5, cpu_ms=None, fps_2core=None, complete=False)},
        {"setting": "movenet", "skipped": "MoveNet needs the optional runtime"},
    ]
    lines = frontend.format_table(rows, "measured here").splitlines()
    body = [x for x in lines if x.startswith("| ") and not x.startswith("| setting")]
    assert body[0] == "| default | 3 | 2.95 | 3.84 / 10.4 | 25 | 2.7 | 91.5 | 120 | 6.1 | 4.17 |"
    assert body[1].startswith("| big (INCOMPLETE run) | 5 |") and "| n/a | 6.1 | n/a |" in body[1]
    assert len(body) == 2 and "measured here" in lines
    assert "- movenet: skipped, MoveNet needs the optional runtime" in lines
    # every column of the header is explained in the legend
    assert lines[-1].startswith("Columns: ") and all(c in lines[-1] for c in frontend.COLUMNS)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [({"no_such_key": True}, "unknown key(s) ['no_such_key']"), ({"input_long_px": "big"}, "input_long_px must be int"),
     ({"input_long_px": 650}, "multiple of 32")],
)  # fmt: skip
def test_a_setting_the_config_rejects_is_skipped_with_its_reason(tmp_path, overrides, message):
    rows = frontend.run_frontend([("bad", overrides)], tmp_path / "no-demo", tmp_path / "runs")
    assert rows == [{"setting": "bad", "overrides": overrides, "skipped": rows[0]["skipped"]}]
    assert message in rows[0]["skipped"]
    assert not (tmp_path / "runs").exists()  # nothing was launched
    with pytest.raises(ConfigError):
        frontend.setting_config({"detector": {"name": "yolo11n-pose"}}, overrides, "x")


def test_setting_overrides_only_the_detector_and_leave_the_base_unchanged():
    base = {"detector": {"input_long_px": 640, "threads": 1}, "fusion": {"filter": "none"}}
    cfg = frontend.setting_config(base, {"input_long_px": 960}, "x")
    assert cfg.detector.input_long_px == 960 and cfg.detector.threads == 1 and cfg.fusion.filter == "none"
    assert base["detector"]["input_long_px"] == 640


def test_row_figures_from_a_hand_made_run(tmp_path, rng):
    ids = [np.array([1, 2]), np.array([1, 2]), np.array([2])]
    poses = [rng.normal(size=(len(i), 17, 4)) for i in ids]
    for p in poses:
        p[..., 3] = 1.0
    with PosesWriter(tmp_path / "poses3d.jsonl", COCO17) as w:
        for f, (i, p) in enumerate(zip(ids, poses, strict=True)):
            w.write(Poses3D(f, f * 10**7, i, p))
    summary = {"frames": 3, "complete": True, "reprojection_px": {"median": 3.456, "p90": 9.0},
               "workers": {"cam01": {"frames": 3, "detection_ms": {"median": 50.0}},
                           "cam02": {"frames": 3, "detection_ms": {"median": 70.0}},
                           "cam03": {"frames": 3, "detection_ms": {"median": 90.0}}}}  # fmt: skip
    procs = {
        11: {"role": "worker", "camera": "cam01", "cpu_ready_s": 1.0, "t_ready": 100.0, "cpu_s": 1.3, "t_last": 101.5},
        12: {"role": "worker", "camera": "cam02", "cpu_ready_s": 1.2, "t_ready": 100.0, "cpu_s": 1.8, "t_last": 103.0},
        13: {"role": "worker", "camera": "cam03", "cpu_ready_s": None, "t_ready": None, "cpu_s": 2.0, "t_last": 9.0},
        14: {"role": "node", "camera": None, "cpu_ready_s": None, "t_ready": None, "cpu_s": 0.9, "t_last": 103.0},
    }
    fig = frontend.row_figures(tmp_path, summary, procs)
    expected = take_quality(ids, poses, [[] for _ in ids])
    for key in ("ids", "people_per_frame", "jumps", "limb_std_cm", "limb_std_cm_max"):
        assert fig[key] == expected[key]
    assert fig["reprojection_px"] == {"median": 3.46, "p90": 9.0}
    cams = fig["per_camera"]
    assert cams["cam01"]["cpu_ms"] == 100.0 and cams["cam02"]["cpu_ms"] == 200.0  # (1.3 - 1.0) s / 3 frames
    assert cams["cam01"]["fps_wall"] == 2.0 and cams["cam02"]["fps_wall"] == 1.0
    assert cams["cam03"]["cpu_ms"] is None and cams["cam03"]["fps_wall"] is None  # never reported ready
    assert fig["detect_ms"] == 70.0 and fig["cpu_ms"] == 150.0 and fig["fps_wall"] == 1.5
    assert fig["fps_2core"] == round(2000 / (4 * 150.0), 2) and fig["node_process_cpu_ms"] == 300.0


def test_missing_demo_data_is_a_one_line_error(tmp_path, capsys):
    assert frontend.main(["--data", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "error:" in err and "Calib.qca.txt" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.slow  # 5 processes: 6-16 s on the shared 2-core machine
def test_replayed_run_gives_the_figures_of_its_own_output(shared_data, tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- frontend:start -->\nold\n<!-- frontend:end -->\nrest\n")
    argv = ["--data", str(shared_data / "pose2sim_demo_multiperson"), "--detections", str(DETS), "--max-frames",
            "5", "--only", "default", "--out", str(tmp_path / "out"), "--runs", str(tmp_path / "runs"),
            "--readme", str(readme)]  # fmt: skip
    assert frontend.main(argv) == 0
    res = json.loads((tmp_path / "out" / "frontend.json").read_text())
    (row,) = res["rows"]
    fig = row["figures"]
    (run,) = (tmp_path / "runs").iterdir()
    _, frames = read_poses_jsonl(run / "poses3d.jsonl")
    summary = json.loads((run / "summary.json").read_text())
    expected = take_quality([f.track_ids for f in frames], [f.poses for f in frames], [[] for _ in frames])
    for key in ("ids", "people_per_frame", "jumps", "limb_std_cm", "limb_std_cm_max"):
        assert fig[key] == expected[key], key
    assert fig["frames"] == len(frames) == 5 and fig["complete"] and fig["ids"] >= 2
    assert fig["reprojection_px"]["median"] == round(summary["reprojection_px"]["median"], 2)
    assert set(fig["per_camera"]) == {"cam01", "cam02", "cam03", "cam04"}
    for cam in fig["per_camera"].values():  # every worker was sampled from ready to exit
        assert cam["frames"] == 5 and cam["cpu_ms"] is not None and cam["fps_wall"] > 0 and cam["startup_cpu_s"] > 0
    assert fig["fps_2core"] == round(2000 / (4 * fig["cpu_ms"]), 2)
    md = (tmp_path / "out" / "frontend.md").read_text()
    text = readme.read_text()
    assert text.startswith("intro\n<!-- frontend:start -->\n### 2D front end") and text.endswith("-->\nrest\n")
    assert md.strip() in text and "old" not in text
    assert "| default: yolo11n-pose 640 |" in capsys.readouterr().out


@pytest.mark.slow
def test_real_detector_run_on_ten_frames(shared_data, tmp_path):
    data = shared_data / "pose2sim_demo_multiperson"
    rows = frontend.run_frontend(frontend.SETTINGS[:1], data, tmp_path / "runs", max_frames=10)
    fig = rows[0].get("figures")
    assert fig is not None, rows[0].get("skipped")
    assert fig["frames"] == 10 and fig["people_per_frame"] >= 2 and fig["reprojection_px"]["median"] < 10
    # the workers ran the detector (the replay's detection time is 0) and were sampled
    assert fig["detect_ms"] > 5 and fig["cpu_ms"] > 5 and fig["fps_2core"] == round(2000 / (4 * fig["cpu_ms"]), 2)
