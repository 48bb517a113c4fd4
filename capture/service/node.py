"""The central node: collect detections over ZeroMQ, reconstruct, track, publish and record.

The node binds a SUB socket for worker detections and a PUB socket for 3D poses. Views are grouped
by frame index: a frame is processed once every live camera has delivered it, moved past it
(a dropped frame), ended, or been silent for ``frame_timeout_s``. A frame that arrives after its
frame was processed is counted as late and dropped, never blocking the pipeline. A malformed message
is dropped and counted. A camera silent for ``heartbeat_timeout_s`` is reported dead (and alive
again when it returns) while the others go on.
"""

from __future__ import annotations

import argparse
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import zmq

from calibration.camera import CameraRig
from capture import wire
from capture.outputs import PosesWriter, read_poses_jsonl, write_trc_files
from capture.service.proc import peak_rss_mb, stats_ms, stop_on_signals
from capture.reconstruct import FrameReconstructor
from capture.service.sync import FrameAssembler
from core.config import Config
from core.errors import CaptureError, ConfigError, MessageError, ShapeError
from core.skeleton import COCO17, Skeleton
from core.types import Detections2D, Poses3D
from fusion.smoothing import SequenceFrame, smooth_sequence

__all__ = ["Node", "main"]

log = logging.getLogger(__name__)


@dataclass
class _Counters:
    received: int = 0
    malformed: int = 0
    unknown_camera: int = 0
    frames: int = 0
    frames_missing_views: int = 0
    last_warn: float = 0.0
    suppressed: int = 0
    events: list = field(default_factory=list)


