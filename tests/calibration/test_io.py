"""Tests for calibration/io.py on synthetic files and on the real datasets in ../shared/data."""

from __future__ import annotations

import doctest
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from synth import look_at_camera

import calibration.io
from calibration.camera import Camera, CameraRig
from calibration.io import (
    read_4da_json,
    read_calibration,
    read_json,
    read_panoptic_json,
    read_qca,
    read_toml,
    read_tum_projections,
    read_voxelpose_json,
    write_json,
)
from core.errors import CalibrationError

QCA = "pose2sim_demo_multiperson/calibration/Calib.qca.txt"
SHELF_SIZE = (1032, 776)
CAMPUS_SIZE = (360, 288)

# Pose2Sim 0.10.49 output for Calib.qca.txt (calib_qca_fun + toml_write, verbatim): the reference
# that read_qca must reproduce.
POSE2SIM_TOML = """\
[cam01]
name = "cam01"
size = [ 1088.0, 1920.0]
matrix = [ [ 1681.244873046875, 0.0, 532.97369384375], [ 0.0, 1681.075439453125, 948.137390140625], [ 0.0, 0.0, 1.0]]
distortions = [ -0.000721609375, 0.002187234375, 9.5e-06, 1.078125e-05]
rotation = [ 1.6882754799999993, 1.0483220499999997, -0.41955852000000016]
translation = [ 0.3211048899999996, 0.9563320600000009, 2.8907130499999996]
fisheye = false

[cam02]
name = "cam02"
size = [ 1088.0, 1920.0]
matrix = [ [ 1673.729614265625, 0.0, 534.494567875], [ 0.0, 1673.79724121875, 963.225891109375], [ 0.0, 0.0, 1.0]]
distortions = [ -0.000747609375, 0.00213728125, 1.51875e-05, 4.546875e-06]
rotation = [ 1.34975875, 1.5963809099999993, -1.1983285799999999]
translation = [ -0.11152829000000014, 0.7766184800000001, 3.0675519599999994]
fisheye = false

[cam03]
name = "cam03"
size = [ 1088.0, 1920.0]
matrix = [ [ 1681.598388671875, 0.0, 513.20837403125], [ 0.0, 1681.509887703125, 955.005126953125], [ 0.0, 0.0, 1.0]]
distortions = [ -0.000729765625, 0.00215034375, -8.46875e-06, -8.078125e-06]
rotation = [ 0.8109654899999995, -2.1972129299999996, 1.3760277799999996]
translation = [ -0.7934803899999995, 0.32283594000000126, 4.353514870000001]
fisheye = false

[cam04]
name = "cam04"
size = [ 1088.0, 1920.0]
matrix = [ [ 1675.234985359375, 0.0, 540.106201171875], [ 0.0, 1675.204223640625, 964.0302734375], [ 0.0, 0.0, 1.0]]
distortions = [ -0.000744265625, 0.002104171875, 4.328125e-06, 3.109375e-06]
rotation = [ 1.4045571699999995, -1.3887412699999993, 0.42535743000000026]
translation = [ 0.5030217200000007, 0.04894934000000107, 4.406564460000002]
fisheye = false

[metadata]
adjusted = false
error = 0.0
"""  # noqa: E501


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


def _assert_rigs_equal(a: CameraRig, b: CameraRig, atol: float = 0.0) -> None:
    assert a.names == b.names
    for ca, cb in zip(a, b, strict=True):
        assert ca.size == cb.size
        for field in ("K", "dist", "R", "t"):
            np.testing.assert_allclose(getattr(ca, field), getattr(cb, field), rtol=0, atol=atol, err_msg=field)


def _synthetic_rig(rng: np.random.Generator) -> CameraRig:
    cams = []
    for i in range(3):
        center = rng.uniform(-5, 5, 3) + np.array([0.0, 0.0, 6.0])
        dist = rng.normal(0, 0.05, 5)
        cam = look_at_camera(f"cam_{i}", center, rng.uniform(-1, 1, 3), f=900 + 100 * rng.random(), dist=dist)
        K = cam.K.copy()
        K[0, 1] = 0.25  # a skewed K survives too
        cams.append(Camera(cam.name, K, cam.dist, cam.R, cam.t, (1280 + i, 720 + i)))
    return CameraRig(tuple(cams))


