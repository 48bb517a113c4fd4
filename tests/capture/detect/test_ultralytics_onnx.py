"""User-supplied Ultralytics YOLO pose models: .onnx (static or dynamic input) and .pt exported once."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tiny_pose_graphs import constant_outputs

from capture.detect.detector import Detector
from capture.detect.letterbox import letterbox
from capture.detect.ultralytics_onnx import make_supplied_yolo_pose, supplied_yolo_onnx
from core.errors import ConfigError


def _one_person_output(
    input_hw: tuple[int, int], image_hw: tuple[int, int], n: int = 8
) -> tuple[np.ndarray, np.ndarray]:
    """(1, 56, n) output with one person at anchor 2, and that person's keypoints in image pixels."""
    _, (gx, gy), (px, py) = letterbox(np.zeros((*image_hw, 3), np.uint8), input_hw)
    kpts = np.column_stack([np.linspace(200, 400, 17), np.linspace(100, 700, 17), np.full(17, 0.9)])
    out = np.zeros((1, 56, n), np.float32)
    x1, y1, x2, y2 = 200 * gx + px, 100 * gy + py, 400 * gx + px, 700 * gy + py
    out[0, :5, 2] = [(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1, 0.95]
    k_in = kpts.copy()
    k_in[:, 0] = kpts[:, 0] * gx + px
    k_in[:, 1] = kpts[:, 1] * gy + py
    out[0, 5:, 2] = k_in.reshape(-1)
    return out, kpts


def test_static_onnx_takes_its_own_input_size_and_decodes(tmp_path: Path) -> None:
    image_hw = (1080, 1920)
    out, kpts = _one_person_output((384, 640), image_hw)
    model = constant_outputs(tmp_path / "yolo11s-pose.onnx", [1, 3, 384, 640], {"output0": (out, [1, 56, 8])}, "images")
    assert supplied_yolo_onnx(model) == model  # an .onnx is used in place
    det = make_supplied_yolo_pose(model)
    assert isinstance(det, Detector) and det.input_hw == (384, 640)
    poses, boxes = det.detect(np.zeros((*image_hw, 3), np.uint8))
    assert poses.shape == (1, 17, 3) and boxes.shape == (1, 5)
    np.testing.assert_allclose(poses[0, :, :2], kpts[:, :2], atol=1e-3)
    np.testing.assert_allclose(boxes[0], [200, 100, 400, 700, 0.95], atol=1e-3)
    with pytest.raises(ConfigError, match="differs from the model's static input"):
        make_supplied_yolo_pose(model, input_hw=(640, 640))


def test_dynamic_onnx_follows_the_configured_input(tmp_path: Path) -> None:
    image_hw = (1920, 1088)
    out, kpts = _one_person_output((640, 384), image_hw)
    model = constant_outputs(tmp_path / "dyn.onnx", [1, 3, "h", "w"], {"output0": (out, [1, 56, "n"])}, "images")
    assert make_supplied_yolo_pose(model).input_hw == (640, 640)
    det = make_supplied_yolo_pose(model, input_hw=(640, 384))
    poses, _ = det.detect(np.zeros((*image_hw, 3), np.uint8))
    np.testing.assert_allclose(poses[0, :, :2], kpts[:, :2], atol=1e-3)
    with pytest.raises(ConfigError, match="multiples of 32"):
        make_supplied_yolo_pose(model, input_hw=(640, 380))


def test_wrong_files_raise_config_error_naming_them(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"yolo11x-pose\.pt: model file not found"):
        make_supplied_yolo_pose(tmp_path / "yolo11x-pose.pt")
    detect_only = constant_outputs(
        tmp_path / "yolo11n.onnx", [1, 3, 640, 640], {"output0": (np.zeros((1, 84, 8)), [1, 84, 8])}
    )
    with pytest.raises(ConfigError, match=r"yolo11n\.onnx: not a yolo-pose model"):
        make_supplied_yolo_pose(detect_only)


_MAKE_UNTRAINED_PT = """
import sys, yaml
from ultralytics import YOLO
from ultralytics.nn.tasks import yaml_model_load
cfg = yaml_model_load("yolo11n-pose.yaml")
cfg["nc"] = 1  # one class (person), as the released pose weights
cfg.pop("yaml_file", None)
out = sys.argv[1]
with open(out + ".yaml", "w") as f:
    yaml.safe_dump(cfg, f)
YOLO(out + ".yaml").save(out)
"""


@pytest.mark.slow
def test_untrained_ultralytics_checkpoint_exports_once_and_detects(tmp_path: Path, monkeypatch) -> None:
    """An untrained YOLO11n-pose built from its yaml (no weights, no download), exported by the .pt path."""
    if importlib.util.find_spec("ultralytics") is None:
        pytest.skip("the 'export' extra (ultralytics) is not installed")
    monkeypatch.setenv("MVCAP_CACHE", str(tmp_path / "cache"))
    env = dict(os.environ, YOLO_OFFLINE="1", YOLO_AUTOINSTALL="false", YOLO_CONFIG_DIR=str(tmp_path / "cfg"))
    pt = tmp_path / "yolo11n-pose-untrained.pt"
    proc = subprocess.run([sys.executable, "-c", _MAKE_UNTRAINED_PT, str(pt)], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    det = make_supplied_yolo_pose(pt, input_hw=(320, 256), score_threshold=0.0)
    onnx_path = det.model_path
    assert onnx_path.parent == tmp_path / "cache" / "supplied" and onnx_path.name.endswith("_320x256.onnx")
    mtime = onnx_path.stat().st_mtime_ns
    assert supplied_yolo_onnx(pt, (320, 256)) == onnx_path and onnx_path.stat().st_mtime_ns == mtime  # cached
    image = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    poses, boxes = det.detect(image)
    assert poses.ndim == 3 and poses.shape[1:] == (17, 3) and boxes.shape == (poses.shape[0], 5)
    assert poses.shape[0] > 0  # untrained scores are about 0.5 > 0: NMS keeps some candidates
    assert ((poses[..., 0] >= 0) & (poses[..., 0] <= 640)).all() and (
        (poses[..., 1] >= 0) & (poses[..., 1] <= 480)
    ).all()
