"""Re-identification in the live tracker: people hidden from every view longer than a track lives."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from synth import person

from core.config import FusionConfig
from core.errors import ConfigError
from core.skeleton import COCO17
from fusion.live import LiveTracker
from fusion.reid import REID_MIN_HITS, ReIdentifier, Signature
from fusion.ukf import project_points

DT_NS = 16_666_667  # 60 fps
J = COCO17.n_joints


def _body(xy, scale: float = 1.0, yaw: float = 0.0) -> np.ndarray:
    """(J, 3) standing person at ``xy`` (m), its body scaled by ``scale`` about its feet."""
    X = person(xy, yaw)
    base = np.array([xy[0], xy[1], 0.0])
    return base + scale * (X - base)


def _frame(P, people, rng, noise_px=2.0, noise_3d_m=0.01):
    """The tracker's input for people seen by every view: triangulations, pixels, confidences."""
    C = P.shape[0]
    poses = np.array([np.c_[X + rng.normal(0, noise_3d_m, X.shape), np.ones(J)] for X in people]).reshape(-1, J, 4)
    obs = np.array([project_points(X, P).transpose(1, 0, 2) + rng.normal(0, noise_px, (C, J, 2)) for X in people])
    return poses, obs.reshape(-1, C, J, 2), np.ones((len(people), C, J))


def _tracker(rig, **cfg) -> LiveTracker:
    return LiveTracker(rig.projections(), COCO17, dataclasses.replace(FusionConfig(), max_missed_s=1.0, **cfg))


def _run(tr, P, rng, scenes):
    """Feed ``scenes`` (per frame, the visible people); returns per frame the published ids (0: none)."""
    out = []
    for f, people in enumerate(scenes):
        out.append(tr.update(*_frame(P, people, rng), f * DT_NS).track_ids.tolist() if people else [])
        if not people:
            tr.predictions(f * DT_NS)
    return out


@pytest.mark.parametrize(("hidden_s", "reid_max_s", "same_id"), [(3.0, 5.0, True), (3.0, 2.5, False)])
def test_person_hidden_longer_than_a_track_lives_is_reidentified_within_reid_max_s(
    rig, rng, hidden_s, reid_max_s, same_id
):
    """Person A walks on at 0.8 m/s while hidden from all views for 3 s (its track is deleted after
    1 s); person B (a smaller body) stays in view. A comes back with its id when 3 s is within
    ``reid_max_s``, and with a new one when it is not; B keeps its id throughout."""
    tr = _tracker(rig, reid_max_s=reid_max_s)
    P = rig.projections()
    n_hidden = int(round(hidden_s * 60))
    scenes = []
    for f in range(30 + n_hidden + 40):
        a = _body((-1.5 + 0.8 * f / 60.0, 0.6), yaw=0.0)
        b = _body((0.0, -1.0), 0.88, 0.5)
        scenes.append([b] if 30 <= f < 30 + n_hidden else [a, b])
    ids = _run(tr, P, rng, scenes)
    a_before = {i[0] for i in ids[:30]}
    a_after = [i[0] for i in ids[30 + n_hidden :]]
    b_all = {i[-1] for i in ids}
    assert a_before == {1} and b_all == {2}
    if same_id:  # back in view: not published while pending, then under its old id
        assert a_after[: REID_MIN_HITS - 1] == [0] * (REID_MIN_HITS - 1) and set(a_after[REID_MIN_HITS:]) == {1}
    else:  # nobody kept to be: published at once, under a new id
        assert set(a_after) == {3}
    assert tr.n_reidentified == (1 if same_id else 0)


def test_two_people_of_different_shape_swapping_places_while_hidden_get_their_own_ids_back(rig, rng):
    """A (tall) and B (12% smaller) stand 2 m apart, leave every view for 2 s and come back in each
    other's place: both are within reach of either place, so only their bone lengths tell them apart."""
    tr = _tracker(rig, reid_max_s=5.0)
    P = rig.projections()
    left, right = (-1.0, 0.0), (1.0, 0.0)
    scenes = [[_body(left), _body(right, 0.88)]] * 40 + [[]] * 120 + [[_body(right), _body(left, 0.88)]] * 40
    ids = _run(tr, P, rng, scenes)
    a0, b0 = ids[39]
    assert {a0, b0} == {1, 2}
    a1, b1 = ids[-1]
    assert (a1, b1) == (a0, b0) and tr.n_reidentified == 2


