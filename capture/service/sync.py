"""Frame assembly: which detections of which cameras make one output frame.

Two modes:

- by frame index (``window_ns == 0``): for rigs whose cameras are hardware-synchronised or replayed
  from synchronised files; a frame is the set of detections carrying one ``frame_idx``;
- by capture time (``window_ns > 0``): each camera's stamps are corrected by its clock offset
  (``t = stamp_ns - offset_ns``; a camera whose clock runs ahead has a positive offset), and an
  output frame takes, from every camera, its earliest detection in ``[t_anchor, t_anchor + window)``,
  where ``t_anchor`` is the earliest detection not yet used. Cameras at different frame rates and
  dropped frames then fall out naturally: a camera with nothing in the window is simply missing.

A frame is released as soon as every live camera has delivered into it or moved past it (its
stream is time-ordered), or when it has waited ``timeout_s``. A detection arriving after its frame
was released is late: it is counted and dropped, never blocking the pipeline.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from core.types import Detections2D

__all__ = ["AssembledFrame", "FrameAssembler"]


@dataclass(frozen=True, slots=True)
class AssembledFrame:
    """One output frame: its index, capture time (ns, reference clock) and the views in it."""

    frame_idx: int
    stamp_ns: int
    views: dict[str, Detections2D] = field(default_factory=dict)


class FrameAssembler:
    """Groups per-camera detections into output frames.

    Args:
        cameras: expected camera names.
        window_ns: 0 to group by frame index; otherwise the grouping window, nanoseconds.
        offsets_ns: per-camera clock offsets, nanoseconds (missing cameras: 0).
        timeout_s: a frame waits at most this long (seconds, monotonic clock) for missing views.
    """

    def __init__(
        self,
        cameras: Iterable[str],
        window_ns: int = 0,
        offsets_ns: dict[str, int] | None = None,
        timeout_s: float = 2.0,
    ):
        self.cameras = tuple(cameras)
        self.window_ns = int(window_ns)
        self.offsets_ns = {c: int((offsets_ns or {}).get(c, 0)) for c in self.cameras}
        self.timeout_s = timeout_s
        self.late = 0
        self._next_idx = 0
        # frame-index mode
        self._pending: dict[int, dict[str, Detections2D]] = {}
        self._latest_idx: dict[str, int] = {}
        self._last_idx = -1
        # time mode: per camera, time-sorted (t_corrected, arrival, dets)
        self._queues: dict[str, list[tuple[int, float, Detections2D]]] = {c: [] for c in self.cameras}
        self._latest_t: dict[str, int] = {}
        self._released_until = -(2**62)
        self._first_arrival: dict[int, float] = {}

    def corrected_ns(self, dets: Detections2D) -> int:
        """Capture time of a detection on the reference clock, nanoseconds."""
        return dets.stamp_ns - self.offsets_ns.get(dets.camera, 0)

    def add(self, dets: Detections2D, now: float) -> bool:
        """File a detection; returns False (and counts it) when it arrived after its frame left."""
        cam = dets.camera
        if self.window_ns == 0:
            if dets.frame_idx <= self._last_idx:
                self.late += 1
                return False
            self._pending.setdefault(dets.frame_idx, {})[cam] = dets
            self._first_arrival.setdefault(dets.frame_idx, now)
            self._latest_idx[cam] = max(self._latest_idx.get(cam, -1), dets.frame_idx)
            return True
        t = self.corrected_ns(dets)
        if t < self._released_until:
            self.late += 1
            return False
        queue = self._queues[cam]
        bisect.insort(queue, (t, now, dets), key=lambda item: item[0])
        self._latest_t[cam] = max(self._latest_t.get(cam, t), t)
        return True

    def pop_ready(self, now: float, live: set[str], flush: bool = False) -> list[AssembledFrame]:
        """Release every complete frame, in time order.

        Args:
            now: current monotonic time, seconds.
            live: cameras worth waiting for (not dead, not ended).
            flush: release everything pending regardless of completeness.
        """
        out: list[AssembledFrame] = []
        if self.window_ns == 0:
            while self._pending:
                f = min(self._pending)
                waited = now - self._first_arrival[f]
                have = self._pending[f]
                complete = all(c in have or c not in live or self._latest_idx.get(c, -1) > f for c in self.cameras)
                if not (flush or complete or waited > self.timeout_s):
                    break
                views = self._pending.pop(f)
                self._first_arrival.pop(f, None)
                self._last_idx = f
                stamps = [self.corrected_ns(d) for d in views.values()]
                out.append(AssembledFrame(f, int(np.median(stamps)), views))
            return out
        while True:
            heads = [(q[0][0], q[0][1]) for q in self._queues.values() if q]
            if not heads:
                return out
            anchor = min(t for t, _ in heads)
            end = anchor + self.window_ns
            arrival = min(a for t, a in heads if t < end)
            complete = all(
                (self._queues[c] and self._queues[c][0][0] < end)
                or c not in live
                or self._latest_t.get(c, -(2**62)) >= end
                for c in self.cameras
            )
            if not (flush or complete or now - arrival > self.timeout_s):
                return out
            views = {}
            for c, q in self._queues.items():
                if q and q[0][0] < end:
                    views[c] = q.pop(0)[2]
            self._released_until = end
            stamps = [self.corrected_ns(d) for d in views.values()]
            out.append(AssembledFrame(self._next_idx, int(np.mean(stamps)), views))
            self._next_idx += 1


def main(argv: list[str] | None = None) -> int:
    """``mvcap sync --calibration FILE --detections DIR``: estimate per-camera clock offsets.

    Reads ``<camera>.json.gz`` detection files (e.g. written by a short capture with detection
    replay files, or ``tests/data/make_demo_detections.py``), estimates each camera's offset to the
    first (reference) camera by epipolar consistency (:func:`matching.clock.estimate_clock_offset`)
    and prints a ``[node] clock_offsets_ms`` table to paste into the rig config.
    """
    import argparse
    import json
    import sys
    from pathlib import Path

    from calibration.camera import fundamental_matrix
    from calibration.io import read_calibration
    from capture.detection_files import read_detections_json
    from core.errors import CaptureError
    from matching.clock import Stream, estimate_clock_offset

    p = argparse.ArgumentParser(prog="mvcap sync", description="Estimate per-camera clock offsets.")
    p.add_argument("--calibration", required=True, help="calibration file")
    p.add_argument("--detections", required=True, help="folder of <camera>.json.gz detections")
    p.add_argument("--search-ms", type=float, default=500.0, help="offsets within +- this are tried, ms")
    p.add_argument("--step-ms", type=float, default=2.0, help="grid step, ms (refined below it)")
    args = p.parse_args(argv)
    try:
        rig = read_calibration(args.calibration)
        streams = {}
        for cam in rig:
            path = Path(args.detections) / f"{cam.name}.json.gz"
            if not path.is_file():
                continue
            dets = read_detections_json(path)
            pts = [
                cam.undistort_px(d.poses[..., :2].reshape(-1, 2).astype(float)).reshape(d.poses.shape[:2] + (2,))
                for d in dets
            ]
            streams[cam.name] = Stream(
                np.array([d.stamp_ns for d in dets]), pts, [d.poses[..., 2].astype(float) for d in dets]
            )
        if len(streams) < 2:
            raise CaptureError(f"{args.detections}: need detection files of at least 2 cameras of the calibration")
    except CaptureError as exc:
        print(f"mvcap sync: error: {exc}", file=sys.stderr)
        return 2
    names = list(streams)
    ref = names[0]
    offsets, costs = {ref: 0.0}, {ref: 0.0}
    for name in names[1:]:
        F = fundamental_matrix(rig[ref], rig[name])
        off, cost = estimate_clock_offset(F, streams[ref], streams[name], args.search_ms * 1e6, args.step_ms * 1e6)
        offsets[name], costs[name] = round(off * 1e-6, 2), round(cost, 2)
    print(f"# mean epipolar distance at the estimate (px): {json.dumps(costs)}")
    print("# the estimate needs people moving: on slow motion the cost is flat over tens of ms; check it")
    print("[node]")
    print("clock_offsets_ms = { " + ", ".join(f"{k} = {v}" for k, v in offsets.items()) + " }")
    return 0
