"""The people bundle adjustment problem and the reprojection error it minimises.

:class:`PeopleBundle` holds the least-squares problem of :func:`calibration.people.calibrate_from_people`:
camera poses (optionally focal scales), 3D joints and per-track bone lengths, with residuals and an
analytic sparse Jacobian for ``scipy.optimize.least_squares`` (Triggs et al. 2000, "Bundle
adjustment — a modern synthesis", §3-§6). :func:`reprojection_errors` measures any rig on the same
associated detections, so that rigs are compared on equal terms.

Convention: cameras as :mod:`calibration.camera` (``x_cam = R @ x_world + t``); observations in
distorted pixels; rotations are updated on the left, ``R = exp([w]x) R0``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from calibration.camera import Camera, CameraRig, distort_normalized
from calibration.people_association import PeopleObservations, triangulate_weighted

__all__ = ["CameraReprojection", "PeopleBundle", "ReprojectionStats", "reprojection_errors"]

_GAUGE_SIGMA_M = 1e-4  # stiffness of the residual that holds the reference-to-gauge-camera distance


def _skew(v: np.ndarray) -> np.ndarray:
    """(..., 3) -> (..., 3, 3) cross-product matrices [v]x (column j is v x e_j)."""
    return np.swapaxes(np.cross(v[..., None, :], np.eye(3)), -1, -2)


def _exp_and_left_jacobian(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rotation matrices exp([w]x) and SO(3) left Jacobians of (C, 3) rotation vectors (Rodrigues).

    Example:
        >>> R = _exp_and_left_jacobian(np.array([[0.0, 0.0, np.pi / 2]]))[0][0]
        >>> R.round(6).tolist()
        [[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
    """
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


class PeopleBundle:
    """Residuals and sparse analytic Jacobian of the people bundle adjustment.

    Parameters ``x``: per free camera a rotation vector (left increment on its initial rotation)
    and a translation (6), optionally one log focal scale per camera, 3 per joint, 1 per bone
    length. Residuals: (u, v) per observation times sqrt(conf), pixels; one per bone observation,
    (|X_a - X_b| - L) / sigma_b; one holding the distance from the reference camera to the
    farthest free camera at its initial value (the scale gauge during the adjustment). The
    derivatives are those of the distorted pinhole projection (Hartley & Zisserman §6.1, §7.4; OpenCV's
    Brown-Conrady model) with rotations perturbed on the left through the SO(3) left Jacobian
    (Barfoot 2017, "State Estimation for Robotics", ch. 7).

    Args:
        rig: cameras at the start (their R, t are the linearisation points), metres.
        obs: observations (:func:`calibration.people_association.build_observations`).
        ref: index of the camera held fixed (the world frame).
        held: indices of further cameras held fixed this time.
        refine_focal: add one log focal scale per camera (fx, fy and skew together).
        sigma_b: a bone-length deviation of this many metres weighs like 1 px of reprojection.
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
        """(n_params,) start: zero rotation increments, the initial translations, points and bones."""
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
        """Camera ``c`` at parameters ``x`` (focal scaled when refined; the rest as in the rig)."""
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
        xd, yd, r2, rad = distort_normalized(xn, yn, self.dist.T)  # self.dist is (5, M)
        f = self.f0 * fs[self.cam][:, None]
        duv = np.stack([f[:, 0] * xd + f[:, 1] * yd, f[:, 2] * yd], axis=1)
        self._key = key
        self._cache = dict(R=R, t=t, X=X, Jl=Jl, Z=Z, z=z, xn=xn, yn=yn, r2=r2, rad=rad, f=f, duv=duv)
        return self._cache

    def residuals(self, x: np.ndarray) -> np.ndarray:
        """(2 M + B + 1,) residuals at ``x``: weighted pixels, scaled bone deviations, the gauge."""
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
        """(2 M + B + 1, n_params) sparse Jacobian of :meth:`residuals` at ``x``."""
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


@dataclass(frozen=True, slots=True)
class CameraReprojection:
    """Reprojection error of one camera.

    Attributes:
        name: camera name.
        median_px: median reprojection error, pixels.
        mean_px: mean reprojection error, pixels.
        n_observations: 2D joints measured.
    """

    name: str
    median_px: float
    mean_px: float
    n_observations: int


@dataclass(frozen=True, slots=True)
class ReprojectionStats:
    """Reprojection error of a rig on associated detections (:func:`reprojection_errors`).

    Attributes:
        median_px: median over all 2D observations of |projected - detected|, pixels.
        mean_px: mean of the same, pixels.
        n_observations: 2D joints measured.
        per_camera: one entry per camera, rig order.
    """

    median_px: float
    mean_px: float
    n_observations: int
    per_camera: tuple[CameraReprojection, ...]


def reprojection_errors(rig: CameraRig, obs: PeopleObservations) -> ReprojectionStats:
    """Reprojection error of a rig on associated observations.

    Each observed joint is triangulated with ``rig`` (:func:`triangulate_weighted`, weights = 2D
    confidence) and reprojected with distortion, so that two rigs are compared on the same
    detections whatever rig associated them.

    Args:
        rig: the cameras (same order as ``obs.cam_idx``).
        obs: observations (:func:`build_observations`).

    Returns:
        Median and mean |projected - detected|, pixels, overall and per camera.
    """
    n_cams, n_pts = len(rig), len(obs.points)
    uv = np.zeros((n_cams, n_pts, 2))
    w = np.zeros((n_cams, n_pts))
    for c, cam in enumerate(rig):
        sel = obs.cam_idx == c
        uv[c, obs.point_idx[sel]] = cam.undistort_px(obs.uv_px[sel])
        w[c, obs.point_idx[sel]] = obs.conf[sel]
    X = triangulate_weighted(rig.projections(), uv, w)
    err = np.zeros(len(obs.cam_idx))
    per_cam = []
    for c, cam in enumerate(rig):
        sel = obs.cam_idx == c
        err[sel] = np.linalg.norm(cam.project(X[obs.point_idx[sel]]) - obs.uv_px[sel], axis=1)
        e = err[sel]
        per_cam.append(
            CameraReprojection(cam.name, *(float(f(e)) if e.size else 0.0 for f in (np.median, np.mean)), int(e.size))
        )
    med, mean = (float(f(err)) if err.size else 0.0 for f in (np.median, np.mean))
    return ReprojectionStats(med, mean, int(err.size), tuple(per_cam))
