"""Identity tracking of 3D poses over frames: constant-velocity prediction + gated assignment.

Each frame, live tracks are predicted to the new time with their joint velocities, and new poses
are assigned to them by the Hungarian method (Kuhn 1955; ``scipy.optimize.linear_sum_assignment``)
on the mean distance over joints valid in both, with a gate. Unassigned poses start tracks;
tracks unseen for too long end. (The unscented Kalman filter replaces the predictor in its own issue.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from core.errors import ShapeError

__all__ = ["Track", "Tracker", "pose_distance_matrix"]

_NS = 1e-9


@dataclass(slots=True)
class Track:
    """A tracked person.

    Attributes:
        track_id: identity, unique within a run (starts at 1).
        pose: (J, 4) last pose [x, y, z, conf], metres, world frame.
        velocity: (J, 3) joint velocities, metres/second.
        stamp_ns: time of the last update, nanoseconds.
        n_updates: number of frames the track was seen.
    """

    track_id: int
    pose: np.ndarray
    velocity: np.ndarray
    stamp_ns: int
    n_updates: int = 1

    def predict(self, stamp_ns: int) -> np.ndarray:
        """(J, 4) pose extrapolated to ``stamp_ns`` at constant velocity (conf unchanged)."""
        dt = (stamp_ns - self.stamp_ns) * _NS
        out = self.pose.copy()
        out[:, :3] += self.velocity * dt
        return out


def pose_distance_matrix(a: np.ndarray, b: np.ndarray, min_common: int = 3) -> np.ndarray:
    """Mean Euclidean distance over joints valid (conf > 0) in both poses.

    Args:
        a: (Pa, J, 4) poses, metres.
        b: (Pb, J, 4) poses, metres.
        min_common: pairs with fewer common joints get ``inf``.

    Returns:
        (Pa, Pb) distances, metres.
    """
    both = (a[:, None, :, 3] > 0) & (b[None, :, :, 3] > 0)  # (Pa, Pb, J)
    d = np.linalg.norm(a[:, None, :, :3] - b[None, :, :, :3], axis=-1)
    n = both.sum(axis=-1)
    mean = np.where(both, d, 0.0).sum(axis=-1) / np.maximum(n, 1)
    return np.where(n >= min_common, mean, np.inf)


class Tracker:
    """Keeps person identities across frames.

    Args:
        gate_m: largest mean joint distance (metres) between a prediction and a new pose.
        max_missed_s: a track unseen for longer than this (seconds) ends.
        min_joints: poses with fewer valid joints start no track (they may still update one).
        velocity_smoothing: weight in [0, 1) of the previous velocity in the new estimate.
    """

    def __init__(self, gate_m: float = 0.5, max_missed_s: float = 1.0, min_joints: int = 8, velocity_smoothing: float = 0.5):
        self.gate_m = gate_m
        self.max_missed_s = max_missed_s
        self.min_joints = min_joints
        self.velocity_smoothing = velocity_smoothing
        self.tracks: list[Track] = []
        self._next_id = 1

    def update(self, poses: np.ndarray, stamp_ns: int) -> np.ndarray:
        """Assign identities to the poses of one frame and update the tracks.

        Args:
            poses: (P, J, 4) poses [x, y, z, conf], metres; joints with conf 0 are missing.
            stamp_ns: frame time, nanoseconds (non-decreasing).

        Returns:
            (P,) int64 track ids; 0 for a pose that neither matched a track nor started one.

        Raises:
            ShapeError: ``poses`` is not (P, J, 4).
        """
        if poses.ndim != 3 or poses.shape[-1] != 4:
            raise ShapeError(f"poses must be (P, J, 4); got {poses.shape}")
        self.tracks = [t for t in self.tracks if (stamp_ns - t.stamp_ns) * _NS <= self.max_missed_s]
        ids = np.zeros(poses.shape[0], dtype=np.int64)
        assigned = np.zeros(poses.shape[0], dtype=bool)
        if self.tracks and poses.shape[0]:
            pred = np.stack([t.predict(stamp_ns) for t in self.tracks])
            cost = pose_distance_matrix(pred, poses)
            rows, cols = linear_sum_assignment(np.where(np.isfinite(cost), cost, 1e6))
            for r, c in zip(rows, cols):
                if cost[r, c] <= self.gate_m:
                    self._update_track(self.tracks[r], poses[c], stamp_ns)
                    ids[c] = self.tracks[r].track_id
                    assigned[c] = True
        for p in np.nonzero(~assigned)[0]:
            if (poses[p, :, 3] > 0).sum() >= self.min_joints:
                track = Track(self._next_id, poses[p].copy(), np.zeros((poses.shape[1], 3)), stamp_ns)
                self._next_id += 1
                self.tracks.append(track)
                ids[p] = track.track_id
        return ids

    def _update_track(self, track: Track, pose: np.ndarray, stamp_ns: int) -> None:
        dt = (stamp_ns - track.stamp_ns) * _NS
        both = (pose[:, 3] > 0) & (track.pose[:, 3] > 0)
        if dt > 0:
            v_new = (pose[:, :3] - track.pose[:, :3]) / dt
            a = self.velocity_smoothing
            track.velocity = np.where(both[:, None], a * track.velocity + (1 - a) * v_new, track.velocity)
        # Joints missing in this frame keep their predicted position and old confidence (decayed),
        # so the track's shape survives short occlusions of single joints.
        predicted = track.predict(stamp_ns)
        merged = np.where((pose[:, 3] > 0)[:, None], pose, predicted)
        merged[pose[:, 3] <= 0, 3] *= 0.5
        track.pose = merged
        track.stamp_ns = stamp_ns
        track.n_updates += 1