def _qca_xml(serials: list[str], models: list[str] | None = None) -> str:
    """A minimal Qualisys calibration with identity-ish cameras."""
    models = models or ["none"] * len(serials)
    cams = "".join(
        f'<camera serial="{s}" model="{m}">'
        '<fov_video left="0" top="0" right="639" bottom="479"/>'
        '<transform x="0" y="0" z="3000" r11="1" r12="0" r13="0"'
        ' r21="0" r22="1" r23="0" r31="0" r32="0" r33="1"/>'
        '<intrinsic focalLengthU="64000" focalLengthV="64000" centerPointU="20480" centerPointV="15360"'
        ' radialDistortion1="0" radialDistortion2="0" tangentalDistortion1="0" tangentalDistortion2="0"/>'
        "</camera>"
        for s, m in zip(serials, models, strict=True)
    )
    return f"<calibration><cameras>{cams}</cameras></calibration>"


def _shelf_gt(shared_data: Path) -> tuple[np.ndarray, np.ndarray]:
    """Shelf actorsGT.mat: (N, 3) metres and (5, N, 2) px for every present (actor, frame) pose."""
    scipy_io = pytest.importorskip("scipy.io")
    mat = scipy_io.loadmat(_need(shared_data, "shelf/original/actorsGT.mat"))
    points_3d, points_2d = [], []
    for actor in range(mat["actor3D"].shape[1]):
        frames_3d, frames_2d = mat["actor3D"][0, actor], mat["actor2D"][0, actor]
        for f in range(frames_3d.shape[0]):
            pose = frames_3d[f, 0]
            if pose.shape != (14, 3):  # absent actor: empty (1, 0) cell
                continue
            views = frames_2d[f, 0]  # (1, 5) cell: one 14x2 pose per camera
            points_3d.append(pose)
            points_2d.append(np.stack([views[0, c] for c in range(views.shape[1])]))
    return np.concatenate(points_3d), np.concatenate(points_2d, axis=1)


# ---------------------------------------------------------------------------------------- qca
def test_qca_pose2sim_demo(shared_data):
    rig = read_qca(_need(shared_data, QCA))
    assert rig.names == ("cam01", "cam02", "cam03", "cam04")
    origin = np.zeros((1, 3))
    for cam in rig:
        assert cam.size == (1088, 1920)
        assert 2.0 < np.linalg.norm(cam.center) < 5.0
        assert cam.to_camera(origin)[0, 2] > 0  # the stage is in front of the camera
        u, v = cam.project(origin)[0]
        assert 0 <= u < cam.size[0] and 0 <= v < cam.size[1]
        assert cam.dist[4] == 0.0


def test_qca_matches_pose2sim_reference(shared_data, tmp_path):
    """read_qca reproduces Pose2Sim 0.10.49's own conversion (divide-by-64 distortion included)."""
    toml_path = tmp_path / "Calib_qualisys.toml"
    toml_path.write_text(POSE2SIM_TOML)
    _assert_rigs_equal(read_qca(_need(shared_data, QCA)), read_toml(toml_path), atol=1e-12)


def test_qca_natural_order_and_marker_cameras(tmp_path):
    path = tmp_path / "calib.qca.txt"
    path.write_text(_qca_xml(["cam10", "cam2", "marker1", "Cam1"], ["none", "video", "marker", "none"]))
    rig = read_qca(path)
    assert rig.names == ("Cam1", "cam2", "cam10")
    cam = rig["cam2"]
    np.testing.assert_allclose(cam.K, [[1000, 0, 320], [0, 1000, 240], [0, 0, 1]])
    assert cam.size == (640, 480)
    np.testing.assert_allclose(cam.center, [0, 0, 3])  # pose: camera at z = 3 m
    np.testing.assert_allclose(cam.R, np.diag([1.0, -1.0, -1.0]))  # Qualisys looks along -z
    assert cam.to_camera(np.zeros((1, 3)))[0, 2] == pytest.approx(3.0)


def test_qca_errors(tmp_path):
    path = tmp_path / "broken.qca.txt"
    path.write_text("<calibration><cameras>")
    _raises(read_qca, path, needles=("broken.qca.txt", "XML"))
    path.write_text(_qca_xml(["c1"]).replace('focalLengthU="64000" ', ""))
    _raises(read_qca, path, needles=("broken.qca.txt", "'c1'", "focalLengthU"))
    path.write_text(_qca_xml(["c1"]).replace('<fov_video left="0" top="0" right="639" bottom="479"/>', ""))
    _raises(read_qca, path, needles=("broken.qca.txt", "<fov_video>"))


