"""``mvcap stream``: relay the node's 3D stream to animation and game tools, live, over VMC (OSC/UDP).

Subscribes to the node's ``pose3d.`` messages as ``mvcap record`` does (same socket options, the
same optional CURVE client keys) and sends each frame to every ``--vmc HOST:PORT`` target as one
VMC bundle (see :mod:`capture.outputs.vmc`). One performer per target: ``--person ID`` (given once
per target, in order) or else the lowest track id no other target sends. A malformed message is
dropped and counted; the relay stops on SIGINT/SIGTERM or after ``--max-frames`` frames and prints a
JSON summary line.

Example:
    ``mvcap stream --node tcp://127.0.0.1:5556 --vmc 127.0.0.1:39539 --up z``
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
from collections.abc import Callable, Sequence

import zmq

from capture import wire
from capture.outputs.vmc import VmcSender, parse_host_port
from capture.service.proc import stop_on_signals
from capture.service.record import subscribe_pose3d
from capture.service.security import add_client_key_args, client_securer
from core.errors import CaptureError, InputError, MessageError, ShapeError
from core.skeleton import COCO17

__all__ = ["Streamer", "main"]

log = logging.getLogger(__name__)


class Streamer:
    """Relays the node's 3D poses to VMC senders.

    Args:
        endpoint: the node's output endpoint, e.g. ``tcp://127.0.0.1:5556``.
        senders: one per VMC target; fixed-person senders are served first.
        secure: optional ``secure(socket)`` before connect (CURVE client keys, as ``mvcap record``).
    """

    def __init__(self, endpoint: str, senders: Sequence[VmcSender], secure: Callable[[zmq.Socket], None] | None = None):
        self.endpoint = endpoint
        self.senders = sorted(senders, key=lambda s: s.fixed is None)
        self.secure = secure
        self.frames = 0
        self.malformed = 0

    def run(
        self, ctx: zmq.Context | None = None, stop: threading.Event | None = None, max_frames: int | None = None
    ) -> int:
        """Relay until ``stop`` is set or ``max_frames`` frames were relayed; returns the frame count.

        Raises:
            InputError: the endpoint is not a valid ZeroMQ endpoint, or a key file cannot be read.
        """
        ctx = ctx or zmq.Context.instance()
        stop = stop or threading.Event()
        sub = subscribe_pose3d(ctx, self.endpoint, 100, self.secure)  # live: a slow relay drops old frames
        log.info("relaying %s to %s", self.endpoint, ", ".join(s.target for s in self.senders))
        fixed = {s.fixed for s in self.senders if s.fixed is not None}
        try:
            while not stop.is_set() and (max_frames is None or self.frames < max_frames):
                if not sub.poll(100, zmq.POLLIN):
                    continue
                try:
                    msg = wire.decode(sub.recv_multipart())
                    frame = wire.decode_poses3d(msg)
                    if str(msg.meta.get("skeleton", COCO17.name)) != COCO17.name:
                        raise MessageError(f"skeleton {msg.meta.get('skeleton')!r}; VMC relays {COCO17.name}")
                    if frame.poses.shape[0] and frame.poses.shape[1:] != (COCO17.n_joints, 4):
                        raise MessageError(f"poses {frame.poses.shape}; expected (P, {COCO17.n_joints}, 4)")
                except (MessageError, ShapeError, KeyError) as exc:
                    self.malformed += 1
                    log.warning("dropped malformed pose3d message: %s", exc)
                    continue
                taken = set(fixed)
                for sender in self.senders:
                    tid = sender.send(frame, taken)
                    if tid is not None:
                        taken.add(tid)
                self.frames += 1
        finally:
            sub.close()
            for sender in self.senders:
                sender.close()
        return self.frames


def main(argv: list[str] | None = None) -> int:
    """``mvcap stream --node tcp://HOST:PORT --vmc HOST:PORT [--vmc ...] [--person ID ...]``."""
    from core.logsetup import setup_logging

    p = argparse.ArgumentParser(
        prog="mvcap stream", description="Relay the node's 3D poses live to VMC (OSC) receivers: Unity, VSeeFace..."
    )
    p.add_argument("--node", default="tcp://127.0.0.1:5556", help="the node's output endpoint")
    p.add_argument(
        "--vmc", action="append", required=True, metavar="HOST:PORT", help="VMC receiver (repeat for more performers)"
    )
    p.add_argument(
        "--person", action="append", type=int, default=[], help="track id for the n-th --vmc (default: lowest free id)"
    )
    p.add_argument("--up", default="z", help="world axis pointing up: z (default), -z, y, -y, x, -x")
    p.add_argument("--max-frames", type=int, default=None, help="stop after this many frames")
    add_client_key_args(p, "relay")
    p.add_argument("--log-level", default="INFO")
    args = p.parse_args(argv)
    setup_logging(args.log_level)
    try:
        if len(args.person) > len(args.vmc):
            raise InputError(f"{len(args.person)} --person for {len(args.vmc)} --vmc targets; at most one per target")
        targets = [parse_host_port(t) for t in args.vmc]
        persons: list[int | None] = [*args.person, *([None] * (len(targets) - len(args.person)))]
        senders = [VmcSender(h, port, person=pid, up=args.up) for (h, port), pid in zip(targets, persons, strict=True)]
        streamer = Streamer(args.node, senders, secure=client_securer(args))
    except InputError as exc:
        print(f"mvcap stream: error: {exc}", file=sys.stderr)
        return 2
    stop = stop_on_signals()
    try:
        n = streamer.run(stop=stop, max_frames=args.max_frames)
    except InputError as exc:
        print(f"mvcap stream: error: {exc}", file=sys.stderr)
        return 2
    except (CaptureError, zmq.ZMQError) as exc:
        print(f"mvcap stream: error: {exc}", file=sys.stderr)
        return 1
    print(
        json.dumps(
            {
                "frames": n,
                "malformed": streamer.malformed,
                "targets": {s.target: {"sent": s.sent, "dropped": s.dropped, "person": s.person} for s in senders},
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
