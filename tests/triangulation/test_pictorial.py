import itertools

import numpy as np
import pytest
from synth import person, ring_rig

from core.errors import ShapeError
from core.skeleton import COCO17
from triangulation.dlt import triangulate_dlt, triangulate_robust
from triangulation.limb_priors import (
    coco17_priors,
    limb_lengths_to_tree,
    tree_bone_lengths,
    tree_order,
)
from triangulation.pictorial import min_sum_tree, pictorial_pose, triangulate_pictorial

PRIORS = coco17_priors()
WRIST, ELBOW = COCO17.index("left_wrist"), COCO17.index("left_elbow")


def _obs(rig, X):
    return np.stack([cam.undistort_px(cam.project(X)) for cam in rig])  # (C, N, 2)


def _bones(X: np.ndarray) -> np.ndarray:
    """(J,) tree bone lengths of a (J, 3) pose."""
    return tree_bone_lengths(np.concatenate([X, np.ones((len(X), 1))], axis=1)[None], PRIORS)[0]


def test_dp_equals_brute_force(rng):
    """Exact min-sum on a small hand-built tree (a forest: two roots) equals exhaustive search."""
    parents = np.array([-1, 0, 0, 1, 1, -1, 5])
    G, J, K = 6, len(parents), 3
    unary = rng.normal(size=(G, J, K))
    pairwise = rng.normal(size=(G, J, K, K)) * 2.0
    labels, cost = min_sum_tree(unary, pairwise, parents)
    edges = [(j, p) for j, p in enumerate(parents) if p >= 0]
    for g in range(G):
        best, best_k = np.inf, None
        for k in itertools.product(range(K), repeat=J):
            e = sum(unary[g, j, k[j]] for j in range(J)) + sum(pairwise[g, j, k[p], k[j]] for j, p in edges)
            if e < best:
                best, best_k = e, k
        assert labels[g].tolist() == list(best_k)
        assert cost[g] == pytest.approx(best, abs=1e-9)


def test_dp_rejects_a_cycle():
    with pytest.raises(ShapeError):
        min_sum_tree(np.zeros((1, 3, 2)), np.zeros((1, 3, 2, 2)), np.array([2, 0, 1]))
    with pytest.raises(ShapeError):
        tree_order(np.array([-1, 5]))


@pytest.mark.parametrize("grid_size", [1, 3])
def test_clean_input_matches_truth(rig, grid_size):
    P = rig.projections()
    X = person((0.3, -0.2), 0.7)
    pose = pictorial_pose(P, _obs(rig, X), np.ones((4, 17)), grid_size=grid_size)
    assert pose.shape == (17, 4)
    assert (pose[:, 3] == 1).all()
    # Noise-free: the pair triangulations are exact and the priors must not pull them off.
    assert np.abs(pose[:, :3] - X).max() < 0.03


@pytest.mark.parametrize("grid_size", [1, 3])
def test_noisy_input_near_truth(rig, rng, grid_size):
    P = rig.projections()
    X = person((-0.4, 0.5), 2.0)
    uv = _obs(rig, X) + rng.normal(scale=2.0, size=(4, 17, 2))
    pose = pictorial_pose(P, uv, np.ones((4, 17)), grid_size=grid_size, grid_step_m=0.03)
    dlt = triangulate_dlt(P, uv, np.ones((4, 17)))
    err = np.linalg.norm(pose[:, :3] - X, axis=1)
    assert err.max() < 0.04  # about the grid spacing (3 cm)
    assert err.mean() < np.linalg.norm(dlt - X, axis=1).mean() + 0.01


@pytest.mark.parametrize("grid_size", [1, 3])
@pytest.mark.parametrize("cam", [0, 1, 2, 3])
def test_outlier_view_keeps_limb_lengths(cam, grid_size):
    """One view's wrist 67 px off: plain DLT stretches the forearm, 3DPS keeps it."""
    rig = ring_rig(4)
    P = rig.projections()
    X = person((0.2, -0.1), 0.4)
    uv = _obs(rig, X)
    uv[cam, WRIST] += [60.0, 30.0]
    conf = np.ones((4, 17))
    true = _bones(X)
    dlt = _bones(triangulate_dlt(P, uv, conf))
    pose = pictorial_pose(P, uv, conf, grid_size=grid_size)
    got = _bones(pose[:, :3])
    assert abs(dlt[WRIST] - true[WRIST]) > 0.03  # DLT: forearm off by 3+ cm
    assert np.abs(got - true).max() < 0.02  # 3DPS: every bone within 2 cm
    assert np.linalg.norm(pose[WRIST, :3] - X[WRIST]) < 0.02
    assert pose[WRIST, 3] == 1


def test_three_view_outlier_keeps_limb_lengths():
    """With 3 views a wrong wrist drags the robust DLT's best guess too; 3DPS uses the good pair."""
    rig = ring_rig(3)
    P = rig.projections()
    X = person((0.0, 0.3), 1.0)
    uv = _obs(rig, X)
    uv[1, WRIST] += [-70.0, 20.0]
    conf = np.ones((3, 17))
    pose = pictorial_pose(P, uv, conf)
    assert abs(_bones(triangulate_dlt(P, uv, conf))[WRIST] - _bones(X)[WRIST]) > 0.03
    assert np.abs(_bones(pose[:, :3]) - _bones(X)).max() < 0.02


