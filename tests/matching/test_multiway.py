import numpy as np
import pytest
from synth import person, project_people, ring_rig

from calibration.camera import CameraRig
from core.errors import ShapeError
from matching.epipolar import EpipolarMatcher
from matching.multiway import (
    MultiwayMatcher,
    groups_from_matches,
    is_cycle_consistent,
    match_svt,
    pairwise_matches,
    round_to_matches,
)

N_VIEWS, N_PEOPLE = 5, 4


def _noisy_affinity(seed):
    """5 views x 4 people in shuffled order: noisy affinities and two wrong pairwise preferences.

    In view pairs (0, 1) and (2, 3) two people are swapped: the wrong pairs score 0.9, the right ones 0.4.
    """
    rng = np.random.default_rng(seed)
    person_of = np.concatenate([rng.permutation(N_PEOPLE) for _ in range(N_VIEWS)])
    view_of = np.repeat(np.arange(N_VIEWS), N_PEOPLE)
    n = person_of.size
    same = person_of[:, None] == person_of[None, :]
    aff = np.where(same, rng.uniform(0.6, 0.95, (n, n)), rng.uniform(0.0, 0.35, (n, n)))
    for a, b in [(0, 1), (2, 3)]:
        p, q = rng.choice(N_PEOPLE, 2, replace=False)
        ia = [int(np.nonzero((view_of == a) & (person_of == x))[0][0]) for x in (p, q)]
        ib = [int(np.nonzero((view_of == b) & (person_of == x))[0][0]) for x in (p, q)]
        for i, k, val in [(ia[0], ib[1], 0.9), (ia[1], ib[0], 0.9), (ia[0], ib[0], 0.4), (ia[1], ib[1], 0.4)]:
            aff[i, k] = aff[k, i] = val
    aff = np.triu(aff, 1)
    aff = aff + aff.T
    aff[view_of[:, None] == view_of[None, :]] = 0.0
    np.fill_diagonal(aff, 1.0)
    return aff, view_of, person_of


def _transitivity_violation(matches):
    """A triple a~b, b~c with a !~ c, or None."""
    n = len(matches)
    for b in range(n):
        nb = np.nonzero(matches[b])[0]
        for a in nb:
            for c in nb:
                if a != c and not matches[a, c]:
                    return a, b, c
    return None


@pytest.mark.parametrize("seed", range(5))
def test_multiway_is_cycle_consistent_where_pairwise_is_not(seed):
    aff, view_of, person_of = _noisy_affinity(seed)
    greedy = pairwise_matches(aff, view_of, 0.5, "hungarian")
    assert not is_cycle_consistent(greedy, view_of)
    assert _transitivity_violation(greedy) is not None
    result = match_svt(aff, np.bincount(view_of))
    assert result.converged and result.n_iter < 500
    matches = round_to_matches(result.X, view_of)
    assert is_cycle_consistent(matches, view_of) and _transitivity_violation(matches) is None
    groups = groups_from_matches(matches, view_of, result.X)
    truth = sorted(tuple(sorted(np.nonzero(person_of == p)[0].tolist())) for p in range(N_PEOPLE))
    assert sorted(groups) == truth


def test_match_svt_output_satisfies_the_constraints():
    aff, view_of, _ = _noisy_affinity(7)
    X = match_svt(aff, np.bincount(view_of), max_iter=20).X
    assert X.shape == aff.shape and np.all(X >= 0) and np.all(X <= 1)
    np.testing.assert_allclose(X, X.T)
    np.testing.assert_array_equal(np.diag(X), 1.0)
    same_view = (view_of[:, None] == view_of[None, :]) & ~np.eye(len(X), dtype=bool)
    assert np.all(X[same_view] == 0)
    # Doubly substochastic view-pair blocks (up to the alternating projection's tolerance).
    for c in range(N_VIEWS):
        assert np.all(X[:, view_of == c].sum(axis=1) <= 1.0 + 0.05 + (view_of == c))
    with pytest.raises(ShapeError):
        match_svt(aff, [4, 4, 4])


