"""prepare(): calibration sanity checks, image_size from the config, frame size vs calibration."""

from __future__ import annotations

import dataclasses
import json
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
from synth import look_at_camera

from calibration.camera import CameraRig
from calibration.io import write_json
from capture.service import node
from capture.service.launcher import dump_config
from capture.service.run import prepare
from core.config import CameraSource, Config, config_from_dict, load_config
from core.errors import CalibrationError, ConfigError, InputError

SIZE = (64, 48)  # (width, height) px of the calibration and of the matching videos
TARGET = np.array([0.0, 0.0, 1.0])
CENTERS = {"cam01": (4.0, 0.0, 1.5), "cam02": (0.0, 4.0, 1.5), "cam03": (-4.0, 0.0, 1.5)}


def _rig(centers: dict[str, tuple[float, float, float]] = CENTERS, size: tuple[int, int] = SIZE) -> CameraRig:
    return CameraRig(tuple(look_at_camera(n, np.array(c), TARGET, f=50.0, size=size) for n, c in centers.items()))


def _calibration(tmp_path: Path, rig: CameraRig | None = None) -> Path:
    path = tmp_path / "rig.json"
    write_json(_rig() if rig is None else rig, path)
    return path


def _video(path: Path, size: tuple[int, int] = SIZE, n_frames: int = 3) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, size)
    assert writer.isOpened()
    for i in range(n_frames):
        writer.write(np.full((size[1], size[0], 3), 40 * i, np.uint8))
    writer.release()
    return path


def _images(folder: Path, size: tuple[int, int] = SIZE) -> Path:
    folder.mkdir()
    for i in range(2):
        assert cv2.imwrite(str(folder / f"f{i}.png"), np.zeros((size[1], size[0], 3), np.uint8))
    return folder


def _detections(path: Path) -> Path:
    path.write_text("{}")  # prepare only checks that it exists
    return path


def _voxelpose_file(path: Path, rig: CameraRig) -> Path:
    doc = {c.name: {"R": c.R.tolist(), "T": (c.center * 1000).tolist(), "fx": c.K[0, 0], "fy": c.K[1, 1],
                    "cx": c.K[0, 2], "cy": c.K[1, 2], "k": [0.0, 0.0, 0.0], "p": [0.0, 0.0]}
           for c in rig}  # fmt: skip
    path.write_text(json.dumps(doc))
    return path


# --------------------------------------------------------------------------- frame size check
def test_matching_video_and_images_pass(tmp_path):
    calib = _calibration(tmp_path)
    cfg = Config(
        calibration=str(calib),
        cameras=(
            CameraSource("cam02", str(_video(tmp_path / "a.avi"))),
            CameraSource("cam01", str(_images(tmp_path / "frames"))),
            CameraSource("cam03", str(_detections(tmp_path / "cam03.json"))),
        ),
    )
    rig = prepare(cfg)
    assert rig.names == ("cam02", "cam01", "cam03") and all(c.size == SIZE for c in rig)


def test_video_of_another_size_is_an_input_error(tmp_path):
    calib = _calibration(tmp_path)
    video = _video(tmp_path / "wide.avi", size=(80, 48))
    cfg = Config(
        calibration=str(calib),
        cameras=(CameraSource("cam01", str(_video(tmp_path / "ok.avi"))), CameraSource("cam02", str(video))),
    )
    with pytest.raises(InputError) as info:
        prepare(cfg)
    msg = str(info.value)
    assert msg.startswith(f"{video}: ") and "\n" not in msg
    assert "80x48" in msg and "64x48" in msg and "cam02" in msg and str(calib) in msg


def test_image_folder_of_another_size_is_an_input_error(tmp_path):
    calib = _calibration(tmp_path)
    folder = _images(tmp_path / "frames", size=(64, 50))
    cfg = Config(
        calibration=str(calib),
        cameras=(CameraSource("cam01", str(folder)), CameraSource("cam02", str(_detections(tmp_path / "d.json")))),
    )
    with pytest.raises(InputError, match=r"frames.*64x50.*cam01 64x48"):
        prepare(cfg)


