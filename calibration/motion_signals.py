"""Per-camera motion signals of people for clock-offset estimation (:mod:`calibration.time_offsets`).

Detections of one camera are linked frame to frame into per-person tracklets (Hungarian on the mean
joint distance, gated in body sizes); each tracklet's joints are resampled onto a shared time grid,
low-pass filtered (Butterworth, zero phase) and differentiated into two channels per joint, in
body sizes per second: the norm of the 2D velocity and the signed vertical image velocity (the
keypoint speeds of Pose2Sim's synchronisation step, Pagnon et al. 2022).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.signal import butter, sosfiltfilt

from core.errors import ShapeError
from core.types import Detections2D

__all__ = ["PoseSeries", "motion_signals"]

_MIN_SAMPLES = 12  # shortest run of grid samples that is filtered and used


@dataclass(frozen=True, slots=True)
class PoseSeries:
    """The 2D poses of one camera over time.

    Attributes:
        stamps_ns: (T,) int64 capture times on the camera's own clock, nanoseconds, increasing.
        poses: T arrays (P_t, J, 3) float64 [u_px, v_px, conf]; a missing joint has conf 0.

    Raises:
        ShapeError: stamps not strictly increasing, lengths differ, or a pose array of the wrong
            shape (every frame must have the same J).

    Example:
        >>> s = PoseSeries(np.array([0, 10]), (np.zeros((1, 17, 3)), np.zeros((0, 17, 3))))
        >>> s.n_frames, s.n_joints
        (2, 17)
    """

    stamps_ns: np.ndarray
    poses: tuple[np.ndarray, ...]

    def __post_init__(self) -> None:
        stamps = np.ascontiguousarray(self.stamps_ns, dtype=np.int64)
        if stamps.ndim != 1 or len(stamps) != len(self.poses):
            raise ShapeError(f"stamps_ns must be (T,) with T = {len(self.poses)} frames; got {stamps.shape}")
        if len(stamps) > 1 and np.any(np.diff(stamps) <= 0):
            raise ShapeError("stamps_ns must be strictly increasing")
        poses = [np.array(p, dtype=np.float64) for p in self.poses]  # copies: frozen below
        joints = {p.shape[1] for p in poses if p.ndim == 3 and p.shape[0]} or {p.shape[1] for p in poses if p.ndim == 3}
        for i, p in enumerate(poses):
            if p.size == 0 and len(joints) == 1:
                p = poses[i] = p.reshape(0, next(iter(joints)), 3)
            if p.ndim != 3 or p.shape[2] != 3 or len(joints) != 1 or not np.isfinite(p).all():
                raise ShapeError(f"poses must be finite (P, J, 3) arrays with one J; got {p.shape}")
            p.setflags(write=False)
        poses = tuple(poses)
        stamps.setflags(write=False)
        object.__setattr__(self, "stamps_ns", stamps)
        object.__setattr__(self, "poses", poses)

    @classmethod
    def from_detections(cls, detections: Sequence[Detections2D]) -> PoseSeries:
        """Build from one camera's detections, in stream order."""
        return cls(np.array([d.stamp_ns for d in detections], dtype=np.int64), tuple(d.poses for d in detections))

    @property
    def n_frames(self) -> int:
        """Number of frames T."""
        return len(self.stamps_ns)

    @property
    def n_joints(self) -> int:
        """Joints per pose J (0 without frames)."""
        return self.poses[0].shape[1] if self.poses else 0


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of the runs of True in a 1D mask."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.nonzero(edges == 1)[0].tolist(), np.nonzero(edges == -1)[0].tolist(), strict=True))


def _box_diagonal(pose: np.ndarray, ok: np.ndarray) -> float:
    pts = pose[ok, :2]
    return float(np.hypot(*np.ptp(pts, axis=0))) if len(pts) >= 2 else 0.0


