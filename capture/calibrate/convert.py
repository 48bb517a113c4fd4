"""``mvcap calibrate convert IN OUT``: convert a calibration between the file formats mvcap reads.

Reads IN with :func:`calibration.io.read_calibration` (any format it detects, a folder being TUM
projection matrices), writes OUT with :func:`calibration.io.write_calibration`, reads OUT back
and prints one JSON summary line on stdout, including how far the output moves any pixel of any
camera (``max_change_px``: 0 up to rounding for a lossless conversion).
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from collections.abc import Sequence

import numpy as np

from calibration.camera import CameraRig
from calibration.io import CalibrationFormat, detect_format, format_for_target, read_calibration, write_calibration
from capture.calibrate.cli_common import Parser, UsageError
from core.errors import CaptureError, OutputError
from core.logsetup import setup_logging

__all__ = ["main", "max_change_px"]

log = logging.getLogger(__name__)

_PROG = "mvcap calibrate convert"
_DEPTHS_M = (0.5, 2.0, 8.0)


def max_change_px(before: CameraRig, after: CameraRig, grid: int = 9) -> float:
    """Largest pixel displacement between two versions of the same cameras, over their images.

    For each camera of ``before``, a ``grid`` x ``grid`` lattice of pixels spanning the image
    is undistorted, lifted to world points at depths 0.5, 2 and 8 m along its rays, and projected
    through both versions (matched by name).

    Args:
        before: the cameras as read.
        after: the same cameras after a conversion (same names, any order).
        grid: lattice points per image side.

    Returns:
        The largest displacement, pixels.

    Raises:
        CalibrationError: a camera of ``before`` is missing from ``after``.

    Example:
        >>> from calibration.camera import Camera
        >>> cam = Camera("c", np.diag([500.0, 500.0, 1.0]), np.zeros(5), np.eye(3), np.zeros(3), (640, 480))
        >>> max_change_px(CameraRig((cam,)), CameraRig((cam,)))
        0.0
    """
    worst = 0.0
    for cam in before:
        other = after[cam.name]
        u, v = np.meshgrid(np.linspace(0, cam.size[0] - 1, grid), np.linspace(0, cam.size[1] - 1, grid))
        uv = cam.undistort_px(np.stack([u.ravel(), v.ravel()], axis=1))  # (N, 2) px, pinhole
        rays = np.linalg.solve(cam.K, np.vstack([uv.T, np.ones(len(uv))])).T  # (N, 3), z = 1
        for depth in _DEPTHS_M:
            points_w = (depth * rays - cam.t) @ cam.R  # R^T (x_cam - t), (N, 3) metres
            change = np.linalg.norm(cam.project(points_w) - other.project(points_w), axis=1)
            worst = max(worst, float(change.max()))
    return worst


def _size(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not match or int(match[1]) <= 0 or int(match[2]) <= 0:
        raise argparse.ArgumentTypeError(f"--size must be WIDTHxHEIGHT in pixels, e.g. 1032x776; got {text!r}")
    return int(match[1]), int(match[2])


def _parser() -> Parser:
    formats = ", ".join(f.value for f in CalibrationFormat)
    p = Parser(
        prog=_PROG,
        description="Convert a calibration between formats: mvcap JSON, Qualisys .qca.txt, Pose2Sim/anipose "
        "TOML, VoxelPose, CMU Panoptic and 4D Association JSON, TUM projection matrices (a folder).",
    )
    p.add_argument("input", metavar="IN", help="calibration file, or a folder of TUM P*.txt files")
    p.add_argument("output", metavar="OUT", help="destination file (folder for tum); its name picks the format")
    p.add_argument("--to", metavar="FORMAT", help=f"output format, one of: {formats} (default: from OUT's name)")
    p.add_argument(
        "--size", type=_size, metavar="WxH", help="image size, px, for inputs that store none (TUM, VoxelPose)"
    )
    p.add_argument("--cameras", metavar="A,B,...", help="cameras to keep, in this order (default: all, file order)")
    p.add_argument(
        "--drop-distortion", action="store_true", help="write distorted cameras to pinhole-only formats (tum, 4da)"
    )
    p.add_argument("--log-level", default="WARNING", help="DEBUG, INFO, WARNING or ERROR (default WARNING)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """``mvcap calibrate convert IN OUT [--to FORMAT] [--size WxH] [--cameras A,B] [--drop-distortion]``.

    Returns:
        0 on success (JSON summary on stdout); 2 on bad input or a rig the output format cannot
        hold; 1 when the output cannot be written. Errors are one line on stderr.
    """
    try:
        args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
        setup_logging(args.log_level)
    except (UsageError, ValueError) as exc:
        print(f"{_PROG}: error: {exc}", file=sys.stderr)
        return 2
    names = [n.strip() for n in args.cameras.split(",") if n.strip()] if args.cameras else None
    try:
        source = detect_format(args.input)
        target = format_for_target(args.output, args.to)
        rig = read_calibration(args.input, args.size, names=names)
        written = write_calibration(rig, args.output, target.value, drop_distortion=args.drop_distortion)
        back = read_calibration(args.output, sizes={c.name: c.size for c in rig})
        change = max_change_px(rig, back)
    except OutputError as exc:
        print(f"{_PROG}: error: {exc}", file=sys.stderr)
        return 1
    except CaptureError as exc:
        print(f"{_PROG}: error: {exc}", file=sys.stderr)
        return 2
    summary = {
        "input": str(args.input),
        "output": str(args.output),
        "from": source.value,
        "to": target.value,
        "cameras": len(rig),
        "names": list(rig.names),
        "files": [str(p) for p in written],
        "order_kept": back.names == rig.names,
        "distortion_dropped": [c.name for c in rig if c.has_distortion and not back[c.name].has_distortion],
        "size_stored": target not in (CalibrationFormat.VOXELPOSE, CalibrationFormat.TUM),
        "max_change_px": change,
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