class Node:
    """Reconstruction node.

    Args:
        rig: calibration of the expected cameras (in processing order).
        config: run configuration (matching, triangulation, fusion, node sections).
        out_dir: folder for ``poses3d.jsonl``, ``person_<id>.trc`` and ``summary.json``.
        skeleton: 2D/3D skeleton of the detections.
    """

    def __init__(self, rig: CameraRig, config: Config, out_dir: str | Path, skeleton: Skeleton = COCO17):
        self.rig = rig
        self.cfg = config
        self.out_dir = Path(out_dir)
        self.skeleton = skeleton
        self.reconstructor = FrameReconstructor(rig, skeleton, config.matching, config.triangulation, config.fusion)
        # With [smoothing] on, every frame's 2D measurements are kept for the UKF + RTS pass at the end
        # of the run (about P x C x J x 24 bytes per frame: 8 kB for 4 people, 5 views, 17 joints).
        self._sequence: list[tuple[int, SequenceFrame]] = []
        self.smoothing_ms = 0.0
        self.counters = _Counters()
        node = config.node
        bad = {k: v for k, v in node.clock_offsets_ms.items() if k not in rig.names or not isinstance(v, (int, float))}
        if bad:
            raise ConfigError(f"clock_offsets_ms must map camera names of the rig to numbers; got {bad}")
        self.assembler = FrameAssembler(
            rig.names,
            window_ns=int(node.sync_window_ms * 1e6),
            offsets_ns={k: int(v * 1e6) for k, v in node.clock_offsets_ms.items()},
            timeout_s=node.frame_timeout_s,
        )
        self.last_seen: dict[str, float] = {}
        self.dead: set[str] = set()
        self.ended: set[str] = set()
        self.worker_stats: dict[str, dict] = {}
        self.frames_per_camera: dict[str, int] = {}
        self.source_drops: dict[str, int] = {}
        self._arrival: dict[int, float] = {}  # id(detections) -> monotonic arrival time
        self.latency_ms: list[float] = []
        self._status_t = time.monotonic()
        self._status_frames: dict[str, int] = {}
        self.stage_ms: dict[str, list[float]] = {
            "matching": [],
            "triangulation": [],
            "tracking": [],
            "total": [],
        }
        self.wall_ms: list[float] = []
        self.reproj: list[np.ndarray] = []
        self.interrupted = False

    # -- message handling -------------------------------------------------------------------
    def _warn(self, fmt: str, *args: object) -> None:
        """Rate-limited warning (at most one per second; the rest are counted)."""
        now = time.monotonic()
        if now - self.counters.last_warn >= 1.0:
            if self.counters.suppressed:
                fmt += " (%d similar warnings suppressed)"
                args = (*args, self.counters.suppressed)
            log.warning(fmt, *args)
            self.counters.last_warn = now
            self.counters.suppressed = 0
        else:
            self.counters.suppressed += 1

    def handle(self, frames: list[bytes]) -> None:
        """Decode and file one received message; malformed ones are dropped and counted."""
        c = self.counters
        c.received += 1
        try:
            msg = wire.decode(frames)
            if msg.camera not in self.rig.names:
                c.unknown_camera += 1
                self._warn("dropped message from unknown camera %r", msg.camera[:40])
                return
            if msg.schema == "pose2d":
                dets = wire.decode_detections(msg)
                if dets.poses.shape[1] != self.skeleton.n_joints:
                    raise MessageError(f"expected {self.skeleton.n_joints} joints; got {dets.poses.shape[1]}")
        except (MessageError, ShapeError) as exc:
            c.malformed += 1
            self._warn("dropped malformed message: %s", exc)
            return
        now = time.monotonic()
        cam = msg.camera
        self.last_seen[cam] = now
        if cam in self.dead:
            self.dead.discard(cam)
            c.events.append({"camera": cam, "event": "alive", "time_ns": time.time_ns()})
            log.warning("camera %s is alive again", cam)
        if msg.schema == "heartbeat" and msg.meta.get("event") == "hello":
            c.events.append({"camera": cam, "event": "hello", "time_ns": time.time_ns(), "pid": msg.meta.get("pid")})
            log.info("camera %s announced itself (host %s, pid %s)", cam, msg.meta.get("host"), msg.meta.get("pid"))
        if msg.schema == "heartbeat" and isinstance(msg.meta.get("dropped"), int):
            self.source_drops[cam] = msg.meta["dropped"]
        if msg.schema == "eos":
            self.ended.add(cam)
            self.worker_stats[cam] = msg.meta
            log.info("camera %s: end of stream after %s frames", cam, msg.meta.get("frames"))
        elif msg.schema == "pose2d":
            self.ended.discard(cam)
            if not self.assembler.add(dets, now):
                self._warn("camera %s: frame %d arrived late; dropped", cam, dets.frame_idx)
                return
            self.frames_per_camera[cam] = self.frames_per_camera.get(cam, 0) + 1
            self._arrival[id(dets)] = now

    def _check_liveness(self, now: float) -> None:
        for cam in self.rig.names:
            seen = self.last_seen.get(cam)
            if seen is not None and cam not in self.dead and cam not in self.ended:
                if now - seen > self.cfg.node.heartbeat_timeout_s:
                    self.dead.add(cam)
                    self.counters.events.append({"camera": cam, "event": "dead", "time_ns": time.time_ns()})
                    log.warning("camera %s is dead (silent for %.1f s); going on without it", cam, now - seen)

    def status(self, now: float) -> dict:
        """Current per-camera fps, drops, latency and live tracks (also logged and published)."""
        dt = max(now - self._status_t, 1e-9)
        recent = self.latency_ms[-200:]
        return {
            "fps": {
                c: round((self.frames_per_camera.get(c, 0) - self._status_frames.get(c, 0)) / dt, 1)
                for c in self.rig.names
            },
            "dropped_at_source": dict(self.source_drops),
            "late": self.assembler.late,
            "malformed": self.counters.malformed,
            "dead": sorted(self.dead),
            "latency_ms_median": round(float(np.median(recent)), 2) if recent else None,
            "tracks": len(self.reconstructor.tracker.tracks),
            "frames": self.counters.frames,
        }

    def _status(self, now: float) -> None:
        st = self.status(now)
        fps = " ".join(f"{c}:{v:g}" for c, v in st["fps"].items())
        log.info(
            "status: fps %s | late %d, dropped at source %d, malformed %d, dead %s | latency %s ms"
            " | tracks %d",
            fps, st["late"], sum(st["dropped_at_source"].values()), st["malformed"], st["dead"] or "none",
            st["latency_ms_median"], st["tracks"],
        )  # fmt: skip
        self.pub.send_multipart(wire.encode(wire.Message("status", "", self.counters.frames, time.time_ns(), {}, st)))
        self._status_t = now
        self._status_frames = dict(self.frames_per_camera)

    def process_ready(self, flush: bool = False) -> None:
        """Process every complete frame, in order (or everything pending if ``flush``)."""
        live = set(self.rig.names) - self.dead - self.ended
        for frame in self.assembler.pop_ready(time.monotonic(), live, flush):
            self._process(frame.frame_idx, frame.views, frame.stamp_ns)

    def _process(self, frame_idx: int, views: dict[str, Detections2D], stamp_ns: int) -> None:
        ordered = [views.get(name) for name in self.rig.names]
        if any(v is None for v in ordered):
            self.counters.frames_missing_views += 1
        t0, c0 = time.perf_counter(), time.thread_time()
        result = self.reconstructor.process(ordered, stamp_ns)
        total, wall = (time.thread_time() - c0) * 1e3, (time.perf_counter() - t0) * 1e3
        for k, v in result.stage_ms.items():
            self.stage_ms[k].append(v)
        self.stage_ms["total"].append(total)
        self.wall_ms.append(wall)
        self.reproj.append(result.reproj_px)
        frame = Poses3D(frame_idx, stamp_ns, result.track_ids, result.poses)
        self.writer.write(frame)
        if self.cfg.smoothing.enabled:
            self._sequence.append(
                (frame_idx, SequenceFrame(stamp_ns, result.track_ids, result.poses, result.obs_px, result.obs_conf))
            )
        self.pub.send_multipart(
            wire.encode_poses3d(frame, {"node_ms": round(total, 3), "skeleton": self.skeleton.name}),
            copy=False,
        )
        arrivals = [self._arrival.pop(id(v), None) for v in views.values()]
        arrivals = [a for a in arrivals if a is not None]
        if arrivals:  # latency: last view's arrival -> 3D pose published
            self.latency_ms.append((time.monotonic() - max(arrivals)) * 1e3)
        self.counters.frames += 1

    # -- main loop ---------------------------------------------------------------------------
    def run(
        self,
        ctx: zmq.Context | None = None,
        until_all_ended: bool = True,
        idle_timeout_s: float | None = None,
        stop: threading.Event | None = None,
    ) -> dict:
        """Run the node until every camera sent end-of-stream (or ``stop`` is set), then finalise.

        Args:
            ctx: ZeroMQ context (the process's default instance if None).
            until_all_ended: stop once all cameras ended and nothing is pending.
            idle_timeout_s: also stop after this long without any message (None: never).
            stop: when set (e.g. by SIGINT/SIGTERM), finish the frame at hand, flush and return.

        Returns:
            The summary dictionary (also written to ``summary.json``).
        """
        ctx = ctx or zmq.Context.instance()
        self.out_dir.mkdir(parents=True, exist_ok=True)
        sub = ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.RCVHWM, self.cfg.node.rcvhwm)
        sub.setsockopt(zmq.LINGER, 0)
        sub.setsockopt(zmq.MAXMSGSIZE, 64 * 1024 * 1024)
        for prefix in (wire.TOPIC_POSE2D, "ctrl."):
            sub.setsockopt(zmq.SUBSCRIBE, prefix.encode())
        self.pub = ctx.socket(zmq.PUB)
        self.pub.setsockopt(zmq.LINGER, 0)
        self.writer = PosesWriter(self.out_dir / "poses3d.jsonl", self.skeleton)
        try:
            sub.bind(self.cfg.node.input_endpoint)
            self.pub.bind(self.cfg.node.output_endpoint)
        except zmq.ZMQError as exc:
            sub.close()
            self.pub.close()
            self.writer.close()
            raise CaptureError(
                f"cannot bind {self.cfg.node.input_endpoint} / {self.cfg.node.output_endpoint}: {exc}"
            ) from None
        log.info(
            "node listening on %s, publishing on %s, cameras %s",
            self.cfg.node.input_endpoint,
            self.cfg.node.output_endpoint,
            ", ".join(self.rig.names),
        )
        last_msg = time.monotonic()
        stop = stop or threading.Event()
        try:
            while not stop.is_set():
                if sub.poll(100, zmq.POLLIN):
                    while True:
                        try:
                            frames = sub.recv_multipart(zmq.NOBLOCK)
                        except zmq.Again:
                            break
                        self.handle(frames)
                    last_msg = time.monotonic()
                now = time.monotonic()
                self._check_liveness(now)
                if self.cfg.node.status_every_s > 0 and now - self._status_t >= self.cfg.node.status_every_s:
                    self._status(now)
                self.process_ready()
                if until_all_ended and set(self.rig.names) <= self.ended:
                    self.process_ready(flush=True)
                    break
                if idle_timeout_s is not None and now - last_msg > idle_timeout_s:
                    log.warning("no message for %.0f s; stopping", idle_timeout_s)
                    break
            if stop.is_set():
                self.interrupted = True
                log.info("node interrupted; writing outputs")
        finally:
            try:
                self.process_ready(flush=True)
            finally:
                self.writer.close()
                sub.close()
                self.pub.close()
        return self.finalise()

    def _smooth(self) -> str | None:
        """Write ``poses3d_smoothed.jsonl`` (UKF + RTS over the run); its name, or None if not made."""
        if not self._sequence:
            return None
        t0 = time.thread_time()
        try:
            smoothed = smooth_sequence(
                [f for _, f in self._sequence],
                self.rig.projections(),
                self.cfg.smoothing,
                self.cfg.triangulation.min_joint_conf,
            )
        except (ValueError, ShapeError) as exc:  # e.g. repeated time stamps: keep the per-frame output
            log.error("smoothing skipped (%s); the per-frame poses3d.jsonl stands", exc)
            return None
        name = "poses3d_smoothed.jsonl"
        writer = PosesWriter(self.out_dir / name, self.skeleton)
        try:
            for (frame_idx, f), poses in zip(self._sequence, smoothed, strict=True):
                writer.write(Poses3D(frame_idx, f.stamp_ns, f.track_ids, poses))
        finally:
            writer.close()
        self.smoothing_ms = (time.thread_time() - t0) * 1e3
        log.info("smoothed %d frames in %.1f s (UKF + RTS): %s", len(smoothed), self.smoothing_ms / 1e3, name)
        return name

    def finalise(self) -> dict:
        """Write TRC files and ``summary.json`` from the recorded poses; return the summary.

        With ``[smoothing] enabled`` the run is first smoothed (:func:`fusion.smoothing.smooth_sequence`)
        into ``poses3d_smoothed.jsonl`` and the TRC files are written from it; ``poses3d.jsonl``
        keeps the per-frame (published) poses.
        """
        smoothed = self._smooth()
        header, frames = read_poses_jsonl(self.out_dir / (smoothed or "poses3d.jsonl"))
        stamps = np.array([f.stamp_ns for f in frames], dtype=np.int64)
        rate = float(1e9 / np.median(np.diff(stamps))) if len(stamps) > 1 and np.median(np.diff(stamps)) > 0 else 0.0
        trc = write_trc_files(frames, header["joints"], self.out_dir, round(rate, 3)) if frames else []
        spans: dict[int, list[int]] = {}
        for f in frames:
            for tid in f.track_ids:
                spans.setdefault(int(tid), []).append(f.frame_idx)
        reproj = np.concatenate(self.reproj) if self.reproj else np.zeros(0)
        c = self.counters
        summary = {
            "frames": c.frames,
            "frames_missing_views": c.frames_missing_views,
            "rate_hz": round(rate, 3),
            "cameras": list(self.rig.names),
            "tracks": [
                {"id": tid, "first_frame": min(v), "last_frame": max(v), "n_frames": len(v)}
                for tid, v in sorted(spans.items())
            ],
            "reprojection_px": {
                "median": round(float(np.median(reproj)), 3) if reproj.size else None,
                "p90": round(float(np.percentile(reproj, 90)), 3) if reproj.size else None,
                "n_observations": int(reproj.size),
            },
            "node_ms_per_frame": {k: stats_ms(v) for k, v in self.stage_ms.items()},
            "node_ms_per_frame_note": (
                "CPU time of the node's one thread: matching (incl. undistortion) + triangulation"
                " + tracking; "
                "detection excluded"
            ),
            "node_wall_ms_per_frame": stats_ms(self.wall_ms),
            "latency_ms": stats_ms(self.latency_ms),
            "latency_note": "last view's arrival at the node -> 3D pose published, wall clock",
            "dropped_at_source": self.source_drops,
            "left_right_pairs_unflipped": self.reconstructor.n_unflipped,
            "frames_per_camera": self.frames_per_camera,
            "workers": self.worker_stats,
            "node_peak_rss_mb": round(peak_rss_mb(), 1),
            "messages": {
                "received": c.received,
                "malformed": c.malformed,
                "unknown_camera": c.unknown_camera,
                "late": self.assembler.late,
            },
            "camera_events": c.events,
            "interrupted": self.interrupted,
            "outputs": {"poses": "poses3d.jsonl", "poses_smoothed": smoothed, "trc": [p.name for p in trc]},
            "smoothing_cpu_ms_per_frame": (
                round(self.smoothing_ms / max(len(self._sequence), 1), 3) if smoothed else None
            ),
        }
        tmp = self.out_dir / "summary.json.tmp"
        tmp.write_text(json.dumps(summary, indent=2) + "\n")
        tmp.replace(self.out_dir / "summary.json")
        return summary


