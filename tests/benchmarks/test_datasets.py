"""Ground-truth readers (shapes, units, errors) and skeleton mappings for Shelf, Campus and Panoptic."""

from __future__ import annotations

import json

import numpy as np
import pytest

from capture.benchmarks.datasets import (
    COCO17_TO_SHELF14_BODY,
    PANOPTIC15,
    SHELF14,
    SKEL19,
    SKEL19_TO_SHELF15,
    HeadConvention,
    coco17_to_panoptic15,
    coco17_to_shelf14,
    read_4da_skel,
    read_campus_gt,
    read_crossview_result,
    read_panoptic_bodies,
    read_shelf_gt,
    skel19_to_shelf14,
)
from core.errors import InputError, ShapeError
from core.skeleton import COCO17

S = {n: i for i, n in enumerate(SHELF14)}
C = {n: i for i, n in enumerate(COCO17.joints)}


def _coco_pose() -> np.ndarray:
    """(1, 17, 3) COCO-17 person, metres, z up, facing +y (right side at +x)."""
    p = np.zeros((17, 3))
    for side, x in (("right", 0.1), ("left", -0.1)):
        p[C[f"{side}_ankle"]] = (x, 0, 0.05)
        p[C[f"{side}_knee"]] = (x, 0, 0.5)
        p[C[f"{side}_hip"]] = (x, 0, 0.95)
        p[C[f"{side}_shoulder"]] = (2 * x, 0, 1.45)
        p[C[f"{side}_elbow"]] = (2.2 * x, 0, 1.15)
        p[C[f"{side}_wrist"]] = (2.5 * x, 0, 0.9)
        p[C[f"{side}_eye"]] = (0.3 * x, 0.08, 1.65)
        p[C[f"{side}_ear"]] = (0.7 * x, 0.0, 1.62)
    p[C["nose"]] = (0.0, 0.1, 1.6)
    return p[None]


# ------------------------------------------------------------------------------------------ mappings


def test_coco17_body_mapping_matches_the_published_indices():
    assert COCO17_TO_SHELF14_BODY.tolist() == [16, 14, 12, 11, 13, 15, 10, 8, 6, 5, 7, 9]


@pytest.mark.parametrize("head", list(HeadConvention))
def test_coco17_to_shelf14_puts_limbs_where_expected(head):
    coco = _coco_pose()
    shelf = coco17_to_shelf14(coco, head)
    assert shelf.shape == (1, 14, 3)
    for name in SHELF14[:12]:
        np.testing.assert_array_equal(shelf[0, S[name]], coco[0, C[name]])
    assert shelf[0, S["right_hip"], 0] == 0.1 and shelf[0, S["left_ankle"]].tolist() == [-0.1, 0, 0.05]


def test_head_conventions_numbers():
    coco = _coco_pose()
    m = np.array([0.0, 0.0, 1.45])  # shoulder midpoint
    d = np.array([0.0, 0.1, 0.15])  # nose - m
    e = np.array([0.0, 0.0, 1.62])  # ear midpoint
    mv = coco17_to_shelf14(coco, HeadConvention.MVPOSE)[0]
    np.testing.assert_allclose(mv[S["top_head"]], m + d * [0.75, 0.75, 1.5])
    np.testing.assert_allclose(mv[S["bottom_head"]], m + d * 0.5)
    np.testing.assert_allclose(mv[S["top_head"]], [0, 0.075, 1.675])
    cv = coco17_to_shelf14(coco, "crossview")[0]
    np.testing.assert_allclose(cv[S["top_head"]], m + d * [0.78, 0.5, 1.5])
    np.testing.assert_allclose(cv[S["bottom_head"]], m + d * [0.3, 0.4, 0.6])
    vc = coco17_to_shelf14(coco, "voxelpose_campus")[0]
    np.testing.assert_allclose(vc[S["bottom_head"]], (m + e) / 2)
    np.testing.assert_allclose(vc[S["top_head"]], (m + e) / 2 + (e - (m + e) / 2) * 2)
    vs = coco17_to_shelf14(coco, "voxelpose_shelf")[0]
    np.testing.assert_allclose(vs[12:], 0.75 * mv[12:] + 0.25 * vc[12:])


def test_coco17_to_shelf14_errors():
    with pytest.raises(ValueError, match="valid: mvpose, crossview"):
        coco17_to_shelf14(_coco_pose(), "nose")
    with pytest.raises(ShapeError, match=r"\(P, 17, >=3\)"):
        coco17_to_shelf14(np.zeros((17, 3)))
    assert coco17_to_shelf14(np.zeros((0, 17, 3))).shape == (0, 14, 3)


