"""``mvcap record``: record a take from the node's 3D stream (``mvcap export`` converts it later).

The recorder subscribes to the node's ``pose3d.`` messages and appends each frame to
``poses3d.jsonl`` (same format as offline runs), flushed and fsync-ed per frame: a take cut by
SIGKILL or a power loss is readable up to its last frame. A recorder restarted on the same take
folder continues the file (a torn last line is cut) and skips frames it already holds; a node
restarted mid-take is followed (ZeroMQ reconnects). A full disk or a read-only folder ends the
recording with one line naming the file; what was written stays readable. ``mvcap export``
(:mod:`capture.outputs.export`) turns a take or run folder into TRC, C3D, BVH and CSV files.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import zmq

from capture import wire
from capture.outputs import PosesWriter
from capture.service.proc import stop_on_signals
from capture.service.security import add_client_key_args, client_securer
from core.errors import CaptureError, InputError, MessageError, OutputError, ShapeError
from core.skeleton import skeleton_by_name

__all__ = ["Recorder", "record_main", "subscribe_pose3d"]

log = logging.getLogger(__name__)


def subscribe_pose3d(
    ctx: zmq.Context, endpoint: str, rcvhwm: int, secure: Callable[[zmq.Socket], None] | None = None
) -> zmq.Socket:
    """A SUB socket connected to the node's output, subscribed to its ``pose3d.`` messages.

    Args:
        ctx: ZeroMQ context.
        endpoint: the node's output endpoint, e.g. ``tcp://127.0.0.1:5556``.
        rcvhwm: receive high-water mark, messages (large for a recorder, small for a live relay).
        secure: optional ``secure(socket)`` before connect (CURVE client keys).

    Raises:
        InputError: the endpoint is not a valid ZeroMQ endpoint.
        CaptureError: ``secure`` failed (a key file that cannot be read); the socket is closed.
    """
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.RCVHWM, rcvhwm)
    sub.setsockopt(zmq.SUBSCRIBE, wire.TOPIC_POSE3D.encode())
    try:
        if secure is not None:
            secure(sub)
        sub.connect(endpoint)
    except zmq.ZMQError as exc:
        sub.close()
        raise InputError(f"{endpoint}: cannot connect ({exc})") from None
    except CaptureError:
        sub.close()
        raise
    return sub


class Recorder:
    """Subscribes to 3D poses and writes them to a take folder.

    Args:
        endpoint: the node's output endpoint, e.g. ``tcp://127.0.0.1:5556``.
        out_dir: take folder (created); ``poses3d.jsonl`` is written there.
        fsync: fsync every frame (power-loss safe); flushing alone survives a killed process.
    """

    def __init__(self, endpoint: str, out_dir: str | Path, fsync: bool = True, secure=None):  # noqa: ANN001
        self.endpoint = endpoint
        self.out_dir = Path(out_dir)
        self.fsync = fsync
        self.secure = secure  # optional callable(socket) before connect (CURVE client keys)
        self.frames = 0
        self.malformed = 0
        self.repeated = 0
        self.last_frame = -1

    def run(
        self,
        ctx: zmq.Context | None = None,
        stop: threading.Event | None = None,
        max_frames: int | None = None,
    ) -> int:
        """Record until ``stop`` is set or ``max_frames`` frames were written; returns the frame count.

        Raises:
            OutputError: the take folder or file cannot be written (what was written stays readable).
            InputError: the folder holds a poses file of another format or skeleton, or the
                endpoint is not a valid ZeroMQ endpoint.
        """
        ctx = ctx or zmq.Context.instance()
        stop = stop or threading.Event()
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"{self.out_dir}: cannot create the take folder ({exc.strerror})") from None
        sub = subscribe_pose3d(ctx, self.endpoint, 100000, self.secure)
        log.info("listening to %s", self.endpoint)
        writer: PosesWriter | None = None
        try:
            while not stop.is_set() and (max_frames is None or self.frames < max_frames):
                if not sub.poll(100, zmq.POLLIN):
                    continue
                try:
                    msg = wire.decode(sub.recv_multipart())
                    frame = wire.decode_poses3d(msg)
                    skeleton = skeleton_by_name(str(msg.meta.get("skeleton", "coco17")))
                except (MessageError, ShapeError, KeyError) as exc:
                    self.malformed += 1
                    log.warning("dropped malformed pose3d message: %s", exc)
                    continue
                if writer is None:
                    writer = PosesWriter(self.out_dir / "poses3d.jsonl", skeleton, fsync=self.fsync, resume=True)
                    self.last_frame = writer.last_frame
                    log.info(
                        "recording %s into %s%s", self.endpoint, self.out_dir,
                        f" (continuing after frame {writer.last_frame})" if writer.resumed_frames else "",
                    )  # fmt: skip
                if frame.frame_idx <= self.last_frame:  # already recorded (a restarted recorder)
                    self.repeated += 1
                    continue
                if frame.poses.shape[1:] not in ((skeleton.n_joints, 4), (0, 4)) and frame.poses.shape[0]:
                    self.malformed += 1
                    continue
                writer.write(frame)
                self.frames += 1
                self.last_frame = frame.frame_idx
        finally:
            if writer is not None:
                writer.close()
            sub.close()
        return self.frames


def record_main(argv: list[str] | None = None) -> int:
    """``mvcap record --endpoint tcp://HOST:PORT --out TAKE``: record the node's 3D stream."""
    from core.logsetup import setup_logging

    p = argparse.ArgumentParser(prog="mvcap record", description="Record the node's 3D poses into a take folder.")
    p.add_argument("--endpoint", default="tcp://127.0.0.1:5556", help="the node's output endpoint")
    p.add_argument("--out", required=True, help="take folder")
    p.add_argument("--max-frames", type=int, default=None, help="stop after this many frames")
    p.add_argument("--no-fsync", action="store_true", help="flush per frame but do not fsync (not power-loss safe)")
    add_client_key_args(p, "recorder")
    p.add_argument("--log-level", default="INFO")
    args = p.parse_args(argv)
    setup_logging(args.log_level)
    stop = stop_on_signals()
    try:
        rec = Recorder(args.endpoint, args.out, fsync=not args.no_fsync, secure=client_securer(args))
        n = rec.run(stop=stop, max_frames=args.max_frames)
    except InputError as exc:
        print(f"mvcap record: error: {exc}", file=sys.stderr)
        return 2
    except CaptureError as exc:
        print(f"mvcap record: error: {exc}", file=sys.stderr)
        return 1
    log.info(
        "recorded %d frames (last frame %d, %d malformed dropped, %d already held)",
        n, rec.last_frame, rec.malformed, rec.repeated,
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(record_main())
