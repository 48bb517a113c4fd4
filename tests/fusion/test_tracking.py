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
