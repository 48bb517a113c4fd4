"""Regenerate ``tests/data/demo_yolo11n/cam0X.json.gz``: YOLO11n-pose on the Pose2Sim demo videos.

These files are a real-detections fixture: end-to-end tests replay them instead of running the
network. Each holds the 100 frames of one camera, stamps from epoch 0 at 60 fps, COCO-17 poses
(Jocher et al., Ultralytics YOLO11n-pose, 640x384 ONNX input, score > 0.5, NMS IoU 0.6).

Usage::

    python tests/data/make_demo_detections.py [--data DEMO_DIR] [--model ONNX] [--threads N]

The demo comes from ``capture.assets.demo_data_dir()`` (pose2sim==0.10.49, cached) unless
``--data`` is given; the model from ``capture.assets.yolo_pose_onnx()`` (exported once; needs
``MVCAP_EXPORT_PYTHON`` or the export extra) unless ``--model`` is given.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np

log = logging.getLogger("make_demo_detections")

OUT_DIR = Path(__file__).resolve().parent / "demo_yolo11n"
CAMERAS = ("cam01", "cam02", "cam03", "cam04")
FPS = 60.0
N_FRAMES = 100


def main(argv: list[str] | None = None) -> int:
    """Detect on the 4 demo videos and write one mvcap-detections file per camera."""
    from capture.assets import demo_data_dir, yolo_pose_onnx
    from capture.detect.yolo_pose import YoloPoseOnnx
    from capture.sources.detection_files import write_detections_json
    from capture.sources.frames import VideoSource
    from core.types import Detections2D

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=None, help="demo folder with videos/cam0X.mp4")
    p.add_argument("--model", type=Path, default=None, help="YOLO11n-pose 640x384 ONNX file")
    p.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    p.add_argument("--out", type=Path, default=OUT_DIR, help="output folder")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    data = args.data or demo_data_dir()
    model = args.model or yolo_pose_onnx((640, 384))
    detector = YoloPoseOnnx(model, input_hw=(640, 384), score_threshold=0.5, iou_threshold=0.6, threads=args.threads)
    for camera in CAMERAS:
        dets = []
        with VideoSource(data / "videos" / f"{camera}.mp4", epoch_ns=0, fps=FPS) as source:
            for frame_idx, stamp_ns, image in source:
                if frame_idx >= N_FRAMES:
                    break
                poses, boxes = detector.detect(image)
                dets.append(Detections2D(camera, frame_idx, stamp_ns, poses, boxes))
        path = write_detections_json(args.out / f"{camera}.json.gz", camera, FPS, dets)
        counts = np.array([d.n_people for d in dets])
        log.info(
            "%s: %d frames, people per frame min %d / median %g / max %d, %.1f KB",
            camera, len(dets), counts.min(), np.median(counts), counts.max(), path.stat().st_size / 1024,
        )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
