"""A batched unscented Kalman filter for many 3D points seen through calibrated cameras.

One filter per joint of each tracked person: state ``[x, y, z, vx, vy, vz]`` (metres, metres/second,
world frame), constant-velocity motion driven by white-noise acceleration (Bar-Shalom, Li &
Kirubarajan 2001, §6.2.2), and as measurement the joint's pixels in the views that saw it, through
each camera's pinhole projection (the nonlinear measurement the UKF exists for). The equations are
those of filterpy's ``UnscentedKalmanFilter`` with ``MerweScaledSigmaPoints`` (Julier & Uhlmann
1997; Wan & van der Merwe 2000, scaled sigma points; Labbe, *Kalman and Bayesian Filters in
Python*, ch. 10), evaluated for B filters at once: filterpy runs one Python loop per filter
(about 1 ms per predict + update of one joint); here :func:`predict` is a few numpy operations for
all of them, and :func:`update` one compiled loop over the filters (:mod:`core.jit`,
``fusion._ukf_kernels``) doing each filter's small linear algebra by hand. ``tests/fusion/test_ukf.py``
checks that both agree to 1e-9.

Views that did not see a joint are masked: their rows of the predicted measurement are constant,
so their block of the innovation covariance is their noise alone and their columns of the gain are
zero; the update is then exactly the update with the seen views only (block-diagonal argument),
which is what filterpy computes with the shorter measurement vector, and what the compiled update
computes: it gathers the seen views' coordinates only.

The pixels depend on the position only: the 6 sigma points along the velocity columns of the
(lower triangular) Cholesky factor have the centre's position, and the update folds them into it
(:meth:`SigmaWeights.position_points`): 7 distinct points instead of 13, the same sums. With more
pixel coordinates than those points (2 C > 7, from 4 cameras on), the update inverts the 7 x 7
matrix of the matrix inversion lemma instead of the 2 C x 2 C innovation covariance (equal to
rounding; see :func:`update`): at 32 cameras a 7 x 7 solve per joint instead of a 64 x 64 one.
Solves are Gaussian elimination with partial pivoting (as ``numpy.linalg.solve``): with the scaled
points' negative centre weight, these symmetric matrices need not be positive definite.

Convention: sigma points are ordered as filterpy's (centre, then +columns, then -columns of the
Cholesky factor of ``(n + lambda) P``); pixels are undistorted (``Camera.undistort_px``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

import numpy as np

from core.errors import ShapeError
from fusion._ukf_kernels import NOT_POSITIVE_DEFINITE, SINGULAR, masked_update

__all__ = [
    "MaskedUpdate",
    "SigmaWeights",
    "constant_velocity_noise",
    "homogeneous_pixels",
    "predict",
    "project_points",
    "update",
]

STATE_DIM = 6
POSITION_DIM = 3


@dataclass(frozen=True, slots=True)
class SigmaWeights:
    """Van der Merwe's scaled sigma points for a state of dimension ``n``.

    ``alpha`` defaults to 0.5 (Wan & van der Merwe suggest 1e-4 <= alpha <= 1): with the often used
    1e-3 the weights are of order 1e6 with opposite signs, and any implementation loses about 7
    digits to cancellation (this one and filterpy's then agree to 1e-8 only, against 1e-12 at 0.5).

    Attributes:
        n: state dimension.
        alpha: spread of the points around the mean.
        beta: prior knowledge of the distribution (2 is optimal for a Gaussian).
        kappa: secondary scaling (0 or 3 - n).

    Example:
        >>> w = SigmaWeights(6)
        >>> w.Wm.shape, round(float(w.Wm.sum()), 6)
        ((13,), 1.0)
    """

    n: int = STATE_DIM
    alpha: float = 0.5
    beta: float = 2.0
    kappa: float = 0.0
    _wm: np.ndarray = field(init=False, repr=False, compare=False)
    _wc: np.ndarray = field(init=False, repr=False, compare=False)
    _wm_pos: np.ndarray = field(init=False, repr=False, compare=False)
    _wc_pos: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        lam = self.alpha**2 * (self.n + self.kappa) - self.n
        wm = np.full(2 * self.n + 1, 0.5 / (self.n + lam))
        wm[0] = lam / (self.n + lam)
        wc = wm.copy()
        wc[0] += 1.0 - self.alpha**2 + self.beta
        d = min(POSITION_DIM, self.n)  # the points off the position columns fold into the centre
        folded = [np.r_[w[0] + w[1 + d : 1 + self.n].sum() + w[1 + self.n + d :].sum(), w[1 : 1 + d],
                        w[1 + self.n : 1 + self.n + d]] for w in (wm, wc)]  # fmt: skip
        for name, a in zip(("_wm", "_wc", "_wm_pos", "_wc_pos"), (wm, wc, *folded), strict=True):
            a.setflags(write=False)
            object.__setattr__(self, name, a)

    @property
    def lam(self) -> float:
        """lambda = alpha^2 (n + kappa) - n."""
        return self.alpha**2 * (self.n + self.kappa) - self.n

    @property
    def Wm(self) -> np.ndarray:
        """(2n+1,) weights of the mean (read-only)."""
        return self._wm

    @property
    def Wc(self) -> np.ndarray:
        """(2n+1,) weights of the covariance (read-only)."""
        return self._wc

    def points(self, x: np.ndarray, P: np.ndarray) -> np.ndarray:
        """Sigma points of B Gaussians.

        Args:
            x: (B, n) means.
            P: (B, n, n) covariances (symmetric positive definite).

        Returns:
            (B, 2n+1, n) sigma points, filterpy's order.

        Raises:
            numpy.linalg.LinAlgError: a covariance is not positive definite.
        """
        L = np.linalg.cholesky((self.n + self.lam) * P)  # (B, n, n), P = L L^T; filterpy's U = L^T
        offsets = np.swapaxes(L, 1, 2)  # rows of U = columns of L
        return np.concatenate([x[:, None, :], x[:, None, :] + offsets, x[:, None, :] - offsets], axis=1)

    def position_points(self, P: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The sigma points that matter to a function of the position (the first 3 state components).

        The Cholesky factor L of ``(n + lambda) P`` is lower triangular: its columns after the third
        have no position component, so their 2 (n - 3) sigma points have the centre's position and, for
        a function of the position, its value. Folded into the centre (their weights added to its
        weights), the unscented transform's mean, covariance and cross-covariance with the state are
        the same sums over 7 points instead of 2 n + 1 (the +-pairs' state deviations cancel in the
        cross-covariance, as their function values are equal).

        Args:
            P: (B, n, n) covariances (symmetric positive definite).

        Returns:
            dev: (B, 2 d + 1, n) the points' deviations from the mean (centre, +columns, -columns of L;
                d = min(3, n)); the points are ``x[:, None] + dev``.
            wm, wc: (2 d + 1,) their mean and covariance weights (read-only).

        Raises:
            numpy.linalg.LinAlgError: a covariance is not positive definite.
        """
        B, d = P.shape[0], min(POSITION_DIM, self.n)
        L = np.linalg.cholesky((self.n + self.lam) * P)  # (B, n, n)
        dev = np.empty((B, 2 * d + 1, self.n))
        dev[:, 0] = 0.0
        dev[:, 1 : d + 1] = np.swapaxes(L[:, :, :d], 1, 2)
        np.negative(dev[:, 1 : d + 1], out=dev[:, d + 1 :])
        return dev, self._wm_pos, self._wc_pos


def constant_velocity_noise(dt_s: np.ndarray, accel_std_mps2: float) -> np.ndarray:
    """Discrete white-noise acceleration covariance for states [x, y, z, vx, vy, vz].

    The same matrix as ``np.kron(filterpy.common.Q_discrete_white_noise(2, dt, var), np.eye(3))``
    (Bar-Shalom et al. 2001, eq. 6.2.2-12 with the piecewise-constant acceleration model).

    Args:
        dt_s: (B,) time steps, seconds.
        accel_std_mps2: acceleration noise standard deviation, metres/second^2.

    Returns:
        (B, 6, 6) process noise covariances.
    """
    dt = np.asarray(dt_s, dtype=np.float64).reshape(-1)
    var = accel_std_mps2**2
    q = np.empty((dt.shape[0], 2, 2))
    q[:, 0, 0] = 0.25 * dt**4 * var
    q[:, 0, 1] = q[:, 1, 0] = 0.5 * dt**3 * var
    q[:, 1, 1] = dt**2 * var
    return np.einsum("bij,kl->bikjl", q, np.eye(3)).reshape(-1, 6, 6)


def _unscented_transform(sigmas: np.ndarray, w: SigmaWeights) -> tuple[np.ndarray, np.ndarray]:
    """Weighted mean (B, d) and covariance (B, d, d) of (B, 2n+1, d) transformed sigma points."""
    mean = w.Wm @ sigmas
    dev = sigmas - mean[:, None, :]
    cov = np.swapaxes(dev, 1, 2) @ (w.Wc[:, None] * dev)
    return mean, cov


def predict(
    x: np.ndarray, P: np.ndarray, dt_s: np.ndarray, Q: np.ndarray, w: SigmaWeights | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Predict B constant-velocity filters ``dt_s`` seconds ahead (filterpy ``UKF.predict``).

    Args:
        x: (B, 6) states [x, y, z, vx, vy, vz], metres and metres/second.
        P: (B, 6, 6) covariances.
        dt_s: (B,) time steps, seconds (may differ per filter: views enter at their own times).
        Q: (B, 6, 6) process noise (:func:`constant_velocity_noise`).
        w: sigma-point weights (default ``SigmaWeights(6)``).

    Returns:
        x (B, 6) and P (B, 6, 6) predicted.

    Raises:
        ShapeError: inconsistent shapes.
    """
    w = w or SigmaWeights(STATE_DIM)
    B = x.shape[0]
    dt = np.broadcast_to(np.asarray(dt_s, dtype=np.float64), (B,))
    if x.shape != (B, STATE_DIM) or P.shape != (B, STATE_DIM, STATE_DIM) or Q.shape != P.shape:
        raise ShapeError(f"predict needs x (B, 6), P and Q (B, 6, 6); got {x.shape}, {P.shape}, {Q.shape}")
    sigmas = w.points(x, P)
    sigmas_f = sigmas.copy()
    sigmas_f[..., :3] += dt[:, None, None] * sigmas[..., 3:]
    x_new, P_new = _unscented_transform(sigmas_f, w)
    return x_new, P_new + Q


_W6: Final = SigmaWeights(STATE_DIM)


def project_points(points_w: np.ndarray, projections: np.ndarray) -> np.ndarray:
    """Pixels of points in every view.

    Args:
        points_w: (..., 3) world points, metres.
        projections: (C, 3, 4) matrices mapping world metres to undistorted pixels.

    Returns:
        (..., C, 2) undistorted pixels (meaningless for points behind a camera).
    """
    q = np.einsum("cij,...j->...ci", projections[:, :, :3], points_w) + projections[:, :, 3]
    return q[..., :2] / q[..., 2:]


def homogeneous_pixels(points_w: np.ndarray, projections: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Homogeneous pixels of points in every view, by one matrix product.

    Args:
        points_w: (..., 3) world points, metres.
        projections: (C, 3, 4) matrices mapping world metres to undistorted pixels.
        out: optional (K, 3 C) float64 array to write to, K the number of points.

    Returns:
        (..., 3, C) ``P_c [X; 1]``: rows u w, v w and w (the depth along the optical axis, metres;
        pixels are the first two rows divided by the third).
    """
    C = projections.shape[0]
    lead = points_w.shape[:-1]
    pts = points_w.reshape(-1, 3)
    homog = np.empty((pts.shape[0], 4))
    homog[:, :3], homog[:, 3] = pts, 1.0
    return np.matmul(homog, projections.transpose(2, 1, 0).reshape(4, 3 * C), out=out).reshape(*lead, 3, C)


@dataclass(frozen=True, slots=True)
class MaskedUpdate:
    """The result of :func:`update`.

    Attributes:
        x: (B, 6) updated states.
        P: (B, 6, 6) updated covariances.
        mahalanobis2: (B,) squared Mahalanobis distance of each innovation over its seen views
            (chi-square with ``2 * n_views`` degrees of freedom under the model); 0 with no view.
        n_views: (B,) int number of views used per filter.
    """

    x: np.ndarray
    P: np.ndarray
    mahalanobis2: np.ndarray
    n_views: np.ndarray


def update(
    x: np.ndarray,
    P: np.ndarray,
    z_px: np.ndarray,
    mask: np.ndarray,
    var_px2: np.ndarray,
    projections: np.ndarray,
    w: SigmaWeights | None = None,
) -> MaskedUpdate:
    """Update B filters with the pixels of their point in the views that saw it (filterpy ``UKF.update``).

    As filterpy 1.4.5 does, the sigma points are drawn afresh from the predicted (x, P). The pixels
    depend on the position only, and the Cholesky factor is lower triangular, so the sigma points
    along its velocity columns project onto the centre's pixels: they are folded into the centre
    (:meth:`SigmaWeights.position_points`), which leaves 7 distinct points of 13 and the same sums.

    With the points' state deviations X (7, 6), pixel deviations D (7, m) over the m = 2 (seen views)
    coordinates, covariance weights W = diag(wc) and the diagonal noise R: if 2 C <= 7, the direct form
    ``S = D^T W D + R``, ``Pxz = X^T W D``, ``S [K^T | s] = [Pxz^T | y]``, ``x + Pxz s``, ``P - Pxz K^T``;
    if 2 C > 7 (and no weight is 0), the matrix inversion lemma (Woodbury; Press et al., *Numerical
    Recipes*, §2.7.3): ``M = W^-1 + D R^-1 D^T`` (7 x 7), ``c = D R^-1 y``, ``M [s | T] = [c | X]``,
    ``x + X^T s``, ``P + X^T T - X^T W X``, ``y^T R^-1 y - c^T s``. Unseen views drop out exactly. One
    compiled loop over the filters (:mod:`core.jit`): a 6 x 6 Cholesky factor and a 7 x 7 (or m x m)
    solve each.

    Args:
        x: (B, 6) predicted states.
        P: (B, 6, 6) predicted covariances.
        z_px: (B, C, 2) observed undistorted pixels; rows where ``mask`` is False are ignored.
        mask: (B, C) bool, True where view c observed filter b's point.
        var_px2: (B, C) measurement noise variance per pixel coordinate, pixels^2 (> 0 where seen).
        projections: (C, 3, 4) projection matrices, world metres to undistorted pixels.
        w: sigma-point weights (default ``SigmaWeights(6)``).

    Returns:
        :class:`MaskedUpdate`. A filter without any seen view keeps its prediction.

    Raises:
        ShapeError: inconsistent shapes.
        numpy.linalg.LinAlgError: a covariance is not positive definite, or a system is singular.
    """
    w = w or _W6
    B, C = mask.shape
    if z_px.shape != (B, C, 2) or var_px2.shape != (B, C) or projections.shape != (C, 3, 4):
        raise ShapeError(
            f"update needs z_px (B, C, 2), mask and var_px2 (B, C), projections (C, 3, 4); got "
            f"{z_px.shape}, {mask.shape}, {var_px2.shape}, {projections.shape}"
        )
    n = P.shape[-1]
    wm, wc = w._wm_pos, w._wc_pos  # the 7 folded points' weights (position_points)
    x_new, P_new = np.empty((B, n)), np.empty((B, n, n))
    d2, n_views = np.empty(B), np.empty(B, np.int64)
    f64 = np.float64
    status = masked_update(
        np.ascontiguousarray(x, f64), np.ascontiguousarray(P, f64), np.ascontiguousarray(z_px, f64),
        np.ascontiguousarray(mask, np.bool_), np.ascontiguousarray(var_px2, f64),
        np.ascontiguousarray(projections, f64), wm, wc, w.n + w.lam, 2 * C > wm.shape[0], x_new, P_new, d2, n_views,
    )  # fmt: skip
    if status == NOT_POSITIVE_DEFINITE:
        raise np.linalg.LinAlgError("Matrix is not positive definite")
    if status == SINGULAR:
        raise np.linalg.LinAlgError("Singular matrix")
    return MaskedUpdate(x_new, P_new, d2, n_views)
