"""The start-up warm-up runs every stage of the reconstruction on its synthetic person."""

import numpy as np
import pytest

from capture.benchmarks.synthetic import ring_rig
from capture.kernel_warmup import _FRAMES, stage_point, warm_up
from core.config import FusionConfig
from core.skeleton import COCO17


def test_stage_point_is_where_the_ring_looks():
    assert np.allclose(stage_point(ring_rig(6)), [0.0, 0.0, 1.0], atol=1e-9)


@pytest.mark.parametrize("n_cameras, filt", [(4, "ukf"), (12, "ukf"), (4, "none")])
def test_warm_up_tracks_its_person_in_every_frame_after_the_first(n_cameras, filt):
    seconds, tracked = warm_up(ring_rig(n_cameras), COCO17, fusion=FusionConfig(filter=filt))
    assert seconds > 0
    assert tracked == _FRAMES - 1  # the association, triangulation and filter ran on every later frame
