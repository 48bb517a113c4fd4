"""Process helpers shared by workers and the node: resource figures and signal handling."""

from __future__ import annotations

import resource
import signal
import statistics
from collections.abc import Sequence

__all__ = ["install_sigterm_as_interrupt", "peak_rss_mb", "stats_ms"]


def peak_rss_mb() -> float:
    """Peak resident set size of this process, MiB (Linux ``ru_maxrss`` is in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def stats_ms(values: Sequence[float]) -> dict[str, float]:
    """Median, 90th percentile, mean and count of timings in milliseconds (zeros when empty)."""
    if not values:
        return {"median": 0.0, "p90": 0.0, "mean": 0.0, "n": 0}
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]
    return {
        "median": round(statistics.median(ordered), 4),
        "p90": round(p90, 4),
        "mean": round(statistics.fmean(ordered), 4),
        "n": len(ordered),
    }


def install_sigterm_as_interrupt() -> None:
    """Make SIGTERM raise KeyboardInterrupt, so that ``finally`` blocks flush outputs on termination."""

    def _raise(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _raise)
