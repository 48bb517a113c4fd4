"""The central node: collect detections over ZeroMQ, reconstruct, track, publish and record.

The node binds a SUB socket for worker detections and a PUB socket for 3D poses. It wires; the
deciding happens elsewhere: :mod:`.intake` (what is accepted from the wire, the cameras'
lifecycle), :mod:`.sync` (which views make one frame), :mod:`capture.pipeline` (matching,
triangulation, tracking), :mod:`capture.outputs` (what is written).

Run lifecycle. The frame clock starts when every configured camera is ready (its worker opened
source and model), or after ``start_timeout_s``, naming the cameras it started without. Offline
(``lossless``) a frame is released only when every camera has delivered it, moved past it, ended or
died: no wall-clock timeout decides what goes into the output, so a loaded machine gives the same
``poses3d.jsonl`` as an idle one. Live, a frame still missing views after ``frame_timeout_s`` is
processed anyway and a detection that comes after its frame is counted late.

Ingestion is fair and bounded: at most ``BATCH`` messages are read before ready frames are
processed (libzmq fair-queues between the senders' connections), so a flood delays real frames by
at most one batch; every refused message is counted by kind.

A node restarted on a folder that holds a take continues it: ``poses3d.jsonl`` is appended to,
never truncated, and new track ids start above the highest one already written.
"""

from __future__ import annotations

import argparse
import json
import logging
import threading
import time
from pathlib import Path

import zmq

from calibration.camera import CameraRig
from capture import wire
from capture.kernel_warmup import warm_up
from capture.pipeline import FrameReconstructor
from capture.service.feedback import RoiPublisher, feedback_enabled
from capture.service.intake import Intake
from capture.service.proc import stop_on_signals
from capture.service.stats import WALL_CLOCK_NS, FrameFigures
from capture.service.sync import ACCEPTED, LATE, AssembledFrame, FrameAssembler
from capture.service.take import TakeFiles
from core.config import Config
from core.errors import CaptureError, ConfigError, OutputError
from core.skeleton import COCO17, Skeleton
from core.types import Poses3D

__all__ = ["BATCH", "Node", "main"]

log = logging.getLogger(__name__)

BATCH = 256
"""Messages read from the input before ready frames are processed."""
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
"""Largest input message part accepted by libzmq (a 1,024-person pose2d is 200 kB)."""
RESUME_SUBSCRIBER_WAIT_S = 3.0
"""A node continuing a take waits this long (seconds) for a recorder or viewer to subscribe again."""
END_GRACE_S = 0.3
"""Every camera must have ended for this long, with nothing received, before the node ends the take."""
END_DRAIN_S = 30.0
"""At the end of a take, messages already queued are still read (and counted) for at most this long."""
STOP_DRAIN_S = 2.0
"""Interrupted, the node still reads the workers' end-of-stream messages for at most this long."""


