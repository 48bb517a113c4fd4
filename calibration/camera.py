"""Pinhole camera model with Brown-Conrady distortion, camera rigs and fundamental matrices.

Convention: OpenCV. ``x_cam = R @ x_world + t`` (camera-from-world); camera frame x right, y down,
z forward; world frame right-handed, metres, as described by the calibration file. Pixel (0, 0) is
the centre of the top-left pixel. Distortion ``dist`` is OpenCV's (k1, k2, p1, p2, k3).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from core.errors import CalibrationError, ShapeError
from core.types import check_array

__all__ = ["Camera", "CameraRig", "distort_normalized", "fundamental_matrix"]


def distort_normalized(
    x: np.ndarray, y: np.ndarray, dist: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Brown-Conrady distortion of normalised image coordinates (OpenCV's model, ``cv2.projectPoints``).

    The one implementation of the lens model that :meth:`Camera.project` and the bundle adjusters
    use; ``r2`` and ``radial`` are returned too, for analytic Jacobians.

    Args:
        x: (N,) normalised coordinates x / z.
        y: (N,) normalised coordinates y / z.
        dist: (5,) k1, k2, p1, p2, k3 of one camera, or (N, 5) one row per point.

    Returns:
        xd (N,), yd (N,) distorted normalised coordinates; r2 (N,) = x^2 + y^2; radial (N,) =
        1 + k1 r2 + k2 r2^2 + k3 r2^3.

    Example:
        >>> xd, yd, _, _ = distort_normalized(np.array([0.5]), np.array([0.0]), np.array([0.1, 0, 0, 0, 0]))
        >>> xd.round(6).tolist()
        [0.5125]
    """
    k1, k2, p1, p2, k3 = np.moveaxis(np.asarray(dist), -1, 0)
    r2 = x * x + y * y
    radial = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    return xd, yd, r2, radial


@dataclass(frozen=True, slots=True)
class Camera:
    """One calibrated camera.

    Attributes:
        name: camera name (unique in a rig).
        K: (3, 3) intrinsic matrix, pixels.
        dist: (5,) distortion k1, k2, p1, p2, k3 (OpenCV, dimensionless); zeros for none.
        R: (3, 3) rotation camera-from-world.
        t: (3,) translation camera-from-world, metres.
        size: (width, height) image size, pixels.

    Raises:
        CalibrationError: a matrix has the wrong shape, R is not a rotation, or K is degenerate.

    Example:
        >>> K = np.diag([1000.0, 1000.0, 1.0])
        >>> cam = Camera("c0", K, np.zeros(5), np.eye(3), np.zeros(3), (1920, 1080))
        >>> cam.project(np.array([[0.0, 0.0, 2.0]])).round(3).tolist()
        [[0.0, 0.0]]
    """

    name: str
    K: np.ndarray
    dist: np.ndarray
    R: np.ndarray
    t: np.ndarray
    size: tuple[int, int]

    def __post_init__(self) -> None:
        try:
            K = check_array("K", self.K, (3, 3), np.float64)
            dist = np.zeros(5)
            d = np.asarray(self.dist, dtype=np.float64).reshape(-1)
            if d.size not in (0, 4, 5, 8):
                raise ShapeError(f"dist must have 4, 5 or 8 coefficients; got {d.size}")
            if d.size == 8 and np.any(d[5:] != 0):
                raise ShapeError("the rational distortion model (k4..k6) is not supported")
            dist[: min(5, d.size)] = d[:5]
            dist = check_array("dist", dist, (5,), np.float64)
            R = check_array("R", self.R, (3, 3), np.float64)
            t = check_array("t", np.asarray(self.t, dtype=np.float64).reshape(-1), (3,), np.float64)
        except ShapeError as exc:
            raise CalibrationError(f"camera {self.name!r}: {exc}") from None
        if not np.allclose(R @ R.T, np.eye(3), atol=1e-5) or np.linalg.det(R) < 0:
            raise CalibrationError(f"camera {self.name!r}: R must be a rotation matrix (orthonormal, det +1)")
        if K[0, 0] <= 0 or K[1, 1] <= 0 or K[2, 2] != 1:
            raise CalibrationError(f"camera {self.name!r}: K must have positive focal lengths and K[2,2] == 1")
        width, height = (int(v) for v in self.size)
        if width <= 0 or height <= 0:
            raise CalibrationError(f"camera {self.name!r}: image size must be positive; got {self.size}")
        for field, value in (("K", K), ("dist", dist), ("R", R), ("t", t), ("size", (width, height))):
            object.__setattr__(self, field, value)

    @property
    def P(self) -> np.ndarray:
        """(3, 4) projection matrix K [R | t] for undistorted pixels."""
        return self.K @ np.hstack([self.R, self.t[:, None]])

    @property
    def center(self) -> np.ndarray:
        """(3,) camera centre in the world frame, metres."""
        return -self.R.T @ self.t

    @property
    def has_distortion(self) -> bool:
        """Whether any distortion coefficient is non-zero."""
        return bool(np.any(self.dist != 0))

    def to_camera(self, points_w: np.ndarray) -> np.ndarray:
        """Transform world points to the camera frame.

        Args:
            points_w: (N, 3) world points, metres.

        Returns:
            (N, 3) camera-frame points, metres (z is depth along the optical axis).
        """
        return points_w @ self.R.T + self.t

    def project(self, points_w: np.ndarray) -> np.ndarray:
        """Project world points to distorted pixels (Brown-Conrady model, as ``cv2.projectPoints``).

        Args:
            points_w: (N, 3) world points, metres.

        Returns:
            (N, 2) pixel coordinates. Points behind the camera give meaningless pixels: check
            ``to_camera(points_w)[:, 2] > 0`` where it matters.
        """
        pc = self.to_camera(points_w)
        z = np.where(np.abs(pc[:, 2]) < 1e-12, 1e-12, pc[:, 2])
        x, y = pc[:, 0] / z, pc[:, 1] / z
        if self.has_distortion:
            x, y, _, _ = distort_normalized(x, y, self.dist)
        K = self.K
        return np.stack([K[0, 0] * x + K[0, 1] * y + K[0, 2], K[1, 1] * y + K[1, 2]], axis=-1)

    def undistort_px(self, points_px: np.ndarray) -> np.ndarray:
        """Remove lens distortion from pixel points (iterative inverse, ``cv2.undistortPoints``).

        Args:
            points_px: (N, 2) distorted pixel coordinates.

        Returns:
            (N, 2) undistorted pixel coordinates (same K), consistent with :attr:`P`.
        """
        pts = np.asarray(points_px, dtype=np.float64)
        if not self.has_distortion or pts.shape[0] == 0:
            return pts.copy()
        out = cv2.undistortPoints(
            pts.reshape(-1, 1, 2), self.K, self.dist, P=self.K,
            criteria=(cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 30, 1e-10),
        )  # fmt: skip
        return out.reshape(-1, 2)


