"""mvcap run's inputs: frames of another size than the calibration (image_map), stills, the worker's mapping."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest
from synth import look_at_camera

from calibration.camera import CameraRig
from calibration.io import write_json
from capture.service.launcher import dump_config
from capture.service.run import prepare
from capture.service.worker import Worker
from core.config import CameraSource, Config, FusionConfig, ImageMap, config_from_dict, load_config
from core.errors import ConfigError, InputError
from core.types import Detections2D

SIZE = (64, 48)
HALF_MAP = ImageMap(0.5, 0.5, 0.0, -2.0)  # 64x48 calibrated images shrunk to 32x24, 2 px cropped top and bottom
TARGET = np.array([0.0, 0.0, 1.0])


def _calibration(tmp_path: Path) -> Path:
    centers = [(4.0, 0.0, 1.5), (0.0, 4.0, 1.5)]
    rig = CameraRig(tuple(look_at_camera(f"cam0{i + 1}", np.array(c), TARGET, f=50.0, size=SIZE)
                          for i, c in enumerate(centers)))  # fmt: skip
    path = tmp_path / "rig.json"
    write_json(rig, path)
    return path


def _images(folder: Path, size: tuple[int, int]) -> str:
    folder.mkdir()
    for i in range(2):
        assert cv2.imwrite(str(folder / f"f{i}.png"), np.zeros((size[1], size[0], 3), np.uint8))
    return str(folder)


def test_frames_of_another_size_need_an_image_map(tmp_path: Path) -> None:
    calib = _calibration(tmp_path)
    small = _images(tmp_path / "small", (32, 20))
    cams = (CameraSource("cam01", _images(tmp_path / "ok", SIZE)), CameraSource("cam02", small))
    with pytest.raises(InputError, match="32x20 but calibration .* gives camera cam02 64x48"):
        prepare(Config(calibration=str(calib), cameras=cams))
    mapped = (cams[0], dataclasses.replace(cams[1], image_map=HALF_MAP))
    assert prepare(Config(calibration=str(calib), cameras=mapped)).names == ("cam01", "cam02")
    wrong = (cams[0], dataclasses.replace(cams[1], image_map=ImageMap(1.0, 1.0)))
    with pytest.raises(InputError, match="check the mapping"):
        prepare(Config(calibration=str(calib), cameras=wrong))


def test_stills_are_all_or_none_and_outlive_no_track(tmp_path: Path) -> None:
    calib = _calibration(tmp_path)
    a, b = _images(tmp_path / "a", SIZE), _images(tmp_path / "b", SIZE)
    both = (CameraSource("cam01", a, stills=True), CameraSource("cam02", b, stills=True))
    assert len(prepare(Config(calibration=str(calib), cameras=both))) == 2
    with pytest.raises(ConfigError, match="every camera or none; not on cam02"):
        prepare(Config(calibration=str(calib), cameras=(both[0], CameraSource("cam02", b))))
    with pytest.raises(ConfigError, match="max_missed_s"):
        prepare(Config(calibration=str(calib), cameras=both, fusion=FusionConfig(max_missed_s=1e5)))


def test_image_map_and_stills_survive_the_run_folder_config(tmp_path: Path) -> None:
    cfg = config_from_dict({
        "calibration": "rig.json",
        "cameras": [{"name": "cam01", "source": "a", "image_map": {"scale": 0.474, "pad_x": 24.9}, "stills": True},
                    {"name": "cam02", "source": "b"}],
        "detector": {"input_long_px": 960},
    })  # fmt: skip
    path = tmp_path / "config.toml"
    path.write_text(dump_config(cfg))
    back = load_config(path)
    assert back.cameras[0].image_map == ImageMap(0.474, 0.474, 24.9, 0.0) and back.cameras[0].stills
    assert back.cameras[1].image_map is None and not back.cameras[1].stills
    assert back.detector == cfg.detector


class _FixedDetector:
    """Reports one person at fixed frame pixels (stands in for the network in the worker's own path)."""

    def detect(self, image_bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        poses = np.zeros((1, 17, 3), np.float32)
        poses[0, :, 0], poses[0, :, 1], poses[0, :, 2] = 10.0, 5.0, 0.8
        return poses, np.array([[4.0, 1.0, 20.0, 21.0, 0.9]], np.float32)


def test_worker_sends_calibration_pixels(tmp_path: Path) -> None:
    worker = Worker("cam02", _images(tmp_path / "small", (32, 20)), "tcp://127.0.0.1:1", image_map=HALF_MAP)
    worker.frames._detector = _FixedDetector()
    dets = worker._detect(0, 0, np.zeros((20, 32, 3), np.uint8))
    np.testing.assert_allclose(dets.poses[0, 0], [20.0, 14.0, 0.8], rtol=1e-6)  # ((10, 5) - (0, -2)) / 0.5
    np.testing.assert_allclose(dets.boxes[0], [8.0, 6.0, 40.0, 46.0, 0.9], rtol=1e-6)
    replay = Detections2D("cam02", 1, 0, dets.poses, dets.boxes)  # replayed detections are already mapped
    np.testing.assert_array_equal(worker._detect(1, 0, replay).poses, dets.poses)
    with pytest.raises(InputError, match="depth"):
        Worker("cam02", "x", "tcp://127.0.0.1:1", depth="d", camera_model=object(), image_map=HALF_MAP)
