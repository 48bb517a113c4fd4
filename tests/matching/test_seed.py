"""Spread views for the start-up of large rigs."""

from __future__ import annotations

import numpy as np
from synth import ring_rig

from matching.seed import spread_views


def test_spread_views_cover_the_ring():
    rig = ring_rig(32, radius=5.0)
    centers = np.array([cam.center for cam in rig])
    seed = spread_views(centers, 8)
    assert seed.tolist() == sorted(set(seed.tolist())) and len(seed) == 8 and seed[0] == 0
    # Evenly around the ring: consecutive chosen cameras 4 apart (45 degrees), none bunched.
    gaps = np.diff(np.r_[seed, seed[0] + 32])
    assert gaps.min() >= 3 and gaps.max() <= 5, seed
    assert spread_views(centers[:5], 8).tolist() == [0, 1, 2, 3, 4]
