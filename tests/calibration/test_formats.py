"""Writers of calibration/formats/ and calibration.io.write_calibration: round trips, refusals, atomic writes."""

from __future__ import annotations

import json
import os
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import cv2
import numpy as np
import pytest
from synth import look_at_camera

from calibration.camera import Camera, CameraRig
from calibration.io import (
    CalibrationFormat,
    CalibrationWriteError,
    detect_format,
    read_4da_json,
    read_calibration,
    read_panoptic_json,
    read_qca,
    read_tum_projections,
    read_voxelpose_json,
    write_4da_json,
    write_calibration,
    write_json,
    write_qca,
    write_toml,
    write_tum_projections,
    write_voxelpose_json,
)
from core.errors import CalibrationError, OutputError

QCA = "pose2sim_demo_multiperson/calibration/Calib.qca.txt"
UNSORTED = ("cam_10", "cam_2", "00_03")  # neither lexicographic nor natural order
NATURAL = ("00_03", "cam_2", "cam_10")  # natural order, not lexicographic ("cam_10" < "cam_2")


# ------------------------------------------------------------------------------------- helpers
def _need(shared_data: Path, rel: str) -> Path:
    path = shared_data / rel
    if not path.exists():
        pytest.skip(f"real data file {path} is absent")
    return path


