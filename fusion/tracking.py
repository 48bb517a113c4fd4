"""Identity tracking of 3D poses over frames: constant-velocity prediction + gated assignment.

Each frame, live tracks are predicted to the new time with their joint velocities, and new poses
are assigned to them by the Hungarian method (Kuhn 1955; ``scipy.optimize.linear_sum_assignment``)
on the mean distance over joints valid in both, with a gate. Unassigned poses start tracks;
tracks unseen for too long end. The per-joint unscented Kalman filter and RTS smoother over each
track are in :mod:`fusion.smoothing`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from core.errors import ShapeError
from core.numeric import pose_distance_matrix

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
        seen_ns: (J,) int64 time each joint was last observed, nanoseconds (-1: never).
    """

    track_id: int
    pose: np.ndarray
    velocity: np.ndarray
    stamp_ns: int
    n_updates: int = 1
    seen_ns: np.ndarray | None = None

    def predict(self, stamp_ns: int) -> np.ndarray:
        """(J, 4) pose extrapolated to ``stamp_ns`` at constant velocity (conf unchanged)."""
        dt = (stamp_ns - self.stamp_ns) * _NS
        out = self.pose.copy()
        out[:, :3] += self.velocity * dt
        return out


class Tracker:
    """Keeps person identities across frames.

    Args:
        gate_m: largest median joint distance (metres) between a prediction and a new pose.
        max_missed_s: a track unseen for longer than this (seconds) ends.
        min_joints: poses with fewer valid joints start no track (they may still update one).
        velocity_smoothing: weight in [0, 1) of the previous velocity in the new estimate.
    """

    def __init__(
        self,
        gate_m: float = 0.5,
        max_missed_s: float = 1.0,
        min_joints: int = 8,
        velocity_smoothing: float = 0.5,
    ):
        self.gate_m = gate_m
        self.max_missed_s = max_missed_s
        self.min_joints = min_joints
        self.velocity_smoothing = velocity_smoothing
        self.tracks: list[Track] = []
        self._next_id = 1

    def continue_ids_above(self, track_id: int) -> None:
        """Give new tracks ids above ``track_id`` (a take continued after a restart reuses no id)."""
        self._next_id = max(self._next_id, int(track_id) + 1)

    def predictions(self, stamp_ns: int) -> tuple[np.ndarray, np.ndarray]:
        """Live tracks' ids and poses predicted to ``stamp_ns`` (tracks unseen too long are ended).

        Returns:
            ids: (T,) int64 track ids.
            poses: (T, J, 4) predicted poses [x, y, z, conf], metres; conf 0 for unknown joints.
        """
        self._prune(stamp_ns)
        if not self.tracks:
            return np.zeros(0, dtype=np.int64), np.zeros((0, 0, 4))
        return np.array([t.track_id for t in self.tracks], dtype=np.int64), np.stack(
            [t.predict(stamp_ns) for t in self.tracks]
        )

    def _prune(self, stamp_ns: int) -> None:
        self.tracks = [t for t in self.tracks if (stamp_ns - t.stamp_ns) * _NS <= self.max_missed_s]

    def update(self, poses: np.ndarray, stamp_ns: int, hint_ids: np.ndarray | None = None) -> np.ndarray:
        """Assign identities to the poses of one frame and update the tracks.

        Args:
            poses: (P, J, 4) poses [x, y, z, conf], metres; joints with conf 0 are missing.
            stamp_ns: frame time, nanoseconds (non-decreasing).
            hint_ids: (P,) optional track id each pose was built for (0: none), e.g. by 2D
                association with projected tracks. A hinted pose within the gate of its track is
                assigned to it directly; the rest go through the gated Hungarian assignment.

        Returns:
            (P,) int64 track ids; 0 for a pose that neither matched a track nor started one.

        Raises:
            ShapeError: ``poses`` is not (P, J, 4).
        """
        if poses.ndim != 3 or poses.shape[-1] != 4:
            raise ShapeError(f"poses must be (P, J, 4); got {poses.shape}")
        self._prune(stamp_ns)
        ids = np.zeros(poses.shape[0], dtype=np.int64)
        assigned = np.zeros(poses.shape[0], dtype=bool)
        free = list(self.tracks)
        if hint_ids is not None and self.tracks and poses.shape[0]:
            by_id = {t.track_id: k for k, t in enumerate(self.tracks)}
            dist = pose_distance_matrix(np.stack([t.predict(stamp_ns) for t in self.tracks]), poses)  # (T, P)
            for p, hint in enumerate(np.asarray(hint_ids).tolist()):
                k = by_id.get(hint)
                track = None if k is None else self.tracks[k]
                if track is None or track not in free:
                    continue
                if dist[k, p] <= self.gate_m:
                    self._update_track(track, poses[p], stamp_ns)
                    ids[p], assigned[p] = hint, True
                    free.remove(track)
        rest = np.nonzero(~assigned)[0]
        if free and rest.size:
            pred = np.stack([t.predict(stamp_ns) for t in free])
            cost = pose_distance_matrix(pred, poses[rest])
            rows, cols = linear_sum_assignment(np.where(np.isfinite(cost), cost, 1e6))
            for r, c in zip(rows, cols, strict=True):
                if cost[r, c] <= self.gate_m:
                    p = rest[c]
                    self._update_track(free[r], poses[p], stamp_ns)
                    ids[p] = free[r].track_id
                    assigned[p] = True
        for p in np.nonzero(~assigned)[0]:
            if (poses[p, :, 3] > 0).sum() >= self.min_joints:
                seen = np.where(poses[p, :, 3] > 0, stamp_ns, -1).astype(np.int64)
                track = Track(self._next_id, poses[p].copy(), np.zeros((poses.shape[1], 3)), stamp_ns, seen_ns=seen)
                self._next_id += 1
                self.tracks.append(track)
                ids[p] = track.track_id
        return ids

    def filled(self, track_id: int, pose: np.ndarray, stamp_ns: int, max_age_s: float) -> np.ndarray:
        """A tracked pose whose missing joints are taken from the track, if seen recently.

        Args:
            track_id: the pose's track (after :meth:`update`).
            pose: (J, 4) this frame's pose, metres; conf 0 = missing.
            stamp_ns: frame time, nanoseconds.
            max_age_s: a missing joint observed at most this long ago (seconds) is filled with the
                track's (predicted) position and its decayed confidence.

        Returns:
            (J, 4) pose (a copy).
        """
        out = pose.copy()
        track = next((t for t in self.tracks if t.track_id == track_id), None)
        if track is None or track.seen_ns is None:
            return out
        fill = (pose[:, 3] <= 0) & (track.seen_ns >= 0) & ((stamp_ns - track.seen_ns) * _NS <= max_age_s)
        out[fill] = track.pose[fill]
        return out

    def _update_track(self, track: Track, pose: np.ndarray, stamp_ns: int) -> None:
        dt = (stamp_ns - track.stamp_ns) * _NS
        both = (pose[:, 3] > 0) & (track.pose[:, 3] > 0)
        if dt > 0:
            v_new = (pose[:, :3] - track.pose[:, :3]) / dt
            a = self.velocity_smoothing
            track.velocity = np.where(both[:, None], a * track.velocity + (1 - a) * v_new, track.velocity)
        # Joints missing in this frame keep their predicted position and old confidence (decayed),
        # so the track's shape survives short occlusions of single joints; their velocity decays so
        # that a long occlusion does not carry a joint away.
        seen = pose[:, 3] > 0
        predicted = track.predict(stamp_ns)
        merged = np.where(seen[:, None], pose, predicted)
        merged[~seen, 3] *= 0.5
        track.velocity = np.where(seen[:, None], track.velocity, 0.5 * track.velocity)
        track.seen_ns = np.where(seen, stamp_ns, track.seen_ns if track.seen_ns is not None else -1)
        track.pose = merged
        track.stamp_ns = stamp_ns
        track.n_updates += 1
