"""Synthetic multi-view scenes for tests: a camera ring, standing people, projections with noise."""

from __future__ import annotations

import numpy as np

from calibration.camera import CameraRig
from capture.benchmarks.synthetic import look_at_camera, person, ring_rig  # noqa: F401 - re-exported


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
