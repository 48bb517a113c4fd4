"""Synthetic multi-view scenes for tests: a camera ring, standing people, projections with noise."""

from __future__ import annotations

import numpy as np

from calibration.camera import CameraRig
from capture.benchmarks.synthetic import look_at_camera, person, ring_rig  # noqa: F401 - re-exported


def ring_projections(n_cams: int) -> np.ndarray:
    """(C, 3, 4) projections of cameras on a 4 m ring at 1.5 m looking at the origin, 1000 px focal."""
    K = np.array([[1000.0, 0, 640], [0, 1000.0, 360], [0, 0, 1]])
    Ps = []
    for a in np.linspace(0, 2 * np.pi, n_cams, endpoint=False):
        c = np.array([4 * np.cos(a), 4 * np.sin(a), 1.5])
        z = -c / np.linalg.norm(c)
        x = np.cross(z, [0, 0, 1.0])
        x /= np.linalg.norm(x)
        R = np.stack([x, np.cross(z, x), z])
        Ps.append(K @ np.hstack([R, (-R @ c)[:, None]]))
    return np.array(Ps)


def project_people(rig: CameraRig, people: list[np.ndarray], rng=None, noise_px: float = 0.0) -> list[np.ndarray]:
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


def write_walking_scene(folder, n_frames: int, fps: float):
    """A synthetic 4-camera rig (``rig.json``) and ``<camera>.json.gz`` detections of two people.

    One walks a circle of 1 m radius, one sways in place; 1 px of Gaussian noise. Returns the
    calibration path and the camera names.
    """
    from pathlib import Path

    from calibration.io import write_json
    from capture.sources.detection_files import write_detections_json
    from core.types import Detections2D

    folder = Path(folder)
    rng = np.random.default_rng(1)
    rig = ring_rig()
    calib = folder / "rig.json"
    write_json(rig, calib)
    per_cam: dict[str, list] = {c.name: [] for c in rig}
    for f in range(n_frames):
        t = f / fps
        people = [person((np.cos(0.5 * t), np.sin(0.5 * t)), 0.5 * t), person((-0.8, 0.2 * np.sin(t)), 2.0)]
        for cam, d in zip(rig, project_people(rig, people, rng, 1.0), strict=True):
            boxes = np.tile([0.0, 0.0, 1.0, 1.0, 0.9], (len(people), 1))
            per_cam[cam.name].append(Detections2D(cam.name, f, int(t * 1e9), d.astype(np.float32), boxes))
    for name, dets in per_cam.items():
        write_detections_json(folder / f"{name}.json.gz", name, fps, dets)
    return calib, list(per_cam)