def test_skel19_table_names_agree_with_shelf_names():
    for shelf_idx, skel_idx in enumerate(SKEL19_TO_SHELF15[:12]):
        assert SKEL19[skel_idx] == SHELF14[shelf_idx]
    assert [SKEL19[i] for i in SKEL19_TO_SHELF15[12:]] == ["neck", "nose", "pelvis"]


def test_skel19_to_shelf14_head_is_4d_association_interpolation():
    k = {n: i for i, n in enumerate(SKEL19)}
    p = np.zeros((1, 19, 4))
    p[0, :, :3] = np.random.default_rng(1).normal(size=(19, 3))
    p[0, k["pelvis"], :3] = (0, 0, 1.0)
    p[0, k["neck"], :3] = (0, 0, 1.5)
    p[0, k["right_shoulder"], :3] = (0.2, 0, 1.45)  # facing +y: right at +x
    p[0, k["left_shoulder"], :3] = (-0.2, 0, 1.45)
    p[0, k["right_ear"], :3] = (0.07, 0.0, 1.65)
    p[0, k["left_ear"], :3] = (-0.07, 0.0, 1.65)
    shelf = skel19_to_shelf14(p)[0]
    for name in SHELF14[:12]:
        np.testing.assert_array_equal(shelf[S[name]], p[0, k[name], :3])
    np.testing.assert_allclose(shelf[S["bottom_head"]], [0, 0, 1.55])
    np.testing.assert_allclose(shelf[S["top_head"]], [0, 0.125, 1.55 + 0.145])


def test_coco17_to_panoptic15():
    out = coco17_to_panoptic15(np.concatenate([_coco_pose(), np.ones((1, 17, 1))], axis=2))
    assert out.shape == (1, 15, 4)
    np.testing.assert_allclose(out[0, PANOPTIC15.index("mid_hip"), :3], [0, 0, 0.95])
    np.testing.assert_allclose(out[0, PANOPTIC15.index("left_knee"), :3], [-0.1, 0, 0.5])
    with pytest.raises(ShapeError):
        coco17_to_panoptic15(np.zeros((1, 17, 2)))


# ------------------------------------------------------------------------------ readers, synthetic


def test_read_4da_skel_layout_rows_are_coordinates(tmp_path):
    path = tmp_path / "skel.txt"
    rows = "\n".join(" ".join(str(10 * r + j) for j in range(3)) for r in range(4))
    path.write_text(f"3 2\n1\n7\n{rows}\n0\n")
    out = read_4da_skel(path, 3)
    assert list(out) == [0, 1] and out[1] == {}
    np.testing.assert_array_equal(out[0][7], [[0, 10, 20, 30], [1, 11, 21, 31], [2, 12, 22, 32]])


@pytest.mark.parametrize(
    ("text", "n_joints", "match"),
    [
        ("3 2\n1\n7\n1 2 3\n", 3, "truncated"),
        ("15 1\n0\n", 19, "15 joints"),
        ("3 1\n0\n5\n", 3, "left after"),
    ],
)
def test_read_4da_skel_errors_name_the_file(tmp_path, text, n_joints, match):
    path = tmp_path / "bad.txt"
    path.write_text(text)
    with pytest.raises(InputError, match=match) as e:
        read_4da_skel(path, n_joints)
    assert "bad.txt" in str(e.value)


def test_readers_report_missing_and_malformed_files(tmp_path):
    with pytest.raises(InputError, match="nope.json"):
        read_campus_gt(tmp_path / "nope.json")
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(InputError, match="x.json: not valid JSON"):
        read_crossview_result(tmp_path / "x.json")
    (tmp_path / "y.json").write_text(json.dumps([{"timestamp": 0.0, "poses": [{"id": 0, "points_3d": [[0, 0, 0]]}]}]))
    with pytest.raises(InputError, match=r"y.json: frame 0 pose is \(1, 3\)"):
        read_campus_gt(tmp_path / "y.json")
    with pytest.raises(InputError, match="no body3DScene"):
        read_panoptic_bodies(tmp_path)
    with pytest.raises(InputError, match="missing.mat"):
        read_shelf_gt(tmp_path / "missing.mat")


def test_read_campus_gt_converts_cm_and_timestamps(tmp_path):
    pose = np.arange(42.0).reshape(14, 3)
    data = [
        {"timestamp": 0.08, "poses": [{"id": 2, "points_3d": pose.tolist()}]},
        {"timestamp": 0.12, "poses": []},
    ]
    (tmp_path / "a.json").write_text(json.dumps(data))
    gt = read_campus_gt(tmp_path / "a.json")
    assert list(gt) == [2] and list(gt[2]) == [2]
    np.testing.assert_allclose(gt[2][2], pose / 100)


# ---------------------------------------------------------------------------------- readers, real