# --------------------------------------------------------------------------------------- toml
def _write_toml(path: Path, **overrides: str) -> Path:
    fields = {
        "name": '"cam2"',
        "size": "[ 640, 480]",
        "matrix": "[ [ 500.0, 0.0, 320.0], [ 0.0, 500.0, 240.0], [ 0.0, 0.0, 1.0]]",
        "distortions": "[ 0.1, -0.01, 0.0, 0.0, 0.001]",
        "rotation": "[ 0.0, 0.0, 0.0]",
        "translation": "[ 0.0, 0.0, 2.0]",
        "fisheye": "false",
    }
    fields.update(overrides)
    body = "".join(f"{k} = {v}\n" for k, v in fields.items() if v is not None)
    path.write_text(f"[cam2]\n{body}\n[metadata]\nadjusted = false\nerror = 0.0\n")
    return path


def test_toml_reads_five_coefficients_and_skips_metadata(tmp_path):
    rig = read_toml(_write_toml(tmp_path / "calib.toml"))
    assert rig.names == ("cam2",)
    np.testing.assert_array_equal(rig[0].dist, [0.1, -0.01, 0.0, 0.0, 0.001])
    np.testing.assert_array_equal(rig[0].R, np.eye(3))
    np.testing.assert_array_equal(rig[0].t, [0.0, 0.0, 2.0])


def test_toml_rotation_is_rodrigues(tmp_path):
    rvec = np.array([0.3, -0.2, 0.1])
    rig = read_toml(_write_toml(tmp_path / "calib.toml", rotation=str(rvec.tolist())))
    np.testing.assert_allclose(rig[0].R, cv2.Rodrigues(rvec)[0], atol=1e-15)


@pytest.mark.parametrize(
    ("overrides", "needles"),
    [
        ({"matrix": None}, ("camera 'cam2' has no 'matrix'",)),
        ({"distortions": "[0.1, 0.2, 0.3]"}, ("distortions", "4 or 5", "got 3")),
        ({"rotation": "[0.1, 0.2]"}, ("rotation", "must have 3 numbers; got 2")),
        ({"translation": "[0.0, 0.0, nan]"}, ("translation", "finite")),
        ({"fisheye": "true"}, ("fisheye", "not supported")),
        ({"size": "[640]"}, ("size", "2 numbers")),
        ({"matrix": '"eye"'}, ("matrix", "numbers")),
    ],
)
def test_toml_errors(tmp_path, overrides, needles):
    path = _write_toml(tmp_path / "calib.toml", **overrides)
    _raises(read_toml, path, needles=("calib.toml", *needles))


def test_toml_syntax_error(tmp_path):
    path = tmp_path / "calib.toml"
    path.write_text("[cam1\nname = 1\n")
    _raises(read_toml, path, needles=("calib.toml", "TOML"))


# -------------------------------------------------------------------------------------- Shelf
def test_shelf_actor2d_is_for_all_five_cameras(shared_data):
    """actor2D holds one 14x2 pose per camera (5 views); VoxelPose and 4DA calibrations hit it to < 0.1 px."""
    X, uv = _shelf_gt(shared_data)
    assert uv.shape == (5, len(X), 2)
    for reader in (
        lambda: read_voxelpose_json(_need(shared_data, "shelf/calibration_shelf.json"), size=SHELF_SIZE),
        lambda: read_4da_json(_need(shared_data, "shelf/4d_association/calibration.json")),
    ):
        rig = reader()
        assert len(rig) == 5
        for cam_idx, cam in enumerate(rig):
            assert cam.size == SHELF_SIZE
            err = np.linalg.norm(cam.project(X) - uv[cam_idx], axis=1)
            assert err.mean() < 0.05, (cam.name, err.mean())
            assert err.max() < 0.1, (cam.name, err.max())


