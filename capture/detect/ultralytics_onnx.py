"""Any Ultralytics YOLO pose model the user supplies (``.onnx``, or ``.pt`` exported once), on onnxruntime.

A thin layer on :class:`capture.detect.yolo_pose.YoloPoseOnnx` (same letterbox, decoding and NMS): it checks
the file (:func:`capture.detect.model_files.check_model_file`), exports a ``.pt`` checkpoint to a
static ONNX graph once per input size (subprocess ``capture/detect/export_yolo.py``, so torch is never
loaded in the caller) and caches the export under ``<cache>/supplied/``, keyed by the checkpoint's
content hash. Models: YOLOv8/YOLO11 pose (Jocher et al., Ultralytics, 2023-2024), COCO-17 keypoints;
licence AGPL-3.0 (code and weights) unless the user holds an Ultralytics Enterprise licence.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Final

from capture.assets import cache_dir, sha256_file
from capture.detect.model_files import check_model_file
from capture.detect.yolo_pose import YoloPoseOnnx
from core.errors import ConfigError

__all__ = ["make_supplied_yolo_pose", "supplied_yolo_onnx"]

log = logging.getLogger(__name__)

DEFAULT_INPUT_HW: Final = (640, 640)
_EXIT_NO_ULTRALYTICS: Final = 3  # capture/detect/export_yolo.py's exit status when ultralytics is missing
_EXPORT_HINT: Final = "pip install -e '.[export]'"


def _check_hw(input_hw: tuple[int, int]) -> tuple[int, int]:
    h, w = (int(v) for v in input_hw)
    if h <= 0 or w <= 0 or h % 32 or w % 32:
        raise ConfigError(f"input_hw must be positive multiples of 32 (height, width); got {tuple(input_hw)}")
    return h, w


def supplied_yolo_onnx(
    model_path: str | Path, input_hw: tuple[int, int] = DEFAULT_INPUT_HW, python: str | None = None
) -> Path:
    """Return an ONNX file for a user-supplied YOLO pose model, exporting a ``.pt`` once per input size.

    Args:
        model_path: ``.onnx`` (returned as is after the check) or ``.pt`` Ultralytics checkpoint.
        input_hw: network input (height, width), pixels, multiples of 32; used for a ``.pt`` only
            (the export is static).
        python: interpreter with ultralytics for the export; default ``$MVCAP_EXPORT_PYTHON`` or this one.

    Returns:
        The ``.onnx`` path: ``model_path`` itself, or
        ``<cache>/supplied/<stem>-<sha256[:16]>_<h>x<w>.onnx``.

    Raises:
        ConfigError: missing or wrong file, bad ``input_hw``, ultralytics missing for a ``.pt``, the
            export failed, or the export is not a COCO-17 pose graph.
    """
    path = Path(model_path).expanduser()
    info = check_model_file("yolo-pose", path)
    if path.suffix.lower() != ".pt":
        return info.path
    h, w = _check_hw(input_hw)
    out = cache_dir() / "supplied" / f"{path.stem}-{sha256_file(path)[:16]}_{h}x{w}.onnx"
    if not out.is_file():
        _export(path, out, (h, w), python)
    check_model_file("yolo-pose", out)
    return out


def _export(pt: Path, out: Path, input_hw: tuple[int, int], python: str | None) -> None:
    python = python or os.environ.get("MVCAP_EXPORT_PYTHON") or sys.executable
    env = dict(os.environ)
    env.update(
        YOLO_OFFLINE="1",  # no online checks, hence no telemetry
        YOLO_AUTOINSTALL="false",  # never pip-install behind the user's back
        YOLO_CONFIG_DIR=str(cache_dir() / "ultralytics-config"),
        YOLO_VERBOSE="false",
    )
    script = Path(__file__).resolve().with_name("export_yolo.py")
    log.info("exporting %s to %s with %s (once)", pt, out, python)
    proc = subprocess.run(
        [python, str(script), str(pt), str(out), str(input_hw[0]), str(input_hw[1])],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if proc.returncode == _EXIT_NO_ULTRALYTICS:
        raise ConfigError(
            f"{pt}: exporting a .pt checkpoint needs ultralytics in {python} ({_EXPORT_HINT}), or supply the .onnx"
        )
    if proc.returncode != 0 or not out.is_file():
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise ConfigError(f"{pt}: ONNX export failed (exit {proc.returncode}): {last}")


def make_supplied_yolo_pose(
    model_path: str | Path,
    input_hw: tuple[int, int] | None = None,
    score_threshold: float = 0.5,
    iou_threshold: float = 0.6,
    threads: int = 1,
) -> YoloPoseOnnx:
    """Build the detector for a user-supplied Ultralytics YOLO pose model.

    Args:
        model_path: ``.onnx`` export or ``.pt`` checkpoint of a COCO-17 YOLO pose model.
        input_hw: network input (height, width), pixels. Default: the graph's static input for an
            ``.onnx``; (640, 640) for a ``.pt`` or a dynamic-input ``.onnx``. A static ``.onnx``
            accepts only its own size.
        score_threshold: minimum person score (exclusive).
        iou_threshold: NMS IoU threshold.
        threads: onnxruntime intra-op threads.

    Returns:
        A :class:`capture.detect.yolo_pose.YoloPoseOnnx` detector: ``detect(image_bgr)`` gives poses
        (P, 17, 3) float32 [u_px, v_px, conf] and boxes (P, 5) float32, image pixels.

    Raises:
        ConfigError: the file is missing or wrong, ``input_hw`` differs from a static graph's, or
            the export failed.
    """
    path = Path(model_path).expanduser()
    if path.suffix.lower() == ".pt":
        hw = _check_hw(input_hw or DEFAULT_INPUT_HW)
        onnx_path = supplied_yolo_onnx(path, hw)
    else:
        info = check_model_file("yolo-pose", path)
        static = info.static_input_hw
        hw = static if input_hw is None and static else _check_hw(input_hw or DEFAULT_INPUT_HW)
        if static is not None and hw != static:
            raise ConfigError(f"{path}: input_hw {hw} differs from the model's static input {static}")
        onnx_path = info.path
    return YoloPoseOnnx(
        onnx_path, input_hw=hw, score_threshold=score_threshold, iou_threshold=iou_threshold, threads=threads
    )
