import itertools

import numpy as np
import pytest
from synth import person, project_people

from calibration.camera import fundamental_matrix
from capture.benchmarks.synthetic import ring_rig, walking_people
from core.errors import ShapeError
from matching.epipolar import EpipolarMatcher, epipolar_distance_matrix, group_by_affinity, refine_groups

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


def _greedy_average_linkage(view_of, dist, max_dist):
    """Reference: merge the globally closest admissible pair of clusters, one merge at a time."""
    clusters = [[i] for i in range(len(view_of))]
    while True:
        best = None
        for a, b in itertools.combinations(range(len(clusters)), 2):
            if {view_of[i] for i in clusters[a]} & {view_of[i] for i in clusters[b]}:
                continue
            link = np.mean([dist[i, j] for i in clusters[a] for j in clusters[b]])
            if np.isfinite(link) and link <= max_dist and (best is None or link < best[0]):
                best = (link, a, b)
        if best is None:
            break
        _, a, b = best
        clusters[a] += clusters.pop(b)
    return sorted((tuple(sorted(c)) for c in clusters), key=lambda g: (-len(g), g))


@pytest.mark.parametrize("seed", range(40))
def test_group_by_affinity_equals_closest_pair_first(seed):
    # Mutual-nearest merges in rounds must give the clusters of merging the closest pair first.
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 14))
    view_of = rng.integers(0, 4, n)
    d = rng.uniform(0, 30, (n, n))
    d = (d + d.T) / 2
    d[rng.uniform(size=(n, n)) < 0.15] = np.inf
    d = np.minimum(d, d.T)
    assert group_by_affinity(view_of, d, 12.0) == _greedy_average_linkage(view_of, d, 12.0)


def test_batched_distances_equal_pairwise(rig, rng):
    # All view pairs in one batch, with views of different counts, an empty view and weak joints.
    counts = [3, 0, 2, 1]
    pts = [rng.uniform(0, 1000, (n, 17, 2)) for n in counts]
    conf = [rng.uniform(0, 1, (n, 17)) for n in counts]
    m = EpipolarMatcher(rig)
    d = m.distances(pts, conf)
    off = np.cumsum([0] + counts)
    assert d.shape == (6, 6)
    for a, b in itertools.product(range(4), repeat=2):
        block = d[off[a] : off[a + 1], off[b] : off[b + 1]]
        if a == b:
            assert np.isinf(block).all()
        elif counts[a] and counts[b]:
            F = fundamental_matrix(rig[a], rig[b]) if a < b else fundamental_matrix(rig[b], rig[a])
            ref = (epipolar_distance_matrix(F, pts[a], conf[a], pts[b], conf[b]) if a < b
                   else epipolar_distance_matrix(F, pts[b], conf[b], pts[a], conf[a]).T)  # fmt: skip
            np.testing.assert_allclose(block, ref, rtol=1e-10)
            assert np.array_equal(np.isinf(block), np.isinf(ref))


def test_refine_moves_a_ghost_pair_into_the_people_it_belongs_to():
    # Views 0..3; person A = items 0-3, person B = items 4-7. Item 2 (A, view 2) and item 7 (B, view 3)
    # happen to agree best (a ghost pair, 1 px) and were merged first, so A lacks view 2 and B view 3.
    view_of = np.array([0, 1, 2, 3, 0, 1, 2, 3])
    person = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    d = np.where(person[:, None] == person[None], 3.0, 200.0)
    d[2, 7] = d[7, 2] = 1.0
    d[view_of[:, None] == view_of[None]] = np.inf
    greedy = [(0, 1, 3), (4, 5, 6), (2, 7)]
    assert refine_groups(view_of, d, greedy, 30.0) == [(0, 1, 2, 3), (4, 5, 6, 7)]
    # A real pair seen by two views only stays (no other group can take it).
    d2 = d.copy()
    d2[2, :], d2[:, 2], d2[7, :], d2[:, 7] = 200.0, 200.0, 200.0, 200.0
    d2[2, 7] = d2[7, 2] = 1.0
    d2[view_of[:, None] == view_of[None]] = np.inf
    assert refine_groups(view_of, d2, greedy, 30.0) == sorted(greedy, key=lambda g: (-len(g), g))


@pytest.mark.parametrize("n_people", [4, 10])
def test_32_camera_ring_gives_one_group_per_person(n_people):
    # The bench scene that made a ghost person: 32 cameras at one height, people of one height. Every
    # group holds one person; the people inside the ring (all but those near the cameras) are whole.
    rig = ring_rig(32, radius=5.0)
    rng = np.random.default_rng(32)
    people = walking_people(n_people, 0.0)
    pts = [np.stack([cam.project(X) + rng.normal(scale=2.0, size=(17, 2)) for X in people]) for cam in rig]
    conf = [np.full((n_people, 17), 0.9)] * 32
    groups = EpipolarMatcher(rig).match(pts, conf)
    for g in groups:
        assert len({i for _, i in g}) == 1, f"group mixes people: {g}"
    inside = [k for k, X in enumerate(people) if np.linalg.norm(X[:, :2], axis=1).max() < 4.0]
    assert {i: len(g) for g in groups for _, i in g[:1] if i in inside} == dict.fromkeys(inside, 32)


def test_match_accepts_descriptors_and_ignores_them(rig, rng):
    pts, conf, _ = _views(rig, PEOPLE, rng)
    desc = [rng.normal(size=(p.shape[0], 8)) for p in pts]
    m = EpipolarMatcher(rig)
    assert m.match(pts, conf, descriptors=desc) == m.match(pts, conf)
