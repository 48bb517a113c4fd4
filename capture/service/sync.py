"""Frame assembly: which detections of which cameras make one output frame.

Two modes:

- by frame index (``window_ns == 0``): for rigs whose cameras are hardware-synchronised or replayed
  from synchronised files; a frame is the set of detections carrying one ``frame_idx``;
- by capture time (``window_ns > 0``): each camera's stamps are corrected by its clock offset
  (``t = stamp_ns - offset_ns``; a camera whose clock runs ahead has a positive offset), and an
  output frame takes, from every camera, its earliest detection in ``[t_anchor, t_anchor + window)``,
  where ``t_anchor`` is the earliest detection not yet used. Cameras at different frame rates and
  dropped frames then fall out naturally: a camera with nothing in the window is simply missing.

A frame is released as soon as every live camera has delivered into it or *covered* it: a worker
declares with each detection its previous sent frame (``prev``), so the frames in between are known
to be skipped at the source and nobody waits for them; a camera's covered position only advances
along that chain (or, undeclared, frame by frame), so a stray message far ahead does not make its
camera look as if it had moved past frames it will still deliver. In live runs a frame is also
released when it has waited ``timeout_s``; in lossless runs (``lossless=True``: every source is a
file) no clock decides: a frame waits until every camera has delivered or covered it, ended or
died. A detection arriving after its frame was released is late: it is counted and dropped, never
blocking the pipeline.

Plausibility (so that no single message moves the frame clock), in live runs: positions are frame
indices, or corrected stamps in units of the window; the rig's reference is the low median of the
cameras' latest accepted positions (a lying camera cannot move a median of honest ones; with two
cameras it is the lower one; cameras silent for ``STALE_S`` do not count). A detection more than
``max_ahead`` ahead of the reference is rejected as implausible, and pending frames that end up
that far ahead (a stray message that came before any honest one) are purged at release time.
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from core.types import Detections2D

__all__ = ["ACCEPTED", "IMPLAUSIBLE", "LATE", "AssembledFrame", "FrameAssembler"]

STALE_S = 2.0
"""A camera silent this long (seconds) no longer counts towards the rig's reference."""
ACCEPTED = "accepted"
LATE = "late"
IMPLAUSIBLE = "implausible"


@dataclass(frozen=True, slots=True)
class AssembledFrame:
    """One output frame.

    Attributes:
        frame_idx: output frame index.
        stamp_ns: capture time, nanoseconds on the reference clock (median of the views' stamps).
        views: the detections in it, by camera name.
        arrival: monotonic time (seconds) at which its last view arrived.
    """

    frame_idx: int
    stamp_ns: int
    views: dict[str, Detections2D] = field(default_factory=dict)
    arrival: float = 0.0


