"""What a bundle adjustment (:mod:`calibration.bundle`) takes and gives: observations, layout, state, result.

Units and frames as in :mod:`calibration.bundle`: cameras camera-from-world (``x_cam = R @ x_world
+ t``, metres), rigid-object poses world-from-object, pixels distorted as ``Camera.project``.

Example:
    >>> import numpy as np
    >>> obs = Observations(np.array([0, 1]), np.array([0, 0]), np.zeros((2, 2)))
    >>> len(obs), obs.pose_idx.tolist(), obs.weights.tolist()
    (2, [-1, -1], [1.0, 1.0])
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import numpy as np
import scipy.sparse as sp

from calibration.camera import Camera
from core.errors import ShapeError
from core.types import check_array

__all__ = [
    "CAMERA_BLOCK",
    "POINT_BLOCK",
    "POSE_BLOCK",
    "BundleResult",
    "BundleState",
    "ExtraResiduals",
    "Observations",
    "ParameterLayout",
    "Refine",
]

CAMERA_BLOCK: Final = 12  # rvec (3), t (3), fx, fy, cx, cy, k1, k2
POSE_BLOCK: Final = 6  # rvec (3), t (3)
POINT_BLOCK: Final = 3


class Refine(enum.Flag):
    """Which intrinsics bundle adjustment may change (extrinsics are always refined unless fixed)."""

    NONE = 0
    FOCAL = enum.auto()  # fx, fy
    PRINCIPAL_POINT = enum.auto()  # cx, cy
    DISTORTION = enum.auto()  # k1, k2 (p1, p2, k3 stay as given)


@dataclass(frozen=True, slots=True)
class Observations:
    """2D observations of points by cameras.

    Attributes:
        cam_idx: (M,) int64 index of the observing camera.
        point_idx: (M,) int64 index of the observed point.
        uv_px: (M, 2) observed distorted pixels.
        pose_idx: (M,) int64 index of the rigid-object pose the point is seen through, -1 for a
            world point; None means all world points.
        weights: (M,) residual multipliers (1 / sigma in units of the loss scale); None means 1.

    Raises:
        ShapeError: inconsistent lengths or wrong shapes, non-finite values, negative weights.
    """

    cam_idx: np.ndarray
    point_idx: np.ndarray
    uv_px: np.ndarray
    pose_idx: np.ndarray | None = None
    weights: np.ndarray | None = None

    def __post_init__(self) -> None:
        cam_idx = check_array("cam_idx", self.cam_idx, (None,), np.int64)
        m = cam_idx.shape[0]
        object.__setattr__(self, "cam_idx", cam_idx)
        object.__setattr__(self, "point_idx", check_array("point_idx", self.point_idx, (m,), np.int64))
        object.__setattr__(self, "uv_px", check_array("uv_px", self.uv_px, (m, 2), np.float64))
        pose_idx = np.full(m, -1) if self.pose_idx is None else self.pose_idx
        object.__setattr__(self, "pose_idx", check_array("pose_idx", pose_idx, (m,), np.int64))
        weights = np.ones(m) if self.weights is None else self.weights
        weights = check_array("weights", weights, (m,), np.float64)
        if np.any(weights < 0):
            raise ShapeError("weights must be non-negative")
        object.__setattr__(self, "weights", weights)

    def __len__(self) -> int:
        return int(self.cam_idx.shape[0])


@dataclass(frozen=True, slots=True)
class ParameterLayout:
    """Where each block lives in the full parameter vector: cameras, then poses, then points.

    Attributes:
        n_cams: number of cameras C (blocks of 12: rvec, t, fx, fy, cx, cy, k1, k2).
        n_poses: number of rigid-object poses Q (blocks of 6: rvec, t).
        n_points: number of points (blocks of 3).

    Example:
        >>> lay = ParameterLayout(2, 1, 4)
        >>> lay.n_params, lay.camera_columns(1).tolist()[:2], lay.pose_columns(0).tolist()
        (42, [12, 13], [24, 25, 26, 27, 28, 29])
    """

    n_cams: int
    n_poses: int
    n_points: int

    @property
    def n_params(self) -> int:
        """Length of the full parameter vector."""
        return CAMERA_BLOCK * self.n_cams + POSE_BLOCK * self.n_poses + POINT_BLOCK * self.n_points

    @property
    def pose_start(self) -> int:
        """Column of the first pose parameter."""
        return CAMERA_BLOCK * self.n_cams

    @property
    def point_start(self) -> int:
        """Column of the first point parameter."""
        return self.pose_start + POSE_BLOCK * self.n_poses

    def camera_columns(self, cam: int | np.ndarray) -> np.ndarray:
        """Columns of camera ``cam`` ((12,)) or of cameras ``cam`` ((N, 12)), full vector."""
        return CAMERA_BLOCK * np.asarray(cam)[..., None] + np.arange(CAMERA_BLOCK)

    def pose_columns(self, pose: int | np.ndarray) -> np.ndarray:
        """Columns of pose ``pose`` ((6,)) or of poses ((N, 6)), full vector."""
        return self.pose_start + POSE_BLOCK * np.asarray(pose)[..., None] + np.arange(POSE_BLOCK)

    def point_columns(self, point: int | np.ndarray) -> np.ndarray:
        """Columns of point ``point`` ((3,)) or of points ((N, 3)), full vector."""
        return self.point_start + POINT_BLOCK * np.asarray(point)[..., None] + np.arange(POINT_BLOCK)


@dataclass(frozen=True, slots=True)
class BundleState:
    """The unknowns unpacked from a parameter vector (what an extra residual function receives).

    Attributes:
        R_cam: (C, 3, 3) rotations camera-from-world.
        t_cam: (C, 3) translations camera-from-world, metres.
        intrinsics: (C, 4) fx, fy, cx, cy, pixels.
        dist: (C, 5) distortion k1, k2, p1, p2, k3.
        R_pose: (Q, 3, 3) rotations world-from-object.
        t_pose: (Q, 3) translations world-from-object, metres.
        points: (N, 3) points, metres (world or object frame, see :class:`Observations`).
    """

    R_cam: np.ndarray
    t_cam: np.ndarray
    intrinsics: np.ndarray
    dist: np.ndarray
    R_pose: np.ndarray
    t_pose: np.ndarray
    points: np.ndarray


@dataclass(frozen=True, slots=True)
class ExtraResiduals:
    """Residuals added to the reprojection ones (priors, other sensors, people's bone lengths).

    Attributes:
        fn: maps a :class:`BundleState` to (E,) residuals (already in the loss's units: the robust
            loss and ``f_scale_px`` apply to them too).
        sparsity: (E, n_params) boolean pattern over the *full* parameter vector
            (:class:`ParameterLayout`): True where residual e may depend on parameter j.
    """

    fn: Callable[[BundleState], np.ndarray]
    sparsity: np.ndarray | sp.spmatrix


@dataclass(frozen=True, slots=True)
class BundleResult:
    """The outcome of :func:`bundle_adjust`.

    Attributes:
        cameras: refined cameras, in input order (names and sizes kept).
        R_pose: (Q, 3, 3) refined rotations world-from-object.
        t_pose: (Q, 3) refined translations world-from-object, metres.
        points: (N, 3) refined points, metres.
        residuals_px: (M, 2) final reprojection residuals (projected - observed), pixels, unweighted.
        rms_initial_px: RMS reprojection error before, pixels (:func:`rms_px`).
        rms_final_px: the same after.
        n_evaluations: residual evaluations (``nfev``).
        n_iterations: Jacobian evaluations, i.e. iterations (``njev``).
        status: ``least_squares`` status (> 0 converged, 0 iteration limit).
        message: ``least_squares`` message.
    """

    cameras: tuple[Camera, ...]
    R_pose: np.ndarray
    t_pose: np.ndarray
    points: np.ndarray
    residuals_px: np.ndarray
    rms_initial_px: float
    rms_final_px: float
    n_evaluations: int
    n_iterations: int
    status: int
    message: str
