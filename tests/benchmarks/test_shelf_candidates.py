"""Shelf's OpenPose candidates as 3DPS evidence and smoother observations (benchmarks.shelf_candidates)."""

import numpy as np
import pytest

from capture.benchmarks.body25 import BODY25_JOINTS, BODY25_PAF_PAIRS, Body25Frame
from capture.benchmarks.shelf_candidates import coco17_candidates, pictorial_with_candidates, reselect_observations
from capture.benchmarks.synthetic import person, ring_rig
from core.errors import ShapeError
from core.skeleton import COCO17
from fusion.smoothing import SequenceFrame

WRIST, ELBOW = COCO17.index("left_wrist"), COCO17.index("left_elbow")


def _uv(rig, X):
    """(C, J, 2) pixels of (J, 3) points (the synthetic rig has no distortion)."""
    return np.stack([cam.project(X) for cam in rig])


def _scene():
    """4 views of a standing person with a 0.25 m left forearm (the population mean)."""
    rig = ring_rig()
    X = person((0.0, 0.0))
    d = X[WRIST] - X[ELBOW]
    X[WRIST] = X[ELBOW] + 0.25 * d / np.linalg.norm(d)
    return rig, X


def test_the_true_wrist_among_the_candidates_wins_over_the_assembled_one():
    """The parser gave every view a wrong but geometrically consistent wrist (0.13 m further along the
    forearm, e.g. another body's): triangulated alone it is kept; offered the true peaks as extra
    candidates, 3DPS picks them by the forearm's length."""
    rig, X = _scene()
    P = rig.projections()
    wrong = X.copy()
    wrong[WRIST] += 0.13 * (X[WRIST] - X[ELBOW]) / np.linalg.norm(X[WRIST] - X[ELBOW])
    obs = _uv(rig, wrong)[None]  # (1, C, J, 2) the assembled person
    conf = np.ones((1, 4, 17))
    poses = np.concatenate([wrong, np.ones((17, 1))], axis=1)[None]  # the node's per-frame pose
    cand = np.stack([_uv(rig, X), _uv(rig, wrong)], axis=2)  # (C, J, 2, 2): the true peak and the wrong one
    cand_conf = np.ones((4, 17, 2))
    with_cands = pictorial_with_candidates(P, poses, obs, conf, cand, cand_conf, radius_px=60.0)
    alone = pictorial_with_candidates(P, poses, obs, conf, cand, np.zeros((4, 17, 2)), radius_px=60.0)
    assert np.linalg.norm(alone[0, WRIST, :3] - wrong[WRIST]) < 0.01
    assert np.linalg.norm(with_cands[0, WRIST, :3] - X[WRIST]) < 0.01
    assert np.abs(with_cands[0, :, :3] - X).max() < 0.01 and np.all(with_cands[0, :, 3] > 0)
    # Beyond the radius the true peaks are not offered.
    far = pictorial_with_candidates(P, poses, obs, conf, cand, cand_conf, radius_px=1.0)
    assert np.linalg.norm(far[0, WRIST, :3] - wrong[WRIST]) < 0.01


def test_joints_3dps_cannot_place_keep_the_input():
    rig, X = _scene()
    P = rig.projections()
    obs, conf = _uv(rig, X)[None], np.ones((1, 4, 17))
    conf[0, 1:, WRIST] = 0.0  # the wrist seen by one view only: no 3D point
    poses = np.concatenate([X, np.ones((17, 1))], axis=1)[None]
    poses[0, WRIST, :3] += 0.05  # the tracker's fill
    out = pictorial_with_candidates(P, poses, obs, conf, _uv(rig, X)[:, :, None], np.zeros((4, 17, 1)))
    assert np.array_equal(out[0, WRIST], poses[0, WRIST])
    assert np.abs(out[0, ELBOW, :3] - X[ELBOW]).max() < 1e-6
    with pytest.raises(ShapeError):
        pictorial_with_candidates(P, poses, obs[:, :3], conf, _uv(rig, X)[:, :, None], np.zeros((4, 17, 1)))


def test_reselection_gives_each_peak_to_the_nearest_person():
    rig = ring_rig()
    P = rig.projections()
    A, B = person((-0.4, 0.0)), person((0.4, 0.0))
    ref = np.stack([np.concatenate([X, np.ones((17, 1))], axis=1) for X in (A, B)])
    ref[1, 0, 3] = 0.0  # B's nose missing from the reference: no observation for it
    uvA, uvB = _uv(rig, A), _uv(rig, B)
    cand = np.stack([uvB + 3.0, uvA + 2.0, uvA + 200.0], axis=2)  # (C, J, 3, 2): near B, near A, far
    cand_conf = np.full((4, 17, 3), 0.8)
    cand_conf[:, :, 1] = 0.1  # A's own peak below min_conf: only the far one is left for A
    frame = SequenceFrame(0, np.array([7, 9]), ref, np.zeros((2, 4, 17, 2)), np.zeros((2, 4, 17)))
    out = reselect_observations(frame, ref, P, cand, cand_conf, gate_px=20.0, min_conf=0.2)
    assert np.allclose(out.obs_px[1, :, 1:], uvB[:, 1:] + 3.0) and np.allclose(out.obs_conf[1, :, 1:], 0.8)
    assert np.all(out.obs_conf[1, :, 0] == 0.0)
    assert np.all(out.obs_conf[0] == 0.0)  # B's peaks are B's, the far one is out of the gate
    cand_conf[:, :, 1] = 0.9
    out = reselect_observations(frame, ref, P, cand, cand_conf, gate_px=20.0, min_conf=0.2)
    assert np.allclose(out.obs_px[0], uvA + 2.0) and np.allclose(out.obs_conf[0], 0.9)
    assert np.array_equal(out.poses, ref) and np.array_equal(out.track_ids, [7, 9])
    # A reference 3 cm from B: B's peaks lie within the gate of both, and go to B, the nearer.
    ref[0, :, :3] = B + [0.03, 0.0, 0.0]
    out = reselect_observations(frame, ref, P, uvB[:, :, None], cand_conf[:, :, :1], gate_px=20.0, min_conf=0.2)
    assert np.all(out.obs_conf[0] == 0.0) and np.allclose(out.obs_px[1, :, 1:], uvB[:, 1:])


def test_coco17_candidates_maps_the_joints_and_scales_the_pixels():
    rig = ring_rig(n=1)
    cands = [np.zeros((0, 3)) for _ in BODY25_JOINTS]
    cands[BODY25_JOINTS.index("LWrist")] = np.array([[0.5, 0.25, 0.7], [0.1, 0.2, 1.04]])
    pafs = [np.zeros((len(cands[a]), len(cands[b]))) for a, b in BODY25_PAF_PAIRS]
    px, conf = coco17_candidates([Body25Frame(tuple(cands), tuple(pafs))], rig[0], (101, 51), max_candidates=3)
    assert px.shape == (1, 17, 3, 2) and conf.shape == (1, 17, 3)
    assert np.allclose(px[0, WRIST, :2], [[50.0, 12.5], [10.0, 10.0]])
    assert np.allclose(conf[0, WRIST], [0.7, 1.0, 0.0])  # clipped to 1, padding 0
    assert conf[0, np.arange(17) != WRIST].sum() == 0.0
