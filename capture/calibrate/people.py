"""``mvcap calibrate people``: refine a rough calibration from the people seen by the cameras.

Reads a calibration (any format :func:`calibration.io.read_calibration` knows) whose intrinsics
are trusted and whose extrinsics may be a few degrees and tens of centimetres off, and one
``<camera>.json.gz`` (or ``.json``) mvcap-detections file per camera of it, from synchronised
cameras (the same frame index is the same instant; a ``.json.gz`` file of a camera that is not in
the calibration is an error); refines the extrinsics (and with ``--refine-focal`` the focal lengths)
by :func:`calibration.people.calibrate_from_people`, fixes the scale from a known distance between
two camera centres or from the subjects' height, and writes mvcap JSON.

Output: one line per camera, ``# <camera>: <before> -> <after> px (median), <before> -> <after> px
(mean), <n> joints``, then one JSON line: reference, scale_factor, reprojection before/after
(median and mean, overall and per camera), counts, suspect cameras, seconds.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from calibration.io import read_calibration, write_json
from calibration.people import (
    KnownDistance,
    PeopleCalibrationOptions,
    ReprojectionStats,
    SubjectHeight,
    calibrate_from_people,
)
from capture.calibrate.cli_common import Parser, UsageError
from capture.calibrate.offsets import read_detection_folder
from core.errors import CaptureError, InputError, OutputError
from core.logsetup import setup_logging
from core.skeleton import COCO17
from core.types import Detections2D

__all__ = ["align_frames", "blas_threads", "main"]

log = logging.getLogger(__name__)

_PROG = "mvcap calibrate people"


@contextlib.contextmanager
def blas_threads(n: int = 1) -> Iterator[None]:
    """Limit BLAS threads within the block (``threadpoolctl``, when installed).

    The sparse least-squares solver calls BLAS on vectors of tens of thousands of entries, where
    OpenBLAS starts threads; on a busy machine those threads wait for each other and the solve
    runs several times slower (measured 22 s instead of 3.6 s on a loaded 2-core machine).
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional: without it the solve is only slower on busy machines
        yield
        return
    with threadpool_limits(limits=n, user_api="blas"):
        yield


def align_frames(detections: dict[str, list[Detections2D]], names: Sequence[str]) -> list[list[np.ndarray]]:
    """Per frame index (union over cameras, ascending), per camera in ``names`` order, its poses.

    Args:
        detections: per camera name, its detections.
        names: camera order of the output.

    Returns:
        Per frame, per camera, (P, J, 3) float32 poses; (0, J, 3) where a camera has no detection
        of that frame.
    """
    by_cam = {n: {d.frame_idx: d.poses for d in detections[n]} for n in names}
    frames = sorted({f for per in by_cam.values() for f in per})
    empty = np.zeros((0, COCO17.n_joints, 3), dtype=np.float32)
    return [[by_cam[n].get(f, empty) for n in names] for f in frames]


def _parse_scale(args: argparse.Namespace) -> KnownDistance | SubjectHeight:
    if args.height is not None:
        return SubjectHeight(args.height)
    parts = [p.strip() for p in args.known_distance.split(",")]
    if len(parts) != 3:
        raise UsageError(f"--known-distance must be CAM_A,CAM_B,METRES; got {args.known_distance!r}")
    try:
        metres = float(parts[2])
    except ValueError:
        raise UsageError(f"--known-distance: {parts[2]!r} is not a number of metres") from None
    return KnownDistance(parts[0], parts[1], metres)


def _parser() -> Parser:
    p = Parser(prog=_PROG, description="Refine camera extrinsics from the people seen by several cameras.")
    p.add_argument("--calibration", required=True, metavar="FILE", help="rough calibration (intrinsics trusted)")
    p.add_argument("--detections", required=True, metavar="DIR", help="folder of <camera>.json.gz detections")
    p.add_argument("--out", required=True, metavar="FILE", help="refined calibration, mvcap JSON")
    scale = p.add_mutually_exclusive_group(required=True)
    scale.add_argument("--known-distance", metavar="CAM_A,CAM_B,METRES", help="distance between two camera centres")
    scale.add_argument("--height", type=float, metavar="METRES", help="standing height of the subjects (average)")
    p.add_argument("--refine-focal", action="store_true", help="also refine one focal scale per camera")
    p.add_argument("--reference", metavar="NAME", help="camera held fixed (default: the calibration's first)")
    p.add_argument("--max-frames", type=int, default=300, help="frames used, evenly spread (default 300)")
    p.add_argument("--log-level", default="WARNING", help="DEBUG, INFO, WARNING or ERROR (default WARNING)")
    return p


