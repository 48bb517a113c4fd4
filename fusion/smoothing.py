"""Temporal fusion of each track's joints: an unscented Kalman filter on the 2D observations.

Every joint of a track is a point moving at constant velocity in 3D, state
``[x, y, z, vx, vy, vz]`` (metres, metres/second, world frame), driven by white-noise acceleration
(Bar-Shalom, Li & Kirubarajan 2001, *Estimation with Applications to Tracking and Navigation*,
§6.2.2, the discretised continuous white-noise acceleration model). Its measurements are the pixel
positions of that joint in the views that saw it, through each camera's pinhole projection: the
nonlinear measurement function the unscented Kalman filter exists for (Julier & Uhlmann 1997; Wan &
van der Merwe 2000, scaled sigma points). So a joint seen by one view only in a frame still
updates its track, and each view weighs by its 2D confidence rather than through a
triangulated point whose error is anisotropic. The forward pass is causal; for recorded takes the
unscented Rauch-Tung-Striebel smoother (Särkkä 2008) then runs backwards. filterpy's
``UnscentedKalmanFilter`` does the filtering and smoothing.

Observations are gated: a view whose 2D joint lies more than ``gate_px`` from the projection of
the joint's 3D reference (the frame's triangulated joint, else the filter's prediction) is left
out, so a view the robust triangulation rejected stays out of the filter too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from filterpy.common import Q_discrete_white_noise
from filterpy.kalman import MerweScaledSigmaPoints, UnscentedKalmanFilter

from core.config import SmoothingConfig
from core.errors import ShapeError

__all__ = ["SequenceFrame", "smooth_joint_track", "smooth_sequence"]

_NS = 1e-9
_INIT_POS_STD_M = 0.03
"""Prior standard deviation of a new filter's position around the triangulated joint, metres."""
_INIT_VEL_STD_MPS = 1.0
"""Prior standard deviation of a new filter's velocity (it starts at rest), metres/second."""
_GAP_CONF = 0.5
"""Confidence factor of a joint bridged by the smoother in a frame where it was not reconstructed."""


@dataclass(frozen=True, slots=True)
class SequenceFrame:
    """One reconstructed frame, as :func:`smooth_sequence` needs it.

    Attributes:
        stamp_ns: frame time, nanoseconds.
        track_ids: (P,) int identities of the poses.
        poses: (P, J, 4) [x, y, z, conf] per-frame reconstructions, metres, world frame; conf 0 marks
            a missing joint.
        obs_px: (P, C, J, 2) each pose's 2D joints in each of the C views, undistorted pixels.
        obs_conf: (P, C, J) their confidences; 0 where the view did not see the pose.
    """

    stamp_ns: int
    track_ids: np.ndarray
    poses: np.ndarray
    obs_px: np.ndarray
    obs_conf: np.ndarray


def _check_config(cfg: SmoothingConfig) -> None:
    for name in ("accel_noise_mps2", "pixel_noise_px", "gate_px", "max_gap_s"):
        value = getattr(cfg, name)
        if not np.isfinite(value) or value <= 0:
            raise ValueError(f"smoothing.{name} must be a positive number; got {value!r}")


def _fx(x: np.ndarray, dt: float) -> np.ndarray:
    """Constant-velocity transition of a (6,) state over ``dt`` seconds."""
    out = x.copy()
    out[:3] += dt * x[3:]
    return out


def _process_noise(dt: float, accel_std: float) -> np.ndarray:
    """(6, 6) discrete white-noise acceleration covariance for state [x, y, z, vx, vy, vz]."""
    q = Q_discrete_white_noise(dim=2, dt=dt, var=accel_std**2)  # (2, 2) for [pos, vel] of one axis
    return np.kron(q, np.eye(3))


def _project(P: np.ndarray, X: np.ndarray) -> np.ndarray:
    """(C, 2) pixels of one 3D point X (3,) through the (C, 3, 4) projection matrices."""
    q = P[:, :, :3] @ X + P[:, :, 3]
    return q[:, :2] / q[:, 2:]


