"""Synthetic registered depth images of known 3D people, for the RGB-D lifting tests.

A person is a union of spheres: a head, a neck, a torso sheet, and capsules (spheres every quarter
radius) along the limbs, so each joint lies on a limb's axis, a limb radius behind the visible
surface. Images are z-buffered by exact ray-sphere intersection around each sphere's footprint,
over a room (floor z = 0, walls at |x|, |y| = 4 m); then a sensor's defects are added: Gaussian
noise of standard deviation ``a z^2``, flying pixels at depth discontinuities (a random mixture of
the nearer and farther depth) and random holes (0).
"""

from __future__ import annotations

import numpy as np

from calibration.camera import Camera
from core.skeleton import COCO17

ROOM_M = 4.0
_LIMBS = (  # (joint a, joint b, radius m)
    ("left_shoulder", "left_elbow", 0.045), ("right_shoulder", "right_elbow", 0.045),
    ("left_elbow", "left_wrist", 0.035), ("right_elbow", "right_wrist", 0.035),
    ("left_hip", "left_knee", 0.07), ("right_hip", "right_knee", 0.07),
    ("left_knee", "left_ankle", 0.05), ("right_knee", "right_ankle", 0.05),
)  # fmt: skip
_ENDS = (("left_wrist", 0.04), ("right_wrist", 0.04), ("left_ankle", 0.05), ("right_ankle", 0.05))


def _capsule(a: np.ndarray, b: np.ndarray, r: float) -> tuple[np.ndarray, np.ndarray]:
    n = max(2, int(np.ceil(np.linalg.norm(b - a) / (0.25 * r))) + 1)
    s = np.linspace(0.0, 1.0, n)[:, None]
    return a + s * (b - a), np.full(n, r)


