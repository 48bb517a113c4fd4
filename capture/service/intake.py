"""What the node accepts from the wire, and what it knows about each camera.

:class:`Intake` turns one received ZeroMQ message into either a :class:`~core.types.Detections2D`
to file or nothing, and never raises: every message it refuses is dropped and counted by kind
(``malformed.<defect>``, ``unknown_camera``, ``impersonation``, ``people_capped``...), with at most
one warning per second in the log. It also keeps the run lifecycle of every configured camera:

    absent -> hello (process up, heartbeating) -> ready (source and model open) -> streaming
           -> ended (end-of-stream message);   any state -> dead (silent for the heartbeat
           timeout) -> alive again when it is heard from

Everything it keeps is bounded by the number of configured cameras: counters, the latest
figures per camera, and at most ``MAX_EVENTS`` lifecycle events (the rest are counted). Text that
came from the wire is sanitised (printable ASCII, truncated) before it reaches a log line or the
summary, so a sender cannot forge log lines.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from capture import wire
from core.errors import MessageError, ShapeError
from core.types import Detections2D, RGBDDetections

__all__ = ["MAX_EVENTS", "CameraState", "Intake", "sanitise"]

log = logging.getLogger(__name__)

MAX_EVENTS = 1000
"""Lifecycle events kept for the summary; later ones are only counted."""
_MAX_COUNT = 2**40
_STAT_KEYS = (
    "frames",
    "skipped",
    "peak_rss_mb",
    "pid",
    "interrupted",
    "depth_lifted",
    "depth_missing",
    "cpu_ms_per_frame",
    "roi_full",
    "roi_crops",
    "roi_crops_run",
    "roi_hints_used",
    "roi_hint_timeouts",
)


def sanitise(value: object, limit: int = 64) -> str:
    """Printable-ASCII text of at most ``limit`` characters (control characters become ``?``).

    Example:
        >>> sanitise("host\\nFAKE LOG LINE")
        'host?FAKE LOG LINE'
    """
    text = str(value)[:limit]
    return "".join(c if " " <= c <= "~" else "?" for c in text)


def _count(meta: dict, key: str) -> int | None:
    v = meta.get(key)
    return v if isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= _MAX_COUNT else None


def _prev(meta: dict, dets: Detections2D) -> tuple[int, int] | None:
    """The ``[frame_idx, stamp_ns]`` of the previous frame a worker declares; None if absent or absurd."""
    prev = meta.get("prev")
    if not (isinstance(prev, list) and len(prev) == 2 and all(type(v) is int for v in prev)):
        return None
    frame, stamp = prev
    if frame == -1 and stamp == -1:
        return -1, -1
    if 0 <= frame < dets.frame_idx and 0 <= stamp < dets.stamp_ns:
        return frame, stamp
    return None


def _worker_stats(meta: dict) -> dict[str, Any]:
    """The end-of-stream statistics a worker sent, keeping known keys with sane values only."""
    out: dict[str, Any] = {}
    for key in _STAT_KEYS:
        v = meta.get(key)
        if isinstance(v, bool) or (isinstance(v, (int, float)) and np.isfinite(v) and abs(v) < 1e15):
            out[key] = v
    det = meta.get("detection_ms")
    if isinstance(det, dict):
        out["detection_ms"] = {
            k: v
            for k, v in list(det.items())[:8]
            if isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v)
        }
    if isinstance(meta.get("error"), str):
        out["error"] = sanitise(meta["error"], 300)
    return out


@dataclass
class CameraState:
    """What the node knows about one configured camera.

    Attributes:
        state: ``absent``, ``hello``, ``ready``, ``streaming`` or ``ended``.
        dead: silent for longer than the heartbeat timeout (and not ended).
        last_seen: monotonic time of its last message, seconds (None: never heard from).
        frames: detections filed into the assembler.
        late: detections dropped because their frame had left.
        skipped: frames its worker skipped at the source (latest figure it reported).
        latest_stamp_ns: capture stamp of its latest detection, nanoseconds.
        hellos: ``hello`` messages received (a restarted worker says hello again).
        worker: its end-of-stream statistics.
    """

    state: str = "absent"
    dead: bool = False
    last_seen: float | None = None
    frames: int = 0
    late: int = 0
    skipped: int = 0
    latest_stamp_ns: int | None = None
    hellos: int = 0
    worker: dict[str, Any] = field(default_factory=dict)
    _host_pid: tuple[str, int | None] | None = None


class Intake:
    """Validates received messages and keeps the cameras' lifecycle.

    Args:
        cameras: configured camera names.
        n_joints: joints per detection (the skeleton's J).
        max_people: at most this many people per view are kept (the most confident by box score).
        heartbeat_timeout_s: a camera silent this long is reported dead, seconds.
    """

    def __init__(self, cameras: tuple[str, ...], n_joints: int, max_people: int, heartbeat_timeout_s: float):
        self.cameras = {name: CameraState() for name in cameras}
        self.n_joints = n_joints
        self.max_people = max_people
        self.heartbeat_timeout_s = heartbeat_timeout_s
        self.received = 0
        self.dropped: Counter[str] = Counter()
        self.events: list[dict[str, Any]] = []
        self.events_not_kept = 0
        self._last_warn = 0.0
        self._suppressed = 0

    # -- bookkeeping -------------------------------------------------------------------------
    def drop(self, kind: str, text: str, *args: object) -> None:
        """Count a refused message under ``kind`` and warn at most once a second."""
        self.dropped[kind] += 1
        now = time.monotonic()
        if now - self._last_warn >= 1.0:
            if self._suppressed:
                text += " (%d similar warnings suppressed)"
                args = (*args, self._suppressed)
            log.warning(text, *args)
            self._last_warn, self._suppressed = now, 0
        else:
            self._suppressed += 1

    def event(self, camera: str, kind: str, **extra: Any) -> None:
        """Record a lifecycle event (bounded: past ``MAX_EVENTS`` they are only counted)."""
        if len(self.events) < MAX_EVENTS:
            self.events.append({"camera": camera, "event": kind, "time_ns": time.time_ns(), **extra})
        else:
            self.events_not_kept += 1

    @property
    def malformed(self) -> int:
        """Messages refused as malformed (all defects together)."""
        return sum(v for k, v in self.dropped.items() if k.startswith("malformed."))

    # -- lifecycle ---------------------------------------------------------------------------
    def ready(self) -> set[str]:
        """Cameras whose source and model are open (ready, streaming or ended)."""
        return {c for c, s in self.cameras.items() if s.state in ("ready", "streaming", "ended")}

    def gone(self) -> set[str]:
        """Cameras not worth waiting for: ended or dead."""
        return {c for c, s in self.cameras.items() if s.state == "ended" or s.dead}

    def check_liveness(self, now: float) -> None:
        """Report cameras silent for longer than the heartbeat timeout as dead."""
        for cam, s in self.cameras.items():
            if s.last_seen is None or s.dead or s.state == "ended":
                continue
            if now - s.last_seen > self.heartbeat_timeout_s:
                s.dead = True
                self.event(cam, "dead")
                log.warning("camera %s is dead (silent for %.1f s); going on without it", cam, now - s.last_seen)

    # -- messages ----------------------------------------------------------------------------
    def accept(
        self, frames: list, peer: str | None = None, authenticated: bool = False
    ) -> tuple[Detections2D, tuple[int, int] | None] | None:
        """Decode one message; update the camera's state; return its detections, if any.

        Args:
            frames: the received multipart message.
            peer: the sender's authenticated name (CURVE User-Id), when ``authenticated``.
            authenticated: the input is CURVE-secured: a message must come from its own camera's key.

        Returns:
            The detections to file (people capped at ``max_people``) and the ``(frame_idx,
            stamp_ns)`` of the camera's previous sent frame if its worker declared it (``meta.prev``;
            :meth:`capture.service.sync.FrameAssembler.add`); None for a control message or a
            message dropped and counted.
        """
        self.received += 1
        try:
            msg = wire.decode(frames)
            if msg.camera not in self.cameras:
                self.drop("unknown_camera", "dropped message from unknown camera %r", sanitise(msg.camera))
                return None
            if authenticated and peer != msg.camera:
                self.drop(
                    "impersonation", "dropped message for camera %s sent with the key of %s",
                    msg.camera, sanitise(peer),
                )  # fmt: skip
                return None
            dets = None
            if msg.schema == "pose2d":
                dets = wire.decode_detections(msg)
                if dets.poses.shape[1] != self.n_joints:
                    raise MessageError(f"expected {self.n_joints} joints; got {dets.poses.shape[1]}")
            elif msg.schema not in ("heartbeat", "eos"):
                raise MessageError(f"schema {msg.schema!r} is not accepted on the input")
        except (MessageError, ShapeError) as exc:
            kind = getattr(exc, "kind", "other")
            self.drop(f"malformed.{kind}", "dropped malformed message: %s", sanitise(exc, 200))
            return None
        cam, s = msg.camera, self.cameras[msg.camera]
        s.last_seen = time.monotonic()
        skipped = _count(msg.meta, "skipped")  # a worker's figure, in heartbeats and end-of-stream
        if skipped is not None and msg.schema != "pose2d":
            s.skipped = skipped
        if s.dead:
            s.dead = False
            self.event(cam, "alive")
            log.warning("camera %s is alive again", cam)
        if msg.schema == "heartbeat":
            self._heartbeat(cam, s, msg.meta)
            return None
        if msg.schema == "eos":
            s.state = "ended"
            s.worker = _worker_stats(msg.meta)
            self.event(cam, "end", frames=s.worker.get("frames"))
            log.info("camera %s: end of stream after %s frames", cam, s.worker.get("frames"))
            if "error" in s.worker:
                log.error("camera %s ended with an error: %s", cam, s.worker["error"])
            return None
        if dets.poses.shape[0] > self.max_people:
            self.drop(
                "people_capped", "camera %s frame %d: %d people; kept the %d most confident",
                cam, dets.frame_idx, dets.poses.shape[0], self.max_people,
            )  # fmt: skip
            keep = np.sort(np.argsort(-dets.boxes[:, 4], kind="stable")[: self.max_people])
            emb = None if dets.embeddings is None else dets.embeddings[keep]  # descriptors follow the people kept
            if isinstance(dets, RGBDDetections):  # so do the lifted joints
                dets = RGBDDetections(
                    cam, dets.frame_idx, dets.stamp_ns, dets.poses[keep], dets.boxes[keep],
                    dets.joints3d[keep], dets.joints3d_cov[keep], embeddings=emb,
                )  # fmt: skip
            else:
                dets = Detections2D(
                    cam, dets.frame_idx, dets.stamp_ns, dets.poses[keep], dets.boxes[keep], embeddings=emb
                )
        return dets, _prev(msg.meta, dets)

    def filed(self, dets: Detections2D) -> None:
        """Note that a detection entered the assembler (its camera is streaming, again after an end)."""
        s = self.cameras[dets.camera]
        s.state = "streaming"
        s.frames += 1
        s.latest_stamp_ns = dets.stamp_ns

    def _heartbeat(self, cam: str, s: CameraState, meta: dict) -> None:
        event = meta.get("event")
        if event == "hello":
            s.hellos += 1
            who = (sanitise(meta.get("host")), _count(meta, "pid"))
            if who != s._host_pid:  # first hello, or a restarted worker; repeats are only counted
                self.event(cam, "hello", host=who[0], pid=who[1])
                log.info("camera %s announced itself (host %s, pid %s)", cam, *who)
                s._host_pid = who
                if s.state == "ended":  # a new process of an ended camera: it streams again
                    s.state = "hello"
            if s.state == "absent":  # a repeat, e.g. a straggler read after its end of stream, revives nothing
                s.state = "hello"
        elif event == "ready":
            if s.state != "ready":
                self.event(cam, "ready")
                log.info("camera %s is ready", cam)
            s.state = "ready"
        elif meta.get("state") == "ready" and s.state in ("absent", "hello"):
            s.state = "ready"  # a node (re)started after the worker's ready event hears it here
        elif s.state == "absent":
            s.state = "hello"
