"""RTMO (one-stage, bottom-up multi-person pose) ONNX models on onnxruntime.

RTMO (Lu et al. 2024, "RTMO: Towards High-Performance One-Stage Real-Time Multi-Person Pose
Estimation", CVPR; MMPose code Apache-2.0, weights per model card) is exported by MMDeploy with
its post-processing inside the graph: input ``input`` (1, 3, H, W) float32 BGR in 0..255 (the
model's data preprocessor has mean 0, std 1, no channel swap), outputs ``dets`` (1, N, 5) =
x1, y1, x2, y2, score and ``keypoints`` (1, N, 17, 3) = x, y, visibility, in input pixels. The image
is resized by one ratio and placed at the top-left of a grey (114) canvas, as rtmlib's ``RTMO``
does; decoding thresholds the scores, runs NMS again (as rtmlib) and divides by the ratio.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Final

import cv2
import numpy as np

from capture.detect.detector import check_image_bgr
from capture.detect.model_files import onnx_layout, open_onnx_session
from core.errors import ConfigError, ShapeError
from core.skeleton import COCO17, Skeleton

__all__ = ["RtmoOnnx", "decode_rtmo", "pad_top_left"]

log = logging.getLogger(__name__)

PAD_VALUE: Final = 114
N_KPT: Final = 17
DEFAULT_INPUT_HW: Final = (640, 640)


def pad_top_left(image: np.ndarray, input_hw: tuple[int, int]) -> tuple[np.ndarray, float]:
    """Resize by one ratio to fit ``input_hw`` and place at the top-left of a grey canvas (rtmlib/YOLOX).

    Convention: an image pixel u maps to ``u * ratio`` in the input (no offset).

    Args:
        image: (H, W, 3) uint8 image.
        input_hw: network input (height, width), pixels.

    Returns:
        padded: (h_in, w_in, 3) uint8.
        ratio: min(h_in / H, w_in / W); the resized image is (int(H * ratio), int(W * ratio)).

    Example:
        >>> out, r = pad_top_left(np.zeros((1080, 1920, 3), np.uint8), (640, 640))
        >>> out.shape, r, int((out[:, :, 0] == 0).sum() / 640)
        ((640, 640, 3), 0.3333333333333333, 360)
    """
    h, w = image.shape[:2]
    h_in, w_in = input_hw
    ratio = min(h_in / h, w_in / w)
    new_w, new_h = max(int(w * ratio), 1), max(int(h * ratio), 1)
    out = np.full((h_in, w_in, 3), PAD_VALUE, np.uint8)
    resized = image if (new_w, new_h) == (w, h) else cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    out[:new_h, :new_w] = resized
    return out, ratio


def decode_rtmo(
    dets: np.ndarray,
    keypoints: np.ndarray,
    ratio: float,
    image_wh: tuple[int, int],
    score_threshold: float = 0.7,
    iou_threshold: float = 0.45,
) -> tuple[np.ndarray, np.ndarray]:
    """Threshold, suppress and rescale RTMO's outputs to image pixels.

    Args:
        dets: (1, N, 5) float32 [x1, y1, x2, y2, score], input pixels.
        keypoints: (1, N, 17, 3) float32 [x, y, visibility], input pixels.
        ratio: of :func:`pad_top_left`.
        image_wh: original (width, height), pixels; coordinates are clipped to [0, W] x [0, H].
        score_threshold: keep people with score > this (rtmlib: 0.7).
        iou_threshold: NMS IoU (rtmlib: 0.45; ``cv2.dnn.NMSBoxes``).

    Returns:
        poses: (P, 17, 3) float32 [u_px, v_px, conf], conf clipped to [0, 1].
        boxes: (P, 5) float32 [x1, y1, x2, y2, score], by descending score.

    Raises:
        ShapeError: the outputs do not have these shapes or disagree on N.
    """
    if dets.ndim != 3 or dets.shape[0] != 1 or dets.shape[2] != 5:
        raise ShapeError(f"RTMO dets must be (1, N, 5); got {dets.shape}")
    if keypoints.shape != (1, dets.shape[1], N_KPT, 3):
        raise ShapeError(f"RTMO keypoints must be (1, {dets.shape[1]}, {N_KPT}, 3); got {keypoints.shape}")
    d = dets[0].astype(np.float64)
    k = keypoints[0].astype(np.float64)
    keep = d[:, 4] > score_threshold
    d, k = d[keep], k[keep]
    if d.shape[0] == 0:
        return np.zeros((0, N_KPT, 3), np.float32), np.zeros((0, 5), np.float32)
    xywh = np.column_stack([d[:, :2], d[:, 2:4] - d[:, :2]])
    idx = np.asarray(cv2.dnn.NMSBoxes(xywh, d[:, 4], float(score_threshold), float(iou_threshold)), np.int64).reshape(
        -1
    )
    idx = idx[np.argsort(-d[idx, 4], kind="stable")]
    d, k = d[idx], k[idx]
    w, h = image_wh
    d[:, 0:4:2] = np.clip(d[:, 0:4:2] / ratio, 0, w)
    d[:, 1:4:2] = np.clip(d[:, 1:4:2] / ratio, 0, h)
    k[..., 0] = np.clip(k[..., 0] / ratio, 0, w)
    k[..., 1] = np.clip(k[..., 1] / ratio, 0, h)
    k[..., 2] = np.clip(k[..., 2], 0, 1)
    k[k[..., 2] <= 0, :2] = 0.0
    return k.astype(np.float32), d.astype(np.float32)


class RtmoOnnx:
    """RTMO exported by MMDeploy (or from rtmlib's model zoo), run with onnxruntime on CPU.

    Args:
        model_path: the ``.onnx`` file (e.g. ``rtmo-s_8xb32-600e_body7-640x640``; COCO-17).
        input_hw: network input (height, width), pixels; default the graph's static size, else
            (640, 640). A static graph accepts only its own size.
        score_threshold: minimum person score (exclusive).
        iou_threshold: NMS IoU.
        threads: onnxruntime intra-op threads.

    Raises:
        ConfigError: the file is missing, not ONNX or not an RTMO graph, or ``input_hw`` differs
            from a static input.
    """

    skeleton: Skeleton = COCO17

    def __init__(
        self,
        model_path: str | Path,
        input_hw: tuple[int, int] | None = None,
        score_threshold: float = 0.7,
        iou_threshold: float = 0.45,
        threads: int = 1,
    ) -> None:
        path = Path(model_path).expanduser()
        self._session = open_onnx_session(path, threads=threads)
        self.info = onnx_layout("rtmo", path, self._session)
        static = self.info.static_input_hw
        hw = tuple(int(v) for v in input_hw) if input_hw is not None else (static or DEFAULT_INPUT_HW)
        if static is not None and hw != static:
            raise ConfigError(f"{path}: input_hw {hw} differs from the model's static input {static}")
        self.input_hw: tuple[int, int] = (hw[0], hw[1])
        self.score_threshold = float(score_threshold)
        self.iou_threshold = float(iou_threshold)
        log.info("RTMO ONNX %s: input %s, outputs %s", path.name, self.input_hw, self.info.output_names)

    def detect(self, image_bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Detect people in one BGR image.

        Args:
            image_bgr: (H, W, 3) uint8 BGR image.

        Returns:
            poses: (P, 17, 3) float32 [u_px, v_px, conf], COCO-17, image pixels.
            boxes: (P, 5) float32 [x1, y1, x2, y2, score], image pixels, by descending score.

        Raises:
            ShapeError: bad image.
        """
        check_image_bgr(image_bgr)
        padded, ratio = pad_top_left(image_bgr, self.input_hw)
        blob = np.ascontiguousarray(padded.transpose(2, 0, 1)[None], dtype=np.float32)
        dets, kpts = self._session.run(list(self.info.output_names), {self.info.input_name: blob})
        h, w = image_bgr.shape[:2]
        return decode_rtmo(dets, kpts, ratio, (w, h), self.score_threshold, self.iou_threshold)