def test_shelf_tum_projection_matrices(shared_data):
    """actor2D was made with P0..P4 themselves: the decomposed cameras reproduce it exactly."""
    X, uv = _shelf_gt(shared_data)
    files = [_need(shared_data, f"shelf/original/Calibration/P{i}.txt") for i in range(5)]
    rig = read_tum_projections(files, SHELF_SIZE)
    assert rig.names == ("P0", "P1", "P2", "P3", "P4")
    for cam_idx, (cam, path) in enumerate(zip(rig, files, strict=True)):
        assert cam.K[2, 2] == 1.0 and (np.diag(cam.K) > 0).all()
        assert np.linalg.det(cam.R) == pytest.approx(1.0)
        assert (cam.to_camera(X)[:, 2] > 0).all()
        P = np.array([float(v) for v in path.read_text().replace(",", " ").split()]).reshape(3, 4)
        np.testing.assert_allclose(cam.P / cam.P[2, 3], P / P[2, 3], rtol=1e-9, atol=1e-9)
        assert np.linalg.norm(cam.project(X) - uv[cam_idx], axis=1).max() < 1e-3


def test_shelf_formats_agree(shared_data):
    X, _ = _shelf_gt(shared_data)
    voxelpose = read_voxelpose_json(_need(shared_data, "shelf/calibration_shelf.json"), size=SHELF_SIZE)
    fourda = read_4da_json(_need(shared_data, "shelf/4d_association/calibration.json"))
    files = [_need(shared_data, f"shelf/original/Calibration/P{i}.txt") for i in range(5)]
    tum = read_tum_projections(files, SHELF_SIZE)
    for a, b, c in zip(voxelpose, fourda, tum, strict=True):
        assert np.abs(a.project(X) - b.project(X)).max() < 0.1
        assert np.abs(a.project(X) - c.project(X)).max() < 0.1
        np.testing.assert_allclose(a.center, c.center, atol=1e-3)


def test_voxelpose_guesses_size_when_absent(shared_data, caplog):
    rig = read_voxelpose_json(_need(shared_data, "shelf/calibration_shelf.json"))
    assert rig[0].size == (round(2 * rig[0].K[0, 2]), round(2 * rig[0].K[1, 2]))
    assert "guessing" in caplog.text


def test_voxelpose_sequence_list_reads_as_the_keyed_layout(shared_data, tmp_path):
    """Faster-VoxelPose's ``{"customized_sequence": [cam, ...]}`` holds the same camera objects in a list."""
    keyed = json.loads(_need(shared_data, "shelf/calibration_shelf.json").read_text())
    listed = tmp_path / "calibration.json"
    listed.write_text(json.dumps({"customized_sequence": [keyed[k] for k in keyed]}))
    rig = read_calibration(listed, size=SHELF_SIZE)
    assert rig.names == tuple(str(i) for i in range(len(keyed)))
    _assert_rigs_equal(rig, read_voxelpose_json(shared_data / "shelf/calibration_shelf.json", SHELF_SIZE))
    assert read_calibration(listed, size=SHELF_SIZE, names=["3", "1"]).names == ("3", "1")
    _raises(read_calibration, listed, needles=("calibration.json", "no image size", "image_size"))


def test_pizza_calibration_puts_the_labelled_heads_at_head_height(shared_data):
    """The real Faster-VoxelPose file of panoptic/pizza_5views (world z up, millimetres): the heads
    labelled by eye in its frames triangulate (DLT) to standing head heights near the world origin."""
    from capture.benchmarks.pizza import HEADS, IMAGE_MAP
    from capture.sources.image_map import to_calibration_px

    rig = read_calibration(_need(shared_data, "panoptic/pizza_5views/calibration.json"), size=(1920, 1080))
    assert rig.names == ("0", "1", "2", "3", "4")
    P = rig.projections()
    for name, heads in HEADS.items():
        views = [i for i, h in enumerate(heads) if h is not None]
        if len(views) < 4:
            continue
        uv = to_calibration_px(np.array([heads[i] for i in views], dtype=float), IMAGE_MAP)
        rows = [[u * P[i, 2] - P[i, 0], v * P[i, 2] - P[i, 1]] for (u, v), i in zip(uv, views, strict=True)]
        A = np.concatenate(rows)
        X = np.linalg.svd(A)[2][-1]
        x, y, z = X[:3] / X[3]
        assert 1.4 < z < 1.8 and np.hypot(x, y) < 3.0, (name, x, y, z)


