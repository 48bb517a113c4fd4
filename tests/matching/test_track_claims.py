"""Track-driven association: batched claims equal per-view Hungarian; groups, singles, the matcher seam."""

from __future__ import annotations

import numpy as np
import pytest
from synth import person

from core.config import MatchingConfig
from core.skeleton import COCO17
from matching.epipolar import EpipolarMatcher
from matching.track_claims import TrackDrivenAssociator, claim_detections, project_tracks
from matching.tracks import assign_detections_to_tracks, joint_distance_matrix_2d

LEFT = np.array([a for a, _ in COCO17.left_right])
RIGHT = np.array([b for _, b in COCO17.left_right])
PEOPLE = [person((-0.8, 0.3), 0.2), person((0.5, -0.4), 1.9), person((0.9, 0.9), -0.7)]


def _pose4(X):
    return np.concatenate([X, np.ones((len(X), 1))], axis=1)


def _padded(per_view):
    """Per view (P_c, J, 2) -> padded (C, P, J, 2), (C, P, J) conf 1 (0 padding), (C,) counts."""
    counts = np.array([len(p) for p in per_view])
    P = counts.max()
    pts, conf = np.zeros((len(per_view), P, 17, 2)), np.zeros((len(per_view), P, 17))
    for c, p in enumerate(per_view):
        pts[c, : len(p)], conf[c, : len(p)] = p, 1.0
    return pts, conf, counts


def test_project_tracks_gates_scale_with_depth(rig):
    P = rig.projections()
    focal = np.array([cam.K[0, 0] for cam in rig])
    preds = np.stack([_pose4(X) for X in PEOPLE])
    uv, valid, gates = project_tracks(P, focal, preds, 0.3)
    assert valid.all()
    np.testing.assert_allclose(uv[1, 2], rig[1].project(PEOPLE[2]), atol=1e-9)
    depth = np.array([[(cam.R @ X.T + cam.t[:, None])[2].mean() for X in PEOPLE] for cam in rig])
    np.testing.assert_allclose(gates, 0.3 * focal[:, None] / depth, rtol=1e-9)
    preds[0, :, 3] = 0.0  # an unknown track: no valid joint, gate 0
    _, valid, gates = project_tracks(P, focal, preds, 0.3)
    assert not valid[:, 0].any() and (gates[:, 0] == 0).all()


@pytest.mark.parametrize("seed", range(30))
def test_batched_claims_equal_per_view_hungarian(seed):
    # Random crowded views (tracks close together, more tracks than detections in some views, weak
    # joints, unknown track joints): the batched claims are the per-view Hungarian assignment.
    rng = np.random.default_rng(seed)
    C, T, J = 5, int(rng.integers(1, 7)), 17
    centers = rng.uniform(0, 300, (T, 2))
    uv = centers[None, :, None] + rng.normal(scale=20, size=(C, T, J, 2))
    valid = rng.uniform(size=(C, T, J)) > 0.1
    counts = rng.integers(0, T + 3, C)
    P = int(counts.max())
    pts = np.zeros((C, P, J, 2))
    conf = np.zeros((C, P, J))
    for c in range(C):
        src = rng.integers(0, T, counts[c])
        pts[c, : counts[c]] = uv[c, src] + rng.normal(scale=8, size=(counts[c], J, 2))
        conf[c, : counts[c]] = rng.uniform(0.1, 1, (counts[c], J))
    gates = rng.uniform(5, 40, (C, T))
    got = claim_detections(uv, valid, gates, pts, conf, counts, 0.3, 5)
    for c in range(C):
        n = counts[c]
        cost = joint_distance_matrix_2d(uv[c], valid[c], pts[c, :n], conf[c, :n], 0.3, 5)
        assert got[c, :n].tolist() == assign_detections_to_tracks(cost, gates[c]).tolist()
        assert (got[c, n:] == -1).all()


class _SpyMatcher:
    """Records what the association hands to the cross-view matcher; groups like the epipolar one."""

    def __init__(self, inner):
        self.inner, self.calls = inner, []

    def match(self, points_px, conf, **kwargs):
        self.calls.append(([p.shape[0] for p in points_px], kwargs))
        return self.inner.match(points_px, conf)


def test_tracks_claim_first_then_the_matcher_groups_the_rest(rig):
    # Two tracked people, a third nobody tracks; track 7 (person 1) is seen by view 0 only (a single).
    per_view = [np.stack([cam.project(X) for X in PEOPLE]) for cam in rig]
    per_view[1], per_view[2], per_view[3] = per_view[1][[0, 2]], per_view[2][[0, 2]], per_view[3][[0, 2]]
    pts, conf, counts = _padded(per_view)
    spy = _SpyMatcher(EpipolarMatcher(rig))
    assoc = TrackDrivenAssociator(
        rig.projections(), np.array([c.K[0, 0] for c in rig]), LEFT, RIGHT, MatchingConfig(), spy
    )
    preds = np.stack([_pose4(PEOPLE[1]), _pose4(PEOPLE[0])])
    desc = [np.arange(n * 3, dtype=float).reshape(n, 3) for n in counts]
    out = assoc.associate(pts, conf, counts, np.array([7, 9]), preds, descriptors=desc)
    assert out.groups[0] == ((0, 0), (1, 0), (2, 0), (3, 0)) and out.hints[0] == 9
    assert [(tid, c, i) for tid, _, c, i in out.singles] == [(7, 0, 1)]
    # The untracked person is grouped by the matcher from the leftovers (and the released single).
    assert out.groups[1:] == [((0, 2), (1, 1), (2, 1), (3, 1))] and out.hints[1:] == [0]
    (sizes, kwargs), = spy.calls  # fmt: skip
    assert sizes == [2, 1, 1, 1]  # view 0: the released single and the untracked person
    # Descriptors of the unclaimed detections only, in the same order.
    assert [d[:, 0].tolist() for d in kwargs["descriptors"]] == [[3.0, 6.0], [3.0], [3.0], [3.0]]
    assert out.n_unflipped == 0


def test_matcher_gets_no_descriptors_keyword_without_descriptors(rig):
    per_view = [np.stack([cam.project(X) for X in PEOPLE]) for cam in rig]
    pts, conf, counts = _padded(per_view)
    spy = _SpyMatcher(EpipolarMatcher(rig))
    assoc = TrackDrivenAssociator(
        rig.projections(), np.array([c.K[0, 0] for c in rig]), LEFT, RIGHT, MatchingConfig(), spy
    )
    out = assoc.associate(pts, conf, counts, np.zeros(0, np.int64), np.zeros((0, 17, 4)))
    assert spy.calls == [([3, 3, 3, 3], {})]  # a two-argument matcher keeps working
    assert sorted(len(g) for g in out.groups) == [4, 4, 4] and out.hints == [0, 0, 0]
