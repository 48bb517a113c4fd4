"""The hint a worker's detection uses for each frame, from the node's regions of interest.

With ``[detector] rois`` a worker subscribes to its camera's hints
(:class:`capture.service.feedback.RoiSubscriber`) and hands one to its
:class:`capture.detect.frames.FrameDetector` before each frame:

- offline (files, not ``--realtime``) frame f gets exactly the hint of node frame
  ``f - roi_lag_frames`` (the worker waits for it, up to :data:`WAIT_S`), so the output is the same
  on an idle and on a loaded machine; frames before the lag, and a wait that timed out, get none
  (a full-frame pass), counted in ``timeouts``. A node that never sent one within the first wait
  is taken to send none: the worker then stops waiting (and says so) rather than wait on every frame;
- live (realtime replays, webcams) frame f gets the newest hint that has arrived.
"""

from __future__ import annotations

import logging
from typing import Final, Protocol

from capture.wire import RoiHint

__all__ = ["WAIT_S", "HintFeed"]

log = logging.getLogger(__name__)

WAIT_S: Final = 10.0
"""Offline: longest wait for the hint of frame ``f - roi_lag_frames``, seconds (then a full-frame pass)."""


class _Subscriber(Protocol):
    def poll(self) -> RoiHint | None: ...
    def wait_for(self, frame_idx: int, timeout_s: float) -> RoiHint | None: ...
    def close(self) -> None: ...


class HintFeed:
    """Picks each frame's hint from a subscriber (see the module docstring).

    Args:
        subscriber: a :class:`capture.service.feedback.RoiSubscriber` (or anything with its
            ``poll``, ``wait_for``, ``close``).
        lag_frames: ``[detector] roi_lag_frames`` (>= 1).
        live: use the newest hint (realtime replay, webcam) instead of waiting for frame f - lag.
        wait_s: offline: longest wait for one hint, seconds.

    Attributes:
        used: frames given a hint.
        timeouts: offline frames whose hint did not come in time (detected in full).
    """

    def __init__(self, subscriber: _Subscriber, lag_frames: int, live: bool, wait_s: float = WAIT_S) -> None:
        self.subscriber = subscriber
        self.lag_frames = int(lag_frames)
        self.live = bool(live)
        self.wait_s = float(wait_s)
        self.used = self.timeouts = 0
        self._seen = False

    def hint_for(self, frame_idx: int) -> RoiHint | None:
        """The hint for detecting frame ``frame_idx``; None: detect the full frame."""
        if self.live or not self.wait_s:
            hint = self.subscriber.poll()
        elif frame_idx - self.lag_frames < 0:
            return None
        else:
            hint = self.subscriber.wait_for(frame_idx - self.lag_frames, self.wait_s)
            if hint is None:
                self.timeouts += 1
                log.warning("camera frame %d: no hint of frame %d within %g s; full frame", frame_idx,
                            frame_idx - self.lag_frames, self.wait_s)  # fmt: skip
                if not self._seen:
                    log.warning("no region-of-interest hint ever came from the node; not waiting for them any more")
                    self.wait_s = 0.0
        if hint is not None:
            self._seen = True
            self.used += 1
        return hint

    def stats(self) -> dict:
        """``{"hints_used": ..., "hint_timeouts": ...}`` for the worker's end-of-stream statistics."""
        return {"hints_used": self.used, "hint_timeouts": self.timeouts}

    def close(self) -> None:
        """Close the subscriber."""
        self.subscriber.close()