@pytest.mark.parametrize("with_descriptors", [True, False])
def test_appearance_descriptors_tell_people_of_one_shape_apart(rig, rng, with_descriptors):
    """Two people of the same body swap places while hidden for 2 s. With a noisy colour-like
    descriptor of each person in its groups, each gets its own id back; without, body shape cannot
    tell them apart, no match is confident and both get new ids."""
    tr = _tracker(rig, reid_max_s=5.0)
    P = rig.projections()
    looks = np.array([[1.0, 0.2, 0.1, 0.0], [0.1, 0.0, 0.9, 0.6]])
    left, right = (-1.0, 0.0), (1.0, 0.0)
    ids = []
    for f in range(200):
        if 40 <= f < 160:
            tr.predictions(f * DT_NS)
            continue
        order = [0, 1] if f < 40 else [1, 0]  # who stands left
        people = [_body(left), _body(right)]
        desc = looks[order] + rng.normal(0, 0.05, (2, 4))
        out = tr.update(*_frame(P, people, rng), f * DT_NS, descriptors=desc if with_descriptors else None)
        ids.append(dict(zip(order, out.track_ids.tolist(), strict=True)))
    assert ids[39] == {0: 1, 1: 2}
    if with_descriptors:
        assert ids[-1] == {0: 1, 1: 2} and tr.n_reidentified == 2
    else:
        assert set(ids[-1].values()) == {3, 4} and tr.n_reidentified == 0


def _sig(ids, roots, lengths, desc=None, last_ns=0):
    n = len(ids)
    L = np.asarray(lengths, dtype=float)
    return Signature(np.array(ids), np.full(n, last_ns), np.asarray(roots, float), L, np.full(L.shape, 0.005), desc)


def test_reidentifier_gates_on_reach_shape_and_appearance():
    """Two kept people; pending tracks match the right one by shape (Hungarian), a track out of
    reach or of another shape or another appearance gets no old id, and a match is used once."""
    short, tall = np.full(8, 0.30), np.full(8, 0.36)
    reid = ReIdentifier(keep_s=10.0, speed_mps=1.5, gate_m=0.5)
    reid.keep(_sig([4, 7], [[0.0, 0, 1], [1.0, 0, 1]], [short, tall], desc=np.eye(2)))
    now = 2_000_000_000  # 2 s later: reach 3.5 m
    # Swapped places: matched by shape.
    got = reid.match(_sig([10, 11], [[1.0, 0, 1], [0.0, 0, 1]], [short, tall]), now)
    assert got.tolist() == [4, 7] and len(reid) == 0
    reid.keep(_sig([4, 7], [[0.0, 0, 1], [1.0, 0, 1]], [short, tall], desc=np.eye(2)))
    far = reid.match(_sig([12], [[6.0, 0, 1]], [short]), now)  # 6 m in 2 s: out of reach
    other = reid.match(_sig([13], [[0.0, 0, 1]], [np.full(8, 0.25)]), now)  # 5 cm shorter bones
    looks = reid.match(_sig([14], [[0.0, 0, 1]], [short], desc=np.array([[0.0, 1.0]])), now)  # looks like 7
    assert far.tolist() == [0] and other.tolist() == [0] and looks.tolist() == [0] and len(reid) == 2
    reid.forget_older(11_000_000_000)  # 11 s after they were seen
    assert len(reid) == 0


def test_reid_settings_are_checked():
    for bad in ({"reid_max_s": -1.0}, {"reid_speed_mps": -0.5}):
        with pytest.raises(ConfigError, match="reid"):
            FusionConfig(**bad)
    with pytest.raises(ValueError):
        ReIdentifier(keep_s=-1.0, speed_mps=1.5, gate_m=0.5)


def test_group_descriptors_are_the_unit_mean_of_their_views():
    from fusion.reid import group_descriptors

    desc = [np.array([[1.0, 0.0], [0.0, 1.0]]), None, np.array([[0.0, 1.0]])]
    groups = [((0, 0), (2, 0)), ((0, 1),), ((1, 0),)]  # mixed views; one view of one person; a view with none
    out = group_descriptors(groups, desc)
    np.testing.assert_allclose(out, [[2**-0.5, 2**-0.5], [0.0, 1.0], [0.0, 0.0]])
    assert group_descriptors(groups, None) is None and group_descriptors(groups, [None, None, None]) is None


def test_a_frame_without_people_and_with_descriptors_updates(rig, rng):
    """The node calls update every frame, also with no group at all; the descriptors are then (0, D)
    (this crashed the tracker on the first empty frame of a run whose workers send descriptors)."""
    tr = _tracker(rig)
    P = rig.projections()
    desc = np.eye(1, 8)
    for f in range(4):
        tr.update(*_frame(P, [_body((0.0, 0.0))], rng), f * DT_NS, descriptors=desc)
    empty = tr.update(np.zeros((0, J, 4)), np.zeros((0, len(rig), J, 2)), np.zeros((0, len(rig), J)), 4 * DT_NS,
                      descriptors=np.zeros((0, 8)))  # fmt: skip
    assert empty.track_ids.size == 0 and len(tr.tracks) == 1  # the person is lost, not forgotten
