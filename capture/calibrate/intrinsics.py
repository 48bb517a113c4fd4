"""``mvcap calibrate intrinsics``: each camera's K and lens distortion from videos or photos of a board.

Reads every ``--every``-th frame of each camera's video (``cv2.VideoCapture``) or image folder
(image files in natural name order), finds the board (:func:`calibration.board.detect_board`),
calibrates each camera (:func:`calibration.intrinsics.calibrate_intrinsics`, Zhang 2000) and
writes an mvcap calibration JSON. Extrinsics are not calibrated here: new cameras get R = identity,
t = 0 (``mvcap calibrate extrinsics`` sets them); ``--update FILE`` keeps the cameras and poses of
an existing calibration and replaces the intrinsics of the cameras calibrated now.

Output: one line per camera on stderr, one JSON summary line on stdout. Exit 0 on success, 2 on
bad input (missing path, unreadable video or image, board found in too few frames, too little of
the image covered), 1 when the output cannot be written.

Example:
    mvcap calibrate intrinsics --board checkerboard:4x7:0.06 \\
        --camera cam01=int_cam01_img --camera cam02=cam02.mp4 --out calib.json --every 10
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import cv2
import numpy as np

from calibration.board import BOARD_SPEC_HELP, DEFAULT_SEARCH_PX, Board, BoardView, detect_board, parse_board
from calibration.camera import Camera, CameraRig
from calibration.intrinsics import (
    DEFAULT_MAX_VIEWS,
    DEFAULT_MIN_COVERAGE,
    DEFAULT_MIN_VIEWS,
    IntrinsicsResult,
    calibrate_intrinsics,
)
from calibration.io import read_calibration, write_json
from capture.calibrate.cli_common import Parser, UsageError, parse_cameras
from capture.sources.frames import natural_path_key
from core.errors import CaptureError, InputError
from core.logsetup import setup_logging

__all__ = ["IMAGE_SUFFIXES", "CameraViews", "detect_in_source", "main"]

log = logging.getLogger(__name__)

_PROG: Final = "mvcap calibrate intrinsics"
IMAGE_SUFFIXES: Final = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
NOTE_NO_EXTRINSICS: Final = "extrinsics not calibrated (R = identity, t = 0) for: "


@dataclass(frozen=True, slots=True)
class CameraViews:
    """The board views found in one camera's frames.

    Attributes:
        camera: camera name.
        source: the video file or image folder read.
        size: (width, height) of the frames, pixels.
        n_read: frames read and searched.
        views: the views where the board was found.
    """

    camera: str
    source: Path
    size: tuple[int, int]
    n_read: int
    views: tuple[BoardView, ...]


def _frames(path: Path, every: int) -> tuple[int, Iterator[tuple[int, np.ndarray]]]:
    """(frames that will be yielded (estimate for videos), iterator of (frame index, BGR image)).

    Raises:
        InputError: missing path, folder without images, video that cannot be opened or decoded.
    """
    if path.is_dir():
        files = sorted(
            (p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES),
            key=natural_path_key,  # the order capture.sources.frames.ImageFolderSource replays
        )
        if not files:
            raise InputError(f"{path}: no image files ({', '.join(IMAGE_SUFFIXES)}) in this folder")
        chosen = list(enumerate(files))[::every]

        def images() -> Iterator[tuple[int, np.ndarray]]:
            for i, f in chosen:
                img = cv2.imread(str(f), cv2.IMREAD_COLOR)
                if img is None:
                    raise InputError(f"{f}: cannot read image (not an image OpenCV can decode)")
                yield i, img

        return len(chosen), images()
    if not path.is_file():
        raise InputError(f"{path}: no such video file or image folder")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise InputError(f"{path}: cannot open video (OpenCV cannot decode it)")
    ok, first = cap.read()
    if not ok or first is None:
        cap.release()
        raise InputError(f"{path}: cannot read any frame from this video")
    n_total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)

    def video() -> Iterator[tuple[int, np.ndarray]]:
        try:
            yield 0, first
            index = 0
            while True:
                for _ in range(every - 1):
                    if not cap.grab():
                        return
                    index += 1
                ok, img = cap.read()
                if not ok or img is None:
                    return
                index += 1
                yield index, img
        finally:
            cap.release()

    return (max(n_total, 1) + every - 1) // every, video()


def detect_in_source(
    camera: str, path: Path, board: Board, every: int = 1, search_px: int | None = DEFAULT_SEARCH_PX
) -> CameraViews:
    """Search a camera's video or image folder for the board.

    Args:
        camera: camera name.
        path: video file or image folder.
        board: the board.
        every: search every ``every``-th frame (image) only.
        search_px: see :func:`calibration.board.detect_board`.

    Returns:
        The views found and how many frames were read.

    Raises:
        InputError: missing or unreadable source, frames of different sizes.
    """
    n_expected, frames = _frames(path, every)
    size: tuple[int, int] | None = None
    views: list[BoardView] = []
    n_read = 0
    progress = _progress(frames, n_expected, camera)
    for index, img in progress:
        frame_size = (int(img.shape[1]), int(img.shape[0]))
        if size is None:
            size = frame_size
        elif frame_size != size:
            raise InputError(f"{path}: frame {index} is {frame_size[0]}x{frame_size[1]}, expected {size[0]}x{size[1]}")
        n_read += 1
        view = detect_board(img, board, camera, index, search_px=search_px)
        if view is not None:
            views.append(view)
        log.debug("camera %s frame %d: board %s", camera, index, "found" if view is not None else "not found")
    if size is None:
        raise InputError(f"{path}: no frame read")
    return CameraViews(camera, path, size, n_read, tuple(views))


def _progress(frames: Iterator[tuple[int, np.ndarray]], total: int, camera: str) -> Iterator[tuple[int, np.ndarray]]:
    """A tqdm progress bar on an interactive stderr, the bare iterator otherwise."""
    if not sys.stderr.isatty():
        return frames
    from tqdm import tqdm

    return iter(tqdm(frames, total=total, desc=f"{camera}: searching frames", unit="frame", leave=False))


def _merge(base: CameraRig | None, results: list[IntrinsicsResult]) -> tuple[CameraRig, list[str]]:
    """The rig to write and the names of cameras without extrinsics (R = identity, t = 0)."""
    new = {r.camera: r for r in results}
    cameras: list[Camera] = []
    unposed: list[str] = []
    for cam in base or ():
        r = new.pop(cam.name, None)
        cameras.append(cam if r is None else r.to_camera(cam.R, cam.t))
    for r in results:
        if r.camera in new:
            cameras.append(r.to_camera())
            unposed.append(r.camera)
    return CameraRig(tuple(cameras)), unposed


def _summary(found: CameraViews, res: IntrinsicsResult) -> dict:
    K = res.K
    return {
        "name": res.camera, "source": str(found.source), "size": list(res.size), "images_read": found.n_read,
        "views_found": len(found.views), "views_used": res.n_views_used, "outliers": res.n_outliers,
        "rms_px": round(res.rms_px, 4), "fx": round(K[0, 0], 3), "fy": round(K[1, 1], 3),
        "cx": round(K[0, 2], 3), "cy": round(K[1, 2], 3), "dist": [round(float(d), 6) for d in res.dist],
        "coverage": round(res.coverage, 3),
    }  # fmt: skip


def _build_parser() -> Parser:
    p = Parser(prog=_PROG, description=__doc__.splitlines()[0])
    p.add_argument("--board", required=True, help=f"the board: {BOARD_SPEC_HELP}")
    p.add_argument(
        "--camera", action="append", required=True, metavar="NAME=PATH",
        help="a camera and its video file or image folder (repeat for each camera)",
    )  # fmt: skip
    p.add_argument("--out", default=None, help="calibration JSON to write (default: the --update file)")
    p.add_argument(
        "--update", default=None, help="existing calibration (any format) whose other cameras and poses to keep"
    )
    p.add_argument("--every", type=int, default=1, help="search every N-th frame only (default 1)")
    p.add_argument(
        "--max-views",
        type=int,
        default=DEFAULT_MAX_VIEWS,
        help=f"views per camera in the solve (default {DEFAULT_MAX_VIEWS})",
    )
    p.add_argument(
        "--min-views",
        type=int,
        default=DEFAULT_MIN_VIEWS,
        help=f"fewest board views accepted (default {DEFAULT_MIN_VIEWS})",
    )
    p.add_argument(
        "--min-coverage",
        type=float,
        default=DEFAULT_MIN_COVERAGE,
        help=f"fraction of the image the boards must cover (default {DEFAULT_MIN_COVERAGE})",
    )
    p.add_argument("--k3", action="store_true", help="also estimate k3 (wide-angle lenses; default keeps k3 = 0)")
    p.add_argument("--zero-tangent", action="store_true", help="keep the tangential distortion p1 = p2 = 0")
    p.add_argument(
        "--search-px",
        type=int,
        default=DEFAULT_SEARCH_PX,
        help=f"checkerboards: longest image side searched before refining (default {DEFAULT_SEARCH_PX}; 0: full size)",
    )
    p.add_argument("--log-level", default="WARNING", help="DEBUG, INFO, WARNING or ERROR")
    return p


def main(argv: list[str] | None = None) -> int:
    """``mvcap calibrate intrinsics --board SPEC --camera NAME=PATH ... --out FILE``; see the module doc."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in argv):
        _build_parser().print_help()
        return 0
    try:
        args = _build_parser().parse_args(argv)
        cameras = parse_cameras(args.camera)
        if args.every < 1 or args.max_views < 3 or args.min_views < 3 or args.search_px < 0:
            raise UsageError("--every must be >= 1, --max-views and --min-views >= 3, --search-px >= 0")
        if args.out is None and args.update is None:
            raise UsageError("give --out FILE (or --update FILE to rewrite that file)")
        setup_logging(args.log_level)
    except (UsageError, ValueError) as exc:
        print(f"{_PROG}: error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out if args.out is not None else args.update)
    try:
        board = parse_board(args.board)
        base = read_calibration(args.update) if args.update else None
        for _name, path in cameras:  # fail before hours of searching, not after
            if not path.exists():
                raise InputError(f"{path}: no such video file or image folder")
        results, summaries = [], []
        for name, path in cameras:
            found = detect_in_source(name, path, board, args.every, args.search_px or None)
            if len(found.views) < args.min_views:
                raise InputError(
                    f"camera {name!r}: the board ({board.spec()}) was found in {len(found.views)} of {found.n_read} "
                    f"frames read from {path}; need at least {args.min_views}"
                )
            res = calibrate_intrinsics(
                found.views, found.size, max_views=args.max_views, min_views=args.min_views,
                min_coverage=args.min_coverage, fix_k3=not args.k3, zero_tangent=args.zero_tangent,
            )  # fmt: skip
            results.append(res)
            summaries.append(_summary(found, res))
            s = summaries[-1]
            print(
                f"{name}: board in {s['views_found']} of {s['images_read']} frames, {s['views_used']} used "
                f"({s['outliers']} outliers), RMS {s['rms_px']:.3f} px, fx {s['fx']:.1f} fy {s['fy']:.1f} "
                f"cx {s['cx']:.1f} cy {s['cy']:.1f}, coverage {s['coverage']:.0%}",
                file=sys.stderr,
            )
        rig, unposed = _merge(base, results)
    except CaptureError as exc:
        print(f"{_PROG}: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    note = NOTE_NO_EXTRINSICS + ", ".join(unposed) if unposed else ""
    world = f"as in {args.update}" if base is not None else "no world frame yet: intrinsics only"
    try:
        write_json(rig, out, world_frame=f"{world}; {note}" if note else world)
    except CaptureError as exc:  # CalibrationWriteError (an OutputError): disk full, read-only folder
        print(f"{_PROG}: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    if unposed:
        print(f"{_PROG}: {note} (run mvcap calibrate extrinsics)", file=sys.stderr)
    summary = {"out": str(out), "board": board.spec(), "cameras": summaries, "unposed": unposed}
    print(json.dumps(summary))
    return 0
