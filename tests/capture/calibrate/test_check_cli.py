"""``mvcap calibrate check``: per-camera reprojection error, a bad camera flagged, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from synth import person, ring_rig

from calibration.camera import Camera, CameraRig
from calibration.io import read_calibration, write_json
from capture.calibrate.check import main
from capture.outputs.jsonl import PosesWriter
from capture.pipeline import FrameReconstructor
from capture.sources.detection_files import read_detections_json, write_detections_json
from core.skeleton import COCO17
from core.types import Detections2D, Poses3D

DEMO = Path(__file__).resolve().parents[2] / "data" / "demo_yolo11n"
QCA = "pose2sim_demo_multiperson/calibration/Calib.qca.txt"
FPS = 30.0


def _run(capsys, *argv) -> tuple[int, dict | None, list[str], str]:
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    lines = out.strip().splitlines()
    return rc, (json.loads(lines[-1]) if rc == 0 else None), lines, err


def _tilted(rig: CameraRig, name: str, deg: float) -> CameraRig:
    """The rig with one camera tilted about its own x axis (centre kept): its image moves vertically."""
    dR = cv2.Rodrigues(np.array([np.radians(deg), 0.0, 0.0]))[0]
    return CameraRig(
        tuple(Camera(c.name, c.K, c.dist, dR @ c.R, dR @ c.t, c.size) if c.name == name else c for c in rig)
    )


def _scene(folder: Path, n_frames: int = 40, shift_px: dict[str, float] | None = None) -> tuple[Path, Path]:
    """Synthetic 4-camera rig, noise-free detections of two walking people, and the true take."""
    rig = ring_rig()
    calib = folder / "rig.json"
    write_json(rig, calib)
    per_cam: dict[str, list[Detections2D]] = {c.name: [] for c in rig}
    take = folder / "take"
    take.mkdir()
    with PosesWriter(take / "poses3d.jsonl", COCO17) as writer:
        for f in range(n_frames):
            t = f / FPS
            people = [person((np.cos(0.5 * t), np.sin(0.5 * t)), 0.5 * t), person((-0.8, 0.3 * np.sin(t)), 2.0)]
            stamp = round(t * 1e9)
            poses = np.concatenate([np.stack(people), np.ones((2, 17, 1))], axis=2)
            writer.write(Poses3D(f, stamp, np.array([1, 2]), poses))
            for cam in rig:
                uv = np.stack([cam.project(X) for X in people]) + (shift_px or {}).get(cam.name, 0.0) * np.array([1, 0])
                det = np.concatenate([uv, np.ones((2, 17, 1))], axis=2).astype(np.float32)
                per_cam[cam.name].append(Detections2D(cam.name, f, stamp, det, np.tile([0, 0, 1, 1, 0.9], (2, 1))))
    for name, dets in per_cam.items():
        write_detections_json(folder / "dets" / f"{name}.json.gz", name, FPS, dets)
    return calib, take


def test_take_noise_free_is_exact_and_a_shifted_camera_is_flagged(tmp_path, capsys):
    calib, take = _scene(tmp_path)
    rc, summary, lines, _ = _run(capsys, "--calibration", calib, "--detections", tmp_path / "dets", "--take", take)
    assert rc == 0 and summary["mode"] == "take" and summary["flagged"] == []
    for s in summary["cameras"].values():
        assert s["frames"] == 40 and s["people"] == 80 and s["joints"] == 80 * 17
        assert s["median_px"] <= 0.01 and s["p90_px"] <= 0.01  # detection files round to 0.01 px
    assert lines[0].split()[:3] == ["camera", "frames", "people"] and len(lines) == 7
    # Same take, cam2's detections 25 px to the right: cam2 stands out, the others do not move.
    other = tmp_path / "shifted"
    other.mkdir()
    calib, take = _scene(other, shift_px={"cam2": 25.0})
    rc, summary, lines, _ = _run(capsys, "--calibration", calib, "--detections", other / "dets", "--take", take)
    assert rc == 0 and summary["flagged"] == ["cam2"]
    assert summary["cameras"]["cam2"]["median_px"] == pytest.approx(25.0, abs=0.02)
    assert summary["cameras"]["cam0"]["median_px"] < 0.01
    assert any(line.startswith("cam2") and "<-" in line for line in lines)


def test_triangulated_noise_free_then_a_tilted_camera_is_flagged(tmp_path, capsys):
    calib, _ = _scene(tmp_path)
    rc, summary, _, _ = _run(capsys, "--calibration", calib, "--detections", tmp_path / "dets")
    assert rc == 0 and summary["mode"] == "triangulated" and summary["flagged"] == []
    assert all(s["median_px"] < 0.05 and s["joints"] > 0 for s in summary["cameras"].values())
    write_json(_tilted(read_calibration(calib), "cam1", 0.5), tmp_path / "bad.json")
    rc, summary, _, _ = _run(capsys, "--calibration", tmp_path / "bad.json", "--detections", tmp_path / "dets")
    assert rc == 0 and summary["flagged"] == ["cam1"], summary["cameras"]
    assert summary["cameras"]["cam1"]["median_px"] > 2 * summary["rig_median_px"]


@pytest.fixture
def demo_calibration(shared_data) -> Path:
    calib = shared_data / QCA
    if not calib.is_file():
        pytest.skip(f"{calib} is absent")
    return calib


def test_demo_real_detections_nothing_flagged_until_a_camera_is_tilted(demo_calibration, tmp_path, capsys):
    rc, summary, _, _ = _run(capsys, "--calibration", demo_calibration, "--detections", DEMO)
    assert rc == 0 and summary["flagged"] == []
    assert all(s["frames"] == 100 and s["joints"] > 1000 and s["median_px"] < 15 for s in summary["cameras"].values())
    write_json(_tilted(read_calibration(demo_calibration), "cam02", 2.0), tmp_path / "bad.json")
    rc, summary, _, _ = _run(capsys, "--calibration", tmp_path / "bad.json", "--detections", DEMO)
    assert rc == 0 and summary["flagged"] == ["cam02"], summary["cameras"]


def test_demo_take_recorded_by_the_pipeline(demo_calibration, tmp_path, capsys):
    rig = read_calibration(demo_calibration)
    dets = {c.name: read_detections_json(DEMO / f"{c.name}.json.gz") for c in rig}
    rec = FrameReconstructor(rig, COCO17)
    with PosesWriter(tmp_path / "poses3d.jsonl", COCO17) as writer:
        for f in range(100):
            views = [dets[c.name][f] for c in rig]
            res = rec.process(views, views[0].stamp_ns)
            writer.write(Poses3D(f, views[0].stamp_ns, res.track_ids, res.poses))
    rc, summary, _, _ = _run(capsys, "--calibration", demo_calibration, "--detections", DEMO, "--take", tmp_path)
    assert rc == 0 and summary["mode"] == "take" and summary["flagged"] == []
    assert all(s["people"] >= 150 and s["median_px"] < 15 for s in summary["cameras"].values())


def test_bad_input_exits_2_with_one_line(tmp_path, capsys):
    calib, take = _scene(tmp_path, n_frames=5)

    def fails(*argv, needle: str) -> None:
        rc, _, _, err = _run(capsys, *argv)
        lines = [line for line in err.strip().splitlines() if line]
        assert rc == 2 and len(lines) == 1 and "Traceback" not in err, err
        assert lines[0].startswith("mvcap calibrate check: error: ") and needle in lines[0], lines[0]

    fails("--calibration", tmp_path / "none.json", "--detections", tmp_path / "dets", needle="none.json")
    fails("--calibration", calib, "--detections", tmp_path / "empty", needle="empty")
    (tmp_path / "one").mkdir()
    (tmp_path / "one" / "cam0.json.gz").write_bytes((tmp_path / "dets" / "cam0.json.gz").read_bytes())
    fails("--calibration", calib, "--detections", tmp_path / "one", needle="at least 2 camera")
    fails("--calibration", calib, "--detections", tmp_path / "dets", "--take", tmp_path / "dets", needle="poses3d")
    (tmp_path / "bad.jsonl").write_text('{"format": "mvcap-poses3d", "version": 1, "joints": ["a", "b"]}\n')
    fails("--calibration", calib, "--detections", tmp_path / "dets", "--take", tmp_path / "bad.jsonl", needle="17")
    fails("--calibration", calib, "--detections", tmp_path / "dets", "--flag-factor", "0.5", needle="--flag-factor")
    fails("--detections", tmp_path / "dets", needle="--calibration")
