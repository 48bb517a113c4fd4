"""TRC export (OpenSim marker files): one ``person_<id>.trc`` per track, written as frames arrive.

A TRC file is a header (rate, NumFrames, marker names, the first frame) and one tab-separated row per
frame. :class:`TrcWriter` appends each track's rows as frames come, so memory does not grow with the
length of a take, and fixes each header at :meth:`TrcWriter.close`. :mod:`capture.outputs.trc_files` builds on it:
``write_trc_files`` (a list of frames) and ``trc_from_jsonl`` (a ``poses3d.jsonl`` file, streamed).

Example:
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     w = TrcWriter(d, ["a", "b"], 50.0)
    ...     w.write(Poses3D(0, 0, np.array([7]), np.ones((1, 2, 4))))
    ...     w.write(Poses3D(1, 20_000_000, np.array([7]), np.ones((1, 2, 4))))
    ...     [p.name for p in w.close()], Path(d, "person_7.trc").read_text().splitlines()[2]
    (['person_7.trc'], '50\\t50\\t2\\t2\\tm\\t50\\t1\\t2')
"""

from __future__ import annotations

import logging
import tempfile
from array import array
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, ClassVar, Final, cast

import numpy as np

from core.errors import OutputError, ShapeError
from core.types import Poses3D

__all__ = ["TrackSpan", "TrcExport", "TrcWriter"]

log = logging.getLogger(__name__)

_COUNT_DIGITS: Final = 12  # NumFrames is reserved this many digits in a header until close
_COPY_CHUNK: Final = 1 << 20  # bytes moved at a time when a header is fixed at close


def _header(name: str, rate_hz: float, joint_names: Sequence[str], first_frame: int, n_rows: int | str) -> bytes:
    """The six header lines of a TRC file (the last one empty), UTF-8."""
    n_joints = len(joint_names)
    lines = [
        f"PathFileType\t4\t(X/Y/Z)\t{name}",
        "DataRate\tCameraRate\tNumFrames\tNumMarkers\tUnits\tOrigDataRate\tOrigDataStartFrame\tOrigNumFrames",
        f"{rate_hz:g}\t{rate_hz:g}\t{n_rows}\t{n_joints}\tm\t{rate_hz:g}\t{first_frame + 1}\t{n_rows}",
        "Frame#\tTime\t" + "\t\t\t".join(joint_names) + "\t\t",
        "\t\t" + "\t".join(f"X{j + 1}\tY{j + 1}\tZ{j + 1}" for j in range(n_joints)),
        "",
    ]
    return ("\n".join(lines) + "\n").encode("utf-8")


@dataclass(frozen=True, slots=True)
class TrackSpan:
    """Where a track appears in a TRC export.

    Attributes:
        track_id: the track.
        first_frame: its first frame index (``OrigDataStartFrame`` - 1 in its file).
        last_frame: its last frame index.
        n_frames: frames in which it appears (its file also has blank rows for the others between).
    """

    track_id: int
    first_frame: int
    last_frame: int
    n_frames: int


@dataclass(frozen=True, slots=True)
class TrcExport:
    """What :func:`trc_from_jsonl` wrote.

    Attributes:
        paths: the TRC files, by track id.
        n_frames: frame records read from the poses file.
        rate_hz: the frame rate written in the headers, Hz.
        tracks: one span per track, by track id.
    """

    paths: tuple[Path, ...]
    n_frames: int
    rate_hz: float
    tracks: tuple[TrackSpan, ...]


@dataclass(slots=True)
class _Track:
    path: Path
    header_len: int  # bytes of the placeholder header at the start of the file
    first_frame: int
    last_frame: int
    last_pos: int  # position in the frame log of the track's last row
    n_rows: int
    n_present: int


