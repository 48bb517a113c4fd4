import itertools

import numpy as np
import pytest
from synth import person, project_people

from calibration.camera import fundamental_matrix
from core.errors import ShapeError
from matching.epipolar import EpipolarMatcher, epipolar_distance_matrix, group_by_affinity

PEOPLE = [person((-0.8, 0.3), 0.2), person((0.5, -0.4), 1.9), person((0.9, 0.9), -0.7)]


def _views(rig, people, rng, noise_px=1.0, shuffle=True):
    """Per view: undistorted points and confidences, plus the true person index of each detection."""
    dets = project_people(rig, people, rng, noise_px)
    pts, conf, truth = [], [], []
    for c, d in enumerate(dets):
        order = rng.permutation(len(people)) if shuffle else np.arange(len(people))
        pts.append(np.stack([rig[c].undistort_px(d[i, :, :2]) for i in order]) if len(order) else np.zeros((0, 17, 2)))
        conf.append(d[order, :, 2] if len(order) else np.zeros((0, 17)))
        truth.append(order)
    return pts, conf, truth


def _check_groups(groups, truth, n_views):
    for g in groups:
        views = [c for c, _ in g]
        assert len(set(views)) == len(views), "two detections of one view in a group"
        assert len({int(truth[c][i]) for c, i in g}) == 1, f"group mixes people: {g}"
    covered = sorted((c, i) for g in groups for c, i in g)
    assert covered == sorted((c, i) for c in range(n_views) for i in range(len(truth[c])))


def test_distance_zero_for_same_person(rig):
    X = PEOPLE[0]
    a, b = (rig[i].project(X) for i in (0, 1))
    F = fundamental_matrix(rig[0], rig[1])
    d = epipolar_distance_matrix(F, a[None], np.ones((1, 17)), b[None], np.ones((1, 17)))
    assert d.shape == (1, 1) and d[0, 0] < 1e-6
    # Person 2 is off person 0's epipolar plane in this pair (person 1 is not: two people of one
    # height on one epipolar plane are indistinguishable in a pair, which is why grouping uses all views).
    c = rig[1].project(PEOPLE[2])
    d2 = epipolar_distance_matrix(F, a[None], np.ones((1, 17)), np.stack([b, c]), np.ones((2, 17)))
    assert d2[0, 0] < 1e-6 and d2[0, 1] > 50


def test_too_few_common_joints_is_inf(rig):
    X = PEOPLE[0]
    a, b = (rig[i].project(X)[None] for i in (0, 1))
    conf_a = np.zeros((1, 17))
    conf_a[0, :4] = 1.0
    F = fundamental_matrix(rig[0], rig[1])
    assert np.isinf(epipolar_distance_matrix(F, a, conf_a, b, np.ones((1, 17)), min_common=5)[0, 0])
    with pytest.raises(ShapeError):
        epipolar_distance_matrix(F, a, conf_a, b[:, :10], np.ones((1, 10)))


@pytest.mark.parametrize("seed", range(5))
def test_groups_three_people_four_views(rig, seed):
    rng = np.random.default_rng(seed)
    pts, conf, truth = _views(rig, PEOPLE, rng)
    groups = EpipolarMatcher(rig).match(pts, conf)
    _check_groups(groups, truth, 4)
    assert sorted(len(g) for g in groups) == [4, 4, 4]


def test_view_order_permutation_gives_same_partition(rig, rng):
    pts, conf, truth = _views(rig, PEOPLE, rng)
    base = {frozenset((rig[c].name, int(truth[c][i])) for c, i in g) for g in EpipolarMatcher(rig).match(pts, conf)}
    for perm in itertools.islice(itertools.permutations(range(4)), 1, 6):
        sub = rig.subset([rig[p].name for p in perm])
        groups = EpipolarMatcher(sub).match([pts[p] for p in perm], [conf[p] for p in perm])
        got = {frozenset((sub[c].name, int(truth[perm[c]][i])) for c, i in g) for g in groups}
        assert got == base


def test_view_seeing_nobody_and_person_in_one_view(rig, rng):
    pts, conf, truth = _views(rig, PEOPLE[:2], rng)
    pts[2], conf[2], truth[2] = np.zeros((0, 17, 2)), np.zeros((0, 17)), np.zeros(0, dtype=int)
    # A third person seen by view 0 only.
    extra = rig[0].project(PEOPLE[2])
    pts[0] = np.concatenate([pts[0], extra[None]])
    conf[0] = np.concatenate([conf[0], np.ones((1, 17))])
    truth[0] = np.append(truth[0], 2)
    groups = EpipolarMatcher(rig).match(pts, conf)
    _check_groups(groups, truth, 4)
    assert sorted(len(g) for g in groups) == [1, 3, 3]
    single = next(g for g in groups if len(g) == 1)
    assert single == ((0, 2),)


def test_nobody_anywhere(rig):
    empty = [np.zeros((0, 17, 2))] * 4
    assert EpipolarMatcher(rig).match(empty, [np.zeros((0, 17))] * 4) == []


def test_group_by_affinity_respects_view_exclusivity():
    # Items 0 and 1 are both in view 0 and both close to item 2: only one may join it.
    view_of = np.array([0, 0, 1])
    d = np.array([[np.inf, np.inf, 1.0], [np.inf, np.inf, 2.0], [1.0, 2.0, np.inf]])
    assert group_by_affinity(view_of, d, 10.0) == [(0, 2), (1,)]