def _tracklets(series: PoseSeries, min_conf: float, gate: float, max_gap_s: float) -> list[dict[int, int]]:
    """Link detections frame to frame; each tracklet maps frame index -> person index."""
    t = series.stamps_ns * 1e-9
    tracks: list[dict[int, int]] = []
    last: list[tuple[int, np.ndarray, float]] = []  # per tracklet: frame, pose, size
    for k, poses in enumerate(series.poses):
        ok = poses[..., 2] >= min_conf
        people = np.nonzero(ok.sum(axis=1) >= 2)[0]
        live = [i for i, (f, _, _) in enumerate(last) if t[k] - t[f] <= max_gap_s]
        linked: set[int] = set()
        if live and people.size:
            prev = np.stack([last[i][1] for i in live])  # (L, J, 3)
            size = np.array([last[i][2] for i in live])  # (L,)
            common = (prev[:, None, :, 2] >= min_conf) & ok[None, people]  # (L, P, J)
            dist = np.linalg.norm(prev[:, None, :, :2] - poses[None, people, :, :2], axis=-1)
            n = common.sum(axis=-1)
            with np.errstate(divide="ignore", invalid="ignore"):
                cost = np.where(common, dist, 0.0).sum(axis=-1) / n / size[:, None]
            cost = np.where((n >= 2) & (size[:, None] > 0) & (cost <= gate), cost, np.inf)
            if np.isfinite(cost).any():
                rows, cols = linear_sum_assignment(np.where(np.isfinite(cost), cost, 1e9))
                for a, b in zip(rows, cols, strict=True):
                    if np.isfinite(cost[a, b]):
                        i, p = live[a], int(people[b])
                        tracks[i][k] = p
                        last[i] = (k, poses[p], _box_diagonal(poses[p], ok[p]))
                        linked.add(p)
        for p in people.tolist():
            if p not in linked:
                tracks.append({k: p})
                last.append((k, poses[p], _box_diagonal(poses[p], ok[p])))
    return tracks


def motion_signals(
    series: PoseSeries,
    step_s: float,
    t0_ns: int = 0,
    min_conf: float = 0.3,
    cutoff_hz: float = 6.0,
    gate: float = 0.3,
    max_gap_s: float = 0.2,
    min_track_s: float = 0.5,
) -> list[tuple[int, np.ndarray]]:
    """Per-person joint speeds of one camera on a common time grid.

    Args:
        series: the camera's poses; its stamps are read on its own clock.
        step_s: grid step, seconds.
        t0_ns: time of grid sample 0, nanoseconds (the same for every camera of a rig).
        min_conf: joints below this confidence are missing.
        cutoff_hz: Butterworth low-pass cutoff applied to positions, Hz (lowered to 0.4 x the
            camera's frame rate when that is smaller).
        gate: largest mean joint displacement between linked frames, body sizes.
        max_gap_s: tracklets and joint series bridge gaps up to this long, seconds.
        min_track_s: shorter tracklets are ignored, seconds.

    Returns:
        Per tracklet, (first grid index, (n, 2 J) channels in body sizes per second, NaN where
        unknown) covering grid indices ``first .. first + n - 1`` (grid index k is time ``t0_ns +
        k step_s``): columns ``j`` the speed (norm of the 2D velocity) of joint j, columns ``J + j``
        its signed vertical image velocity (v grows downwards).
    """
    if series.n_frames < 2:
        return []
    t = (series.stamps_ns - int(t0_ns)) * 1e-9
    fps = 1.0 / float(np.median(np.diff(t)))
    sos = butter(2, min(cutoff_hz, 0.4 * fps, 0.4 / step_s), fs=1.0 / step_s, output="sos")
    out = []
    for track in _tracklets(series, min_conf, gate, max_gap_s):
        frames = np.array(sorted(track))
        if t[frames[-1]] - t[frames[0]] < min_track_s:
            continue
        poses = np.stack([series.poses[k][track[k]] for k in frames])  # (F, J, 3)
        ok = poses[..., 2] >= min_conf
        size = float(np.median([_box_diagonal(p, o) for p, o in zip(poses, ok, strict=True)]))
        lo = int(np.ceil(t[frames[0]] / step_s - 1e-6))  # stamps are whole nanoseconds
        hi = int(np.floor(t[frames[-1]] / step_s + 1e-6))
        if size <= 0 or hi - lo + 1 < _MIN_SAMPLES:
            continue
        g = step_s * np.arange(lo, hi + 1)
        J = poses.shape[1]
        speeds = np.full((len(g), 2 * J), np.nan)
        for j in range(J):
            tj = t[frames[ok[:, j]]]
            if len(tj) < 2:
                continue
            i = np.clip(np.searchsorted(tj, g), 1, len(tj) - 1)
            eps = 1e-6 * step_s
            bridged = (tj[i] - tj[i - 1] <= max_gap_s) & (g >= tj[0] - eps) & (g <= tj[-1] + eps)
            uv = np.stack([np.interp(g, tj, poses[ok[:, j], j, c]) for c in (0, 1)], axis=1)
            for r0, r1 in _runs(bridged):
                if r1 - r0 >= _MIN_SAMPLES:
                    smooth = sosfiltfilt(sos, uv[r0:r1], axis=0)
                    vel = np.gradient(smooth, step_s, axis=0)
                    speeds[r0:r1, j] = np.hypot(vel[:, 0], vel[:, 1]) / size
                    speeds[r0:r1, J + j] = vel[:, 1] / size
        if np.isfinite(speeds).any():
            out.append((lo, speeds))
    return out
