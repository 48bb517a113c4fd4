"""The ``[node]`` section: the central node's sockets, frame assembly and security."""

from __future__ import annotations

from dataclasses import dataclass, field

from core.errors import ConfigError


@dataclass(frozen=True, slots=True)
class NodeConfig:
    """Central node sockets and frame assembly.

    Attributes:
        input_endpoint: ZeroMQ endpoint the node binds for worker detections.
        output_endpoint: ZeroMQ endpoint the node binds to publish 3D poses.
        rcvhwm: receive high-water mark, messages (bounded memory; the oldest are dropped beyond).
        frame_timeout_s: a frame still missing views after this long (seconds) is processed anyway.
        heartbeat_timeout_s: a camera silent for this long (seconds) is reported dead.
        sync_window_ms: 0 groups views by frame index (synchronised cameras); otherwise views are
            grouped by capture time within this window, milliseconds (unsynchronised cameras,
            different frame rates).
        clock_offsets_ms: per-camera clock offset, milliseconds, subtracted from its stamps
            (``mvcap sync`` estimates them from recorded detections).
        status_every_s: period of the node's status line (per-camera fps, drops, latency,
            tracks), seconds; 0 disables it.
        lossless: offline runs (every source a file): a frame is released only when every camera
            has delivered it, moved past it, ended or died; no timeout decides what goes into the
            output. ``mvcap run``/``demo`` set it for file sources.
        start_timeout_s: the node starts its frame clock when every configured camera is ready
            (source and model open), or after this long, seconds, naming the cameras it started
            without.
        max_ahead_frames: live runs: frames lying more than this many frames (or sync windows)
            ahead of the rig's clock (the low median of the cameras' latest frames) are rejected
            and counted. 0 disables the check.
        max_people_per_view: at most this many people of one view enter reconstruction (the most
            confident); the rest are dropped and counted, so work per frame stays bounded.
        max_backlog_s: live runs: a frame captured more than this long ago (seconds, wall-clock
            stamps) is skipped and counted when newer frames are ready too, so a node slower than
            the stream stays current; 0 processes every frame.
        curve_secret_key: the node's CURVE secret key file (``mvcap keys``); set, the input accepts
            only the cameras whose public keys are in ``curve_clients_dir``, each for its own name.
        curve_clients_dir: folder of the cameras' public keys, ``<camera>.key``.
        curve_output_clients_dir: folder of the public keys of the viewers and recorders allowed to
            read the 3D output; empty leaves the output open (to loopback, by default).
        feedback_endpoint: ZeroMQ endpoint the node binds to send each worker its regions of
            interest (:mod:`capture.service.feedback`), when ``[detector] rois`` is on; beyond
            loopback only with ``curve_secret_key`` (the workers' keys then read it).

    Raises:
        ConfigError: a feedback endpoint that is not ``tcp://``, ``ipc://`` or ``inproc://``.
    """

    input_endpoint: str = "tcp://127.0.0.1:5555"
    output_endpoint: str = "tcp://127.0.0.1:5556"
    rcvhwm: int = 10000
    frame_timeout_s: float = 2.0
    heartbeat_timeout_s: float = 3.0
    sync_window_ms: float = 0.0
    clock_offsets_ms: dict[str, float] = field(default_factory=dict)
    status_every_s: float = 5.0
    lossless: bool = False
    start_timeout_s: float = 30.0
    max_ahead_frames: int = 120
    max_people_per_view: int = 64
    max_backlog_s: float = 2.0
    curve_secret_key: str = ""
    curve_clients_dir: str = ""
    curve_output_clients_dir: str = ""
    feedback_endpoint: str = "tcp://127.0.0.1:5557"

    def __post_init__(self) -> None:
        if self.feedback_endpoint.partition("://")[0] not in ("tcp", "ipc", "inproc"):
            raise ConfigError(
                f"node.feedback_endpoint must be tcp://, ipc:// or inproc://; got {self.feedback_endpoint!r}"
            )
