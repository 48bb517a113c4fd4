"""``mvcap calibrate check``: per-camera reprojection error of a take, to spot a bad calibration.

Two sources of 3D:

- ``--take``: the take's ``poses3d.jsonl`` (:mod:`capture.outputs.jsonl`). Each frame record is
  paired, per camera, with the detections nearest in time (within half a frame period; record
  stamps are on the reference clock, as the node writes them). Every 3D person is projected into
  the camera (with distortion) and matched one-to-one to a detection (Hungarian on the mean joint
  distance, gated at ``--gate`` x the projected person's keypoint-box diagonal); errors are the
  pixel distances of their common joints.
- otherwise the detections are reconstructed here, frame index by frame index, with the node's
  per-frame pipeline (:class:`capture.pipeline.FrameReconstructor`: epipolar association,
  robust DLT, tracking); errors are each person's triangulation projected into each view of its
  group against that view's (undistorted) joints. A triangulation fits its own views, so these
  errors are lower than a take's, and a camera too far off to be associated shows as few joints.

Per camera: frames, matched people, joints, median / p90 / mean error in pixels. A camera whose
median exceeds ``--flag-factor`` (2) x the median over the rig's cameras, or with fewer than
``--min-joints`` matched joints while others have them, is flagged as a likely bad calibration.

Measured on the Pose2Sim demo (tests/data/demo_yolo11n with Calib.qca.txt, triangulated here, 1 s):
per-camera medians 4.9-7.5 px, nothing flagged. cam02 tilted by 2 degrees (about 58 px vertically):
46.7 px against a rig median of 9.7, flagged. The same 2 degrees as a pan is not flagged (9.4 px):
a shift along the epipolar lines (horizontal here) is absorbed in the triangulated depth, so a
self-consistency check cannot see it; only another measurement (a board, a known length) can.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

from calibration.camera import Camera, CameraRig
from calibration.io import read_calibration
from capture.calibrate.cli_common import Parser, UsageError
from capture.calibrate.offsets import read_detection_folder
from capture.outputs.jsonl import iter_poses_jsonl
from capture.pipeline import FrameReconstructor
from core.errors import CaptureError, InputError
from core.logsetup import setup_logging
from core.skeleton import COCO17
from core.types import Detections2D, Poses3D

__all__ = ["errors_from_detections", "errors_from_take", "main", "summarise"]

log = logging.getLogger(__name__)

_PROG = "mvcap calibrate check"


def _empty(rig: CameraRig) -> dict[str, dict]:
    return {c.name: {"frames": set(), "people": 0, "errors": []} for c in rig}


def _project_people(cam: Camera, poses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(P, J, 2) distorted pixels of (P, J, 4) world poses, and (P, J) visibility (known, in front,
    inside the image)."""
    P, J = poses.shape[:2]
    X = poses[..., :3].reshape(-1, 3)
    depth = (X @ cam.R.T + cam.t)[:, 2].reshape(P, J)
    ok = (poses[..., 3] > 0) & (depth > 0.05)
    uv = np.zeros((P * J, 2))
    if ok.any():
        uv[ok.reshape(-1)] = cam.project(X[ok.reshape(-1)])
    uv = uv.reshape(P, J, 2)
    w, h = cam.size
    ok &= (uv[..., 0] >= 0) & (uv[..., 0] <= w - 1) & (uv[..., 1] >= 0) & (uv[..., 1] <= h - 1)
    return uv, ok


