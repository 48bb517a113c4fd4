"""C3D export (the biomechanics marker format), written with ezc3d: every person in one file.

Points are labelled ``p<id>_<joint>`` (description ``person <id> <joint>``), one point per person
and joint of the take, one C3D frame per frame index from the take's first to last frame at the
export rate. A point that is missing (joint conf 0, person absent, or a frame index the take
skips) has residual -1 and reads back as NaN, as the C3D format specifies; seen points have
residual 0 (C3D has no confidence field: the CSV export carries conf).

Convention: world coordinates z up (the export rotates other worlds first), right-handed, in
``POINT:UNITS`` (``"mm"``, the unit most C3D software assumes, or ``"m"``), float storage
(``POINT:SCALE`` -1). ``POINT:X_SCREEN``/``Y_SCREEN`` are ``+X``/``+Z`` (z up on screen). The group
``MVCAP`` records the first frame index, the up axis and the source.

ezc3d (pyomeca; wheels on PyPI, used by Biorbd, OpenSim tooling and Pose2Sim users) writes a whole
file at once: a part is held in memory as float32 (frames x points x 3; an hour at 30 Hz with 4
people is ~90 MB), then written. A C3D file counts frames in 16 bits, so a take longer than 65535
frames is written as ``<stem>_part1.c3d``, ``<stem>_part2.c3d``... of at most 65535 frames each.

Example:
    >>> import tempfile, ezc3d
    >>> with tempfile.TemporaryDirectory() as d:
    ...     w = C3dWriter(Path(d) / "take.c3d", [3], ["nose"], 0, 2, 30.0, units="m")
    ...     w.write(Poses3D(1, 0, np.array([3]), np.array([[[1.0, 2.0, 3.0, 0.9]]])))
    ...     c = ezc3d.c3d(str(w.close()[0]))
    >>> c["parameters"]["POINT"]["LABELS"]["value"], c["data"]["points"][:3, 0, 1].tolist()
    (['p3_nose'], [1.0, 2.0, 3.0])
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import ezc3d
import numpy as np

from core.errors import OutputError, ShapeError
from core.types import Poses3D

__all__ = ["MAX_FRAMES", "UNITS", "C3dWriter"]

log = logging.getLogger(__name__)

MAX_FRAMES: Final = 0xFFFF
"""Most frames in one C3D file (the header and POINT:FRAMES count them in 16 bits)."""

UNITS: Final = {"mm": 1000.0, "m": 1.0}
"""C3D point units and their scale from metres."""


class C3dWriter:
    """One C3D file (or consecutive parts) of every person of a take.

    Args:
        path: output file (replaced); parts are named ``<stem>_part<k>.c3d``.
        person_ids: the track ids of the take (the points are every joint of each, in this order).
        joint_names: joint names (J).
        first_frame: frame index of the first C3D frame.
        n_frames: frame indices covered (first to last frame of the take, inclusive).
        rate_hz: frame rate, Hz (> 0).
        units: ``"mm"`` or ``"m"``.
        up_note: where z-up came from, recorded in ``MVCAP:UP`` (e.g. "world z").
        source: the source file, recorded in ``MVCAP:SOURCE``.

    Raises:
        ValueError: unknown units, a rate <= 0 or no frames.
    """

    def __init__(
        self,
        path: str | Path,
        person_ids: Sequence[int],
        joint_names: Sequence[str],
        first_frame: int,
        n_frames: int,
        rate_hz: float,
        units: str = "mm",
        up_note: str = "world z",
        source: str = "",
    ):
        if units not in UNITS:
            raise ValueError(f"C3D units must be one of {sorted(UNITS)}; got {units!r}")
        if not rate_hz > 0 or n_frames < 1:
            raise ValueError(f"C3D needs a rate > 0 Hz and frames; got {rate_hz} Hz, {n_frames} frames")
        self.path = Path(path)
        self.ids = [int(t) for t in person_ids]
        self.joints = list(joint_names)
        self.first_frame, self.n_frames, self.rate_hz = first_frame, n_frames, rate_hz
        self.units, self.up_note, self.source = units, up_note, source
        self._col = {tid: i * len(self.joints) for i, tid in enumerate(self.ids)}
        self._n_parts = -(-n_frames // MAX_FRAMES)
        self._part = 0
        self._buf = self._new_buffer(0)
        self._paths: list[Path] = []
        self._closed = False

    def _part_path(self, part: int) -> Path:
        if self._n_parts == 1:
            return self.path
        return self.path.with_name(f"{self.path.stem}_part{part + 1}{self.path.suffix}")

    def _new_buffer(self, part: int) -> np.ndarray:
        n = min(MAX_FRAMES, self.n_frames - part * MAX_FRAMES)
        return np.full((n, len(self.ids) * len(self.joints), 3), np.nan, dtype=np.float32)

    def write(self, frame: Poses3D) -> None:
        """Add one frame (z-up world, metres); people not in ``person_ids`` are ignored.

        Raises:
            ValueError: a frame index outside the take, going back to an earlier part, or closed.
            ShapeError: the poses do not have J joints.
            OutputError: a finished part cannot be written.
        """
        if self._closed:
            raise ValueError(f"{self.path}: write to a closed C3dWriter")
        row = frame.frame_idx - self.first_frame
        if not 0 <= row < self.n_frames:
            raise ValueError(f"frame {frame.frame_idx} is outside the take's frames {self.first_frame}..")
        if frame.poses.shape[0] and frame.poses.shape[1] != len(self.joints):
            raise ShapeError(f"poses must be (P, {len(self.joints)}, 4); got {frame.poses.shape}")
        part = row // MAX_FRAMES
        if part < self._part:
            raise ValueError(f"frame {frame.frame_idx} belongs to a part already written")
        while part > self._part:
            self._flush()
            self._part += 1
            self._buf = self._new_buffer(self._part)
        r = row - part * MAX_FRAMES
        scale = UNITS[self.units]
        for tid, pose in zip(frame.track_ids.tolist(), frame.poses, strict=True):
            col = self._col.get(tid)
            if col is None:
                continue
            seen = pose[:, 3] > 0
            block = np.where(seen[:, None], pose[:, :3] * scale, np.nan)
            self._buf[r, col : col + len(self.joints)] = block

    def _flush(self) -> None:
        path = self._part_path(self._part)
        buf = self._buf
        n_frames, n_points = buf.shape[0], buf.shape[1]
        c3d = ezc3d.c3d()
        point = c3d["parameters"]["POINT"]
        point["RATE"]["value"] = [float(self.rate_hz)]
        point["UNITS"]["value"] = [self.units]
        point["LABELS"]["value"] = tuple(f"p{t}_{j}" for t in self.ids for j in self.joints)
        point["DESCRIPTIONS"]["value"] = tuple(f"person {t} {j}" for t in self.ids for j in self.joints)
        missing = np.isnan(buf).any(axis=2)  # (T, N)
        points = np.ones((4, n_points, n_frames))
        points[:3] = np.where(missing[..., None], 0.0, buf).transpose(2, 1, 0)
        c3d["data"]["points"] = points
        c3d["data"]["meta_points"] = {"residuals": np.where(missing.T, -1.0, 0.0)[None]}
        c3d.add_parameter("POINT", "X_SCREEN", "+X")
        c3d.add_parameter("POINT", "Y_SCREEN", "+Z")
        c3d.add_parameter("MVCAP", "FIRST_FRAME_IDX", str(self.first_frame + self._part * MAX_FRAMES))
        c3d.add_parameter("MVCAP", "UP", f"+Z ({self.up_note})")
        c3d.add_parameter("MVCAP", "SOURCE", self.source or "-")
        try:
            path.unlink(missing_ok=True)  # ezc3d fails silently: a stale file must not pass for a new one
            c3d.write(str(path))
            size = path.stat().st_size
        except FileNotFoundError:
            raise OutputError(f"{path}: cannot write (ezc3d wrote no file)") from None
        except OSError as exc:
            raise OutputError(f"{path}: cannot write ({exc.strerror or exc})") from exc
        except RuntimeError as exc:  # ezc3d's own errors
            raise OutputError(f"{path}: cannot write ({exc})") from exc
        if size < 16 * n_frames * n_points:  # 4 float32 per point and frame: a full disk cut it short
            raise OutputError(f"{path}: cannot write (only {size} bytes written; is the disk full?)")
        self._paths.append(path)
        log.debug("%s: %d frames, %d points", path, n_frames, n_points)

    def close(self) -> list[Path]:
        """Write the last part(s) (idempotent); returns the paths.

        Raises:
            OutputError: a file cannot be written.
        """
        if not self._closed:
            self._closed = True
            while True:
                self._flush()
                if self._part + 1 >= self._n_parts:
                    break
                self._part += 1
                self._buf = self._new_buffer(self._part)
        return list(self._paths)
