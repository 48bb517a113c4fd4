"""``mvcap calibrate offsets``: clock offsets between cameras from recorded keypoint motion.

Reads one ``<camera>.json.gz`` mvcap-detections file per camera, estimates every camera's clock
offset to a reference camera by cross-correlating the people's joint speeds
(:func:`calibration.time_offsets.estimate_time_offsets`; no calibration needed), and prints the
``[node] clock_offsets_ms`` table in the form ``mvcap sync`` prints, then one JSON line with the
confidences. With ``--calibration`` the cameras and their order come from the calibration, and
``--refine epipolar`` adds :func:`matching.clock.estimate_clock_offset` (epipolar consistency, the
criterion of ``mvcap sync``) searched within two frames of the motion estimate.

Measured on the Pose2Sim demo (tests/data/demo_yolo11n, synchronised cameras, 100 frames at
60 fps): motion alone gives cam02/03/04 = -4.0 / 0.2 / 7.3 ms in 0.5 s; ``mvcap sync`` (epipolar
over +-500 ms) gives -7 / 77 / -23 ms in 21 s; motion refined by epipolar consistency within two
frames gives -7.8 / 26.3 / -7.6 ms (cam03's epipolar cost against cam01 falls monotonically over
+-3 frames: flat and biased on slow motion), so motion alone is the default.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from calibration.camera import CameraRig, fundamental_matrix
from calibration.io import read_calibration
from calibration.time_offsets import PoseSeries, TimeOffsets, estimate_time_offsets
from capture.calibrate.cli_common import Parser, UsageError
from capture.sources.detection_files import read_detections_json
from core.errors import CaptureError, InputError
from core.logsetup import setup_logging
from core.types import Detections2D
from matching.clock import Stream, estimate_clock_offset

__all__ = ["main", "read_detection_folder", "refine_epipolar"]

log = logging.getLogger(__name__)

_PROG = "mvcap calibrate offsets"


def read_detection_folder(folder: str | Path, names: Sequence[str] | None = None) -> dict[str, list[Detections2D]]:
    """Read ``<camera>.json.gz`` (or ``.json``) mvcap-detections files of a folder.

    Args:
        folder: the folder.
        names: cameras to read, in this order (missing files are skipped); None: every file, by
            name.

    Returns:
        Per camera name, its detections in stream order.

    Raises:
        InputError: not a folder, or a file that is not an mvcap-detections file.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: not a folder of <camera>.json.gz detection files")
    files = {p.name.removesuffix(".gz").removesuffix(".json"): p for p in sorted(folder.glob("*.json*"))}
    files = {n: p for n, p in files.items() if p.name in (f"{n}.json", f"{n}.json.gz")}
    order = list(files) if names is None else [n for n in names if n in files]
    return {n: read_detections_json(files[n]) for n in order}


def refine_epipolar(
    rig: CameraRig,
    detections: dict[str, list[Detections2D]],
    offsets: TimeOffsets,
    window_s: float,
    step_s: float = 0.001,
) -> dict[str, float]:
    """Refine motion offsets by epipolar consistency (:func:`matching.clock.estimate_clock_offset`).

    Each camera with a motion estimate is searched within ``+- window_s`` of it against the
    reference camera; undistorted pixels.

    Args:
        rig: the calibration (every camera of ``detections`` in it).
        detections: per camera, its detections.
        offsets: the motion estimate.
        window_s: half-width of the search around it, seconds.
        step_s: search step, seconds (refined below it by a parabola).

    Returns:
        Offsets by camera name, seconds (the motion estimate where it had confidence 0).
    """

    def stream(name: str, shift_s: float) -> Stream:
        cam, dets = rig[name], detections[name]
        pts = [
            cam.undistort_px(d.poses[..., :2].reshape(-1, 2).astype(float)).reshape(d.poses.shape[:2] + (2,))
            for d in dets
        ]
        stamps = np.array([d.stamp_ns for d in dets], dtype=np.int64) - int(round(shift_s * 1e9))
        return Stream(stamps, pts, [d.poses[..., 2].astype(float) for d in dets])

    ref = offsets.names[offsets.reference]
    out = dict(zip(offsets.names, (float(o) for o in offsets.offsets_s), strict=True))
    periods = [np.median(np.diff([d.stamp_ns for d in dets])) for dets in detections.values() if len(dets) > 1]
    max_gap_ns = 0.5 * float(max(periods)) if periods else 25e6
    ref_stream = stream(ref, 0.0)
    for c, name in enumerate(offsets.names):
        if name == ref or offsets.confidence[c] <= 0:
            continue
        F = fundamental_matrix(rig[ref], rig[name])
        delta, _ = estimate_clock_offset(
            F, ref_stream, stream(name, out[name]), window_s * 1e9, step_s * 1e9, max_gap_ns=max_gap_ns
        )
        out[name] += delta * 1e-9
    return out


