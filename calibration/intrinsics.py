"""Camera intrinsics (K and lens distortion) from views of a planar board (Zhang 2000).

Zhang, "A flexible new technique for camera calibration", IEEE TPAMI 22(11), 2000: a closed-form
start from the board homographies, then Levenberg-Marquardt on the reprojection error over K,
the Brown-Conrady distortion and one board pose per view; here ``cv2.calibrateCamera``, which
implements it. Around it: frame selection (a video gives hundreds of near-identical views; a few
dozen spread over the image and over board tilts constrain the lens as well and keep the solve
fast), one round of outlier-view rejection, and checks that the data can determine a lens.

Example:
    >>> from calibration.board import Board, BoardView
    >>> from calibration.camera import Camera
    >>> from scipy.spatial.transform import Rotation
    >>> cam = Camera("c0", [[800.0, 0, 320], [0, 800, 240], [0, 0, 1]], np.zeros(5), np.eye(3), np.zeros(3), (640, 480))
    >>> board = Board("checkerboard", 9, 6, 0.04)
    >>> views = []
    >>> for i, rv in enumerate([[0.3, 0, 0], [-0.3, 0.2, 0], [0, 0.4, 0.1], [0.2, -0.3, 0], [-0.2, -0.2, 0.3]]):
    ...     R = Rotation.from_rotvec(rv).as_matrix()
    ...     X = board.object_points() - [0.16, 0.1, 0]
    ...     uv = cam.project(X @ R.T + [0.05 * i - 0.1, 0.0, 0.9])
    ...     views.append(BoardView("c0", i, np.arange(54), uv, board.object_points()))
    >>> res = calibrate_intrinsics(views, (640, 480), min_coverage=0.05)
    >>> round(float(res.K[0, 0]), 2), res.rms_px < 1e-3, res.n_views_used
    (800.0, True, 5)
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import cv2
import numpy as np

from calibration.board import BoardView
from calibration.camera import Camera
from core.errors import CalibrationError

__all__ = [
    "DEFAULT_MAX_VIEWS",
    "DEFAULT_MIN_COVERAGE",
    "DEFAULT_MIN_VIEWS",
    "IntrinsicsResult",
    "calibrate_intrinsics",
    "coverage_mask",
    "select_views",
]

log = logging.getLogger(__name__)

DEFAULT_MAX_VIEWS: Final = 40
DEFAULT_MIN_VIEWS: Final = 4
DEFAULT_MIN_COVERAGE: Final = 0.15
COVERAGE_CELLS: Final = 32  # cells along the image's longer side for coverage masks
_MIN_POINTS: Final = 6  # corners a view needs to constrain its own pose and the lens
_TERM: Final = (cv2.TERM_CRITERIA_COUNT + cv2.TERM_CRITERIA_EPS, 100, 1e-12)


@dataclass(frozen=True, slots=True)
class IntrinsicsResult:
    """One camera's intrinsics and how well the board views fit them.

    Attributes:
        camera: camera name.
        K: (3, 3) intrinsic matrix, pixels.
        dist: (5,) distortion k1, k2, p1, p2, k3 (OpenCV).
        size: (width, height) image size, pixels.
        rms_px: RMS reprojection error over all corners of the views used, pixels.
        per_view_rms_px: (V,) RMS reprojection error of each view used, pixels.
        frames: (V,) int64 frame indices of the views used, in the order of ``per_view_rms_px``.
        n_views_used: V.
        n_views_given: views passed in (before selection and outlier rejection).
        n_outliers: views dropped as outliers (per-view RMS far above the median).
        coverage: fraction of the image covered by the boards of the views used (their corners'
            convex hulls on a coarse grid of cells), 0..1.
        std_px: (4,) standard deviations of fx, fy, cx, cy estimated by the solver, pixels.
    """

    camera: str
    K: np.ndarray
    dist: np.ndarray
    size: tuple[int, int]
    rms_px: float
    per_view_rms_px: np.ndarray
    frames: np.ndarray
    n_views_used: int
    n_views_given: int
    n_outliers: int
    coverage: float
    std_px: np.ndarray

    def __post_init__(self) -> None:
        for name in ("K", "dist", "per_view_rms_px", "frames", "std_px"):
            arr = np.array(getattr(self, name), dtype=np.int64 if name == "frames" else np.float64)
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)

    def to_camera(self, R: np.ndarray | None = None, t: np.ndarray | None = None) -> Camera:
        """The camera with these intrinsics and pose (R, t), identity and zero when not given.

        Args:
            R: (3, 3) rotation camera-from-world, or None for identity.
            t: (3,) translation camera-from-world, metres, or None for zeros.
        """
        R = np.eye(3) if R is None else R
        t = np.zeros(3) if t is None else t
        return Camera(self.camera, self.K, self.dist, R, t, self.size)


def calibrate_intrinsics(
    views: Sequence[BoardView],
    size: tuple[int, int],
    *,
    max_views: int = DEFAULT_MAX_VIEWS,
    min_views: int = DEFAULT_MIN_VIEWS,
    min_coverage: float = DEFAULT_MIN_COVERAGE,
    fix_k3: bool = True,
    zero_tangent: bool = False,
    outlier_factor: float = 3.0,
    outlier_min_px: float = 1.0,
) -> IntrinsicsResult:
    """Calibrate one camera's K and distortion from board views (Zhang 2000, ``cv2.calibrateCamera``).

    Steps: drop views with fewer than 6 corners; choose up to ``max_views`` views that spread the
    board over the image and over tilts (:func:`select_views`); calibrate; drop the views whose
    RMS exceeds ``max(outlier_factor * median, outlier_min_px)`` and calibrate once more.

    Model: pinhole K (fx, fy, cx, cy, no skew) and Brown-Conrady distortion k1, k2, p1, p2, k3.
    ``fix_k3`` (default) keeps k3 = 0: with a few dozen views of an ordinary lens it is poorly
    constrained and trades off against k1, k2 and f; free it for wide-angle lenses with views in
    the image corners. ``zero_tangent`` keeps p1 = p2 = 0.

    Args:
        views: board views of one camera (e.g. from :func:`calibration.board.detect_board`).
        size: (width, height) of the images, pixels.
        max_views: most views used in the solve.
        min_views: fewest usable views accepted (3 is Zhang's minimum for K without distortion).
        min_coverage: smallest fraction of the image the boards of the chosen views must cover.
        fix_k3: keep k3 = 0.
        zero_tangent: keep p1 = p2 = 0.
        outlier_factor: a view is an outlier above this multiple of the median per-view RMS...
        outlier_min_px: ...and above this RMS, pixels.

    Returns:
        The intrinsics, with RMS errors, views used and coverage.

    Raises:
        CalibrationError: views of several cameras, corners outside the image, fewer than
            ``min_views`` usable views, corners covering less than ``min_coverage`` of the image,
            or a solve that fails or gives a degenerate K.
    """
    width, height = (int(v) for v in size)
    if width <= 0 or height <= 0:
        raise CalibrationError(f"image size must be positive (width, height); got {size}")
    names = sorted({v.camera for v in views})
    if len(names) > 1:
        raise CalibrationError(f"views of one camera expected; got cameras {names}")
    name = names[0] if names else "?"
    for v in views:
        uv = v.image_px
        if len(v) and (uv.min() < -0.5 or uv[:, 0].max() > width - 0.5 or uv[:, 1].max() > height - 0.5):
            raise CalibrationError(
                f"camera {name!r} frame {v.frame}: corners lie outside the {width}x{height} image; wrong --size?"
            )
    usable = [v for v in views if len(v) >= _MIN_POINTS]
    if len(usable) < min_views:
        raise CalibrationError(
            f"camera {name!r}: the board was found in {len(usable)} usable views; need at least {min_views}"
        )
    chosen = select_views(usable, (width, height), max_views)
    coverage = float(coverage_mask(chosen, (width, height)).mean())
    if coverage < min_coverage:
        raise CalibrationError(
            f"camera {name!r}: the board covers only {coverage:.0%} of the {width}x{height} image "
            f"(need {min_coverage:.0%}); show it near the edges and corners too"
        )
    flags = (cv2.CALIB_FIX_K3 if fix_k3 else 0) | (cv2.CALIB_ZERO_TANGENT_DIST if zero_tangent else 0)
    result = _solve(chosen, (width, height), flags, name)
    per_view = result[4]
    limit = max(outlier_factor * float(np.median(per_view)), outlier_min_px)
    keep = [v for v, e in zip(chosen, per_view, strict=True) if e <= limit]
    n_outliers = len(chosen) - len(keep)
    if n_outliers and len(keep) >= min_views:
        log.info("camera %s: dropping %d outlier views (RMS above %.2f px)", name, n_outliers, limit)
        chosen, result = keep, _solve(keep, (width, height), flags, name)
        coverage = float(coverage_mask(chosen, (width, height)).mean())
    else:
        n_outliers = 0
    rms, K, dist, std, per_view = result
    log.info(
        "camera %s: %d of %d views, RMS %.3f px, fx %.1f fy %.1f cx %.1f cy %.1f, coverage %.0f%%",
        name, len(chosen), len(views), rms, K[0, 0], K[1, 1], K[0, 2], K[1, 2], 100 * coverage,
    )  # fmt: skip
    return IntrinsicsResult(
        camera=name, K=K, dist=dist, size=(width, height), rms_px=rms, per_view_rms_px=per_view,
        frames=np.array([v.frame for v in chosen], dtype=np.int64), n_views_used=len(chosen),
        n_views_given=len(views), n_outliers=n_outliers, coverage=coverage, std_px=std,
    )  # fmt: skip


def _solve(
    views: Sequence[BoardView], size: tuple[int, int], flags: int, name: str
) -> tuple[float, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``cv2.calibrateCameraExtended``: (rms px, K (3, 3), dist (5,), std (4,) px, per-view RMS (V,) px)."""
    obj = [v.object_m.astype(np.float32).reshape(-1, 1, 3) for v in views]
    img = [v.image_px.astype(np.float32).reshape(-1, 1, 2) for v in views]
    try:
        rms, K, dist, _r, _t, std_int, _std_ext, per_view = cv2.calibrateCameraExtended(
            obj, img, size, None, None, flags=flags, criteria=_TERM
        )
    except cv2.error as exc:
        raise CalibrationError(f"camera {name!r}: calibration failed ({str(exc).strip().splitlines()[-1]})") from None
    K = np.asarray(K, dtype=np.float64)
    if not (np.isfinite(K).all() and K[0, 0] > 0 and K[1, 1] > 0 and math.isfinite(rms)):
        raise CalibrationError(f"camera {name!r}: calibration gave a degenerate camera matrix; add more varied views")
    dist5 = np.zeros(5)
    d = np.asarray(dist, dtype=np.float64).reshape(-1)
    dist5[: min(5, d.size)] = d[:5]
    std = np.asarray(std_int, dtype=np.float64).reshape(-1)[:4]
    return float(rms), K, dist5, std, np.asarray(per_view, dtype=np.float64).reshape(-1)


def coverage_mask(views: Sequence[BoardView], size: tuple[int, int], cells: int = COVERAGE_CELLS) -> np.ndarray:
    """Cells of a coarse grid over the image covered by the boards of ``views``.

    Each view covers the convex hull of its corners. The grid has ``cells`` cells along the longer
    image side and as many square-ish cells along the other.

    Args:
        views: board views.
        size: (width, height) image size, pixels.
        cells: cells along the longer side.

    Returns:
        (rows, cols) bool mask, True where a board covers the cell's centre.

    Example:
        >>> v = BoardView("c", 0, [0, 1, 2, 3], [[0, 0], [319, 0], [319, 479], [0, 479]], np.zeros((4, 3)))
        >>> m = coverage_mask([v], (640, 480), cells=8)
        >>> m.shape, float(m.mean())
        ((6, 8), 0.5)
    """
    mask = _empty_mask(size, cells)
    for v in views:
        _fill_hull(mask, v.image_px, size)
    return mask.astype(bool)


def _empty_mask(size: tuple[int, int], cells: int = COVERAGE_CELLS) -> np.ndarray:
    """(rows, cols) uint8 zeros: ``cells`` cells along the longer image side, square-ish cells."""
    width, height = size
    step = max(width, height) / cells
    return np.zeros((max(1, round(height / step)), max(1, round(width / step))), np.uint8)


def _fill_hull(mask: np.ndarray, image_px: np.ndarray, size: tuple[int, int]) -> None:
    """Mark the cells of ``mask`` whose centres lie inside the convex hull of ``image_px`` (N, 2) px."""
    if len(image_px) < 3:
        return
    scale = np.array([mask.shape[1] / size[0], mask.shape[0] / size[1]])
    pts = (image_px + 0.5) * scale - 0.5  # cell coordinates: cell centres are integers
    hull = cv2.convexHull(pts.astype(np.float32)).reshape(-1, 2).astype(np.float64)
    if len(hull) < 3:
        return
    ys, xs = np.mgrid[0 : mask.shape[0], 0 : mask.shape[1]]
    centres = np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float64)
    edges = np.roll(hull, -1, axis=0) - hull
    rel = centres[:, None, :] - hull[None, :, :]
    cross = edges[None, :, 0] * rel[..., 1] - edges[None, :, 1] * rel[..., 0]
    inside = np.all(cross >= -1e-9, axis=1) | np.all(cross <= 1e-9, axis=1)
    mask.ravel()[inside] = 1