def main(argv: list[str] | None = None) -> int:
    """``mvcap node``: run the reconstruction node. Exit 0 ok, 1 runtime failure, 2 bad input."""
    from calibration.io import read_calibration
    from core.config import load_config
    from core.errors import CalibrationError, InputError
    from core.logsetup import setup_logging

    p = argparse.ArgumentParser(prog="mvcap node", description=__doc__.splitlines()[0])
    p.add_argument("--config", default=None, help="TOML run config")
    p.add_argument("--calibration", default=None, help="calibration file (overrides the config's)")
    p.add_argument("--cameras", default=None, help="comma-separated camera names (default: config's, else all)")
    p.add_argument("--out", required=True, help="output folder")
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
        rig = read_calibration(calib)
        names = args.cameras.split(",") if args.cameras else [c.name for c in cfg.cameras] or list(rig.names)
        rig = rig.subset(names)
        if len(rig) < 2:
            raise ConfigError(f"{calib}: need at least 2 cameras; got {len(rig)}")
        log.info("calibration %s, cameras %s", calib, ", ".join(rig.names))
        summary = Node(rig, cfg, args.out).run(idle_timeout_s=args.idle_timeout_s, stop=stop)
    except (ConfigError, CalibrationError, InputError) as exc:
        log.error("%s", exc)
        return 2
    except CaptureError as exc:
        log.error("%s", exc)
        return 1
    log.info(
        "node: %d frames, %d tracks, reprojection median %s px",
        summary["frames"],
        len(summary["tracks"]),
        summary["reprojection_px"]["median"],
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
