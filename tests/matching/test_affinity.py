import numpy as np
import pytest
from synth import look_at_camera, person

from calibration.camera import CameraRig
from core.errors import ShapeError
from matching.affinity import (
    AffinityConfig,
    appearance_affinity,
    appearance_ratio,
    combine_affinities,
    epipolar_distances,
    frame_affinity,
    geometric_affinity,
    stack_fundamentals,
    stack_views,
)
from matching.epipolar import epipolar_distance_matrix
from matching.multiway import MultiwayMatcher

PEOPLE = [person((-0.8, 0.3), 0.2), person((0.5, -0.4), 1.9), person((0.9, 0.9), -0.7)]


def _rig(heights=(1.0, 2.6, 1.8, 3.2)):
    """Cameras on a 4 m ring at different heights (same-height rings put many people on one epipolar plane)."""
    cams = []
    for i, h in enumerate(heights):
        a = 2 * np.pi * i / len(heights) + 0.3
        cams.append(look_at_camera(f"cam{i}", np.array([4 * np.cos(a), 4 * np.sin(a), h]), np.array([0, 0, 1.0])))
    return CameraRig(tuple(cams))


def _views(rig, people):
    pts = [np.stack([cam.project(X) for X in people]) for cam in rig]
    return pts, [np.ones(p.shape[:2]) for p in pts]


def test_epipolar_distances_equal_the_per_pair_reference(rng):
    rig = _rig()
    pts, _ = _views(rig, PEOPLE)
    pts = [p + rng.normal(scale=2.0, size=p.shape) for p in pts]
    conf = [np.where(rng.random(p.shape[:2]) < 0.2, 0.1, 1.0) for p in pts]  # min and product weights agree
    pts[2], conf[2] = pts[2][:1], conf[2][:1]  # views of different sizes
    F = stack_fundamentals(rig)
    stacked, cf, view_of, det_of = stack_views(pts, conf)
    dist = epipolar_distances(stacked, cf, view_of, F)
    off = np.cumsum([0] + [p.shape[0] for p in pts])
    for a in range(4):
        for b in range(4):
            got = dist[off[a] : off[a + 1], off[b] : off[b + 1]]
            if a == b:
                assert np.all(np.diag(got) == 0) and np.all(np.isinf(got[~np.eye(len(got), dtype=bool)]))
                continue
            ref = epipolar_distance_matrix(F[a, b], pts[a], conf[a], pts[b], conf[b])
            np.testing.assert_array_equal(np.isfinite(got), np.isfinite(ref))
            np.testing.assert_allclose(got[np.isfinite(ref)], ref[np.isfinite(ref)], rtol=1e-6, atol=1e-6)
    assert det_of.tolist() == [0, 1, 2, 0, 1, 2, 0, 0, 1, 2]


def test_geometric_affinity_high_for_same_person_low_for_others():
    rig = _rig()
    pts, conf = _views(rig, PEOPLE)
    aff, view_of, det_of = frame_affinity(pts, conf, stack_fundamentals(rig))
    cross = view_of[:, None] != view_of[None, :]
    same = (det_of[:, None] == det_of[None, :]) & cross
    other = (det_of[:, None] != det_of[None, :]) & cross
    assert aff[same].min() > 0.99
    assert np.median(aff[other]) < 0.01 and aff[other].max() < 0.5
    assert np.all(aff[~cross & ~np.eye(len(aff), dtype=bool)] == 0) and np.all(np.diag(aff) == 1)
    np.testing.assert_array_equal(aff, aff.T)
    # Each detection's best in every other view is the same person.
    for i in range(len(view_of)):
        for c in set(range(4)) - {view_of[i]}:
            ks = np.nonzero(view_of == c)[0]
            assert det_of[ks[np.argmax(aff[i, ks])]] == det_of[i]


def test_geometric_affinity_maps_distance_monotonically():
    view_of = np.array([0, 1, 1])
    dist = np.array([[0.0, 5.0, 60.0], [5.0, 0.0, np.inf], [60.0, np.inf, 0.0]])
    aff = geometric_affinity(dist, view_of, half_px=30.0)
    assert aff[0, 1] > 0.95 and aff[0, 2] < 0.05 and aff[1, 2] == 0
    assert geometric_affinity(np.array([[0.0, 30.0], [30.0, 0.0]]), np.array([0, 1]))[0, 1] == pytest.approx(0.5)
    # mvpose's per-frame standardisation keeps the ordering.
    z = geometric_affinity(dist, view_of, half_px=None)
    assert z[0, 1] > z[0, 2]
    with pytest.raises(ValueError):
        geometric_affinity(dist, view_of, half_px=0.0)


