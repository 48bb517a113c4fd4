"""Synthetic multi-view scenes for tests: a camera ring, standing people, projections with noise."""

from __future__ import annotations

import numpy as np

from calibration.camera import Camera, CameraRig
from core.skeleton import COCO17

# A standing COCO-17 template, metres, person-centred (x right, y forward, z up).
_TEMPLATE = np.array([
    [0.00, 0.08, 1.62], [-0.04, 0.06, 1.66], [0.04, 0.06, 1.66], [-0.08, 0.0, 1.63], [0.08, 0.0, 1.63],
    [-0.19, 0.0, 1.42], [0.19, 0.0, 1.42], [-0.24, 0.03, 1.15], [0.24, 0.03, 1.15], [-0.26, 0.08, 0.90],
    [0.26, 0.08, 0.90], [-0.11, 0.0, 0.95], [0.11, 0.0, 0.95], [-0.12, 0.03, 0.50], [0.12, 0.03, 0.50],
    [-0.12, 0.0, 0.07], [0.12, 0.0, 0.07],
])  # fmt: skip
assert _TEMPLATE.shape == (COCO17.n_joints, 3)


def look_at_camera(
    name: str, center: np.ndarray, target: np.ndarray, f: float = 1000.0, size=(1920, 1080), dist=None
) -> Camera:
    """A camera at ``center`` (m) looking at ``target`` (m), world z up, OpenCV axes."""
    z = target - center
    z = z / np.linalg.norm(z)
    x = np.cross(z, [0.0, 0.0, 1.0])
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    R = np.stack([x, y, z])
    K = np.array([[f, 0, size[0] / 2], [0, f, size[1] / 2], [0, 0, 1.0]])
    return Camera(name, K, np.zeros(5) if dist is None else dist, R, -R @ center, size)


def ring_rig(n: int = 4, radius: float = 4.0, height: float = 1.5, dist=None) -> CameraRig:
    """``n`` cameras on a circle of ``radius`` m at ``height`` m, aimed at (0, 0, 1)."""
    cams = []
    for i in range(n):
        a = 2 * np.pi * i / n + 0.3
        c = np.array([radius * np.cos(a), radius * np.sin(a), height])
        cams.append(look_at_camera(f"cam{i}", c, np.array([0.0, 0.0, 1.0]), dist=dist))
    return CameraRig(tuple(cams))


def person(position_xy, yaw: float = 0.0) -> np.ndarray:
    """(J, 3) standing person at ``position_xy`` (m) rotated by ``yaw`` (rad)."""
    c, s = np.cos(yaw), np.sin(yaw)
    Rz = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])
    return _TEMPLATE @ Rz.T + np.array([position_xy[0], position_xy[1], 0.0])


def project_people(
    rig: CameraRig, people: list[np.ndarray], rng=None, noise_px: float = 0.0
) -> list[np.ndarray]:
    """Per camera, (P, J, 3) [u, v, conf=1] distorted pixels of every person, with Gaussian noise."""
    out = []
    for cam in rig:
        poses = []
        for X in people:
            uv = cam.project(X)
            if noise_px and rng is not None:
                uv = uv + rng.normal(scale=noise_px, size=uv.shape)
            poses.append(np.concatenate([uv, np.ones((len(X), 1))], axis=1))
        out.append(np.array(poses, dtype=np.float64).reshape(len(people), -1, 3))
    return out
