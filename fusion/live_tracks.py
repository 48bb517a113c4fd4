"""The live tracker's tracks: life-cycle states, batched state arrays, snapshots, and the
constant-velocity prediction of their joints with per-joint acceleration noise (see :mod:`fusion.live`)."""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass
from typing import Final

import numpy as np

from fusion._ukf_kernels import confidence_kernel, linear_predict, position_std_kernel, position_update
from fusion.bones import BoneModel

__all__ = [
    "ACCEL_SCALE_EXTREMITY",
    "ACCEL_SCALE_LIMB",
    "ACCEL_SCALE_TRUNK",
    "INIT_POS_STD_M",
    "INIT_VEL_STD_MPS",
    "LiveTrack",
    "LiveUpdate",
    "TrackArrays",
    "TrackState",
    "accel_scale",
    "confidence_from_std",
    "position_std",
    "predict_linear",
    "update_position",
]

INIT_POS_STD_M: Final = 0.03
"""Prior standard deviation of a new joint filter's position around its triangulation, metres."""
INIT_VEL_STD_MPS: Final = 1.0
"""Prior standard deviation of a new joint filter's velocity (it starts at rest), metres/second."""
ACCEL_SCALE_EXTREMITY: Final = 1.5
"""Factor of ``accel_noise_mps2`` for wrists, ankles, hands and feet (they move fastest)."""
ACCEL_SCALE_LIMB: Final = 1.0
"""Factor of ``accel_noise_mps2`` for elbows and knees."""
ACCEL_SCALE_TRUNK: Final = 0.5
"""Factor of ``accel_noise_mps2`` for the head, shoulders and hips."""
_CONF_STD_M: Final = 0.05


class TrackState(enum.IntEnum):
    """Life cycle of a track (OpenPTrack's NEW/NORMAL and visibility, made explicit)."""

    TENTATIVE = 0
    CONFIRMED = 1
    LOST = 2


def confidence_from_std(std_m: np.ndarray) -> np.ndarray:
    """Published confidence of joints from their RMS position standard deviation.

    Args:
        std_m: (...) standard deviations, metres.

    Returns:
        (...) confidences in (0, 1]: ``1 / (1 + (std_m / 0.05)^2)`` (a compiled loop, :mod:`core.jit`,
        for float64 input).

    Example:
        >>> confidence_from_std(np.array([0.0, 0.05, 0.01])).round(3).tolist()
        [1.0, 0.5, 0.962]
    """
    s = np.asarray(std_m)
    if s.dtype != np.float64:  # other dtypes keep numpy's promotion rules
        return 1.0 / (1.0 + (s / _CONF_STD_M) ** 2)
    out = np.empty(s.shape)
    confidence_kernel(np.ascontiguousarray(s).reshape(-1), _CONF_STD_M, out.reshape(-1))
    return out if out.ndim else out[()]


@dataclass(frozen=True, slots=True)
class LiveTrack:
    """A snapshot of one track (for status lines, tests and outputs).

    Attributes:
        track_id: identity, unique within a run.
        state: :class:`TrackState`.
        pose: (J, 4) [x, y, z, conf] filtered positions, metres; conf from the covariance, 0 for
            joints never observed.
        std_m: (J,) RMS position standard deviation per axis, metres (0 where conf is 0).
        velocity: (J, 3) joint velocities, metres/second.
        bone_lengths_m: (L,) estimated length of each skeleton limb, metres (NaN until estimated).
        stamp_ns: time of the state, nanoseconds.
        last_seen_ns: time of the last detection, nanoseconds.
        hits: frames with a detection.
    """

    track_id: int
    state: TrackState
    pose: np.ndarray
    std_m: np.ndarray
    velocity: np.ndarray
    bone_lengths_m: np.ndarray
    stamp_ns: int
    last_seen_ns: int
    hits: int


@dataclass(frozen=True, slots=True)
class LiveUpdate:
    """The tracker's answer for the groups of one frame.

    Attributes:
        track_ids: (G,) int64 identity of each group; 0 when it neither matched a track nor
            started one.
        poses: (G, J, 4) filtered poses [x, y, z, conf], metres (see the module's confidence).
        std_m: (G, J) RMS position standard deviation per axis, metres; 0 where conf is 0.
        obs_px: (G, C, J, 2) the groups' 2D joints after left/right swaps, undistorted pixels.
        obs_conf: (G, C, J) their confidences (swapped alike).
        used: (G, C, J) bool, observations that entered the filter (inliers of the gate); for a track
            started on this frame, the views its triangulation kept (the track starts at that pose).
        n_swapped: left/right joint pairs swapped in a view in this frame.
    """

    track_ids: np.ndarray
    poses: np.ndarray
    std_m: np.ndarray
    obs_px: np.ndarray
    obs_conf: np.ndarray
    used: np.ndarray
    n_swapped: int