def errors_from_take(
    rig: CameraRig,
    detections: dict[str, list[Detections2D]],
    frames: Iterable[Poses3D],
    min_conf: float = 0.3,
    gate: float = 0.25,
) -> dict[str, dict]:
    """Reprojection errors of a take's 3D poses against each camera's detections.

    Args:
        rig: the calibration.
        detections: per camera name (of the rig), its detections; distorted pixels.
        frames: the take's frames; ``stamp_ns`` on the reference clock.
        min_conf: detected joints below this confidence are not compared.
        gate: a 3D person and a detection match when their mean joint distance is at most this
            fraction of the projected person's keypoint-box diagonal.

    Returns:
        Per camera name: ``frames`` (set of take frames compared), ``people`` (matched person-
        frames) and ``errors`` (list of per-joint distances, pixels).
    """
    out = _empty(rig)
    stamps = {n: np.array([d.stamp_ns for d in dets], dtype=np.int64) for n, dets in detections.items()}
    half = {n: 0.5 * float(np.median(np.diff(s))) if len(s) > 1 else 0.0 for n, s in stamps.items()}
    for frame in frames:
        if frame.poses.shape[0] == 0:
            continue
        for cam in rig:
            s = stamps.get(cam.name)
            if s is None or not len(s):
                continue
            k = int(np.argmin(np.abs(s - frame.stamp_ns)))
            if abs(int(s[k]) - frame.stamp_ns) > half[cam.name]:
                continue
            det = detections[cam.name][k].poses.astype(np.float64)
            out[cam.name]["frames"].add(frame.frame_idx)
            if det.shape[0] == 0 or det.shape[1] != frame.poses.shape[1]:
                continue
            uv, vis = _project_people(cam, frame.poses)
            common = vis[:, None] & (det[None, :, :, 2] >= min_conf)  # (P, D, J)
            dist = np.linalg.norm(uv[:, None] - det[None, :, :, :2], axis=-1)  # (P, D, J)
            n = common.sum(axis=-1)
            size = np.array(
                [np.hypot(*np.ptp(u[v], axis=0)) if v.sum() >= 2 else 0.0 for u, v in zip(uv, vis, strict=True)]
            )
            with np.errstate(divide="ignore", invalid="ignore"):
                cost = np.where(common, dist, 0.0).sum(axis=-1) / n
            cost = np.where((n >= 3) & (cost <= gate * size[:, None]), cost, np.inf)
            if not np.isfinite(cost).any():
                continue
            rows, cols = linear_sum_assignment(np.where(np.isfinite(cost), cost, 1e12))
            for p, d in zip(rows, cols, strict=True):
                if np.isfinite(cost[p, d]):
                    out[cam.name]["people"] += 1
                    out[cam.name]["errors"].extend(dist[p, d][common[p, d]].tolist())
    return out


def errors_from_detections(
    rig: CameraRig, detections: dict[str, list[Detections2D]], min_conf: float = 0.3
) -> dict[str, dict]:
    """Reprojection errors of the detections' own triangulation, frame index by frame index.

    Args:
        rig: the calibration.
        detections: per camera name, its detections (synchronised cameras: one frame index, one
            instant); distorted pixels.
        min_conf: joints below this confidence are not compared.

    Returns:
        As :func:`errors_from_take`; errors between undistorted pixels.
    """
    out = _empty(rig)
    names = [c.name for c in rig]
    by_frame: dict[int, dict[str, Detections2D]] = {}
    for name, dets in detections.items():
        for d in dets:
            by_frame.setdefault(d.frame_idx, {})[name] = d
    rec = FrameReconstructor(rig, COCO17)
    P = rig.projections()  # (C, 3, 4), undistorted pixels
    for frame_idx in sorted(by_frame):
        views = [by_frame[frame_idx].get(n) for n in names]
        stamp = int(np.median([v.stamp_ns for v in views if v is not None]))
        res = rec.process(views, stamp)
        raw = getattr(res, "raw_poses", None)
        poses = res.poses if raw is None else raw  # the frame's own triangulation when filtered
        for c, name in enumerate(names):
            if views[c] is not None:
                out[name]["frames"].add(frame_idx)
            for p in range(poses.shape[0]):
                if len(res.groups[p]) < 2:
                    continue  # a track moved onto one view's rays: it fits that view by construction
                ok = (res.obs_conf[p, c] >= min_conf) & (poses[p, :, 3] > 0)
                if not ok.any():
                    continue
                Xh = np.concatenate([poses[p, ok, :3], np.ones((int(ok.sum()), 1))], axis=1) @ P[c].T
                uv = Xh[:, :2] / Xh[:, 2:]
                out[name]["people"] += 1
                out[name]["errors"].extend(np.linalg.norm(uv - res.obs_px[p, c, ok], axis=1).tolist())
    return out


def summarise(collected: dict[str, dict], flag_factor: float = 2.0, min_joints: int = 20) -> dict:
    """Per-camera statistics and flags.

    Args:
        collected: output of :func:`errors_from_take` or :func:`errors_from_detections`.
        flag_factor: a camera whose median error exceeds this times the rig's is flagged.
        min_joints: a camera with fewer matched joints, while another has at least this many, is
            flagged.

    Returns:
        ``{"cameras": {name: {frames, people, joints, median_px, p90_px, mean_px, flag}},
        "rig_median_px", "flagged": [names]}``; statistics are None for a camera without joints.
    """
    cams: dict[str, dict] = {}
    for name, c in collected.items():
        e = np.asarray(c["errors"], dtype=np.float64)
        stats = {"frames": len(c["frames"]), "people": c["people"], "joints": int(e.size)}
        for key, value in (("median_px", 50), ("p90_px", 90)):
            stats[key] = round(float(np.percentile(e, value)), 2) if e.size else None
        stats["mean_px"] = round(float(e.mean()), 2) if e.size else None
        cams[name] = stats
    medians = [s["median_px"] for s in cams.values() if s["joints"] >= min_joints]
    rig_median = float(np.median(medians)) if medians else None
    for s in cams.values():
        if s["joints"] < min_joints and medians:
            s["flag"] = f"only {s['joints']} matched joints"
        elif rig_median is not None and s["median_px"] > flag_factor * rig_median:
            s["flag"] = f"median {s['median_px']} px > {flag_factor:g} x rig median {rig_median:.2f} px"
        else:
            s["flag"] = ""
    return {
        "cameras": cams,
        "rig_median_px": None if rig_median is None else round(rig_median, 2),
        "flagged": [n for n, s in cams.items() if s["flag"]],
    }


