"""The ``[detector]`` section: the 2D pose model each worker runs, its input geometry and options."""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import ConfigError

DEVICES: tuple[str, ...] = ("cpu", "cuda", "auto")
"""Where the detectors' ONNX models may run (``[detector] device``)."""


@dataclass(frozen=True, slots=True)
class DetectorConfig:
    """2D detector run by each worker.

    The network input follows each camera's frames: its long side is ``input_long_px`` along the
    frame's long side, and its short side the frame's short side scaled alike, rounded up to a
    multiple of the model stride (32). A 1920x1080 landscape frame gets 640 x 384 (width x height), a
    1088x1920 portrait frame 384 x 640: the same effective resolution either way
    (:func:`capture.detect.letterbox.input_hw_for_frame`). ``input_h`` and ``input_w`` both set (non-zero)
    fix the input for every camera instead (older configs; a portrait input applied to landscape
    frames leaves them a third of the pixels).

    Attributes:
        name: registered detector name (``mvcap`` lists them); ``"file"`` replays detections.
        input_long_px: network input's long side, pixels (a multiple of 32).
        input_h: fixed network input height, pixels (a multiple of 32); 0 follows the frame.
        input_w: fixed network input width, pixels (a multiple of 32); 0 follows the frame.
        score_threshold: minimum person score in [0, 1].
        threads: onnxruntime intra-op threads per worker.
        model: a model file of the user's, for the detectors that run one (``yolo-pose``: an
            Ultralytics ``.onnx`` or ``.pt``; ``rtmo``, ``rtmpose``: MMPose/rtmlib ONNX exports;
            ``movenet``: a ``.tflite``, default the pinned MoveNet MultiPose); checked before any
            worker starts. Empty: none.
        box_detector: ``rtmpose`` only: the registry name of the detector whose person boxes it
            refines (top-down).
        reid: each worker computes a re-ID appearance descriptor per detection
            (:mod:`capture.detect.reid`) and sends it with the detections.
        rois: 3D-guided regions of interest: the node sends each worker the predicted boxes of its
            tracked people (``[node] feedback_endpoint``) and the worker detects on crops around them
            (:mod:`capture.detect.crops`), with a full-frame pass when the node asks for one, without
            a hint, and every ``roi_full_every`` frames. ``yolo11n-pose``, ``yolo-pose`` and ``rtmo``.
        roi_full_every: a full-frame pass at least every this many frames (>= 1; 1: always full).
        roi_lag_frames: offline runs detect frame f with the hint of node frame f - this (>= 1), so
            workers and node overlap and the output does not depend on the machine's load.
        roi_input_h: crop network input height, pixels (a multiple of 32).
        roi_input_w: crop network input width, pixels (a multiple of 32).
        refine: a second, top-down pass on each person's box cut from the full-resolution frame
            (:mod:`capture.detect.refine`): ``""`` off, ``"yolo"`` (YOLO11n-pose at the crop input),
            ``"rtmpose"`` (the RTMPose ONNX file of ``model``); its keypoints are fused with the first pass's.
        refine_input_h: refinement network input height, pixels (a multiple of 32; ``"yolo"``).
        refine_input_w: refinement network input width, pixels (a multiple of 32; ``"yolo"``).
        refine_flip: the refinement also runs on the mirrored crop and averages (flip test-time
            augmentation; twice the refinement's cost).
        refine_fuse: per joint, ``"average"`` (the more confident estimate, or where both are
            confident and close, their confidence-weighted mean) or ``"replace"`` (the more confident).
        device: where the ONNX models run: ``"cpu"`` (default, the tested path), ``"cuda"``
            (onnxruntime's CUDA execution provider; an error before any worker starts when the
            installed onnxruntime has none: the ``gpu`` extra) or ``"auto"`` (CUDA when present).
            MoveNet (LiteRT) always runs on the CPU.

    Raises:
        ConfigError: a size that is not a positive multiple of 32, or only one of input_h, input_w;
            roi_full_every or roi_lag_frames below 1; an unknown refine, refine_fuse or device.
    """

    name: str = "yolo11n-pose"
    input_long_px: int = 640
    input_h: int = 0
    input_w: int = 0
    score_threshold: float = 0.5
    threads: int = 1
    model: str = ""
    box_detector: str = "yolo11n-pose"
    reid: bool = True
    rois: bool = False
    roi_full_every: int = 30
    roi_lag_frames: int = 2
    roi_input_h: int = 256
    roi_input_w: int = 160
    refine: str = ""
    refine_input_h: int = 256
    refine_input_w: int = 192
    refine_flip: bool = False
    refine_fuse: str = "average"
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.device not in DEVICES:
            raise ConfigError(f"detector.device must be one of {DEVICES}; got {self.device!r}")
        if self.refine not in ("", "yolo", "rtmpose") or self.refine_fuse not in ("average", "replace"):
            raise ConfigError(
                f'detector.refine must be "", "yolo" or "rtmpose" and refine_fuse "average" or "replace"; got '
                f"{self.refine!r}, {self.refine_fuse!r}"
            )
        if min(self.refine_input_h, self.refine_input_w) <= 0 or self.refine_input_h % 32 or self.refine_input_w % 32:
            raise ConfigError(
                f"detector.refine_input_h and refine_input_w must be positive multiples of 32; got "
                f"{self.refine_input_h}, {self.refine_input_w}"
            )
        if self.roi_full_every < 1 or self.roi_lag_frames < 1:
            raise ConfigError(
                f"detector.roi_full_every and roi_lag_frames must be >= 1; got {self.roi_full_every}, "
                f"{self.roi_lag_frames}"
            )
        if min(self.roi_input_h, self.roi_input_w) <= 0 or self.roi_input_h % 32 or self.roi_input_w % 32:
            raise ConfigError(
                f"detector.roi_input_h and roi_input_w must be positive multiples of 32; got {self.roi_input_h}, "
                f"{self.roi_input_w}"
            )
        if self.input_long_px <= 0 or self.input_long_px % 32:
            raise ConfigError(f"detector.input_long_px must be a positive multiple of 32; got {self.input_long_px}")
        if (self.input_h == 0) != (self.input_w == 0):
            raise ConfigError(
                f"detector: set both input_h and input_w (a fixed input) or neither; got {self.input_h}, {self.input_w}"
            )
        if self.input_h and (self.input_h < 0 or self.input_w < 0 or self.input_h % 32 or self.input_w % 32):
            raise ConfigError(
                f"detector.input_h and input_w must be positive multiples of 32; got {self.input_h}, {self.input_w}"
            )

    @property
    def fixed_input_hw(self) -> tuple[int, int] | None:
        """(height, width) of a fixed network input, pixels, or None when the input follows the frame."""
        return (self.input_h, self.input_w) if self.input_h else None
