import numpy as np
import pytest
from synth import person

from core.errors import ShapeError
from fusion.tracking import Tracker, pose_distance_matrix

DT_NS = 16_666_667  # 60 fps


def _pose(xy, yaw=0.0):
    return np.concatenate([person(xy, yaw), np.ones((17, 1))], axis=1)


def test_two_people_crossing_keep_ids():
    """Two people walk towards each other and pass 0.4 m apart: constant-velocity prediction keeps ids."""
    tr = Tracker(gate_m=0.3)
    seen = []
    for f in range(120):
        a = _pose((-1.5 + 0.025 * f, 0.2))
        b = _pose((1.5 - 0.025 * f, -0.2))
        order = [0, 1] if f % 2 else [1, 0]  # detection order changes every frame
        poses = np.stack([(a, b)[i] for i in order])
        ids = tr.update(poses, f * DT_NS)
        seen.append(dict(zip(order, ids.tolist(), strict=True)))
    assert all(s == seen[0] for s in seen)
    assert sorted(seen[0].values()) == [1, 2]


def test_new_person_and_track_end():
    tr = Tracker(max_missed_s=0.5)
    ids0 = tr.update(_pose((0, 0))[None], 0)
    ids1 = tr.update(np.stack([_pose((0.01, 0)), _pose((2, 2))]), DT_NS)
    assert ids1[0] == ids0[0] and ids1[1] not in (0, ids0[0])
    # Person 1 is gone for 1 s (> max_missed_s): when it comes back it gets a new id.
    ids2 = tr.update(_pose((0.02, 0))[None], 60 * DT_NS + DT_NS)
    assert ids2[0] not in ids1.tolist()


def test_missing_joints_and_too_few_joints():
    tr = Tracker(min_joints=8)
    sparse = _pose((0, 0))
    sparse[5:, 3] = 0.0  # 5 valid joints: starts no track
    assert tr.update(sparse[None], 0).tolist() == [0]
    full = _pose((0, 0))
    tid = tr.update(full[None], DT_NS)[0]
    # The same person with a few joints missing still matches its track.
    part = _pose((0.005, 0))
    part[:10, 3] = 0.0
    assert tr.update(part[None], 2 * DT_NS).tolist() == [tid]


def test_pose_distance_matrix():
    a = np.stack([_pose((0, 0)), _pose((1, 0))])
    b = _pose((0.1, 0))[None]
    d = pose_distance_matrix(a, b)
    assert d.shape == (2, 1) and np.isclose(d[0, 0], 0.1) and np.isclose(d[1, 0], 0.9)
    b[0, :, 3] = 0
    assert np.isinf(pose_distance_matrix(a, b)).all()


def test_bad_shape():
    with pytest.raises(ShapeError):
        Tracker().update(np.zeros((1, 17, 3)), 0)


def _reference_update(track, pose, stamp_ns, a=0.5):
    """The per-track update as first written (one track at a time), to check the batched one against."""
    dt = (stamp_ns - track.stamp_ns) * 1e-9
    vel = track.velocity.copy()
    seen = pose[:, 3] > 0
    if dt > 0:
        both = seen & (track.pose[:, 3] > 0)
        vel = np.where(both[:, None], a * vel + (1 - a) * (pose[:, :3] - track.pose[:, :3]) / dt, vel)
    predicted = track.pose.copy()
    predicted[:, :3] += track.velocity * dt
    merged = np.where(seen[:, None], pose, predicted)
    merged[~seen, 3] *= 0.5
    return merged, np.where(seen[:, None], vel, 0.5 * vel)


def test_batched_update_matches_per_track_update_with_missing_joints_and_hints():
    """Two tracks updated in one batch, one with missing joints and one also seen at the same time
    (dt 0), hinted, with and without the predictions computed first: each track's pose and velocity
    are those of the per-track update, exactly."""
    rng = np.random.default_rng(3)
    for predict_first in (False, True):
        tr = Tracker(gate_m=0.5)
        a0, b0 = _pose((-1.0, 0.0)), _pose((1.0, 0.0))
        tr.update(np.stack([a0, b0]), 0)
        a1, b1 = a0.copy(), b0.copy()
        a1[:, :3] += 0.01
        b1[:, :3] -= 0.02
        tr.update(np.stack([a1, b1]), DT_NS)
        a2, b2 = a1.copy(), b1.copy()
        a2[:, :3] += 0.01 + rng.normal(scale=0.003, size=(17, 3))
        a2[[3, 9], 3] = 0.0  # two joints missing: predicted, conf halved, velocity halved
        b2[:, :3] -= 0.02
        want = [_reference_update(t, p, 2 * DT_NS) for t, p in zip(tr.tracks, (a2, b2), strict=True)]
        if predict_first:
            tr.predictions(2 * DT_NS)
        ids = tr.update(np.stack([b2, a2]), 2 * DT_NS, np.array([2, 1]))
        assert ids.tolist() == [2, 1]
        for t, (pose, vel) in zip(tr.tracks, want, strict=True):
            np.testing.assert_array_equal(t.pose, pose)
            np.testing.assert_array_equal(t.velocity, vel)
            assert t.seen_ns[0] == 2 * DT_NS
        assert tr.tracks[0].seen_ns[3] == DT_NS and tr.tracks[1].seen_ns[3] == 2 * DT_NS
        again = tr.update(np.stack([a2]), 2 * DT_NS)  # dt 0: velocity kept, pose replaced
        assert again.tolist() == [1]
        np.testing.assert_array_equal(tr.tracks[0].velocity[0], want[0][1][0])


def test_stale_predictions_are_not_reused_and_a_track_hinted_twice_goes_once():
    """Predictions made before a track changed are not reused by update(); a track hinted by two poses
    takes the first within its gate, and the other pose starts a new track."""
    tr = Tracker(gate_m=0.5)
    tr.update(_pose((0.0, 0.0))[None], 0)
    tr.predictions(DT_NS)
    tr.tracks[0].pose = _pose((3.0, 0.0))  # the track moved after the predictions were made
    ids = tr.update(_pose((3.0, 0.0))[None], DT_NS, np.array([1]))
    assert ids.tolist() == [1]  # within the gate of the current track, not of the stale prediction
    ids = tr.update(
        np.stack([_pose((8.0, 0.0)), _pose((3.0, 0.0)), _pose((3.05, 0.0))]), 2 * DT_NS, np.array([1, 1, 1])
    )
    assert ids[1] == 1 and ids[0] not in (0, 1) and ids[2] not in (0, 1, ids[0])
