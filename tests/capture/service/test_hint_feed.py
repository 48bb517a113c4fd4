"""Which region-of-interest hint a worker's detection uses: capture.service.hint_feed and the worker's glue."""

from __future__ import annotations

import numpy as np

from capture.service.hint_feed import HintFeed
from capture.service.worker import Worker
from capture.wire import RoiHint
from core.config import DetectorConfig


def _hint(frame_idx: int) -> RoiHint:
    return RoiHint("cam01", frame_idx, frame_idx * 1000, np.array([[0, 0, 10, 20]], np.float32), np.array([1]))


class FakeSubscriber:
    """Records the calls; ``wait_for`` answers for the frames in ``have``."""

    def __init__(self, have: set[int]) -> None:
        self.have = have
        self.waited: list[int] = []
        self.polls = 0
        self.closed = False

    def poll(self) -> RoiHint | None:
        self.polls += 1
        return _hint(max(self.have)) if self.have else None

    def wait_for(self, frame_idx: int, timeout_s: float) -> RoiHint | None:
        self.waited.append(frame_idx)
        return _hint(frame_idx) if frame_idx in self.have else None

    def close(self) -> None:
        self.closed = True


def test_offline_frame_f_waits_for_exactly_the_hint_of_f_minus_lag() -> None:
    sub = FakeSubscriber(set(range(100)) - {5})
    feed = HintFeed(sub, lag_frames=2, live=False, wait_s=0.01)
    got = [feed.hint_for(f) for f in range(9)]
    assert got[0] is None and got[1] is None  # before the lag: a full frame, no wait
    assert sub.waited == list(range(7))
    assert [h.frame_idx if h else None for h in got[2:]] == [0, 1, 2, 3, 4, None, 6]
    assert feed.stats() == {"hints_used": 6, "hint_timeouts": 1}
    assert sub.polls == 0


def test_live_uses_the_newest_hint() -> None:
    sub = FakeSubscriber({3, 7})
    feed = HintFeed(sub, lag_frames=2, live=True)
    assert feed.hint_for(20).frame_idx == 7 and sub.waited == [] and sub.polls == 1


def test_a_node_that_never_sends_hints_is_not_waited_for_on_every_frame() -> None:
    sub = FakeSubscriber(set())
    feed = HintFeed(sub, lag_frames=1, live=False, wait_s=0.01)
    assert all(feed.hint_for(f) is None for f in range(5))
    assert sub.waited == [0] and feed.timeouts == 1  # then it only polls
    feed.close()
    assert sub.closed


class RecordingFrames:
    """Stands in for the worker's FrameDetector: records the hint set before each frame."""

    def __init__(self) -> None:
        self.hints: list[int | None] = []
        self.last_ms: dict[str, float] = {}
        self._hint = None

    def set_hint(self, hint: RoiHint | None) -> None:
        self._hint = hint

    def detect(self, frame_idx: int, stamp_ns: int, payload: object) -> None:
        self.hints.append(None if self._hint is None else self._hint.frame_idx)


def test_the_worker_sets_the_hint_of_f_minus_lag_before_detecting_frame_f() -> None:
    worker = Worker("cam01", "unused.mp4", "tcp://127.0.0.1:1", DetectorConfig(rois=True, roi_lag_frames=3))
    worker.frames = RecordingFrames()
    worker.hints = HintFeed(FakeSubscriber(set(range(10))), worker.detector_cfg.roi_lag_frames, live=False)
    for f in range(6):
        worker._detect(f, 0, None)
    assert worker.frames.hints == [None, None, None, 0, 1, 2]
