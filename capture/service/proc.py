"""Process helpers shared by workers and the node: resource figures and signal handling."""

from __future__ import annotations

import resource
import signal
import statistics
import threading
from collections.abc import Sequence

__all__ = ["peak_rss_mb", "stats_ms", "stop_on_signals"]


def peak_rss_mb() -> float:
    """Peak resident set size of this process, MiB (Linux ``ru_maxrss`` is in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def stats_ms(values: Sequence[float]) -> dict[str, float]:
    """Median, 90th and 99th percentiles (nearest rank), mean and count of timings (zeros when empty)."""
    if not values:
        return {"median": 0.0, "p90": 0.0, "p99": 0.0, "mean": 0.0, "n": 0}
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]
    p99 = ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))]
    return {
        "median": round(statistics.median(ordered), 4),
        "p90": round(p90, 4),
        "p99": round(p99, 4),
        "mean": round(statistics.fmean(ordered), 4),
        "n": len(ordered),
    }


def stop_on_signals() -> threading.Event:
    """An event set by the first SIGINT or SIGTERM (instead of KeyboardInterrupt).

    Processes that write outputs poll it between units of work, so a Ctrl-C never interrupts a
    frame half-processed or a record half-written. Call from the main thread only.
    """
    stop = threading.Event()

    def _set(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _set)
    signal.signal(signal.SIGTERM, _set)
    return stop
