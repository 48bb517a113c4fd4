"""CSV export: one long-format file, one row per frame, person and joint, written as frames arrive.

Columns ``frame,time_s,person,joint,x,y,z,conf``. A few ``#`` comment lines before the header state
the units, axes and source (``pandas.read_csv(path, comment="#")`` reads it). A missing joint
(conf 0) keeps its row with x, y, z empty.

Convention: x, y, z in metres in a right-handed z-up world (the export rotates other worlds first
and says so in the comments); ``time_s`` is seconds from the take's first stamp; ``frame`` is the
frame index of ``poses3d.jsonl``; ``conf`` in [0, 1].

Example:
    >>> import tempfile
    >>> import numpy as np
    >>> with tempfile.TemporaryDirectory() as d:
    ...     with CsvWriter(Path(d) / "poses3d.csv", ["nose", "neck"], t0_ns=0) as w:
    ...         w.write(Poses3D(4, 500_000_000, np.array([2]), np.array([[[1, 2, 3, 0.9], [0, 0, 0, 0]]])))
    ...     rows = [r for r in (Path(d) / "poses3d.csv").read_text().splitlines() if not r.startswith("#")]
    >>> rows[0]
    'frame,time_s,person,joint,x,y,z,conf'
    >>> rows[1:]
    ['4,0.500000,2,nose,1.00000,2.00000,3.00000,0.9000', '4,0.500000,2,neck,,,,0.0000']
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Final

from core.errors import OutputError, ShapeError
from core.types import Poses3D

__all__ = ["COLUMNS", "CsvWriter"]

COLUMNS: Final = ("frame", "time_s", "person", "joint", "x", "y", "z", "conf")


class CsvWriter:
    """Long-format CSV of every person's joints, streamed.

    Args:
        path: output file (replaced).
        joint_names: joint names (J).
        t0_ns: time origin (``time_s`` = (stamp_ns - t0_ns) * 1e-9); default: the first frame's stamp.
        notes: extra comment lines (source, rate, how the up axis was chosen).

    Raises:
        OutputError: the file cannot be created.
    """

    def __init__(
        self, path: str | Path, joint_names: Sequence[str], *, t0_ns: int | None = None, notes: Sequence[str] = ()
    ):
        self.path = Path(path)
        self.joints = list(joint_names)
        self.t0_ns = t0_ns
        self.n_rows = 0
        head = [
            "# mvcap poses3d CSV: one row per frame, person and joint",
            "# units: x, y, z metres; time_s seconds from the take's first stamp; conf 0..1, 0 = missing"
            " (x, y, z empty)",
            "# axes: right-handed world, z up",
            *(f"# {n}" for n in notes),
            ",".join(COLUMNS),
        ]
        try:
            self._fh = self.path.open("w", encoding="utf-8", newline="\n")
            self._fh.write("\n".join(head) + "\n")
        except OSError as exc:
            raise OutputError(f"{self.path}: cannot write ({exc.strerror or exc})") from exc

    def __enter__(self) -> CsvWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def write(self, frame: Poses3D) -> None:
        """Append one frame's rows (z-up world, metres).

        Raises:
            ShapeError: the poses do not have J joints.
            OutputError: the file cannot be written.
            ValueError: the writer is closed.
        """
        if self._fh.closed:
            raise ValueError(f"{self.path}: write to a closed CsvWriter")
        if frame.poses.shape[0] and frame.poses.shape[1] != len(self.joints):
            raise ShapeError(f"poses must be (P, {len(self.joints)}, 4); got {frame.poses.shape}")
        if self.t0_ns is None:
            self.t0_ns = frame.stamp_ns
        lead = f"{frame.frame_idx},{(frame.stamp_ns - self.t0_ns) * 1e-9:.6f}"
        rows = []
        for tid, pose in zip(frame.track_ids.tolist(), frame.poses.tolist(), strict=True):
            for name, (x, y, z, conf) in zip(self.joints, pose, strict=True):
                if conf > 0:
                    rows.append(f"{lead},{tid},{name},{x:.5f},{y:.5f},{z:.5f},{conf:.4f}\n")
                else:
                    rows.append(f"{lead},{tid},{name},,,,0.0000\n")
        try:
            self._fh.write("".join(rows))
        except OSError as exc:
            raise OutputError(f"{self.path}: cannot write ({exc.strerror or exc})") from exc
        self.n_rows += len(rows)

    def close(self) -> Path:
        """Close the file (idempotent); returns its path.

        Raises:
            OutputError: the last rows cannot be written.
        """
        if not self._fh.closed:
            try:
                self._fh.close()
            except OSError as exc:
                raise OutputError(f"{self.path}: cannot write ({exc.strerror or exc})") from exc
        return self.path
