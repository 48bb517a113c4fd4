"""One camera's frames to the detections its worker sends: source, detector, pixel mapping, re-ID, depth.

The stage a worker runs for every frame, apart from the messaging (:mod:`capture.service.worker`):

1. the source is opened (video, image folder or stills, webcam; or a detections file, replayed);
2. the detector chosen by name (:func:`capture.detectors.make_detector`) runs with a network input
   that follows the frame (``[detector] input_long_px``), or the supplied model's static input;
3. detections are mapped to calibration pixels when the frames differ in size from the
   calibration (``[[cameras]] image_map``, :func:`capture.image_map.map_detections`);
4. with ``[detector] reid``, each detection gets a keypoint-placed part colour descriptor
   (:func:`capture.detect.reid.part_histograms`, computed on the frame's own pixels, before the
   mapping), sent in the ``embeddings`` field so the node can use appearance without images;
5. an RGB-D camera lifts the joints to 3D with its depth image (:class:`capture.sources_depth.DepthLifter`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from calibration.camera import Camera
from capture.image_map import map_detections
from capture.sources_depth import DepthLifter
from core.config import DetectorConfig, ImageMap, RGBDConfig
from core.types import Detections2D

__all__ = ["FrameDetector"]

log = logging.getLogger(__name__)


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

    Attributes:
        input_hw: the network input (height, width), pixels, once opened (None when replaying).
        last_ms: CPU-independent wall times of the last frame's stages, milliseconds
            (``"detect"``, and ``"reid"`` with descriptors).
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
    ) -> None:
        self.camera = camera
        self.source = source
        self.cfg = detector
        self.model_path = model_path
        self.stills = stills
        self.image_map = image_map
        self._depth = (depth, camera_model, rgbd or RGBDConfig(), float(pixel_noise_px))
        self.input_hw: tuple[int, int] | None = None
        self.last_ms: dict[str, float] = {}
        self.lifter: DepthLifter | None = None
        self._source = None
        self._detector = None
        self._describe = None

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
        from capture.detection_files import is_detection_file

        if is_detection_file(self.source):
            from capture.detection_files import read_detections_json

            return ((d.frame_idx, d.stamp_ns, d) for d in read_detections_json(self.source))
        from capture.detectors import input_hw_for_frame, make_detector
        from capture.sources import open_source

        cfg = self.cfg
        self._source = open_source(self.source, epoch_ns=0, stills=self.stills)
        self.input_hw = input_hw_for_frame(self._source.size, cfg.input_long_px, cfg.fixed_input_hw)
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
        if cfg.reid:
            from capture.detect.reid import part_histograms

            self._describe = part_histograms
        log.info("camera %s: %dx%d frames, detector %s, network input %dx%d (width x height)%s", self.camera,
                 *self._source.size, cfg.name, self.input_hw[1], self.input_hw[0],
                 ", re-ID descriptors" if cfg.reid else "")  # fmt: skip
        return iter(self._source)

    def detect(self, frame_idx: int, stamp_ns: int, payload: object) -> Detections2D:
        """The detections of one frame (``payload`` from :meth:`open`), in calibration pixels."""
        if isinstance(payload, Detections2D):  # replayed: already in calibration pixels
            dets = Detections2D(
                self.camera, frame_idx, stamp_ns, payload.poses, payload.boxes, embeddings=payload.embeddings
            )
        else:
            t0 = time.perf_counter()
            poses, boxes = self._detector.detect(payload)
            t1 = time.perf_counter()
            self.last_ms = {"detect": (t1 - t0) * 1e3}
            emb = None
            if self._describe is not None:
                emb = self._describe(payload, poses, boxes)
                self.last_ms["reid"] = (time.perf_counter() - t1) * 1e3
            dets = Detections2D(self.camera, frame_idx, stamp_ns, poses, boxes, embeddings=emb)
            dets = map_detections(dets, self.image_map)
        return dets if self.lifter is None else self.lifter.lift(dets)

    def close(self) -> None:
        """Close the source and the depth source (idempotent)."""
        if self._source is not None:
            self._source.close()
            self._source = None
        if self.lifter is not None:
            self.lifter.close()
