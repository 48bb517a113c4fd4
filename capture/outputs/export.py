"""``mvcap export``: a take's or run's ``poses3d.jsonl`` to TRC, C3D, BVH and CSV files.

The poses file is read twice, line by line: a first pass finds the frames, people, time origin,
rate and (for BVH) each person's bone lengths; the second feeds every writer frame by frame. Only
C3D holds a part of the take in memory (see :mod:`capture.outputs.c3d`); a file whose frame
indices go back is read whole and sorted.

Files (in ``--out``, default the take folder): ``person_<id>.trc`` (OpenSim; Y up),
``poses3d.c3d`` (every person; z up), ``person_<id>.bvh`` (one skeleton per file; Y up),
``poses3d.csv`` (long format; z up), and ``export.json``, which states each file's units, axes and
rate (BVH has no place for them). A JSON summary line is printed on stdout.

Up axis: the world of a run is the calibration's. ``--up`` names the world axis that points up
(``z``, ``-y`` for CMU Panoptic...); without it, the first of these decides: a ``world_frame``
text in the poses header; the run folder's ``config.toml`` calibration (an mvcap calibration's
``world_frame`` text, or a CMU Panoptic calibration: ``-y``; other formats: ``z``); else ``z``,
the project's convention (a take recorded with ``mvcap record`` has no config). Every export is
rotated to z up first (a proper rotation; see :func:`~capture.outputs.bvh.zup_from_world`).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, cast

import numpy as np

from capture.outputs.bvh import UNITS as BVH_UNITS
from capture.outputs.bvh import BvhExporter, PersonRig, parse_up_axis, up_axis_from_text, zup_from_world
from capture.outputs.bvh_solve import RestEstimator
from capture.outputs.c3d import UNITS as C3D_UNITS
from capture.outputs.c3d import C3dWriter
from capture.outputs.csv import CsvWriter
from capture.outputs.jsonl import iter_poses_jsonl, read_poses_jsonl
from capture.outputs.trc import TrcWriter
from core.errors import CaptureError, ConfigError, InputError, OutputError
from core.skeleton import Skeleton, skeleton_by_name
from core.types import Poses3D

__all__ = ["FORMATS", "ExportResult", "export_take", "main", "resolve_up"]

log = logging.getLogger(__name__)

FORMATS: Final = ("trc", "c3d", "bvh", "csv")
"""Export formats, in the order they are written."""

_DIMS_BATCH: Final = 256  # poses measured at once per person in the first pass
DEFAULT_RATE_HZ: Final = 30.0  # BVH and C3D need a rate; used when a take has too few frames to tell


@dataclass(frozen=True, slots=True)
class ExportResult:
    """What :func:`export_take` wrote.

    Attributes:
        files: written paths by format.
        n_frames: frame records read.
        rate_hz: the rate written, Hz.
        up: the world axis taken as up, and why (e.g. ``("-y", "calibration ... (CMU Panoptic)")``).
        people: track ids, sorted.
    """

    files: dict[str, list[Path]]
    n_frames: int
    rate_hz: float
    up: tuple[str, str]
    people: tuple[int, ...]


@dataclass
class _Scan:
    header: dict[str, Any]
    n_frames: int = 0
    increasing: bool = True
    t0_ns: int | None = None
    steps: list[float] = field(default_factory=list)
    spans: dict[int, list[int]] = field(default_factory=dict)
    dims: dict[int, RestEstimator] = field(default_factory=dict)
    pending: dict[int, list[np.ndarray]] = field(default_factory=dict)
    first_idx: int | None = None
    last_idx: int | None = None


def _scan(path: Path, skeleton: Skeleton, want_dims: bool) -> _Scan:
    """First pass: frames, people and their spans, time origin, stamp steps, bone lengths."""
    records = iter_poses_jsonl(path)
    scan = _Scan(cast(dict, next(records)))
    prev: Poses3D | None = None
    for fr in cast(Iterator[Poses3D], records):
        scan.n_frames += 1
        scan.t0_ns = fr.stamp_ns if scan.t0_ns is None else min(scan.t0_ns, fr.stamp_ns)
        idx = fr.frame_idx
        scan.first_idx = idx if scan.first_idx is None else min(scan.first_idx, idx)
        scan.last_idx = idx if scan.last_idx is None else max(scan.last_idx, idx)
        if prev is not None:
            if idx > prev.frame_idx:
                scan.steps.append((fr.stamp_ns - prev.stamp_ns) / (idx - prev.frame_idx))
            else:
                scan.increasing = False
        prev = fr
        for tid, pose in zip(fr.track_ids.tolist(), fr.poses, strict=True):
            span = scan.spans.setdefault(tid, [idx, idx])
            span[0], span[1] = min(span[0], idx), max(span[1], idx)
            if want_dims:
                buf = scan.pending.setdefault(tid, [])
                buf.append(pose)
                if len(buf) >= _DIMS_BATCH:
                    scan.dims.setdefault(tid, RestEstimator(skeleton)).add(np.stack(buf))
                    buf.clear()
    for tid, buf in scan.pending.items():
        if buf:
            scan.dims.setdefault(tid, RestEstimator(skeleton)).add(np.stack(buf))
    scan.pending.clear()
    return scan


def _rate(scan: _Scan) -> float:
    """1e9 / median stamp step per frame index, Hz, rounded to 1e-3 (0 if it cannot be told)."""
    steps = [s for s in scan.steps if s > 0]
    return round(1e9 / float(np.median(steps)), 3) if steps else 0.0


def _ordered(path: Path, scan: _Scan) -> Iterator[Poses3D]:
    """The second pass: frames by increasing index (a repeated index merges, later poses win)."""
    records = iter_poses_jsonl(path)
    next(records)
    if scan.increasing:
        for _, fr in zip(range(scan.n_frames), records, strict=False):
            yield cast(Poses3D, fr)
        records.close()
        return
    log.warning("%s: frame indices do not increase; sorting the frames in memory", path)
    records.close()
    merged: dict[int, tuple[int, dict[int, np.ndarray]]] = {}
    for fr in read_poses_jsonl(path)[1][: scan.n_frames]:
        poses = merged.get(fr.frame_idx, (0, {}))[1]
        poses.update(zip(fr.track_ids.tolist(), fr.poses, strict=True))
        merged[fr.frame_idx] = (fr.stamp_ns, poses)
    n_joints = len(scan.header.get("joints", []))
    for idx in sorted(merged):
        stamp, poses = merged.pop(idx)
        arr = np.stack(list(poses.values())) if poses else np.zeros((0, n_joints, 4))
        yield Poses3D(idx, stamp, np.array(list(poses), dtype=np.int64), arr)


def _calibration_up(calib: Path) -> tuple[str, str] | None:
    """The up axis a calibration file implies, and why (None if it cannot be read)."""
    if calib.name.lower().endswith(".json"):
        try:
            data = json.loads(calib.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if isinstance(data, dict) and isinstance(data.get("world_frame"), str):
            axis = up_axis_from_text(data["world_frame"])
            if axis is not None:
                return axis, f"calibration {calib} world_frame {data['world_frame']!r}"
        cams = data.get("cameras") if isinstance(data, dict) else None
        if isinstance(cams, list) and cams and isinstance(cams[0], dict) and "distCoef" in cams[0]:
            return "-y", f"calibration {calib} (CMU Panoptic world: y down)"
    return "z", f"calibration {calib} (z up by convention)"


def resolve_up(take_dir: Path, header: dict[str, Any], up: str | None = None) -> tuple[str, str]:
    """The world's up axis and why: ``up`` if given, else the poses header, the run's calibration, or z.

    Raises:
        InputError: ``up`` is not an axis.
    """
    if up is not None:
        return parse_up_axis(up), "--up"
    text = header.get("world_frame")
    if isinstance(text, str) and (axis := up_axis_from_text(text)) is not None:
        return axis, f"poses header world_frame {text!r}"
    cfg_path = take_dir / "config.toml"
    if cfg_path.is_file():
        from core.config import load_config

        try:
            calib = load_config(cfg_path).calibration
        except (ConfigError, OSError) as exc:
            log.warning("%s: cannot read the calibration path (%s); taking z as up", cfg_path, exc)
            calib = ""
        if calib:
            found = _calibration_up(Path(calib))
            if found is not None:
                return found
    return "z", "default (mvcap world convention: z up)"


def _rotated(frame: Poses3D, rot: np.ndarray) -> Poses3D:
    if frame.poses.shape[0] == 0 or np.array_equal(rot, np.eye(3)):
        return frame
    poses = frame.poses.copy()
    poses[..., :3] = poses[..., :3] @ rot.T
    poses[..., :3] = np.where(poses[..., 3:] > 0, poses[..., :3], 0.0)
    return Poses3D(frame.frame_idx, frame.stamp_ns, frame.track_ids, poses)


def export_take(
    poses_path: str | Path,
    out_dir: str | Path,
    formats: Sequence[str] = ("trc",),
    *,
    up: str | None = None,
    rate_hz: float | None = None,
    c3d_units: str = "mm",
    bvh_units: str = "m",
) -> ExportResult:
    """Export a ``poses3d.jsonl`` file (see the module docstring).

    Args:
        poses_path: the poses file (its folder is searched for ``config.toml`` to find the up axis).
        out_dir: output folder (created).
        formats: any of :data:`FORMATS`.
        up: the world axis pointing up (:data:`~capture.outputs.bvh.UP_AXES`); None: see
            :func:`resolve_up`.
        rate_hz: frame rate written, Hz; None: 1e9 / the median stamp step per frame index
            (:data:`DEFAULT_RATE_HZ` for BVH and C3D when a take has a single frame).
        c3d_units: ``"mm"`` or ``"m"``.
        bvh_units: ``"m"`` or ``"cm"``.

    Returns:
        The files written and the figures of the take.

    Raises:
        InputError: unknown format, units or axis; missing, malformed or empty poses file (no
            frame, or no person in any frame); a skeleton that is not registered.
        OutputError: a file cannot be written.
    """
    formats = list(dict.fromkeys(f.strip().lower() for f in formats))
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise InputError(f"unknown export format(s) {bad or formats}; valid: {', '.join(FORMATS)}")
    if c3d_units not in C3D_UNITS or bvh_units not in BVH_UNITS:
        raise InputError(f"units: C3D takes {sorted(C3D_UNITS)}, BVH {sorted(BVH_UNITS)}")
    if rate_hz is not None and not rate_hz > 0:
        raise InputError(f"--rate-hz must be > 0; got {rate_hz}")
    path, out = Path(poses_path), Path(out_dir)
    records = iter_poses_jsonl(path)
    header = cast(dict, next(records))
    records.close()
    try:
        skeleton = skeleton_by_name(str(header.get("skeleton", "coco17")))
    except KeyError as exc:
        raise InputError(f"{path}: {exc.args[0]}") from None
    if list(header.get("joints", [])) != list(skeleton.joints):
        raise InputError(f"{path}: the header's joints are not those of {skeleton.name}")
    axis, why = resolve_up(path.parent, header, up)
    rot = zup_from_world(axis)
    scan = _scan(path, skeleton, "bvh" in formats)
    if scan.n_frames == 0:
        raise InputError(f"{path}: the take holds no frame")
    if not scan.spans:
        raise InputError(f"{path}: the take holds {scan.n_frames} frames but no person")
    rate = rate_hz if rate_hz is not None else _rate(scan)
    uniform_rate = rate if rate > 0 else DEFAULT_RATE_HZ
    people = tuple(sorted(scan.spans))
    first, last = cast(int, scan.first_idx), cast(int, scan.last_idx)
    log.info("%s: %d frames, %d people, %.3f Hz, up %s (%s)", path, scan.n_frames, len(people), rate, axis, why)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{out}: cannot write ({exc.strerror or exc})") from exc
    note = f"world up axis was {axis} ({why})" + ("" if axis == "z" else "; rotated to z up")
    writers: dict[str, Any] = {}
    try:
        if "trc" in formats:
            writers["trc"] = TrcWriter(out, skeleton.joints, rate, t0_ns=scan.t0_ns)
        if "c3d" in formats:
            writers["c3d"] = C3dWriter(
                out / "poses3d.c3d", people, skeleton.joints, first, last - first + 1, uniform_rate,
                units=c3d_units, up_note=f"world {axis}", source=str(path),
            )  # fmt: skip
        if "bvh" in formats:
            rigs = {t: PersonRig(s[0], s[1], scan.dims[t].rest()) for t, s in scan.spans.items()}
            writers["bvh"] = BvhExporter(out, rigs, uniform_rate, units=bvh_units, skeleton=skeleton)  # frames: z up
        if "csv" in formats:
            notes = [f"source: {path}", f"rate_hz: {rate}", note]
            writers["csv"] = CsvWriter(out / "poses3d.csv", skeleton.joints, t0_ns=scan.t0_ns, notes=notes)
        for fr in _ordered(path, scan):
            fr = _rotated(fr, rot)
            for w in writers.values():
                w.write(fr)
        files: dict[str, list[Path]] = {}
        for name in FORMATS:
            if name in writers:
                done = writers.pop(name).close()
                files[name] = done if isinstance(done, list) else [done]
    finally:
        for w in writers.values():  # after a failure: release what is still open
            try:
                w.close()
            except (CaptureError, OSError, ValueError):
                pass
    result = ExportResult(files, scan.n_frames, rate, (axis, why), people)
    _write_info(out / "export.json", path, result, c3d_units, bvh_units, uniform_rate)
    return result


def _write_info(
    info_path: Path, source: Path, res: ExportResult, c3d_units: str, bvh_units: str, uniform_rate: float
) -> None:
    """``export.json``: every file's units, axes and rate."""
    conv = {
        "trc": "OpenSim TRC, metres; Y up: (X, Y, Z) = z-up world (x, z, -y); rows = frame records, Time from stamps",
        "c3d": f"C3D, {c3d_units} (POINT:UNITS), z-up world, right-handed; labels p<id>_<joint>; residual -1 ="
        f" missing; one frame per frame index at {uniform_rate} Hz",
        "bvh": f"BVH, {bvh_units}; Y up, right-handed, (X, Y, Z) = z-up world (x, z, -y); rest T-pose facing +Z,"
        f" left along +X; Euler ZXY degrees (R = Rz Rx Ry); one frame per frame index at {uniform_rate} Hz",
        "csv": "long CSV (frame, time_s, person, joint, x, y, z, conf), metres, z-up world, right-handed",
    }
    info = {
        "source": str(source),
        "frames": res.n_frames,
        "rate_hz": res.rate_hz,
        "people": list(res.people),
        "world_up": res.up[0],
        "world_up_from": res.up[1],
        "files": {k: [p.name for p in v] for k, v in res.files.items()},
        "conventions": {k: conv[k] for k in res.files},
    }
    try:
        info_path.write_text(json.dumps(info, indent=2) + "\n")
    except OSError as exc:
        raise OutputError(f"{info_path}: cannot write ({exc.strerror or exc})") from exc


