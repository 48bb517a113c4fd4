"""One camera's frames to the detections its worker sends: source, detector, pixel mapping, re-ID, depth.

The stage a worker runs for every frame, apart from the messaging (:mod:`capture.service.worker`):

1. the source is opened (video, image folder or stills, webcam; or a detections file, replayed);
2. the detector chosen by name (:func:`capture.detect.registry.make_detector`) runs with a network input
   that follows the frame (``[detector] input_long_px``), or the supplied model's static input;
3. detections are mapped to calibration pixels when the frames differ in size from the
   calibration (``[[cameras]] image_map``, :func:`capture.sources.image_map.map_detections`);
4. with ``[detector] reid``, each detection gets a keypoint-placed part colour descriptor
   (:func:`capture.detect.reid.part_histograms`, computed on the frame's own pixels, before the
   mapping), sent in the ``embeddings`` field so the node can use appearance without images;
5. an RGB-D camera lifts the joints to 3D with its depth image (:class:`capture.sources.depth.DepthLifter`).

With ``[detector] refine``, a second, top-down pass re-estimates each person's keypoints on a crop
of their box at full resolution (:mod:`capture.detect.refine`), right after step 2.

With ``[detector] rois`` the detector runs on crops around the boxes the node predicts for the
frame (:meth:`FrameDetector.set_hint`, :mod:`capture.detect.crops`) and on the full frame when the
hint asks for it (``full``: nobody tracked, the track set changed, someone may be entering), when
there is no hint (or it has no box), every ``roi_full_every`` frames, and when the crops would cost
as many network pixels as the full frame.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import numpy as np

from calibration.camera import Camera
from capture.sources.depth import DepthLifter
from capture.sources.image_map import map_detections, rotate_frame, rotated_size, unrotate_detections
from core.config import DetectorConfig, ImageMap, RGBDConfig
from core.types import Detections2D

__all__ = ["ROI_DETECTORS", "FrameDetector"]

log = logging.getLogger(__name__)

ROI_DETECTORS = ("yolo11n-pose",)
"""Detectors that can run on crops (a second session of the model at the crop input,
``[detector] roi_input_h, roi_input_w``, exported once per shape); the others ignore ``rois``."""


class FrameDetector:
    """Turns one camera's frames into the :class:`~core.types.Detections2D` its worker sends.

    Args:
        camera: camera name (as in the calibration).
        source: video file, image folder, webcam index, or a detections file (replayed as recorded).
        detector: detector settings (ignored when replaying a detections file).
        model_path: the detector's model file: for ``yolo11n-pose`` the export for the frames'
            input shape (None: exported on first use); for ``rtmpose`` its box detector's. The
            supplied models' files come from ``detector.model``.
        stills: the source is an image folder of independent moments.
        image_map: frames of another size than the calibration's image (None: same size).
        depth: an RGB-D camera's depth source; "" for none.
        camera_model: the calibrated camera (needed with ``depth``).
        rgbd: the ``[rgbd]`` lifting settings.
        pixel_noise_px: 2D joint noise at confidence 1, pixels, for the lifted joints' uncertainty.
        rotate: degrees (0, 90, 180, 270) each frame is turned clockwise before detection
            (``[[cameras]] rotate``); detections are turned back into the recorded frame's pixels.

    Attributes:
        input_hw: the network input (height, width), pixels, once opened (None when replaying).
        last_ms: CPU-independent wall times of the last frame's stages, milliseconds
            (``"detect"``, ``"refine"`` with the refinement pass, ``"reid"`` with descriptors).
        last_mode: how the last frame was detected: ``"full"``, ``"crops"`` or ``"replay"``.
        modes: frames detected per mode, and ``"crops_run"``: crops detected in all.
        lifter: the depth lifter of an RGB-D camera, None otherwise.
    """

    def __init__(
        self,
        camera: str,
        source: str,
        detector: DetectorConfig,
        model_path: str | None = None,
        *,
        stills: bool = False,
        image_map: ImageMap | None = None,
        depth: str = "",
        camera_model: Camera | None = None,
        rgbd: RGBDConfig | None = None,
        pixel_noise_px: float = 6.0,
        rotate: int = 0,
    ) -> None:
        self.camera = camera
        self.source = source
        self.cfg = detector
        self.model_path = model_path
        self.stills = stills
        self.image_map = image_map
        self.rotate = int(rotate)
        self._depth = (depth, camera_model, rgbd or RGBDConfig(), float(pixel_noise_px))
        self.input_hw: tuple[int, int] | None = None
        self.last_ms: dict[str, float] = {}
        self.last_mode = ""
        self.modes = {"full": 0, "crops": 0, "crops_run": 0}
        self.lifter: DepthLifter | None = None
        self._source = None
        self._detector = None
        self._describe = None
        self._crops = None  # CropDetector with [detector] rois
        self._hint = None  # capture.wire.RoiHint of the next frame
        self._since_full = 0  # frames detected on crops since the last full-frame pass
        self._refiner = None  # capture.detect.refine.CropRefiner with [detector] refine

    def open(self) -> Iterator[tuple[int, int, object]]:
        """Open the source (and model, and depth source).

        Returns:
            An iterator of ``(frame_idx, stamp_ns, payload)``: payload a BGR frame, or a recorded
            :class:`~core.types.Detections2D` when replaying a detections file.

        Raises:
            InputError: the source or the depth source cannot be opened.
            ConfigError: the detector or its model file is wrong.
        """
        depth, camera_model, rgbd, noise = self._depth
        if depth:
            self.lifter = DepthLifter(depth, camera_model, rgbd, noise)
        from capture.sources.detection_files import is_detection_file

        if is_detection_file(self.source):
            from capture.sources.detection_files import read_detections_json

            return ((d.frame_idx, d.stamp_ns, d) for d in read_detections_json(self.source))
        from capture.detect.letterbox import input_hw_for_frame
        from capture.detect.registry import make_detector
        from capture.sources.frames import open_source

        cfg = self.cfg
        from capture.detect.model_files import use_device

        providers = use_device(cfg.device)  # before any model session opens
        self._source = open_source(self.source, epoch_ns=0, stills=self.stills)
        seen_wh = rotated_size(self._source.size, self.rotate)  # the frame as the detector sees it
        self.input_hw = input_hw_for_frame(seen_wh, cfg.input_long_px, cfg.fixed_input_hw)
        supplied = cfg.name != "yolo11n-pose"
        extra = {"box_detector": cfg.box_detector, "box_model": self.model_path} if cfg.name == "rtmpose" else {}
        self._detector = make_detector(
            cfg.name,
            model_path=cfg.model or None if supplied else self.model_path,
            input_hw=self.input_hw,
            score_threshold=cfg.score_threshold,
            threads=cfg.threads,
            **extra,
        )
        if cfg.rois and cfg.name in ROI_DETECTORS:
            from capture.detect.crops import CropDetector
            from capture.detect.yolo_pose import YoloPoseOnnx

            crop_hw = (cfg.roi_input_h, cfg.roi_input_w)
            crop_net = make_detector(cfg.name, model_path=None, input_hw=crop_hw, score_threshold=cfg.score_threshold,
                                     threads=cfg.threads)  # fmt: skip
            if isinstance(crop_net, YoloPoseOnnx):  # static exports: crops are grid windows of the full pass's input
                full, full_hw = self._detector, tuple(self.input_hw)

                def make(hw: tuple[int, int]) -> object:  # the ladder's top is the full pass's shape: its model serves
                    if hw == full_hw:
                        return full
                    return make_detector(cfg.name, model_path=None, input_hw=hw, score_threshold=cfg.score_threshold,
                                         threads=cfg.threads)  # fmt: skip

                self._crops = CropDetector(crop_net, crop_hw, make=make, max_hw=self.input_hw)
            else:
                self._crops = CropDetector(crop_net, crop_hw)
        elif cfg.rois:
            log.warning("camera %s: detector %s cannot run on crops; [detector] rois ignored", self.camera, cfg.name)
        if cfg.refine:
            from capture.detect.refine import make_refiner

            self._refiner = make_refiner(cfg, threads=cfg.threads)
        if cfg.reid:
            from capture.detect.reid import part_histograms

            self._describe = part_histograms
        log.info("camera %s: %dx%d frames%s, detector %s, network input %dx%d (width x height)%s", self.camera,
                 *self._source.size, f" turned {self.rotate} deg clockwise" if self.rotate else "", cfg.name,
                 self.input_hw[1], self.input_hw[0], ", re-ID descriptors" if cfg.reid else "")  # fmt: skip
        log.info("camera %s: onnxruntime execution providers %s", self.camera, ", ".join(providers))
        return iter(self._source)

    @property
    def uses_rois(self) -> bool:
        """Whether detection runs on crops when given hints (``[detector] rois``, a detector that can; once opened)."""
        return self._crops is not None

    def set_hint(self, hint: object | None) -> None:
        """The regions of interest for the next :meth:`detect` (``[detector] rois``).

        Args:
            hint: a :class:`capture.wire.RoiHint` (boxes (K, 4) x0, y0, x1, y1 in the camera's
                calibration pixels, ``full``), or None: the next frame is detected in full.
        """
        self._hint = hint

    def _plan(self, frame_wh: tuple[int, int]) -> tuple[np.ndarray, tuple] | None:
        """The next frame's hint boxes (frame pixels) and crops (:meth:`CropDetector.plan`), or None for a full pass.

        With a ladder of shapes (YOLO11n-pose), each crop is a stride-aligned window of the full pass's
        network input (same sampling, same grid); a full pass is chosen when the crops would cost as
        much as it (network pixels plus :data:`~capture.detect.crops.CALL_PX` per model call).
        """
        hint, crops = self._hint, self._crops
        if crops is None or hint is None or hint.full or len(hint.boxes) == 0:
            return None
        if self._since_full + 1 >= self.cfg.roi_full_every:
            return None
        from capture.detect.crops import CALL_PX, boxes_to_detector_px

        recorded_wh = rotated_size(frame_wh, self.rotate)  # a quarter turn back is the same swap
        boxes = boxes_to_detector_px(hint.boxes, self.image_map, self.rotate, recorded_wh)
        boxes[:, 0::2] = boxes[:, 0::2].clip(0, frame_wh[0])
        boxes[:, 1::2] = boxes[:, 1::2].clip(0, frame_wh[1])
        boxes = boxes[(boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])]
        if len(boxes) == 0:
            return None
        plan = crops.plan(boxes, frame_wh)
        if (plan[2].prod(axis=1) + CALL_PX).sum() >= self.input_hw[0] * self.input_hw[1] + CALL_PX:
            return None  # the crops cost as much as the full frame
        return boxes, plan

    def _run_detector(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Full frame or crops, by the schedule; counts the mode."""
        planned = self._plan((image.shape[1], image.shape[0])) if self._crops is not None else None
        if planned is None:
            self.last_mode, self._since_full = "full", 0
            self.modes["full"] += 1
            return self._detector.detect(image)
        boxes, plan = planned
        self.last_mode, self._since_full = "crops", self._since_full + 1
        self.modes["crops"] += 1
        self.modes["crops_run"] += len(plan[0])
        return self._crops.detect(image, boxes, plan)

    def detect(self, frame_idx: int, stamp_ns: int, payload: object) -> Detections2D:
        """The detections of one frame (``payload`` from :meth:`open`), in calibration pixels.

        With ``[detector] rois``, on crops around the boxes of :meth:`set_hint`'s hint or on the
        full frame (see the module docstring); ``last_mode`` says which. With ``[detector] refine``,
        each person's keypoints are then refined on a crop of their box (:mod:`capture.detect.refine`);
        ``last_ms["detect"]`` includes it and ``last_ms["refine"]`` is its share.
        """
        if isinstance(payload, Detections2D):  # replayed: already in calibration pixels
            self.last_mode = "replay"
            dets = Detections2D(
                self.camera, frame_idx, stamp_ns, payload.poses, payload.boxes, embeddings=payload.embeddings
            )
        else:
            t0 = time.perf_counter()
            image = rotate_frame(payload, self.rotate)  # upright for the detector ([[cameras]] rotate)
            poses, boxes = self._run_detector(image)
            t1 = time.perf_counter()
            self.last_ms = {"detect": (t1 - t0) * 1e3}
            if self._refiner is not None:  # [detector] refine: the top-down pass, in the detector's frame pixels
                poses = self._refiner.refine(image, poses, boxes)
                t2 = time.perf_counter()
                self.last_ms["refine"] = (t2 - t1) * 1e3
                self.last_ms["detect"] = (t2 - t0) * 1e3
                t1 = t2
            emb = None
            if self._describe is not None:
                emb = self._describe(image, poses, boxes)
                self.last_ms["reid"] = (time.perf_counter() - t1) * 1e3
            dets = Detections2D(self.camera, frame_idx, stamp_ns, poses, boxes, embeddings=emb)
            dets = unrotate_detections(dets, self.rotate, payload.shape[1::-1])  # recorded frame pixels
            dets = map_detections(dets, self.image_map)
        return dets if self.lifter is None else self.lifter.lift(dets)

    def close(self) -> None:
        """Close the source and the depth source (idempotent)."""
        if self._source is not None:
            self._source.close()
            self._source = None
        if self.lifter is not None:
            self.lifter.close()