def _parser() -> Parser:
    p = Parser(prog=_PROG, description="Per-camera reprojection error of a take (a bad calibration stands out).")
    p.add_argument("--calibration", required=True, metavar="FILE", help="calibration file")
    p.add_argument("--detections", required=True, metavar="DIR", help="folder of <camera>.json.gz detections")
    p.add_argument("--take", metavar="RUN_DIR", help="take or run folder with poses3d.jsonl (or the file itself)")
    p.add_argument("--min-conf", type=float, default=0.3, help="2D joints below this confidence are ignored")
    p.add_argument("--gate", type=float, default=0.25, help="take matching gate, fraction of the body's box diagonal")
    p.add_argument("--flag-factor", type=float, default=2.0, help="flag cameras with median > this x rig median")
    p.add_argument("--min-joints", type=int, default=20, help="flag cameras with fewer matched joints")
    p.add_argument("--log-level", default="WARNING", help="DEBUG, INFO, WARNING or ERROR (default WARNING)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """``mvcap calibrate check --calibration FILE --detections DIR [--take RUN_DIR]``.

    Prints a table (one row per camera, flagged cameras marked) and one JSON line: ``mode``
    (``take`` or ``triangulated``), ``cameras`` (per camera frames, people, joints, median_px,
    p90_px, mean_px, flag), ``rig_median_px``, ``flagged``, ``elapsed_s``.

    Returns:
        0 (flagged cameras included); 2 on bad input, one line on stderr.
    """
    try:
        args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
        setup_logging(args.log_level)
        if not (0 <= args.min_conf <= 1 and args.gate > 0 and args.flag_factor > 1 and args.min_joints >= 0):
            raise UsageError("need 0 <= --min-conf <= 1, --gate > 0, --flag-factor > 1, --min-joints >= 0")
    except (UsageError, ValueError) as exc:
        print(f"{_PROG}: error: {exc}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    try:
        rig = read_calibration(args.calibration)
        detections = read_detection_folder(args.detections, rig.names)
        need = 1 if args.take else 2
        if len(detections) < need:
            raise InputError(
                f"{args.detections}: need <camera>.json.gz detections of at least {need} camera(s) of "
                f"{args.calibration} ({', '.join(rig.names)})"
            )
        if args.take:
            take = Path(args.take)
            path = take / "poses3d.jsonl" if take.is_dir() else take
            collected = errors_from_take(rig, detections, _frames(path), args.min_conf, args.gate)
        else:
            collected = errors_from_detections(rig.subset(list(detections)), detections, args.min_conf)
    except CaptureError as exc:
        print(f"{_PROG}: error: {exc}", file=sys.stderr)
        return 2
    summary = {"mode": "take" if args.take else "triangulated"}
    summary.update(summarise(collected, args.flag_factor, args.min_joints))
    summary["elapsed_s"] = round(time.perf_counter() - t0, 3)
    print(f"{'camera':<12} {'frames':>6} {'people':>6} {'joints':>7} {'median_px':>9} {'p90_px':>8}")
    for name, s in summary["cameras"].items():
        med = "-" if s["median_px"] is None else f"{s['median_px']:.1f}"
        p90 = "-" if s["p90_px"] is None else f"{s['p90_px']:.1f}"
        flag = f"  <- {s['flag']}" if s["flag"] else ""
        print(f"{name:<12} {s['frames']:>6} {s['people']:>6} {s['joints']:>7} {med:>9} {p90:>8}{flag}")
    flagged = ", ".join(summary["flagged"]) or "none"
    print(f"# rig median {summary['rig_median_px']} px ({summary['mode']}); flagged: {flagged}")
    print(json.dumps(summary))
    return 0


def _frames(path: Path) -> list[Poses3D]:
    """The frames of a poses3d.jsonl file, checked to hold COCO-17 poses like the detections."""
    if not path.is_file():
        raise InputError(f"{path}: no poses3d.jsonl (give a take or run folder, or the file)")
    records = iter_poses_jsonl(path)
    header = next(records)
    joints = header.get("joints") if isinstance(header, dict) else None
    if not isinstance(joints, list) or len(joints) != COCO17.n_joints:
        n = len(joints) if isinstance(joints, list) else "no"
        raise InputError(f"{path}: poses must have the {COCO17.n_joints} COCO-17 joints of the detections; got {n}")
    return [r for r in records if isinstance(r, Poses3D)]


if __name__ == "__main__":
    raise SystemExit(main())