def main(argv: list[str] | None = None) -> int:
    """``mvcap export --take DIR [--format trc,c3d,bvh,csv] [--out DIR] [--up AXIS] [--rate-hz HZ]``."""
    p = argparse.ArgumentParser(
        prog="mvcap export", description="Export a take or run folder's poses3d.jsonl to TRC, C3D, BVH and CSV files."
    )
    p.add_argument("--take", required=True, help="take or run folder holding poses3d.jsonl")
    p.add_argument("--format", default="trc", help=f"comma-separated formats among {','.join(FORMATS)} (default: trc)")
    p.add_argument("--out", default=None, help="output folder (default: the take folder)")
    p.add_argument("--up", default=None, help="world axis pointing up: z, -z, y, -y, x, -x (default: from the run)")
    p.add_argument("--rate-hz", type=float, default=None, help="frame rate, Hz (default: from the timestamps)")
    p.add_argument("--c3d-units", default="mm", choices=sorted(C3D_UNITS), help="C3D point units (default: mm)")
    p.add_argument("--bvh-units", default="m", choices=sorted(BVH_UNITS), help="BVH length units (default: m)")
    p.add_argument("--log-level", default="WARNING")
    args = p.parse_args(argv)
    from core.logsetup import setup_logging

    setup_logging(args.log_level)
    try:
        res = export_take(
            Path(args.take) / "poses3d.jsonl", Path(args.out or args.take), args.format.split(","),
            up=args.up, rate_hz=args.rate_hz, c3d_units=args.c3d_units, bvh_units=args.bvh_units,
        )  # fmt: skip
    except OutputError as exc:
        print(f"mvcap export: error: {exc}", file=sys.stderr)
        return 1
    except CaptureError as exc:
        print(f"mvcap export: error: {exc}", file=sys.stderr)
        return 2
    summary: dict[str, Any] = {"frames": res.n_frames, "rate_hz": res.rate_hz, "people": list(res.people)}
    summary["up"] = res.up[0]
    summary.update({name: [str(f) for f in files] for name, files in res.files.items()})
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
