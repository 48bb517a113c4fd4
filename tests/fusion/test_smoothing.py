"""The UKF + RTS smoother of each track's joints (fusion.smoothing) on synthetic multi-view data."""

import dataclasses

import numpy as np
import pytest

from core.config import SmoothingConfig
from core.errors import ShapeError
from fusion.smoothing import SequenceFrame, smooth_joint_track, smooth_sequence
from triangulation.dlt import triangulate_dlt

FPS = 25.0
CFG = SmoothingConfig(enabled=True, accel_noise_mps2=5.0, pixel_noise_px=3.0, gate_px=20.0, max_gap_s=1.0)


def _project(P, X):
    """(C, T, 2) pixels of (T, 3) points through (C, 3, 4) projections."""
    q = np.einsum("cij,tj->cti", P, np.concatenate([X, np.ones((len(X), 1))], axis=1))
    return q[..., :2] / q[..., 2:]


def _scene(rig, rng, T=100, noise_px=3.0):
    """A wrist-like point on a 0.3 m circle at 1 rev/s, seen by every view with Gaussian 2D noise."""
    P = rig.projections()
    t = np.arange(T) / FPS
    truth = np.stack([0.3 * np.cos(2 * np.pi * t), 0.3 * np.sin(2 * np.pi * t), 1.2 + 0.1 * t], axis=1)
    uv = _project(P, truth) + rng.normal(scale=noise_px, size=(len(P), T, 2))
    conf = np.ones((len(P), T))
    points = np.concatenate([triangulate_dlt(P, uv, conf), np.ones((T, 1))], axis=1)
    return P, t, truth, points, uv.transpose(1, 0, 2), conf.T


def _err(a, b):
    return np.linalg.norm(a[:, :3] - b, axis=1)


def test_smoother_beats_per_frame_dlt_and_causal_filter(rig, rng):
    P, t, truth, points, obs, conf = _scene(rig, rng)
    smoothed = smooth_joint_track(t, points, obs, conf, P, CFG)
    causal = smooth_joint_track(t, points, obs, conf, P, dataclasses.replace(CFG, rts=False))
    raw, fil, rts = (np.sqrt(np.mean(_err(x, truth)[5:] ** 2)) for x in (points, causal, smoothed))
    assert rts < 0.7 * raw, (raw, fil, rts)
    assert rts < fil
    assert np.all(smoothed[:, 3] == 1.0)  # every frame was reconstructed: its confidence is kept


def test_outlier_view_is_gated_out(rig, rng):
    """One view reports a joint 80 px off in 20 frames; the frame's 3D point (robust DLT) excludes it."""
    P, t, truth, points, obs, conf = _scene(rig, rng)
    bad = obs.copy()
    bad[40:60, 0] += 80.0
    without = conf.copy()
    without[40:60, 0] = 0.0
    clean = smooth_joint_track(t, points, obs, without, P, CFG)  # as if view 0 had not seen it
    gated = smooth_joint_track(t, points, bad, conf, P, CFG)
    ungated = smooth_joint_track(t, points, bad, conf, P, dataclasses.replace(CFG, gate_px=1e6))
    assert np.abs(gated - clean).max() < 1e-8  # the outlier never entered the filter
    assert _err(ungated, truth)[40:60].mean() > 2 * _err(gated, truth)[40:60].mean()


def test_single_view_frames_and_missing_joint_are_bridged(rig, rng):
    """Frames 30-39: no 3D point and only one view; frames 60-64: no observation at all."""
    P, t, truth, points, obs, conf = _scene(rig, rng)
    points[:, 3] = 0.8
    points[30:40, 3] = points[60:65, 3] = 0.0
    conf[30:40, 1:] = 0.0
    conf[60:65] = 0.0
    out = smooth_joint_track(t, points, obs, conf, P, CFG)
    assert np.allclose(out[30:40, 3], 0.4) and np.allclose(out[60:65, 3], 0.4)  # half the neighbours'
    assert _err(out, truth)[30:40].max() < 0.05  # one view plus the motion model keeps it within 5 cm
    assert _err(out, truth)[60:65].max() < 0.05
    # Without the single-view updates the same stretch drifts further.
    none = conf.copy()
    none[30:40] = 0.0
    assert _err(smooth_joint_track(t, points, obs, none, P, CFG), truth)[30:40].mean() > _err(out, truth)[30:40].mean()


def test_long_gap_restarts_the_filter_and_keeps_the_input_there(rig, rng):
    P, t, truth, points, obs, conf = _scene(rig, rng)
    points[20:50, 3] = 0.0
    conf[20:50] = 0.0  # 1.2 s unobserved > max_gap_s
    out = smooth_joint_track(t, points, obs, conf, P, CFG)
    assert np.array_equal(out[20:50], points[20:50])
    assert _err(out, truth)[50:].max() < 0.03  # the new filter starts from the triangulated point


def test_joint_never_seen_is_returned_unchanged(rig, rng):
    P, t, truth, points, obs, conf = _scene(rig, rng, T=10)
    points[:, 3] = 0.0
    assert np.array_equal(smooth_joint_track(t, points, obs, conf, P, CFG), points)