def fundamental_matrix(cam_a: Camera, cam_b: Camera) -> np.ndarray:
    """Fundamental matrix F with ``x_b^T F x_a = 0`` for undistorted pixels (Hartley & Zisserman §9.2.2).

    ``F = K_b^-T [t_rel]_x R_rel K_a^-1`` with the relative pose b-from-a.

    Args:
        cam_a: first camera (points ``x_a``).
        cam_b: second camera (points ``x_b``).

    Returns:
        (3, 3) fundamental matrix, scaled to unit Frobenius norm. The epipolar line in view b of a
        pixel ``x_a`` (homogeneous) is ``F @ x_a``.
    """
    R_rel = cam_b.R @ cam_a.R.T
    t_rel = cam_b.t - R_rel @ cam_a.t
    tx = np.array([[0, -t_rel[2], t_rel[1]], [t_rel[2], 0, -t_rel[0]], [-t_rel[1], t_rel[0], 0]])
    F = np.linalg.inv(cam_b.K).T @ tx @ R_rel @ np.linalg.inv(cam_a.K)
    return F / np.linalg.norm(F)


@dataclass(frozen=True, slots=True)
class CameraRig:
    """An ordered set of cameras. Order is the file's and is never re-sorted.

    Raises:
        CalibrationError: duplicate camera names or no cameras.
    """

    cameras: tuple[Camera, ...]

    def __post_init__(self) -> None:
        cams = tuple(self.cameras)
        if not cams:
            raise CalibrationError("a camera rig needs at least one camera")
        names = [c.name for c in cams]
        if len(set(names)) != len(names):
            raise CalibrationError(f"camera names must be unique; got {names}")
        object.__setattr__(self, "cameras", cams)

    def __len__(self) -> int:
        return len(self.cameras)

    def __iter__(self):  # noqa: ANN204 - iterator of Camera
        return iter(self.cameras)

    def __getitem__(self, key: int | str) -> Camera:
        if isinstance(key, str):
            return self.cameras[self.index(key)]
        return self.cameras[key]

    @property
    def names(self) -> tuple[str, ...]:
        """Camera names in rig order."""
        return tuple(c.name for c in self.cameras)

    def index(self, name: str) -> int:
        """Index of a camera by name.

        Raises:
            CalibrationError: the rig has no camera of that name (the message lists the names).
        """
        try:
            return self.names.index(name)
        except ValueError:
            raise CalibrationError(f"no camera {name!r} in the calibration; cameras: {', '.join(self.names)}") from None

    def subset(self, names: list[str] | tuple[str, ...]) -> CameraRig:
        """A rig with the named cameras, in the given order.

        Raises:
            CalibrationError: a name is not in the rig.
        """
        return CameraRig(tuple(self[n] for n in names))

    def projections(self) -> np.ndarray:
        """(C, 3, 4) projection matrices for undistorted pixels."""
        return np.stack([c.P for c in self.cameras])
