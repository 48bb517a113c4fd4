"""RTMO: top-left letterbox, decoding of a tiny graph's known outputs back to image pixels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tiny_pose_graphs import constant_outputs

from capture.detect.detector import Detector
from capture.detect.rtmo import RtmoOnnx, decode_rtmo, pad_top_left
from core.errors import ConfigError, ShapeError


def test_pad_top_left_places_the_resized_image_at_the_origin() -> None:
    image = np.full((1080, 1920, 3), 7, np.uint8)
    padded, ratio = pad_top_left(image, (640, 640))
    assert ratio == pytest.approx(1 / 3)
    assert (padded[:360] == 7).all() and (padded[360:] == 114).all()
    portrait, r2 = pad_top_left(np.full((1920, 1088, 3), 7, np.uint8), (640, 640))
    assert r2 == pytest.approx(1 / 3) and (portrait[:, :362] == 7).all() and (portrait[:, 363:] == 114).all()


def _outputs() -> tuple[np.ndarray, np.ndarray]:
    """Three candidates in input pixels: A (0.9), a duplicate of A (0.8, suppressed), C (0.3, below threshold)."""
    dets = np.array([[[100, 50, 200, 300, 0.9], [102, 52, 202, 302, 0.8], [400, 100, 500, 300, 0.3]]], np.float32)
    kpts = np.zeros((1, 3, 17, 3), np.float32)
    kpts[0, :, :, 0] = np.linspace(110, 190, 17)
    kpts[0, :, :, 1] = np.linspace(60, 290, 17)
    kpts[0, :, :, 2] = 0.75
    kpts[0, 0, 4, 2] = 0.0  # a missing joint of A
    kpts[0, 0, 16] = [900.0, 80.0, 0.6]  # A's right ankle predicted past the input edge: clipped to the image
    return dets, kpts


def test_decode_thresholds_suppresses_and_rescales() -> None:
    dets, kpts = _outputs()
    poses, boxes = decode_rtmo(dets, kpts, 1 / 3, (1920, 1080), score_threshold=0.5, iou_threshold=0.45)
    assert poses.shape == (1, 17, 3) and boxes.shape == (1, 5)
    np.testing.assert_allclose(boxes[0], [300, 150, 600, 900, 0.9], rtol=1e-6)
    np.testing.assert_allclose(poses[0, 1, :2], [3 * kpts[0, 0, 1, 0], 3 * kpts[0, 0, 1, 1]], rtol=1e-6)
    assert poses[0, 4].tolist() == [0.0, 0.0, 0.0]
    assert poses[0, 16].tolist() == pytest.approx([1920.0, 240.0, 0.6])
    with pytest.raises(ShapeError, match=r"\(1, N, 5\)"):
        decode_rtmo(dets[..., :4], kpts, 1.0, (10, 10))
    with pytest.raises(ShapeError, match="keypoints"):
        decode_rtmo(dets, kpts[:, :2], 1.0, (10, 10))
    empty_p, empty_b = decode_rtmo(dets, kpts, 1.0, (10, 10), score_threshold=0.95)
    assert empty_p.shape == (0, 17, 3) and empty_b.shape == (0, 5)


def test_tiny_rtmo_graph_maps_one_person_back_through_the_letterbox(tmp_path: Path) -> None:
    dets, kpts = _outputs()
    outs = {"dets": (dets, [1, "n", 5]), "keypoints": (kpts, [1, "n", 17, 3])}
    model = constant_outputs(tmp_path / "rtmo-s.onnx", [1, 3, 640, 640], outs)
    det = RtmoOnnx(model, score_threshold=0.5)
    assert isinstance(det, Detector) and det.input_hw == (640, 640)
    poses, boxes = det.detect(np.zeros((1280, 960, 3), np.uint8))  # portrait: ratio 0.5
    np.testing.assert_allclose(boxes[0, :4], [200, 100, 400, 600], rtol=1e-6)
    np.testing.assert_allclose(poses[0, 0, :2], [220, 120], rtol=1e-6)
    assert poses[0, 16, 0] == 960.0  # clipped to the image width
    with pytest.raises(ConfigError, match="differs from the model's static input"):
        RtmoOnnx(model, input_hw=(480, 640))
    with pytest.raises(ShapeError, match="uint8"):
        det.detect(np.zeros((10, 10), np.uint8))


def test_dynamic_input_uses_the_configured_size(tmp_path: Path) -> None:
    dets, kpts = _outputs()
    outs = {"dets": (dets, [1, "n", 5]), "keypoints": (kpts, [1, "n", 17, 3])}
    model = constant_outputs(tmp_path / "rtmo-dyn.onnx", [1, 3, "h", "w"], outs)
    assert RtmoOnnx(model).input_hw == (640, 640)
    det = RtmoOnnx(model, input_hw=(320, 640), score_threshold=0.5)
    _, boxes = det.detect(np.zeros((1080, 1920, 3), np.uint8))  # ratio min(320 / 1080, 640 / 1920) = 8 / 27
    np.testing.assert_allclose(boxes[0, :4], np.array([100, 50, 200, 300]) * 27 / 8, rtol=1e-6)