# ------------------------------------------------------------------------------------- Campus
def test_campus_annotations(shared_data):
    """annotation_2d vs annotation_3d (cm): cameras 0-1 are hand labels (~1 px), camera 2 is a projection."""
    rig = read_voxelpose_json(_need(shared_data, "campus/calibration_campus.json"), size=CAMPUS_SIZE)
    tum = read_tum_projections(
        [_need(shared_data, f"campus/original/Calibration/P{i}.txt") for i in range(3)], CAMPUS_SIZE
    )
    frames_3d = json.loads(_need(shared_data, "campus/crossview/annotation_3d.json").read_text())
    frames_2d = json.loads(_need(shared_data, "campus/crossview/annotation_2d.json").read_text())["frames"]
    errors: list[list[np.ndarray]] = [[], [], []]
    for frame in frames_3d:
        for cam_idx in range(3):
            labels = frames_2d[f"Camera{cam_idx}/{frame['timestamp']:08.3f}.jpg"]["poses"]
            by_id = {p["id"]: np.array(p["points_2d"]) for p in labels}
            for pose in frame["poses"]:
                if pose["id"] in by_id:
                    X = np.array(pose["points_3d"]) / 100.0
                    errors[cam_idx].append(np.linalg.norm(rig[cam_idx].project(X) - by_id[pose["id"]], axis=1))
                    assert np.abs(rig[cam_idx].project(X) - tum[cam_idx].project(X)).max() < 0.05
    err = [np.concatenate(e) for e in errors]
    assert all(len(e) > 10_000 for e in err)
    for e in err[:2]:  # integer hand labels vs triangulated 3D
        assert np.median(e) < 1.0 and e.mean() < 1.5
    assert err[2].max() < 0.01


# ----------------------------------------------------------------------------------- Panoptic
def test_panoptic_hd_cameras(shared_data):
    path = _need(shared_data, "panoptic/160906_band1/calibration_160906_band1.json")
    raw = {c["name"]: c for c in json.loads(path.read_text())["cameras"]}
    rig = read_panoptic_json(path)
    assert len(rig) == 31
    assert rig.names == tuple(f"00_{i:02d}" for i in range(31))
    for cam in rig:
        r = raw[cam.name]
        assert cam.size == (1920, 1080)
        np.testing.assert_array_equal(cam.K, r["K"])
        np.testing.assert_array_equal(cam.dist, r["distCoef"])
        np.testing.assert_array_equal(cam.R, r["R"])
        np.testing.assert_allclose(cam.t, np.array(r["t"]).ravel() / 100.0, rtol=1e-15)


def test_panoptic_bodies_project_into_images(shared_data):
    seq = shared_data / "panoptic" / "160906_band1"
    rig = read_panoptic_json(_need(shared_data, "panoptic/160906_band1/calibration_160906_band1.json"))
    bodies = sorted((seq / "hdPose3d_stage1_coco19").glob("body3DScene_*.json"))
    if not bodies:
        pytest.skip(f"no Panoptic bodies under {seq}")
    X = []
    for path in bodies:
        for body in json.loads(path.read_text())["bodies"]:
            joints = np.array(body["joints19"]).reshape(-1, 4)
            X.append(joints[joints[:, 3] > 0.1, :3] / 100.0)  # cm -> m, visible joints only
    X = np.concatenate(X)
    inside = []
    for cam in rig:
        uv = cam.project(X)
        assert (cam.to_camera(X)[:, 2] > 0).all()  # the dome surrounds the people
        inside.append(np.mean((uv >= 0).all(axis=1) & (uv[:, 0] < 1920) & (uv[:, 1] < 1080)))
    assert min(inside) > 0.5
    assert np.median(inside) > 0.8


def test_panoptic_selection(shared_data):
    path = _need(shared_data, "panoptic/160906_band1/calibration_160906_band1.json")
    assert read_panoptic_json(path, names=["00_06", "00_03"]).names == ("00_06", "00_03")
    assert len(read_panoptic_json(path, kind=None)) == 520
    assert read_panoptic_json(path, kind="vga")[0].size == (640, 480)
    _raises(read_panoptic_json, path, names=["00_99"], needles=(path.name, "'00_99'", "'hd'"))


# ------------------------------------------------------------------------------ own JSON format
def test_json_round_trip_is_exact(tmp_path, rng):
    rig = _synthetic_rig(rng)
    path = tmp_path / "rig.json"
    write_json(rig, path, world_frame="right-handed, z up, metres; origin at the stage centre")
    _assert_rigs_equal(read_json(path), rig)
    doc = json.loads(path.read_text())
    assert doc["format"] == "mvcap-calibration" and doc["version"] == 1
    assert doc["world_frame"].startswith("right-handed, z up, metres")
    assert [c["name"] for c in doc["cameras"]] == ["cam_0", "cam_1", "cam_2"]
    assert not list(tmp_path.glob("*.tmp"))