class Node:
    """Reconstruction node.

    Args:
        rig: calibration of the expected cameras (in processing order).
        config: run configuration (matching, triangulation, fusion, smoothing, node sections).
        out_dir: folder for ``poses3d.jsonl``, ``person_<id>.trc`` and ``summary.json``; a folder
            that already holds ``poses3d.jsonl`` is continued (appended to), never truncated.
        skeleton: 2D/3D skeleton of the detections.

    Raises:
        ConfigError: clock offsets that name unknown cameras or are not numbers.
    """

    def __init__(self, rig: CameraRig, config: Config, out_dir: str | Path, skeleton: Skeleton = COCO17):
        self.rig = rig
        self.cfg = config
        self.out_dir = Path(out_dir)
        self.skeleton = skeleton
        node = config.node
        bad = {k: v for k, v in node.clock_offsets_ms.items() if k not in rig.names or not isinstance(v, (int, float))}
        if bad:
            raise ConfigError(f"clock_offsets_ms must map camera names of the rig to numbers; got {bad}")
        offsets_ns = {k: int(v * 1e6) for k, v in node.clock_offsets_ms.items()}
        # Time mode (unsynchronised cameras): each view enters the live UKF at its own capture time.
        stills = bool(config.cameras) and all(c.stills for c in config.cameras)
        self.reconstructor = FrameReconstructor(
            rig, skeleton, config.matching.resolved(stills), config.triangulation, config.fusion,
            clock_offsets_ns=offsets_ns if node.sync_window_ms > 0 else None,
        )  # fmt: skip
        # The kernels compile (first run of an installation) or load from cache now, not on a live frame.
        warm_s, _ = warm_up(rig, skeleton, config.matching.resolved(stills), config.triangulation, config.fusion)
        log.debug("reconstruction kernels ready in %.2f s", warm_s)
        self.intake = Intake(rig.names, skeleton.n_joints, node.max_people_per_view, node.heartbeat_timeout_s)
        self.assembler = FrameAssembler(
            rig.names,
            window_ns=int(node.sync_window_ms * 1e6),
            offsets_ns=offsets_ns,
            timeout_s=node.frame_timeout_s,
            lossless=node.lossless,
            max_ahead=node.max_ahead_frames,
        )
        self.figures = FrameFigures()
        self._feedback_on = feedback_enabled(config)  # [detector] rois: regions of interest to the workers
        self.feedback: RoiPublisher | None = None
        self.frames_skipped_behind = 0
        self._behind_warn_t = 0.0
        self.started = False
        self.started_without: list[str] = []
        self.interrupted = False
        self.output_error: str | None = None
        self._absent: set[str] = set()
        self._end_t: float | None = None
        self._output_subscribed = False
        self._t_start = time.monotonic()
        self._status_t = time.monotonic()
        self._status_frames: dict[str, int] = {}

    # -- messages ----------------------------------------------------------------------------
    def handle(self, frames: list, peer: str | None = None, authenticated: bool = False) -> None:
        """Decode and file one received message; refused ones are dropped and counted, never raised."""
        got = self.intake.accept(frames, peer, authenticated)
        if got is None:
            return
        dets, prev = got
        verdict = self.assembler.add(dets, time.monotonic(), prev)
        if verdict == ACCEPTED:
            self.intake.filed(dets)
        elif verdict == LATE:
            self.intake.cameras[dets.camera].late += 1
            self.intake.drop("late", "camera %s: frame %d arrived late; dropped", dets.camera, dets.frame_idx)
        else:
            self.intake.drop(
                "implausible", "camera %s: frame %d (stamp %d) implausibly far ahead; dropped",
                dets.camera, dets.frame_idx, dets.stamp_ns,
            )  # fmt: skip

    def _live(self) -> set[str]:
        """Cameras a frame waits for."""
        gone = self.intake.gone() | self._absent
        if self.cfg.node.lossless:  # everyone heard from: a loading camera will deliver
            return {c for c, s in self.intake.cameras.items() if c not in gone and s.state != "absent"}
        return {c for c, s in self.intake.cameras.items() if c not in gone and s.state in ("ready", "streaming")}

    def _everyone_gone(self) -> bool:
        """Every camera the take waits for has ended or died."""
        return self.intake.gone() >= set(self.rig.names) - self._absent

    def _all_ended(self, now: float) -> bool:
        """Every camera ended or died, at least one ended, and so for ``END_GRACE_S``.

        The grace keeps a forged end-of-stream message from cutting a take: the camera's next real
        frame makes it streaming again. Refused messages do not count, so a sender cannot keep the
        take from ending by flooding.
        """
        done = self._everyone_gone() and any(s.state == "ended" for s in self.intake.cameras.values())
        if not done:
            self._end_t = None
            return False
        if self._end_t is None:
            self._end_t = now
        return now - self._end_t >= END_GRACE_S

    def _read_subscriptions(self) -> None:
        """Take the output's subscription messages (XPUB), noting and logging that someone subscribed
        (a recorder or viewer is sure to get every frame published after this line)."""
        while True:
            try:
                event = self.pub.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            if event[:1] == b"\x01":
                self._output_subscribed = True
                log.info("output subscriber joined (topic %r)", event[1:].decode(errors="replace"))

    def _maybe_start(self, now: float) -> None:
        if self.started:
            return
        ready = self.intake.ready()
        waited = now - self._t_start
        if ready != set(self.rig.names) and waited < self.cfg.node.start_timeout_s:
            return
        if self.take.resumed and not self._output_subscribed and waited < RESUME_SUBSCRIBER_WAIT_S:
            return  # a continued take: let the recorders that followed the old node subscribe first
        self.started = True
        self.started_without = [c for c in self.rig.names if c not in ready]
        self._absent = {c for c in self.started_without if self.intake.cameras[c].state == "absent"}
        if self.started_without:
            log.warning(
                "frame clock started after %.1f s without camera(s) %s (not ready)", waited,
                ", ".join(self.started_without),
            )  # fmt: skip
            for c in self.started_without:
                self.intake.event(c, "started_without")
        else:
            log.info("all %d cameras ready after %.1f s; frame clock started", len(self.rig), waited)

    # -- frames ------------------------------------------------------------------------------
    def process_ready(self, flush: bool = False) -> None:
        """Process every complete frame, in order (everything pending if ``flush``)."""
        if not (self.started or flush) or self.output_error:
            return
        frames = self.assembler.pop_ready(time.monotonic(), self._live(), flush)
        for k, frame in enumerate(frames):
            if k < len(frames) - 1 and self._behind(frame):
                continue
            self._process(frame)
            if self.output_error:
                return

    def _behind(self, frame: AssembledFrame) -> bool:
        """Live runs: skip (and count) a frame captured more than ``max_backlog_s`` ago when newer
        frames are ready too, so a node slower than the stream stays current (freshest data wins)."""
        limit = self.cfg.node.max_backlog_s
        if self.cfg.node.lossless or limit <= 0:
            return False
        age_ns = time.time_ns() - frame.stamp_ns
        if not 1e9 * limit < age_ns < WALL_CLOCK_NS:  # only wall-clock stamps can be behind
            return False
        self.frames_skipped_behind += 1
        now = time.monotonic()
        if now - self._behind_warn_t >= 1.0:
            log.warning(
                "node %.1f s behind the stream: frame %d skipped (%d so far)", age_ns * 1e-9, frame.frame_idx,
                self.frames_skipped_behind,
            )  # fmt: skip
            self._behind_warn_t = now
        return True

    @property
    def frames(self) -> int:
        """Frames published so far."""
        return self.figures.frames

    def _process(self, frame: AssembledFrame) -> None:
        ordered = [frame.views.get(name) for name in self.rig.names]
        t0, c0 = time.perf_counter(), time.thread_time()
        result = self.reconstructor.process(ordered, frame.stamp_ns)
        total, wall = (time.thread_time() - c0) * 1e3, (time.perf_counter() - t0) * 1e3
        out = Poses3D(frame.frame_idx, frame.stamp_ns, result.track_ids, result.poses)
        try:
            self.take.write(out, result.obs_px, result.obs_conf)
        except OutputError as exc:
            self._fail_output(exc)
            return
        self.pub.send_multipart(
            wire.encode_poses3d(out, {"node_ms": round(total, 3), "skeleton": self.skeleton.name}), copy=False
        )
        if self.feedback is not None:
            self.feedback.publish(frame, result, self.reconstructor.tracker)
        self.figures.add(
            frame.frame_idx, frame.stamp_ns, result.track_ids.tolist(), {**result.stage_ms, "total": total}, wall,
            result.reproj_px, (time.monotonic() - frame.arrival) * 1e3, any(v is None for v in ordered),
        )  # fmt: skip

    def _fail_output(self, exc: OutputError) -> None:
        if self.output_error is None:  # the first failure is the one to report; the rest follow from it
            self.output_error = str(exc)
            log.error("%s; the node stops taking frames (what was written stays readable)", exc)
        else:
            log.debug("also: %s", exc)

    # -- status ------------------------------------------------------------------------------
    def status(self, now: float) -> dict:
        """Current per-camera fps, skips, capture age, drops, latency and live tracks
        (:func:`capture.service.report.live_status`)."""
        from capture.service.report import live_status

        return live_status(self, now, self._status_t, self._status_frames)

    def _status(self, now: float) -> None:
        st = self.status(now)
        fps = " ".join(f"{c}:{v:g}" for c, v in st["fps"].items())
        age = [v for v in st["capture_age_ms"].values() if v is not None]
        log.info(
            "status: fps %s | skipped %d, late %d, refused %d, dead %s | latency %s ms, capture age max %s ms"
            " | tracks %d",
            fps, sum(st["skipped_at_source"].values()), st["late"], st["refused"], st["dead"] or "none",
            st["latency_ms_median"], max(age) if age else None, st["tracks"],
        )  # fmt: skip
        self.pub.send_multipart(wire.encode(wire.Message("status", "", self.frames, time.time_ns(), {}, st)))
        self._status_t = now
        self._status_frames = {c: s.frames for c, s in self.intake.cameras.items()}

    # -- outputs -----------------------------------------------------------------------------
    def _open_outputs(self) -> None:
        """Open (or continue) the take's files; a continued take keeps its frames and ids."""
        self.take = TakeFiles(self.out_dir, self.skeleton, self.cfg, self.rig.projections())
        if self.take.resumed:
            self.reconstructor.tracker.continue_ids_above(max(self.take.resumed["max_track_id_before"], 0))
            if self.take.resumed["last_frame_before"] >= 0:
                self.assembler.skip_until(self.take.resumed["last_frame_before"])

    def _close_outputs(self) -> list[str]:
        """Flush the smoother, close every file; the TRC files written."""
        try:
            return self.take.close(self.figures.rate_hz(), complete_outputs=not self.output_error)
        except OutputError as exc:
            self._fail_output(exc)
            return []

    # -- main loop ---------------------------------------------------------------------------
    def run(
        self,
        ctx: zmq.Context | None = None,
        until_all_ended: bool = True,
        idle_timeout_s: float | None = None,
        stop: threading.Event | None = None,
    ) -> dict:
        """Run the node until every camera ended or died (or ``stop`` is set), then finalise.

        Args:
            ctx: ZeroMQ context (the process's default instance if None).
            until_all_ended: stop once every camera ended or died and nothing is pending.
            idle_timeout_s: also stop after this long without any message (None: never).
            stop: when set (e.g. by SIGINT/SIGTERM), finish the frame at hand, flush and return.

        Returns:
            The summary dictionary (also written to ``summary.json`` where possible).

        Raises:
            CaptureError: the endpoints cannot be bound.
            OutputError: the output folder cannot be created or its poses file opened.
            InputError: the folder holds a poses file of another skeleton (it cannot be continued).
        """
        ctx = ctx or zmq.Context.instance()
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"{self.out_dir}: cannot create the output folder ({exc.strerror})") from None
        from capture.service.security import NodeSecurity

        security = NodeSecurity(ctx, self.cfg.node, self.rig.names)
        sub = ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.RCVHWM, self.cfg.node.rcvhwm)
        sub.setsockopt(zmq.LINGER, 0)
        sub.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)
        for prefix in (wire.TOPIC_POSE2D, "ctrl."):
            sub.setsockopt(zmq.SUBSCRIBE, prefix.encode())
        # XPUB: a PUB that sees its subscribers' (re)subscriptions (a continued take waits for them).
        self.pub = ctx.socket(zmq.XPUB)
        self.pub.setsockopt(zmq.XPUB_VERBOSE, 1)
        self.pub.setsockopt(zmq.LINGER, 2000)  # at the end, deliver the last frames to recorders (bounded)
        try:
            security.secure_input(sub)
            security.secure_output(self.pub)
            sub.bind(self.cfg.node.input_endpoint)
            self.pub.bind(self.cfg.node.output_endpoint)
            if self._feedback_on:
                self.feedback = RoiPublisher.from_config(ctx, self.cfg, self.rig, security)
            self._open_outputs()
        except (zmq.ZMQError, CaptureError) as exc:
            sub.close()
            self.pub.close()
            if self.feedback is not None:
                self.feedback.close()
            security.close()
            if isinstance(exc, zmq.ZMQError):
                raise CaptureError(
                    f"cannot bind {self.cfg.node.input_endpoint} / {self.cfg.node.output_endpoint}: {exc}"
                ) from None
            raise
        log.info(
            "node listening on %s, publishing on %s, cameras %s%s",
            self.cfg.node.input_endpoint, self.cfg.node.output_endpoint, ", ".join(self.rig.names),
            " (lossless: frames wait for every camera)" if self.cfg.node.lossless else "",
        )  # fmt: skip
        last_msg = time.monotonic()
        stop = stop or threading.Event()
        authenticated = security.input_secured
        try:

            def read(limit: int) -> int:
                n = 0
                while n < limit:
                    try:
                        frames = sub.recv_multipart(zmq.NOBLOCK, copy=False)
                    except zmq.Again:
                        break
                    n += 1
                    self.handle(frames, security.peer(frames), authenticated)
                return n

            while not stop.is_set() and not self.output_error:
                if sub.poll(50, zmq.POLLIN) and read(BATCH):
                    last_msg = time.monotonic()
                security.poll(self.intake)
                self._read_subscriptions()
                if self.feedback is not None:
                    self.feedback.poll()
                now = time.monotonic()
                self.intake.check_liveness(now)
                self._maybe_start(now)
                if self.cfg.node.status_every_s > 0 and now - self._status_t >= self.cfg.node.status_every_s:
                    self._status(now)
                self.process_ready()
                if until_all_ended and self._all_ended(now):
                    # Count what is already queued (bounded: a flood cannot hold the take open).
                    deadline = time.monotonic() + END_DRAIN_S
                    while time.monotonic() < deadline and read(BATCH) == BATCH:
                        pass
                    self.process_ready(flush=True)
                    break
                if idle_timeout_s is not None and now - last_msg > idle_timeout_s:
                    log.warning("no message for %.0f s; stopping", idle_timeout_s)
                    break
            if stop.is_set():
                self.interrupted = True
                log.info("node interrupted; writing outputs")
                # Workers stopped by the same Ctrl-C send their end-of-stream figures (frames sent,
                # skipped): take them for the summary, for at most STOP_DRAIN_S.
                deadline = time.monotonic() + STOP_DRAIN_S
                while time.monotonic() < deadline and not self._everyone_gone():
                    if sub.poll(50, zmq.POLLIN):
                        read(BATCH)
        finally:
            try:
                self.process_ready(flush=True)
            finally:
                sub.close()
                self.pub.close()
                if self.feedback is not None:
                    self.feedback.close()
                security.close()
        return self.finalise()

    def finalise(self) -> dict:
        """Close the outputs (smoothing and TRC files included) and write ``summary.json``."""
        trc = self._close_outputs()
        summary = self.summary(trc)
        try:
            tmp = self.out_dir / "summary.json.tmp"
            tmp.write_text(json.dumps(summary, indent=2) + "\n")
            tmp.replace(self.out_dir / "summary.json")
        except OSError as exc:
            log.error("%s: cannot write summary.json (%s)", self.out_dir, exc.strerror)
        return summary

    def summary(self, trc: list[str]) -> dict:
        """The run's summary (see README, "Run summary"; :func:`capture.service.report.run_summary`)."""
        from capture.service.report import run_summary

        return run_summary(self, trc)


