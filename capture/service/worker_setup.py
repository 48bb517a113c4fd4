"""What ``mvcap worker`` checks before it starts: source, depth source, default model, feedback endpoint."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from calibration.camera import Camera
from capture.sources.depth import open_depth_source
from capture.sources.detection_files import is_detection_file
from core.config import Config, DetectorConfig
from core.errors import InputError

__all__ = ["check_source", "depth_setup", "feedback_endpoint", "uses_default_model"]

log = logging.getLogger(__name__)


def check_source(source: str, camera: str | None = None, stills: bool = False) -> tuple[int, int] | None:
    """Open a camera source once and close it, so that a bad one fails before anything starts.

    Args:
        source: the camera's source (see :class:`Worker`).
        camera: its name, for the message.
        stills: the source must be an image folder of independent moments.

    Returns:
        (width, height) of its frames, pixels; None for a detections file.

    Raises:
        InputError: a missing or unreadable video, image folder, webcam or detections file, or
            stills that are not an image folder.
    """
    if is_detection_file(source):
        if not Path(source).is_file():
            raise InputError(f"{source}: detections file not found" + (f" (camera {camera})" if camera else ""))
        return None
    from capture.sources.frames import open_source

    with open_source(source, stills=stills) as src:
        return src.size


def depth_setup(args: argparse.Namespace, cfg: Config) -> tuple[str, Camera | None]:
    """The camera's depth source (``--depth``, else its ``[[cameras]] depth``) and, with one, its
    calibrated camera (``--calibration``, else the config's).

    Raises:
        InputError: a depth source without a calibration.
        CalibrationError: the calibration cannot be read or lacks the camera.
    """
    entry = next((c for c in cfg.cameras if c.name == args.camera), None)
    depth = args.depth if args.depth is not None else (entry.depth if entry is not None else "")
    if not depth:
        return "", None
    calib = args.calibration or cfg.calibration
    if not calib:
        raise InputError(f"camera {args.camera}: depth {depth} needs a calibration (--calibration or the config's)")
    from calibration.io import read_calibration

    sizes = {entry.name: entry.image_size} if entry is not None and entry.image_size is not None else None
    rig = read_calibration(calib, sizes=sizes, names=[args.camera])
    with open_depth_source(depth):  # a bad depth source fails here, before anything starts
        pass
    log.info("camera %s: RGB-D, depth from %s, calibration %s", args.camera, depth, calib)
    return depth, rig[args.camera]


def uses_default_model(det: DetectorConfig) -> bool:
    """Whether the worker runs the default YOLO11n-pose export (:func:`capture.detect.registry.uses_default_model`)."""
    from capture.detect.registry import uses_default_model as uses  # not on replays: cv2 and onnxruntime load slowly

    return uses(det.name, det.box_detector)


def feedback_endpoint(cfg: Config, input_endpoint: str) -> str:
    """Where the worker subscribes to its regions of interest (``[detector] rois``): ``[node] feedback_endpoint``,
    a wildcard host (``tcp://*:5557``) replaced by the node input's host (``input_endpoint``); "" when rois are off.

    Example:
        >>> from core.config import NodeConfig
        >>> cfg = Config(detector=DetectorConfig(rois=True), node=NodeConfig(feedback_endpoint="tcp://*:5557"))
        >>> feedback_endpoint(cfg, "tcp://10.0.0.2:5555")
        'tcp://10.0.0.2:5557'
    """
    if not cfg.detector.rois:
        return ""
    endpoint = cfg.node.feedback_endpoint
    scheme, _, rest = endpoint.partition("://")
    if scheme == "tcp" and rest.startswith("*:"):
        host = input_endpoint.partition("://")[2].rpartition(":")[0] or "127.0.0.1"
        endpoint = f"tcp://{host}:{rest[2:]}"
    return endpoint
