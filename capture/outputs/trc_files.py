"""TRC files of a whole take: from a list of frames, or streamed from a recorded ``poses3d.jsonl``.

Both write through :class:`capture.outputs.trc.TrcWriter` (one ``person_<id>.trc`` per track,
OpenSim's marker format), with Time relative to the take's first stamp; frames out of order are
sorted first, a repeated frame index merged.
"""

from __future__ import annotations

import logging
from array import array
from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from pathlib import Path
from typing import cast

import numpy as np

from capture.outputs.jsonl import iter_poses_jsonl, read_poses_jsonl
from capture.outputs.trc import TrcExport, TrcWriter
from core.types import Poses3D

__all__ = ["trc_from_jsonl", "write_trc_files"]

log = logging.getLogger(__name__)


def _in_order(frames: Iterable[Poses3D]) -> list[Poses3D]:
    """Frames by increasing frame index; a repeated index merges (later stamp and poses win)."""
    frames = list(frames)
    if all(a.frame_idx < b.frame_idx for a, b in zip(frames, frames[1:], strict=False)):
        return frames
    merged: dict[int, tuple[int, dict[int, np.ndarray]]] = {}
    for fr in frames:
        poses = merged[fr.frame_idx][1] if fr.frame_idx in merged else {}
        poses.update(zip(fr.track_ids.tolist(), fr.poses, strict=True))
        merged[fr.frame_idx] = (fr.stamp_ns, poses)
    out, n_joints = [], frames[0].poses.shape[1]
    for idx in sorted(merged):
        stamp, poses = merged[idx]
        arr = np.stack(list(poses.values())) if poses else np.zeros((0, n_joints, 4))
        out.append(Poses3D(idx, stamp, np.array(list(poses), dtype=np.int64), arr))
    return out


def write_trc_files(
    frames: Iterable[Poses3D], joint_names: Sequence[str], out_dir: str | Path, rate_hz: float
) -> list[Path]:
    """Write one TRC file per track from a list of frames (see :class:`TrcWriter`).

    Frames may come in any order; Time is relative to the smallest stamp.

    Args:
        frames: output frames.
        joint_names: marker names (J).
        out_dir: folder for ``person_<id>.trc``.
        rate_hz: frame rate written in the header, Hz.

    Returns:
        The written paths, by track id.

    Raises:
        OutputError: a file cannot be written.
    """
    ordered = _in_order(frames)
    writer = TrcWriter(out_dir, joint_names, rate_hz, t0_ns=min((f.stamp_ns for f in ordered), default=0))
    with writer:
        for fr in ordered:
            writer.write(fr)
    return writer.close()  # already closed by the with block: returns the paths


def _rate_hz(stamps: array) -> float:
    """Frame rate from the median stamp step, Hz, rounded to 1e-3 (0 if it cannot be told)."""
    if len(stamps) < 2:
        return 0.0
    step = float(np.median(np.diff(np.frombuffer(stamps, dtype=np.int64))))
    return round(1e9 / step, 3) if step > 0 else 0.0


def trc_from_jsonl(path: str | Path, out_dir: str | Path, rate_hz: float | None = None) -> TrcExport:
    """Write one TRC file per track from a ``poses3d.jsonl`` file, streamed line by line.

    The file is read twice: once for the time origin (smallest stamp) and, unless ``rate_hz`` is
    given, the frame rate (the median stamp step; this holds 8 bytes a frame), then into a
    :class:`TrcWriter`. A file whose frame indices do not increase is read whole and sorted, as
    :func:`write_trc_files` does. Frames appended while it runs are left out.

    Args:
        path: the poses file.
        out_dir: folder for ``person_<id>.trc``.
        rate_hz: frame rate for the headers, Hz; default: 1e9 / median stamp step, rounded to 1e-3
            (0 when there are fewer than 2 frames).

    Returns:
        The files written (none if the file holds no frame), the frame count, rate and track spans.

    Raises:
        InputError: the poses file is missing or malformed (see :func:`iter_poses_jsonl`).
        OutputError: a TRC file cannot be written.
    """
    stamps = array("q")
    n_frames, t0, prev, increasing = 0, None, None, True
    records = iter_poses_jsonl(path)
    header = cast(dict, next(records))
    for fr in cast(Iterator[Poses3D], records):
        n_frames += 1
        t0 = fr.stamp_ns if t0 is None else min(t0, fr.stamp_ns)
        increasing = increasing and (prev is None or fr.frame_idx > prev)
        prev = fr.frame_idx
        if rate_hz is None:
            stamps.append(fr.stamp_ns)
    rate = _rate_hz(stamps) if rate_hz is None else rate_hz
    joints = list(header.get("joints", []))
    second = iter_poses_jsonl(path)
    if increasing:
        frames = cast(Iterator[Poses3D], islice(second, 1, n_frames + 1))
    else:
        log.warning("%s: frame indices do not increase; sorting the frames in memory", path)
        frames = iter(_in_order(read_poses_jsonl(path)[1][:n_frames]))
    writer = TrcWriter(out_dir, joints, rate, t0_ns=t0)
    try:
        with writer:
            for fr in frames:
                writer.write(fr)
    finally:
        second.close()
    paths = writer.close()
    return TrcExport(tuple(paths), n_frames, rate, writer.tracks)