def _raises(func, *args, needles: tuple[str, ...], **kwargs) -> str:
    """Call ``func``, expect a one-line CalibrationError containing every needle; return the message."""
    with pytest.raises(CalibrationError) as info:
        func(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, f"{needle!r} not in {message!r}"
    return message


def _rig(rng, names=UNSORTED, *, dist: bool = True, k3: bool = True, skew: bool = False) -> CameraRig:
    """Cameras with random poses (one rotated by pi - 1e-5 rad), focal lengths, centres and sizes."""
    cams = []
    for i, name in enumerate(names):
        center = rng.uniform(-5, 5, 3) + np.array([0.0, 0.0, 6.0])
        d = rng.normal(0, 0.05, 5) if dist else np.zeros(5)
        d[4] = d[4] if k3 else 0.0
        cam = look_at_camera(name, center, rng.uniform(-1, 1, 3), f=900 + 100 * rng.random(), dist=d)
        K = cam.K.copy()
        K[0, 2] += rng.uniform(-20, 20)
        K[1, 1] *= 1.001
        K[0, 1] = 0.25 if skew else 0.0
        R = cam.R
        if i == 1:  # near pi, where cv2.Rodrigues (matrix -> vector) errs by 2e-5
            axis = rng.normal(size=3)
            R = cv2.Rodrigues(axis / np.linalg.norm(axis) * (np.pi - 1e-5))[0]
        cams.append(Camera(name, K, d, R, -R @ center, (1280 + 2 * i, 720 + i)))
    return CameraRig(tuple(cams))


def _assert_rigs_close(a: CameraRig, b: CameraRig, rtol: float = 1e-9, dist: bool = True) -> None:
    assert a.names == b.names
    for ca, cb in zip(a, b, strict=True):
        assert ca.size == cb.size, ca.name
        fields = ("K", "dist", "R", "t") if dist else ("K", "R", "t")
        for field in fields:
            x, y = getattr(ca, field), getattr(cb, field)
            np.testing.assert_allclose(y, x, rtol=rtol, atol=rtol * 1e-3, err_msg=f"{ca.name} {field}")


def _points_in_view(cam: Camera, rng, n: int = 200) -> np.ndarray:
    """(n, 3) world points in front of ``cam``, 0.5-10 m deep, whose pinhole pixels lie in its image."""
    uv = rng.uniform([0, 0], cam.size, (n, 2))
    rays = np.linalg.solve(cam.K, np.vstack([uv.T, np.ones(n)])).T
    return (rng.uniform(0.5, 10, (n, 1)) * rays - cam.t) @ cam.R


def _max_projection_diff(a: CameraRig, b: CameraRig, rng) -> float:
    worst = 0.0
    for cam in a:
        X = _points_in_view(cam, rng)
        worst = max(worst, float(np.abs(cam.project(X) - b[cam.name].project(X)).max()))
    return worst


# Per format: file name, feasible synthetic rig (skew, k3, distortion), names whose order survives.
CASES = {
    "mvcap": ("rig.json", {"skew": True}, UNSORTED),
    "qualisys": ("rig.qca.txt", {"k3": False}, NATURAL),
    "toml": ("rig.toml", {"skew": True}, UNSORTED),
    "voxelpose": ("rig.json", {}, UNSORTED),
    "panoptic": ("rig.json", {"skew": True}, UNSORTED),
    "4da": ("rig.json", {"skew": True, "dist": False}, UNSORTED),
    "tum": ("rig_tum", {"skew": True, "dist": False}, NATURAL),
}


# ------------------------------------------------------------------------------ synthetic round trips
@pytest.mark.parametrize("fmt", list(CASES))
def test_round_trip_every_format(fmt, tmp_path, rng):
    """write -> read_calibration reproduces names, order, size, K, dist, R, t to 1e-9 relative."""
    name, options, names = CASES[fmt]
    rig = _rig(rng, names, **options)
    written = write_calibration(rig, tmp_path / name, fmt)
    assert detect_format(tmp_path / name) is CalibrationFormat(fmt)
    sizes = {cam.name: cam.size for cam in rig}  # needed by VoxelPose and TUM only
    back = read_calibration(tmp_path / name, sizes=sizes)
    _assert_rigs_close(rig, back)
    assert _max_projection_diff(rig, back, rng) < 1e-6
    leftovers = [p.name for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]
    assert not leftovers
    assert all(p.is_file() for p in written)


def test_tum_paths_keep_any_order(tmp_path, rng):
    """The folder is listed in natural order; the returned paths keep the rig's own order."""
    rig = _rig(rng, UNSORTED, dist=False)
    rig = CameraRig(tuple(Camera(c.name, c.K, c.dist, c.R, c.t, (1280, 720)) for c in rig))  # TUM: one size
    paths = write_tum_projections(rig, tmp_path / "tum")
    assert [p.name for p in paths] == [f"{n}.txt" for n in UNSORTED]
    _assert_rigs_close(rig, read_tum_projections(paths, (1280, 720)))
    assert read_tum_projections(paths, (64, 48)).names == UNSORTED
    assert read_calibration(tmp_path / "tum", size=(64, 48)).names == NATURAL


def test_qca_reads_back_in_natural_order(tmp_path, rng, caplog):
    rig = _rig(rng, UNSORTED, k3=False)
    write_qca(rig, tmp_path / "c.qca.txt")
    assert "natural name order" in caplog.text
    back = read_qca(tmp_path / "c.qca.txt")
    assert back.names == NATURAL
    _assert_rigs_close(rig, back.subset(list(UNSORTED)))


def test_toml_layout_is_pose2sims(tmp_path, rng):
    """Tables named after the cameras, Pose2Sim's keys, 4 distortions when k3 = 0, a [metadata] table."""
    rig = _rig(rng, ("cam_1", 'odd "name"\\x'), k3=False)
    cams = list(rig)
    cams[0] = Camera("cam_1", cams[0].K, [0.1, -0.01, 0.001, 0.002, 0.003], cams[0].R, cams[0].t, cams[0].size)
    rig = CameraRig(tuple(cams))
    write_toml(rig, tmp_path / "c.toml")
    doc = tomllib.loads((tmp_path / "c.toml").read_text())
    assert list(doc) == ["cam_1", 'odd "name"\\x', "metadata"]
    assert doc["metadata"] == {"adjusted": False, "error": 0.0}
    for cam in rig:
        table = doc[cam.name]
        assert set(table) == {"name", "size", "matrix", "distortions", "rotation", "translation", "fisheye"}
        assert table["name"] == cam.name and table["fisheye"] is False and table["size"] == list(cam.size)
        np.testing.assert_allclose(cv2.Rodrigues(np.array(table["rotation"]))[0], cam.R, atol=1e-14)
    assert len(doc["cam_1"]["distortions"]) == 5 and len(doc['odd "name"\\x']["distortions"]) == 4
    _assert_rigs_close(rig, read_calibration(tmp_path / "c.toml"))


def test_toml_rotation_near_pi_is_exact(tmp_path):
    """Regression: cv2.Rodrigues(matrix) errs by ~2e-5 for angles within 1e-5 rad of pi (0.02 px at f=1000)."""
    R = cv2.Rodrigues(np.array([0.0, np.pi - 1e-5, 0.0]))[0]
    cam = Camera("c", np.diag([1000.0, 1000.0, 1.0]), np.zeros(5), R, np.array([0.0, 0.0, 3.0]), (640, 480))
    write_toml(CameraRig((cam,)), tmp_path / "c.toml")
    np.testing.assert_allclose(read_calibration(tmp_path / "c.toml")[0].R, R, rtol=0, atol=1e-14)


# ------------------------------------------------------------------------------------- real files
REAL = {
    "shelf": ("shelf/calibration_shelf.json", "voxelpose", (1032, 776)),
    "campus": ("campus/calibration_campus.json", "voxelpose", (360, 288)),
    "panoptic": ("panoptic/160906_band1/calibration_160906_band1.json", "panoptic", None),
    "4da": ("shelf/4d_association/calibration.json", "4da", None),
    "qca": (QCA, "qualisys", None),
    "tum": ("shelf/original/Calibration", "tum", (1032, 776)),
}


@pytest.mark.parametrize("case", list(REAL))
def test_real_files_round_trip(case, shared_data, tmp_path, rng):
    """Each real calibration, written in its own format and in mvcap JSON, projects as the original to 1e-6 px."""
    rel, fmt, size = REAL[case]
    names = ["00_03", "00_16", "00_30"] if case == "panoptic" else None
    rig = read_calibration(_need(shared_data, rel), size, names=names)
    own = tmp_path / ("own" if fmt == "tum" else "own" + Path(rel).name[Path(rel).name.index(".") :])
    for path, out_fmt in ((own, fmt), (tmp_path / "ours.json", "mvcap")):
        write_calibration(rig, path, out_fmt)
        back = read_calibration(path, size)
        assert back.names == rig.names
        assert [c.size for c in back] == [c.size for c in rig]
        assert _max_projection_diff(rig, back, rng) < 1e-6, (case, out_fmt)
        if out_fmt != "tum":  # P = K [R | t] is kept; for an R orthonormal to 6 digits, K and R are not
            _assert_rigs_close(rig, back)


def test_real_qca_writer_inverts_the_reader(shared_data, tmp_path):
    """Written attributes equal the demo file's for every field read_qca reads (centre to 1e-12 relative)."""
    src = _need(shared_data, QCA)
    write_qca(read_qca(src), tmp_path / "out.qca.txt")
    fields = {
        "fov_video": ("left", "top", "right", "bottom"),
        "intrinsic": ("focalLengthU", "focalLengthV", "centerPointU", "centerPointV", "radialDistortion1",
                      "radialDistortion2", "tangentalDistortion1", "tangentalDistortion2"),
        "transform": ("x", "y", "z", "r11", "r12", "r13", "r21", "r22", "r23", "r31", "r32", "r33"),
    }  # fmt: skip
    ours = {c.get("serial"): c for c in ET.parse(tmp_path / "out.qca.txt").getroot().iter("camera")}
    theirs = list(ET.parse(src).getroot().iter("camera"))
    assert [c.get("serial") for c in theirs] == list(ours)
    for cam in theirs:
        for child, keys in fields.items():
            a = [float(cam.find(child).get(k)) for k in keys]
            b = [float(ours[cam.get("serial")].find(child).get(k)) for k in keys]
            np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12, err_msg=f"{cam.get('serial')} {child}")


