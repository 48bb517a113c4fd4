"""Synthetic images of calibration boards seen by virtual cameras, for detection and calibration tests.

A board texture (OpenCV's ChArUco image, or a checkerboard drawn here, both with a white margin)
is mapped into each camera exactly: every output pixel is undistorted with the camera's lens
model (``cv2.undistortPoints``), intersected with the board plane through the plane-to-image
homography ``H = K [r1 r2 t]`` (Zhang 2000, section 2.2) and the texture is sampled there
(``cv2.remap``), at 2x2 samples per pixel averaged down. Blur and grey-level noise follow. The
corners of a rendered board are therefore exactly ``camera.project(corners_world)``, up to
the sampling, blur and noise, with pixel (0, 0) the centre of the top-left pixel.

Use from tests in this folder with ``from boards import render_views, random_board_poses``.

Convention: a board pose is ``(R_world_from_board (3, 3), t_world_from_board (3,) metres)``, so
``X_world = R @ X_board + t`` with ``X_board`` from :meth:`calibration.board.Board.object_points`.
The printed face is seen from the board's -z side (see calibration/board.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
from scipy.spatial.transform import Rotation

from calibration.board import Board
from calibration.camera import Camera

PX_PER_SQUARE = 64  # texture resolution
SUPERSAMPLE = 2
BACKGROUND = 110  # grey level around the board

Pose = tuple[np.ndarray, np.ndarray]


def board_texture(board: Board, px_per_square: int = PX_PER_SQUARE) -> tuple[np.ndarray, np.ndarray]:
    """The board's printed face as an image, with a white margin of one square.

    Args:
        board: checkerboard or ChArUco board.
        px_per_square: texture pixels per square.

    Returns:
        ``(texture, A)``: (h, w) uint8 image, and (3, 3) ``A`` mapping texture pixel coordinates
        (pixel centres at integers) to board-frame metres, ``[X, Y, 1] ~ A @ [u, v, 1]``.
    """
    pps, sq = int(px_per_square), board.square_m
    if board.kind == "checkerboard":
        n_x, n_y = board.cols + 1, board.rows + 1  # squares; inner corner 0 is at (0, 0) m
        ii, jj = np.meshgrid(np.arange(n_x * pps) // pps, np.arange(n_y * pps) // pps)
        squares = np.where((ii + jj) % 2 == 0, 0, 255).astype(np.uint8)
        texture = cv2.copyMakeBorder(squares, pps, pps, pps, pps, cv2.BORDER_CONSTANT, value=255)
        origin = -2.0 * sq  # board x of the texture's left edge: one square of squares, one of margin
    else:
        dictionary = cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, str(board.dictionary)))
        cv_board = cv2.aruco.CharucoBoard((board.cols, board.rows), sq, board.marker_m, dictionary)
        size = (board.cols * pps + 2 * pps, board.rows * pps + 2 * pps)
        texture = cv_board.generateImage(size, marginSize=pps, borderBits=1)
        origin = -1.0 * sq  # the board frame's origin is the outer corner of the squares
    m_per_px = sq / pps
    A = np.array([[m_per_px, 0, origin + 0.5 * m_per_px], [0, m_per_px, origin + 0.5 * m_per_px], [0, 0, 1.0]])
    return texture, A


def _ideal_pixels(camera: Camera, supersample: int, step: int = 8) -> np.ndarray:
    """(h * s, w * s, 2) float32 undistorted pixel of each supersampled output sample.

    With distortion, the displacement is computed exactly (``cv2.undistortPoints``, 20 iterations)
    every ``step`` samples, on a lattice that extends one step past the image, and interpolated
    bilinearly in between (the field is smooth: well under 0.01 px of error).
    """
    width, height = camera.size
    s = supersample
    ys, xs = np.mgrid[0 : height * s, 0 : width * s].astype(np.float32)
    pts = np.stack([(xs + 0.5) / s - 0.5, (ys + 0.5) / s - 0.5], axis=-1)
    if not camera.has_distortion:
        return pts
    gy, gx = np.mgrid[-step : height * s + 2 * step : step, -step : width * s + 2 * step : step].astype(np.float32)
    lattice = np.stack([(gx + 0.5) / s - 0.5, (gy + 0.5) / s - 0.5], axis=-1)
    criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 20, 1e-6)
    ideal = cv2.undistortPoints(lattice.reshape(-1, 1, 2), camera.K, camera.dist, P=camera.K, criteria=criteria)
    shift = ideal.reshape(lattice.shape) - lattice
    map_x, map_y = (xs + step) / step, (ys + step) / step  # sample -> lattice index
    return pts + cv2.remap(shift, map_x, map_y, cv2.INTER_LINEAR)


def render_view(
    board: Board,
    camera: Camera,
    pose: Pose,
    *,
    noise: float = 2.0,
    blur_px: float = 0.6,
    rng: np.random.Generator | None = None,
    texture: tuple[np.ndarray, np.ndarray] | None = None,
    ideal: np.ndarray | None = None,
) -> np.ndarray | None:
    """One camera's grey image of a board at a world pose.

    Args:
        board: the board.
        camera: the virtual camera (its distortion is rendered).
        pose: ``(R_world_from_board (3, 3), t_world_from_board (3,) metres)``.
        noise: standard deviation of the added Gaussian grey-level noise (0..255 scale).
        blur_px: Gaussian blur sigma, pixels (0 for none).
        rng: noise generator; None adds no noise.
        texture: :func:`board_texture` output, to reuse across calls.
        ideal: :func:`_ideal_pixels` output for ``camera``, to reuse across calls.

    Returns:
        (height, width) uint8 image, or None when the board's centre is behind the camera, the
        camera sees the board's back, or no corner projects into the image.
    """
    R_wb, t_wb = (np.asarray(a, dtype=np.float64) for a in pose)
    tex, A = board_texture(board) if texture is None else texture
    corners_w = board.object_points() @ R_wb.T + t_wb
    centre_w = corners_w.mean(axis=0)
    if camera.to_camera(centre_w[None])[0, 2] <= 0.05 or (camera.center - centre_w) @ R_wb[:, 2] >= 0:
        return None
    depth = camera.to_camera(corners_w)[:, 2]
    uv = camera.project(corners_w)
    width, height = camera.size
    inside = (depth > 0) & (uv[:, 0] >= 0) & (uv[:, 0] <= width - 1) & (uv[:, 1] >= 0) & (uv[:, 1] <= height - 1)
    if not inside.any():
        return None
    R_cb = camera.R @ R_wb
    t_cb = camera.R @ t_wb + camera.t
    H = camera.K @ np.column_stack([R_cb[:, 0], R_cb[:, 1], t_cb]) @ A  # texture px -> ideal px
    ideal = _ideal_pixels(camera, SUPERSAMPLE) if ideal is None else ideal
    H_inv = np.linalg.inv(H)
    maps = cv2.perspectiveTransform(ideal, H_inv)
    w = ideal[..., 0] * H_inv[2, 0] + ideal[..., 1] * H_inv[2, 1] + H_inv[2, 2]
    maps[w <= 1e-12] = -10.0  # the ray meets the board plane behind the camera
    big = cv2.remap(
        tex, maps[..., 0], maps[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=BACKGROUND
    )
    img = cv2.resize(big, (width, height), interpolation=cv2.INTER_AREA).astype(np.float64)
    if blur_px > 0:
        img = cv2.GaussianBlur(img, (0, 0), blur_px)
    if rng is not None and noise > 0:
        img = img + rng.normal(scale=noise, size=img.shape)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def render_views(
    board: Board,
    cameras: Sequence[Camera],
    board_poses: Sequence[Pose],
    *,
    noise: float = 2.0,
    blur_px: float = 0.6,
    rng: np.random.Generator | None = None,
) -> dict[str, list[np.ndarray | None]]:
    """Every camera's image of the board at every pose (see :func:`render_view`).

    Args:
        board: the board.
        cameras: virtual cameras (640x480 or so keeps tests fast: about 50 ms an image).
        board_poses: ``(R_world_from_board (3, 3), t_world_from_board (3,) metres)`` per frame.
        noise: Gaussian grey-level noise standard deviation.
        blur_px: Gaussian blur sigma, pixels.
        rng: noise generator; None adds no noise.

    Returns:
        ``{camera name: [image or None per pose]}``, images (height, width) uint8 grey; None where
        the board is behind the camera, turned away from it, or entirely out of view.
    """
    texture = board_texture(board)
    out: dict[str, list[np.ndarray | None]] = {}
    for cam in cameras:
        ideal = _ideal_pixels(cam, SUPERSAMPLE)
        out[cam.name] = [
            render_view(board, cam, p, noise=noise, blur_px=blur_px, rng=rng, texture=texture, ideal=ideal)
            for p in board_poses
        ]
    return out


def random_board_poses(
    board: Board,
    camera: Camera,
    n: int,
    rng: np.random.Generator,
    *,
    fill: tuple[float, float] = (0.35, 0.6),
    max_tilt_deg: float = 40.0,
    margin_px: float = 12.0,
) -> list[Pose]:
    """World poses of a board held in front of ``camera``, spread over its image, all squares in view.

    The board's centre is put on the ray of a random pixel, at the distance where the board spans
    a random fraction ``fill`` of the image width, then tilted by up to ``max_tilt_deg`` about a
    random axis in its plane and turned by up to 30 degrees about its normal. Poses whose squares
    (the outline of the checkered area) do not project at least ``margin_px`` inside the image are
    drawn again.

    Args:
        board: the board.
        camera: the camera to fill.
        n: number of poses.
        rng: random generator.
        fill: range of the fraction of the image width the board (squares) spans.
        max_tilt_deg: largest tilt of the board away from facing the camera, degrees.
        margin_px: smallest distance of the squares' outline from the image border, pixels.

    Returns:
        ``n`` poses ``(R_world_from_board, t_world_from_board)``.

    Raises:
        RuntimeError: no valid pose found after many tries (the board cannot fit the image).
    """
    width, height = camera.size
    sq = board.square_m
    lo, n_sq = (-sq, board.cols + 1) if board.kind == "checkerboard" else (0.0, board.cols)
    hi_x, hi_y = lo + n_sq * sq, lo + (board.rows + 1 if board.kind == "checkerboard" else board.rows) * sq
    outline = np.array([[lo, lo, 0], [hi_x, lo, 0], [hi_x, hi_y, 0], [lo, hi_y, 0]])
    centre_b = outline.mean(axis=0)
    span_m = n_sq * sq
    poses: list[Pose] = []
    for _ in range(200 * n):
        if len(poses) == n:
            break
        target = rng.uniform([0.15 * width, 0.15 * height], [0.85 * width, 0.85 * height])
        ray = np.linalg.solve(camera.K, [target[0], target[1], 1.0])
        depth = camera.K[0, 0] * span_m / (rng.uniform(*fill) * width)
        axis = rng.normal(size=2)
        tilt = Rotation.from_rotvec(np.radians(rng.uniform(0, max_tilt_deg)) * np.r_[axis / np.linalg.norm(axis), 0])
        spin = Rotation.from_rotvec([0.0, 0.0, np.radians(rng.uniform(-30, 30))])
        R_cb = (tilt * spin).as_matrix()  # identity: the board faces the camera, x right, y down
        t_cb = depth * ray - R_cb @ centre_b
        R_wb = camera.R.T @ R_cb
        t_wb = camera.R.T @ (t_cb - camera.t)
        outline_w = outline @ R_wb.T + t_wb
        uv = camera.project(outline_w)
        if np.all(camera.to_camera(outline_w)[:, 2] > 0.05) and np.all(
            (uv >= margin_px) & (uv <= np.array([width, height]) - 1 - margin_px)
        ):
            poses.append((R_wb, t_wb))
    if len(poses) < n:
        raise RuntimeError(f"found {len(poses)} of {n} board poses inside camera {camera.name!r}'s image")
    return poses
