"""Synthetic rigs and people for benchmarks and tests: a camera ring, standing/walking people.

Convention: world z up, metres; cameras in OpenCV axes (x right, y down, z forward).
"""

from __future__ import annotations

import numpy as np

from calibration.camera import Camera, CameraRig
from core.skeleton import COCO17

__all__ = ["look_at_camera", "person", "ring_rig", "walking_people"]

# A standing COCO-17 template, metres, person-centred (x right, y forward, z up).
_TEMPLATE = np.array([
    [0.00, 0.08, 1.62], [-0.04, 0.06, 1.66], [0.04, 0.06, 1.66], [-0.08, 0.0, 1.63], [0.08, 0.0, 1.63],
    [-0.19, 0.0, 1.42], [0.19, 0.0, 1.42], [-0.24, 0.03, 1.15], [0.24, 0.03, 1.15], [-0.26, 0.08, 0.90],
    [0.26, 0.08, 0.90], [-0.11, 0.0, 0.95], [0.11, 0.0, 0.95], [-0.12, 0.03, 0.50], [0.12, 0.03, 0.50],
    [-0.12, 0.0, 0.07], [0.12, 0.0, 0.07],
])  # fmt: skip
if _TEMPLATE.shape != (COCO17.n_joints, 3):  # pragma: no cover - a broken constant
    raise RuntimeError("template must be (17, 3)")


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


def walking_people(n: int, t: float) -> list[np.ndarray]:
    """``n`` people walking on circles of different radii at about 0.6 m/s, at time ``t`` (s).

    Returns:
        ``n`` (17, 3) world poses, metres.
    """
    out = []
    for k in range(n):
        r = 0.6 + 0.5 * k
        w = 0.6 / r * (1 if k % 2 == 0 else -1)
        a = w * t + 2.0 * k
        out.append(person((r * np.cos(a), r * np.sin(a)), a + np.pi / 2 * np.sign(w)))
    return out
