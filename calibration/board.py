"""Calibration boards (checkerboard, ChArUco): their geometry and their detections in images.

Convention: the board frame is OpenCV's. Corner ``i`` of a checkerboard with ``cols`` x ``rows``
inner corners lies at ``((i % cols) * square_m, (i // cols) * square_m, 0)``: x along a row of
corners, y down the rows, z into the board (a camera sees the printed face from the board's -z
side). ChArUco corners are OpenCV's ``CharucoBoard.getChessboardCorners()``: the board's outer
top-left corner is the origin and inner corner ``i`` lies at ``((i % (cols - 1) + 1) * square_m,
(i // (cols - 1) + 1) * square_m, 0)``.

A checkerboard's corner labelling is defined up to the board's symmetries (OpenCV may start from
either end); every labelling it returns is the grid seen through a rigid motion of the plane, so
intrinsics are unaffected. ChArUco ids are absolute (its markers are coded).

Example:
    >>> board = parse_board("checkerboard:4x7:0.06")
    >>> board.n_corners, board.object_points()[[0, 1, 4]].tolist()
    (28, [[0.0, 0.0, 0.0], [0.06, 0.0, 0.0], [0.0, 0.06, 0.0]])
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Final

import cv2
import numpy as np

from core.errors import CalibrationError, ShapeError

__all__ = [
    "BOARD_SPEC_HELP",
    "DEFAULT_SEARCH_PX",
    "MIN_CHARUCO_CORNERS",
    "Board",
    "BoardView",
    "detect_board",
    "parse_board",
]

KINDS: Final = ("checkerboard", "charuco")
MIN_CHARUCO_CORNERS: Final = 6
DEFAULT_SEARCH_PX: Final = 960
BOARD_SPEC_HELP: Final = (
    "checkerboard:COLSxROWS:SQUARE_M (inner corners, e.g. checkerboard:4x7:0.06) or "
    "charuco:COLSxROWS:SQUARE_M:MARKER_M:DICT (squares, e.g. charuco:5x7:0.04:0.03:DICT_4X4_50)"
)
_MAX_BEND: Final = 0.35  # |a - 2b + c| / (|b - a| + |c - b|) allowed along a row or column of corners
_SUBPIX_CRITERIA: Final = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_COUNT, 40, 1e-3)
_FINE_SQUARE_PX: Final = 40.0  # the full-resolution pass enlarges smaller squares to this size...
_MAX_ZOOM: Final = 4.0  # ...by at most this factor


@dataclass(frozen=True, slots=True)
class BoardView:
    """The corners of one calibration board found in one image.

    Attributes:
        camera: camera name.
        frame: frame index (or image index in a folder) the corners come from.
        ids: (N,) int64 corner ids of the board (row-major corner index; ChArUco corner ids).
        image_px: (N, 2) corner positions, distorted pixels as found in the image.
        object_m: (N, 3) the same corners in the board frame, metres (board plane z = 0).

    Raises:
        ShapeError: arrays of inconsistent lengths or wrong shapes.
    """

    camera: str
    frame: int
    ids: np.ndarray
    image_px: np.ndarray
    object_m: np.ndarray

    def __post_init__(self) -> None:
        ids = np.asarray(self.ids, dtype=np.int64).reshape(-1)
        image_px = np.asarray(self.image_px, dtype=np.float64)
        object_m = np.asarray(self.object_m, dtype=np.float64)
        n = ids.shape[0]
        if image_px.shape != (n, 2) or object_m.shape != (n, 3):
            raise ShapeError(
                f"board view {self.camera!r} frame {self.frame}: ids (N,), image_px (N, 2) and object_m (N, 3) "
                f"must agree; got {ids.shape}, {image_px.shape}, {object_m.shape}"
            )
        for name, arr in (("ids", ids), ("image_px", image_px), ("object_m", object_m)):
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)

    def __len__(self) -> int:
        return int(self.ids.shape[0])


@dataclass(frozen=True, slots=True)
class Board:
    """A planar calibration board.

    Attributes:
        kind: "checkerboard" or "charuco".
        cols: checkerboard: inner corners per row; ChArUco: squares along x.
        rows: checkerboard: inner corners per column; ChArUco: squares along y.
        square_m: side of one square, metres.
        marker_m: ChArUco: side of one ArUco marker, metres (< square_m); None for a checkerboard.
        dictionary: ChArUco: OpenCV ArUco dictionary name, e.g. "DICT_4X4_50"; None for a checkerboard.

    Raises:
        CalibrationError: unknown kind, too few corners or squares, non-positive sizes, a marker not
            smaller than its square, an unknown dictionary or one with too few markers for the board.

    Example:
        >>> Board("charuco", 5, 7, 0.04, 0.03, "DICT_4X4_50").n_corners
        24
    """

    kind: str
    cols: int
    rows: int
    square_m: float
    marker_m: float | None = None
    dictionary: str | None = None

    def __post_init__(self) -> None:
        where = f"board {self.kind}:{self.cols}x{self.rows}"
        if self.kind not in KINDS:
            raise CalibrationError(f"board kind must be one of {', '.join(KINDS)}; got {self.kind!r}")
        if int(self.cols) != self.cols or int(self.rows) != self.rows or min(self.cols, self.rows) < 3:
            what = "inner corners" if self.kind == "checkerboard" else "squares"
            raise CalibrationError(f"{where}: needs at least 3 x 3 {what}; got {self.cols} x {self.rows}")
        if not (math.isfinite(self.square_m) and self.square_m > 0):
            raise CalibrationError(f"{where}: square_m must be a positive length in metres; got {self.square_m}")
        object.__setattr__(self, "cols", int(self.cols))
        object.__setattr__(self, "rows", int(self.rows))
        object.__setattr__(self, "square_m", float(self.square_m))
        if self.kind == "checkerboard":
            if self.marker_m is not None or self.dictionary is not None:
                raise CalibrationError(f"{where}: a checkerboard has no marker_m or dictionary")
            return
        if self.marker_m is None or not (math.isfinite(self.marker_m) and 0 < self.marker_m < self.square_m):
            raise CalibrationError(f"{where}: marker_m must be in (0, square_m = {self.square_m}); got {self.marker_m}")
        object.__setattr__(self, "marker_m", float(self.marker_m))
        code = getattr(cv2.aruco, str(self.dictionary), None) if str(self.dictionary).startswith("DICT_") else None
        if not isinstance(code, int):
            raise CalibrationError(f"{where}: unknown ArUco dictionary {self.dictionary!r}; e.g. DICT_4X4_50")
        available = cv2.aruco.getPredefinedDictionary(code).bytesList.shape[0]
        if self.cols * self.rows // 2 > available:
            raise CalibrationError(
                f"{where}: needs {self.cols * self.rows // 2} markers but {self.dictionary} has {available}"
            )

    @property
    def n_corners(self) -> int:
        """Number of corners (checkerboard: cols x rows; ChArUco: (cols - 1) x (rows - 1))."""
        if self.kind == "checkerboard":
            return self.cols * self.rows
        return (self.cols - 1) * (self.rows - 1)

    def object_points(self) -> np.ndarray:
        """All corners in the board frame; row ``i`` is corner id ``i``.

        Returns:
            (N, 3) corner positions, metres, z = 0 (see the module's convention).
        """
        n_x = self.cols if self.kind == "checkerboard" else self.cols - 1
        ids = np.arange(self.n_corners)
        offset = 0.0 if self.kind == "checkerboard" else self.square_m
        xy = np.stack([ids % n_x, ids // n_x], axis=1) * self.square_m + offset
        return np.concatenate([xy, np.zeros((ids.size, 1))], axis=1)

    def spec(self) -> str:
        """The board as a :func:`parse_board` string."""
        base = f"{self.kind}:{self.cols}x{self.rows}:{self.square_m:g}"
        return base if self.kind == "checkerboard" else f"{base}:{self.marker_m:g}:{self.dictionary}"


def parse_board(spec: str) -> Board:
    """Parse a board from a command-line string.

    Formats: ``checkerboard:COLSxROWS:SQUARE_M`` (COLS x ROWS INNER corners) and
    ``charuco:COLSxROWS:SQUARE_M:MARKER_M:DICT`` (COLS x ROWS squares), lengths in metres.

    Args:
        spec: e.g. ``"checkerboard:4x7:0.06"`` or ``"charuco:5x7:0.04:0.03:DICT_4X4_50"``.

    Returns:
        The board.

    Raises:
        CalibrationError: malformed string (the message shows both formats) or invalid board.

    Example:
        >>> parse_board("charuco:5x7:0.04:0.03:DICT_4X4_50").marker_m
        0.03
    """
    parts = str(spec).strip().split(":")
    n_parts = {"checkerboard": 3, "charuco": 5}.get(parts[0].lower())
    try:
        if n_parts is None or len(parts) != n_parts:
            raise ValueError
        cols, rows = (int(v) for v in parts[1].lower().split("x"))
        numbers = [float(v) for v in parts[2:4]] if n_parts == 5 else [float(parts[2])]
    except ValueError:
        raise CalibrationError(f"board {spec!r}: expected {BOARD_SPEC_HELP}") from None
    if n_parts == 3:
        return Board("checkerboard", cols, rows, numbers[0])
    return Board("charuco", cols, rows, numbers[0], numbers[1], parts[4].upper())


def detect_board(
    image: np.ndarray, board: Board, camera: str, frame: int, *, search_px: int | None = DEFAULT_SEARCH_PX
) -> BoardView | None:
    """Find a calibration board's corners in one image.

    Checkerboard: ``cv2.findChessboardCornersSB`` (Duda & Frese 2018, "Accurate detection and
    localization of checkerboard corners for calibration", exhaustive search) on the image shrunk
    so its longer side is at most ``search_px``, then again on the board's region at full
    resolution, enlarged so that squares span about 40 px (its corners are biased by up to 0.4 px
    on 20 px squares, 0.03 px once enlarged); where that second pass fails or disagrees,
    ``cv2.cornerSubPix`` refines the first pass's corners instead. On the Pose2Sim 1088x1920
    board images this finds the board in 26 of 28 images (the classic ``findChessboardCorners``
    finds 24) with a calibration RMS of 0.11-0.15 px (0.19-0.22 px with ``cornerSubPix``). A
    detection whose corners do not form a plausible grid (a row or column bending by more than
    35% of its spacing, or cells of inconsistent orientation) is refused: OpenCV 5's detector
    occasionally returns scrambled corners. All ``cols * rows`` corners are required.

    ChArUco: ``cv2.aruco.CharucoDetector`` (Garrido-Jurado et al. 2014) at full resolution; at
    least :data:`MIN_CHARUCO_CORNERS` corners that are not all on one line.

    Args:
        image: (H, W) uint8 grey, (H, W, 3) uint8 BGR or (H, W, 4) uint8 BGRA image.
        board: the board to look for.
        camera: camera name recorded in the view.
        frame: frame or image index recorded in the view.
        search_px: longest side, pixels, of the image the checkerboard is first searched in; None
            searches at full resolution. Boards whose squares shrink below about 10 pixels at that
            scale are missed.

    Returns:
        The corners found, in distorted pixels (pixel (0, 0) is the centre of the top-left pixel),
        or None when the board is not found or too few corners are.

    Raises:
        ShapeError: the image is not uint8 or not (H, W), (H, W, 3) or (H, W, 4).

    Example:
        >>> board = parse_board("checkerboard:4x5:0.03")
        >>> detect_board(np.full((120, 160), 255, np.uint8), board, "cam0", 0) is None
        True
    """
    gray = _gray(image)
    if board.kind == "charuco":
        return _detect_charuco(gray, board, camera, frame)
    corners = _detect_checkerboard(gray, board.cols, board.rows, search_px)
    if corners is None:
        return None
    ids = np.arange(board.n_corners)
    return BoardView(camera, int(frame), ids, corners, board.object_points())


def _gray(image: np.ndarray) -> np.ndarray:
    img = np.asarray(image)
    if img.dtype != np.uint8 or not (img.ndim == 2 or (img.ndim == 3 and img.shape[2] in (3, 4))):
        raise ShapeError(f"image must be uint8 (H, W), (H, W, 3) or (H, W, 4); got {img.dtype} {img.shape}")
    if img.ndim == 2:
        return np.ascontiguousarray(img)
    return cv2.cvtColor(img, cv2.COLOR_BGR2GRAY if img.shape[2] == 3 else cv2.COLOR_BGRA2GRAY)


def _detect_checkerboard(gray: np.ndarray, cols: int, rows: int, search_px: int | None) -> np.ndarray | None:
    """(cols * rows, 2) corners, full-resolution pixels, or None."""
    height, width = gray.shape
    scale = 1.0 if search_px is None else min(1.0, float(search_px) / max(height, width))
    small = gray if scale == 1.0 else cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    if not cv2.checkChessboard(small, (cols, rows)):  # quick, permissive test (classic FAST_CHECK)
        return None
    coarse = _find_sb(small, cols, rows)
    if coarse is None:
        return None
    coarse = (coarse + 0.5) / scale - 0.5  # pixel centres of the small image in full-image pixels
    zoom = float(np.clip(_FINE_SQUARE_PX / _median_spacing(coarse, cols, rows), 1.0, _MAX_ZOOM))
    if scale == 1.0 and zoom == 1.0:
        return coarse
    spacing = _min_spacing(coarse, cols, rows)
    fine = _find_in_region(gray, coarse, cols, rows, 1.5 * _median_spacing(coarse, cols, rows), zoom)
    if fine is not None:
        return fine
    half = int(np.clip(0.3 * spacing, 2, 15))  # cornerSubPix window half-size, below half a square
    pts = cv2.cornerSubPix(gray, coarse.astype(np.float32).reshape(-1, 1, 2), (half, half), (-1, -1), _SUBPIX_CRITERIA)
    refined = pts.reshape(-1, 2).astype(np.float64)
    return refined if _plausible_grid(refined, cols, rows) else None


def _find_sb(gray: np.ndarray, cols: int, rows: int) -> np.ndarray | None:
    """``findChessboardCornersSB`` (exhaustive) checked for a plausible grid; (N, 2) or None."""
    found, corners = cv2.findChessboardCornersSB(gray, (cols, rows), flags=cv2.CALIB_CB_EXHAUSTIVE)
    if not found or corners is None or corners.shape[0] != cols * rows:
        return None
    pts = corners.reshape(-1, 2).astype(np.float64)
    return pts if _plausible_grid(pts, cols, rows) else None


def _find_in_region(
    gray: np.ndarray, coarse: np.ndarray, cols: int, rows: int, margin: float, zoom: float
) -> np.ndarray | None:
    """Search again around ``coarse`` (N, 2) at full resolution times ``zoom``; corners in ``coarse``'s order."""
    height, width = gray.shape
    x0, y0 = np.maximum(np.floor(coarse.min(axis=0) - margin), 0).astype(int)
    x1, y1 = np.minimum(np.ceil(coarse.max(axis=0) + margin) + 1, [width, height]).astype(int)
    crop = np.ascontiguousarray(gray[y0:y1, x0:x1])
    if zoom > 1.0:
        crop = cv2.resize(crop, None, fx=zoom, fy=zoom, interpolation=cv2.INTER_CUBIC)
    fine = _find_sb(crop, cols, rows)
    if fine is None:
        return None
    fine = (fine + 0.5) / zoom - 0.5 + [x0, y0]
    dist = np.linalg.norm(coarse[:, None, :] - fine[None, :, :], axis=2)
    match = dist.argmin(axis=1)
    tol = 0.25 * _min_spacing(coarse, cols, rows)
    if len(set(match.tolist())) != len(match) or dist[np.arange(len(match)), match].max() > tol:
        return None
    return fine[match]


def _median_spacing(pts: np.ndarray, cols: int, rows: int) -> float:
    """Median distance, pixels, between neighbouring corners of a (cols * rows, 2) grid."""
    grid = pts.reshape(rows, cols, 2)
    along = np.linalg.norm(np.diff(grid, axis=1), axis=2).ravel()
    down = np.linalg.norm(np.diff(grid, axis=0), axis=2).ravel()
    return float(np.median(np.concatenate([along, down])))


def _min_spacing(pts: np.ndarray, cols: int, rows: int) -> float:
    """Smallest distance, pixels, between neighbouring corners of a (cols * rows, 2) grid."""
    grid = pts.reshape(rows, cols, 2)
    along = np.linalg.norm(np.diff(grid, axis=1), axis=2).min()
    down = np.linalg.norm(np.diff(grid, axis=0), axis=2).min()
    return float(min(along, down))


def _plausible_grid(pts: np.ndarray, cols: int, rows: int) -> bool:
    """Whether (cols * rows, 2) corners form a grid seen in perspective (with moderate distortion).

    Along every row and column, three consecutive corners a, b, c must satisfy
    ``|a - 2b + c| <= 0.35 (|b - a| + |c - b|)`` (perspective and lens distortion bend a line of
    corners slowly), and every cell must have the same orientation (no folds).
    """
    grid = pts.reshape(rows, cols, 2)
    if _min_spacing(pts, cols, rows) < 1.0:
        return False
    for g in (grid, grid.transpose(1, 0, 2)):
        a, b, c = g[:, :-2], g[:, 1:-1], g[:, 2:]
        bend = np.linalg.norm(a - 2 * b + c, axis=2)
        span = np.linalg.norm(b - a, axis=2) + np.linalg.norm(c - b, axis=2)
        if np.any(bend > _MAX_BEND * span):
            return False
    right = grid[:-1, 1:] - grid[:-1, :-1]
    down = grid[1:, :-1] - grid[:-1, :-1]
    cross = right[..., 0] * down[..., 1] - right[..., 1] * down[..., 0]
    return bool(np.all(cross > 0) or np.all(cross < 0))


@functools.lru_cache(maxsize=8)
def _charuco_detector(board: Board) -> tuple[cv2.aruco.CharucoBoard, cv2.aruco.CharucoDetector]:
    dictionary = cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, str(board.dictionary)))
    cv_board = cv2.aruco.CharucoBoard((board.cols, board.rows), board.square_m, board.marker_m, dictionary)
    return cv_board, cv2.aruco.CharucoDetector(cv_board)


def _detect_charuco(gray: np.ndarray, board: Board, camera: str, frame: int) -> BoardView | None:
    cv_board, detector = _charuco_detector(board)
    corners, ids, _marker_corners, _marker_ids = detector.detectBoard(gray)
    if corners is None or ids is None or len(ids) < MIN_CHARUCO_CORNERS:
        return None
    if cv_board.checkCharucoCornersCollinear(ids):
        return None
    ids = ids.reshape(-1).astype(np.int64)
    order = np.argsort(ids)
    ids = ids[order]
    image_px = corners.reshape(-1, 2).astype(np.float64)[order]
    return BoardView(camera, int(frame), ids, image_px, board.object_points()[ids])