def select_views(views: Sequence[BoardView], size: tuple[int, int], max_views: int) -> list[BoardView]:
    """Choose up to ``max_views`` views that spread the board over the image and over tilts.

    Greedy: start from the view whose board covers most of the image; then repeatedly add the view
    that maximises ``new cells / most new cells of any candidate + 0.5 * min(angle to the chosen
    views' board normals, 45 deg) / 45 deg``. Board normals come from a homography decomposition
    with a rough K (f = image diagonal, centred principal point), which is enough to tell tilts
    apart. Views are returned in frame order.

    Args:
        views: candidate views (at least 4 corners each, not all on a line).
        size: (width, height) image size, pixels.
        max_views: most views returned.

    Returns:
        The chosen views, ``min(max_views, len(views))`` of them.
    """
    if len(views) <= max_views:
        return list(views)
    cover = np.array([coverage_mask([v], size).ravel() for v in views])
    normals = _board_normals(views, size)
    remaining = list(range(len(views)))
    first = int(np.argmax(cover.sum(axis=1)))
    chosen = [first]
    remaining.remove(first)
    covered = cover[first].copy()
    while len(chosen) < max_views and remaining:
        rem = np.array(remaining)
        gain = (cover[rem] & ~covered).sum(axis=1).astype(np.float64)
        gain /= max(gain.max(), 1.0)
        cosines = np.clip(np.abs(normals[rem] @ normals[chosen].T), 0.0, 1.0)
        novelty = np.minimum(np.degrees(np.arccos(cosines.max(axis=1))), 45.0) / 45.0
        best = int(rem[np.argmax(gain + 0.5 * novelty)])
        chosen.append(best)
        remaining.remove(best)
        covered |= cover[best]
    return [views[i] for i in sorted(chosen, key=lambda i: views[i].frame)]


def _board_normals(views: Sequence[BoardView], size: tuple[int, int]) -> np.ndarray:
    """(V, 3) unit board normals in the camera frame of a rough pinhole camera (see select_views)."""
    width, height = size
    f = math.hypot(width, height)
    K_inv = np.linalg.inv(np.array([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1.0]]))
    out = np.tile([0.0, 0.0, 1.0], (len(views), 1))
    for i, v in enumerate(views):
        H, _ = cv2.findHomography(v.object_m[:, :2], v.image_px, 0)
        if H is None:
            continue
        M = K_inv @ H  # ~ [r1 r2 t] up to scale (Zhang 2000, section 3.1)
        n = np.cross(M[:, 0], M[:, 1])
        norm = np.linalg.norm(n)
        if norm > 0:
            out[i] = n / norm
    return out