def test_real_toml_from_shelf_warns_and_stays_close(shared_data, tmp_path, rng, caplog):
    """Shelf's R is orthonormal to 6 digits: a rotation vector cannot hold it; the change is warned and tiny."""
    rig = read_voxelpose_json(_need(shared_data, "shelf/calibration_shelf.json"), size=(1032, 776))
    write_toml(rig, tmp_path / "shelf.toml")
    assert "not orthonormal" in caplog.text
    assert 1e-6 < _max_projection_diff(rig, read_calibration(tmp_path / "shelf.toml"), rng) < 1e-2  # 4.7e-3 measured


# ------------------------------------------------------------------------------------- refusals
@pytest.mark.parametrize(("fmt", "name"), [("4da", "rig.json"), ("tum", "tum")])
def test_pinhole_formats_refuse_distortion(fmt, name, tmp_path, rng):
    rig = _rig(rng)
    target = tmp_path / name
    _raises(write_calibration, rig, target, fmt, needles=(name, "cannot hold lens distortion", "cam_10", "drop"))
    assert not target.exists()
    write_calibration(rig, target, fmt, drop_distortion=True)
    back = read_calibration(target, sizes={c.name: c.size for c in rig})
    assert not any(c.has_distortion for c in back)
    _assert_rigs_close(rig, back.subset(list(rig.names)), dist=False)


