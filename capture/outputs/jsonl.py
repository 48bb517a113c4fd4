"""3D poses as JSON Lines: a per-frame flushed writer that can resume, and a streaming reader.

``poses3d.jsonl`` starts with one header record (format, version, skeleton, joint names, units), then
one record per output frame::

    {"frame": 12, "stamp_ns": 200000000, "timestamp_s": 0.2,
     "people": [{"id": 1, "joints": [[x, y, z, conf], ...]}]}

with x, y, z in metres in the calibration's world frame and conf 0 for a missing joint. Each record
is written with one unbuffered ``write`` as it comes, so a run cut short leaves a readable file up to
its last frame; a torn last line (a process killed mid-write, a full disk) is ignored by the reader
and cut off by :class:`PosesWriter` when it resumes the file.

Example:
    >>> import tempfile
    >>> from core.skeleton import COCO17
    >>> with tempfile.TemporaryDirectory() as d:
    ...     with PosesWriter(Path(d) / "poses3d.jsonl", COCO17) as w:
    ...         w.write(Poses3D(0, 10**9, np.array([3]), np.ones((1, 17, 4))))
    ...     header, frames = read_poses_jsonl(Path(d) / "poses3d.jsonl")
    >>> header["format"], len(frames), frames[0].poses.shape
    ('mvcap-poses3d', 1, (1, 17, 4))
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, Final, cast

import numpy as np

from core.errors import InputError, OutputError, ShapeError
from core.skeleton import Skeleton
from core.types import Poses3D

__all__ = ["FORMAT", "VERSION", "PosesWriter", "count_frames", "iter_poses_jsonl", "read_poses_jsonl"]

log = logging.getLogger(__name__)

FORMAT: Final[str] = "mvcap-poses3d"
VERSION: Final[int] = 1

# What a malformed record raises while it is decoded (UnicodeDecodeError and ShapeError are ValueErrors).
_MALFORMED: Final = (json.JSONDecodeError, KeyError, TypeError, ValueError)


def _dumps(record: dict[str, Any]) -> bytes:
    return (json.dumps(record, separators=(",", ":")) + "\n").encode("utf-8")


def _parse_header(raw: bytes) -> dict[str, Any] | None:
    """The header record of a first line, or None if it is not one of ours."""
    try:
        header = json.loads(raw)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError
        return None
    return header if isinstance(header, dict) and header.get("format") == FORMAT else None


def _parse_frame(raw: bytes, n_joints: int) -> Poses3D:
    """Decode one frame record; raises one of ``_MALFORMED`` if it is not a valid record."""
    rec = json.loads(raw)
    ids = [p["id"] for p in rec["people"]]
    poses = np.array([p["joints"] for p in rec["people"]], dtype=np.float64).reshape(len(ids), n_joints, 4)
    return Poses3D(rec["frame"], rec["stamp_ns"], np.array(ids, dtype=np.int64), poses)


def _output_error(path: Path, exc: OSError) -> OutputError:
    return OutputError(f"{path}: cannot write ({exc.strerror or exc})")


class PosesWriter:
    """Append-only JSON Lines writer of tracked 3D poses, one unbuffered write per frame.

    Convention: a new file is never silently replaced. Without ``resume`` an existing non-empty file
    raises :class:`InputError` (write into a new folder, or resume it); ``overwrite=True`` is for
    files derived again from a source at each run (e.g. ``poses3d_smoothed.jsonl``).

    With ``resume=True`` an existing file is checked (same format, version and joints), a torn or
    malformed last line is cut off (truncated to the end of the last complete record) and frames are
    appended after it. ``resumed_frames``, ``last_frame`` and ``max_track_id`` describe what the
    file already held, so that a restarted node can continue its frame and track numbering.

    If a write fails (full disk, read-only folder, I/O error), :class:`OutputError` is raised and
    the file is cut back to its last complete record when the system allows it: what was written
    stays readable by :func:`read_poses_jsonl`, and a later :meth:`write` may succeed once space is
    freed.

    Args:
        path: output file (``poses3d.jsonl``); created if absent.
        skeleton: the joints' skeleton, written into (or checked against) the header record.
        fsync: also ``os.fsync`` every record, so that a power loss keeps every written frame
            (a write alone survives a killed process, not a power loss).
        resume: append to an existing file instead of refusing it (see above); an absent or empty
            file is started as usual.
        overwrite: replace an existing file (not with ``resume``).

    Attributes:
        resumed_frames: frame records kept from the existing file (0 unless resumed).
        last_frame: ``frame`` of the last kept record, -1 if none.
        max_track_id: largest track id in the kept records, -1 if none.

    Raises:
        InputError: the file exists and is not empty (without ``resume``/``overwrite``), or it
            cannot be resumed (foreign header, other joints, malformed record before its last line).
        OutputError: the file cannot be created or its header cannot be written.
        ValueError: both ``resume`` and ``overwrite``.
    """

    def __init__(
        self,
        path: str | Path,
        skeleton: Skeleton,
        fsync: bool = False,
        resume: bool = False,
        *,
        overwrite: bool = False,
    ):
        if resume and overwrite:
            raise ValueError("PosesWriter: resume and overwrite are exclusive")
        self.path = Path(path)
        self.fsync = fsync
        self.resumed_frames = 0
        self.last_frame = -1
        self.max_track_id = -1
        self._n_joints = skeleton.n_joints
        self._fd = -1
        self._size = 0  # bytes of complete records; the file is cut back to it after a failed write
        self._broken: OutputError | None = None
        header = _dumps(
            {
                "format": FORMAT,
                "version": VERSION,
                "skeleton": skeleton.name,
                "joints": list(skeleton.joints),
                "units": "m",
            }
        )
        keep = self._scan(skeleton) if resume else 0
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise _output_error(self.path, exc) from exc
        try:
            size = os.fstat(fd).st_size
            if size and not (resume or overwrite):
                raise InputError(
                    f"{self.path}: already holds poses ({size} bytes); write into a new folder, or resume it"
                )
            if size > keep:
                if resume:
                    log.warning("%s: cutting a torn last line (%d bytes) before resuming", self.path, size - keep)
                os.ftruncate(fd, keep)
            os.lseek(fd, keep, os.SEEK_SET)
        except OSError as exc:
            os.close(fd)
            raise _output_error(self.path, exc) from exc
        except InputError:
            os.close(fd)
            raise
        self._fd = fd
        self._size = keep
        if keep == 0:
            try:
                self._write(header)
            except OutputError:
                self.close()
                raise
        elif resume:
            log.info(
                "%s: resuming after %d frames (last frame %d, largest track id %d)",
                self.path,
                self.resumed_frames,
                self.last_frame,
                self.max_track_id,
            )

    def _scan(self, skeleton: Skeleton) -> int:
        """Check an existing file for resuming; the byte length of its header and complete records."""
        try:
            fh = self.path.open("rb")
        except FileNotFoundError:
            return 0
        except OSError as exc:
            raise InputError(f"{self.path}: cannot read poses to resume ({exc.strerror})") from None
        with fh:
            first = fh.readline()
            header = _parse_header(first) if first.endswith(b"\n") else None
            if header is None:
                start = f'{{"format":"{FORMAT}"'.encode()
                if not first.endswith(b"\n") and (first.startswith(start) or start.startswith(first)):
                    return 0  # empty, or a header torn before its end (the only line): nothing to keep
                raise InputError(f"{self.path}: cannot resume: not an {FORMAT} file (first line has no header record)")
            joints = list(header.get("joints", []))
            if header.get("version") != VERSION or joints != list(skeleton.joints):
                raise InputError(
                    f"{self.path}: cannot resume: it holds {FORMAT} version {header.get('version')} with"
                    f" {len(joints)} joints ({header.get('skeleton')}); this run writes version {VERSION}"
                    f" with the {skeleton.n_joints} joints of {skeleton.name}"
                )
            keep, line_no, bad = len(first), 1, None
            for raw in fh:
                line_no += 1
                if bad is not None:
                    raise InputError(f"{self.path}: cannot resume: line {bad[0]} is malformed ({bad[1]})")
                if not raw.endswith(b"\n"):
                    break  # torn last line
                try:
                    frame = _parse_frame(raw, len(joints))
                except _MALFORMED as exc:
                    bad = (line_no, exc)
                    continue
                keep += len(raw)
                self.resumed_frames += 1
                self.last_frame = frame.frame_idx
                if frame.track_ids.size:
                    self.max_track_id = max(self.max_track_id, int(frame.track_ids.max()))
        return keep

    def __enter__(self) -> PosesWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _write(self, data: bytes) -> None:
        if self._fd < 0:
            raise ValueError(f"{self.path}: write to a closed PosesWriter")
        if self._broken is not None:
            raise OutputError(f"{self.path}: cannot write (an earlier write failed: {self._broken})")
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as exc:
            err = _output_error(self.path, exc)
            if len(view) < len(data):  # a part of the record went in: cut it off again
                try:
                    os.ftruncate(self._fd, self._size)
                    os.lseek(self._fd, self._size, os.SEEK_SET)
                except OSError:
                    self._broken = err
            raise err from exc
        self._size += len(data)
        if self.fsync:
            try:
                os.fsync(self._fd)
            except OSError as exc:
                raise _output_error(self.path, exc) from exc

    def write(self, frame: Poses3D) -> None:
        """Append one frame's poses (one ``write``, and an ``fsync`` if asked).

        Args:
            frame: the frame's tracked poses, (P, J, 4) with J the skeleton's joints.

        Raises:
            ShapeError: the poses do not have the skeleton's J joints.
            OutputError: the record cannot be written (the file keeps its complete records).
            ValueError: the writer is closed.
        """
        if frame.poses.shape[0] and frame.poses.shape[1] != self._n_joints:
            raise ShapeError(f"poses must be (P, {self._n_joints}, 4); got {frame.poses.shape}")
        people = [
            {"id": int(tid), "joints": np.round(pose, 5).tolist()}
            for tid, pose in zip(frame.track_ids, frame.poses, strict=True)
        ]
        self._write(
            _dumps(
                {
                    "frame": frame.frame_idx,
                    "stamp_ns": frame.stamp_ns,
                    "timestamp_s": round(frame.stamp_ns * 1e-9, 6),
                    "people": people,
                }
            )
        )

    def close(self) -> None:
        """Close the file (idempotent).

        Raises:
            OutputError: the system reports a failed write at close (e.g. on a network file system).
        """
        fd, self._fd = self._fd, -1
        if fd >= 0:
            try:
                os.close(fd)
            except OSError as exc:
                raise _output_error(self.path, exc) from exc


def count_frames(path: str | Path) -> int:
    """Frame records completed so far in a ``poses3d.jsonl`` being written (0 if none or unreadable).

    Counts newlines in 1 MiB chunks without parsing, so a progress bar can call it often.
    """
    try:
        with Path(path).open("rb") as fh:
            lines = sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))
    except OSError:
        return 0
    return max(lines - 1, 0)  # the header record


def iter_poses_jsonl(path: str | Path) -> Iterator[dict[str, Any] | Poses3D]:
    """Stream a ``poses3d.jsonl`` file: its header record first, then one frame per line.

    The file is read line by line (memory bounded by one line); a malformed last line (a run killed
    mid-write) is skipped with a warning.

    Args:
        path: the file.

    Yields:
        The header record (a dict), then :class:`Poses3D` frames in file order.

    Raises:
        InputError: missing or unreadable file, missing/foreign header, or a malformed record before
            the last line (raised when iteration reaches it).
    """
    path = Path(path)
    try:
        with path.open("rb") as fh:
            first = fh.readline()
            if not first:
                raise InputError(f"{path}: empty poses file")
            header = _parse_header(first)
            if header is None:
                raise InputError(f"{path}: not an {FORMAT} file (first line has no header record)")
            yield header
            n_joints = len(header.get("joints", []))
            line_no, bad = 1, None
            for raw in fh:
                line_no += 1
                if bad is not None:
                    raise InputError(f"{path}: line {bad[0]} is malformed ({bad[1]})")
                try:
                    frame = _parse_frame(raw, n_joints)
                except _MALFORMED as exc:
                    bad = (line_no, exc)
                    continue
                yield frame
            if bad is not None:
                log.warning("%s: ignoring truncated last line %d", path, bad[0])
    except OSError as exc:
        raise InputError(f"{path}: cannot read poses ({exc.strerror})") from None


def read_poses_jsonl(path: str | Path) -> tuple[dict[str, Any], list[Poses3D]]:
    """Read a whole ``poses3d.jsonl`` file; a truncated last line (a run killed mid-write) is ignored.

    Prefer :func:`iter_poses_jsonl` for long takes: this holds every frame in memory.

    Returns:
        The header record and the frames in file order.

    Raises:
        InputError: missing file, missing/foreign header, or a malformed record before the last line.
    """
    records = iter_poses_jsonl(path)
    header = cast(dict[str, Any], next(records))  # the header comes first, then only frames
    return header, cast(list[Poses3D], list(records))
