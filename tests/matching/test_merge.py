"""Duplicate-group merging: disjoint views and coinciding 3D poses make one person."""

from __future__ import annotations

import numpy as np
from synth import person

from core.numeric import pose_distance_matrix
from matching.merge import merge_duplicate_groups


def _pose(xy, yaw=0.0, dx=0.0):
    X = person(xy, yaw) + np.array([dx, 0.0, 0.0])
    return np.concatenate([X, np.ones((len(X), 1))], axis=1)


def test_pose_distances_median_over_common_joints():
    a, b = _pose((0, 0)), _pose((0, 0), dx=0.1)
    b[:5, :3] += 3.0  # a few wrong joints do not move the median
    assert abs(pose_distance_matrix(a[None], b[None])[0, 0] - 0.1) < 1e-9
    b[:, 3] = 0.0
    b[:2, 3] = 1.0
    assert np.isinf(pose_distance_matrix(a[None], b[None])[0, 0])  # 2 common joints < 3


def test_split_person_is_merged_keeping_the_track():
    groups = [((0, 0), (1, 0)), ((2, 1), (3, 0)), ((0, 1), (1, 1))]
    hints = [0, 5, 0]
    poses = np.stack([_pose((0, 0), dx=0.05), _pose((0, 0)), _pose((2, 0))])
    out, out_hints, merged = merge_duplicate_groups(groups, hints, poses, 0.3)
    assert merged
    assert out == [((0, 0), (1, 0), (2, 1), (3, 0)), ((0, 1), (1, 1))] and out_hints == [5, 0]


def test_no_merge_across_shared_views_tracks_or_distance():
    poses = np.stack([_pose((0, 0)), _pose((0, 0), dx=0.05)])
    shared = [((0, 0), (1, 0)), ((1, 1), (2, 0))]
    assert merge_duplicate_groups(shared, [0, 0], poses, 0.3) == (shared, [0, 0], False)
    disjoint = [((0, 0), (1, 0)), ((2, 0), (3, 0))]
    assert merge_duplicate_groups(disjoint, [3, 4], poses, 0.3) == (disjoint, [3, 4], False)  # two tracks
    assert not merge_duplicate_groups(disjoint, [0, 0], poses, 0.01)[2]  # 5 cm apart, 1 cm bound