def test_formats_refuse_what_they_cannot_hold(tmp_path, rng):
    skewed = _rig(rng, k3=False, skew=True)
    _raises(write_qca, skewed, tmp_path / "a.qca.txt", needles=("a.qca.txt", "skewed K", "'cam_10'"))
    _raises(write_voxelpose_json, skewed, tmp_path / "v.json", needles=("v.json", "VoxelPose", "skewed K"))
    _raises(write_qca, _rig(rng), tmp_path / "a.qca.txt", needles=("a.qca.txt", "k3", "'cam_10'"))
    cam = _rig(rng)[0]
    meta = CameraRig((Camera("metadata", cam.K, cam.dist, cam.R, cam.t, cam.size),))
    _raises(write_toml, meta, tmp_path / "m.toml", needles=("m.toml", "'metadata'"))
    bad_name = CameraRig((Camera("../up", cam.K, np.zeros(5), cam.R, cam.t, cam.size),))
    _raises(write_tum_projections, bad_name, tmp_path / "tum", needles=("tum", "'../up'", "file"))
    (tmp_path / "tum2").mkdir()
    (tmp_path / "tum2" / "P0.txt").write_text("1 2 3")
    _raises(write_tum_projections, _rig(rng, dist=False), tmp_path / "tum2", needles=("tum2", "P0.txt"))
    assert not list(tmp_path.glob("*.*")), "a refused write left a file"


def test_write_calibration_dispatch_and_errors(tmp_path, rng):
    rig = _rig(rng, k3=False)
    for name, fmt in (("a.qca.txt", "qualisys"), ("b.toml", "toml"), ("c.json", "mvcap")):
        write_calibration(rig, tmp_path / name)
        assert detect_format(tmp_path / name) is CalibrationFormat(fmt)
    for alias, fmt in (("QCA", "qualisys"), ("anipose", "toml"), ("4d-association", "4da"), ("json", "mvcap")):
        path = tmp_path / {"qualisys": "x.qca.txt", "toml": "x.toml"}.get(fmt, "x.json")
        write_calibration(rig, path, alias, drop_distortion=True)
        assert detect_format(path) is CalibrationFormat(fmt)
    (tmp_path / "folder").mkdir()
    write_calibration(rig, tmp_path / "folder", drop_distortion=True)  # an existing folder is TUM
    assert detect_format(tmp_path / "folder") is CalibrationFormat.TUM
    valid = ("mvcap", "qualisys", "toml", "voxelpose", "panoptic", "4da", "tum")
    _raises(write_calibration, rig, tmp_path / "r.yaml", needles=("r.yaml", *valid))
    _raises(write_calibration, rig, tmp_path / "r.json", "yaml", needles=("yaml", *valid))
    _raises(write_calibration, rig, tmp_path / "r.toml", "voxelpose", needles=("r.toml", ".json"))
    _raises(write_calibration, rig, tmp_path / "r.json", "qualisys", needles=("r.json", ".qca.txt"))
    _raises(write_calibration, rig, tmp_path / "r.json", "tum", needles=("r.json", "folder"))
    assert not list(tmp_path.glob("r.*"))


