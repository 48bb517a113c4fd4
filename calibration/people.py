"""Camera calibration from the people in the scene: bundle adjustment on body keypoints.

Refines the extrinsics (optionally the focal lengths) of a roughly known rig from 2D human poses
seen by several cameras: no board, no markers. Each round (thresholds shrinking from coarse to fine):
associate each frame's detections across views by epipolar distance under the current rig,
triangulate the joints seen twice or more and link the people over frames
(:mod:`calibration.people_association`); then bundle-adjust camera poses, 3D joints and per-track
bone lengths jointly with ``scipy.optimize.least_squares`` (trust-region reflective, sparse analytic
Jacobian, soft-L1 loss): reprojection residuals in pixels weighted by the 2D confidence, plus
limb-length residuals ``(|X_a - X_b| - L_track,limb) / sigma`` tying each person's skeleton over time.
A camera in too few groups is held out of the round and then re-posed by RANSAC resection against
the people the others triangulate (:func:`calibration.people_association.resect_camera`).

Gauge (Triggs et al. 2000, §9): the reference camera's pose is held fixed (6 dof) and a stiff
residual holds the distance from it to the farthest camera (1 dof; without it the focal lengths
converge 3-5 times less well, measured); the scale is then set once, after the adjustment, from a
known distance between two camera centres or from a subject's height, by scaling the world about
the reference camera's centre (reprojections do not change).

Bone lengths: identities are not given, so each frame-to-frame track (nearest 3D centroid, gated)
gets its own bone-length unknowns: exact for the few people of a calibration take, never mixing two
people unless they come within the gate; a population prior (average adult bones) would be biased by
each person's build and by the detector's keypoint definition, so none is used.

References: Triggs et al. 2000, "Bundle adjustment — a modern synthesis"; Hartley & Zisserman,
Multiple View Geometry, 2nd ed., §18.1, §A6. People as the calibration pattern: Takahashi et al.
2018, "Human pose as calibration pattern: 3D human pose estimation with multiple unsynchronized and
uncalibrated cameras" (CVPR workshops); Puwein et al. 2014, "Joint camera pose estimation and 3D
human pose estimation in a multi-camera setup" (ACCV).

Measured (2-core machine shared with other jobs, BLAS limited to one thread): CMU Panoptic ground
truth (3 people, 20 frames) through 5 real HD cameras, 2 px noise and 2% outliers, every camera but
the reference 5 deg and 20 cm off: within 0.13 deg and 7.4 mm for 6 of 6 random starts, 1-6 s
(10 deg / 50 cm and 20 deg / 1 m: 5 of 6; the failure is a wrong rig that reprojects well, so it is
not flagged). Pose2Sim demo (4 real cameras, 100 frames, real YOLO11n-pose 2D), 5 deg / 20 cm: 5 of
5 starts converge to the same rig (0.15 deg, 1 cm apart), 3-8 s; it reprojects the detections at a
median 9.1 px where the Qualisys reference calibration gives 13.7 px, and lies 0.7-3.0 deg and
5-13 cm from that reference (10 deg / 50 cm: 2 of 5 on that rig, 1 within 0.5 deg, 2 wrong).

Convention: cameras as :mod:`calibration.camera` (``x_cam = R @ x_world + t``); poses (P, J, 3)
[u_px, v_px, conf] in distorted pixels, joints in the skeleton's order, missing joints conf 0.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.optimize import least_squares

from calibration.camera import Camera, CameraRig
from calibration.people_association import (
    CameraReprojection,
    PeopleObservations,
    ReprojectionStats,
    build_observations,
    reprojection_errors,
    resect_camera,
)
from core.errors import CalibrationError, ShapeError
from core.skeleton import Skeleton

__all__ = [
    "CameraReprojection",
    "KnownDistance",
    "PeopleCalibrationOptions",
    "PeopleCalibrationResult",
    "ReprojectionStats",
    "SubjectHeight",
    "calibrate_from_people",
]

log = logging.getLogger(__name__)

_GAUGE_SIGMA_M = 1e-4  # stiffness of the residual that holds the reference-to-gauge-camera distance
_SUSPECT_RATIO = 2.5  # a camera reprojecting this many times worse than the others' median did not converge
_LEG_TRUNK_FRACTION = 0.779  # (shoulder - ankle height) / stature, Drillis & Contini 1966 (Winter 2009, Fig. 4.1)


@dataclass(frozen=True, slots=True)
class KnownDistance:
    """Scale from the distance between two camera centres.

    Attributes:
        cam_a: name of the first camera.
        cam_b: name of the second camera.
        metres: distance between their centres, metres.

    Raises:
        CalibrationError: the same camera twice, or a distance that is not a positive finite number.
    """

    cam_a: str
    cam_b: str
    metres: float

    def __post_init__(self) -> None:
        if self.cam_a == self.cam_b:
            raise CalibrationError(f"a known distance needs two different cameras; got {self.cam_a!r} twice")
        if not (np.isfinite(self.metres) and self.metres > 0):
            raise CalibrationError(f"the known distance must be a positive number of metres; got {self.metres}")


@dataclass(frozen=True, slots=True)
class SubjectHeight:
    """Scale from the stature of the people seen (the average when several are).

    The stature is estimated as (ankle-knee + knee-hip + hip-shoulder) / 0.779 per side, the
    fraction of stature between the lateral malleolus (0.039) and the acromion (0.818) in Drillis &
    Contini 1966 (as tabulated in Winter 2009, "Biomechanics and Motor Control of Human Movement",
    Fig. 4.1); a few per cent from the truth for most adults and keypoint detectors.

    Attributes:
        metres: standing height, metres.

    Raises:
        CalibrationError: a height that is not a positive finite number.
    """

    metres: float

    def __post_init__(self) -> None:
        if not (np.isfinite(self.metres) and self.metres > 0):
            raise CalibrationError(f"the subject height must be a positive number of metres; got {self.metres}")


@dataclass(frozen=True, slots=True)
class PeopleCalibrationOptions:
    """Settings of :func:`calibrate_from_people` (defaults suit 2-6 people, cameras 2-8 m away).

    Attributes:
        reference: camera whose pose is held fixed (the world frame); None: the rig's first.
        refine_focal: also refine one focal scale per camera (fx and fy together).
        max_frames: at most this many frames, evenly spread over the take, are used.
        coarse_frames: at most this many of them in the first round (it only has to come near).
        min_conf: 2D confidence below which a joint is ignored.
        min_joints: fewest joints two detections share to be compared, and per person-frame.
        coarse_threshold_px: association threshold of the first round, median epipolar distance,
            pixels; generous: a few degrees of error move epipolar lines by about focal x angle.
        threshold_px: association threshold of the last round, pixels (the rounds between shrink
            geometrically); loose enough that rigs near the optimum all group the same detections.
        rounds: associate-and-adjust rounds.
        coarse_robust_px: soft-L1 scale of the first round's reprojection residuals, pixels.
        robust_px: soft-L1 scale of the last round, pixels (geometric in between).
        bone_sigma_m: a bone-length deviation of this many metres weighs like 1 px of reprojection.
        track_gate_m: largest centroid jump between consecutive used frames of a track, metres.
        min_groups: fewest multi-view person-frames needed, else CalibrationError.
        max_nfev: most residual evaluations per round.
    """

    reference: str | None = None
    refine_focal: bool = False
    max_frames: int = 300
    coarse_frames: int = 40
    min_conf: float = 0.3
    min_joints: int = 5
    coarse_threshold_px: float = 120.0
    threshold_px: float = 50.0
    rounds: int = 3
    coarse_robust_px: float = 20.0
    robust_px: float = 5.0
    bone_sigma_m: float = 0.02
    track_gate_m: float = 0.5
    min_groups: int = 10
    max_nfev: int = 100

    def __post_init__(self) -> None:
        positive = ("max_frames", "coarse_frames", "coarse_threshold_px", "threshold_px", "rounds", "coarse_robust_px",
                    "robust_px", "bone_sigma_m", "track_gate_m", "max_nfev", "min_joints")  # fmt: skip
        for name in positive:
            value = getattr(self, name)
            if not (np.isfinite(value) and value > 0):
                raise CalibrationError(f"option {name} must be positive; got {value}")


@dataclass(frozen=True, slots=True)
class PeopleCalibrationResult:
    """The outcome of :func:`calibrate_from_people`.

    Attributes:
        rig: refined rig (names, sizes, distortion and principal points as given).
        before: reprojection error of the initial rig on the final association.
        after: reprojection error of the refined rig on the same.
        n_frames: frames with at least one multi-view person in the last round.
        n_groups: person-frames (multi-view groups) in the last round.
        n_tracks: person-tracks (bone-length sets) in the last round.
        n_points: 3D joints adjusted in the last round.
        n_observations: 2D joints in the last round.
        iterations: least-squares residual evaluations, all rounds together.
        scale_factor: factor applied to the adjusted world to fix the scale.
        suspect: cameras whose median reprojection error is over 2.5 times the median of the other
            cameras' (a start too far off that converged to a wrong pose); check or redo them.
        seconds: wall time of the whole calibration, seconds.
    """

    rig: CameraRig
    before: ReprojectionStats
    after: ReprojectionStats
    n_frames: int
    n_groups: int
    n_tracks: int
    n_points: int
    n_observations: int
    iterations: int
    scale_factor: float
    suspect: tuple[str, ...] = ()
    seconds: float = 0.0


def _skew(v: np.ndarray) -> np.ndarray:
    """(..., 3) -> (..., 3, 3) cross-product matrices [v]x (column j is v x e_j)."""
    return np.swapaxes(np.cross(v[..., None, :], np.eye(3)), -1, -2)


def _exp_and_left_jacobian(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rotation matrices exp([w]x) and SO(3) left Jacobians of (C, 3) rotation vectors (Rodrigues)."""
    theta = np.linalg.norm(w, axis=-1)[:, None, None]
    W = _skew(w)
    W2 = W @ W
    small = theta < 1e-6
    th = np.where(small, 1.0, theta)
    a = np.where(small, 1.0 - theta**2 / 6, np.sin(th) / th)
    b = np.where(small, 0.5 - theta**2 / 24, (1 - np.cos(th)) / th**2)
    c = np.where(small, 1 / 6 - theta**2 / 120, (th - np.sin(th)) / th**3)
    eye = np.eye(3)
    return eye + a * W + b * W2, eye + b * W + c * W2


