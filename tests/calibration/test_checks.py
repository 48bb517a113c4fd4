"""Rig sanity checks (cameras too close) and image sizes in read_calibration (never guessed)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from synth import look_at_camera

from calibration import check_rig, load_rig
from calibration.camera import Camera, CameraRig
from calibration.io import read_calibration, read_voxelpose_json, write_json
from core.errors import CalibrationError

TARGET = np.array([0.0, 0.0, 1.0])


def _rig(centers: dict[str, tuple[float, float, float]], size: tuple[int, int] = (640, 480)) -> CameraRig:
    return CameraRig(tuple(look_at_camera(n, np.array(c, float), TARGET, size=size) for n, c in centers.items()))


# ---------------------------------------------------------------------------------- check_rig
def test_two_cameras_5_mm_apart_are_rejected_naming_both():
    """Regression: a calibration with two cameras pasted at one position was accepted and one
    person was lost in every frame."""
    rig = _rig({"cam01": (4.0, 0.0, 1.5), "cam02": (0.0, 4.0, 1.5), "cam03": (4.0, 0.005, 1.5)})
    with pytest.raises(CalibrationError) as info:
        check_rig(rig, "calib/rig.json")
    msg = str(info.value)
    assert msg.startswith("calib/rig.json: ")
    assert "'cam01'" in msg and "'cam03'" in msg and "'cam02'" not in msg
    assert "5.0 mm" in msg and "\n" not in msg


def test_the_closest_pair_is_named_and_the_others_counted():
    rig = _rig({"a": (4.0, 0.0, 1.5), "b": (4.0, 0.008, 1.5), "c": (0.0, 4.0, 1.5), "d": (0.002, 4.0, 1.5)})
    with pytest.raises(CalibrationError, match=r"'c' and 'd' are 2\.0 mm apart.*1 more pair"):
        check_rig(rig, "r.json")


def test_a_normal_rig_passes(rig):
    assert check_rig(rig, "ring.json") is None  # the conftest ring: 4 cameras 5.7 m apart


def test_centres_not_translations_are_compared():
    """Same t but different R: centres -R.T @ t differ, so the rig is fine; two cameras turned about
    one centre have different t but the same centre, so they are rejected."""
    K, t = np.diag([1000.0, 1000.0, 1.0]), np.array([0.0, 0.0, 4.0])
    Rz = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    Rx = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    same_t = CameraRig((Camera("a", K, np.zeros(5), np.eye(3), t, (640, 480)),
                        Camera("b", K, np.zeros(5), Rx, t, (640, 480))))  # fmt: skip
    check_rig(same_t, "same_t.json")
    center = np.array([1.0, 2.0, 3.0])
    turned = CameraRig((Camera("a", K, np.zeros(5), np.eye(3), -center, (640, 480)),
                        Camera("b", K, np.zeros(5), Rz, -Rz @ center, (640, 480))))  # fmt: skip
    with pytest.raises(CalibrationError, match=r"turned\.json: cameras 'a' and 'b' are 0\.0 mm apart"):
        check_rig(turned, "turned.json")


def test_threshold_is_in_metres_and_exclusive():
    rig = _rig({"a": (4.0, 0.0, 1.5), "b": (4.0, 0.005, 1.5)})
    check_rig(rig, "r.json", min_separation_m=0.004)
    check_rig(rig, "r.json", min_separation_m=0.0)
    with pytest.raises(CalibrationError, match="at least 6 mm apart"):
        check_rig(rig, "r.json", min_separation_m=0.006)


@pytest.mark.parametrize("bad", [-0.01, float("nan"), float("inf")])
def test_bad_threshold_is_a_value_error(bad):
    with pytest.raises(ValueError, match="min_separation_m"):
        check_rig(_rig({"a": (4.0, 0.0, 1.5), "b": (0.0, 4.0, 1.5)}), "r.json", min_separation_m=bad)


def test_a_single_camera_passes():
    check_rig(_rig({"a": (4.0, 0.0, 1.5)}), "one.json")


# ------------------------------------------------------------------------ sizes, never guessed
def _voxelpose_file(path: Path, n: int = 3) -> Path:
    """A VoxelPose-style file of ``n`` cameras (cx, cy = 500, 400, so a guess would be 1000x800)."""
    doc = {}
    for i, cam in enumerate(_rig({f"{i}": (4 * np.cos(i), 4 * np.sin(i), 1.5) for i in range(n)})):
        doc[str(i)] = {"R": cam.R.tolist(), "T": (cam.center * 1000).tolist(), "fx": 1000.0, "fy": 1001.0,
                       "cx": 500.0, "cy": 400.0, "k": [0.0, 0.0, 0.0], "p": [0.0, 0.0]}  # fmt: skip
    path.write_text(json.dumps(doc))
    return path


def test_voxelpose_without_size_is_an_error_naming_the_file_and_image_size(tmp_path):
    path = _voxelpose_file(tmp_path / "calibration_shelf.json")
    with pytest.raises(CalibrationError) as info:
        read_calibration(path)
    msg = str(info.value)
    assert msg.startswith(f"{path}: ") and "\n" not in msg
    assert "image_size = [w, h]" in msg and "[[cameras]]" in msg and "camera '0'" in msg


def test_voxelpose_takes_image_size_per_camera(tmp_path):
    path = _voxelpose_file(tmp_path / "vp.json")
    rig = read_calibration(path, sizes={"0": (1032, 776), "1": (1032, 776), "2": (640, 480)})
    assert [c.size for c in rig] == [(1032, 776), (1032, 776), (640, 480)]
    np.testing.assert_allclose(rig["1"].K, [[1000, 0, 500], [0, 1001, 400], [0, 0, 1]])
    # The direct reader still accepts one size for all (dataset loaders pass Shelf's/Campus's).
    direct = read_voxelpose_json(path, size=(1032, 776))
    np.testing.assert_array_equal(direct["0"].P, rig["0"].P)


def test_voxelpose_missing_one_camera_size_names_it(tmp_path):
    path = _voxelpose_file(tmp_path / "vp.json")
    with pytest.raises(CalibrationError, match=r"vp\.json: .*camera '2'.*image_size"):
        read_calibration(path, sizes={"0": (1032, 776), "1": (1032, 776)})


def test_voxelpose_subset_needs_sizes_of_its_cameras_only(tmp_path):
    path = _voxelpose_file(tmp_path / "vp.json", n=4)
    rig = read_calibration(path, sizes={"2": (640, 480), "0": (320, 240)}, names=["2", "0"])
    assert rig.names == ("2", "0") and [c.size for c in rig] == [(640, 480), (320, 240)]
    with pytest.raises(CalibrationError, match=r"vp\.json: no camera\(s\) \['7'\] in the calibration"):
        read_calibration(path, sizes={"7": (640, 480)}, names=["7"])


def test_stored_size_and_image_size_must_agree(tmp_path):
    path = tmp_path / "rig.json"
    write_json(_rig({"cam01": (4.0, 0.0, 1.5), "cam02": (0.0, 4.0, 1.5)}, size=(1280, 720)), path)
    assert read_calibration(path, sizes={"cam01": (1280, 720)})["cam01"].size == (1280, 720)
    with pytest.raises(CalibrationError) as info:
        read_calibration(path, sizes={"cam02": (1920, 1080)})
    msg = str(info.value)
    assert msg.startswith(f"{path}: ") and "'cam02'" in msg
    assert re.search(r"1280x720 in the calibration.*1920x1080", msg)
    # A size for a camera that is not read is not checked.
    assert read_calibration(path, sizes={"cam02": (1, 1)}, names=["cam01"]).names == ("cam01",)


def test_names_select_and_order_cameras(tmp_path):
    path = tmp_path / "rig.json"
    write_json(_rig({"a": (4.0, 0.0, 1.5), "b": (0.0, 4.0, 1.5), "c": (-4.0, 0.0, 1.5)}), path)
    assert read_calibration(path, names=["c", "a"]).names == ("c", "a")
    with pytest.raises(CalibrationError, match=r"rig\.json: no camera\(s\) \['z'\].*'a', 'b', 'c'"):
        read_calibration(path, names=["a", "z"])
    with pytest.raises(CalibrationError, match=r"rig\.json: camera names must be unique"):
        read_calibration(path, names=["a", "a"])


def test_real_shelf_calibration_needs_a_size(shared_data):
    path = shared_data / "shelf" / "calibration_shelf.json"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    with pytest.raises(CalibrationError, match="image_size"):
        read_calibration(path)
    sizes = {str(i): (1032, 776) for i in range(5)}
    assert [c.size for c in read_calibration(path, sizes=sizes)] == [(1032, 776)] * 5


def test_one_camera_is_a_rig_only_when_it_delivers_depth(tmp_path):
    path = tmp_path / "one.json"
    write_json(_rig({"rgbd": (4.0, 0.0, 1.5)}), path)
    with pytest.raises(CalibrationError, match=r"need at least 2 cameras \(or one RGB-D camera"):
        load_rig(path)
    assert load_rig(path, min_cameras=1).names == ("rgbd",)