def _parser() -> Parser:
    p = Parser(prog=_PROG, description="Clock offsets between cameras from the people's keypoint motion.")
    p.add_argument("--detections", required=True, metavar="DIR", help="folder of <camera>.json.gz detections")
    p.add_argument("--calibration", metavar="FILE", help="calibration: its cameras and order (optional)")
    p.add_argument("--reference", metavar="NAME", help="camera whose offset is 0 (default: the first)")
    p.add_argument("--max-offset-ms", type=float, default=2000.0, help="offsets within +- this are searched, ms")
    p.add_argument(
        "--refine",
        choices=("none", "epipolar"),
        default="none",
        help="epipolar: refine within two frames by epipolar consistency (needs --calibration)",
    )
    p.add_argument("--log-level", default="WARNING", help="DEBUG, INFO, WARNING or ERROR (default WARNING)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """``mvcap calibrate offsets --detections DIR [--calibration FILE] [--reference NAME] ...``.

    Prints comment lines, ``[node]`` and ``clock_offsets_ms = { cam = ms, ... }`` (paste into the
    rig config, with ``sync_window_ms`` > 0 so that views are grouped by corrected capture time),
    then one JSON line: ``offsets_ms``, ``confidence`` (0..1, 0 = unknown), ``residual_ms``,
    ``pairs`` and ``elapsed_s``.

    Returns:
        0 on success; 1 when some camera's offset could not be estimated (no correlated motion; its
        offset is printed as 0 and its confidence as 0); 2 on bad input (one line on stderr).
    """
    try:
        args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
        setup_logging(args.log_level)
        if not args.max_offset_ms > 0:
            raise UsageError(f"--max-offset-ms must be positive; got {args.max_offset_ms}")
        if args.refine == "epipolar" and not args.calibration:
            raise UsageError("--refine epipolar needs --calibration")
    except (UsageError, ValueError) as exc:
        print(f"{_PROG}: error: {exc}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    try:
        rig = read_calibration(args.calibration) if args.calibration else None
        detections = read_detection_folder(args.detections, rig.names if rig else None)
        if len(detections) < 2:
            where = " for cameras of the calibration" if rig else ""
            raise InputError(f"{args.detections}: need <camera>.json.gz detection files of at least 2 cameras{where}")
        if args.reference is not None and args.reference not in detections:
            raise InputError(f"--reference {args.reference!r}: no detections of it; cameras: {', '.join(detections)}")
        series = {n: PoseSeries.from_detections(d) for n, d in detections.items()}
        est = estimate_time_offsets(series, args.reference, args.max_offset_ms * 1e-3)
    except CaptureError as exc:
        print(f"{_PROG}: error: {exc}", file=sys.stderr)
        return 2
    offsets_s = dict(zip(est.names, (float(o) for o in est.offsets_s), strict=True))
    method = "motion"
    if args.refine == "epipolar" and rig is not None:
        periods = [np.median(np.diff(s.stamps_ns)) * 1e-9 for s in series.values() if s.n_frames > 1]
        offsets_s = refine_epipolar(rig, detections, est, 2 * float(max(periods)))
        method = "motion+epipolar"
    unknown = [n for n, c in zip(est.names, est.confidence, strict=True) if c <= 0 and n != est.names[est.reference]]
    offsets_ms = {n: round(o * 1e3, 1) + 0.0 for n, o in offsets_s.items()}
    print(f"# clock offsets from keypoint motion ({method}); reference {est.names[est.reference]}")
    print(
        "# confidence 0..1 per camera (about 0.2-0.4 on real people moving; 0 = unknown): "
        + ", ".join(f"{n} {c:.2f}" for n, c in zip(est.names, est.confidence, strict=True))
    )
    if unknown:
        print(f"# no correlated motion for {', '.join(unknown)}: offset unknown (printed as 0)")
    print("# use with sync_window_ms > 0 (e.g. half a frame period) so that views are grouped by capture time")
    print("[node]")
    print("clock_offsets_ms = { " + ", ".join(f"{k} = {v}" for k, v in offsets_ms.items()) + " }")
    summary = {
        "method": method,
        "reference": est.names[est.reference],
        "offsets_ms": offsets_ms,
        "confidence": {n: round(float(c), 3) for n, c in zip(est.names, est.confidence, strict=True)},
        "residual_ms": {n: round(float(r) * 1e3, 2) for n, r in zip(est.names, est.residual_s, strict=True)},
        "pairs": [
            {
                "a": est.names[p.a],
                "b": est.names[p.b],
                "lag_ms": round(p.lag_s * 1e3, 2),
                "peak": round(p.peak, 3),
                "margin": round(p.margin, 3),
                "used": p.used,
            }
            for p in est.pairs
        ],
        "unknown": unknown,
        "elapsed_s": round(time.perf_counter() - t0, 3),
    }
    print(json.dumps(summary))
    return 1 if unknown else 0


if __name__ == "__main__":
    raise SystemExit(main())
