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
from core.numeric import pose_distance_matrix, pose_distances

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
        tracks = self.tracks
        ids = np.zeros(poses.shape[0], dtype=np.int64)
        assigned = np.zeros(poses.shape[0], dtype=bool)
        match_k: list[int] = []  # (track index, pose index) of every assignment
        match_p: list[int] = []
        if tracks and poses.shape[0]:
            pred = np.stack([t.predict(stamp_ns) for t in tracks])  # (T, J, 4), also the unseen joints' update
            if hint_ids is not None:
                by_id = {t.track_id: k for k, t in enumerate(tracks)}
                pairs = [(by_id[h], p) for p, h in enumerate(np.asarray(hint_ids).tolist()) if h in by_id]
                if pairs:
                    hk, hp = [k for k, _ in pairs], [p for _, p in pairs]
                    # Only the hinted pairs' distances: a track hinted twice goes to the first pose in its gate.
                    for k, p, d in zip(hk, hp, pose_distances(pred[hk], poses[hp]).tolist(), strict=True):
                        if d <= self.gate_m and k not in match_k:
                            match_k.append(k)
                            match_p.append(p)
                    assigned[match_p] = True
            free = [k for k in range(len(tracks)) if k not in match_k]
            rest = np.nonzero(~assigned)[0]
            if free and rest.size:
                cost = pose_distance_matrix(pred[free], poses[rest])
                rows, cols = linear_sum_assignment(np.where(np.isfinite(cost), cost, 1e6))
                for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
                    if cost[r, c] <= self.gate_m:
                        match_k.append(free[r])
                        match_p.append(int(rest[c]))
                        assigned[rest[c]] = True
            if match_k:
                self._update_tracks(match_k, poses[match_p], pred[match_k], stamp_ns)
                ids[match_p] = [tracks[k].track_id for k in match_k]
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

    def _update_tracks(self, ks: list[int], poses: np.ndarray, predicted: np.ndarray, stamp_ns: int) -> None:
        """Update the tracks ``self.tracks[k]`` for k in ``ks`` with their (M, J, 4) new poses, all at once;
        ``predicted`` (M, J, 4) are their predictions to ``stamp_ns`` (:meth:`Track.predict`)."""
        tracks = [self.tracks[k] for k in ks]
        old = np.stack([t.pose for t in tracks])  # (M, J, 4)
        vel = np.stack([t.velocity for t in tracks])  # (M, J, 3)
        dt = np.array([(stamp_ns - t.stamp_ns) * _NS for t in tracks])  # (M,) seconds
        seen = poses[..., 3] > 0  # (M, J)
        moved = dt > 0
        if moved.any():
            both = seen & (old[..., 3] > 0) & moved[:, None]
            v_new = (poses[..., :3] - old[..., :3]) / np.where(moved, dt, 1.0)[:, None, None]
            a = self.velocity_smoothing
            vel = np.where(both[..., None], a * vel + (1 - a) * v_new, vel)
        # Joints missing in this frame keep their predicted position and old confidence (decayed),
        # so the track's shape survives short occlusions of single joints; their velocity decays so
        # that a long occlusion does not carry a joint away. (The prediction used the old velocity,
        # which the joints missing now keep.)
        s = seen[..., None]
        merged = np.where(s, poses, predicted)
        merged[..., 3][~seen] *= 0.5
        vel = np.where(s, vel, 0.5 * vel)
        seen_ns = np.where(
            seen, stamp_ns, np.stack([np.full(seen.shape[1], -1) if t.seen_ns is None else t.seen_ns for t in tracks])
        )
        for m, t in enumerate(tracks):
            t.pose, t.velocity, t.seen_ns = merged[m], vel[m], seen_ns[m]
            t.stamp_ns = stamp_ns
            t.n_updates += 1
