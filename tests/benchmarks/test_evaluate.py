"""Shelf/Campus PCP and Panoptic AP/MPJPE: hand-made cases with known answers and peer reproductions."""

from __future__ import annotations

import numpy as np
import pytest

from capture.benchmarks.datasets import (
    SHELF14,
    HeadConvention,
    coco17_to_shelf14,
    read_4da_skel,
    read_campus_gt,
    read_crossview_result,
    read_panoptic_bodies,
    read_shelf_gt,
    skel19_to_shelf14,
)
from capture.benchmarks.evaluate import (
    CAMPUS_FRAMES,
    PART_NAMES,
    SHELF_FRAMES,
    PCPResult,
    mpjpe_voxelpose,
    pcp_crossview,
    pcp_voxelpose,
)
from core.errors import ShapeError

J = {n: i for i, n in enumerate(SHELF14)}
PCP_FUNCS = [pcp_voxelpose, pcp_crossview]


def _shelf_pose(offset=(0.0, 0.0, 0.0)) -> np.ndarray:
    """A standing Shelf-14 person (metres, z up), facing -y (right side at -x)."""
    p = {
        "right_ankle": (-0.1, 0, 0.05), "right_knee": (-0.1, 0, 0.5), "right_hip": (-0.1, 0, 0.95),
        "left_hip": (0.1, 0, 0.95), "left_knee": (0.1, 0, 0.5), "left_ankle": (0.1, 0, 0.05),
        "right_wrist": (-0.25, 0, 0.9), "right_elbow": (-0.22, 0, 1.15), "right_shoulder": (-0.2, 0, 1.45),
        "left_shoulder": (0.2, 0, 1.45), "left_elbow": (0.22, 0, 1.15), "left_wrist": (0.25, 0, 0.9),
        "bottom_head": (0, 0, 1.5), "top_head": (0, 0, 1.75),
    }  # fmt: skip
    return np.array([p[n] for n in SHELF14]) + np.asarray(offset)


@pytest.mark.parametrize("pcp", PCP_FUNCS)
def test_perfect_prediction_scores_100(pcp):
    gt = {a: {f: _shelf_pose((2.0 * a, 0, 0)) for f in range(5)} for a in range(3)}
    pred = {f: np.stack([gt[a][f] for a in (2, 0, 1)]) for f in range(5)}
    r = pcp(gt, pred, range(5))
    assert r.actor_pcp.tolist() == [1.0, 1.0, 1.0]
    assert r.average == 1.0
    assert r.n_evaluated.tolist() == [5, 5, 5]
    assert r.n_frames == 5
    assert r.part_pcp.shape == (3, 10) and r.group_pcp.shape == (3, 6)


@pytest.mark.parametrize("pcp", PCP_FUNCS)
def test_one_displaced_limb_end_is_exactly_that_part_wrong(pcp):
    g = _shelf_pose()
    p = g.copy()
    # Move the left wrist by more than the lower arm: the left lower arm (elbow-wrist) fails, the
    # left upper arm (shoulder-elbow) does not involve the wrist and stays right.
    forearm = np.linalg.norm(g[J["left_wrist"]] - g[J["left_elbow"]])
    p[J["left_wrist"]] += [0, 1.05 * forearm, 0]
    r = pcp({0: {0: g}}, {0: p[None]}, [0])
    expected = np.ones(10)
    expected[PART_NAMES.index("left_lower_arm")] = 0
    np.testing.assert_array_equal(r.part_pcp[0], expected)
    assert r.actor_pcp[0] == pytest.approx(0.9)


def test_part_threshold_is_inclusive_at_half_the_limb_length():
    g = _shelf_pose()
    thigh = np.linalg.norm(g[J["right_knee"]] - g[J["right_hip"]])
    for shift, ok in ((0.5 * thigh - 1e-9, True), (0.5 * thigh + 1e-6, False)):
        p = g.copy()
        p[J["right_hip"]] += [0, 2 * shift, 0]  # (0 + 2 shift) / 2 = shift vs 0.5 |thigh|
        r = pcp_voxelpose({0: {0: g}}, {0: p[None]}, [0])
        assert bool(r.part_pcp[0, PART_NAMES.index("right_upper_leg")]) is ok


