"""Run outputs: 3D poses as JSON Lines, TRC exports, per-camera overlay videos.

One concept per module: :mod:`.jsonl` (``poses3d.jsonl``: :class:`PosesWriter`, which can resume a
file, and the streaming reader :func:`iter_poses_jsonl`), :mod:`.trc` (OpenSim TRC files:
the streaming :class:`TrcWriter`, :func:`write_trc_files` and :func:`trc_from_jsonl`) and
:mod:`.overlay` (:func:`render_overlay`). Writers raise :class:`core.errors.OutputError` when the disk
is full or the folder read-only.
"""

from capture.outputs.jsonl import FORMAT, VERSION, PosesWriter, count_frames, iter_poses_jsonl, read_poses_jsonl
from capture.outputs.overlay import render_overlay
from capture.outputs.trc import TrackSpan, TrcExport, TrcWriter, trc_from_jsonl, write_trc_files

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