def test_appearance_affinity_cosine_map_and_missing():
    e = np.array([[1.0, 0.0], [2.0, 0.0], [-1.0, 0.0], [0.0, 0.0]])
    view_of = np.array([0, 1, 2, 3])
    known = np.array([True, True, True, False])
    app, pair_known = appearance_affinity(e, known, view_of)
    assert app[0, 1] == pytest.approx(1.0) and app[0, 2] == pytest.approx(0.0)
    assert app[0, 3] == 0.5 and not pair_known[0, 3] and pair_known[0, 1]
    same_view, _ = appearance_affinity(e[:2], known[:2], np.array([0, 0]))
    assert same_view[0, 1] == 0
    # Missing appearance leaves the geometric affinity untouched; known pairs get the geometric mean.
    geo = np.full((4, 4), 0.64)
    comb = combine_affinities(geo, app, pair_known, 0.5)
    assert comb[0, 3] == pytest.approx(0.64) and comb[0, 1] == pytest.approx(0.8) and comb[0, 2] == 0
    np.testing.assert_array_equal(combine_affinities(geo, app, pair_known, 0.0), geo)
    with pytest.raises(ValueError):
        combine_affinities(geo, app, pair_known, 1.5)


def _two_on_one_epipolar_plane():
    """Two cameras and two people, the second shifted along the baseline (every joint on its epipolar plane)."""
    rig = _rig((1.5, 1.5))
    base = rig[1].center - rig[0].center
    a = person((0.0, 0.0), 0.3)
    b = a + 1.0 * base / np.linalg.norm(base)
    return rig, [a, b]


def test_appearance_separates_people_geometry_cannot(rng):
    rig, people = _two_on_one_epipolar_plane()
    pts, conf = _views(rig, people)
    pts[1], conf[1] = pts[1][::-1].copy(), conf[1][::-1].copy()  # view 1 lists b first
    F = stack_fundamentals(rig)
    geo, view_of, _ = frame_affinity(pts, conf, F)
    # Geometry ties: a0 is as close to b1's epipolar lines as to a1's.
    assert abs(geo[0, 2] - geo[0, 3]) < 1e-6 and geo[0, 2] > 0.99
    colours = rng.normal(size=(2, 32))
    desc = [colours + 0.05 * rng.normal(size=(2, 32)), colours[::-1] + 0.05 * rng.normal(size=(2, 32))]
    both, _, _ = frame_affinity(pts, conf, F, desc)
    assert both[0, 3] > 0.95 and both[0, 2] < 0.85 and both[1, 2] > 0.95 and both[1, 3] < 0.85
    groups = MultiwayMatcher(rig).match(pts, conf, desc)
    assert sorted(groups) == [((0, 0), (1, 1)), ((0, 1), (1, 0))]
    # The switch: appearance off gives the geometric ties back.
    off, _, _ = frame_affinity(pts, conf, F, desc, AffinityConfig(use_appearance=False))
    np.testing.assert_array_equal(off, geo)


def test_shape_errors():
    rig = _rig()
    pts, conf = _views(rig, PEOPLE)
    F = stack_fundamentals(rig)
    with pytest.raises(ShapeError):
        frame_affinity(pts[:3], conf[:3], F)
    with pytest.raises(ShapeError):
        stack_views(pts, conf[:3])
    with pytest.raises(ShapeError):
        frame_affinity(pts, conf, F, [np.zeros((3, 8))] * 3 + [np.zeros((2, 8))])


def test_part_descriptors_are_compared_over_the_parts_seen_in_both():
    """Person 1 seen whole in view 0 and without its legs block in view 1 stays a perfect match part
    by part, while the whole-vector cosine drops; a different person stays apart either way."""
    legs_a, torso_a, torso_b = np.array([1.0, 0.0]), np.array([0.0, 1.0]), np.array([1.0, 0.0])
    whole = np.concatenate([torso_a, legs_a]) / np.sqrt(2)
    no_legs = np.concatenate([torso_a, [0.0, 0.0]])
    other = np.concatenate([torso_b, [0.0, 1.0]]) / np.sqrt(2)
    desc = np.stack([whole, no_legs, other])
    view_of = np.array([0, 1, 1])
    known = np.ones(3, bool)
    by_part, pair_known = appearance_affinity(desc, known, view_of, cos_floor=0.0, n_parts=2)
    whole_vec, _ = appearance_affinity(desc, known, view_of, cos_floor=0.0, n_parts=1)
    assert by_part[0, 1] == pytest.approx(1.0) and whole_vec[0, 1] == pytest.approx(np.sqrt(0.5))
    assert by_part[0, 2] == pytest.approx(0.0) and pair_known[0, 1] and pair_known[0, 2]
    nothing_shared = np.stack([np.array([1.0, 0.0, 0.0, 0.0]), np.array([0.0, 0.0, 1.0, 0.0])])
    aff, known2 = appearance_affinity(nothing_shared, np.ones(2, bool), np.array([0, 1]), n_parts=2)
    assert not known2[0, 1] and aff[0, 1] == 0.5  # no part in common: unknown, neutral


