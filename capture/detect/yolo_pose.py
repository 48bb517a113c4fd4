"""YOLO11n-pose on onnxruntime: the default detector, without torch at run time.

Runs the ONNX export of YOLO11n-pose (Jocher et al., Ultralytics YOLO11, 2024; AGPL-3.0 weights)
with onnxruntime and re-implements Ultralytics' pre- and post-processing (letterbox, box decoding,
NMS, coordinate rescaling) in numpy/OpenCV, so neither torch nor torchvision is needed at run time.
Keypoints follow COCO-17 (Lin et al. 2014). Supplied Ultralytics exports run through the same class
(:mod:`capture.detect.ultralytics_onnx`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Final

import cv2
import numpy as np

from capture.detect.detector import check_image_bgr
from capture.detect.letterbox import letterbox
from capture.detect.model_files import ort_load_errors, session_providers
from core.errors import ConfigError, InputError, ShapeError
from core.skeleton import COCO17, Skeleton

__all__ = ["N_KPT", "YoloPoseOnnx", "decode_yolo_pose"]

log = logging.getLogger(__name__)

N_KPT: Final = 17


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
            self._session = ort.InferenceSession(str(path), opts, providers=session_providers())
        except ort_load_errors() as exc:
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
