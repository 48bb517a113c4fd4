"""``mvcap view``: show the node's 3D skeletons live, with the camera frusta, in the rerun viewer.

rerun-sdk is an optional extra (``pip install -e '.[view]'``): the service runs without it. The
viewer subscribes to the node's ``pose3d.`` and ``status.`` messages and logs, per track, the
joints and bones (``world/people/<id>``), the cameras as pinhole frusta (``world/cameras/<name>``)
and the status line (``status``), on the timeline ``frame``. ``--save take.rrd`` writes a rerun
recording instead of spawning the viewer (for machines without a screen).
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading

import numpy as np
import zmq

from calibration.camera import CameraRig
from capture import wire
from core.errors import CaptureError, MessageError, ShapeError
from core.skeleton import Skeleton, skeleton_by_name

__all__ = ["bone_segments", "main", "track_colour"]

log = logging.getLogger(__name__)


def bone_segments(pose: np.ndarray, skeleton: Skeleton) -> np.ndarray:
    """Line segments of a pose's bones whose two joints are both known.

    Args:
        pose: (J, 4) [x, y, z, conf], metres.
        skeleton: its limbs.

    Returns:
        (K, 2, 3) segments, metres (K may be 0).

    Example:
        >>> from core.skeleton import COCO17
        >>> p = np.zeros((17, 4)); p[[11, 13], 3] = 1.0; p[13, :3] = [0, 0, -0.4]
        >>> bone_segments(p, COCO17).tolist()
        [[[0.0, 0.0, -0.4], [0.0, 0.0, 0.0]]]
    """
    ok = pose[:, 3] > 0
    limbs = [(a, b) for a, b in skeleton.limbs if ok[a] and ok[b]]
    if not limbs:
        return np.zeros((0, 2, 3))
    idx = np.array(limbs)
    return np.stack([pose[idx[:, 0], :3], pose[idx[:, 1], :3]], axis=1)


def track_colour(track_id: int) -> tuple[int, int, int]:
    """A stable, distinct RGB colour per track id (golden-angle hue walk)."""
    h = (track_id * 0.618033988749895) % 1.0
    i, f = int(h * 6), (h * 6) % 1.0
    q, t = int(255 * (1 - f)), int(255 * f)
    return [(255, t, 0), (q, 255, 0), (0, 255, t), (0, q, 255), (t, 0, 255), (255, 0, q)][i % 6]


def _log_cameras(rr: object, rig: CameraRig) -> None:
    for cam in rig:
        path = f"world/cameras/{cam.name}"
        rr.log(path, rr.Transform3D(translation=cam.center, mat3x3=cam.R.T), static=True)  # world_from_camera
        rr.log(
            path, rr.Pinhole(image_from_camera=cam.K, resolution=list(cam.size), image_plane_distance=0.3), static=True
        )


def run_viewer(
    rr: object,
    endpoint: str,
    rig: CameraRig | None,
    stop: threading.Event,
    max_frames: int | None,
    secure=None,  # noqa: ANN001 - optional callable(socket) before connect (CURVE client keys)
) -> int:
    """Subscribe to the node and log every frame to rerun; returns the number of frames shown."""
    ctx = zmq.Context.instance()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    for topic in (wire.TOPIC_POSE3D, wire.TOPIC_STATUS):
        sub.setsockopt(zmq.SUBSCRIBE, topic.encode())
    if secure is not None:
        secure(sub)
    sub.connect(endpoint)
    if rig is not None:
        _log_cameras(rr, rig)
    shown, seen_ids = 0, set()
    try:
        while not stop.is_set() and (max_frames is None or shown < max_frames):
            if not sub.poll(100, zmq.POLLIN):
                continue
            try:
                msg = wire.decode(sub.recv_multipart())
                if msg.schema == "status":
                    rr.log("status", rr.TextLog(str(msg.meta)))
                    continue
                frame = wire.decode_poses3d(msg)
                skeleton = skeleton_by_name(str(msg.meta.get("skeleton", "coco17")))
            except (MessageError, ShapeError, KeyError) as exc:
                log.warning("dropped message: %s", exc)
                continue
            rr.set_time("frame", sequence=frame.frame_idx)
            ids = set()
            for tid, pose in zip(frame.track_ids.tolist(), frame.poses, strict=True):
                ids.add(tid)
                colour = track_colour(tid)
                ok = pose[:, 3] > 0
                rr.log(f"world/people/{tid}/joints", rr.Points3D(pose[ok, :3], colors=colour, radii=0.02))
                rr.log(f"world/people/{tid}/bones", rr.LineStrips3D(bone_segments(pose, skeleton), colors=colour))
            for gone in seen_ids - ids:
                rr.log(f"world/people/{gone}", rr.Clear(recursive=True))
            seen_ids = ids
            shown += 1
    finally:
        sub.close()
    return shown


def main(argv: list[str] | None = None) -> int:
    """``mvcap view [--endpoint E] [--calibration FILE] [--save FILE.rrd]``."""
    from capture.service.proc import stop_on_signals
    from capture.service.security import add_client_key_args, client_securer
    from core.logsetup import setup_logging

    p = argparse.ArgumentParser(prog="mvcap view", description="Show the node's 3D skeletons live (rerun).")
    p.add_argument("--endpoint", default="tcp://127.0.0.1:5556", help="the node's output endpoint")
    p.add_argument("--calibration", default=None, help="calibration, to draw the camera frusta")
    p.add_argument("--save", default=None, help="write a .rrd recording instead of spawning the viewer")
    p.add_argument("--max-frames", type=int, default=None, help="stop after this many frames")
    add_client_key_args(p, "viewer")
    p.add_argument("--log-level", default="INFO")
    args = p.parse_args(argv)
    setup_logging(args.log_level)
    try:
        secure = client_securer(args)
    except CaptureError as exc:
        print(f"mvcap view: error: {exc}", file=sys.stderr)
        return 2

    try:
        import rerun as rr
    except ImportError:
        print("mvcap view: error: rerun-sdk is not installed; pip install -e '.[view]'", file=sys.stderr)
        return 2
    rig = None
    if args.calibration:
        from calibration.io import read_calibration

        try:
            rig = read_calibration(args.calibration)
        except CaptureError as exc:
            print(f"mvcap view: error: {exc}", file=sys.stderr)
            return 2
    rr.init("mvcap", spawn=args.save is None)
    if args.save:
        rr.save(args.save)
    rr.log("world", rr.ViewCoordinates.RIGHT_HAND_Z_UP, static=True)
    try:
        n = run_viewer(rr, args.endpoint, rig, stop_on_signals(), args.max_frames, secure)
    except CaptureError as exc:
        print(f"mvcap view: error: {exc}", file=sys.stderr)
        return 2
    log.info("showed %d frames", n)
    return 0