def main(argv: list[str] | None = None) -> int:
    """``mvcap node``: run the reconstruction node. Exit 0 ok, 1 runtime failure or data lost, 2 bad input."""
    from calibration.checks import load_rig
    from capture.service.report import format_summary
    from core.config import load_config
    from core.errors import CalibrationError, InputError
    from core.logsetup import setup_logging

    p = argparse.ArgumentParser(prog="mvcap node", description=__doc__.splitlines()[0])
    p.add_argument("--config", default=None, help="TOML run config")
    p.add_argument("--calibration", default=None, help="calibration file (overrides the config's)")
    p.add_argument("--cameras", default=None, help="comma-separated camera names (default: config's, else all)")
    p.add_argument("--out", required=True, help="output folder (a folder holding a take is continued)")
    p.add_argument("--idle-timeout-s", type=float, default=None, help="stop after this long without messages")
    p.add_argument("--log-level", default="INFO")
    args = p.parse_args(argv)
    setup_logging(args.log_level)
    stop = stop_on_signals()
    try:
        cfg = load_config(args.config) if args.config else Config()
        calib = args.calibration or cfg.calibration
        if not calib:
            raise ConfigError("no calibration given (--calibration or the config's calibration key)")
        names = args.cameras.split(",") if args.cameras else [c.name for c in cfg.cameras] or None
        sizes = {c.name: c.image_size for c in cfg.cameras if c.image_size is not None}
        min_cameras = 1 if any(c.depth for c in cfg.cameras) else 2  # one RGB-D camera alone gives 3D
        rig = load_rig(calib, sizes=sizes, names=names, min_cameras=min_cameras)
        log.info("calibration %s, cameras %s", calib, ", ".join(rig.names))
        summary = Node(rig, cfg, args.out).run(idle_timeout_s=args.idle_timeout_s, stop=stop)
    except (ConfigError, CalibrationError, InputError) as exc:
        log.error("%s", exc)
        return 2
    except CaptureError as exc:
        log.error("%s", exc)
        return 1
    for line in format_summary(summary, args.out).splitlines():
        log.info("%s", line)
    return 0 if summary["complete"] or summary["interrupted"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