def test_voxelpose_and_4da_files_match_the_dataset_layout(tmp_path, rng):
    rig = _rig(rng, dist=False)
    write_voxelpose_json(rig, tmp_path / "v.json")
    write_4da_json(rig, tmp_path / "f.json")
    v, f = json.loads((tmp_path / "v.json").read_text()), json.loads((tmp_path / "f.json").read_text())
    assert list(v) == list(f) == list(UNSORTED)
    cam = rig[0]
    np.testing.assert_allclose(np.ravel(v["cam_10"]["T"]), 1000 * cam.center, rtol=1e-12)
    assert np.shape(v["cam_10"]["k"]) == (3, 1) and np.shape(v["cam_10"]["p"]) == (2, 1)
    assert f["cam_10"]["imgSize"] == list(cam.size) and len(f["cam_10"]["RT"]) == 12
    assert read_voxelpose_json(tmp_path / "v.json", size=(64, 48)).names == UNSORTED
    _assert_rigs_close(rig, read_4da_json(tmp_path / "f.json"))


def test_panoptic_writes_centimetres_and_hd(tmp_path, rng):
    rig = _rig(rng)
    write_calibration(rig, tmp_path / "p.json", "panoptic")
    doc = json.loads((tmp_path / "p.json").read_text())
    entry = doc["cameras"][2]
    assert (entry["name"], entry["type"], entry["panel"], entry["node"]) == ("00_03", "hd", 0, 3)
    np.testing.assert_allclose(np.ravel(entry["t"]), 100 * rig[2].t, rtol=1e-15)
    assert "panel" not in doc["cameras"][0]
    _assert_rigs_close(rig, read_panoptic_json(tmp_path / "p.json"))


# ---------------------------------------------------------------------------------- atomic writes
def test_atomic_write_leaves_only_the_target_with_umask_mode(tmp_path, rng):
    old = os.umask(0o022)
    try:
        write_json(_rig(rng), tmp_path / "rig.json")
    finally:
        os.umask(old)
    assert [p.name for p in tmp_path.iterdir()] == ["rig.json"]
    assert (tmp_path / "rig.json").stat().st_mode & 0o777 == 0o644  # not mkstemp's 0600


def test_read_only_folder(read_only_dir, rng):
    for fmt, name in (("mvcap", "a.json"), ("toml", "a.toml"), ("4da", "a.json"), ("tum", "tum")):
        with pytest.raises(CalibrationWriteError) as info:
            write_calibration(_rig(rng, dist=False), read_only_dir / name, fmt)
        assert isinstance(info.value, OutputError) and isinstance(info.value, CalibrationError)
        message = str(info.value)
        assert "\n" not in message and message.startswith(str(read_only_dir / name)) and "cannot write" in message
        assert isinstance(info.value.__cause__, OSError)
    assert list(read_only_dir.iterdir()) == []


def test_full_disk_keeps_the_old_file(tmpfs, rng):
    """ENOSPC half-way: the target keeps its old bytes and the temporary file is removed."""
    folder = tmpfs(64)
    target = folder / "rig.json"
    write_json(_rig(rng, ("a",)), target)
    before = target.read_bytes()
    c = _rig(rng, ("x",))[0]
    big = CameraRig(tuple(Camera(f"c{i}", c.K, c.dist, c.R, c.t, c.size) for i in range(400)))  # ~300 kB
    with pytest.raises(OutputError, match="cannot write"):
        write_json(big, target)
    assert target.read_bytes() == before
    assert [p.name for p in folder.iterdir()] == ["rig.json"]