class FrameAssembler:
    """Groups per-camera detections into output frames.

    Args:
        cameras: expected camera names.
        window_ns: 0 to group by frame index; otherwise the grouping window, nanoseconds.
        offsets_ns: per-camera clock offsets, nanoseconds (missing cameras: 0).
        timeout_s: in live runs a frame waits at most this long (seconds, monotonic clock) for
            missing views; ignored when ``lossless``.
        lossless: release a frame only when every live camera delivered or covered it.
        max_ahead: live runs only: frames (or windows) a detection may lie ahead of the rig's
            reference; 0 disables the check.

    Attributes:
        implausible: detections rejected as implausibly far ahead of the rig.
        purged: detections accepted, then dropped because they ended up that far ahead (a stray
            message that came before any honest one).
    """

    def __init__(
        self,
        cameras: Iterable[str],
        window_ns: int = 0,
        offsets_ns: dict[str, int] | None = None,
        timeout_s: float = 2.0,
        lossless: bool = False,
        max_ahead: int = 0,
    ):
        self.cameras = tuple(cameras)
        self.window_ns = int(window_ns)
        self.offsets_ns = {c: int((offsets_ns or {}).get(c, 0)) for c in self.cameras}
        self.timeout_s = timeout_s
        self.lossless = lossless
        self._max_ahead = 0 if lossless else int(max_ahead) * max(self.window_ns, 1)
        self.implausible = 0
        self.purged = 0
        self._next_idx = 0
        self._latest: dict[str, int] = {}  # per camera, latest accepted position (index or corrected ns)
        self._latest_t: dict[str, float] = {}  # per camera, when it was accepted (monotonic seconds)
        self._last_recv: dict[str, int] = {}  # per camera, position of its last detection received
        self._covered: dict[str, int] = {}  # per camera: every position up to this was delivered or skipped
        # frame-index mode: views per pending frame, a heap of pending indices, arrival times
        self._pending: dict[int, dict[str, Detections2D]] = {}
        self._heap: list[int] = []
        self._first_arrival: dict[int, float] = {}
        self._last_arrival: dict[int, float] = {}
        self._last_idx = -1
        # time mode: per camera, time-sorted (t_corrected, arrival, dets)
        self._queues: dict[str, list[tuple[int, float, Detections2D]]] = {c: [] for c in self.cameras}
        self._released_until = -(2**62)

    def corrected_ns(self, dets: Detections2D) -> int:
        """Capture time of a detection on the reference clock, nanoseconds."""
        return dets.stamp_ns - self.offsets_ns.get(dets.camera, 0)

    def skip_until(self, frame_idx: int) -> None:
        """Continue a take whose frames up to ``frame_idx`` were released already.

        By frame index, detections of those frames are late; by capture time, output frames are
        numbered from ``frame_idx + 1``.
        """
        self._last_idx = max(self._last_idx, int(frame_idx))
        self._next_idx = max(self._next_idx, int(frame_idx) + 1)

    def reference(self, now: float | None = None) -> int | None:
        """The rig's reference position: low median of the cameras' latest accepted positions.

        With ``now`` (monotonic seconds), cameras that delivered nothing for ``STALE_S`` (dead,
        ended, stalled) are left out unless no camera is fresh, so a stopped camera cannot hold the
        reference back and lock the others out.
        """
        if not self._latest:
            return None
        fresh = [p for c, p in self._latest.items() if now is None or now - self._latest_t.get(c, now) <= STALE_S]
        values = sorted(fresh or self._latest.values())
        return values[(len(values) - 1) // 2]

    def _plausible(self, pos: int, now: float) -> bool:
        ref = self.reference(now)
        return ref is None or not self._max_ahead or pos <= ref + self._max_ahead

    def _chain(self, cam: str, pos: int, prev: int | None) -> None:
        """Advance the camera's covered position when this detection continues its chain."""
        last = self._last_recv.get(cam)
        chained = prev is not None and prev == (last if last is not None else -1)
        consecutive = self.window_ns == 0 and pos == self._covered.get(cam, -1) + 1
        if chained or consecutive:
            self._covered[cam] = max(self._covered.get(cam, pos), pos)
        self._last_recv[cam] = pos

    def add(self, dets: Detections2D, now: float, prev: tuple[int, int] | None = None) -> str:
        """File a detection.

        Args:
            dets: one camera's detections of one frame.
            now: monotonic arrival time, seconds.
            prev: ``(frame_idx, stamp_ns)`` of the camera's previous sent frame, as its worker
                declares it (``(-1, -1)`` for its first); frames between the two were skipped at
                the source, so frames wait for this camera no longer. None: not declared.

        Returns:
            :data:`ACCEPTED`, :data:`LATE` (its frame already left) or :data:`IMPLAUSIBLE` (too far
            ahead of the rig, counted in ``implausible``); the last two are dropped.
        """
        cam = dets.camera
        if self.window_ns == 0:
            pos, prev_pos = dets.frame_idx, (None if prev is None else prev[0])
        else:
            offset = self.offsets_ns.get(cam, 0)
            pos = self.corrected_ns(dets)
            prev_pos = None if prev is None else (-1 if prev[1] < 0 else prev[1] - offset)
        if (self.window_ns == 0 and pos <= self._last_idx) or (self.window_ns and pos < self._released_until):
            self._chain(cam, pos, prev_pos)
            return LATE
        if not self._plausible(pos, now):
            self.implausible += 1
            return IMPLAUSIBLE
        self._chain(cam, pos, prev_pos)
        self._latest[cam] = max(self._latest.get(cam, pos), pos)
        self._latest_t[cam] = now
        if self.window_ns == 0:
            views = self._pending.get(pos)
            if views is None:
                views = self._pending[pos] = {}
                heapq.heappush(self._heap, pos)
                self._first_arrival[pos] = now
            views[cam] = dets
            self._last_arrival[pos] = now
            return ACCEPTED
        bisect.insort(self._queues[cam], (pos, now, dets), key=lambda item: item[0])
        return ACCEPTED

    def _purge(self, now: float) -> None:
        """Drop pending detections that lie too far ahead of the reference (live runs)."""
        ref = self.reference(now)
        if not self._max_ahead or ref is None:
            return
        limit = ref + self._max_ahead
        if self.window_ns == 0:
            far = [f for f in self._pending if f > limit]
            for f in far:
                self.purged += len(self._pending.pop(f))
                self._first_arrival.pop(f, None)
                self._last_arrival.pop(f, None)
            if far:
                self._heap = list(self._pending)
                heapq.heapify(self._heap)
        else:
            for q in self._queues.values():
                while q and q[-1][0] > limit:
                    q.pop()
                    self.purged += 1
        for cam, pos in list(self._latest.items()):
            if pos > limit:
                self._latest[cam] = self._own_latest(cam, limit)
        for cam, pos in list(self._covered.items()):
            if pos > limit:
                self._covered[cam] = self._own_latest(cam, limit)

    def _own_latest(self, cam: str, limit: int) -> int:
        if self.window_ns == 0:
            have = [f for f, v in self._pending.items() if cam in v and f <= limit]
            return max(have, default=min(self._last_idx, limit))
        q = self._queues[cam]
        return q[-1][0] if q else min(self._released_until, limit)

    def pop_ready(self, now: float, live: set[str], flush: bool = False) -> list[AssembledFrame]:
        """Release every complete frame, in order.

        Args:
            now: current monotonic time, seconds.
            live: cameras worth waiting for (not dead, not ended).
            flush: release everything pending regardless of completeness.
        """
        self._purge(now)
        out: list[AssembledFrame] = []
        if self.window_ns == 0:
            while self._heap:
                f = self._heap[0]
                have = self._pending[f]
                complete = all(c in have or c not in live or self._covered.get(c, -1) >= f for c in self.cameras)
                timed_out = not self.lossless and now - self._first_arrival[f] > self.timeout_s
                if not (flush or complete or timed_out):
                    break
                heapq.heappop(self._heap)
                views = self._pending.pop(f)
                self._first_arrival.pop(f, None)
                arrival = self._last_arrival.pop(f, now)
                self._last_idx = f
                stamps = [self.corrected_ns(d) for d in views.values()]
                out.append(AssembledFrame(f, int(np.median(stamps)), views, arrival))
            return out
        while True:
            heads = [(q[0][0], q[0][1]) for q in self._queues.values() if q]
            if not heads:
                return out
            anchor = min(t for t, _ in heads)
            end = anchor + self.window_ns
            first = min(a for t, a in heads if t < end)
            complete = all(
                (self._queues[c] and self._queues[c][0][0] < end)
                or c not in live
                or self._covered.get(c, -(2**62)) >= end
                for c in self.cameras
            )
            timed_out = not self.lossless and now - first > self.timeout_s
            if not (flush or complete or timed_out):
                return out
            views, arrival = {}, first
            for c, q in self._queues.items():
                if q and q[0][0] < end:
                    _, a, d = q.pop(0)
                    views[c] = d
                    arrival = max(arrival, a)
            self._released_until = end
            stamps = [self.corrected_ns(d) for d in views.values()]
            out.append(AssembledFrame(self._next_idx, int(np.mean(stamps)), views, arrival))
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
    from capture.sources.detection_files import read_detections_json
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