@dataclass(slots=True)
class TrackArrays:
    """The state of T tracks as arrays (tracks first), so that every step is a batch over all of them.

    Attributes (T tracks, J joints, L limbs, W bone samples):
        ids, state (:class:`TrackState`), hits: (T,) int64.
        first_ns, last_ns: (T,) int64 first and last detection, nanoseconds.
        stamp_ns: (T,) int64 time of ``x`` and ``P``, nanoseconds.
        x: (T, J, 6) joint states [x, y, z, vx, vy, vz], metres and metres/second, world frame.
        P: (T, J, 6, 6) their covariances.
        active: (T, J) bool, joints whose filter is initialised.
        seen_ns: (T, J) int64 last update of each joint, nanoseconds (-1: never).
        views: (T, J) int64 views in each joint's update of the last frame (0: none).
        agree_ns: (T, J) int64 last update whose candidate views mostly accepted the joint.
        bone_buf: (T, L, W) bone-length samples, metres; bone_n: (T, L) int64 samples written;
            bone_len: (T, L) their running median, metres (NaN until ``BoneModel.min_samples``).
        pending: (T,) bool, new tracks that may be a re-identified person (:mod:`fusion.reid`):
            not published until matched or given their own id.
    """

    ids: np.ndarray  # (T,) int64
    state: np.ndarray  # (T,) int64 TrackState
    hits: np.ndarray  # (T,) int64
    first_ns: np.ndarray  # (T,) int64 first detection
    last_ns: np.ndarray  # (T,) int64 last detection
    stamp_ns: np.ndarray  # (T,) int64 time of x, P
    x: np.ndarray  # (T, J, 6)
    P: np.ndarray  # (T, J, 6, 6)
    active: np.ndarray  # (T, J) bool: filter initialised
    seen_ns: np.ndarray  # (T, J) int64 last update of the joint, -1 never
    views: np.ndarray  # (T, J) int64 views in the joint's update of the last frame (0: none)
    agree_ns: np.ndarray  # (T, J) int64 last update the joint's candidate views mostly accepted
    bone_buf: np.ndarray  # (T, L, W)
    bone_n: np.ndarray  # (T, L) int64
    bone_len: np.ndarray  # (T, L) estimated lengths (NaN until estimated)
    pending: np.ndarray  # (T,) bool awaiting re-identification

    @classmethod
    def empty(cls, n: int, n_joints: int, bones: BoneModel) -> TrackArrays:
        """``n`` new tracks: no joint active, each joint's prior covariance set, times 0."""
        P0 = np.diag([INIT_POS_STD_M**2] * 3 + [INIT_VEL_STD_MPS**2] * 3)
        buf, count = bones.empty(n)
        z, J = np.zeros(n, dtype=np.int64), n_joints
        never = np.full((n, J), -1, np.int64)
        return cls(z.copy(), z.copy(), z.copy(), z.copy(), z.copy(), z.copy(), np.zeros((n, J, 6)),
                   np.tile(P0, (n, J, 1, 1)), np.zeros((n, J), bool), never, np.zeros((n, J), np.int64),
                   never.copy(), buf, count, np.full(count.shape, np.nan), np.zeros(n, bool))  # fmt: skip

    def take(self, idx: np.ndarray) -> TrackArrays:
        """The tracks selected by ``idx`` (boolean mask or indices), as copies."""
        return TrackArrays(*(getattr(self, f.name)[idx] for f in dataclasses.fields(self)))

    def extend(self, other: TrackArrays) -> TrackArrays:
        """These tracks followed by ``other``'s."""
        return TrackArrays(
            *(np.concatenate([getattr(self, f.name), getattr(other, f.name)]) for f in dataclasses.fields(self))
        )


