"""Clock offset between two unsynchronised cameras, estimated from their detections.

People move, so the 2D detections of one person in two views satisfy the epipolar constraint only
when they are taken at the same instant. For each candidate offset, every frame of camera b is
paired with the frame of camera a nearest in corrected time, and the cost is the mean, over b's
detections, of the smallest symmetric epipolar distance to a detection of a; the offset with the
lowest cost wins (refined by a parabola through its neighbours). This is the epipolar-consistency
criterion of multi-camera synchronisation from human motion (e.g. Pose2Sim's synchronisation step
uses 2D keypoint speeds; here geometry decides, which needs no camera to see a particular motion).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from matching.epipolar import epipolar_distance_matrix

__all__ = ["Stream", "estimate_clock_offset"]


@dataclass(frozen=True, slots=True)
class Stream:
    """Detections of one camera over time.

    Attributes:
        stamps_ns: (T,) int64 capture times on the camera's own clock, nanoseconds, increasing.
        points: per frame, (P_t, J, 2) undistorted pixels.
        conf: per frame, (P_t, J) confidences.
    """

    stamps_ns: np.ndarray
    points: list[np.ndarray]
    conf: list[np.ndarray]


def _cost(F: np.ndarray, a: Stream, b: Stream, offset_ns: float, max_gap_ns: float, min_conf: float) -> float:
    t_a = a.stamps_ns.astype(np.float64)
    costs = []
    for k, t_b in enumerate(b.stamps_ns):
        target = t_b - offset_ns  # b's time on a's clock
        i = int(np.clip(np.searchsorted(t_a, target), 1, len(t_a) - 1))
        i = i - 1 if abs(t_a[i - 1] - target) <= abs(t_a[i] - target) else i
        if abs(t_a[i] - target) > max_gap_ns or a.points[i].shape[0] == 0 or b.points[k].shape[0] == 0:
            continue
        d = epipolar_distance_matrix(F, a.points[i], a.conf[i], b.points[k], b.conf[k], min_conf)  # (Pa, Pb)
        best = d.min(axis=0)
        costs.extend(best[np.isfinite(best)].tolist())
    return float(np.mean(costs)) if costs else np.inf


def estimate_clock_offset(
    F: np.ndarray,
    a: Stream,
    b: Stream,
    search_ns: float = 500e6,
    step_ns: float = 2e6,
    max_gap_ns: float = 25e6,
    min_conf: float = 0.3,
) -> tuple[float, float]:
    """Offset of camera b's clock relative to camera a's: ``t_a = t_b - offset``.

    Args:
        F: (3, 3) fundamental matrix with ``x_b^T F x_a = 0`` (undistorted pixels).
        a: reference camera stream.
        b: the other camera's stream.
        search_ns: offsets in ``[-search_ns, +search_ns]`` are tried, nanoseconds.
        step_ns: grid step, nanoseconds (the result is refined below it).
        max_gap_ns: a pairing further apart in corrected time than this is skipped, nanoseconds
            (about half the slower camera's frame period).
        min_conf: joints below this confidence are ignored.

    Returns:
        (offset_ns, cost_px): the estimate and its mean epipolar distance, pixels. ``inf`` cost when
        no frames overlap at any offset.
    """
    grid = np.arange(-search_ns, search_ns + step_ns / 2, step_ns)
    costs = np.array([_cost(F, a, b, off, max_gap_ns, min_conf) for off in grid])
    k = int(np.argmin(costs))
    best = float(grid[k])
    if 0 < k < len(grid) - 1 and np.isfinite(costs[k - 1 : k + 2]).all():
        c0, c1, c2 = costs[k - 1 : k + 2]
        denom = c0 - 2 * c1 + c2
        if denom > 0:
            best += 0.5 * step_ns * (c0 - c2) / denom
    return best, float(costs[k])
