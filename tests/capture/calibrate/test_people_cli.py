"""``mvcap calibrate people``: a rough calibration refined from a synthetic walking scene; bad input."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from scipy.spatial.transform import Rotation
from synth import write_walking_scene

from calibration.camera import Camera, CameraRig
from calibration.io import read_calibration, write_json
from capture.calibrate.people import main


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """A 4-camera ring, 2 people walking for 30 frames (1 px noise), and a rough copy of the rig."""
    folder = tmp_path_factory.mktemp("people_scene")
    calib, names = write_walking_scene(folder, n_frames=30, fps=10.0)
    rig = read_calibration(calib)
    rng = np.random.default_rng(4)
    cams = [rig[0]]
    for cam in list(rig)[1:]:
        axis = rng.normal(size=3)
        R = Rotation.from_rotvec(np.deg2rad(4.0) * axis / np.linalg.norm(axis)).as_matrix() @ cam.R
        centre = cam.center + rng.normal(scale=0.08, size=3)
        cams.append(Camera(cam.name, cam.K, cam.dist, R, -R @ centre, cam.size))
    rough = folder / "rough.json"
    write_json(CameraRig(tuple(cams)), rough)
    return folder, rig, rough, names


def _distance_arg(rig, a: str, b: str) -> str:
    return f"{a},{b},{np.linalg.norm(rig[a].center - rig[b].center):.6f}"


def test_refines_rough_calibration(scene, tmp_path, capsys):
    folder, rig, rough, _ = scene
    out = tmp_path / "refined.json"
    argv = ["--calibration", str(rough), "--detections", str(folder), "--out", str(out)]
    assert main([*argv, "--known-distance", _distance_arg(rig, "cam0", "cam2")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [ln.split(":")[0] for ln in lines[:-1]] == [f"# {n}" for n in rig.names]
    summary = json.loads(lines[-1])
    assert summary["after"]["median_px"] < 2.0 < 20 < summary["before"]["median_px"]
    assert set(summary["after"]["per_camera"]) == set(rig.names)
    refined = read_calibration(out)
    assert refined.names == rig.names
    for a, b in zip(refined, rig, strict=True):
        assert np.linalg.norm(a.center - b.center) < 0.02
        assert np.rad2deg(np.linalg.norm(Rotation.from_matrix(a.R @ b.R.T).as_rotvec())) < 0.3
        np.testing.assert_array_equal(a.K, b.K)


def _run(argv, capsys) -> tuple[int, str]:
    rc = main(argv)
    err = capsys.readouterr().err.strip()
    return rc, err


def test_bad_input_exits_2_with_one_line(scene, tmp_path, capsys):
    folder, rig, rough, names = scene
    base = ["--calibration", str(rough), "--out", str(tmp_path / "o.json")]
    dist = ["--known-distance", _distance_arg(rig, "cam0", "cam1")]
    few = tmp_path / "few"
    few.mkdir()
    extra = tmp_path / "extra"
    shutil.copytree(folder, extra)
    shutil.copy(extra / f"{names[0]}.json.gz", extra / "cam9.json.gz")
    missing = tmp_path / "missing"
    shutil.copytree(folder, missing)
    (missing / f"{names[1]}.json.gz").unlink()
    from capture.sources.detection_files import read_detections_json, write_detections_json

    for name in names:  # a single frame: too few people seen by several cameras
        write_detections_json(few / f"{name}.json.gz", name, 10.0, read_detections_json(folder / f"{name}.json.gz")[:1])
    cases = [
        ([*base, "--detections", str(tmp_path / "nowhere"), *dist], "nowhere"),
        ([*base, "--detections", str(extra), *dist], "cam9"),
        ([*base, "--detections", str(missing), *dist], names[1]),
        ([*base, "--detections", str(few), *dist], "people seen by 2 cameras"),
        ([*base, "--detections", str(folder), "--known-distance", "cam0,cam1"], "CAM_A,CAM_B,METRES"),
        ([*base, "--detections", str(folder), "--known-distance", "cam0,camX,2.0"], "camX"),
        ([*base, "--detections", str(folder), "--height", "-1"], "positive"),
        ([*base, "--detections", str(folder)], "--known-distance"),
        (["--calibration", str(tmp_path / "none.json"), "--out", "o.json", "--detections", str(folder), *dist], "none"),
    ]
    for argv, needle in cases:
        rc, err = _run(argv, capsys)
        assert rc == 2, argv
        assert len(err.splitlines()) == 1 and err.startswith("mvcap calibrate people: error:"), err
        assert needle in err, (needle, err)
        assert "Traceback" not in err


def test_unwritable_output_exits_1(scene, tmp_path, capsys):
    folder, rig, rough, _ = scene
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    argv = ["--calibration", str(rough), "--detections", str(folder), "--out", str(blocker / "calib.json")]
    rc, err = _run([*argv, "--height", "1.7"], capsys)
    assert rc == 1
    assert err.startswith("mvcap calibrate people: error:") and len(err.splitlines()) == 1
