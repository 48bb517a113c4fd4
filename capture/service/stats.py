"""Running statistics of timings in constant memory: count, mean, extremes, percentiles.

:func:`capture.service.proc.stats_ms` needs every sample; a node that runs for days cannot keep them.
:class:`RunningStats` keeps exact count, sum, min and max and a fixed histogram with log-spaced bins
of ~1 % relative width from 1 µs to 1e7 ms, so its percentiles are within ~0.5 % of the exact ones
(for samples in that range) and its memory does not depend on the number of samples.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from typing import Final

import numpy as np

__all__ = ["WALL_CLOCK_NS", "FrameFigures", "RunningStats"]

LOW_MS: Final[float] = 1e-3  # lower edge of the first bin, ms (1 µs)
HIGH_MS: Final[float] = 1e7  # upper edge of the last bin, ms (about 2.8 hours)
BIN_RATIO: Final[float] = 1.01  # upper / lower edge of every bin
_LOG_RATIO: Final[float] = math.log(BIN_RATIO)
N_BINS: Final[int] = math.ceil(math.log(HIGH_MS / LOW_MS) / _LOG_RATIO)


class RunningStats:
    """Count, mean, min, max and histogram percentiles of a stream of timings, constant memory.

    Convention: percentiles use the nearest rank ``round(q * (n - 1))`` of the sorted samples, and
    the median the mean of the two middle ranks, as :func:`capture.service.proc.stats_ms` does. A rank
    is reported as the geometric centre of its bin (relative error <= 0.5 %), clamped to [min, max].
    Samples below 1 µs share one underflow bin, and samples above 1e7 ms one overflow bin; these
    report the smallest and the largest sample.

    Example:
        >>> s = RunningStats()
        >>> s.extend([1.0, 2.0, 3.0, 4.0])
        >>> s.add(10.0)
        >>> s.count, s.min, s.max, s.mean, abs(s.median - 3.0) < 0.03
        (5, 1.0, 10.0, 4.0, True)
        >>> sorted(s.summary())
        ['mean', 'median', 'n', 'p90', 'p99']
    """

    __slots__ = ("_counts", "_max", "_min", "_n", "_sum")

    def __init__(self) -> None:
        self._counts = np.zeros(N_BINS + 2, dtype=np.int64)  # [underflow, bins..., overflow]
        self._n = 0
        self._sum = 0.0
        self._min = math.inf
        self._max = -math.inf

    def add(self, value: float) -> None:
        """Count one sample.

        Args:
            value: a timing, milliseconds (any finite number is accepted).

        Raises:
            ValueError: ``value`` is NaN or infinite.
        """
        v = float(value)
        if not math.isfinite(v):
            raise ValueError(f"RunningStats: samples must be finite; got {v}")
        if v < LOW_MS:
            k = 0
        elif v >= HIGH_MS:
            k = N_BINS + 1
        else:
            k = 1 + min(int(math.log(v / LOW_MS) / _LOG_RATIO), N_BINS - 1)
        self._counts[k] += 1
        self._n += 1
        self._sum += v
        self._min = min(self._min, v)
        self._max = max(self._max, v)

    def extend(self, values: Iterable[float]) -> None:
        """Count many samples at once (vectorised :meth:`add`).

        Args:
            values: timings, milliseconds, any iterable or (N,) array.

        Raises:
            ValueError: a value is NaN or infinite (then none is counted).
        """
        v = np.asarray(values if isinstance(values, np.ndarray) else list(values), dtype=np.float64).ravel()
        if not v.size:
            return
        if not np.isfinite(v).all():
            raise ValueError("RunningStats: samples must be finite")
        k = np.full(v.shape, N_BINS + 1, dtype=np.int64)
        k[v < LOW_MS] = 0
        inside = (v >= LOW_MS) & (v < HIGH_MS)
        k[inside] = 1 + np.minimum((np.log(v[inside] / LOW_MS) / _LOG_RATIO).astype(np.int64), N_BINS - 1)
        self._counts += np.bincount(k, minlength=N_BINS + 2)
        self._n += int(v.size)
        self._sum += math.fsum(v.tolist())
        self._min = min(self._min, float(v.min()))
        self._max = max(self._max, float(v.max()))

    @property
    def count(self) -> int:
        """Number of samples."""
        return self._n

    @property
    def mean(self) -> float:
        """Mean of the samples (exact up to float rounding); 0 when empty."""
        return self._sum / self._n if self._n else 0.0

    @property
    def min(self) -> float:
        """Smallest sample (exact); 0 when empty."""
        return self._min if self._n else 0.0

    @property
    def max(self) -> float:
        """Largest sample (exact); 0 when empty."""
        return self._max if self._n else 0.0

    def _at_rank(self, rank: int, cumulative: np.ndarray) -> float:
        """Estimate of the sorted sample at 0-based ``rank``."""
        k = int(np.searchsorted(cumulative, rank, side="right"))
        if k == 0:
            return self._min
        if k == N_BINS + 1:
            return self._max
        centre = LOW_MS * math.exp((k - 0.5) * _LOG_RATIO)  # bin k spans LOW * r**(k-1) .. LOW * r**k
        return min(max(centre, self._min), self._max)

    def percentile(self, q: float) -> float:
        """The nearest-rank ``q``-th percentile (see the class convention); 0 when empty.

        Args:
            q: percentile in [0, 100].

        Raises:
            ValueError: ``q`` is outside [0, 100].
        """
        if not 0.0 <= q <= 100.0:
            raise ValueError(f"percentile must be in [0, 100]; got {q}")
        if not self._n:
            return 0.0
        rank = min(self._n - 1, int(round(q / 100.0 * (self._n - 1))))
        return self._at_rank(rank, np.cumsum(self._counts))

    @property
    def median(self) -> float:
        """Median: mean of the two middle ranks' estimates; 0 when empty."""
        if not self._n:
            return 0.0
        cumulative = np.cumsum(self._counts)
        lo, hi = (self._n - 1) // 2, self._n // 2
        return 0.5 * (self._at_rank(lo, cumulative) + self._at_rank(hi, cumulative))

    @property
    def p90(self) -> float:
        """90th percentile (nearest rank)."""
        return self.percentile(90.0)

    @property
    def p99(self) -> float:
        """99th percentile (nearest rank)."""
        return self.percentile(99.0)

    def summary(self) -> dict[str, float]:
        """The same keys and rounding as :func:`capture.service.proc.stats_ms`.

        Returns:
            ``{"median", "p90", "p99", "mean"}`` in ms rounded to 1e-4, and ``"n"`` (int); all zeros
            when empty.
        """
        if not self._n:
            return {"median": 0.0, "p90": 0.0, "p99": 0.0, "mean": 0.0, "n": 0}
        return {
            "median": round(self.median, 4),
            "p90": round(self.p90, 4),
            "p99": round(self.p99, 4),
            "mean": round(self.mean, 4),
            "n": self._n,
        }