class _PeopleBundle:
    """Residuals and sparse analytic Jacobian of the people bundle adjustment.

    Parameters: per free camera a rotation vector (left increment on its initial rotation) and a
    translation (6), optionally one log focal scale per camera, 3 per joint, 1 per bone length.
    Residuals: (u, v) per observation times sqrt(conf), pixels; one per bone observation,
    (|X_a - X_b| - L) / bone_sigma_m; one holding the distance from the reference camera to the
    farthest camera at its initial value (the scale gauge during the adjustment).
    """

    def __init__(
        self, rig: CameraRig, obs: PeopleObservations, ref: int, held: Sequence[int], refine_focal: bool, sigma_b: float
    ):
        self.rig, self.ref, self.sigma_b = rig, ref, sigma_b
        n = len(rig)
        order = np.argsort(obs.cam_idx, kind="stable")
        self.cam, self.pt, self.uv = obs.cam_idx[order], obs.point_idx[order], obs.uv_px[order]
        self.sw = np.sqrt(obs.conf[order])
        self.bounds = np.searchsorted(self.cam, np.arange(n + 1))
        self.bone_a, self.bone_b, self.bone_var = obs.bone_a, obs.bone_b, obs.bone_var
        self.points0, self.bone_init = obs.points, obs.bone_init
        free = [c for c in range(n) if c != ref and c not in held]
        self.slot = np.full(n, -1)  # pose block of each camera, -1 when held fixed
        self.slot[free] = np.arange(len(free))
        self.n_focal = n if refine_focal else 0
        self.off_f = 6 * len(free)
        self.off_x = self.off_f + self.n_focal
        self.off_l = self.off_x + 3 * len(obs.points)
        self.n_params = self.off_l + len(obs.bone_init)
        self.R0 = np.stack([c.R for c in rig])
        self.t0 = np.stack([c.t for c in rig])
        K = np.stack([c.K for c in rig])[self.cam]
        self.f0, self.pp = K[:, [0, 0, 1], [0, 1, 1]], K[:, :2, 2]  # (M, 3) fx, skew, fy; (M, 2) cx, cy
        self.dist = np.stack([c.dist for c in rig])[self.cam].T  # (5, M)
        d = np.linalg.norm(np.stack([c.center for c in rig]) - rig[ref].center, axis=1) * (self.slot >= 0)
        self.gauge, self.gauge_d0 = int(np.argmax(d)), float(d.max())  # farthest free camera from the reference
        self._key: bytes | None = None
        self._pattern()

    def x0(self) -> np.ndarray:
        x = np.concatenate([np.zeros(self.off_x), self.points0.ravel(), self.bone_init])
        x[: self.off_f].reshape(-1, 6)[self.slot[self.slot >= 0], 3:] = self.t0[self.slot >= 0]
        return x

    def unpack(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """R (C, 3, 3), t (C, 3), focal scales (C,), points (N, 3), left Jacobians (C, 3, 3)."""
        n = len(self.rig)
        w, t = np.zeros((n, 3)), self.t0.copy()
        free = self.slot >= 0
        blocks = x[: self.off_f].reshape(-1, 6)
        w[free], t[free] = blocks[self.slot[free], :3], blocks[self.slot[free], 3:]
        E, Jl = _exp_and_left_jacobian(w)
        fs = np.exp(x[self.off_f : self.off_x]) if self.n_focal else np.ones(n)
        return E @ self.R0, t, fs, x[self.off_x : self.off_l].reshape(-1, 3), Jl

    def camera(self, x: np.ndarray, c: int) -> Camera:
        R, t, fs, _, _ = self.unpack(x)
        cam = self.rig[c]
        K = cam.K.copy()
        K[:2, :2] *= fs[c]
        return Camera(cam.name, K, cam.dist, R[c], t[c], cam.size)

    def _pattern(self) -> None:
        """CSR structure of the Jacobian, in the order :meth:`jacobian` produces its values."""
        m, nb = len(self.cam), len(self.bone_a)
        r2 = 2 * np.arange(m)[:, None, None] + np.arange(2)[None, :, None]  # (M, 2, 1)
        free = self.slot[self.cam] >= 0
        rows = [np.broadcast_to(r2, (m, 2, 3)), np.broadcast_to(r2[free], (int(free.sum()), 2, 6))]
        cam_cols = 6 * self.slot[self.cam[free]][:, None, None] + np.arange(6)
        cols = [np.broadcast_to(self.off_x + 3 * self.pt[:, None, None] + np.arange(3), rows[0].shape),
                np.broadcast_to(cam_cols, rows[1].shape)]  # fmt: skip
        if self.n_focal:
            rows.append(r2[:, :, 0])
            cols.append(np.broadcast_to(self.off_f + self.cam[:, None], (m, 2)))
        rb = 2 * m + np.arange(nb)
        rows += [np.repeat(rb, 3), np.repeat(rb, 3), rb]
        cols += [self.off_x + 3 * self.bone_a[:, None] + np.arange(3),
                 self.off_x + 3 * self.bone_b[:, None] + np.arange(3), self.off_l + self.bone_var]  # fmt: skip
        rows.append(np.full(6 if self.slot[self.gauge] >= 0 else 0, 2 * m + nb))
        cols.append(6 * self.slot[self.gauge] + np.arange(len(rows[-1])))
        rows = np.concatenate([np.ravel(r) for r in rows])
        cols = np.concatenate([np.ravel(c) for c in cols])
        self.shape = (2 * m + nb + 1, self.n_params)
        csr = sp.csr_matrix((np.arange(1, rows.size + 1, dtype=np.float64), (rows, cols)), shape=self.shape)
        self.perm = csr.data.astype(np.int64) - 1
        self.indices, self.indptr = csr.indices, csr.indptr

    def _evaluate(self, x: np.ndarray) -> dict:
        """Projections and their derivatives at ``x`` (cached for the residual/Jacobian pair)."""
        key = x.tobytes()
        if key == self._key:
            return self._cache
        R, t, fs, X, Jl = self.unpack(x)
        Z = np.empty((len(self.cam), 3))
        for c in range(len(self.rig)):
            sl = slice(self.bounds[c], self.bounds[c + 1])
            Z[sl] = X[self.pt[sl]] @ R[c].T
        Xc = Z + t[self.cam]
        z = np.where(np.abs(Xc[:, 2]) < 1e-9, 1e-9, Xc[:, 2])
        xn, yn = Xc[:, 0] / z, Xc[:, 1] / z
        k1, k2, p1, p2, k3 = self.dist
        r2 = xn * xn + yn * yn
        rad = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
        xd = xn * rad + 2 * p1 * xn * yn + p2 * (r2 + 2 * xn * xn)
        yd = yn * rad + p1 * (r2 + 2 * yn * yn) + 2 * p2 * xn * yn
        f = self.f0 * fs[self.cam][:, None]
        duv = np.stack([f[:, 0] * xd + f[:, 1] * yd, f[:, 2] * yd], axis=1)
        self._key = key
        self._cache = dict(R=R, t=t, X=X, Jl=Jl, Z=Z, z=z, xn=xn, yn=yn, r2=r2, rad=rad, f=f, duv=duv)
        return self._cache

    def residuals(self, x: np.ndarray) -> np.ndarray:
        e = self._evaluate(x)
        r_rep = ((e["duv"] + self.pp - self.uv) * self.sw[:, None]).ravel()
        X = e["X"]
        lengths = np.linalg.norm(X[self.bone_a] - X[self.bone_b], axis=1)
        r_bone = (lengths - x[self.off_l :][self.bone_var]) / self.sigma_b
        R, t = e["R"], e["t"]
        c_g, c_r = -R[self.gauge].T @ t[self.gauge], -R[self.ref].T @ t[self.ref]
        r_gauge = (np.linalg.norm(c_g - c_r) - self.gauge_d0) / _GAUGE_SIGMA_M
        return np.concatenate([r_rep, r_bone, [r_gauge]])

    def jacobian(self, x: np.ndarray) -> sp.csr_matrix:
        e = self._evaluate(x)
        xn, yn, r2, rad, z, f = e["xn"], e["yn"], e["r2"], e["rad"], e["z"], e["f"]
        k1, k2, p1, p2, k3 = self.dist
        drad = 2 * (k1 + r2 * (2 * k2 + 3 * k3 * r2))
        d00 = rad + xn * xn * drad + 2 * p1 * yn + 6 * p2 * xn
        d01 = xn * yn * drad + 2 * p1 * xn + 2 * p2 * yn
        d11 = rad + yn * yn * drad + 6 * p1 * yn + 2 * p2 * xn
        a = np.stack([f[:, 0] * d00 + f[:, 1] * d01, f[:, 0] * d01 + f[:, 1] * d11, f[:, 2] * d01, f[:, 2] * d11], 1)
        a = a.reshape(-1, 2, 2) * (self.sw / z)[:, None, None]  # d uv / d (x, y) * z, weighted
        Jc = np.concatenate([a, -(a[:, :, :1] * xn[:, None, None] + a[:, :, 1:] * yn[:, None, None])], axis=2)
        JX = np.empty_like(Jc)
        Jw = np.empty_like(Jc)
        R, Z, Jl = e["R"], e["Z"], e["Jl"]
        for c in range(len(self.rig)):
            sl = slice(self.bounds[c], self.bounds[c + 1])
            JX[sl] = Jc[sl] @ R[c]
            Jw[sl] = -np.cross(Jc[sl], Z[sl, None, :]) @ Jl[c]
        free = self.slot[self.cam] >= 0
        vals = [JX.ravel(), np.concatenate([Jw[free], Jc[free]], axis=2).ravel()]
        if self.n_focal:
            vals.append((e["duv"] * self.sw[:, None]).ravel())
        X = e["X"]
        d = X[self.bone_a] - X[self.bone_b]
        u = d / np.maximum(np.linalg.norm(d, axis=1), 1e-12)[:, None] / self.sigma_b
        vals += [u.ravel(), -u.ravel(), np.full(len(d), -1.0 / self.sigma_b)]
        g, t = self.gauge, e["t"]  # d |c_g - c_ref| with c_g = -R0^T exp(-w) t
        if self.slot[g] < 0:  # every camera held: no gauge derivative
            return sp.csr_matrix((np.concatenate(vals)[self.perm], self.indices, self.indptr), shape=self.shape)
        c_g, c_r = -R[g].T @ t[g], -R[self.ref].T @ t[self.ref]
        n = (c_g - c_r) / max(np.linalg.norm(c_g - c_r), 1e-12) / _GAUGE_SIGMA_M
        E_neg, Jl_neg = _exp_and_left_jacobian(-x[6 * self.slot[g] : 6 * self.slot[g] + 3][None])
        dc_dw = -self.R0[g].T @ _skew(E_neg[0] @ t[g]) @ Jl_neg[0]
        vals.append(np.concatenate([n @ dc_dw, n @ -R[g].T]))
        data = np.concatenate(vals)[self.perm]
        return sp.csr_matrix((data, self.indices, self.indptr), shape=self.shape)


def _select_frames(frames: Sequence[Sequence[np.ndarray]], n_cams: int, n_joints: int, max_frames: int) -> list:
    """At most ``max_frames`` frames evenly spread over the take, shapes checked."""
    for k, frame in enumerate(frames):
        if len(frame) != n_cams:
            raise ShapeError(f"frame {k}: need one pose array per camera ({n_cams}); got {len(frame)}")
        for c, p in enumerate(frame):
            shape = np.shape(p)
            if len(shape) != 3 or shape[1:] != (n_joints, 3):
                raise ShapeError(f"frame {k}, camera {c}: poses must be (P, {n_joints}, 3); got {shape}")
    keep = np.unique(np.linspace(0, len(frames) - 1, min(len(frames), max_frames)).round().astype(int))
    return [frames[k] for k in keep] if len(frames) else []


def _suspects(stats: ReprojectionStats) -> tuple[str, ...]:
    """Cameras whose median reprojection error is over ``_SUSPECT_RATIO`` times the others' median."""
    med = np.array([c.median_px for c in stats.per_camera])
    return tuple(
        c.name for i, c in enumerate(stats.per_camera) if med[i] > _SUSPECT_RATIO * np.median(np.delete(med, i))
    )


def _people_per_frame(obs: PeopleObservations, points: np.ndarray, n_frames: int, n_joints: int) -> list[np.ndarray]:
    """Per frame, (Q, J, 4) [x, y, z, valid] of the adjusted 3D people (groups) of that frame."""
    table = np.zeros((obs.n_groups, n_joints, 4))
    table[obs.point_group, obs.point_joint] = np.concatenate([points, np.ones((len(points), 1))], axis=1)
    return [table[obs.group_frame == k] for k in range(n_frames)]


def _rescale(rig: CameraRig, ref: int, s: float) -> CameraRig:
    """Scale the world by ``s`` about the reference camera's centre (rotations unchanged)."""
    c_ref = rig[ref].center
    centres = [c_ref + s * (cam.center - c_ref) for cam in rig]
    return CameraRig(
        tuple(Camera(c.name, c.K, c.dist, c.R, -c.R @ x, c.size) for c, x in zip(rig, centres, strict=True))
    )


def _stature(points: np.ndarray, obs: PeopleObservations, skeleton: Skeleton) -> float:
    """Median estimated stature over person-frames and sides (see :class:`SubjectHeight`), metres."""
    try:
        chains = [
            [skeleton.index(f"{side}_{j}") for j in ("ankle", "knee", "hip", "shoulder")] for side in ("left", "right")
        ]
    except KeyError as exc:
        raise CalibrationError(f"a subject height needs ankle, knee, hip and shoulder joints: {exc}") from None
    table = np.full((obs.n_groups, skeleton.n_joints), -1)
    table[obs.point_group, obs.point_joint] = np.arange(len(points))
    idx = table[:, chains].reshape(-1, 4)  # (G * 2, 4) point indices of each chain
    idx = idx[(idx >= 0).all(axis=1)]
    if not len(idx):
        raise CalibrationError("no person-frame shows a whole ankle-knee-hip-shoulder chain: cannot use a height")
    return float(np.median(np.linalg.norm(np.diff(points[idx], axis=1), axis=-1).sum(axis=1)) / _LEG_TRUNK_FRACTION)


def calibrate_from_people(
    rig: CameraRig,
    frames: Sequence[Sequence[np.ndarray]],
    skeleton: Skeleton,
    scale: KnownDistance | SubjectHeight,
    options: PeopleCalibrationOptions | None = None,
) -> PeopleCalibrationResult:
    """Refine a rig's extrinsics from people seen by several cameras (bundle adjustment on keypoints).

    See the module docstring for the method. Intrinsics are trusted (only a focal scale per camera
    is refined with ``options.refine_focal``); the detections must be synchronised across cameras
    (same frame index = same instant).

    Args:
        rig: initial cameras (extrinsics may be several degrees and tens of cm off), metres.
        frames: per frame, per camera in rig order, (P, J, 3) [u_px, v_px, conf] distorted pixels;
            J = ``skeleton.n_joints``, P may differ per camera and be 0.
        skeleton: joint set; its limbs get per-track constant lengths.
        scale: :class:`KnownDistance` between two camera centres or :class:`SubjectHeight`.
        options: settings (:class:`PeopleCalibrationOptions`).

    Returns:
        The refined rig (reference camera unchanged) with reprojection errors before/after and
        counts of what was used.

    Raises:
        CalibrationError: fewer than 2 cameras, an unknown camera name (reference or known
            distance), fewer than ``options.min_groups`` multi-view person-frames overall or for
            some camera in the last round (a camera that far off is not refined), or a height
            scale without a complete leg-and-trunk chain.
        ShapeError: frames without one (P, J, 3) array per camera.
    """
    start = time.perf_counter()
    opt = options or PeopleCalibrationOptions()
    if len(rig) < 2:
        raise CalibrationError(f"calibration from people needs at least 2 cameras; got {len(rig)}")
    ref = rig.index(opt.reference) if opt.reference is not None else 0
    for name in (scale.cam_a, scale.cam_b) if isinstance(scale, KnownDistance) else ():
        rig.index(name)  # raises CalibrationError naming the rig's cameras
    sel = _select_frames(frames, len(rig), skeleton.n_joints, opt.max_frames)
    current, nfev = rig, 0
    for rnd in range(opt.rounds):
        frac = rnd / max(opt.rounds - 1, 1)  # thresholds and robust scales shrink geometrically
        threshold = opt.coarse_threshold_px ** (1 - frac) * opt.threshold_px**frac
        robust = opt.coarse_robust_px ** (1 - frac) * opt.robust_px**frac
        used = _select_frames(sel, len(rig), skeleton.n_joints, opt.coarse_frames) if rnd == 0 else sel
        obs = build_observations(
            current, used, threshold, skeleton.limbs, opt.min_conf, opt.min_joints, opt.track_gate_m
        )
        if obs.n_groups < opt.min_groups:
            raise CalibrationError(
                f"found {obs.n_groups} people seen by 2 cameras or more in {len(used)} frames; "
                f"need at least {opt.min_groups}"
            )
        groups = np.array([np.unique(obs.point_group[obs.point_idx[obs.cam_idx == c]]).size for c in range(len(rig))])
        # a camera in few groups is held this round, lest scant or wrong groups carry it away (measured:
        # 90 degrees on Panoptic from a 3-degree start); in the last round only the absolute minimum counts
        least = opt.min_groups if rnd == opt.rounds - 1 else max(opt.min_groups, 0.5 * np.median(groups))
        held = [c for c in range(len(rig)) if groups[c] < least]
        bundle = _PeopleBundle(current, obs, ref, held, opt.refine_focal, opt.bone_sigma_m)
        res = least_squares(
            bundle.residuals, bundle.x0(), jac=bundle.jacobian, method="trf", x_scale="jac",
            loss="soft_l1", f_scale=robust,
            tr_solver="lsmr", max_nfev=opt.max_nfev, ftol=1e-6, xtol=1e-8,
        )  # fmt: skip
        nfev += int(res.nfev)
        cams = [bundle.camera(res.x, c) for c in range(len(rig))]
        points = bundle.unpack(res.x)[3]
        if rnd < opt.rounds - 1:  # re-pose held or stray cameras from the people the others triangulate
            stray = _suspects(reprojection_errors(CameraRig(tuple(cams)), obs))
            people = _people_per_frame(obs, points, len(used), skeleton.n_joints)
            for c in sorted(set(held) | {rig.index(n) for n in stray} - {ref}):
                cams[c] = resect_camera(cams[c], [f[c] for f in used], people, opt.min_conf) or cams[c]
        current = CameraRig(tuple(cams))
        log.info(
            "round %d: %d person-frames, %d tracks, %d joints, %d observations, %d evaluations, cost %.4g, held %s",
            rnd, obs.n_groups, obs.n_tracks, len(obs.points), len(obs.cam_idx), res.nfev, res.cost, held,
        )  # fmt: skip
    lonely = [f"{name} ({n})" for name, n, c in zip(rig.names, groups, range(len(rig)), strict=True) if c in held]
    if lonely:
        raise CalibrationError(
            f"cameras in fewer than {opt.min_groups} person-frames seen with other cameras: {', '.join(lonely)}; "
            "their start is too far off (more than a few degrees) or they see too few people"
        )
    if isinstance(scale, KnownDistance):
        s = scale.metres / float(np.linalg.norm(current[scale.cam_a].center - current[scale.cam_b].center))
    else:
        s = scale.metres / _stature(points, obs, skeleton)
    current = _rescale(current, ref, s)
    after = reprojection_errors(current, obs)
    before = reprojection_errors(rig, obs)
    suspect = _suspects(after)
    if suspect:
        log.warning("cameras %s reproject %.1fx worse than the others: probably not converged", suspect, _SUSPECT_RATIO)
    return PeopleCalibrationResult(
        rig=current, before=before, after=after, n_frames=int(np.unique(obs.group_frame).size),
        n_groups=obs.n_groups, n_tracks=obs.n_tracks, n_points=len(obs.points),
        n_observations=len(obs.cam_idx), iterations=nfev, scale_factor=s, suspect=suspect,
        seconds=time.perf_counter() - start,
    )  # fmt: skip