def test_early_stop_gives_the_same_groups_in_fewer_iterations():
    aff, view_of, _ = _noisy_affinity(3)
    full = match_svt(aff, np.bincount(view_of))
    early = match_svt(aff, np.bincount(view_of), stable_iters=15, stable_tol=2e-2)
    assert early.n_iter < full.n_iter
    g = [groups_from_matches(round_to_matches(r.X, view_of), view_of, r.X) for r in (full, early)]
    assert g[0] == g[1]


def test_cycle_consistency_check():
    view_of = np.array([0, 1, 2, 1])
    m = np.zeros((4, 4), dtype=bool)
    for i, k in [(0, 1), (1, 2)]:
        m[i, k] = m[k, i] = True
    assert not is_cycle_consistent(m, view_of)  # 0~1, 1~2, 0 !~ 2
    m[0, 2] = m[2, 0] = True
    assert is_cycle_consistent(m, view_of)
    m[2, 3] = m[3, 2] = m[0, 3] = m[3, 0] = True  # two items of view 1 reach each other
    assert not is_cycle_consistent(m, view_of)
    assert is_cycle_consistent(np.zeros((0, 0), dtype=bool), np.zeros(0, dtype=int))


def test_inconsistent_component_is_split_one_per_view():
    view_of = np.array([0, 1, 1, 2])
    m = np.zeros((4, 4), dtype=bool)
    for i, k in [(0, 1), (0, 2), (2, 3)]:
        m[i, k] = m[k, i] = True
    score = np.where(m, 0.6, 0.0)
    score[0, 2] = score[2, 0] = score[2, 3] = score[3, 2] = 0.9
    score[0, 3] = score[3, 0] = 0.7  # unmatched, but consistent with 0~2~3
    groups = groups_from_matches(m, view_of, score)
    assert groups == [(0, 2, 3), (1,)]


def _views(rig, people, rng):
    dets = project_people(rig, people, rng, 1.0)
    pts, conf, truth = [], [], []
    for d in dets:
        order = rng.permutation(len(people))
        pts.append(d[order, :, :2])
        conf.append(d[order, :, 2])
        truth.append(order)
    return pts, conf, truth


@pytest.mark.parametrize(("fast_path", "svt"), [(True, True), (False, True), (False, False)])
def test_matcher_recovers_people_with_the_epipolar_matcher_format(rng, fast_path, svt):
    rig = ring_rig(5)
    people = [person((-0.8, 0.3), 0.2), person((0.5, -0.4), 1.9), person((0.9, 0.9), -0.7), person((-0.2, -1.0), 1)]
    pts, conf, truth = _views(rig, people, rng)
    matcher = MultiwayMatcher(rig, fast_path=fast_path, svt=svt)
    groups = matcher.match(pts, conf)
    assert sorted(len(g) for g in groups) == [5, 5, 5, 5]
    for g in groups:
        assert len({c for c, _ in g}) == len(g) and len({int(truth[c][i]) for c, i in g}) == 1
        assert all(isinstance(c, int) and isinstance(i, int) for c, i in g)
    assert matcher.last_used_svt == (svt and not fast_path)  # pairwise only (svt off) never runs it
    ref = EpipolarMatcher(rig).match(pts, conf)
    assert type(ref) is type(groups) and sorted(map(sorted, ref)) == sorted(map(sorted, groups))


def test_degenerate_inputs(rng):
    rig = ring_rig(3)
    matcher = MultiwayMatcher(rig, fast_path=False)
    empty = [np.zeros((0, 17, 2))] * 3
    assert matcher.match(empty, [np.zeros((0, 17))] * 3) == []
    one = person((0.2, 0.1), 0.5)
    pts, conf, _ = _views(rig, [one], rng)
    assert matcher.match(pts, conf) == [((0, 0), (1, 0), (2, 0))]
    # Seen by one view only: a single-view group.
    only = [pts[0], empty[1], empty[2]]
    assert matcher.match(only, [conf[0], np.zeros((0, 17)), np.zeros((0, 17))]) == [((0, 0),)]
    single = MultiwayMatcher(CameraRig((rig[0],)))
    two, conf2, _ = _views(CameraRig((rig[0],)), [one, person((1.0, 0.5))], rng)
    assert sorted(single.match(two, conf2)) == [((0, 0),), ((0, 1),)]
    with pytest.raises(ShapeError):
        matcher.match(pts[:2], conf[:2])