def body_spheres(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Spheres (S, 3) centres, metres, and (S,) radii of a COCO-17 person (J, 3) in the world."""
    j = {name: X[COCO17.index(name)] for name in COCO17.joints}
    head = 0.5 * (j["left_ear"] + j["right_ear"])
    neck = 0.5 * (j["left_shoulder"] + j["right_shoulder"])
    parts = [(head[None], np.array([0.09])), _capsule(head, neck, 0.05)]
    ls, rs, lh, rh = j["left_shoulder"], j["right_shoulder"], j["left_hip"], j["right_hip"]
    for v in np.linspace(0.05, 1.0, 6):  # a torso sheet, narrowed so the shoulders stay at its rim
        left, right = ls + v * (lh - ls), rs + v * (rh - rs)
        mid = 0.5 * (left + right)
        for w in np.linspace(-0.6, 0.6, 4):
            parts.append(((mid + w * (right - mid))[None], np.array([0.1])))
    for a, b, r in _LIMBS:
        parts.append(_capsule(j[a], j[b], r))
    for name, r in _ENDS:
        parts.append((j[name][None], np.array([r])))
    return np.concatenate([c for c, _ in parts]), np.concatenate([r for _, r in parts])


def room_depth(cam: Camera) -> np.ndarray:
    """(H, W) z depth, metres, of the floor and walls seen by ``cam`` (0 where none)."""
    w, h = cam.size
    u, v = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
    rays = np.stack([u, v, np.ones_like(u)], axis=-1) @ np.linalg.inv(cam.K).T  # camera frame, z = 1
    d = rays @ cam.R  # world directions (R^T d), per unit of camera z
    C = cam.center
    best = np.full((h, w), np.inf)
    for axis, value in ((2, 0.0), (0, ROOM_M), (0, -ROOM_M), (1, ROOM_M), (1, -ROOM_M)):
        with np.errstate(divide="ignore", invalid="ignore"):
            s = (value - C[axis]) / d[..., axis]
        best = np.where((s > 1e-6) & (s < best), s, best)
    return np.where(np.isfinite(best), best, 0.0)


def render_depth(cam: Camera, people: list[np.ndarray], room: np.ndarray | None = None) -> np.ndarray:
    """(H, W) noise-free z depth, metres, of ``people`` ((J, 3) world poses) in the room (``room``:
    the camera's :func:`room_depth`, computed when not given)."""
    w, h = cam.size
    zbuf = room_depth(cam) if room is None else room
    zbuf = np.where(zbuf > 0, zbuf, np.inf)
    if people:
        centres, radii = zip(*(body_spheres(X) for X in people), strict=True)
        c_cam = cam.to_camera(np.concatenate(centres))  # (S, 3)
        r = np.concatenate(radii)
        front = c_cam[:, 2] > r + 0.05
        c_cam, r = c_cam[front], r[front]
        uv = c_cam[:, :2] / c_cam[:, 2:] * np.diag(cam.K)[:2] + cam.K[:2, 2]
        reach = int(np.ceil((cam.K[0, 0] * r / (c_cam[:, 2] - r)).max())) + 2
        off = np.arange(-reach, reach + 1)
        du, dv = (a.reshape(-1) for a in np.meshgrid(off, off))
        pu = np.rint(uv[:, :1]).astype(np.int64) + du  # (S, M)
        pv = np.rint(uv[:, 1:]).astype(np.int64) + dv
        ray = np.stack([pu, pv, np.ones_like(pu)], axis=-1).astype(np.float64) @ np.linalg.inv(cam.K).T
        dc = np.einsum("smi,si->sm", ray, c_cam)
        dd = (ray**2).sum(-1)
        disc = dc**2 - dd * ((c_cam**2).sum(-1) - r**2)[:, None]
        hit = (disc > 0) & (pu >= 0) & (pu < w) & (pv >= 0) & (pv < h)
        z = (dc - np.sqrt(np.maximum(disc, 0.0))) / dd  # ray z component is 1: the parameter is depth
        np.minimum.at(zbuf, (pv[hit], pu[hit]), z[hit])
    return np.where(np.isfinite(zbuf), zbuf, 0.0)


def sensor_depth_mm(
    z_m: np.ndarray, rng: np.random.Generator, a_per_m: float = 0.0015, holes: float = 0.05, flying: float = 0.5
) -> np.ndarray:
    """A sensor's (H, W) uint16 millimetres from true depth: noise ``a z^2``, flying pixels, holes.

    Args:
        z_m: (H, W) true depth, metres (0: no surface).
        rng: random generator.
        a_per_m: axial noise coefficient, 1/metres.
        holes: fraction of pixels dropped at random (0 = no reading).
        flying: fraction of the pixels at depth discontinuities (> 0.1 m to a 4-neighbour) replaced
            by a uniform mixture of the neighbourhood's nearest and farthest depth.
    """
    z = z_m.copy()
    pad = np.pad(z, 1, mode="edge")
    neigh = np.stack([pad[:-2, 1:-1], pad[2:, 1:-1], pad[1:-1, :-2], pad[1:-1, 2:], z])
    lo, hi = neigh.min(axis=0), neigh.max(axis=0)
    edge = (hi - lo > 0.1) & (lo > 0) & (rng.random(z.shape) < flying)
    z[edge] = lo[edge] + rng.random(edge.sum()) * (hi[edge] - lo[edge])
    z = np.where(z > 0, z + rng.normal(size=z.shape) * a_per_m * z**2, 0.0)
    z[rng.random(z.shape) < holes] = 0.0
    return np.clip(np.rint(z * 1000.0), 0, 65535).astype(np.uint16)


def detect(cam: Camera, people: list[np.ndarray], rng: np.random.Generator, noise_px: float = 1.5) -> np.ndarray:
    """The test's "detector": (P, J, 3) [u, v, conf 0.9] true joints projected, with pixel noise."""
    out = np.zeros((len(people), COCO17.n_joints, 3))
    for p, X in enumerate(people):
        out[p, :, :2] = cam.project(X) + rng.normal(scale=noise_px, size=(len(X), 2))
        out[p, :, 2] = 0.9
    return out