def _summary(stats: ReprojectionStats) -> dict:
    return {
        "median_px": round(stats.median_px, 2),
        "mean_px": round(stats.mean_px, 2),
        "per_camera": {
            c.name: {"median_px": round(c.median_px, 2), "mean_px": round(c.mean_px, 2)} for c in stats.per_camera
        },
    }


def main(argv: Sequence[str] | None = None) -> int:
    """``mvcap calibrate people --calibration FILE --detections DIR --out FILE (--known-distance A,B,M | --height M)``.

    Returns:
        0 on success; 1 when the output cannot be written, or when it was written but some camera
        reprojects over 2.5 times worse than the others (``suspect`` in the JSON line); 2 on bad
        input (one line on stderr): unreadable calibration or detections, cameras of the detections
        not in the calibration (or the reverse), an unknown camera in ``--known-distance`` or
        ``--reference``, too few people seen by several cameras (overall or by some camera).
    """
    t0 = time.perf_counter()
    try:
        args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
        setup_logging(args.log_level)
        if args.max_frames < 1:
            raise UsageError(f"--max-frames must be positive; got {args.max_frames}")
        scale = _parse_scale(args)
        rig = read_calibration(args.calibration)
        detections = read_detection_folder(args.detections, rig.names)
        gz = sorted(p.name.removesuffix(".json.gz") for p in Path(args.detections).glob("*.json.gz"))
        unknown = [n for n in gz if n not in rig.names]
        if unknown:
            raise InputError(f"{args.detections}: cameras {unknown} are not in the calibration {args.calibration}")
        missing = [n for n in rig.names if n not in detections]
        if missing:
            raise InputError(f"{args.detections}: no <camera>.json.gz detections for calibration cameras {missing}")
        opt = PeopleCalibrationOptions(
            reference=args.reference, refine_focal=args.refine_focal, max_frames=args.max_frames
        )
        with blas_threads(1):
            res = calibrate_from_people(rig, align_frames(detections, rig.names), COCO17, scale, opt)
    except (UsageError, CaptureError) as exc:
        print(f"{_PROG}: error: {exc}", file=sys.stderr)
        return 2
    try:
        write_json(res.rig, args.out)
    except (OutputError, CaptureError) as exc:
        print(f"{_PROG}: error: {exc}", file=sys.stderr)
        return 1
    if res.suspect:
        print(
            f"{_PROG}: warning: {', '.join(res.suspect)} reproject over 2.5 times worse than the other cameras "
            f"(a start too far off?); {args.out} was written, check those cameras",
            file=sys.stderr,
        )
    for b, a in zip(res.before.per_camera, res.after.per_camera, strict=True):
        print(
            f"# {a.name}: {b.median_px:.1f} -> {a.median_px:.1f} px (median), "
            f"{b.mean_px:.1f} -> {a.mean_px:.1f} px (mean), {a.n_observations} joints"
        )
    summary = {
        "out": str(args.out),
        "reference": args.reference or rig.names[0],
        "scale_factor": round(res.scale_factor, 5),
        "before": _summary(res.before),
        "after": _summary(res.after),
        "frames": res.n_frames,
        "person_frames": res.n_groups,
        "tracks": res.n_tracks,
        "joints_3d": res.n_points,
        "observations": res.n_observations,
        "evaluations": res.iterations,
        "suspect": list(res.suspect),
        "elapsed_s": round(time.perf_counter() - t0, 2),
    }
    print(json.dumps(summary))
    return 1 if res.suspect else 0


if __name__ == "__main__":
    raise SystemExit(main())