def test_torso_uses_mid_hip_and_bottom_head():
    g = _shelf_pose()
    p = g.copy()
    torso = np.linalg.norm((g[J["right_hip"]] + g[J["left_hip"]]) / 2 - g[J["bottom_head"]])
    # Both hips move sideways in opposite directions: the mid-hip stays, the torso stays right.
    p[J["right_hip"]] += [-0.05, 0, 0]
    p[J["left_hip"]] += [0.05, 0, 0]
    r = pcp_voxelpose({0: {0: g}}, {0: p[None]}, [0])
    assert r.part_pcp[0, PART_NAMES.index("torso")] == 1
    # The neck moves by more than the torso: the torso and the head (neck-top) go wrong.
    p[J["bottom_head"]] += [0, 1.01 * torso, 0]
    r = pcp_voxelpose({0: {0: g}}, {0: p[None]}, [0])
    assert r.part_pcp[0, PART_NAMES.index("torso")] == 0
    assert r.part_pcp[0, PART_NAMES.index("head")] == 0
    assert r.actor_pcp[0] == pytest.approx(0.8)


@pytest.mark.parametrize("pcp", PCP_FUNCS)
def test_missing_prediction_counts_all_parts_wrong_and_frames_without_gt_are_skipped(pcp):
    gt = {0: {f: _shelf_pose() for f in (0, 1, 2, 3)}, 1: {0: _shelf_pose((3, 0, 0))}}
    pred = {0: np.stack([gt[0][0], gt[1][0]]), 1: gt[0][1][None], 3: gt[0][3][None]}
    r = pcp(gt, pred, [0, 1, 2, 3, 4], **({"max_gap_frames": 0} if pcp is pcp_crossview else {}))
    # Actor 0: 4 frames with GT, frame 2 has no prediction. Actor 1: 1 frame. Frame 4: nobody, skipped.
    assert r.n_evaluated.tolist() == [4, 1]
    assert r.actor_pcp.tolist() == [0.75, 1.0]
    assert r.correct[0].tolist() == [3] * 10


def test_crossview_uses_nearest_result_frame_within_gap():
    g = _shelf_pose()
    gt = {0: {10: g}}
    assert pcp_crossview(gt, {12: g[None]}, [10]).actor_pcp[0] == 1.0
    assert pcp_crossview(gt, {13: g[None]}, [10]).actor_pcp[0] == 0.0
    bad = g + [5.0, 0, 0]
    # Equal distance: the later frame wins (searchsorted then "strictly closer" test of Pose3DLoader).
    assert pcp_crossview(gt, {9: bad[None], 11: g[None]}, [10]).actor_pcp[0] == 1.0
    assert pcp_crossview(gt, {9: g[None], 11: bad[None]}, [10]).actor_pcp[0] == 0.0


@pytest.mark.parametrize("pcp", PCP_FUNCS)
def test_closest_prediction_serves_every_actor_not_one_to_one(pcp):
    a, b = _shelf_pose(), _shelf_pose((0.1, 0, 0))  # 10 cm apart: a scores b fully
    gt = {0: {0: a}, 1: {0: b}}
    # One prediction exactly on actor 0 and one far away: actor 1's closest is actor 0's prediction
    # (a one-to-one assignment would give actor 1 the far prediction instead).
    far = _shelf_pose((10, 0, 0))
    r = pcp(gt, {0: np.stack([far, a])}, [0])
    one_to_one_pcp = pcp({1: {0: b}}, {0: far[None]}, [0]).actor_pcp[0]
    shared_pcp = pcp({1: {0: b}}, {0: a[None]}, [0]).actor_pcp[0]
    assert r.actor_pcp[0] == 1.0
    assert r.actor_pcp[1] == shared_pcp == 1.0
    assert one_to_one_pcp == 0.0


def test_matching_criteria_differ_between_protocols():
    """VoxelPose matches by mean joint distance, Chen et al. by the Frobenius norm."""
    g = _shelf_pose()
    spread = g + [0.1, 0, 0]  # every joint 10 cm off: mean 0.1, Frobenius 0.1 * sqrt(14) = 0.374
    spike = g.copy()
    spike[J["left_wrist"]] += [0, 0.3, 0]
    spike[J["left_elbow"]] += [0, 0.2, 0]  # mean 0.036, Frobenius 0.361
    pv = pcp_voxelpose({0: {0: g}}, {0: np.stack([spread, spike])}, [0])
    pc = pcp_crossview({0: {0: g}}, {0: np.stack([spread, spike])}, [0])
    # Both choose `spike` here (also smallest Frobenius): construct the opposite case too.
    assert pv.correct.tolist() == pc.correct.tolist()
    spike2 = g.copy()
    spike2[J["left_wrist"]] += [0, 0.5, 0]  # mean 0.036 < 0.1, Frobenius 0.5 > 0.374
    pv = pcp_voxelpose({0: {0: g}}, {0: np.stack([spread, spike2])}, [0])
    pc = pcp_crossview({0: {0: g}}, {0: np.stack([spread, spike2])}, [0])
    lower_arm = PART_NAMES.index("left_lower_arm")
    assert pv.part_pcp[0, lower_arm] == 0  # spike2 chosen: its wrist is wrong
    assert pc.part_pcp[0, lower_arm] == 1  # spread chosen: 10 cm on a 25 cm forearm is within half


