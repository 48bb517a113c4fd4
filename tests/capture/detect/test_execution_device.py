"""``[detector] device``: where the ONNX models run, checked before any worker starts."""

from __future__ import annotations

import pytest

from capture.detect import model_files
from capture.detect.model_files import execution_providers, session_providers, use_device
from core.config import DetectorConfig, config_from_dict
from core.errors import ConfigError

ort = pytest.importorskip("onnxruntime")
HAS_CUDA = "CUDAExecutionProvider" in ort.get_available_providers()


@pytest.fixture(autouse=True)
def _restore_providers():
    saved = model_files.session_providers()
    yield
    model_files._providers = saved


def test_cpu_is_the_default_and_runs_on_the_cpu_provider_only() -> None:
    assert DetectorConfig().device == "cpu"
    assert execution_providers("cpu") == ["CPUExecutionProvider"]


@pytest.mark.skipif(HAS_CUDA, reason="this onnxruntime has CUDA")
def test_cuda_without_a_cuda_onnxruntime_is_one_config_error_and_auto_falls_back() -> None:
    with pytest.raises(ConfigError, match='device = "cuda".*no CUDA execution provider.*gpu') as exc:
        execution_providers("cuda")
    assert "\n" not in str(exc.value)
    assert execution_providers("auto") == ["CPUExecutionProvider"]


@pytest.mark.skipif(not HAS_CUDA, reason="needs onnxruntime-gpu with CUDA")
@pytest.mark.gpu
def test_cuda_prefers_the_gpu_and_keeps_the_cpu_for_what_it_cannot_run() -> None:
    assert execution_providers("cuda") == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert execution_providers("auto") == execution_providers("cuda")


def test_sessions_use_the_chosen_providers(tmp_path) -> None:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 32, 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 32, 32])],
    )
    path = tmp_path / "tiny.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    assert use_device("auto") == session_providers()
    session = model_files.open_onnx_session(path)
    assert session.get_providers() == session_providers()
    assert use_device("cpu") == ["CPUExecutionProvider"]
    assert model_files.open_onnx_session(path).get_providers() == ["CPUExecutionProvider"]


def test_config_refuses_an_unknown_device() -> None:
    assert config_from_dict({"detector": {"device": "auto"}}).detector.device == "auto"
    for bad in ("gpu", "CUDA", ""):
        with pytest.raises(ConfigError, match="device"):
            config_from_dict({"detector": {"device": bad}})
    with pytest.raises(ConfigError, match="device"):
        execution_providers("tpu")
