"""Checks of user-supplied pose model files, run before any worker starts.

A supplied model is one file: an Ultralytics YOLO-pose checkpoint (``.pt``) or its ONNX export, an
RTMO or RTMPose ONNX file as exported by MMPose/MMDeploy (or rtmlib's model zoo), or the MoveNet
MultiPose TFLite file. :func:`check_model_file` opens it and compares its inputs and outputs with
the layout its family's decoder expects; anything else is a :class:`~core.errors.ConfigError` with
one line naming the file and what was expected, so ``mvcap`` exits 2 before starting.

Layouts (N candidates, K = 17 COCO keypoints):

- ``yolo-pose``: input (1, 3, H, W); output (1, 56, N) = cx, cy, w, h, score, 17 x (x, y, conf)
  (Ultralytics ``Pose`` head, export mode).
- ``rtmo``: input (1, 3, H, W); outputs ``dets`` (1, N, 5) = x1, y1, x2, y2, score and
  ``keypoints`` (1, N, 17, 3) = x, y, conf, input pixels (MMDeploy's RTMO export, NMS inside).
- ``rtmpose``: input (B, 3, H, W) with static H, W; outputs ``simcc_x`` (B, 17, W * s) and
  ``simcc_y`` (B, 17, H * s), s the SimCC split ratio (Li et al. 2022, SimCC; Jiang et al. 2023,
  RTMPose).
- ``movenet``: TFLite (``TFL3``) with input (1, H, W, 3) and output (1, 6, 56).
"""

from __future__ import annotations

import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from core.errors import ConfigError

__all__ = [
    "MODEL_KINDS",
    "ModelFile",
    "check_model_file",
    "execution_providers",
    "onnx_layout",
    "open_onnx_session",
    "ort_load_errors",
    "session_providers",
    "use_device",
]

log = logging.getLogger(__name__)

MODEL_KINDS: Final = ("yolo-pose", "rtmo", "rtmpose", "movenet")
N_KPT: Final = 17
MOVENET_HINT: Final = "pip install 'ai-edge-litert>=2.1'"

Dim = int | str | None  # a static size, or a symbolic/unknown one


@dataclass(frozen=True, slots=True)
class ModelFile:
    """A checked model file and the tensor names its decoder uses.

    Attributes:
        kind: one of :data:`MODEL_KINDS`.
        path: the file.
        input_name: name of the image input ("" for a ``.pt`` checkpoint).
        input_shape: (4,) input dims as the graph states them; ints are static, str/None dynamic.
            NCHW for ONNX, NHWC for MoveNet; empty for a ``.pt`` checkpoint.
        output_names: outputs in the decoder's order: ``(output0,)`` for yolo-pose,
            ``(dets, keypoints)`` for rtmo, ``(simcc_x, simcc_y)`` for rtmpose.
        output_shapes: their dims, same order.
    """

    kind: str
    path: Path
    input_name: str
    input_shape: tuple[Dim, ...]
    output_names: tuple[str, ...]
    output_shapes: tuple[tuple[Dim, ...], ...]

    @property
    def static_input_hw(self) -> tuple[int, int] | None:
        """(height, width) of the input in pixels when both are static, else None."""
        if len(self.input_shape) != 4:
            return None
        hw = self.input_shape[1:3] if self.kind == "movenet" else self.input_shape[2:4]
        return (hw[0], hw[1]) if all(isinstance(d, int) and d > 0 for d in hw) else None


def ort_load_errors() -> tuple[type[BaseException], ...]:
    """onnxruntime's load errors, to catch around ``InferenceSession``: pybind11 classes that derive from
    Exception directly, not RuntimeError, plus RuntimeError and OSError."""
    from onnxruntime.capi import onnxruntime_pybind11_state as state

    names = ("Fail", "InvalidArgument", "InvalidGraph", "InvalidProtobuf", "NoModel", "NoSuchFile",
             "NotImplemented", "RuntimeException")  # fmt: skip
    return (RuntimeError, OSError, *(getattr(state, n) for n in names if hasattr(state, n)))


def _require_file(path: Path) -> None:
    if not path.exists():
        raise ConfigError(f"{path}: model file not found")
    if not path.is_file():
        raise ConfigError(f"{path}: not a file")
    try:
        with path.open("rb") as f:
            f.read(1)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read model file ({exc.strerror or type(exc).__name__})") from exc


CPU_ONLY: Final = ("CPUExecutionProvider",)
_providers: list[str] = list(CPU_ONLY)  # this process's choice (use_device); one worker, one device