def _distractor_scene(forearm_m: float, distractor_m: float):
    """4 views, the left wrist with two 2D candidates per view: the true wrist at ``forearm_m`` from
    the elbow and a geometrically consistent distractor at ``distractor_m`` (another body's wrist)."""
    rig = ring_rig(4)
    X = person((0.1, 0.1), 0.3)
    d = X[WRIST] - X[ELBOW]
    X[WRIST] = X[ELBOW] + forearm_m * d / np.linalg.norm(d)
    wrong = X[ELBOW] + distractor_m * np.array([0.6, -0.8, 0.0])
    uv = _obs(rig, X)
    uv_m = np.repeat(uv[:, :, None], 2, axis=2)  # (C, J, 2, 2)
    uv_m[:, WRIST, 1] = _obs(rig, wrong[None])[:, 0]
    conf = np.ones((4, 17, 2))
    conf[:, :, 1] = 0.0  # one candidate for every other joint
    conf[:, WRIST] = [0.9, 0.95]  # the distractor is the more confident peak
    return rig.projections(), X, wrong, uv_m, conf


def test_several_2d_candidates_prior_picks_the_right_one():
    P, X, wrong, uv_m, conf = _distractor_scene(0.26, 0.55)
    pose = pictorial_pose(P, uv_m, conf)
    assert np.linalg.norm(pose[WRIST, :3] - X[WRIST]) < 1e-6
    # Triangulating the most confident candidate per view gets the distractor.
    rob = triangulate_robust(P, uv_m[:, :, 1], conf[:, :, 1])
    assert np.linalg.norm(rob.points[WRIST] - wrong) < 1e-6


def test_own_bone_lengths_override_population_prior():
    """A 0.36 m forearm (population mean 0.25 m) and a distractor at 0.25 m: only the person's own
    length picks the true wrist."""
    P, X, wrong, uv_m, conf = _distractor_scene(0.36, 0.25)
    conf[:, WRIST] = [0.9, 0.9]
    population = pictorial_pose(P, uv_m, conf)
    assert np.linalg.norm(population[WRIST, :3] - wrong) < 1e-6
    own = pictorial_pose(P, uv_m, conf, bone_lengths=_bones(X))
    assert np.linalg.norm(own[WRIST, :3] - X[WRIST]) < 1e-6


def test_batched_groups_equal_single_and_weak_joints_missing(rig, rng):
    P = rig.projections()
    people = [person((0.5, 0.0), 0.0), person((-0.6, 0.4), 2.5), person((0.0, -0.8), 4.0)]
    uv = np.concatenate([_obs(rig, X) for X in people], axis=1) + rng.normal(scale=1.0, size=(4, 51, 2))
    conf = np.ones((4, 51))
    conf[1:, 3] = 0.0  # person 0's left ear: one view
    conf[:, 17 + 4] = 0.1  # person 1's right ear: below min_conf everywhere
    res = triangulate_pictorial(P, uv, conf)
    assert res.points.shape == (51, 3) and res.used.shape == (4, 51)
    assert res.conf[3] == 0 and res.conf[21] == 0 and (res.points[[3, 21]] == 0).all()
    assert not res.used[:, [3, 21]].any()
    for g in range(3):
        one = pictorial_pose(P, uv[:, 17 * g : 17 * (g + 1)], conf[:, 17 * g : 17 * (g + 1)])
        assert np.allclose(one[:, :3], res.points[17 * g : 17 * (g + 1)])
        assert np.allclose(one[:, 3], res.conf[17 * g : 17 * (g + 1)])
    ok = res.conf > 0
    assert np.linalg.norm(res.points[ok] - np.concatenate(people)[ok], axis=1).max() < 0.04
    assert (res.errors[res.used] <= 15.0).all()


def test_shape_errors(rig):
    P = rig.projections()
    with pytest.raises(ShapeError):
        triangulate_pictorial(P, np.zeros((4, 16, 2)), np.ones((4, 16)))  # not whole persons
    with pytest.raises(ShapeError):
        triangulate_pictorial(P, np.zeros((4, 17, 2)), np.ones((3, 17)))
    with pytest.raises(ShapeError):
        triangulate_pictorial(P, np.zeros((4, 17, 2)), np.ones((4, 17)), grid_size=2)
    with pytest.raises(ShapeError):
        triangulate_pictorial(P, np.zeros((4, 17, 2)), np.ones((4, 17)), bone_lengths=np.zeros((2, 17)))


def test_limb_lengths_to_tree():
    lengths = np.full((2, len(COCO17.limbs)), np.nan)
    k = COCO17.limbs.index((COCO17.index("left_elbow"), COCO17.index("left_wrist")))
    lengths[1, k] = 0.27
    out = limb_lengths_to_tree(lengths, COCO17.limbs, PRIORS)
    assert out.shape == (2, 17)
    assert out[1, WRIST] == 0.27
    assert np.count_nonzero(out) == 1


def test_unary_truncates_and_penalises_points_behind_the_camera(rig):
    """A point and its mirror through a camera's centre project to the same pixel; the mirror is
    behind the camera and must cost the full truncated view plus the behind-camera term."""
    from triangulation.pictorial import _unary

    P = rig.projections()[:1]
    cam = rig[0]
    X = np.array([0.2, 0.1, 1.0])
    mirror = 2 * cam.center - X
    far = X + 0.5 * np.cross(cam.R[2], [0.0, 0.0, 1.0])  # 0.5 m sideways: far beyond the truncation
    obs = _obs(rig, X[None])[:1, :, None, :]  # (1, 1, 1, 2)
    cost = _unary(P, np.stack([X, mirror, far])[None], obs, np.full((1, 1, 1), 0.8), 5.0, 20.0, 1.0)[0]
    full = 0.5 * 0.8 * 20.0**2 / 5.0**2
    assert cost[0] == pytest.approx(0.0, abs=1e-9)
    assert cost[2] == pytest.approx(full)
    assert cost[1] == pytest.approx(full + 0.5 * 20.0**2 / 5.0**2)