class _FrameLog:
    """(frame_idx, stamp_ns) of every frame written so far, in order; constant memory.

    Recent entries are kept in memory, older ones on an anonymous temporary file in ``folder``
    (16 bytes a frame): a track that reappears after a gap needs the gap's frames for its blank rows.
    """

    def __init__(self, folder: Path, chunk: int):
        self._folder = folder
        self._chunk = chunk
        self._mem = array("q")  # flat pairs of entries [self._spilled, len(self))
        self._spilled = 0
        self._file: IO[bytes] | None = None

    def __len__(self) -> int:
        return self._spilled + len(self._mem) // 2

    def append(self, frame_idx: int, stamp_ns: int) -> None:
        self._mem.append(frame_idx)
        self._mem.append(stamp_ns)
        if len(self._mem) >= 4 * self._chunk:  # keep at most 2 chunks in memory
            if self._file is None:
                self._folder.mkdir(parents=True, exist_ok=True)
                self._file = tempfile.TemporaryFile(dir=self._folder, prefix=".trc-frames-")
            self._file.seek(0, 2)
            self._file.write(self._mem[: 2 * self._chunk].tobytes())
            del self._mem[: 2 * self._chunk]
            self._spilled += self._chunk

    def blocks(self, start: int, stop: int) -> Iterator[list[int]]:
        """Entries ``start:stop`` as flat [frame_idx, stamp_ns, ...] lists of at most one chunk."""
        for lo in range(start, stop, self._chunk):
            hi = min(lo + self._chunk, stop)
            out = array("q")
            if lo < self._spilled:
                assert self._file is not None
                end = min(hi, self._spilled)
                self._file.seek(16 * lo)
                out.frombytes(self._file.read(16 * (end - lo)))
            a, b = max(lo, self._spilled) - self._spilled, hi - self._spilled
            if b > a:
                out.extend(self._mem[2 * a : 2 * b])
            yield out.tolist()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class TrcWriter:
    """Streaming writer of one TRC file (OpenSim marker format) per track.

    Convention: OpenSim is Y-up; our world is Z-up, so TRC (X, Y, Z) = world (x, z, -y), metres
    (a -90 degree rotation about x, right-handed). Missing joints are left blank. Each file spans its
    track's first to last frame, with a row for every frame written in between (blank where the track
    is absent). Frame# is ``frame_idx + 1``; Time is ``(stamp_ns - t0_ns) * 1e-9`` seconds.

    Rows are appended as frames arrive; each file starts with a header whose NumFrames is a
    fixed-width placeholder, replaced in place at :meth:`close`. Memory is constant in the number of
    frames; at most ``max_open`` files are open at once (the least recently written is closed and
    reopened when its track comes back).

    Args:
        out_dir: folder for ``person_<id>.trc`` (created when the first file is); existing files of
            the same names are replaced.
        joint_names: marker names (J).
        rate_hz: frame rate written in the headers, Hz.
        t0_ns: time origin, nanoseconds; default: the first frame's stamp (the smallest when stamps
            increase, as :func:`write_trc_files` requires).
        max_open: most files held open at once.

    Raises:
        ValueError: ``max_open`` < 1.
    """

    _log_chunk: ClassVar[int] = 4096  # frame-log entries per block (memory: 2 blocks of 16 bytes each)

    def __init__(
        self,
        out_dir: str | Path,
        joint_names: Sequence[str],
        rate_hz: float,
        *,
        t0_ns: int | None = None,
        max_open: int = 64,
    ):
        if max_open < 1:
            raise ValueError(f"max_open must be >= 1; got {max_open}")
        self.out_dir = Path(out_dir)
        self.joint_names = tuple(joint_names)
        self.rate_hz = rate_hz
        self.max_open = max_open
        self._t0 = t0_ns
        self._log = _FrameLog(self.out_dir, self._log_chunk)
        self._tracks: dict[int, _Track] = {}
        self._open: OrderedDict[int, IO[bytes]] = OrderedDict()
        self._last_frame: int | None = None
        self._blank = "\t" * (3 * len(self.joint_names) - 1)
        self._failed: OutputError | None = None
        self._released = False  # files and frame log closed
        self._paths: list[Path] | None = None  # set once close() has fixed every header

    @property
    def n_frames(self) -> int:
        """Frames written so far."""
        return len(self._log)

    @property
    def tracks(self) -> tuple[TrackSpan, ...]:
        """One span per track seen so far, by track id."""
        return tuple(
            TrackSpan(tid, t.first_frame, t.last_frame, t.n_present) for tid, t in sorted(self._tracks.items())
        )

    def __enter__(self) -> TrcWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._failed is None:
            self.close()
        else:
            self._release()

    def _row(self, frame_idx: int, stamp_ns: int, cells: str) -> str:
        return f"{frame_idx + 1}\t{(stamp_ns - cast(int, self._t0)) * 1e-9:.5f}\t{cells}\n"

    def _cells(self, pose: np.ndarray) -> str:
        cells = []
        for x, y, z, conf in pose.tolist():
            if conf <= 0:
                cells += ["", "", ""]
            else:
                cells += [f"{x:.5f}", f"{z:.5f}", f"{-y:.5f}"]
        return "\t".join(cells)

    def _handle(self, track_id: int, track: _Track) -> IO[bytes]:
        """The track's open file, reopened for appending if it was closed."""
        fh = self._open.get(track_id)
        if fh is not None:
            self._open.move_to_end(track_id)
            return fh
        self._make_room()
        fh = track.path.open("r+b")
        fh.seek(0, 2)
        self._open[track_id] = fh
        return fh

    def _make_room(self) -> None:
        """Close the least recently written files until one more may be opened."""
        while len(self._open) >= self.max_open:
            old_id, old = self._open.popitem(last=False)
            try:
                old.close()
            except OSError as exc:
                raise self._fail(self._tracks[old_id].path, exc) from exc

    def _fail(self, path: Path, exc: OSError) -> OutputError:
        self._failed = OutputError(f"{path}: cannot write ({exc.strerror or exc})")
        return self._failed

    def write(self, frame: Poses3D) -> None:
        """Append one frame's rows to its tracks' files.

        Args:
            frame: the frame; its ``frame_idx`` must be larger than the previous frame's.

        Raises:
            ValueError: frames out of order, or the writer is closed.
            ShapeError: the poses do not have J joints.
            OutputError: a file cannot be written (the writer then accepts no more frames).
        """
        if self._released:
            raise ValueError(f"{self.out_dir}: write to a closed TrcWriter")
        if self._failed is not None:
            raise OutputError(f"{self._failed} (earlier)")
        if self._last_frame is not None and frame.frame_idx <= self._last_frame:
            raise ValueError(
                f"frames must come in increasing frame_idx; got {frame.frame_idx} after {self._last_frame}"
            )
        if frame.poses.shape[0] and frame.poses.shape[1] != len(self.joint_names):
            raise ShapeError(f"poses must be (P, {len(self.joint_names)}, 4); got {frame.poses.shape}")
        self._last_frame = frame.frame_idx
        if self._t0 is None:
            self._t0 = frame.stamp_ns
        pos = len(self._log)
        target = self.out_dir
        try:
            self._log.append(frame.frame_idx, frame.stamp_ns)
            by_track = dict(zip(frame.track_ids.tolist(), frame.poses, strict=True))  # last one wins
            for tid, pose in by_track.items():
                track = self._tracks.get(tid)
                if track is None:
                    target = self.out_dir / f"person_{tid}.trc"
                    track = self._new_track(tid, target, frame.frame_idx, pos)
                    fh = self._open[tid]
                else:
                    target = track.path
                    fh = self._handle(tid, track)
                    if track.last_pos + 1 < pos:
                        for block in self._log.blocks(track.last_pos + 1, pos):
                            rows = zip(block[0::2], block[1::2], strict=True)
                            fh.write("".join(self._row(f, s, self._blank) for f, s in rows).encode())
                        track.n_rows += pos - track.last_pos - 1
                fh.write((self._row(frame.frame_idx, frame.stamp_ns, self._cells(pose))).encode())
                track.n_rows += 1
                track.n_present += 1
                track.last_frame = frame.frame_idx
                track.last_pos = pos
        except OSError as exc:
            raise self._fail(target, exc) from exc

    def _new_track(self, track_id: int, path: Path, frame_idx: int, pos: int) -> _Track:
        if not self._tracks:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        self._make_room()
        placeholder = _header(path.name, self.rate_hz, self.joint_names, frame_idx, "0" * _COUNT_DIGITS)
        fh = path.open("w+b")
        self._open[track_id] = fh
        fh.write(placeholder)
        track = _Track(path, len(placeholder), frame_idx, frame_idx, pos, 0, 0)
        self._tracks[track_id] = track
        return track

    def _finish(self, track_id: int, track: _Track) -> None:
        """Replace the track's placeholder header by the final one, moving the rows up, and close it."""
        fh = self._handle(track_id, track)
        header = _header(track.path.name, self.rate_hz, self.joint_names, track.first_frame, track.n_rows)
        src, dst = track.header_len, len(header)
        end = fh.seek(0, 2)
        if dst <= src:  # the header shrank: move rows up, first to last (never over rows not yet moved)
            while src < end:
                fh.seek(src)
                buf = fh.read(min(_COPY_CHUNK, end - src))
                fh.seek(dst)
                fh.write(buf)
                src += len(buf)
                dst += len(buf)
            fh.truncate(dst)
        else:  # it grew (a rate written longer than the placeholder's): move rows down, last to first
            shift, pos = dst - src, end
            while pos > src:
                n = min(_COPY_CHUNK, pos - src)
                fh.seek(pos - n)
                buf = fh.read(n)
                fh.seek(pos - n + shift)
                fh.write(buf)
                pos -= n
        fh.seek(0)
        fh.write(header)
        del self._open[track_id]
        fh.close()

    def _release(self) -> None:
        """Close every file and the frame log, ignoring errors (after a failure)."""
        self._released = True
        while self._open:
            _, fh = self._open.popitem()
            try:
                fh.close()
            except OSError:
                pass
        try:
            self._log.close()
        except OSError:
            pass

    def close(self) -> list[Path]:
        """Fix every header and close the files (idempotent).

        Returns:
            The written paths, by track id.

        Raises:
            OutputError: a file cannot be written, now or at an earlier :meth:`write` (the files are
                then released; their rows stay, under a placeholder NumFrames of zeros).
        """
        if self._paths is not None:
            return list(self._paths)
        if self._failed is not None:
            self._release()
            raise OutputError(str(self._failed))
        if self._released:
            raise ValueError(f"{self.out_dir}: TrcWriter was released without its headers fixed")
        target = self.out_dir
        try:
            for tid, track in sorted(self._tracks.items()):
                target = track.path
                self._finish(tid, track)
        except OSError as exc:
            raise self._fail(target, exc) from exc
        finally:
            self._release()
        self._paths = [t.path for _, t in sorted(self._tracks.items())]
        return list(self._paths)
