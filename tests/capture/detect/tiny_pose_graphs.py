"""Tiny ONNX graphs with the input/output names and shapes of the supplied pose-model families.

Each graph's outputs are known constants (kept connected to the input by ``+ 0 * mean(input)``) or
simple functions of the input, so tests can check loading, shapes and decoding by hand.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
Dims = list[int | str]


def _save(nodes: list, inputs: list, outputs: list, inits: list, path: Path, metadata: dict | None = None) -> Path:
    graph = helper.make_graph(nodes, "tiny", inputs, outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8  # readable by older onnxruntime builds too
    for key, value in (metadata or {}).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def constant_outputs(
    path: Path,
    input_shape: Dims,
    outputs: dict[str, tuple[np.ndarray, Dims]],
    input_name: str = "input",
    metadata: dict | None = None,
) -> Path:
    """A graph whose outputs are constants: ``name -> (value, declared dims)``.

    Each output is ``value + 0 * mean(input)``, so it stays connected to the input. A value with a
    leading dim of 1 broadcasts over the input's batch (the mean keeps the batch axis).
    """
    x = helper.make_tensor_value_info(input_name, TensorProto.FLOAT, input_shape)
    nodes = [
        helper.make_node("ReduceMean", [input_name], ["mean"], axes=[1, 2, 3], keepdims=0),  # (B,)
        helper.make_node("Mul", ["mean", "zero"], ["zeroed"]),
    ]
    inits = [numpy_helper.from_array(np.zeros((), np.float32), "zero")]
    outs = []
    for name, (value, dims) in outputs.items():
        value = np.asarray(value, np.float32)
        shape = [-1] + [1] * (value.ndim - 1)
        inits += [
            numpy_helper.from_array(value, f"{name}_const"),
            numpy_helper.from_array(np.array(shape, np.int64), f"{name}_shape"),
        ]
        nodes += [
            helper.make_node("Reshape", ["zeroed", f"{name}_shape"], [f"{name}_z"]),
            helper.make_node("Add", [f"{name}_const", f"{name}_z"], [name]),
        ]
        outs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, dims))
    return _save(nodes, [x], outs, inits, path, metadata)


def simcc_profile_graph(
    path: Path, input_hw: tuple[int, int], n_kpt: int = 17, split: int = 2, channel: int | None = None
) -> Path:
    """An RTMPose-shaped graph (input (B, 3, H, W); simcc_x (B, K, W*split), simcc_y (B, K, H*split)).

    simcc_x[b, k] is the column profile (sum over channels and rows) of the input, each value
    repeated ``split`` times; simcc_y the row profile. A bright spot at input pixel (x, y) on a
    darker background therefore decodes, by argmax / split, to exactly (x, y) for every keypoint.
    With ``channel`` set, only that input channel (0 = the first fed to the model) is profiled.
    """
    h, w = input_hw
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, h, w])
    nodes, inits = [], [numpy_helper.from_array(np.array([1, n_kpt, 1], np.int64), "tile")]
    source = "input"
    if channel is not None:
        inits.append(numpy_helper.from_array(np.array([channel], np.int64), "channel"))
        nodes.append(helper.make_node("Gather", ["input", "channel"], ["picked"], axis=1))  # (B, 1, H, W)
        source = "picked"
    for axis_name, reduce_axes, size in (("simcc_x", [1, 2], w), ("simcc_y", [1, 3], h)):
        inits += [
            numpy_helper.from_array(np.array(reduce_axes, np.int64), f"{axis_name}_axes"),
            numpy_helper.from_array(np.array([0, 1, size * split], np.int64), f"{axis_name}_shape"),
            numpy_helper.from_array(np.array([1, 3], np.int64), f"{axis_name}_unsq"),
        ]
        nodes += [
            helper.make_node("ReduceSum", [source, f"{axis_name}_axes"], [f"{axis_name}_p"], keepdims=0),  # (B, n)
            helper.make_node("Unsqueeze", [f"{axis_name}_p", f"{axis_name}_unsq"], [f"{axis_name}_u"]),  # (B,1,n,1)
            helper.make_node("Concat", [f"{axis_name}_u"] * split, [f"{axis_name}_c"], axis=3),  # (B,1,n,split)
            helper.make_node("Reshape", [f"{axis_name}_c", f"{axis_name}_shape"], [f"{axis_name}_r"]),
            helper.make_node("Tile", [f"{axis_name}_r", "tile"], [axis_name]),
        ]
    outs = [
        helper.make_tensor_value_info("simcc_x", TensorProto.FLOAT, ["batch", n_kpt, w * split]),
        helper.make_tensor_value_info("simcc_y", TensorProto.FLOAT, ["batch", n_kpt, h * split]),
    ]
    return _save(nodes, [x], outs, inits, path)