def smooth_joint_track(
    stamps_s: np.ndarray,
    points: np.ndarray,
    obs_px: np.ndarray,
    obs_conf: np.ndarray,
    projections: np.ndarray,
    cfg: SmoothingConfig,
    min_conf: float = 0.3,
) -> np.ndarray:
    """Filter (and smooth) one joint of one track over time with the UKF of this module.

    A joint is triangulated in a frame when it has a position (``points[t, 3] > 0``) and at least 2
    views saw it (``obs_conf >= min_conf``); a position without them was filled in by the tracker.
    A filter starts at the first triangulated frame seen by at least one view that passes the gate,
    with that position and zero velocity. Each later frame predicts, then updates with the gated
    views (noise ``pixel_noise_px / conf`` pixels per coordinate; the gate's reference is the
    triangulated position, else the prediction). A joint not triangulated and not seen by 2 gated
    views for more than ``cfg.max_gap_s`` ends its filter (single views leave its depth unobserved)
    and the next triangulation starts a new one. With ``cfg.rts`` each filtered stretch is smoothed
    backwards up to its last observation.

    Output convention: frames outside every stretch keep their input; inside, the position is the
    filter's (smoother's) and the confidence stays the input's where the joint was reconstructed,
    else it is half that of the nearest frame where it was (the joint was bridged by the filter).

    Args:
        stamps_s: (T,) increasing frame times, seconds.
        points: (T, 4) the joint's per-frame reconstruction [x, y, z, conf], metres; conf 0 = missing.
        obs_px: (T, C, 2) its 2D positions per view, undistorted pixels.
        obs_conf: (T, C) their confidences in [0, 1]; below ``min_conf`` a view is not used.
        projections: (C, 3, 4) projection matrices mapping world metres to undistorted pixels.
        cfg: the filter settings.
        min_conf: smallest 2D confidence used.

    Returns:
        (T, 4) [x, y, z, conf], metres.

    Raises:
        ShapeError: inconsistent shapes.
        ValueError: a non-positive setting in ``cfg`` or times that do not increase.
    """
    _check_config(cfg)
    stamps_s = np.asarray(stamps_s, dtype=np.float64)
    points = np.asarray(points, dtype=np.float64)
    T = stamps_s.shape[0]
    C = projections.shape[0]
    if (
        stamps_s.ndim != 1
        or points.shape != (T, 4)
        or obs_px.shape != (T, C, 2)
        or obs_conf.shape != (T, C)
        or projections.shape != (C, 3, 4)
    ):
        raise ShapeError(
            "smooth_joint_track needs stamps (T,), points (T, 4), obs_px (T, C, 2), obs_conf (T, C), "
            f"projections (C, 3, 4); got {stamps_s.shape}, {points.shape}, {obs_px.shape}, "
            f"{obs_conf.shape}, {projections.shape}"
        )
    if T > 1 and not np.all(np.diff(stamps_s) > 0):
        raise ValueError("stamps_s must increase strictly")
    out = points.copy()
    if T == 0:
        return out
    dt_nominal = float(np.median(np.diff(stamps_s))) if T > 1 else 1.0
    sigma_points = MerweScaledSigmaPoints(6, alpha=1e-3, beta=2.0, kappa=0.0)
    ukf = UnscentedKalmanFilter(6, 2, dt_nominal, None, _fx, sigma_points)

    def hx(x: np.ndarray, cams: np.ndarray) -> np.ndarray:
        return _project(projections[cams], x[:3]).ravel()

    def gated_views(t: int, ref: np.ndarray) -> np.ndarray:
        seen = np.nonzero(obs_conf[t] >= min_conf)[0]
        if len(seen) == 0:
            return seen
        err = np.linalg.norm(_project(projections[seen], ref) - obs_px[t, seen], axis=-1)
        return seen[err <= cfg.gate_px]

    # A joint is triangulated in a frame when it has a position and 2 views saw it there; a position
    # without them was filled in by the tracker (extrapolated) and is no reference for the filter.
    triangulated = (points[:, 3] > 0) & ((obs_conf >= min_conf).sum(axis=1) >= 2)
    stretches: list[tuple[list[int], list[np.ndarray], list[np.ndarray], int]] = []
    frames: list[int] = []
    xs: list[np.ndarray] = []
    ps: list[np.ndarray] = []
    last_seen = -1
    for t in range(T):
        if frames and stamps_s[t] - stamps_s[last_seen] > cfg.max_gap_s:
            stretches.append((frames, xs, ps, last_seen))
            frames, xs, ps = [], [], []
        if not frames:
            if not triangulated[t] or len(gated_views(t, points[t, :3])) == 0:
                continue
            ukf.x = np.r_[points[t, :3], 0.0, 0.0, 0.0]
            ukf.P = np.diag([_INIT_POS_STD_M**2] * 3 + [_INIT_VEL_STD_MPS**2] * 3)
            last_seen = t
        else:
            dt = stamps_s[t] - stamps_s[frames[-1]]
            ukf.Q = _process_noise(dt, cfg.accel_noise_mps2)
            try:
                ukf.predict(dt=dt)
                ref = points[t, :3] if triangulated[t] else ukf.x[:3]
                cams = gated_views(t, ref)
                if len(cams):
                    r = np.repeat((cfg.pixel_noise_px / obs_conf[t, cams]) ** 2, 2)
                    ukf.update(obs_px[t, cams].ravel(), R=np.diag(r), hx=hx, cams=cams)
                    if len(cams) >= 2 or triangulated[t]:
                        last_seen = t  # one view alone leaves depth unobserved: not a sighting
            except np.linalg.LinAlgError:
                # The covariance lost positive definiteness (filterpy's sigma points at alpha 1e-3
                # cancel to ~1e-9): end this stretch; the next observation starts a new filter.
                stretches.append((frames, xs, ps, last_seen))
                frames, xs, ps = [], [], []
                continue
        frames.append(t)
        xs.append(ukf.x.copy())
        ps.append(ukf.P.copy())
    if frames:
        stretches.append((frames, xs, ps, last_seen))

    ukf.Q = _process_noise(dt_nominal, cfg.accel_noise_mps2)
    for frames, xs, ps, last in stretches:
        n = (frames.index(last) + 1) if cfg.rts else len(frames)
        X, Pc = np.array(xs[:n]), np.array(ps[:n])
        if cfg.rts and n > 1:
            # filterpy's unscented RTS uses one Q (ukf.Q) for all steps: the nominal frame interval's.
            X, _, _ = ukf.rts_smoother(X, Pc, dts=list(np.diff(stamps_s[frames[:n]])) + [dt_nominal])
        idx = np.array(frames[:n])
        out[idx, :3] = X[:, :3]
        missing = idx[points[idx, 3] <= 0]
        if len(missing):
            have = idx[points[idx, 3] > 0]
            nearest = have[np.argmin(np.abs(missing[:, None] - have[None, :]), axis=1)]
            out[missing, 3] = _GAP_CONF * points[nearest, 3]
    return out


