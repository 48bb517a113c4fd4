"""The take-quality figures used without ground truth: capture.benchmarks.take_quality."""

import numpy as np
import pytest

from capture.benchmarks.take_quality import take_quality
from core.skeleton import COCO17


def _pose(forearm_m: float, x: float = 0.0) -> np.ndarray:
    pose = np.zeros((17, 4))
    pose[:, 3] = 1.0
    pose[:, 0] = x
    pose[COCO17.index("left_wrist"), 1] = forearm_m  # left elbow at the origin (plus x)
    return pose


def test_take_quality_counts_jumps_ids_and_limb_variation():
    rng = np.random.default_rng(0)
    forearms = 0.25 + 0.02 * rng.standard_normal(20)  # 2 cm std on person 1's left forearm
    ids, poses, reproj = [], [], []
    for f, fa in enumerate(forearms):
        x2 = 1.0 if f != 10 else 1.5  # person 2 jumps 50 cm at frame 10 and back at 11: 2 x 17 joints
        ids.append(np.array([1, 2]))
        poses.append(np.stack([_pose(fa), _pose(0.26, x2)]))
        reproj.append(np.full(4, f, float))
    ids.append(np.array([3]))  # a third identity, once
    poses.append(_pose(0.3)[None])
    reproj.append(np.zeros(0))
    q = take_quality(ids, poses, reproj)
    assert q["ids"] == 3 and q["jumps"] == 2 * 17
    assert q["limb_std_cm"]["left forearm"] == pytest.approx(100 * np.std(forearms), abs=0.005)  # rounded
    assert q["limb_std_cm"]["right forearm"] == 0.0
    assert q["limb_std_cm_max"] == pytest.approx(100 * np.std(forearms), abs=0.005)
    assert q["reprojection_px"]["median"] == pytest.approx(9.5)
    assert q["people_per_frame"] == pytest.approx(41 / 21, abs=0.005)
    with pytest.raises(ValueError, match="one entry per frame"):
        take_quality(ids, poses[:-1], reproj)