def test_average_excludes_shelf_fourth_actor():
    gt = {a: {0: _shelf_pose((2.0 * a, 0, 0))} for a in range(4)}
    pred = {0: np.stack([gt[a][0] for a in range(3)])}  # actor 3 gets actor 2's pose: all wrong
    r = pcp_voxelpose(gt, pred, [0])
    assert r.actor_pcp[3] < 1.0
    assert r.average == 1.0
    assert r.averaged_actors == (0, 1, 2)
    assert pcp_crossview(gt, pred, [0], averaged_actors=(0, 1, 2)).average == 1.0


def test_recall_500_and_summary():
    g = _shelf_pose()
    r = pcp_voxelpose({0: {0: g, 1: g}}, {0: g[None], 1: (g + [0.6, 0, 0])[None]}, [0, 1])
    assert r.recall_500 == 0.5
    text = r.summary()
    assert "voxelpose" in text and "Lower arms" in text and "recall@500mm: 50.00" in text


@pytest.mark.parametrize("n_joints", [13, 15])
def test_pcp_rejects_wrong_prediction_shape(n_joints):
    """15 joints too: 4D Association's SHELF15 (with mid-hip) must be mapped, not silently cut."""
    with pytest.raises(ShapeError, match=r"frame 0 must be \(P, 14, >=3\)"):
        pcp_voxelpose({0: {0: _shelf_pose()}}, {0: np.zeros((1, n_joints, 3))}, [0])


def test_pcp_result_validates_shapes():
    with pytest.raises(ShapeError):
        PCPResult("voxelpose", (0,), np.zeros((1, 9)), np.zeros(1), (0,), 1)


# ---------------------------------------------------------------------------------------- Panoptic


def _body(offset=(0.0, 0.0, 0.0), rng=None) -> np.ndarray:
    b = np.ones((19, 4))
    base = rng.normal(size=(19, 3)) * 0.3 if rng is not None else np.linspace(0, 1, 57).reshape(19, 3)
    b[:, :3] = base + np.asarray(offset)
    return b


def test_mpjpe_of_translated_pose_is_the_translation(rng):
    gt = {0: [_body(rng=rng)], 12: [_body((3, 0, 0), rng=rng)]}
    t = np.array([0.012, -0.005, 0.009])  # |t| = 15.8 mm, below every AP threshold
    pred = {f: np.stack([b[:15, :3] + t for b in bodies]) for f, bodies in gt.items()}
    r = mpjpe_voxelpose(gt, pred)
    assert r.mpjpe_mm == pytest.approx(1000 * np.linalg.norm(t))
    assert r.n_gt == 2 and r.n_pred == 2
    assert r.recall_500 == 1.0
    np.testing.assert_allclose(r.ap, 1.0, atol=1e-4)
    np.testing.assert_allclose(r.recall, 1.0, atol=1e-4)
    far = {f: v + [0.03, 0, 0] for f, v in pred.items()}  # about 43 mm: missed at 25 mm only
    np.testing.assert_allclose(mpjpe_voxelpose(gt, far).ap, [0, 1, 1, 1, 1, 1], atol=1e-4)
    np.testing.assert_array_equal(r.thresholds_mm, [25, 50, 75, 100, 125, 150])


def test_mpjpe_uses_visible_joints_and_drops_bodies_without_mid_hip(rng):
    b = _body(rng=rng)
    b[4, 3] = 0.05  # invisible joint: its error must not count
    hidden = _body((5, 0, 0), rng=rng)
    hidden[2, 3] = 0.1  # mid-hip conf not > 0.1: the body is not ground truth
    p = b[:15, :3].copy()
    p[4] += 10.0
    r = mpjpe_voxelpose({0: [b, hidden]}, {0: p[None]})
    assert r.n_gt == 1
    assert r.mpjpe_mm == pytest.approx(0.0, abs=1e-9)
    # Frames whose GT is empty after the filter are skipped, predictions there ignored.
    r = mpjpe_voxelpose({0: [hidden]}, {0: p[None]})
    assert r.n_gt == 0 and r.n_pred == 0 and r.mpjpe_mm == float("inf")


