"""BVH export (Biovision hierarchy): one skeleton per file, one file per person, streamed.

Each ``person_<id>.bvh`` holds the rig of :mod:`capture.outputs.bvh_solve` (root ``Hips`` at the
mid-hip, spine, neck, head with nose/eyes/ears, clavicles, arms, legs) with the person's constant
bone lengths (medians over the take) in a T-pose, and one motion line per frame: the root position
and every joint's rotation, solved from the 3D joints.

Convention: Y up, right-handed, rest pose facing +Z with the person's left along +X (the frame
Blender's importer and most BVH tools assume); world z-up coordinates map as (x, y, z) -> (x, z, -y),
as in the TRC export. Lengths in metres (``units="m"``, true size in Blender at scale 1) or
centimetres (``units="cm"``). Rotations: ``CHANNELS ... Zrotation Xrotation Yrotation``, degrees,
local rotation = Rz @ Rx @ Ry (intrinsic Z-X-Y). The file follows the plain grammar (HIERARCHY,
ROOT, JOINT, End Site, MOTION, Frames, Frame Time) and holds no comment, since BVH has none: units
and axes are written in the export's ``export.json``.

World frames: :func:`zup_from_world` rotates a world whose named axis points up (``--up``) to z up,
:func:`yup_from_world` on to this Y-up frame (the solver's and VMC's starting point too).

Frames: one line per frame index from the person's first to last frame, at the export rate; a
frame where the person is absent, or a joint missing, holds the last pose
(:class:`~capture.outputs.bvh_solve.PoseSolver`).

Example:
    >>> import tempfile
    >>> from capture.outputs.bvh_solve import RestPose
    >>> with tempfile.TemporaryDirectory() as d:
    ...     w = BvhWriter(Path(d) / "p.bvh", RestPose.default(), 30.0)
    ...     w.write(np.zeros((2, 3)), np.tile(np.eye(3), (2, len(RIG), 1, 1)))
    ...     lines = w.close().read_text().splitlines()
    >>> lines[0], lines[1], [ln for ln in lines if ln.startswith("Frames:")][0].split()
    ('HIERARCHY', 'ROOT Hips', ['Frames:', '2'])
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
from scipy.spatial.transform import Rotation

from capture.outputs.bvh_solve import RIG, PoseSolver, RestPose
from core.errors import InputError, OutputError, ShapeError
from core.skeleton import COCO17, Skeleton
from core.types import Poses3D

__all__ = [
    "UNITS",
    "UP_AXES",
    "BvhExporter",
    "BvhWriter",
    "PersonRig",
    "bvh_hierarchy",
    "parse_up_axis",
    "up_axis_from_text",
    "yup_from_world",
    "zup_from_world",
]

log = logging.getLogger(__name__)

UNITS: Final = {"m": 1.0, "cm": 100.0}
"""BVH length units and their scale from metres."""

EULER_ORDER: Final = "ZXY"
_FRAMES_WIDTH: Final = 12  # the Frames count is reserved this many characters until close
_ROT_CHANNELS: Final = "Zrotation Xrotation Yrotation"


_AXIS_ROTATIONS: Final = {  # rotation taking the named world axis to +z (a proper rotation, det +1)
    "z": np.eye(3),
    "-z": np.diag([1.0, -1.0, -1.0]),
    "y": np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]]),
    "-y": np.array([[1.0, 0, 0], [0, 0, 1], [0, -1, 0]]),
    "x": np.array([[0.0, 0, -1], [0, 1, 0], [1, 0, 0]]),
    "-x": np.array([[0.0, 0, 1], [0, 1, 0], [-1, 0, 0]]),
}
UP_AXES: Final = tuple(_AXIS_ROTATIONS)
"""World axes that can be named as up (``+`` may precede them): z (our convention), -y (CMU Panoptic)..."""

_YUP_FROM_ZUP: Final = np.array([[1.0, 0, 0], [0, 0, 1], [0, -1, 0]])  # (x, y, z) -> (x, z, -y), as the TRC


def parse_up_axis(text: str) -> str:
    """The canonical name (one of :data:`UP_AXES`) of an up axis such as ``"+z"``, ``"Y"`` or ``"-y"``.

    Raises:
        InputError: not an axis (the message lists the valid ones).

    Example:
        >>> parse_up_axis("+Z"), parse_up_axis("-y")
        ('z', '-y')
    """
    axis = text.strip().lower().removeprefix("+")
    if axis not in _AXIS_ROTATIONS:
        raise InputError(f"unknown up axis {text!r}; valid: {', '.join(UP_AXES)} (optionally with '+')")
    return axis


def zup_from_world(up: str) -> np.ndarray:
    """The rotation (3, 3) taking world coordinates whose ``up`` axis points up to a z-up frame.

    Convention: the smallest rotation about a world axis that brings ``up`` to +z (for ``-y``, the
    CMU Panoptic world: (x, y, z) -> (x, z, -y)); handedness is kept.

    Raises:
        InputError: unknown axis.

    Example:
        >>> (zup_from_world("-y") @ np.array([0.0, -1.0, 0.0])).tolist()
        [0.0, 0.0, 1.0]
    """
    return _AXIS_ROTATIONS[parse_up_axis(up)].copy()


def yup_from_world(up: str) -> np.ndarray:
    """The rotation (3, 3) taking world coordinates to the solver's Y-up frame (BVH, TRC).

    Convention: first to z-up (:func:`zup_from_world`), then (x, y, z) -> (x, z, -y), the mapping of
    the TRC exporter: a person facing the world's -y (z up) faces +Z in the BVH frame.

    Example:
        >>> (yup_from_world("z") @ np.array([0.0, 0.0, 1.0])).tolist()
        [0.0, 1.0, 0.0]
    """
    return _YUP_FROM_ZUP @ zup_from_world(up)


def up_axis_from_text(text: str) -> str | None:
    """The up axis a frame description names ("right-handed, z up, ..."; "y down"), or None."""
    low = text.lower()
    m = re.search(r"(?<![a-z])([+-]?)([xyz])[\s_-]*(up|down)\b", low)
    if m is None:
        return None
    sign = (m.group(1) == "-") != (m.group(3) == "down")
    return ("-" if sign else "") + m.group(2)


def _scale(units: str) -> float:
    if units not in UNITS:
        raise ValueError(f"BVH units must be one of {sorted(UNITS)}; got {units!r}")
    return UNITS[units]


def bvh_hierarchy(rest: RestPose, units: str = "m") -> str:
    """The HIERARCHY section of a rig in its rest pose (offsets in ``units``), ending with a newline.

    Raises:
        ValueError: unknown units.
    """
    scale = _scale(units)
    children: dict[int, list[int]] = {k: [] for k in range(len(RIG))}
    for k, joint in enumerate(RIG):
        if joint.parent >= 0:
            children[joint.parent].append(k)
    out = ["HIERARCHY"]

    def vec(v: np.ndarray) -> str:
        return " ".join(f"{x * scale + 0.0:.6f}" for x in v)

    def emit(k: int, depth: int) -> None:
        tab = "\t" * depth
        joint = RIG[k]
        out.append(f"{tab}{'ROOT' if joint.parent < 0 else 'JOINT'} {joint.name}")
        out.append(f"{tab}{{")
        out.append(f"{tab}\tOFFSET {vec(rest.offsets[k])}")
        if joint.parent < 0:
            out.append(f"{tab}\tCHANNELS 6 Xposition Yposition Zposition {_ROT_CHANNELS}")
        else:
            out.append(f"{tab}\tCHANNELS 3 {_ROT_CHANNELS}")
        for c in children[k]:
            emit(c, depth + 1)
        if not children[k]:
            out.extend([f"{tab}\tEnd Site", f"{tab}\t{{", f"{tab}\t\tOFFSET {vec(rest.end_sites[k])}", f"{tab}\t}}"])
        out.append(f"{tab}}}")

    emit(0, 0)
    return "\n".join(out) + "\n"


class BvhWriter:
    """One person's BVH file, written as motion arrives (the Frames count is fixed at :meth:`close`).

    The file is opened for each :meth:`write` and closed again, so any number of writers may be
    alive at once; pass frames in batches (e.g. 256) rather than one by one.

    Args:
        path: output file (replaced).
        rest: the person's rest pose.
        rate_hz: frame rate, Hz (> 0); Frame Time is its inverse.
        units: ``"m"`` or ``"cm"``.

    Raises:
        ValueError: unknown units or a rate <= 0.
        OutputError: the file cannot be written.
    """

    def __init__(self, path: str | Path, rest: RestPose, rate_hz: float, units: str = "m"):
        if not rate_hz > 0:
            raise ValueError(f"BVH rate must be > 0 Hz; got {rate_hz}")
        self.path = Path(path)
        self.scale = _scale(units)
        self.n_frames = 0
        head = bvh_hierarchy(rest, units) + "MOTION\n"
        self._count_at = len(head.encode()) + len("Frames: ")
        head += f"Frames: {'0':<{_FRAMES_WIDTH}}\nFrame Time: {1.0 / rate_hz:.7f}\n"
        self._closed = False
        try:
            self.path.write_bytes(head.encode())
        except OSError as exc:
            raise OutputError(f"{self.path}: cannot write ({exc.strerror or exc})") from exc

    def write(self, root: np.ndarray, local: np.ndarray) -> None:
        """Append frames.

        Args:
            root: (T, 3) root positions, metres, BVH frame.
            local: (T, K, 3, 3) local joint rotations (:class:`~capture.outputs.bvh_solve.Motion`).

        Raises:
            ShapeError: wrong shapes.
            OutputError: the file cannot be written.
            ValueError: the writer is closed.
        """
        if self._closed:
            raise ValueError(f"{self.path}: write to a closed BvhWriter")
        n, k = root.shape[0], len(RIG)
        if root.shape != (n, 3) or local.shape != (n, k, 3, 3):
            raise ShapeError(f"root must be (T, 3) and local (T, {k}, 3, 3); got {root.shape} and {local.shape}")
        if n == 0:
            return
        euler = Rotation.from_matrix(local.reshape(-1, 3, 3)).as_euler(EULER_ORDER, degrees=True).reshape(n, 3 * k)
        buf = io.StringIO()
        fmt = ["%.6f"] * 3 + ["%.5f"] * (3 * k)
        np.savetxt(buf, np.hstack([root * self.scale, euler]), fmt=fmt, delimiter=" ")
        try:
            with self.path.open("ab") as fh:
                fh.write(buf.getvalue().encode())
        except OSError as exc:
            raise OutputError(f"{self.path}: cannot write ({exc.strerror or exc})") from exc
        self.n_frames += n

    def close(self) -> Path:
        """Write the Frames count (idempotent); returns the path.

        Raises:
            OutputError: the file cannot be written.
        """
        if not self._closed:
            self._closed = True
            try:
                with self.path.open("r+b") as fh:
                    fh.seek(self._count_at)
                    fh.write(f"{self.n_frames:<{_FRAMES_WIDTH}}".encode())
            except OSError as exc:
                raise OutputError(f"{self.path}: cannot write ({exc.strerror or exc})") from exc
        return self.path


@dataclass(frozen=True, slots=True)
class PersonRig:
    """What a person's BVH file needs before its frames: its frame span and rest pose.

    Attributes:
        first_frame: first frame index where the person is present.
        last_frame: last such frame index.
        rest: the rest pose (constant bone lengths).
    """

    first_frame: int
    last_frame: int
    rest: RestPose


class _Person:
    def __init__(self, writer: BvhWriter, solver: PoseSolver, span: PersonRig):
        self.writer, self.solver, self.span = writer, solver, span
        self.blocks: list[np.ndarray] = []
        self.n_buffered = 0


class BvhExporter:
    """``person_<id>.bvh`` files of a take, fed frame by frame in increasing frame index.

    Memory is bounded by ``chunk`` frames per person present at once; files are opened only to
    append a solved chunk.

    Args:
        out_dir: output folder (must exist).
        people: each person's span and rest pose, by track id (a first pass over the take).
        rate_hz: frame rate, Hz (> 0).
        up_rotation: (3, 3) rotation from the frames' world to a z-up world (identity if z-up).
        units: ``"m"`` or ``"cm"``.
        skeleton: the frames' joints.
        chunk: frames solved at once per person.

    Raises:
        OutputError: a file cannot be written.
    """

    def __init__(
        self,
        out_dir: str | Path,
        people: Mapping[int, PersonRig],
        rate_hz: float,
        up_rotation: np.ndarray | None = None,
        units: str = "m",
        skeleton: Skeleton = COCO17,
        chunk: int = 256,
    ):
        self.out_dir = Path(out_dir)
        self.rate_hz, self.units, self.chunk = rate_hz, units, chunk
        self._n_joints = skeleton.n_joints
        zup = np.eye(3) if up_rotation is None else np.asarray(up_rotation, float)
        self._to_yup = yup_from_world("z") @ zup
        self._pending = sorted(people.items(), key=lambda kv: (kv[1].first_frame, kv[0]), reverse=True)
        self._skeleton = skeleton
        self._active: dict[int, _Person] = {}
        self._paths: dict[int, Path] = {}
        self._next: int | None = None
        self._closed = False

    def _activate_until(self, idx: int) -> None:
        """Open the files of people whose span starts at or before ``idx``."""
        while self._pending and self._pending[-1][1].first_frame <= idx:
            tid, span = self._pending.pop()
            path = self.out_dir / f"person_{tid}.bvh"
            self._active[tid] = _Person(
                BvhWriter(path, span.rest, self.rate_hz, self.units), PoseSolver(span.rest, self._skeleton), span
            )
            self._paths[tid] = path

    def _append(self, tid: int, person: _Person, block: np.ndarray) -> None:
        person.blocks.append(block)
        person.n_buffered += block.shape[0]
        if person.n_buffered >= self.chunk:
            self._flush(person)

    def _flush(self, person: _Person) -> None:
        if not person.blocks:
            return
        points = np.concatenate(person.blocks)
        person.blocks, person.n_buffered = [], 0
        motion = person.solver.solve(points)
        person.writer.write(motion.root, motion.local)

    def _gap(self, start: int, stop: int) -> None:
        """Missing rows for frame indices [start, stop) of every person whose span covers them."""
        if stop <= start:
            return
        self._activate_until(stop - 1)
        for tid, person in list(self._active.items()):
            lo, hi = max(start, person.span.first_frame), min(stop, person.span.last_frame + 1)
            if hi > lo:
                self._append(tid, person, np.zeros((hi - lo, self._n_joints, 4)))
            if person.span.last_frame < stop:
                self._retire(tid)

    def _retire(self, tid: int) -> None:
        person = self._active.pop(tid)
        self._flush(person)
        person.writer.close()

    def write(self, frame: Poses3D) -> None:
        """Add one frame (world coordinates; the people of ``people`` only).

        Raises:
            ValueError: frames out of order, or the exporter is closed.
            ShapeError: the poses do not have the skeleton's joints.
            OutputError: a file cannot be written.
        """
        if self._closed:
            raise ValueError(f"{self.out_dir}: write to a closed BvhExporter")
        idx = frame.frame_idx
        if self._next is not None and idx < self._next:
            raise ValueError(f"frames must come in increasing frame_idx; got {idx} after {self._next - 1}")
        if frame.poses.shape[0] and frame.poses.shape[1] != self._n_joints:
            raise ShapeError(f"poses must be (P, {self._n_joints}, 4); got {frame.poses.shape}")
        if self._next is not None:
            self._gap(self._next, idx)
        self._next = idx + 1
        self._activate_until(idx)
        present = dict(zip(frame.track_ids.tolist(), frame.poses, strict=True))
        for tid, person in list(self._active.items()):
            row = np.zeros((1, self._n_joints, 4))
            pose = present.get(tid)
            if pose is not None:
                row[0, :, :3] = pose[:, :3] @ self._to_yup.T
                row[0, :, 3] = pose[:, 3]
            self._append(tid, person, row)
            if person.span.last_frame <= idx:
                self._retire(tid)

    def close(self) -> list[Path]:
        """Finish every file (idempotent); returns the paths by track id.

        Raises:
            OutputError: a file cannot be written.
        """
        if not self._closed:
            self._closed = True
            for tid in list(self._active):
                self._retire(tid)
        return [self._paths[t] for t in sorted(self._paths)]
