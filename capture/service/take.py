"""A take's files as the node writes them: per-frame poses, streamed smoothing, TRC files.

``poses3d.jsonl`` gets every published frame (flushed per frame); with ``[smoothing] enabled`` a
fixed-lag UKF + RTS smoother (:class:`fusion.stream_smoothing.StreamSmoother`) feeds
``poses3d_smoothed.jsonl`` as frames become final; the TRC files are written as frames come (from
the smoothed stream when there is one) and get their headers at :meth:`TakeFiles.close`. Memory
does not grow with the take.

A folder that already holds ``poses3d.jsonl`` is a take being continued (a restarted node): the
files are appended to, never truncated, and the TRC files are rebuilt from the whole file at the
end (streamed line by line).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from capture.outputs import PosesWriter, TrcWriter, trc_from_jsonl
from core.config import Config
from core.errors import OutputError
from core.skeleton import Skeleton
from core.types import Poses3D

__all__ = ["POSES", "SMOOTHED", "TakeFiles"]

log = logging.getLogger(__name__)

POSES = "poses3d.jsonl"
SMOOTHED = "poses3d_smoothed.jsonl"


def _has_data(path: Path) -> bool:
    return path.exists() and path.stat().st_size > 0


class TakeFiles:
    """Opens (or continues) a take's files in ``out_dir``.

    Args:
        out_dir: the take folder (exists).
        skeleton: joints of the poses.
        config: the run configuration (``[smoothing]``, ``[triangulation] min_joint_conf``).
        projections: (C, 3, 4) projection matrices of the rig, for the smoother.

    Attributes:
        resumed: None for a new take; else ``frames_before``, ``last_frame_before`` (-1 if none)
            and ``max_track_id_before`` (-1 if none) of the take being continued.
        smoothing_ms: CPU time spent smoothing, milliseconds.
        not_smoothed: frames left out of the smoothed output (a stamp that did not increase).

    Raises:
        OutputError: a file cannot be opened (read-only folder, full disk).
        InputError: a poses file of another format or skeleton is in the folder.
    """

    def __init__(self, out_dir: Path, skeleton: Skeleton, config: Config, projections: np.ndarray):
        self.out_dir = out_dir
        path = out_dir / POSES
        resume = _has_data(path)
        self.poses = PosesWriter(path, skeleton, resume=resume)
        self._writers = [self.poses]
        self.resumed: dict | None = None
        if resume:
            self.resumed = {
                "frames_before": self.poses.resumed_frames,
                "last_frame_before": self.poses.last_frame,
                "max_track_id_before": self.poses.max_track_id,
            }
            log.warning(
                "continuing the take in %s: %d frames already written (last frame %d); new track ids above %d",
                path, self.poses.resumed_frames, self.poses.last_frame, self.poses.max_track_id,
            )  # fmt: skip
        self.smoother = None
        self.smoothing_ms = 0.0
        self.not_smoothed = 0
        if config.smoothing.enabled:
            from fusion.stream_smoothing import StreamSmoother

            self.smoother = StreamSmoother(projections, config.smoothing, config.triangulation.min_joint_conf)
            self.smoothed = PosesWriter(out_dir / SMOOTHED, skeleton, resume=_has_data(out_dir / SMOOTHED))
            self._writers.append(self.smoothed)
        # A continued take gets its TRC files from the whole poses file at the end instead.
        self.trc = None if resume else TrcWriter(out_dir, list(skeleton.joints), rate_hz=0.0)

    def write(self, frame: Poses3D, obs_px: np.ndarray, obs_conf: np.ndarray) -> None:
        """Write one published frame (and whatever smoothed frames became final).

        Args:
            frame: the frame's tracked poses (P, J, 4).
            obs_px: (P, C, J, 2) each pose's 2D joints per view, undistorted pixels (smoothing).
            obs_conf: (P, C, J) their confidences.

        Raises:
            OutputError: a file cannot be written.
        """
        self.poses.write(frame)
        if self.smoother is None:
            if self.trc is not None:
                self.trc.write(frame)
            return
        from fusion.smoothing import SequenceFrame

        t1 = time.thread_time()
        try:
            done = self.smoother.push(
                frame.frame_idx, SequenceFrame(frame.stamp_ns, frame.track_ids, frame.poses, obs_px, obs_conf)
            )
        except ValueError as exc:  # a stamp that does not increase: the frame stays per-frame only
            self.not_smoothed += 1
            log.warning("frame %d left out of the smoothed output: %s", frame.frame_idx, exc)
            done = []
        self.smoothing_ms += (time.thread_time() - t1) * 1e3
        self._write_smoothed(done)

    def _write_smoothed(self, done: list) -> None:
        for frame_idx, f in done:
            out = Poses3D(frame_idx, f.stamp_ns, f.track_ids, f.poses)
            self.smoothed.write(out)
            if self.trc is not None:
                self.trc.write(out)

    def close(self, rate_hz: float, complete_outputs: bool = True) -> list[str]:
        """Flush the smoother, fix the TRC headers and close every file.

        Args:
            rate_hz: the take's frame rate for the TRC headers, Hz.
            complete_outputs: False after a write failed: files are only closed.

        Returns:
            The names of the TRC files written.

        Raises:
            OutputError: a file cannot be written (every file is closed all the same).
        """
        trc: list[str] = []
        try:
            if complete_outputs:
                if self.smoother is not None:
                    t1 = time.thread_time()
                    done = self.smoother.flush()
                    self.smoothing_ms += (time.thread_time() - t1) * 1e3
                    self._write_smoothed(done)
                if self.trc is not None:
                    self.trc.rate_hz = rate_hz
                    trc = [p.name for p in self.trc.close()]
                else:
                    source = SMOOTHED if self.smoother is not None else POSES
                    trc = [p.name for p in trc_from_jsonl(self.out_dir / source, self.out_dir).paths]
        finally:
            failure = None
            closers = [w.close for w in self._writers] + ([self.trc.close] if self.trc is not None else [])
            for close in closers:  # every file is closed; the first failure is reported
                try:
                    close()
                except OutputError as exc:
                    failure = failure or exc
            if failure is not None:
                raise failure
        return trc