def test_ap_with_one_false_positive(rng):
    gt = {0: [_body(rng=rng)]}
    good = gt[0][0][:15, :3]
    dup = good + [0.2, 0, 0]  # 200 mm off: assigned to the same body, a false positive at every t
    preds = {0: np.stack([good, dup])}
    # The false positive scored lower: precision at full recall is still 1, AP = 1.
    r = mpjpe_voxelpose(gt, preds, {0: [0.9, 0.5]})
    np.testing.assert_allclose(r.ap, 1.0, atol=1e-4)
    # Scored higher: the curve starts with precision 0, the true positive comes at precision 1/2.
    r = mpjpe_voxelpose(gt, preds, {0: [0.5, 0.9]})
    np.testing.assert_allclose(r.ap, 0.5, atol=1e-4)
    assert r.mpjpe_mm == pytest.approx(200.0)  # greedy by score: the 200 mm one takes the body
    assert r.recall_500 == 1.0


def test_mpjpe_greedy_match_lets_higher_score_take_the_body(rng):
    gt = {0: [_body(rng=rng)]}
    good = gt[0][0][:15, :3]
    near = good + [0.03, 0, 0]  # 30 mm
    r = mpjpe_voxelpose(gt, {0: np.stack([good, near])}, {0: [0.1, 0.9]})
    assert r.mpjpe_mm == pytest.approx(30.0)  # the higher-scored 30 mm prediction takes the body
    np.testing.assert_allclose(r.ap, [0.5, 1, 1, 1, 1, 1], atol=1e-4)


def test_mpjpe_rejects_bad_shapes():
    with pytest.raises(ShapeError):
        mpjpe_voxelpose({0: [np.ones((19, 3))]}, {})
    with pytest.raises(ShapeError, match="scores"):
        mpjpe_voxelpose({0: [_body()]}, {0: _body()[None, :15, :3]}, {0: [0.1, 0.2]})


# --------------------------------------------------------------------------------- reproductions


def test_crossview_campus_reproduces_chen_et_al(shared_data):
    """Chen et al.'s own Campus output scored with their evaluation: 97.14 / 94.13 / 98.62, 96.63."""
    gt = read_campus_gt(shared_data / "campus" / "crossview" / "annotation_3d.json")
    res = read_crossview_result(shared_data / "campus" / "crossview" / "result_3d.json")
    pred = {f: coco17_to_shelf14(np.reshape(p, (-1, 17, 3)), HeadConvention.CROSSVIEW) for f, p in res.items()}
    r = pcp_crossview(gt, pred, CAMPUS_FRAMES)
    np.testing.assert_allclose(100 * r.actor_pcp, [97.14, 94.13, 98.62], atol=0.005)
    assert 100 * r.average == pytest.approx(96.63, abs=0.005)
    assert r.n_frames == 222


def test_4d_association_shelf_score(shared_data):
    """4D Association's own Shelf output (SKEL19 mapped by its MappingToShelf), VoxelPose protocol."""
    gt = read_shelf_gt(shared_data / "shelf" / "original" / "actorsGT.mat")
    skel = read_4da_skel(shared_data / "shelf" / "4d_association" / "skel.txt", 19)
    pred = {300 + k: skel19_to_shelf14(np.reshape(list(p.values()), (-1, 19, 4))) for k, p in skel.items()}
    r = pcp_voxelpose(gt, pred, SHELF_FRAMES)
    np.testing.assert_allclose(100 * r.actor_pcp[:3], [99.75, 91.35, 97.70], atol=0.1)
    assert 100 * r.average == pytest.approx(96.3, abs=0.1)
    assert r.n_evaluated.tolist() == [279, 37, 161, 33]


def test_panoptic_ground_truth_against_itself(shared_data, rng):
    gt = read_panoptic_bodies(shared_data / "panoptic" / "160906_band1" / "hdPose3d_stage1_coco19")
    exact = mpjpe_voxelpose(gt, {f: np.stack(b)[:, :15, :3] for f, b in gt.items()})
    assert exact.n_gt == exact.n_pred == 60
    assert exact.mpjpe_mm == pytest.approx(0.0, abs=1e-9)
    np.testing.assert_allclose(exact.ap, 1.0, atol=1e-4)
    noise = {f: np.stack(b)[:, :15, :3] + rng.normal(scale=0.01, size=(len(b), 15, 3)) for f, b in gt.items()}
    r = mpjpe_voxelpose(gt, noise)
    # 10 mm per axis: mean 3D error 10 * sqrt(8 / pi) = 16 mm over the visible joints
    assert 14.0 < r.mpjpe_mm < 18.0 and r.recall_500 == 1.0
