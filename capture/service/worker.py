"""Per-camera worker process: read frames, detect 2D poses, publish them over ZeroMQ.

Lifecycle, as the node sees it: ``hello`` (the worker is up; sent as soon as the node subscribed),
heartbeats every second from then until exit whatever the detector is doing, ``ready`` (source
and model are open), the camera's ``pose2d`` messages, then ``eos`` (end of stream) with the
worker's statistics.

Two threads: a *producer* opens the source and the model and runs detection; the main thread owns
the ZeroMQ socket (sockets are not thread-safe) and sends what the producer queues, plus the
heartbeats, so a model that takes a minute to load never looks like a dead camera.

The socket is an XPUB connected to the node's input: an XPUB sees subscriptions, so the worker
waits for the node's before it publishes and no frame is lost to the PUB/SUB "slow joiner" race
(ZeroMQ guide, ch. 5). Offline (``realtime=False``) the socket does not drop at its high-water mark
(``ZMQ_XPUB_NODROP``): a node that falls behind slows the worker down instead of losing frames.

What a frame becomes (detector, network input following the frame, mapping to calibration
pixels, re-ID descriptors, RGB-D lifting) is :class:`capture.detect.frames.FrameDetector`'s; RGB-D
frames without a readable depth image are sent with their 2D joints only, and counted
(``depth_missing``). Stills (``[[cameras]] stills``, or ``--stills``) are stamped an hour apart so
the node carries no track from one image to the next (:data:`capture.sources.frames.STILLS_GAP_S`).

Live replay (``realtime=True``): each frame is due at its capture stamp on the wall clock. A worker
slower than real time processes the freshest frame and skips the rest: a frame is skipped when the
next one is already overdue (by ``SKIP_SLACK_S``), so the output continues at the rate the machine
can hold and every skip is counted (``skipped`` in heartbeats and in the end-of-stream statistics).
"""

from __future__ import annotations

import argparse
import logging
import os
import queue
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import zmq

from calibration.camera import Camera
from capture import wire
from capture.detect.frames import FrameDetector
from capture.service.proc import peak_rss_mb, stop_on_signals
from capture.service.security import add_client_key_args, client_securer
from capture.service.stats import RunningStats
from capture.service.worker_setup import check_source, depth_setup, feedback_endpoint, uses_default_model
from capture.sources.detection_files import is_detection_file
from core.config import DetectorConfig, ImageMap, RGBDConfig
from core.errors import CalibrationError, CaptureError, ConfigError, InputError
from core.types import Detections2D

__all__ = ["Worker", "check_source", "is_detection_file", "main"]

log = logging.getLogger(__name__)

HEARTBEAT_S = 1.0
SKIP_SLACK_S = 0.05
"""Realtime replay: a frame is skipped when the next one is already this overdue, seconds."""
QUEUE_FRAMES = 8
"""Frames the producer may run ahead of the sender (bounded: backpressure on a slow node)."""


def _wait_epoch(path: Path, stop: threading.Event, timeout_s: float) -> int:
    """Wait for the launcher's start file and return the epoch it holds, nanoseconds."""
    deadline = time.monotonic() + timeout_s
    while not stop.is_set() and time.monotonic() < deadline:
        try:
            return int(path.read_text().strip())
        except (OSError, ValueError):
            stop.wait(0.05)
    raise CaptureError(f"{path}: no start time within {timeout_s:g} s")