def execution_providers(device: str) -> list[str]:
    """onnxruntime execution providers for ``[detector] device``, most preferred first.

    Args:
        device: ``"cpu"``, ``"cuda"`` or ``"auto"`` (CUDA when the installed onnxruntime has it).

    Returns:
        ``["CUDAExecutionProvider", "CPUExecutionProvider"]`` for CUDA (the CPU runs what CUDA
        cannot), ``["CPUExecutionProvider"]`` otherwise.

    Raises:
        ConfigError: an unknown device, or ``"cuda"`` with an onnxruntime that has no CUDA provider.
    """
    if device == "cpu":
        return list(CPU_ONLY)
    if device not in ("cuda", "auto"):
        raise ConfigError(f'[detector] device must be "cpu", "cuda" or "auto"; got {device!r}')
    import onnxruntime as ort

    available = ort.get_available_providers()
    if "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", *CPU_ONLY]
    if device == "cuda":
        raise ConfigError(
            f'[detector] device = "cuda": onnxruntime {ort.__version__} has no CUDA execution provider (it has '
            f"{', '.join(available)}); install onnxruntime-gpu (the 'gpu' extra) or use device = \"cpu\""
        )
    return list(CPU_ONLY)


def use_device(device: str) -> list[str]:
    """Choose where this process's ONNX sessions run (a worker calls it once, before opening models).

    Returns:
        The execution providers every later :func:`session_providers` call gives.

    Raises:
        ConfigError: as :func:`execution_providers`.
    """
    global _providers
    _providers = execution_providers(device)
    return list(_providers)


def session_providers() -> list[str]:
    """The execution providers chosen by :func:`use_device` (CPU until then)."""
    return list(_providers)


def open_onnx_session(path: str | Path, threads: int = 1, optimize: bool = True) -> Any:
    """Open an ONNX file with onnxruntime on CPU, one line of error on failure.

    Args:
        path: the ``.onnx`` file.
        threads: intra-op threads (1 when several workers share the CPU).
        optimize: full graph optimisation (False for a quick look at the inputs and outputs).

    Returns:
        The ``onnxruntime.InferenceSession``.

    Raises:
        ConfigError: missing, unreadable, or not an ONNX model onnxruntime can load.
    """
    import onnxruntime as ort

    path = Path(path)
    _require_file(path)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(threads)
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    level = ort.GraphOptimizationLevel
    opts.graph_optimization_level = level.ORT_ENABLE_ALL if optimize else level.ORT_DISABLE_ALL
    opts.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), opts, providers=session_providers())
    except ort_load_errors() as exc:
        raise ConfigError(f"{path}: not a loadable ONNX model ({type(exc).__name__})") from None


def _dims(shape: Any) -> tuple[Dim, ...]:
    return tuple(d if isinstance(d, int) else (str(d) if d is not None else None) for d in shape)


def _fmt(shape: tuple[Dim, ...]) -> str:
    return "(" + ", ".join(str(d) if isinstance(d, int) else "?" for d in shape) + ")"


def _is(dim: Dim, value: int) -> bool:
    """True when ``dim`` is ``value`` or dynamic (not contradicted by the graph)."""
    return not isinstance(dim, int) or dim == value


def onnx_layout(kind: str, path: str | Path, session: Any) -> ModelFile:
    """Check an open ONNX session against the layout of ``kind`` and name its tensors.

    Args:
        kind: ``"yolo-pose"``, ``"rtmo"`` or ``"rtmpose"``.
        path: the file (for messages).
        session: ``onnxruntime.InferenceSession`` of ``path``.

    Returns:
        The :class:`ModelFile`.

    Raises:
        ConfigError: the inputs or outputs are not those of ``kind`` (the message states both).
    """
    path = Path(path)
    ins, outs = session.get_inputs(), session.get_outputs()
    in_shapes = [_dims(i.shape) for i in ins]
    out_shapes = [_dims(o.shape) for o in outs]
    found = f"inputs {[_fmt(s) for s in in_shapes]}, outputs {[_fmt(s) for s in out_shapes]}"
    image_ok = len(ins) == 1 and len(in_shapes[0]) == 4 and _is(in_shapes[0][1], 3)
    if kind == "yolo-pose":
        ok = image_ok and len(outs) == 1 and len(out_shapes[0]) == 3 and out_shapes[0][1] == 5 + 3 * N_KPT
        order = [0] if ok else []
        expected = f"input (1, 3, H, W) and one output (1, {5 + 3 * N_KPT}, N) (COCO-17 YOLO-pose)"
    elif kind == "rtmo":
        by_rank = {len(s): i for i, s in enumerate(out_shapes)}
        i_det, i_kpt = by_rank.get(3), by_rank.get(4)
        ok = (
            image_ok and len(outs) == 2 and i_det is not None and i_kpt is not None
            and out_shapes[i_det][2] == 5 and tuple(out_shapes[i_kpt][2:]) == (N_KPT, 3)
        )  # fmt: skip
        order = [i_det, i_kpt] if ok else []
        expected = f"input (1, 3, H, W), outputs dets (1, N, 5) and keypoints (1, N, {N_KPT}, 3) (RTMO)"
    elif kind == "rtmpose":
        names = [o.name for o in outs]
        order = [names.index("simcc_x"), names.index("simcc_y")] if {"simcc_x", "simcc_y"} <= set(names) else [0, 1]
        ok = image_ok and len(outs) == 2 and all(len(s) == 3 and s[1] == N_KPT for s in out_shapes)
        hw = in_shapes[0][2:4] if image_ok else (None, None)
        ok = ok and all(isinstance(d, int) for d in hw)
        if ok:
            (wx, wy) = (out_shapes[order[0]][2], out_shapes[order[1]][2])
            ok = isinstance(wx, int) and isinstance(wy, int) and wx * hw[0] == wy * hw[1] and wx % hw[1] == 0
        expected = (
            f"input (B, 3, H, W) with static H, W, outputs simcc_x (B, {N_KPT}, W*s) and simcc_y (B, {N_KPT}, H*s)"
        )
    else:
        raise ConfigError(f"unknown ONNX model kind {kind!r}; valid: yolo-pose, rtmo, rtmpose")
    if not ok:
        raise ConfigError(f"{path}: not a {kind} model; expected {expected}; found {found}")
    return ModelFile(
        kind=kind,
        path=path,
        input_name=ins[0].name,
        input_shape=in_shapes[0],
        output_names=tuple(outs[i].name for i in order),
        output_shapes=tuple(out_shapes[i] for i in order),
    )