def test_portrait_video_against_landscape_calibration_is_caught(tmp_path):
    """Width and height are compared in order: a 48x64 video is not a 64x48 camera."""
    calib = _calibration(tmp_path)
    cfg = Config(
        calibration=str(calib),
        cameras=(
            CameraSource("cam01", str(_video(tmp_path / "tall.avi", size=(48, 64)))),
            CameraSource("cam02", str(_detections(tmp_path / "d.json"))),
        ),
    )
    with pytest.raises(InputError, match="48x64"):
        prepare(cfg)


# ------------------------------------------------------------------------------ check_rig wired
def test_cameras_5_mm_apart_fail_prepare(tmp_path):
    centers = {**CENTERS, "cam03": (4.0, 0.005, 1.5)}
    calib = _calibration(tmp_path, _rig(centers))
    cams = tuple(CameraSource(n, str(_detections(tmp_path / f"{n}.json"))) for n in ("cam01", "cam02", "cam03"))
    with pytest.raises(CalibrationError, match=r"rig\.json: cameras 'cam01' and 'cam03' are 5\.0 mm apart"):
        prepare(Config(calibration=str(calib), cameras=cams))
    # Only the configured cameras are checked: without cam03 the run is fine.
    assert prepare(Config(calibration=str(calib), cameras=cams[:2])).names == ("cam01", "cam02")


def test_node_main_rejects_cameras_5_mm_apart(tmp_path, monkeypatch, capfd):
    calib = _calibration(tmp_path, _rig({"a": (4.0, 0.0, 1.5), "b": (4.005, 0.0, 1.5)}))
    monkeypatch.setattr(node, "stop_on_signals", threading.Event)  # keep pytest's SIGINT handler
    assert node.main(["--calibration", str(calib), "--out", str(tmp_path / "out"), "--idle-timeout-s", "0.5"]) == 2
    assert "rig.json: cameras 'a' and 'b' are 5.0 mm apart" in capfd.readouterr().err


# -------------------------------------------------------------------------- image_size config key
def test_voxelpose_needs_image_size_and_takes_it(tmp_path):
    vp = _voxelpose_file(tmp_path / "calibration_shelf.json", _rig({"0": CENTERS["cam01"], "1": CENTERS["cam02"]}))
    cams = (
        CameraSource("0", str(_video(tmp_path / "0.avi"))),
        CameraSource("1", str(_detections(tmp_path / "1.json"))),
    )
    with pytest.raises(CalibrationError) as info:
        prepare(Config(calibration=str(vp), cameras=cams))
    assert str(info.value).startswith(f"{vp}: ") and "image_size = [w, h]" in str(info.value)
    sized = tuple(dataclasses.replace(c, image_size=SIZE) for c in cams)
    assert [c.size for c in prepare(Config(calibration=str(vp), cameras=sized))] == [SIZE, SIZE]
    # The image_size must still match the frames.
    wrong = (dataclasses.replace(sized[0], image_size=(640, 480)), sized[1])
    with pytest.raises(InputError, match=r"frames are 64x48 .* camera 0 640x480"):
        prepare(Config(calibration=str(vp), cameras=wrong))


def test_image_size_contradicting_the_calibration_is_an_error(tmp_path):
    calib = _calibration(tmp_path)
    cams = (
        CameraSource("cam01", str(_detections(tmp_path / "a.json")), image_size=(1920, 1080)),
        CameraSource("cam02", str(_detections(tmp_path / "b.json")), image_size=SIZE),
    )
    with pytest.raises(CalibrationError, match=r"rig\.json: camera 'cam01' is 64x48 .* 1920x1080"):
        prepare(Config(calibration=str(calib), cameras=cams))
    agreeing = (dataclasses.replace(cams[0], image_size=SIZE), cams[1])
    assert prepare(Config(calibration=str(calib), cameras=agreeing)).names == ("cam01", "cam02")


