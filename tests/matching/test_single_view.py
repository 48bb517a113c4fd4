"""Single-view update: predicted joints move onto the view's rays, depth kept."""

from __future__ import annotations

import numpy as np
from synth import person

from matching.single_view import single_view_pose


def test_prediction_moves_onto_the_detection_rays(rig):
    cam = rig[0]
    truth = person((0.1, 0.2), 0.3)
    pred = np.concatenate([truth + np.array([0.05, -0.04, 0.02]), np.ones((17, 1))], axis=1)
    uv = cam.project(truth)
    conf = np.full(17, 0.8)
    conf[3] = 0.1  # below min_conf: not corrected
    pred[4, 3] = 0.0  # unknown in the prediction
    out = single_view_pose(pred, cam, uv, conf, 0.3)
    ok = np.ones(17, bool)
    ok[[3, 4]] = False
    assert (out[~ok] == 0).all()
    np.testing.assert_allclose(out[ok, 3], 0.4)  # half the 2D confidence
    np.testing.assert_allclose(cam.project(out[ok, :3]), uv[ok], atol=1e-6)  # on the rays
    # Depth along the ray is the prediction's (its projection on the ray).
    rays = out[ok, :3] - cam.center
    rays /= np.linalg.norm(rays, axis=1, keepdims=True)
    np.testing.assert_allclose(np.linalg.norm(out[ok, :3] - cam.center, axis=1),
                               ((pred[ok, :3] - cam.center) * rays).sum(axis=1), rtol=1e-9)  # fmt: skip
    assert (
        np.linalg.norm(out[ok, :3] - truth[ok], axis=1).max() < np.linalg.norm(pred[ok, :3] - truth[ok], axis=1).max()
    )