def _check_pt(path: Path) -> ModelFile:
    if not zipfile.is_zipfile(path):
        raise ConfigError(f"{path}: not a PyTorch checkpoint (expected a zip archive from torch.save / Ultralytics)")
    return ModelFile("yolo-pose", path, "", (), (), ())


def _check_tflite(path: Path) -> ModelFile:
    with path.open("rb") as f:
        head = f.read(8)
    if head[4:8] != b"TFL3":
        raise ConfigError(f"{path}: not a TFLite model (no TFL3 identifier); expected MoveNet MultiPose .tflite")
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        raise ConfigError(f"{path}: running MoveNet needs ai-edge-litert ({MOVENET_HINT})") from None
    try:
        interp = Interpreter(model_path=str(path), num_threads=1)
    except (ValueError, RuntimeError) as exc:
        raise ConfigError(f"{path}: cannot load TFLite model ({type(exc).__name__})") from None
    ins, outs = interp.get_input_details(), interp.get_output_details()
    in_shape = tuple(int(d) for d in ins[0]["shape_signature"]) if len(ins) == 1 else ()
    out_shape = tuple(int(d) for d in outs[0]["shape"]) if len(outs) == 1 else ()
    if len(in_shape) != 4 or in_shape[3] != 3 or len(out_shape) != 3 or out_shape[2] != 56:
        raise ConfigError(
            f"{path}: not a MoveNet MultiPose model; expected input (1, H, W, 3) and output (1, 6, 56); "
            f"found {len(ins)} input(s) {in_shape} and {len(outs)} output(s) {out_shape}"
        )
    dims: tuple[Dim, ...] = tuple(d if d > 0 else None for d in in_shape)
    return ModelFile("movenet", path, str(ins[0]["name"]), dims, (str(outs[0]["name"]),), (out_shape,))


def check_model_file(kind: str, path: str | Path) -> ModelFile:
    """Check that ``path`` is a model file of family ``kind`` before anything starts.

    Args:
        kind: one of :data:`MODEL_KINDS`. ``"yolo-pose"`` accepts an ``.onnx`` export or a ``.pt``
            checkpoint (checked to be a torch zip archive; its layout is checked after export).
        path: the model file.

    Returns:
        The :class:`ModelFile` (tensor names in decoder order, input shape).

    Raises:
        ConfigError: unknown kind, missing or unreadable file, wrong format or wrong layout; one
            line naming the file and what was expected.

    Example:
        >>> check_model_file("rtmo", "/nonexistent/rtmo-s.onnx")
        Traceback (most recent call last):
        ...
        core.errors.ConfigError: /nonexistent/rtmo-s.onnx: model file not found
    """
    if kind not in MODEL_KINDS:
        raise ConfigError(f"unknown model kind {kind!r}; valid: {', '.join(MODEL_KINDS)}")
    path = Path(path).expanduser()
    _require_file(path)
    if kind == "movenet":
        return _check_tflite(path)
    if kind == "yolo-pose" and path.suffix.lower() == ".pt":
        return _check_pt(path)
    session = open_onnx_session(path, threads=1, optimize=False)
    info = onnx_layout(kind, path, session)
    log.debug("%s model %s: input %s %s, outputs %s", kind, path, info.input_name, info.input_shape, info.output_names)
    return info