class Worker:
    """One camera's capture + detection loop.

    Args:
        camera: camera name (as in the calibration).
        source: video file, image folder, webcam index, or a detections file (replayed).
        endpoint: node input endpoint to connect to, e.g. ``tcp://127.0.0.1:5555``.
        detector: detector settings (ignored when replaying a detections file).
        model_path: detector model file (ONNX), when detecting; None: the default model for the
            frames' input shape (exported once per shape, :func:`capture.assets.yolo_pose_onnx`).
        epoch_ns: capture time of frame 0 for file sources, nanoseconds.
        max_frames: stop after this many frames (None: the whole source).
        subscribe_timeout_s: how long to wait for the node's subscription, seconds.
        realtime: replay file sources as if live (see the module docstring): frames due on the wall
            clock at their stamps, so workers started from one ``epoch_ns`` stay in step and a
            restarted worker resumes at the current frame.
        ready_file: touched once source and model are open (the local launcher waits for it).
        epoch_file: realtime replay: after ``ready``, wait for this file and take ``epoch_ns`` from
            it (the launcher writes it once every camera is ready, so no frame is due while models
            load).
        secure: optional ``callable(socket)`` applied before connecting (CURVE keys).
        depth: an RGB-D camera's depth source (folder of 16-bit PNGs or ``.npy``); "" for none.
        camera_model: the calibrated camera (needed with ``depth``).
        rgbd: the ``[rgbd]`` lifting settings.
        pixel_noise_px: 2D joint noise at confidence 1, pixels (``[fusion] pixel_noise_px``), for
            the lifted joints' lateral uncertainty.
        image_map: frames of another size than the calibration's image: detections are mapped to
            calibration pixels with it before they are sent; None sends frame pixels.
        stills: the source is an image folder of independent moments (stamped an hour apart).
        feedback_endpoint: ``[detector] rois``: the node's ``[node] feedback_endpoint``, where the
            worker gets each frame's regions of interest (:mod:`capture.service.hint_feed`); "" for none.
        rotate: degrees (0, 90, 180, 270) each frame is turned clockwise before detection
            (``[[cameras]] rotate``: a camera mounted on its side); detections are sent in the
            recorded frame's (calibration) pixels.

    Raises:
        InputError: ``depth`` without ``camera_model``, or ``depth`` with ``image_map``.
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
        ready_file: str | Path | None = None,
        epoch_file: str | Path | None = None,
        secure=None,  # noqa: ANN001 - Callable[[zmq.Socket], None]
        depth: str = "",
        camera_model: Camera | None = None,
        rgbd: RGBDConfig | None = None,
        pixel_noise_px: float = 6.0,
        image_map: ImageMap | None = None,
        stills: bool = False,
        feedback_endpoint: str = "",
        rotate: int = 0,
    ):
        if depth and camera_model is None:
            raise InputError(f"camera {camera}: a depth source needs the camera's calibration")
        if depth and image_map is not None:
            raise InputError(f"camera {camera}: image_map is not supported with a depth source (RGB-D)")
        self.camera = camera
        self.source = source
        self.endpoint = endpoint
        self.detector_cfg = detector or DetectorConfig()
        self.model_path = model_path
        self.epoch_ns = epoch_ns
        self.max_frames = max_frames
        self.subscribe_timeout_s = subscribe_timeout_s
        self.realtime = realtime
        self.ready_file = Path(ready_file) if ready_file else None
        self.epoch_file = Path(epoch_file) if epoch_file else None
        self.secure = secure
        self.depth = depth
        self.camera_model = camera_model
        self.rgbd = rgbd or RGBDConfig()
        self.pixel_noise_px = float(pixel_noise_px)
        self.image_map = image_map
        self.stills = bool(stills)
        self.feedback_endpoint = feedback_endpoint
        self.hints = None  # capture.service.hint_feed.HintFeed while detecting with [detector] rois
        self._ctx: zmq.Context | None = None
        self._cpu0: float | None = None  # process CPU time once source and model are open, seconds
        self.frames = FrameDetector(
            camera, source, self.detector_cfg, model_path, stills=self.stills, image_map=image_map,
            depth=depth, camera_model=camera_model, rgbd=self.rgbd, pixel_noise_px=self.pixel_noise_px,
            rotate=rotate,
        )  # fmt: skip
        self.detect_ms = RunningStats()
        self.reid_ms = RunningStats()
        self.frames_sent = 0
        self.frames_skipped = 0
        self.state = "loading"
        self._stop = threading.Event()

    # -- producer thread ---------------------------------------------------------------------
    def _skip(self, next_stamp_ns: int | None) -> bool:
        """Realtime replay: True (and counted) if the next frame is overdue by more than ``SKIP_SLACK_S``."""
        if next_stamp_ns is not None and next_stamp_ns + SKIP_SLACK_S * 1e9 <= time.time_ns():
            self.frames_skipped += 1
            return True
        return False

    def _wait_due(self, stamp_ns: int) -> None:
        wait_s = (stamp_ns - time.time_ns()) * 1e-9
        if wait_s > 0:
            self._stop.wait(wait_s)

    def _paced(self, items: Iterator[tuple[int, int, object]]) -> Iterator[tuple[int, int, object]]:
        """Realtime replay of ``(frame_idx, stamp_ns, payload)``: freshest frame wins."""
        if not self.realtime or self.source.isdigit() or self.stills:  # a webcam is live already; stills have no rate
            yield from items
            return
        current = next(items, None)
        for nxt in items:
            if self._stop.is_set():
                return
            if not self._skip(nxt[1]):
                self._wait_due(current[1])
                yield current
            current = nxt
        if current is not None and not self._stop.is_set():
            self._wait_due(current[1])
            yield current

    def _open_hints(self) -> None:
        """With ``[detector] rois`` (and a detector that runs on crops): subscribe to this camera's hints."""
        if self.feedback_endpoint and self.frames.uses_rois:
            from capture.service.feedback import RoiSubscriber
            from capture.service.hint_feed import HintFeed

            sub = RoiSubscriber(self._ctx or zmq.Context.instance(), self.feedback_endpoint, self.camera, self.secure)
            live = self.realtime or self.source.isdigit()
            self.hints = HintFeed(sub, self.detector_cfg.roi_lag_frames, live)

    def _detect(self, frame_idx: int, stamp_ns: int, payload: object) -> Detections2D:
        if self.hints is not None:
            self.frames.set_hint(self.hints.hint_for(frame_idx))
        dets = self.frames.detect(frame_idx, stamp_ns, payload)
        if "detect" in self.frames.last_ms:
            self.detect_ms.add(self.frames.last_ms["detect"])
        if "reid" in self.frames.last_ms:
            self.reid_ms.add(self.frames.last_ms["reid"])
        return dets

    def _produce(self, out: queue.Queue) -> None:
        """Producer thread: ``("ready",)``, ``("dets", Detections2D)``..., then ``("end",)`` or ``("error", exc)``."""

        def put(item: tuple) -> bool:
            while not self._stop.is_set():
                try:
                    out.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        try:
            items = self.frames.open()
            self._open_hints()
            self._cpu0 = time.process_time()
            if self.ready_file is not None:
                self.ready_file.touch()
            put(("ready",))
            epoch = self.epoch_ns
            if self.epoch_file is not None:
                epoch = _wait_epoch(self.epoch_file, self._stop, self.subscribe_timeout_s)
            if self.source.isdigit():  # webcam stamps are capture times already
                epoch = 0
            shifted = ((i, epoch + s, p) for i, s, p in items)
            n = 0
            for frame_idx, stamp_ns, payload in self._paced(shifted):
                if self._stop.is_set() or not put(("dets", self._detect(frame_idx, stamp_ns, payload))):
                    break
                n += 1
                if self.max_frames is not None and n >= self.max_frames:
                    break
            put(("end",))
        except CaptureError as exc:
            put(("error", exc))
        except Exception as exc:  # noqa: BLE001 - a detector or decoder failure ends this camera, reported
            log.exception("camera %s: producer failed", self.camera)
            put(("error", CaptureError(f"camera {self.camera}: {type(exc).__name__}: {exc}")))
        finally:
            self.frames.close()
            if self.hints is not None:
                self.hints.close()

    # -- sender (main thread) ----------------------------------------------------------------
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

    def _send(self, sock: zmq.Socket, frames: list, stop: threading.Event, timeout_s: float | None = None) -> bool:
        """Send; offline (no drop at the high-water mark) wait while the node catches up.

        Returns:
            False if ``stop`` was set or ``timeout_s`` passed before the message could be queued.
        """
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            try:
                sock.send_multipart(frames, copy=False, flags=zmq.NOBLOCK)
                return True
            except zmq.Again:
                if stop.is_set() or (deadline is not None and time.monotonic() > deadline):
                    return False
                sock.poll(50, zmq.POLLOUT)

    def _control(self, schema: str, meta: dict) -> list:
        return wire.encode(wire.Message(schema, self.camera, max(self.frames_sent - 1, -1), time.time_ns(), {}, meta))

    def _beat(self, event: str | None = None) -> list:
        meta = {"frames": self.frames_sent, "skipped": self.frames_skipped, "state": self.state}
        if event:
            meta["event"] = event
        return self._control("heartbeat", meta)

    def _cpu_ms(self) -> float:  # process CPU time per frame since source and model were open, ms
        return round(1e3 * (time.process_time() - self._cpu0) / self.frames_sent, 2)

    def stats(self) -> dict:
        """Worker statistics: frames sent and skipped, detection and process CPU time per frame (ms), peak RSS (MiB)."""
        return {
            "frames": self.frames_sent,
            "skipped": self.frames_skipped,
            "detection_ms": self.detect_ms.summary(),
            "peak_rss_mb": round(peak_rss_mb(), 1),
            "pid": os.getpid(),
            **({"reid_ms": self.reid_ms.summary()} if self.reid_ms.count else {}),
            **({"input_hw": list(self.frames.input_hw)} if self.frames.input_hw else {}),
            **({f"roi_{k}": v for k, v in (self.frames.modes | self.hints.stats()).items()} if self.hints else {}),
            **({"cpu_ms_per_frame": self._cpu_ms()} if self._cpu0 is not None and self.frames_sent else {}),
        } | ({"depth_lifted": lift.lifted, "depth_missing": lift.missing} if (lift := self.frames.lifter) else {})

    def run(self, ctx: zmq.Context | None = None, stop: threading.Event | None = None) -> dict:
        """Run until the source ends or ``stop`` is set; always sends the end-of-stream message.

        Returns:
            :meth:`stats`.

        Raises:
            InputError: the source cannot be read.
            CaptureError: no node subscribed in time, or the detector failed.
        """
        ctx = self._ctx = ctx or zmq.Context.instance()
        sock = ctx.socket(zmq.XPUB)
        sock.setsockopt(zmq.SNDHWM, 1000 if not self.realtime else 100)
        sock.setsockopt(zmq.LINGER, 0)
        if not self.realtime:
            sock.setsockopt(zmq.XPUB_NODROP, 1)
        if self.secure is not None:
            self.secure(sock)
        sock.connect(self.endpoint)
        stop = stop or threading.Event()
        self._stop = threading.Event()  # ends the producer; set when the sender ends
        pending: queue.Queue = queue.Queue(maxsize=QUEUE_FRAMES)
        producer = threading.Thread(target=self._produce, args=(pending,), name=f"produce-{self.camera}", daemon=True)
        error: CaptureError | None = None
        interrupted = False
        try:
            producer.start()
            self._wait_for_subscriber(sock, stop)
            hello = {"event": "hello", "source": self.source[-200:], "pid": os.getpid(), "host": socket.gethostname()}
            self._send(sock, self._control("heartbeat", hello), stop)
            last_beat = time.monotonic()
            prev = [-1, -1]  # each detection declares the frame sent before it: skips are then known
            while True:
                if stop.is_set() or self._stop.is_set():
                    interrupted = True
                    log.info("camera %s: interrupted after %d frames", self.camera, self.frames_sent)
                    break
                try:
                    item = pending.get(timeout=0.2)
                except queue.Empty:
                    item = None
                if item is not None and item[0] == "dets":
                    dets = item[1]
                    self._send(sock, wire.encode_detections(dets, {"prev": prev}), stop)
                    prev = [dets.frame_idx, dets.stamp_ns]
                    self.frames_sent += 1
                elif item is not None and item[0] == "ready":
                    self.state = "ready"
                    self._send(sock, self._beat("ready"), stop)
                    last_beat = time.monotonic()
                    log.info("camera %s: ready", self.camera)
                elif item is not None and item[0] == "error":
                    error = item[1]
                    break
                elif item is not None and item[0] == "end":
                    break
                now = time.monotonic()
                if now - last_beat >= HEARTBEAT_S:
                    self._send(sock, self._beat(), stop)
                    last_beat = now
        finally:
            self._stop.set()
            producer.join(5)
            stats = self.stats() | {"interrupted": interrupted}
            if error is not None:
                stats["error"] = str(error)[:300]
            try:
                if not self._send(sock, self._control("eos", stats), threading.Event(), timeout_s=10.0):
                    log.warning("camera %s: the node took no end-of-stream message within 10 s", self.camera)
            finally:
                sock.close(linger=2000)  # deliver the end-of-stream message, then give up
        if error is not None:
            raise error
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
    p.add_argument("--ready-file", default=None, help="touched once source and model are open")
    p.add_argument("--epoch-file", default=None, help="realtime: wait for this file and take the epoch (ns) from it")
    p.add_argument("--depth", default=None, help="RGB-D: depth PNG folder or .npy (default: the config camera's depth)")
    p.add_argument("--calibration", default=None, help="RGB-D: calibration file (default: the config's)")
    p.add_argument("--stills", action="store_true", help="image folder of independent moments (no tracks carried)")
    add_client_key_args(p, "camera")
    p.add_argument("--log-level", default="INFO")
    args = p.parse_args(argv)
    setup_logging(args.log_level)
    stop = stop_on_signals()
    try:
        from core.config import Config, load_config

        cfg = load_config(args.config) if args.config else Config()
        entry = next((c for c in cfg.cameras if c.name == args.camera), None)
        stills = args.stills or (entry is not None and entry.stills)
        frame_wh = check_source(args.source, args.camera, stills=stills)
        secure = client_securer(args)
        model = args.model
        det = cfg.detector
        if model is None and frame_wh is not None and uses_default_model(det):
            from capture.assets import yolo_pose_onnx
            from capture.detect.letterbox import input_hw_for_frame

            model = str(yolo_pose_onnx(input_hw_for_frame(frame_wh, det.input_long_px, det.fixed_input_hw)))
        depth, camera_model = depth_setup(args, cfg)
        worker = Worker(
            args.camera,
            args.source,
            args.endpoint,
            cfg.detector,
            model,
            args.epoch_ns,
            args.max_frames,
            realtime=args.realtime,
            ready_file=args.ready_file,
            epoch_file=args.epoch_file,
            secure=secure,
            depth=depth,
            camera_model=camera_model,
            rgbd=cfg.rgbd,
            pixel_noise_px=cfg.fusion.pixel_noise_px,
            image_map=entry.image_map if entry is not None else None,
            stills=stills,
            feedback_endpoint=feedback_endpoint(cfg, args.endpoint),
            rotate=entry.rotate if entry is not None else 0,
        )
        stats = worker.run(stop=stop)
    except (InputError, CalibrationError, ConfigError) as exc:
        log.error("%s", exc)
        return 2
    except CaptureError as exc:
        log.error("%s", exc)
        return 1
    det = stats["detection_ms"]
    log.info(
        "camera %s: %d frames sent, %d skipped, detection %.1f ms/frame median, process CPU %s ms/frame",
        args.camera, stats["frames"], stats["skipped"], det["median"], stats.get("cpu_ms_per_frame"),
    )  # fmt: skip
    if "roi_full" in stats:
        log.info("camera %s: regions of interest: %s", args.camera, {k: v for k, v in stats.items() if "roi_" in k})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
