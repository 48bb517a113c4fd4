"""Run outputs: 3D poses as JSON Lines, TRC, C3D, BVH and CSV exports, overlays, VMC messages.

One concept per module: :mod:`.jsonl` (``poses3d.jsonl``: :class:`PosesWriter`, which can resume a
file, and the streaming reader :func:`iter_poses_jsonl`), :mod:`.trc` (OpenSim TRC files: the
streaming :class:`TrcWriter`) and :mod:`.trc_files` (:func:`write_trc_files`, :func:`trc_from_jsonl`),
:mod:`.overlay` (:func:`render_overlay`); exports of a recorded take (:mod:`.export`: :mod:`.c3d`,
:mod:`.bvh` with :mod:`.bvh_rig` and :mod:`.bvh_solve`, :mod:`.csv`), and the VMC/OSC message
encoding (:mod:`.vmc`; the relay that sends it and the rerun viewer, clients of a running node, are
in :mod:`capture.service`). Writers raise :class:`core.errors.OutputError` when the disk is full or
the folder read-only.
"""

from capture.outputs.jsonl import FORMAT, VERSION, PosesWriter, count_frames, iter_poses_jsonl, read_poses_jsonl
from capture.outputs.overlay import render_overlay
from capture.outputs.trc import TrackSpan, TrcExport, TrcWriter
from capture.outputs.trc_files import trc_from_jsonl, write_trc_files

__all__ = [
    "FORMAT",
    "VERSION",
    "PosesWriter",
    "TrackSpan",
    "TrcExport",
    "TrcWriter",
    "count_frames",
    "iter_poses_jsonl",
    "read_poses_jsonl",
    "render_overlay",
    "trc_from_jsonl",
    "write_trc_files",
]
