"""Bundle adjustment: cameras, rigid objects and 3D points refined by sparse robust least squares.

The unknowns are grouped in blocks of a *full* parameter vector (see :class:`ParameterLayout`):

- per camera, 12 numbers: Rodrigues rotation (3) and translation (3, metres) camera-from-world,
  focal lengths fx, fy and principal point cx, cy (pixels), radial distortion k1, k2;
- per rigid-object instance ("pose"), 6 numbers: Rodrigues rotation and translation
  world-from-object (metres), e.g. one pose per frame of a calibration board;
- per point, 3 numbers: its coordinates, metres, in the world frame or, when observed through a
  pose, in the object's frame (a board's corner layout).

Blocks can be held fixed (the reference camera for the gauge, a board's known corner layout); the
others are solved with ``scipy.optimize.least_squares`` (trust-region reflective, finite
differences restricted to the Jacobian's sparsity pattern, robust loss in pixels). Skew and the
distortion terms p1, p2, k3 are kept as given.

A later step can add its own residuals (for instance bone-length priors when calibrating from
people) through :class:`ExtraResiduals`, whose sparsity is given over the full parameter vector
with the :class:`ParameterLayout` column helpers.

References: Triggs, McLauchlan, Hartley & Fitzgibbon 2000, "Bundle adjustment — a modern
synthesis" (sparsity, robust cost, gauge); Hartley & Zisserman, Multiple View Geometry, 2nd ed.,
§18.1 (bundle adjustment) and §A6 (sparse Levenberg-Marquardt).

Convention: cameras as in :mod:`calibration.camera` (``x_cam = R @ x_world + t``, OpenCV axes,
Brown-Conrady distortion as ``Camera.project``). A point seen through pose ``q`` is
``x_world = R_q @ x_object + t_q``. Residuals are projected minus observed pixels, (u, v)
interleaved per observation, times the observation's weight.

Example:
    >>> from calibration.camera import Camera, distort_normalized
    >>> K = np.array([[800.0, 0, 320], [0, 800.0, 240], [0, 0, 1]])
    >>> cams = [Camera(n, K, np.zeros(5), np.eye(3), t, (640, 480)) for n, t in
    ...         (("a", [0.0, 0, 4]), ("b", [-1.0, 0, 4]))]
    >>> X = np.array([[0.1, 0.2, 0.0], [-0.3, 0.1, 0.5], [0.2, -0.2, 0.3], [0.0, 0.0, -0.4]])
    >>> uv = np.concatenate([c.project(X) for c in cams])
    >>> obs = Observations(np.repeat([0, 1], 4), np.tile(np.arange(4), 2), uv)
    >>> res = bundle_adjust(BundleProblem(cams, obs, points=X + 0.01, fixed_cameras=[0, 1]))
    >>> bool(res.rms_final_px < 1e-6 < res.rms_initial_px)
    True
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Final

import numpy as np
import scipy.sparse as sp
from scipy.optimize import least_squares
from scipy.spatial.transform import Rotation

from calibration.bundle_types import (
    CAMERA_BLOCK,
    POSE_BLOCK,
    BundleResult,
    BundleState,
    ExtraResiduals,
    Observations,
    ParameterLayout,
    Refine,
)
from calibration.camera import Camera, distort_normalized
from core.errors import ShapeError
from core.types import check_array

__all__ = [
    "BundleProblem",
    "BundleResult",
    "BundleState",
    "ExtraResiduals",
    "Observations",
    "ParameterLayout",
    "Refine",
    "bundle_adjust",
    "project_camera_points",
    "rms_px",
]

log = logging.getLogger(__name__)

# u = fx * xd + skew * yd + cx does not depend on fy, cy; v = fy * yd + cy not on fx, cx
_U_CAMERA_COLUMNS: Final = np.array([0, 1, 2, 3, 4, 5, 6, 8, 10, 11])
_V_CAMERA_COLUMNS: Final = np.array([0, 1, 2, 3, 4, 5, 7, 9, 10, 11])
LOSSES: Final = ("linear", "huber", "soft_l1", "cauchy", "arctan")

_INTRINSIC_COLUMNS: Final = {
    Refine.FOCAL: slice(6, 8),
    Refine.PRINCIPAL_POINT: slice(8, 10),
    Refine.DISTORTION: slice(10, 12),
}


def rms_px(residuals_px: np.ndarray) -> float:
    """Root mean square reprojection error: sqrt(mean over points of |r|^2), as OpenCV reports it.

    Args:
        residuals_px: (M, 2) residuals, pixels.

    Returns:
        The RMS, pixels (0.0 for no residuals).

    Example:
        >>> rms_px(np.array([[3.0, 4.0], [0.0, 0.0]])).__round__(4)
        3.5355
    """
    if residuals_px.shape[0] == 0:
        return 0.0
    return float(np.sqrt(np.mean(np.sum(residuals_px**2, axis=1))))


def project_camera_points(
    points_cam: np.ndarray, intrinsics: np.ndarray, skew: np.ndarray, dist: np.ndarray
) -> np.ndarray:
    """Project camera-frame points to distorted pixels, one camera per point (as ``Camera.project``).

    Brown-Conrady distortion (OpenCV k1, k2, p1, p2, k3) of the normalised coordinates, then K.

    Args:
        points_cam: (M, 3) points in their camera's frame, metres.
        intrinsics: (M, 4) fx, fy, cx, cy of each point's camera, pixels.
        skew: (M,) K[0, 1] of each point's camera, pixels.
        dist: (M, 5) k1, k2, p1, p2, k3 of each point's camera.

    Returns:
        (M, 2) distorted pixels. Points at depth 0 are divided by 1e-12; behind the camera the
        result is meaningless.

    Example:
        >>> project_camera_points(np.array([[0.1, 0.0, 1.0]]), np.array([[500.0, 500, 320, 240]]),
        ...                       np.zeros(1), np.zeros((1, 5))).tolist()
        [[370.0, 240.0]]
    """
    z = points_cam[:, 2]
    z = np.where(np.abs(z) < 1e-12, 1e-12, z)
    x, y = points_cam[:, 0] / z, points_cam[:, 1] / z
    xd, yd, _, _ = distort_normalized(x, y, dist)
    fx, fy, cx, cy = intrinsics.T
    return np.stack([fx * xd + skew * yd + cx, fy * yd + cy], axis=-1)


def _rotvecs(R: np.ndarray) -> np.ndarray:
    return Rotation.from_matrix(R).as_rotvec() if len(R) else np.zeros((0, 3))


def _matrices(rvecs: np.ndarray) -> np.ndarray:
    return Rotation.from_rotvec(rvecs).as_matrix() if len(rvecs) else np.zeros((0, 3, 3))


class BundleProblem:
    """A bundle-adjustment problem: initial values, what is free, residuals and sparsity.

    Args:
        cameras: C initial cameras (their K, dist, R, t).
        observations: M observations.
        points: (N, 3) initial points, metres; default none (N = 0).
        R_pose: (Q, 3, 3) initial rotations world-from-object; default none (Q = 0).
        t_pose: (Q, 3) initial translations world-from-object, metres.
        fixed_cameras: cameras whose pose (R, t) is held (at least one for the gauge).
        fixed_intrinsics: cameras whose intrinsics are held even where ``refine`` frees them.
        fixed_poses: object poses that are held.
        fixed_points: points that are held, or True for all (a rigid object of known shape).
        refine: intrinsics to refine (for all cameras but ``fixed_intrinsics``).
        extra: additional residuals, or None.

    Raises:
        ShapeError: wrong shapes, an index out of range in the observations, or nothing free.
    """

    def __init__(
        self,
        cameras: Sequence[Camera],
        observations: Observations,
        points: np.ndarray | None = None,
        R_pose: np.ndarray | None = None,
        t_pose: np.ndarray | None = None,
        fixed_cameras: Sequence[int] = (),
        fixed_intrinsics: Sequence[int] = (),
        fixed_poses: Sequence[int] = (),
        fixed_points: Sequence[int] | bool = (),
        refine: Refine = Refine.NONE,
        extra: ExtraResiduals | None = None,
    ) -> None:
        self.cameras = tuple(cameras)
        self.obs = observations
        pts = check_array("points", np.zeros((0, 3)) if points is None else points, (None, 3), np.float64)
        R_q = check_array("R_pose", np.zeros((0, 3, 3)) if R_pose is None else R_pose, (None, 3, 3), np.float64)
        t_q = check_array("t_pose", np.zeros((0, 3)) if t_pose is None else t_pose, (R_q.shape[0], 3), np.float64)
        self.layout = ParameterLayout(len(self.cameras), R_q.shape[0], pts.shape[0])
        self._R_cam0 = np.array([c.R for c in self.cameras]).reshape(-1, 3, 3)
        lay, obs = self.layout, observations
        for name, idx, n, low in (
            ("cam_idx", obs.cam_idx, lay.n_cams, 0),
            ("point_idx", obs.point_idx, lay.n_points, 0),
            ("pose_idx", obs.pose_idx, lay.n_poses, -1),
        ):
            if len(idx) and (idx.min() < low or idx.max() >= n):
                raise ShapeError(f"observations: {name} must be in [{low}, {n}); got [{idx.min()}, {idx.max()}]")
        K = np.array([c.K for c in self.cameras]).reshape(-1, 3, 3)
        cams = np.c_[
            _rotvecs(self._R_cam0), [c.t for c in cameras], K[:, 0, 0], K[:, 1, 1], K[:, 0, 2], K[:, 1, 2],
            [c.dist[:2] for c in cameras],
        ]  # fmt: skip
        self.full0 = np.concatenate([cams.ravel(), np.c_[_rotvecs(R_q), t_q].ravel(), pts.ravel()])
        self._skew = K[:, 0, 1]
        self._dist = np.array([c.dist for c in self.cameras]).reshape(-1, 5)
        # free: the intrinsics ``refine`` names and every pose and point, less the held blocks
        held = np.zeros((lay.n_cams, CAMERA_BLOCK), dtype=bool)
        for flag, cols in _INTRINSIC_COLUMNS.items():
            held[:, cols] = flag not in refine
        held[_indices("fixed_intrinsics", fixed_intrinsics, lay.n_cams), 6:] = True
        held[_indices("fixed_cameras", fixed_cameras, lay.n_cams), :6] = True
        self.free = np.ones(lay.n_params, dtype=bool)
        self.free[lay.camera_columns(np.arange(lay.n_cams))[held]] = False
        self.free[lay.pose_columns(_indices("fixed_poses", fixed_poses, lay.n_poses)).ravel()] = False
        if fixed_points is True:
            self.free[lay.point_start :] = False
        elif fixed_points is not False:
            self.free[lay.point_columns(_indices("fixed_points", fixed_points, lay.n_points)).ravel()] = False
        # held rotations are returned exactly as given (not through a rotation-vector round trip)
        self._held_cam = ~self.free[: lay.pose_start].reshape(-1, CAMERA_BLOCK)[:, :3].any(axis=1)
        self._R_pose0 = R_q
        self._held_pose = ~self.free[lay.pose_start : lay.point_start].reshape(-1, POSE_BLOCK)[:, :3].any(axis=1)
        if not self.free.any():
            raise ShapeError("bundle adjustment: every parameter is fixed; nothing to solve")
        self.extra = extra
        if extra is not None:
            sparsity = sp.csr_matrix(extra.sparsity, dtype=bool)
            if sparsity.shape[1] != self.layout.n_params:
                raise ShapeError(f"extra sparsity must be (E, {self.layout.n_params}); got {sparsity.shape}")
            self._extra_sparsity = sparsity

    @property
    def x0(self) -> np.ndarray:
        """(F,) initial values of the free parameters."""
        return self.full0[self.free].copy()

    def unpack(self, x: np.ndarray) -> BundleState:
        """The unknowns of the free vector ``x`` ((F,)) as arrays."""
        lay, full = self.layout, self.full0.copy()
        full[self.free] = x
        cams = full[: lay.pose_start].reshape(-1, CAMERA_BLOCK)
        poses = full[lay.pose_start : lay.point_start].reshape(-1, POSE_BLOCK)
        dist = self._dist.copy()
        dist[:, :2] = cams[:, 10:12]
        R_cam, R_pose = _matrices(cams[:, :3]), _matrices(poses[:, :3])
        R_cam[self._held_cam] = self._R_cam0[self._held_cam]
        R_pose[self._held_pose] = self._R_pose0[self._held_pose]
        return BundleState(
            R_cam=R_cam,
            t_cam=cams[:, 3:6],
            intrinsics=cams[:, 6:10],
            dist=dist,
            R_pose=R_pose,
            t_pose=poses[:, 3:],
            points=full[lay.point_start :].reshape(-1, 3),
        )

    def reprojection_residuals(self, state: BundleState) -> np.ndarray:
        """(M, 2) projected minus observed pixels, unweighted."""
        obs = self.obs
        X = state.points[obs.point_idx]
        through = obs.pose_idx >= 0
        if through.any():
            q = obs.pose_idx[through]
            X = X.copy()
            X[through] = np.einsum("mij,mj->mi", state.R_pose[q], X[through]) + state.t_pose[q]
        c = obs.cam_idx
        Xc = np.einsum("mij,mj->mi", state.R_cam[c], X) + state.t_cam[c]
        return project_camera_points(Xc, state.intrinsics[c], self._skew[c], state.dist[c]) - obs.uv_px

    def residuals(self, x: np.ndarray) -> np.ndarray:
        """(2M + E,) weighted reprojection residuals (u, v interleaved), then the extra ones."""
        state = self.unpack(x)
        r = (self.reprojection_residuals(state) * self.obs.weights[:, None]).ravel()
        if self.extra is None:
            return r
        return np.concatenate([r, np.asarray(self.extra.fn(state), dtype=np.float64).ravel()])

    def full_sparsity(self) -> sp.csr_matrix:
        """(2M + E, n_params) boolean Jacobian pattern over the full parameter vector."""
        lay, obs = self.layout, self.obs
        m = len(obs)
        rows, cols = [], []
        for axis, cam_cols in enumerate((_U_CAMERA_COLUMNS, _V_CAMERA_COLUMNS)):  # u rows, then v rows
            blocks = [lay.camera_columns(obs.cam_idx)[:, cam_cols], lay.point_columns(obs.point_idx)]
            through = np.flatnonzero(obs.pose_idx >= 0)
            blocks.append(lay.pose_columns(obs.pose_idx[through]))
            idx = [np.arange(m), np.arange(m), through]
            rows += [np.repeat(2 * i + axis, b.shape[1]) for i, b in zip(idx, blocks, strict=True)]
            cols += [b.ravel() for b in blocks]
        row, col = np.concatenate(rows), np.concatenate(cols)
        J = sp.csr_matrix((np.ones(row.size, dtype=bool), (row, col)), shape=(2 * m, lay.n_params))
        if self.extra is not None:
            J = sp.vstack([J, self._extra_sparsity], format="csr")
        return J

    def jac_sparsity(self) -> sp.csr_matrix:
        """(2M + E, F) boolean Jacobian pattern over the free parameters (``least_squares``'s)."""
        return self.full_sparsity()[:, np.flatnonzero(self.free)].tocsr()

    def result(self, x: np.ndarray) -> tuple[tuple[Camera, ...], BundleState]:
        """The cameras and unpacked state for the free vector ``x``."""
        state = self.unpack(x)
        cams = []
        for i, cam in enumerate(self.cameras):
            fx, fy, cx, cy = state.intrinsics[i]
            K = np.array([[fx, cam.K[0, 1], cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
            cams.append(Camera(cam.name, K, state.dist[i], state.R_cam[i], state.t_cam[i], cam.size))
        return tuple(cams), state


def _indices(name: str, idx: Sequence[int], n: int) -> np.ndarray:
    arr = np.asarray(list(idx), dtype=np.int64)
    if arr.size and (arr.min() < 0 or arr.max() >= n):
        raise ShapeError(f"{name} must be indices in [0, {n}); got {arr.tolist()}")
    return arr


def bundle_adjust(
    problem: BundleProblem, *, loss: str = "soft_l1", f_scale_px: float = 1.0, max_nfev: int | None = None,
    tol: float = 1e-8,
) -> BundleResult:  # fmt: skip
    """Solve a bundle-adjustment problem by robust sparse least squares.

    Minimises sum rho((w_m * (project(cam, X_m) - uv_m))^2) (plus any extra residuals) over the
    problem's free parameters with ``scipy.optimize.least_squares(method="trf", x_scale="jac",
    jac_sparsity=...)`` (Triggs et al. 2000; Hartley & Zisserman §18.1). The gauge is the
    caller's: hold at least one camera (and, with free points and no metric object, a second
    camera or a point pair for the scale).

    Args:
        problem: the cameras, observations, unknowns and what is held (:class:`BundleProblem`).
        loss: ``least_squares`` loss: "linear", "huber", "soft_l1", "cauchy" or "arctan".
            "soft_l1" (default) converges in tens of iterations here; SciPy's trust region needs
            hundreds to thousands with "huber" and "cauchy" on board problems (measured).
        f_scale_px: the robust loss's inlier scale, pixels (residuals above it are down-weighted).
        max_nfev: limit on residual evaluations (default: ``least_squares``'s).
        tol: ``ftol``, ``xtol`` and ``gtol``.

    Returns:
        The refined unknowns, residuals and RMS before/after (:class:`BundleResult`).

    Raises:
        ShapeError: an unknown loss or a non-positive scale.
    """
    if loss not in LOSSES:
        raise ShapeError(f"loss must be one of {', '.join(LOSSES)}; got {loss!r}")
    if not f_scale_px > 0:
        raise ShapeError(f"f_scale_px must be positive; got {f_scale_px}")
    x0 = problem.x0
    rms0 = rms_px(problem.reprojection_residuals(problem.unpack(x0)))
    sol = least_squares(
        problem.residuals, x0, jac_sparsity=problem.jac_sparsity(), method="trf", loss=loss,
        f_scale=f_scale_px, x_scale="jac", ftol=tol, xtol=tol, gtol=tol, max_nfev=max_nfev,
    )  # fmt: skip
    cams, state = problem.result(sol.x)
    residuals = problem.reprojection_residuals(state)
    rms1 = rms_px(residuals)
    log.info(
        "bundle adjustment: %d cameras, %d poses, %d points, %d observations, %d free parameters; "
        "RMS %.3f -> %.3f px in %d iterations (%s)",
        len(cams), problem.layout.n_poses, problem.layout.n_points, len(problem.obs), x0.size, rms0, rms1,
        sol.njev or 0, sol.message,
    )  # fmt: skip
    return BundleResult(
        cams, state.R_pose, state.t_pose, state.points, residuals, rms0, rms1, int(sol.nfev), int(sol.njev or 0),
        int(sol.status), str(sol.message),
    )  # fmt: skip
