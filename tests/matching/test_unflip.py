"""Left/right unflip of claimed detections against their tracks' projections."""

from __future__ import annotations

import numpy as np
import pytest
from synth import person

from core.errors import ShapeError
from core.skeleton import COCO17
from matching.unflip import unflip_claimed

LEFT = np.array([a for a, _ in COCO17.left_right])
RIGHT = np.array([b for _, b in COCO17.left_right])


def _swap(a):
    out = a.copy()
    out[..., LEFT, :], out[..., RIGHT, :] = a[..., RIGHT, :], a[..., LEFT, :]
    return out


def test_swapped_detection_is_swapped_back_in_every_view(rig):
    # Two views, one track each claimed; view 1's detection comes left/right swapped (also its lifted
    # joints), view 0's does not; an unclaimed swapped detection is left alone.
    X = person((0.2, 0.1), 0.4)
    uv = np.stack([cam.project(X) for cam in rig.cameras[:2]])[:, None]  # (C, T=1, J, 2)
    pts = np.stack([np.stack([uv[0, 0], _swap(uv[0, 0])]), np.stack([_swap(uv[1, 0]), _swap(uv[1, 0])])])
    conf = np.ones(pts.shape[:3])
    conf[1, 0, RIGHT[0]] = 0.5  # marks where a swapped confidence ends up
    claimed = np.array([[0, -1], [0, -1]])
    lift = (np.arange(2 * 17 * 4, dtype=float).reshape(2, 17, 4), np.zeros((2, 17, 3, 3)))
    lift_before = lift[0].copy()
    n = unflip_claimed(pts, conf, claimed, uv, np.ones((2, 1, 17), bool), LEFT, RIGHT, [None, lift])
    assert n == len(LEFT)  # every pair of the one swapped claimed detection
    np.testing.assert_array_equal(pts[0, 0], uv[0, 0])
    np.testing.assert_array_equal(pts[1, 0], uv[1, 0])
    np.testing.assert_array_equal(pts[1, 1], _swap(uv[1, 0]))  # unclaimed: untouched
    assert conf[1, 0, LEFT[0]] == 0.5 and conf[1, 0, RIGHT[0]] == 1.0
    np.testing.assert_array_equal(lift[0][0], _swap(lift_before[0]))
    np.testing.assert_array_equal(lift[0][1], lift_before[1])


def test_unknown_or_ambiguous_pairs_stay(rig):
    X = person((0.2, 0.1), 0.4)
    uv = rig[0].project(X)[None, None]  # (1, 1, J, 2)
    pts = _swap(uv[0])[None].copy()  # (1, 1, J, 2)
    valid = np.ones((1, 1, 17), bool)
    valid[0, 0, LEFT] = False  # the track does not know its left joints
    assert unflip_claimed(pts, np.ones((1, 1, 17)), np.zeros((1, 1), int), uv, valid, LEFT, RIGHT) == 0
    np.testing.assert_array_equal(pts[0, 0], _swap(uv[0, 0]))
    with pytest.raises(ShapeError):
        unflip_claimed(pts, np.ones((1, 1, 17)), np.zeros((2, 1), int), uv, valid, LEFT, RIGHT)