def predict_linear(
    x: np.ndarray, P: np.ndarray, dt_s: np.ndarray, accel_std_mps2: float | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Constant-velocity prediction of B joint filters in closed form.

    The motion model is linear, and the unscented transform of a linear map is exact (Julier &
    Uhlmann 1997), so this equals :func:`fusion.ukf.predict` with
    :func:`fusion.ukf.constant_velocity_noise` (to rounding; tested) without the sigma points:
    ``x' = F x``, ``P' = F P F^T + Q`` with ``F = [[I, dt I], [0, I]]``, by blocks: the rows, then the
    columns, of the position gain dt times those of the velocity, and ``Q = kron(q, I3)`` (white-noise
    acceleration, Bar-Shalom et al. 2001, §6.2.2) added to the diagonals of the four 3 x 3 blocks. One
    compiled loop over the filters (:mod:`core.jit`).

    Args:
        x: (B, 6) states [x, y, z, vx, vy, vz], metres and metres/second.
        P: (B, 6, 6) covariances.
        dt_s: (B,) time steps, seconds.
        accel_std_mps2: white-noise acceleration standard deviation, metres/second^2: one for all,
            or (B,) one per filter.

    Returns:
        x (B, 6) and P (B, 6, 6) predicted.
    """
    B = x.shape[0]
    dt = np.ascontiguousarray(dt_s, dtype=np.float64)
    var = np.asarray(accel_std_mps2, dtype=np.float64) ** 2
    if dt.shape != (B,):
        dt = np.full(B, dt)
    if var.shape != (B,):
        var = np.full(B, var)
    x_new, P_new = np.empty((B, 6)), np.empty((B, 6, 6))
    linear_predict(np.ascontiguousarray(x, np.float64), np.ascontiguousarray(P, np.float64), dt, var, x_new, P_new)
    return x_new, P_new


def update_position(
    x: np.ndarray, P: np.ndarray, z: np.ndarray, R: np.ndarray, mask: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Kalman update of B joint filters with a measured 3D position (an RGB-D camera's lifted joint).

    The measurement is linear, ``z = H x + v`` with ``H = [I 0]`` and ``v ~ N(0, R)``, so the
    standard Kalman update is exact (Kalman 1960; Bar-Shalom et al. 2001, §5.2.3; the same equations
    as filterpy's ``KalmanFilter.update``, tested): ``S = P_pos + R``, ``K = P H^T S^-1``,
    ``x' = x + K (z - x_pos)``, ``P' = P - K S K^T``. One compiled loop over the filters
    (:mod:`core.jit`), a 3 x 3 solve each.

    Args:
        x: (B, 6) states [x, y, z, vx, vy, vz], metres and metres/second.
        P: (B, 6, 6) covariances.
        z: (B, 3) measured positions, metres (rows where ``mask`` is False are ignored).
        R: (B, 3, 3) measurement covariances, metres^2 (positive definite where ``mask``).
        mask: (B,) bool, filters to update (default all); the others keep (x, P).

    Returns:
        x (B, 6) and P (B, 6, 6) updated, and (B,) the squared Mahalanobis distance of each
        innovation (chi-square with 3 degrees of freedom under the model; 0 where masked).

    Raises:
        numpy.linalg.LinAlgError: an innovation covariance is singular.

    Example:
        >>> x, P = np.zeros((1, 6)), np.eye(6)[None] * 1e-2
        >>> x2, P2, d2 = update_position(x, P, np.array([[0.1, 0.0, 0.0]]), np.eye(3)[None] * 1e-2)
        >>> x2[0, :3].round(3).tolist(), round(float(P2[0, 0, 0]), 4), round(float(d2[0]), 2)
        ([0.05, 0.0, 0.0], 0.005, 0.5)
    """
    B, n = x.shape
    m = np.ones(B, bool) if mask is None else np.ascontiguousarray(mask, dtype=np.bool_)
    x_new, P_new, d2 = np.empty((B, n)), np.empty((B, n, n)), np.empty(B)
    f64 = np.float64
    status = position_update(np.ascontiguousarray(x, f64), np.ascontiguousarray(P, f64), np.ascontiguousarray(z, f64),
                             np.ascontiguousarray(R, f64), m, x_new, P_new, d2)  # fmt: skip
    if status:
        raise np.linalg.LinAlgError("Singular matrix")
    return x_new, P_new, d2


def position_std(P: np.ndarray) -> np.ndarray:
    """RMS position standard deviation per axis of joint filters, ``sqrt(trace(P_pos) / 3)`` (a compiled
    loop, :mod:`core.jit`).

    Args:
        P: (..., 6, 6) covariances of states [x, y, z, vx, vy, vz].

    Returns:
        (...) standard deviations, metres.

    Example:
        >>> float(position_std(np.diag([4e-4, 4e-4, 4e-4, 1.0, 1.0, 1.0])))
        0.02
    """
    P = np.asarray(P)
    out = np.empty(P.shape[:-2])
    position_std_kernel(np.ascontiguousarray(P, np.float64).reshape(-1, 6, 6), out.reshape(-1))
    return out if out.ndim else out[()]


def accel_scale(joint: str) -> float:
    """Factor of the white-noise acceleration of a joint, by its name: extremities (wrists, ankles,
    hands, feet) :data:`ACCEL_SCALE_EXTREMITY`, elbows and knees :data:`ACCEL_SCALE_LIMB`, others
    (head, shoulders, hips) :data:`ACCEL_SCALE_TRUNK`: a target's own noise level (Bar-Shalom et
    al. 2001, §6.2.2), hands and feet moving fastest.

    Example:
        >>> [accel_scale(n) for n in ("left_wrist", "right_knee", "nose")]
        [1.5, 1.0, 0.5]
    """
    if any(k in joint for k in ("wrist", "ankle", "hand", "foot", "toe", "heel", "finger", "thumb")):
        return ACCEL_SCALE_EXTREMITY
    if any(k in joint for k in ("elbow", "knee")):
        return ACCEL_SCALE_LIMB
    return ACCEL_SCALE_TRUNK