def smooth_sequence(
    frames: Sequence[SequenceFrame], projections: np.ndarray, cfg: SmoothingConfig, min_conf: float = 0.3
) -> list[np.ndarray]:
    """Smooth every track of a reconstructed sequence, joint by joint (:func:`smooth_joint_track`).

    Each track is taken over every frame from its first to its last appearance (a frame where it
    is absent has no observation: the filter predicts through it).

    Args:
        frames: the sequence's frames, in time order (:class:`SequenceFrame`).
        projections: (C, 3, 4) projection matrices of the C views, world metres to undistorted pixels.
        cfg: filter settings.
        min_conf: smallest 2D confidence used (the triangulation's ``min_joint_conf``).

    Returns:
        Per frame, its (P, J, 4) poses with the tracks' joints smoothed, rows as in the input.

    Raises:
        ShapeError: a frame's arrays disagree with each other or with ``projections``.
        ValueError: a non-positive setting in ``cfg`` or frame times that do not increase.
    """
    projections = np.asarray(projections, dtype=np.float64)
    C = projections.shape[0]
    out = [np.array(f.poses, dtype=np.float64, copy=True) for f in frames]
    rows: dict[int, dict[int, int]] = {}
    J = None
    for k, f in enumerate(frames):
        P = len(f.track_ids)
        J = f.poses.shape[1] if J is None and f.poses.ndim == 3 else J
        if f.poses.shape != (P, J, 4) or f.obs_px.shape != (P, C, J, 2) or f.obs_conf.shape != (P, C, J):
            raise ShapeError(
                f"frame {k}: poses (P, J, 4), obs_px (P, {C}, J, 2), obs_conf (P, {C}, J) with P = "
                f"{P} track ids and J = {J} joints; got {f.poses.shape}, {f.obs_px.shape}, {f.obs_conf.shape}"
            )
        for r, tid in enumerate(np.asarray(f.track_ids).tolist()):
            rows.setdefault(int(tid), {})[k] = r
    if J is None:
        return out
    stamps = np.array([f.stamp_ns for f in frames], dtype=np.float64) * _NS
    for per_frame in rows.values():
        ks = np.arange(min(per_frame), max(per_frame) + 1)
        present = np.array([k in per_frame for k in ks])
        points = np.zeros((len(ks), J, 4))
        obs_px = np.zeros((len(ks), C, J, 2))
        obs_conf = np.zeros((len(ks), C, J))
        for i, k in enumerate(ks):
            if present[i]:
                r = per_frame[k]
                points[i] = frames[k].poses[r]
                obs_px[i] = frames[k].obs_px[r]
                obs_conf[i] = frames[k].obs_conf[r]
        for j in range(J):
            sm = smooth_joint_track(
                stamps[ks], points[:, j], obs_px[:, :, j], obs_conf[:, :, j], projections, cfg, min_conf
            )
            for i in np.nonzero(present)[0]:
                out[ks[i]][per_frame[ks[i]], j] = sm[i]
    return out
