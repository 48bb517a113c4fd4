"""3D-guided regions of interest: the node tells each worker where its tracked people will be.

After every processed frame the node projects the 3D poses it published into every camera and
sends each worker one :class:`capture.wire.RoiHint` (``rois.<camera>.``, K boxes, K may be 0) on a
socket of its own, ``[node] feedback_endpoint``, as the SmartEdgeSensor3DHumanPose system feeds the
fused 3D skeletons back to its sensors (Bultmann & Behnke 2021, *Real-Time Multi-View 3D Human Pose
Estimation using Semantic Feedback to Smart Edge Sensors*, RSS, §III-D). A worker then runs its
detector on the boxes only, and on the full frame when the hint asks for it (``full``), when it has
no hint, or every ``roi_full_every`` frames.

Where the boxes lie and when a full frame is asked for: :mod:`capture.service.roi_plan`.

Delivery. The publisher is an XPUB: it sees each worker's subscription and sends that camera's last
``REPLAY_FRAMES`` hints again when one arrives, so a worker that subscribed after the node's first
frames still gets their hints (ZeroMQ's slow joiner); :class:`RoiSubscriber` keeps the hints it
got by frame and drops duplicates. Offline runs are deterministic when the worker detecting frame f
uses exactly the hint of frame ``f - roi_lag_frames`` (:meth:`RoiSubscriber.wait_for`); live runs use
the newest (:meth:`RoiSubscriber.poll`).

Security: the socket binds beyond loopback only with ``[node] curve_secret_key``; it is then a
CURVE server that accepts the cameras' keys (``curve_clients_dir``), as the node input does.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Final

import numpy as np
import zmq

from calibration.camera import CameraRig
from capture import wire
from capture.service.roi_plan import RoiPlanner
from capture.wire import RoiHint
from core.config import Config, NodeConfig
from core.errors import CaptureError, ConfigError, MessageError

__all__ = ["REPLAY_FRAMES", "RoiPublisher", "RoiSubscriber", "check_feedback_endpoint", "feedback_enabled"]

log = logging.getLogger(__name__)

REPLAY_FRAMES: Final = 64
"""Hints per camera the publisher keeps to send again to a worker that subscribes late."""
KEEP_FRAMES: Final = 256
"""Hints a subscriber keeps by frame index (the oldest are forgotten)."""
REORDER_WAIT_S: Final = 1.0
"""``wait_for`` waits at most this long (seconds) for the asked frame's hint once a newer one came
(a replay after a late subscription can bring older hints after newer ones)."""
MAX_MESSAGE_BYTES: Final = 65536
"""Largest ``rois`` message a subscriber accepts (256 boxes are 6 kB)."""


def check_feedback_endpoint(node: NodeConfig) -> None:
    """Refuse a feedback endpoint reachable from other machines without CURVE.

    Raises:
        ConfigError: ``feedback_endpoint`` is not loopback (``capture.service.security.is_loopback``)
            and ``curve_secret_key`` is not set.
    """
    from capture.service.security import is_loopback

    if not node.curve_secret_key and not is_loopback(node.feedback_endpoint):
        raise ConfigError(
            f"node.feedback_endpoint {node.feedback_endpoint} is reachable from other machines: set "
            "curve_secret_key and curve_clients_dir (mvcap keys), or use a loopback address"
        )


def feedback_enabled(config: Config) -> bool:
    """Whether the node sends regions of interest: ``[detector] rois`` is on.

    Raises:
        ConfigError: it is on and the endpoint is exposed without CURVE (:func:`check_feedback_endpoint`).
    """
    if config.detector.rois:
        check_feedback_endpoint(config.node)
    return config.detector.rois


def _live_ids(tracker: Any) -> np.ndarray:
    """(T,) int64 ids of the tracks a tracker holds (``fusion.live.LiveTracker`` or ``fusion.tracking.Tracker``)."""
    return np.array([t.track_id for t in tracker.tracks], dtype=np.int64)


class RoiPublisher:
    """The node's side: plans each frame's hints and publishes them on ``[node] feedback_endpoint``.

    Args:
        ctx: the node's ZeroMQ Context.
        rig: the node's cameras.
        endpoint: where to bind (see :func:`check_feedback_endpoint`).
        security: the node's :class:`capture.service.security.NodeSecurity`; with CURVE on, the
            socket accepts the cameras' keys (ZAP domain ``feedback``).
        planner: the hint planner (default: :class:`RoiPlanner` of ``rig``).

    Raises:
        CaptureError: the endpoint cannot be bound.
        InputError: a camera key file is missing or malformed.

    Attributes:
        sent: hints published; replayed: hints sent again to late subscribers.
    """

    def __init__(
        self, ctx: zmq.Context, rig: CameraRig, endpoint: str, security: Any = None, planner: RoiPlanner | None = None
    ) -> None:
        self.planner = planner or RoiPlanner(rig)
        self.endpoint = endpoint
        self.sent = self.replayed = 0
        self._recent: dict[str, deque] = {cam.name: deque(maxlen=REPLAY_FRAMES) for cam in rig}
        self.sock = ctx.socket(zmq.XPUB)
        self.sock.setsockopt(zmq.XPUB_VERBOSE, 1)  # every (re)subscription, for the replay
        self.sock.setsockopt(zmq.SNDHWM, 4 * REPLAY_FRAMES)
        self.sock.setsockopt(zmq.LINGER, 0)
        try:
            server = getattr(security, "server", None)
            if server is not None:
                from capture.service.security import load_public_keys

                keys = load_public_keys(security.cfg.curve_clients_dir, security.cameras)
                server.secure(self.sock, security.cfg.curve_secret_key, keys, "feedback")
            self.sock.bind(endpoint)
        except (zmq.ZMQError, CaptureError) as exc:
            self.sock.close()
            if isinstance(exc, zmq.ZMQError):
                raise CaptureError(f"cannot bind the feedback endpoint {endpoint}: {exc}") from None
            raise
        log.info("regions of interest published on %s", endpoint)

    @classmethod
    def from_config(cls, ctx: zmq.Context, config: Config, rig: CameraRig, security: Any = None) -> RoiPublisher:
        """The publisher of a run: ``[node] feedback_endpoint``, lead ``[detector] roi_lag_frames`` + 1."""
        planner = RoiPlanner(rig, lead_frames=config.detector.roi_lag_frames + 1)
        return cls(ctx, rig, config.node.feedback_endpoint, security, planner)

    def publish(self, frame: Any, result: Any, tracker: Any = None) -> list[RoiHint]:
        """Plan and send the hints of one processed frame.

        Args:
            frame: the :class:`capture.service.sync.AssembledFrame` (``frame_idx``, ``stamp_ns``,
                ``views``).
            result: its :class:`capture.pipeline.FrameResult` (``track_ids``, ``poses``, and
                ``unclaimed`` where it has one).
            tracker: the reconstructor's tracker (its ``tracks``), for tentative and lost tracks.

        Returns:
            The hints sent, one per camera.
        """
        self.poll()
        live = None if tracker is None else _live_ids(tracker)
        hints = self.planner.plan(
            frame.frame_idx, frame.stamp_ns, result.track_ids, result.poses, live,
            getattr(result, "unclaimed", None), frame.views,
        )  # fmt: skip
        for hint in hints:
            msg = wire.encode_rois(hint)
            self._recent[hint.camera].append(msg)
            self.sock.send_multipart(msg, copy=False)
            self.sent += 1
        return hints

    def poll(self) -> int:
        """Read the workers' subscriptions (non-blocking); replay the hints a new subscriber missed.

        Returns:
            Hints sent again.
        """
        n = 0
        while True:
            try:
                event = self.sock.recv(zmq.NOBLOCK)
            except zmq.Again:
                break
            if event[:1] != b"\x01":
                continue
            prefix = event[1:]
            for camera, recent in self._recent.items():
                if wire.topic_for(wire.TOPIC_ROIS, camera).encode().startswith(prefix):
                    for msg in recent:
                        self.sock.send_multipart(msg, copy=False)
                    n += len(recent)
        self.replayed += n
        return n

    def summary(self) -> dict:
        """Figures for the run summary: frames, hints sent and replayed, full-frame requests, boxes."""
        p = self.planner
        return {"frames": p.frames, "hints": self.sent, "replayed": self.replayed, "full": p.full_hints,
                "boxes": p.boxes, "period_s": round(p.period_s, 4)}  # fmt: skip

    def close(self) -> None:
        """Close the socket (idempotent)."""
        self.sock.close(linger=0)


class RoiSubscriber:
    """A worker's side: receives its camera's hints from the node.

    Args:
        ctx: the worker's ZeroMQ Context.
        endpoint: the node's ``[node] feedback_endpoint``.
        camera: this worker's camera (subscribes to ``rois.<camera>.`` only).
        secure: called with the socket before it connects (e.g. the worker's CURVE client setup,
            :func:`capture.service.security.secure_client` with ``<camera>.key_secret`` and the
            node's public key); None: plain.
        keep: hints kept by frame index.

    Attributes:
        dropped: malformed messages (or another camera's) dropped.
        received: hints accepted (duplicates from a replay included).
    """

    def __init__(
        self,
        ctx: zmq.Context,
        endpoint: str,
        camera: str,
        secure: Callable[[zmq.Socket], None] | None = None,
        keep: int = KEEP_FRAMES,
    ) -> None:
        self.camera = camera
        self.keep = keep
        self.dropped = self.received = 0
        self._hints: dict[int, RoiHint] = {}
        self._newest: RoiHint | None = None
        self.sock = ctx.socket(zmq.SUB)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.RCVHWM, 4 * REPLAY_FRAMES)
        self.sock.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)
        self.sock.setsockopt(zmq.SUBSCRIBE, wire.topic_for(wire.TOPIC_ROIS, camera).encode())
        try:
            if secure is not None:
                secure(self.sock)
            self.sock.connect(endpoint)
        except BaseException:
            self.sock.close()
            raise

    def _drain(self) -> int:
        """Read every queued message (non-blocking); hints accepted."""
        n = 0
        while True:
            try:
                frames = self.sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return n
            try:
                hint = wire.decode_rois(wire.decode(frames))
                if hint.camera != self.camera:
                    raise MessageError(f"a hint for camera {hint.camera!r} on {self.camera!r}'s subscription")
            except MessageError as exc:
                self.dropped += 1
                log.debug("camera %s: feedback message dropped (%s)", self.camera, exc)
                continue
            n += 1
            self.received += 1
            self._hints[hint.frame_idx] = hint
            if self._newest is None or hint.frame_idx >= self._newest.frame_idx:
                self._newest = hint
            if len(self._hints) > self.keep:
                del self._hints[min(self._hints)]

    def poll(self) -> RoiHint | None:
        """The newest hint received so far (highest ``frame_idx``), reading what is queued without
        blocking; None before the first."""
        self._drain()
        return self._newest

    def wait_for(self, frame_idx: int, timeout_s: float) -> RoiHint | None:
        """The hint of node frame ``frame_idx``, waiting for it at most ``timeout_s`` seconds.

        Returns the hint of exactly that frame when it comes; when only newer ones came (the node
        skipped the frame), the oldest newer one after ``REORDER_WAIT_S``; None on timeout (the
        caller then runs a full frame and counts it).
        """
        deadline = time.monotonic() + timeout_s
        newer_since: float | None = None
        while True:
            self._drain()
            hint = self._hints.get(frame_idx)
            if hint is not None:
                return hint
            now = time.monotonic()
            newer = [k for k in self._hints if k > frame_idx]
            if newer:
                newer_since = now if newer_since is None else newer_since
                if now - newer_since >= REORDER_WAIT_S:
                    return self._hints[min(newer)]
            if now >= deadline:
                return None
            wait_ms = math.ceil(1e3 * min(deadline - now, 0.05))
            self.sock.poll(max(wait_ms, 1), zmq.POLLIN)

    def close(self) -> None:
        """Close the socket (idempotent)."""
        self.sock.close(linger=0)

    def __enter__(self) -> RoiSubscriber:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
