"""RTMPose (top-down, SimCC head) ONNX models on person boxes from a first-pass detector.

RTMPose (Jiang et al. 2023, "RTMPose: Real-Time Multi-Person Pose Estimation based on MMPose";
code Apache-2.0, weights per model card) refines each person box: the box is padded by 1.25,
grown to the model's aspect, cut out with an affine warp, normalised with ImageNet mean/std in RGB
(MMPose's ``PoseDataPreprocessor``, ``bgr_to_rgb=True``), and the two SimCC outputs are decoded by
argmax (:mod:`capture.detect.simcc`). The ONNX file is MMDeploy's export (input ``input``
(B, 3, H, W), outputs ``simcc_x`` (B, 17, W * 2) and ``simcc_y`` (B, 17, H * 2)), as in rtmlib's
model zoo; the split ratio is read from the output sizes.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Final

import numpy as np

from capture.detect.detector import Detector, check_image_bgr
from capture.detect.model_files import onnx_layout, open_onnx_session
from capture.detect.simcc import box_center_scale, crop_affine, crop_to_image, decode_simcc, warp_crops
from core.skeleton import COCO17, Skeleton

__all__ = ["RtmPoseOnnx"]

log = logging.getLogger(__name__)

IMAGENET_MEAN_RGB: Final = (123.675, 116.28, 103.53)
IMAGENET_STD_RGB: Final = (58.395, 57.12, 57.375)


class RtmPoseOnnx:
    """RTMPose on onnxruntime (CPU), keypoints refined in each box of a first-pass detector.

    Args:
        model_path: MMDeploy/rtmlib RTMPose ``.onnx`` (COCO-17, e.g. ``rtmpose-m ... 256x192``).
        box_source: detector giving the person boxes (e.g. the default YOLO11n-pose); its boxes and
            scores are returned unchanged, its keypoints replaced. None: :meth:`detect` is unusable,
            call :meth:`refine` with your own boxes.
        padding: box padding factor before the aspect fix (MMPose: 1.25).
        mean: per-channel mean subtracted, in the channel order fed to the model.
        std: per-channel std divided by.
        bgr_to_rgb: feed RGB (MMPose's training convention); False feeds BGR as rtmlib does.
        threads: onnxruntime intra-op threads.

    Raises:
        ConfigError: the file is missing, not ONNX, or not an RTMPose SimCC graph.

    Example:
        >>> det = RtmPoseOnnx("rtmpose-m.onnx", box_source=make_detector("yolo11n-pose"))  # doctest: +SKIP
        >>> poses, boxes = det.detect(frame_bgr)  # doctest: +SKIP
    """

    skeleton: Skeleton = COCO17

    def __init__(
        self,
        model_path: str | Path,
        box_source: Detector | None,
        padding: float = 1.25,
        mean: tuple[float, float, float] = IMAGENET_MEAN_RGB,
        std: tuple[float, float, float] = IMAGENET_STD_RGB,
        bgr_to_rgb: bool = True,
        threads: int = 1,
    ) -> None:
        path = Path(model_path).expanduser()
        self._session = open_onnx_session(path, threads=threads)
        self.info = onnx_layout("rtmpose", path, self._session)
        h_in, w_in = self.info.input_shape[2:4]
        self.input_wh: tuple[int, int] = (int(w_in), int(h_in))
        self.split_ratio = float(self.info.output_shapes[0][2]) / self.input_wh[0]
        batch = self.info.input_shape[0]
        self._max_batch = batch if isinstance(batch, int) else 0  # 0: any
        self.box_source = box_source
        self.padding = float(padding)
        self._mean = np.asarray(mean, np.float32)
        self._inv_std = 1.0 / np.asarray(std, np.float32)
        self.bgr_to_rgb = bool(bgr_to_rgb)
        log.info("RTMPose ONNX %s: input %s, split ratio %.1f", path.name, self.input_wh, self.split_ratio)

    def _blob(self, crops: np.ndarray) -> np.ndarray:
        x = crops[..., ::-1] if self.bgr_to_rgb else crops
        x = (x.astype(np.float32) - self._mean) * self._inv_std
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))

    def refine(self, image_bgr: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """Keypoints of the person in each box.

        Args:
            image_bgr: (H, W, 3) uint8 BGR image.
            boxes: (P, 4+) [x1, y1, x2, y2, ...] image pixels.

        Returns:
            (P, 17, 3) float32 [u_px, v_px, conf], image pixels clipped to [0, W] x [0, H]; conf is
            the SimCC maximum clipped to [0, 1], and a joint with conf 0 has u = v = 0.

        Raises:
            ShapeError: bad image or boxes.
        """
        check_image_bgr(image_bgr)
        center, scale = box_center_scale(boxes, self.input_wh, self.padding)
        n = center.shape[0]
        if n == 0:
            return np.zeros((0, COCO17.n_joints, 3), np.float32)
        crops = warp_crops(image_bgr, crop_affine(center, scale, self.input_wh), self.input_wh)
        blob = self._blob(crops)
        step = self._max_batch or n
        sx, sy = [], []
        for i in range(0, n, step):
            out_x, out_y = self._session.run(list(self.info.output_names), {self.info.input_name: blob[i : i + step]})
            sx.append(out_x)
            sy.append(out_y)
        locs, scores = decode_simcc(np.concatenate(sx), np.concatenate(sy), self.split_ratio)
        uv = crop_to_image(locs, center, scale, self.input_wh)
        h, w = image_bgr.shape[:2]
        uv[..., 0] = np.clip(uv[..., 0], 0, w)
        uv[..., 1] = np.clip(uv[..., 1], 0, h)
        uv[scores <= 0] = 0.0
        return np.concatenate([uv, scores[..., None]], axis=-1).astype(np.float32)

    def detect(self, image_bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Boxes from ``box_source``, keypoints from RTMPose in each.

        Args:
            image_bgr: (H, W, 3) uint8 BGR image.

        Returns:
            poses: (P, 17, 3) float32 [u_px, v_px, conf], COCO-17, image pixels.
            boxes: (P, 5) float32 [x1, y1, x2, y2, score], the box source's, same order.

        Raises:
            ShapeError: bad image.
            TypeError: built without a box source.
        """
        if self.box_source is None:
            raise TypeError("RtmPoseOnnx.detect needs a box_source; call refine(image, boxes) instead")
        _, boxes = self.box_source.detect(image_bgr)
        return self.refine(image_bgr, boxes), np.asarray(boxes, np.float32).reshape(-1, 5)