WALL_CLOCK_NS: Final = 86_400 * 10**9
"""Stamps within a day of now are taken for wall-clock capture times (offline replays start at 0)."""


class FrameFigures:
    """The node's running figures of a take, in constant memory (bar one span per track).

    Attributes:
        frames: frames published.
        frames_missing_views: frames published without some camera's view.
        spans: track id -> [first frame, last frame, frames seen].
    """

    STAGES = ("matching", "triangulation", "tracking", "total")

    def __init__(self) -> None:
        self.frames = 0
        self.frames_missing_views = 0
        self.stage_ms = {k: RunningStats() for k in self.STAGES}
        self.wall_ms = RunningStats()
        self.latency_ms = RunningStats()
        self.capture_latency_ms = RunningStats()
        self.reproj_px = RunningStats()
        self.frame_step_ns = RunningStats()
        self.spans: dict[int, list[int]] = {}
        self._last_stamp: int | None = None

    def add(
        self,
        frame_idx: int,
        stamp_ns: int,
        track_ids: Iterable[int],
        stage_ms: dict[str, float],
        wall_ms: float,
        reproj_px: np.ndarray,
        latency_ms: float,
        missing_view: bool,
    ) -> None:
        """Account one published frame.

        Args:
            frame_idx: its index; stamp_ns: its capture time, nanoseconds.
            track_ids: the ids published in it.
            stage_ms: CPU milliseconds per stage (``matching``, ``triangulation``, ``tracking``,
                ``total``).
            wall_ms: wall-clock milliseconds of its reconstruction.
            reproj_px: (N,) reprojection errors of its observations, pixels.
            latency_ms: its last view's arrival -> publication, milliseconds.
            missing_view: some camera's view was missing.
        """
        for k, v in stage_ms.items():
            self.stage_ms[k].add(v)
        self.wall_ms.add(wall_ms)
        self.reproj_px.extend(np.asarray(reproj_px, dtype=float).ravel())
        self.latency_ms.add(latency_ms)
        age_ns = time.time_ns() - stamp_ns
        if abs(age_ns) < WALL_CLOCK_NS:  # capture stamps on the wall clock (live, realtime replay)
            self.capture_latency_ms.add(age_ns * 1e-6)
        if self._last_stamp is not None and stamp_ns > self._last_stamp:
            self.frame_step_ns.add(stamp_ns - self._last_stamp)
        self._last_stamp = stamp_ns
        for tid in track_ids:
            span = self.spans.setdefault(int(tid), [frame_idx, frame_idx, 0])
            span[1] = frame_idx
            span[2] += 1
        self.frames_missing_views += int(missing_view)
        self.frames += 1

    def rate_hz(self) -> float:
        """Frame rate from the median stamp step, Hz (0 when unknown)."""
        step = self.frame_step_ns.median if self.frame_step_ns.count else 0.0
        return round(1e9 / step, 3) if step > 0 else 0.0

    def summary(self) -> dict:
        """The figures for ``summary.json``."""
        reproj = self.reproj_px
        return {
            "frames": self.frames,
            "frames_missing_views": self.frames_missing_views,
            "rate_hz": self.rate_hz(),
            "tracks": [
                {"id": tid, "first_frame": s[0], "last_frame": s[1], "n_frames": s[2]}
                for tid, s in sorted(self.spans.items())
            ],
            "reprojection_px": {
                "median": reproj.summary()["median"] if reproj.count else None,
                "p90": reproj.summary()["p90"] if reproj.count else None,
                "n_observations": reproj.count,
            },
            "node_ms_per_frame": {k: v.summary() for k, v in self.stage_ms.items()},
            "node_ms_per_frame_note": (
                "CPU time of the node's one thread: matching (incl. undistortion) + triangulation + tracking;"
                " detection excluded"
            ),
            "node_wall_ms_per_frame": self.wall_ms.summary(),
            "latency_ms": self.latency_ms.summary(),
            "latency_note": "last view's arrival at the node -> 3D pose published, wall clock",
            "capture_latency_ms": self.capture_latency_ms.summary(),
        }