def test_read_shelf_gt(shared_data):
    gt = read_shelf_gt(shared_data / "shelf" / "original" / "actorsGT.mat")
    assert sorted(gt) == [0, 1, 2, 3]
    assert [sum(300 <= f <= 600 for f in gt[a]) for a in range(4)] == [279, 37, 161, 33]
    pose = gt[0][300]
    assert pose.shape == (14, 3) and pose.dtype == np.float64
    # metres, z up: ankles near the floor, top of the head above the neck, 1.4-2.1 m high
    assert abs(pose[S["right_ankle"], 2]) < 0.2 and 1.4 < pose[S["top_head"], 2] < 2.1
    assert pose[S["top_head"], 2] > pose[S["bottom_head"], 2]


def test_4da_gt_is_shelf_gt_from_frame_300(shared_data):
    gt = read_shelf_gt(shared_data / "shelf" / "original" / "actorsGT.mat")
    four = read_4da_skel(shared_data / "shelf" / "4d_association" / "gt.txt", 15)
    assert len(four) == 301
    for k, people in four.items():
        assert sorted(people) == sorted(a for a in gt if 300 + k in gt[a])
        for a, p in people.items():
            assert p.shape == (15, 4)
            np.testing.assert_allclose(p[:14, :3], gt[a][300 + k], atol=1e-5)
            np.testing.assert_allclose(p[14, :3], (p[S["right_hip"], :3] + p[S["left_hip"], :3]) / 2, atol=1e-5)
    skel = read_4da_skel(shared_data / "shelf" / "4d_association" / "skel.txt", 19)
    assert len(skel) == 301 and all(p.shape == (19, 4) for f in skel.values() for p in f.values())


def test_read_campus_gt_and_crossview_result(shared_data):
    gt = read_campus_gt(shared_data / "campus" / "crossview" / "annotation_3d.json")
    assert sorted(gt) == [0, 1, 2]
    assert all(0 <= f < 2000 for a in gt for f in gt[a])
    pose = gt[0][min(gt[0])]
    assert pose.shape == (14, 3) and 1.3 < pose[S["top_head"], 2] < 2.2  # metres
    res = read_crossview_result(shared_data / "campus" / "crossview" / "result_3d.json")
    assert len(res) == 1660 and all(p.shape == (17, 3) for ps in res.values() for p in ps)
    with_ids = read_crossview_result(shared_data / "campus" / "crossview" / "result_3d.json", with_ids=True)
    assert list(with_ids) == list(res)
    assert all(isinstance(i, int) and i > 2**32 for f in with_ids.values() for i in f)


def test_read_panoptic_bodies(shared_data):
    bodies = read_panoptic_bodies(shared_data / "panoptic" / "160906_band1" / "hdPose3d_stage1_coco19")
    assert len(bodies) == 20 and min(bodies) == 168
    b = bodies[168][0]
    assert b.shape == (19, 4)
    assert np.abs(b[:, :3]).max() < 5.0  # metres (the file is in cm)
    np.testing.assert_allclose(b[0], [1.24136, -1.05991, -0.302854, 0.709717])


def test_head_rules_use_only_known_joints():
    """Regression: missing joints (conf 0, coordinates 0) used to enter the head rules as points at
    the world origin, putting the head of any pose without ears or nose near (0, 0, 0)."""
    from capture.benchmarks.datasets import HeadConvention, coco17_to_shelf14
    from core.skeleton import COCO17

    pose = np.zeros((1, 17, 4))
    pose[0, :, :3] = [5.0, 5.0, 1.0]
    pose[0, :, 3] = 1.0
    pose[0, COCO17.index("left_shoulder"), :3] = [4.8, 5.0, 1.4]
    pose[0, COCO17.index("right_shoulder"), :3] = [5.2, 5.0, 1.4]
    pose[0, COCO17.index("nose"), :3] = [5.0, 5.1, 1.6]
    full = coco17_to_shelf14(pose, HeadConvention.MVPOSE)
    no_ears = pose.copy()
    no_ears[0, [COCO17.index("left_ear"), COCO17.index("right_ear")]] = 0.0
    # Without ears the VoxelPose Shelf blend falls back to the nose rule entirely.
    assert np.allclose(coco17_to_shelf14(no_ears, HeadConvention.VOXELPOSE_SHELF)[0, 12:], full[0, 12:])
    no_nose = pose.copy()
    no_nose[0, COCO17.index("nose")] = 0.0
    for eye in ("left_eye", "right_eye"):
        no_nose[0, COCO17.index(eye), :3] = [5.0, 5.1, 1.6]  # eyes where the nose was
    assert np.allclose(coco17_to_shelf14(no_nose, HeadConvention.MVPOSE)[0, 12:], full[0, 12:])
    assert (
        np.linalg.norm(coco17_to_shelf14(no_ears, HeadConvention.VOXELPOSE_CAMPUS)[0, 12:] - [5, 5, 1.5], axis=1).max()
        < 0.5
    )
