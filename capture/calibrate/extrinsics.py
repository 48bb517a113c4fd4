"""``mvcap calibrate extrinsics``: camera poses from a board seen by overlapping cameras.

Reads every ``--every``-th frame of each camera's video or image folder (frame ``k`` of every
camera must be the same instant: synchronised recordings, or photos taken together and named in
the same order), finds the board (:func:`calibration.board.detect_board`), and calibrates the
camera poses with :func:`calibration.extrinsics.calibrate_extrinsics` (PnP per view, pose graph
over the cameras, bundle adjustment with the board rigid). The intrinsics come from
``--intrinsics`` (any calibration format, e.g. the output of ``mvcap calibrate intrinsics``) and
are kept. The board need not be seen by every camera at once: each camera needs frames shared
with another camera, and the cameras must be linked to each other through such pairs.

World frame: the ``--reference`` camera (default the first ``--camera``) at the origin, OpenCV
axes; or, with ``--floor-frame N``, the board as it lay flat on the floor in frame N (z up,
origin at the board's origin, metres); see :mod:`calibration.extrinsics`.

Output: the calibrated cameras (in ``--camera`` order) in an mvcap calibration JSON; per camera
RMS and the pose graph on stderr; one JSON summary line on stdout. Exit 0 on success, 2 on bad
input (missing source, camera not in the intrinsics, frame size not the intrinsics', cameras not
linked by shared board frames), 1 when the output cannot be written.

Example:
    mvcap calibrate extrinsics --board charuco:7x5:0.07:0.052:DICT_4X4_50 --intrinsics intr.json \\
        --camera cam01=cam01.mp4 --camera cam02=cam02.mp4 --camera cam03=cam03.mp4 \\
        --out calib.json --every 5 --floor-frame 0
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Final

from calibration.board import BOARD_SPEC_HELP, parse_board
from calibration.extrinsics import ExtrinsicsResult, calibrate_extrinsics
from calibration.io import read_calibration, write_json
from capture.calibrate.cli_common import Parser, UsageError, parse_cameras
from capture.calibrate.intrinsics import detect_in_source
from core.errors import CaptureError, InputError
from core.logsetup import setup_logging

__all__ = ["main"]

_PROG: Final = "mvcap calibrate extrinsics"


def _build_parser() -> Parser:
    p = Parser(prog=_PROG, description=__doc__.splitlines()[0])
    p.add_argument("--board", required=True, help=f"the board: {BOARD_SPEC_HELP}")
    p.add_argument("--intrinsics", required=True, help="calibration file with every camera's K and distortion")
    p.add_argument(
        "--camera", action="append", required=True, metavar="NAME=PATH",
        help="a camera and its video file or image folder (repeat for each camera, at least 2)",
    )  # fmt: skip
    p.add_argument("--out", required=True, help="calibration JSON to write")
    p.add_argument("--reference", default=None, help="camera held at the origin (default: the first --camera)")
    p.add_argument(
        "--floor-frame", type=int, default=None, metavar="N",
        help="frame in which the board lies flat on the floor: it becomes the world (z up)",
    )  # fmt: skip
    p.add_argument("--every", type=int, default=1, help="search every N-th frame only (default 1)")
    p.add_argument(
        "--max-view-rms-px", type=float, default=2.0,
        help="views left above this RMS (and 5x the median) after a first adjustment are dropped (default 2.0)",
    )  # fmt: skip
    p.add_argument("--log-level", default="WARNING", help="DEBUG, INFO, WARNING or ERROR")
    return p


def _summary(result: ExtrinsicsResult, found: dict, out: Path, board: str) -> dict:
    rejected: dict[str, int] = {}
    for r in result.rejected:
        rejected[r.camera] = rejected.get(r.camera, 0) + 1
    cameras = [
        {"name": c.name, "source": str(found[c.name].source), "frames_read": found[c.name].n_read,
         "views_found": len(found[c.name].views), "views_used": result.per_camera_views[c.name],
         "views_rejected": rejected.get(c.name, 0), "rms_px": round(result.per_camera_rms_px[c.name], 4),
         "center_m": [round(float(v), 5) for v in c.center]}
        for c in result.rig
    ]  # fmt: skip
    edges = [
        {"a": e.camera_a, "b": e.camera_b, "frames": e.n_frames, "inliers": e.n_inliers,
         "spread_deg": round(e.spread_deg, 3), "in_tree": e.in_tree}
        for e in result.edges
    ]  # fmt: skip
    return {
        "out": str(out), "board": board, "reference": result.reference, "world_frame": result.world_frame,
        "frames_used": len(result.frames), "rms_initial_px": round(result.rms_initial_px, 4),
        "rms_final_px": round(result.rms_final_px, 4), "iterations": result.bundle.n_iterations,
        "cameras": cameras, "edges": edges,
        "rejected": [{"camera": r.camera, "frame": r.frame, "reason": r.reason} for r in result.rejected],
    }  # fmt: skip


def _report(summary: dict) -> None:
    """Per camera figures and the pose graph, on stderr."""
    for c in summary["cameras"]:
        print(
            f"{c['name']}: board in {c['views_found']} of {c['frames_read']} frames, {c['views_used']} used "
            f"({c['views_rejected']} rejected), RMS {c['rms_px']:.3f} px, centre {c['center_m']} m",
            file=sys.stderr,
        )
    for e in summary["edges"]:
        print(
            f"  {e['a']} -- {e['b']}: {e['frames']} shared frames ({e['inliers']} agree, spread "
            f"{e['spread_deg']:.2f} deg){' [tree]' if e['in_tree'] else ''}",
            file=sys.stderr,
        )
    print(
        f"RMS {summary['rms_initial_px']:.3f} -> {summary['rms_final_px']:.3f} px over "
        f"{summary['frames_used']} frames; world: {summary['world_frame']}",
        file=sys.stderr,
    )


def main(argv: list[str] | None = None) -> int:
    """``mvcap calibrate extrinsics --board SPEC --intrinsics FILE --camera NAME=PATH ... --out FILE``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in argv):
        _build_parser().print_help()
        return 0
    try:
        args = _build_parser().parse_args(argv)
        cameras = parse_cameras(args.camera, 2, "extrinsics")
        if args.every < 1 or not args.max_view_rms_px > 0:
            raise UsageError("--every must be >= 1 and --max-view-rms-px > 0")
        setup_logging(args.log_level)
    except (UsageError, ValueError) as exc:
        print(f"{_PROG}: error: {exc}", file=sys.stderr)
        return 2
    try:
        board = parse_board(args.board)
        intrinsics = read_calibration(args.intrinsics)
        names = [n for n, _ in cameras]
        for name, path in cameras:  # fail before searching videos, not after
            intrinsics.index(name)
            if not path.exists():
                raise InputError(f"{path}: no such video file or image folder")
        if args.reference is not None and args.reference not in names:
            raise InputError(f"--reference {args.reference!r} is not one of the cameras {', '.join(names)}")
        found, views = {}, []
        for name, path in cameras:
            found[name] = detect_in_source(name, path, board, args.every)
            size = tuple(intrinsics[name].size)
            if found[name].size != size:
                w, h = found[name].size
                raise InputError(
                    f"{path}: frames are {w}x{h} but the intrinsics of {name!r} are for {size[0]}x{size[1]}"
                )
            views += found[name].views
        result = calibrate_extrinsics(
            views, intrinsics, args.reference, args.floor_frame, cameras=names, max_view_rms_px=args.max_view_rms_px
        )
    except CaptureError as exc:
        print(f"{_PROG}: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    out = Path(args.out)
    try:
        write_json(result.rig, out, world_frame=result.world_frame)
    except CaptureError as exc:  # an OutputError: disk full, read-only folder
        print(f"{_PROG}: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    summary = _summary(result, found, out, board.spec())
    _report(summary)
    print(json.dumps(summary))
    return 0
