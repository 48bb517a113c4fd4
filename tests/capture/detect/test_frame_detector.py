"""A camera's frames through the registry's supplied models and re-ID: capture.detect.frames."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from tiny_pose_graphs import constant_outputs

from capture.detect.frames import FrameDetector
from capture.detect.registry import make_detector
from capture.detect.reid import DIM
from core.config import DetectorConfig, ImageMap
from core.errors import ConfigError


def _rtmo(path: Path, input_dims: list) -> Path:
    """An RTMO-layout graph reporting one upright person at fixed input pixels (score 0.9)."""
    dets = np.array([[[100, 40, 200, 300, 0.9]]], np.float32)
    kpts = np.zeros((1, 1, 17, 3), np.float32)
    kpts[0, 0, :, 0] = np.linspace(120, 180, 17)
    kpts[0, 0, :, 1] = np.linspace(50, 290, 17)
    kpts[0, 0, :, 2] = 0.9
    outs = {"dets": (dets, [1, "n", 5]), "keypoints": (kpts, [1, "n", 17, 3])}
    return constant_outputs(path, input_dims, outs)


def test_supplied_model_runs_at_its_static_input_else_the_frame_following_one(tmp_path: Path) -> None:
    static = _rtmo(tmp_path / "rtmo-static.onnx", [1, 3, 640, 640])
    dynamic = _rtmo(tmp_path / "rtmo-dyn.onnx", [1, 3, "h", "w"])
    assert make_detector("rtmo", model_path=static, input_hw=(384, 640)).input_hw == (640, 640)
    assert make_detector("rtmo", model_path=dynamic, input_hw=(384, 640)).input_hw == (384, 640)
    with pytest.raises(ConfigError, match=r"absent\.onnx"):
        make_detector("rtmo", model_path=tmp_path / "absent.onnx")


def test_frames_of_a_supplied_model_get_mapped_pixels_and_descriptors(tmp_path: Path) -> None:
    folder = tmp_path / "cam01"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):  # 1280x720 landscape frames with coloured content where the person is
        img = np.full((720, 1280, 3), 90, np.uint8)
        img[80:640, 200:420] = rng.integers(0, 255, 3)
        cv2.imwrite(str(folder / f"{i:03d}.png"), img)
    model = _rtmo(tmp_path / "rtmo.onnx", [1, 3, "h", "w"])
    half = ImageMap(scale_x=0.5, scale_y=0.5, pad_x=0.0, pad_y=0.0)  # frames are half the calibration's size
    cfg = DetectorConfig(name="rtmo", model=str(model), score_threshold=0.5)
    frames = FrameDetector("cam01", str(folder), cfg, image_map=half)
    items = list(frames.open())
    assert frames.input_hw == (384, 640) and len(items) == 2  # landscape: 640 wide, 360 -> 384 high
    dets = frames.detect(*items[0])
    frames.close()
    # 1280 / 640 = 2: input pixels x2 to frame pixels, then /0.5 to calibration pixels.
    np.testing.assert_allclose(dets.boxes[0, :4], np.array([100, 40, 200, 300]) * 2 / 0.5, rtol=1e-5)
    assert dets.embeddings is not None and dets.embeddings.shape == (1, DIM)
    assert np.linalg.norm(dets.embeddings[0]) == pytest.approx(1.0, abs=1e-3)
    assert set(frames.last_ms) == {"detect", "reid"}
    no_reid = FrameDetector("cam01", str(folder), DetectorConfig(name="rtmo", model=str(model), reid=False))
    assert no_reid.detect(*next(no_reid.open())).embeddings is None
    no_reid.close()