def _ratio_case(geo_rival: float, app_pair: float, app_rival: float) -> float:
    """R of item 0 (view 0) with item 1 (view 1, geometric affinity 0.9) when item 2 of view 1 rivals
    it with the given geometric and appearance affinity."""
    g = np.array([[1.0, 0.9, geo_rival], [0.9, 1.0, 0.0], [geo_rival, 0.0, 1.0]])
    app = np.array([[1.0, app_pair, app_rival], [app_pair, 1.0, 0.0], [app_rival, 0.0, 1.0]])
    view_of = np.array([0, 1, 1])
    r = appearance_ratio(g, app, view_of[:, None] != view_of[None, :], view_of)
    np.testing.assert_array_equal(r, r.T)
    assert r[1, 2] == 1.0 and np.all(np.diag(r) == 1.0)
    return float(r[0, 1])


def test_appearance_ratio_breaks_geometric_ties_and_vetoes_nothing_else():
    # A pair alone on its epipolar lines keeps its affinity however unlike it looks (the geometric
    # mean would give sqrt(0.9 * 0.1) = 0.3, below the matching threshold).
    assert _ratio_case(geo_rival=0.0, app_pair=0.1, app_rival=0.9) == 1.0
    # A geometric tie: the plain appearance ratio; the better-looking side keeps 1.
    assert _ratio_case(geo_rival=0.9, app_pair=0.2, app_rival=0.8) == pytest.approx(0.25)
    assert _ratio_case(geo_rival=0.9, app_pair=0.8, app_rival=0.2) == 1.0
    # In between, the rival costs in proportion to how well geometry accepts it, linearly: an
    # appearance of 0 (clipped at the floor) is not vetoed by a rival geometry nearly excludes.
    assert _ratio_case(geo_rival=0.45, app_pair=0.2, app_rival=0.8) == pytest.approx(1 - 0.5 * 0.75)
    assert _ratio_case(geo_rival=0.009, app_pair=0.0, app_rival=0.8) == pytest.approx(0.99)
    # Rivals with unknown appearance do not compete.
    g = np.array([[1.0, 0.9, 0.9], [0.9, 1.0, 0.0], [0.9, 0.0, 1.0]])
    app = np.array([[1.0, 0.2, 0.8], [0.2, 1.0, 0.0], [0.8, 0.0, 1.0]])
    known = np.array([[False, True, False], [True, False, False], [False, False, False]])
    assert appearance_ratio(g, app, known, np.array([0, 1, 1]))[0, 1] == 1.0
    with pytest.raises(ShapeError):
        appearance_ratio(g, app[:2], known, np.array([0, 1, 1]))


def _five_views_front_and_back():
    """5 views x 4 people, geometry unambiguous; each person's clothing looks different from the
    front (views 0, 1) and the back (views 2-4), and one person's back looks like the next one's front."""
    rig = _rig((1.0, 2.6, 1.8, 3.2, 2.2))
    people = [*PEOPLE, person((-0.2, -1.0), 1.0)]
    pts, conf = _views(rig, people)
    colours = np.eye(8)
    front = colours[[0, 1, 2, 3]]
    back = colours[[4, 5, 6, 7]]
    back[0] = 0.8 * front[1] + 0.2 * back[0]  # person 0 from the back resembles person 1 from the front
    desc = [front if c < 2 else back for c in range(5)]
    return rig, pts, conf, desc


def test_viewpoint_dependent_appearance_does_not_split_people_geometry_matches():
    """pizza_5views' failure in miniature: colour histograms are not calibrated across viewpoints,
    so Dong et al.'s geometric mean of absolute affinities splits each person into their front and
    back views; the ratio combination uses appearance only against geometric rivals and keeps them."""
    rig, pts, conf, desc = _five_views_front_and_back()
    truth = {tuple((c, p) for c in range(5)) for p in range(4)}
    base = AffinityConfig(appearance_weight=0.5, cos_floor=0.3)
    ratio = MultiwayMatcher(rig, base).match(pts, conf, desc)
    assert {tuple(sorted(g)) for g in ratio} == truth
    geo_mean = MultiwayMatcher(rig, AffinityConfig(appearance_weight=0.5, cos_floor=0.3, combination="geometric_mean"))
    assert {tuple(sorted(g)) for g in geo_mean.match(pts, conf, desc)} != truth
    # The ratio combination never raises an affinity above the geometric one.
    F = stack_fundamentals(rig)
    geo, _, _ = frame_affinity(pts, conf, F)
    mixed, _, _ = frame_affinity(pts, conf, F, desc, base)
    assert np.all(mixed <= geo + 1e-12)
    with pytest.raises(ValueError):
        AffinityConfig(combination="mean")