def test_json_round_trip_qca(shared_data, tmp_path):
    rig = read_qca(_need(shared_data, QCA))
    write_json(rig, tmp_path / "qca.json")
    _assert_rigs_equal(read_json(tmp_path / "qca.json"), rig)


def test_json_errors(tmp_path, rng):
    path = tmp_path / "rig.json"
    _raises(read_json, tmp_path / "missing.json", needles=("missing.json", "cannot read"))
    path.write_text('{"format": "mvcap-calibration", ')
    _raises(read_json, path, needles=("rig.json", "not valid JSON", "line 1"))
    write_json(_synthetic_rig(rng), path)
    doc = json.loads(path.read_text())
    del doc["cameras"][1]["K"]
    path.write_text(json.dumps(doc))
    _raises(read_json, path, needles=("rig.json", "camera 'cam_1' has no 'K'"))
    doc["cameras"][1]["K"] = [[1.0, 0.0], [0.0, 1.0]]
    path.write_text(json.dumps(doc))
    _raises(read_json, path, needles=("rig.json", "K must have 9 numbers; got 4"))
    doc["cameras"][1]["K"] = doc["cameras"][0]["K"]
    doc["cameras"][1]["R"] = (2 * np.eye(3)).tolist()
    path.write_text(json.dumps(doc))
    _raises(read_json, path, needles=("rig.json", "'cam_1'", "rotation"))
    doc["cameras"][1]["name"] = "cam_0"
    doc["cameras"][1]["R"] = doc["cameras"][0]["R"]
    path.write_text(json.dumps(doc))
    _raises(read_json, path, needles=("rig.json", "unique"))
    for key, value, needle in (
        ("version", 2, "unsupported version 2"),
        ("format", "other", "format must be"),
    ):
        path.write_text(json.dumps({**doc, key: value}))
        _raises(read_json, path, needles=("rig.json", needle))
    path.write_text("[1, 2]")
    _raises(read_json, path, needles=("rig.json", "JSON object"))
    _raises(write_json, _synthetic_rig(rng), tmp_path / "no" / "dir.json", needles=("dir.json", "cannot write"))


# ----------------------------------------------------------------------------------- dispatch
def test_read_calibration_dispatch(shared_data, tmp_path, rng):
    rig = _synthetic_rig(rng)
    write_json(rig, tmp_path / "ours.json")
    _assert_rigs_equal(read_calibration(tmp_path / "ours.json"), rig)
    toml_path = tmp_path / "Calib.toml"
    toml_path.write_text(POSE2SIM_TOML)
    assert read_calibration(toml_path).names == ("cam01", "cam02", "cam03", "cam04")
    cases = {
        QCA: ("cam01", "cam02", "cam03", "cam04"),
        "shelf/calibration_shelf.json": ("0", "1", "2", "3", "4"),
        "shelf/4d_association/calibration.json": ("0", "1", "2", "3", "4"),
        "campus/calibration_campus.json": ("0", "1", "2"),
        "panoptic/160906_band1/calibration_160906_band1.json": tuple(f"00_{i:02d}" for i in range(31)),
    }
    for rel, names in cases.items():
        assert read_calibration(_need(shared_data, rel), size=(10, 10)).names == names
    shelf = read_calibration(shared_data / "shelf/calibration_shelf.json", size=SHELF_SIZE)
    _assert_rigs_equal(shelf, read_voxelpose_json(shared_data / "shelf/calibration_shelf.json", SHELF_SIZE))


def test_read_calibration_unknown(tmp_path):
    path = tmp_path / "calib.yaml"
    path.write_text("a: 1\n")
    _raises(read_calibration, path, needles=("calib.yaml", "supported formats", ".qca.txt", ".toml"))
    path = tmp_path / "other.json"
    path.write_text('{"cams": {"a": 1}}')
    _raises(read_calibration, path, needles=("other.json", "unrecognised", "Panoptic"))
    _raises(read_calibration, tmp_path / "nope.toml", needles=("nope.toml", "cannot read"))


def test_doctests():
    result = doctest.testmod(calibration.io)
    assert result.attempted > 0
    assert result.failed == 0