def test_smooth_sequence_follows_track_rows(rig, rng):
    """Two tracks whose rows swap every frame and one that misses frame 5: each is smoothed alone."""
    P, t, truth, points, obs, conf = _scene(rig, rng, T=12)
    shift = np.array([1.0, 0.0, 0.0])
    J = 2
    a_pts = np.repeat(points[:, None], J, axis=1)
    b_pts = a_pts.copy()
    b_pts[..., :3] += shift
    a_obs = np.repeat(obs[:, :, None], J, axis=2)
    b_obs = np.repeat(_project(P, truth + shift).transpose(1, 0, 2)[:, :, None], J, axis=2)
    c = np.repeat(conf[:, :, None], J, axis=2)
    frames = []
    for k in range(12):
        rows = [(1, a_pts[k], a_obs[k]), (2, b_pts[k], b_obs[k])]
        if k % 2:
            rows.reverse()
        if k == 5:
            rows = [r for r in rows if r[0] == 1]
        frames.append(
            SequenceFrame(
                int(t[k] * 1e9),
                np.array([r[0] for r in rows]),
                np.stack([r[1] for r in rows]),
                np.stack([r[2] for r in rows]),
                np.stack([c[k]] * len(rows)),
            )
        )
    out = smooth_sequence(frames, P, CFG)
    alone = smooth_joint_track(t, a_pts[:, 0], a_obs[:, :, 0], c[:, :, 0], P, CFG)
    for k, f in enumerate(frames):
        assert out[k].shape == f.poses.shape
        row = int(np.nonzero(f.track_ids == 1)[0][0])
        assert np.allclose(out[k][row, 0], alone[k])
        if 2 in f.track_ids:
            row_b = int(np.nonzero(f.track_ids == 2)[0][0])
            assert np.linalg.norm(out[k][row_b, 1, :3] - truth[k] - shift) < 0.05  # a swapped row is 1 m off


def test_bad_input_is_a_clear_error(rig, rng):
    P, t, truth, points, obs, conf = _scene(rig, rng, T=5)
    with pytest.raises(ShapeError, match="obs_px"):
        smooth_joint_track(t, points, obs[:, :2], conf, P, CFG)
    with pytest.raises(ValueError, match="increase"):
        smooth_joint_track(t[::-1], points, obs, conf, P, CFG)
    with pytest.raises(ValueError, match="pixel_noise_px"):
        smooth_joint_track(t, points, obs, conf, P, dataclasses.replace(CFG, pixel_noise_px=0.0))
    frame = SequenceFrame(0, np.array([1]), points[None, :2], obs[None, :2], conf[None, :2])
    with pytest.raises(ShapeError, match="frame 0"):
        smooth_sequence([frame], P, CFG)


def test_a_covariance_that_loses_positive_definiteness_restarts_the_filter(rig, rng, monkeypatch):
    """filterpy's Cholesky fails (seen on Shelf at alpha 1e-3): the stretch ends, the take goes on."""
    from filterpy.kalman import UnscentedKalmanFilter

    P, t, truth, points, obs, conf = _scene(rig, rng)
    original, calls = UnscentedKalmanFilter.predict, {"n": 0}

    def failing_predict(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 50:
            raise np.linalg.LinAlgError("3-th leading minor of the array is not positive definite")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(UnscentedKalmanFilter, "predict", failing_predict)
    out = smooth_joint_track(t, points, obs, conf, P, CFG)
    assert calls["n"] > 50 and np.isfinite(out).all()
    # The frame where it failed keeps its input; both stretches around it are still smoothed.
    assert np.array_equal(out[50], points[50])
    raw, rts = np.sqrt(np.mean(_err(points, truth)[5:] ** 2)), np.sqrt(np.mean(_err(out, truth)[5:] ** 2))
    assert rts < 0.8 * raw


def test_single_views_alone_do_not_keep_a_filter_alive_past_max_gap(rig, rng):
    """Shelf's 4th actor: a joint moving at 2 m/s stops unseen; the tracker fills its position
    (confidence > 0) and one view sees it now and then. One view leaves depth unobserved, so these
    sightings must not keep the filter (and its stale velocity) alive past ``max_gap_s``."""
    P, t, truth, points, obs, conf = _scene(rig, rng)
    truth = np.stack([0.08 * np.arange(100.0), np.zeros(100), np.full(100, 1.2)], axis=1)  # 2 m/s along x
    truth[30:] = truth[29]  # stops at frame 30
    clean = _project(P, truth)
    obs = (clean + rng.normal(scale=3.0, size=clean.shape)).transpose(1, 0, 2)
    points = np.concatenate([triangulate_dlt(P, obs.transpose(1, 0, 2), conf.T), np.ones((100, 1))], axis=1)
    points[30:, :3] = truth[29]  # the tracker's fill: the last position, with a confidence
    points[30:, 3] = 0.3
    conf[30:] = 0.0
    conf[40::6, 0] = 1.0  # view 0 alone, every 6th frame from frame 40
    out = smooth_joint_track(t, points, obs, conf, P, CFG)
    assert _err(out, truth)[:30].max() < 0.05
    assert _err(out, truth)[30:].max() < 0.3  # before the fix: 0.70 m, the stale velocity along view 0's ray
    assert np.array_equal(out[60:], points[60:])  # past max_gap_s from the last 2-view frame: the input
