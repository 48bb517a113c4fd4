"""check_model_file: one-line ConfigError naming the file for missing, unreadable or wrong model files."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from tiny_pose_graphs import constant_outputs

from capture.detect.model_files import MODEL_KINDS, check_model_file
from core.errors import ConfigError


def _yolo(path: Path, channels: int = 56, hw=(640, 384)) -> Path:
    return constant_outputs(path, [1, 3, *hw], {"output0": (np.zeros((1, channels, 10)), [1, channels, 10])})


def _rtmo(path: Path, kpt_dims=(17, 3)) -> Path:
    outs = {
        "dets": (np.zeros((1, 4, 5)), [1, 4, 5]),
        "keypoints": (np.zeros((1, 4, *kpt_dims)), [1, 4, *kpt_dims]),
    }
    return constant_outputs(path, [1, 3, 640, 640], outs)


def _rtmpose(path: Path, wx: int = 384, wy: int = 512, hw=(256, 192), batch: int | str = "batch") -> Path:
    outs = {
        "simcc_x": (np.zeros((1, 17, wx)), [batch, 17, wx]),
        "simcc_y": (np.zeros((1, 17, wy)), [batch, 17, wy]),
    }
    return constant_outputs(path, [batch, 3, *hw], outs)


def test_each_kind_accepts_its_layout_and_names_tensors_in_decoder_order(tmp_path: Path) -> None:
    info = check_model_file("yolo-pose", _yolo(tmp_path / "y.onnx"))
    assert info.output_names == ("output0",) and info.static_input_hw == (640, 384)
    info = check_model_file("rtmo", _rtmo(tmp_path / "rtmo.onnx"))
    assert info.output_names == ("dets", "keypoints") and info.input_name == "input"
    assert info.output_shapes == ((1, 4, 5), (1, 4, 17, 3))
    info = check_model_file("rtmpose", _rtmpose(tmp_path / "rtmpose.onnx"))
    assert info.output_names == ("simcc_x", "simcc_y") and info.static_input_hw == (256, 192)
    assert info.input_shape[0] == "batch"  # dynamic batch kept symbolic


def test_rtmo_outputs_found_by_shape_in_any_order(tmp_path: Path) -> None:
    outs = {
        "kp": (np.zeros((1, 4, 17, 3)), [1, "n", 17, 3]),
        "boxes": (np.zeros((1, 4, 5)), [1, "n", 5]),
    }
    info = check_model_file("rtmo", constant_outputs(tmp_path / "r.onnx", [1, 3, 640, 640], outs))
    assert info.output_names == ("boxes", "kp")


@pytest.mark.parametrize(
    ("kind", "maker", "expected"),
    [
        ("yolo-pose", lambda p: _yolo(p, channels=57), r"\(1, 56, N\)"),
        ("rtmo", lambda p: _rtmo(p, kpt_dims=(26, 3)), r"keypoints \(1, N, 17, 3\)"),
        ("rtmpose", lambda p: _rtmpose(p, wx=400), "simcc_x"),  # 400 is not 192 * s with 512 = 256 * s
        ("rtmpose", lambda p: _rtmpose(p, hw=("h", "w")), "static H, W"),
        ("rtmo", lambda p: _yolo(p), "RTMO"),  # a YOLO graph offered as RTMO
    ],
)
def test_wrong_layout_is_one_line_naming_file_and_expectation(tmp_path: Path, kind, maker, expected) -> None:
    path = maker(tmp_path / "model.onnx")
    with pytest.raises(ConfigError, match=expected) as err:
        check_model_file(kind, path)
    msg = str(err.value)
    assert str(path) in msg and "\n" not in msg and "found" in msg


def test_missing_unreadable_and_not_onnx(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"absent\.onnx: model file not found"):
        check_model_file("rtmo", tmp_path / "absent.onnx")
    with pytest.raises(ConfigError, match="not a file"):
        check_model_file("rtmpose", tmp_path)
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00garbage, not a protobuf graph" * 10)
    with pytest.raises(ConfigError, match=r"junk\.onnx: not a loadable ONNX model"):
        check_model_file("yolo-pose", junk)
    if os.geteuid() != 0:  # root reads anything
        locked = _rtmo(tmp_path / "locked.onnx")
        locked.chmod(0)
        with pytest.raises(ConfigError, match="cannot read model file"):
            check_model_file("rtmo", locked)


def test_pt_checkpoint_must_be_a_zip_and_tflite_needs_its_identifier(tmp_path: Path) -> None:
    fake_pt = tmp_path / "yolo11s-pose.pt"
    fake_pt.write_bytes(b"plain text, not torch.save output")
    with pytest.raises(ConfigError, match=r"yolo11s-pose\.pt: not a PyTorch checkpoint"):
        check_model_file("yolo-pose", fake_pt)
    onnx_as_tflite = _rtmo(tmp_path / "movenet.tflite")
    with pytest.raises(ConfigError, match=r"movenet\.tflite: not a TFLite model"):
        check_model_file("movenet", onnx_as_tflite)


def test_unknown_kind_lists_valid_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="valid: " + ", ".join(MODEL_KINDS)):
        check_model_file("openpose", _rtmo(tmp_path / "m.onnx"))
