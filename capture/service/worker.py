"""Per-camera worker process: read frames, detect 2D poses, publish them over ZeroMQ.

The worker connects an XPUB socket to the node's input endpoint and waits until the node's
subscription arrives before it publishes (an XPUB sees subscriptions), so no frame is lost to
the PUB/SUB "slow joiner" start-up race (ZeroMQ guide, ch. 5). It heartbeats on
``ctrl.heartbeat.<camera>.`` every second and ends with ``ctrl.eos.<camera>.`` carrying its
statistics (frames, detection time, peak memory).
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator

import zmq

from capture import wire
from capture.service.proc import peak_rss_mb, stats_ms, stop_on_signals
from core.config import DetectorConfig
from core.errors import CaptureError, InputError
from core.types import Detections2D

__all__ = ["Worker", "main"]

log = logging.getLogger(__name__)

HEARTBEAT_S = 1.0
LATE_DROP_S = 0.1  # realtime replay: a frame this overdue (seconds) is dropped at the source


def is_detection_file(source: str) -> bool:
    """Whether a camera source is a detections file to replay instead of frames to detect on."""
    return source.endswith((".json", ".json.gz"))


class Worker:
    """One camera's capture + detection loop.

    Args:
        camera: camera name (as in the calibration).
        source: video file, image folder, webcam index, or a detections file (replayed).
        endpoint: node input endpoint to connect to, e.g. ``tcp://127.0.0.1:5555``.
        detector: detector settings (ignored when replaying a detections file).
        model_path: detector model file (ONNX), when detecting.
        epoch_ns: capture time of frame 0 for file sources, nanoseconds.
        max_frames: stop after this many frames (None: the whole source).
        subscribe_timeout_s: how long to wait for the node's subscription, seconds.
        realtime: replay file sources as if live: each frame is due at its capture timestamp
            (wall clock, so workers started from one ``epoch_ns`` stay in step, and a restarted
            worker resumes at the current frame); a frame more than ``LATE_DROP_S`` overdue is
            dropped at the source without detection, as a live camera would.
    """

    def __init__(
        self,
        camera: str,
        source: str,
        endpoint: str,
        detector: DetectorConfig | None = None,
        model_path: str | None = None,
        epoch_ns: int = 0,
        max_frames: int | None = None,
        subscribe_timeout_s: float = 60.0,
        realtime: bool = False,
    ):
        self.camera = camera
        self.source = source
        self.endpoint = endpoint
        self.detector_cfg = detector or DetectorConfig()
        self.model_path = model_path
        self.epoch_ns = epoch_ns
        self.max_frames = max_frames
        self.subscribe_timeout_s = subscribe_timeout_s
        self.realtime = realtime
        self.detect_ms: list[float] = []
        self.frames_sent = 0
        self.frames_dropped = 0
        self._stop = threading.Event()

    def _due(self, stamp_ns: int) -> bool:
        """In realtime replay, wait until the frame is due; False if it is too late (dropped)."""
        if not self.realtime:
            return True
        wait_s = (stamp_ns - time.time_ns()) * 1e-9
        if wait_s < -LATE_DROP_S:
            self.frames_dropped += 1
            return False
        if wait_s > 0:
            self._stop.wait(wait_s)
        return True

    def _detections(self) -> Iterator[Detections2D]:
        if is_detection_file(self.source):
            from capture.detection_files import read_detections_json

            for dets in read_detections_json(self.source):
                stamp_ns = self.epoch_ns + dets.stamp_ns
                if self._due(stamp_ns):
                    yield Detections2D(self.camera, dets.frame_idx, stamp_ns, dets.poses, dets.boxes)
            return
        from capture.detectors import make_detector
        from capture.sources import open_source

        cfg = self.detector_cfg
        detector = make_detector(
            cfg.name,
            model_path=self.model_path,
            input_hw=(cfg.input_h, cfg.input_w),
            score_threshold=cfg.score_threshold,
            threads=cfg.threads,
        )
        with open_source(self.source, epoch_ns=self.epoch_ns) as frames:
            for frame_idx, stamp_ns, image in frames:
                if not self._due(stamp_ns):
                    continue
                t0 = time.perf_counter()
                poses, boxes = detector.detect(image)
                self.detect_ms.append((time.perf_counter() - t0) * 1e3)
                yield Detections2D(self.camera, frame_idx, stamp_ns, poses, boxes)

    def _wait_for_subscriber(self, sock: zmq.Socket, stop: threading.Event) -> None:
        deadline = time.monotonic() + self.subscribe_timeout_s
        while time.monotonic() < deadline and not stop.is_set():
            if sock.poll(100, zmq.POLLIN):
                event = sock.recv()
                if event[:1] == b"\x01":
                    log.info("camera %s: node subscribed", self.camera)
                    return
        if stop.is_set():
            return
        raise CaptureError(
            f"camera {self.camera}: no node subscribed at {self.endpoint} within {self.subscribe_timeout_s:g} s"
        )

    def _send(self, sock: zmq.Socket, frames: list) -> None:
        sock.send_multipart(frames, copy=False)

    def _control(self, schema: str, meta: dict) -> list:
        return wire.encode(wire.Message(schema, self.camera, self.frames_sent - 1, time.time_ns(), {}, meta))

    def stats(self) -> dict:
        """Worker statistics: frames sent, detection time per frame (ms), peak RSS (MiB)."""
        return {
            "frames": self.frames_sent,
            "dropped_at_source": self.frames_dropped,
            "detection_ms": stats_ms(self.detect_ms),
            "peak_rss_mb": round(peak_rss_mb(), 1),
            "pid": os.getpid(),
        }

    def run(self, ctx: zmq.Context | None = None, stop: threading.Event | None = None) -> dict:
        """Run until the source ends or ``stop`` is set; always sends the end-of-stream message.

        Returns:
            :meth:`stats`.

        Raises:
            InputError: the source cannot be read.
            CaptureError: no node subscribed in time.
        """
        ctx = ctx or zmq.Context.instance()
        sock = ctx.socket(zmq.XPUB)
        sock.setsockopt(zmq.SNDHWM, 100000)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(self.endpoint)
        stop = self._stop = stop or threading.Event()
        interrupted = False
        try:
            self._wait_for_subscriber(sock, stop)
            hello = {
                "event": "hello",
                "source": self.source,
                "pid": os.getpid(),
                "host": socket.gethostname(),
            }
            self._send(sock, self._control("heartbeat", hello))
            last_beat = time.monotonic()
            for dets in self._detections():
                if stop.is_set():
                    interrupted = True
                    log.info("camera %s: interrupted after %d frames", self.camera, self.frames_sent)
                    break
                self._send(sock, wire.encode_detections(dets))
                self.frames_sent += 1
                now = time.monotonic()
                if now - last_beat >= HEARTBEAT_S:
                    self._send(
                        sock,
                        self._control("heartbeat", {"frames": self.frames_sent, "dropped": self.frames_dropped}),
                    )
                    last_beat = now
                if self.max_frames is not None and self.frames_sent >= self.max_frames:
                    break
        finally:
            stats = self.stats() | {"interrupted": interrupted}
            try:
                self._send(sock, self._control("eos", stats))
            finally:
                sock.close(linger=2000)  # deliver the end-of-stream message, then give up
        return stats


def main(argv: list[str] | None = None) -> int:
    """``mvcap worker``: run one camera's worker. Exit 0 ok, 1 runtime failure, 2 bad input."""
    from core.logsetup import setup_logging

    p = argparse.ArgumentParser(prog="mvcap worker", description=__doc__.splitlines()[0])
    p.add_argument("--camera", required=True, help="camera name, as in the calibration")
    p.add_argument("--source", required=True, help="video file, image folder, webcam index or detections .json[.gz]")
    p.add_argument("--endpoint", default="tcp://127.0.0.1:5555", help="node input endpoint")
    p.add_argument("--model", default=None, help="detector model (ONNX); default: the cached YOLO11n-pose export")
    p.add_argument("--config", default=None, help="TOML config (its [detector] section is used)")
    p.add_argument("--epoch-ns", type=int, default=0, help="capture time of frame 0 for file sources, ns")
    p.add_argument("--max-frames", type=int, default=None, help="stop after this many frames")
    p.add_argument("--realtime", action="store_true", help="pace file sources at their frame rate")
    p.add_argument("--log-level", default="INFO")
    args = p.parse_args(argv)
    setup_logging(args.log_level)
    stop = stop_on_signals()
    try:
        from core.config import Config, load_config

        cfg = load_config(args.config) if args.config else Config()
        model = args.model
        if model is None and not is_detection_file(args.source):
            from capture.assets import yolo_pose_onnx

            model = str(yolo_pose_onnx((cfg.detector.input_h, cfg.detector.input_w)))
        worker = Worker(
            args.camera,
            args.source,
            args.endpoint,
            cfg.detector,
            model,
            args.epoch_ns,
            args.max_frames,
            realtime=args.realtime,
        )
        stats = worker.run(stop=stop)
    except InputError as exc:
        log.error("%s", exc)
        return 2
    except CaptureError as exc:
        log.error("%s", exc)
        return 1
    det = stats["detection_ms"]
    log.info("camera %s: %d frames, detection %.1f ms/frame median", args.camera, stats["frames"], det["median"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