def test_config_parses_image_size():
    cfg = config_from_dict({"cameras": [{"name": "a", "source": "a.mp4", "image_size": [1920, 1080]},
                                        {"name": "b", "source": "b.mp4"}]})  # fmt: skip
    assert cfg.cameras[0].image_size == (1920, 1080) and cfg.cameras[1].image_size is None


@pytest.mark.parametrize("bad", [[1920], [1920, 1080, 3], [1920.0, 1080], [0, 1080], [-1, 5], [True, 5], "1920x1080"])
def test_config_rejects_a_bad_image_size(bad):
    with pytest.raises(ConfigError, match=r"rig\.toml .*cam9.*image_size must be \[width, height\]"):
        config_from_dict({"cameras": [{"name": "cam9", "source": "a.mp4", "image_size": bad}]}, where="rig.toml")


def test_config_still_rejects_unknown_camera_keys():
    with pytest.raises(ConfigError, match="cameras must be a list"):
        config_from_dict({"cameras": [{"name": "a", "source": "a.mp4", "size": [1, 2]}]})
    with pytest.raises(ConfigError, match="cameras must be a list"):
        config_from_dict({"cameras": [{"name": "a", "image_size": [1, 2]}]})


def test_dump_config_round_trips_image_size_and_rotation(tmp_path):
    cfg = Config(
        calibration=str(tmp_path / "calib.json"),
        cameras=(
            CameraSource("0", str(tmp_path / "0.mp4"), image_size=(1032, 776)),
            CameraSource("1", str(tmp_path / "1.mp4"), rotate=90),
        ),
    )
    path = tmp_path / "config.toml"
    path.write_text(dump_config(cfg))
    assert load_config(path) == cfg


def test_one_rgbd_camera_is_a_rig_and_one_plain_camera_is_not(tmp_path):
    calib = _calibration(tmp_path, _rig({"cam01": CENTERS["cam01"]}))
    plain = CameraSource("cam01", str(_video(tmp_path / "a.avi")))
    with pytest.raises(CalibrationError, match="need at least 2 cameras"):
        prepare(Config(calibration=str(calib), cameras=(plain,)))
    rgbd = dataclasses.replace(plain, depth=str(tmp_path / "depth"))
    assert prepare(Config(calibration=str(calib), cameras=(rgbd,))).names == ("cam01",)


# --------------------------------------------------------------------------- detector model files
@pytest.mark.parametrize(
    ("detector", "expected"),
    [
        ('name = "rtmo"', "detector 'rtmo' needs a model file"),
        ('name = "rtmpose"\nmodel = "absent-rtmpose.onnx"', "absent-rtmpose.onnx: model file not found"),
        ('name = "yolo-pose"\nmodel = "junk.onnx"', "junk.onnx"),
        ('name = "openpose"', "unknown detector 'openpose'"),
    ],
)
def test_a_wrong_detector_model_exits_2_with_one_line_before_anything_starts(tmp_path, capsys, detector, expected):
    from capture.service.run import run_main

    (tmp_path / "junk.onnx").write_bytes(b"not a graph")
    video = _video(tmp_path / "a.avi")
    cams = "".join(f'[[cameras]]\nname = "{c}"\nsource = "{video}"\n' for c in CENTERS)
    cfg = tmp_path / "rig.toml"
    cfg.write_text(f'calibration = "{_calibration(tmp_path)}"\n[detector]\n{detector}\n{cams}')
    out = tmp_path / "run"
    assert run_main(["--config", str(cfg), "--out", str(out)]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if " INFO " not in line]  # log lines aside
    assert len(err) == 1 and err[0].startswith("mvcap run: error: ") and expected in err[0], err
    assert not out.exists()  # nothing started, nothing written
