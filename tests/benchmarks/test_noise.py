"""Semi-synthetic 2D detections: exact projection without noise, stated rates with it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from synth import person, ring_rig

from calibration.camera import CameraRig
from capture.benchmarks.datasets import SHELF14, coco17_to_shelf14
from capture.benchmarks.noise import (
    COCO17_FROM_PANOPTIC19,
    SYNTHETIC_FROM_SHELF14,
    NoiseModel,
    panoptic19_to_coco17,
    shelf14_to_coco17,
    synthesize_detections,
    synthesize_detections_with_ids,
)
from core.errors import ShapeError
from core.skeleton import COCO17

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
L_SHO, R_SHO = COCO17.index("left_shoulder"), COCO17.index("right_shoulder")


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"real data {path} is absent")
    return path


def _people() -> list[np.ndarray]:
    return [person((0.0, 0.0), 0.3), person((1.0, 0.5), 2.0), person((-0.8, -0.6), -1.2)]


@pytest.mark.parametrize("dist", [None, np.array([-0.2, 0.05, 0.001, -0.001, 0.0])])
def test_zero_noise_reprojects_exactly(dist):
    rig = ring_rig(dist=dist)
    people = _people()
    dets, ids = synthesize_detections_with_ids(
        rig, people, np.random.default_rng(1), NoiseModel.zero(), frame_idx=7, stamp_ns=123
    )
    assert [d.camera for d in dets] == list(rig.names)
    for cam, det, who in zip(rig, dets, ids, strict=True):
        assert det.frame_idx == 7 and det.stamp_ns == 123
        assert sorted(who.tolist()) == [0, 1, 2]
        for pose, i in zip(det.poses, who, strict=True):
            np.testing.assert_allclose(pose[:, :2], cam.project(people[i]), atol=1e-3)  # float32
            assert (pose[:, 2] == 1).all()
        np.testing.assert_allclose(det.boxes[:, 4], 1.0)
        np.testing.assert_allclose(det.boxes[:, :2], det.poses[..., :2].min(axis=1))
        np.testing.assert_allclose(det.boxes[:, 2:4], det.poses[..., :2].max(axis=1))


def test_shapes_dtypes_and_determinism(rig):
    a = synthesize_detections(rig, _people(), np.random.default_rng(5), frame_idx=3)
    b = synthesize_detections(rig, _people(), np.random.default_rng(5), frame_idx=3)
    for da, db in zip(a, b, strict=True):
        assert da.poses.dtype == np.float32 and da.boxes.dtype == np.float32
        assert da.poses.shape[1:] == (17, 3) and da.boxes.shape == (da.n_people, 5)
        np.testing.assert_array_equal(da.poses, db.poses)
        missing = da.poses[..., 2] == 0
        assert (da.poses[..., :2][missing] == 0).all()
    empty = synthesize_detections(rig, [], np.random.default_rng(0), NoiseModel.zero())
    assert all(d.poses.shape == (0, 17, 3) and d.boxes.shape == (0, 5) for d in empty)


def test_empirical_rates_match_the_model(rig):
    """Misses, drops, false detections, confidences and pixel noise over 6000 person-views."""
    model = NoiseModel(flip_prob=0.0)  # flips are measured without noise below
    rng = np.random.default_rng(2)
    people = _people()
    proj = [[cam.project(p) for p in people] for cam in rig]
    n_views = n_person_views = n_found = n_joints = n_dropped = n_false = 0
    residuals, confs, false_confs, orders = [], [], [], set()
    for t in range(500):
        dets, ids = synthesize_detections_with_ids(rig, people, rng, model, frame_idx=t)
        for c, (det, who) in enumerate(zip(dets, ids, strict=True)):
            n_views += 1
            n_person_views += len(people)
            n_false += int((who < 0).sum())
            orders.add(tuple(who[who >= 0].tolist()))
            for pose, i in zip(det.poses, who, strict=True):
                kept = pose[:, 2] > 0
                if i < 0:
                    false_confs.append(pose[kept, 2])
                    continue
                n_found += 1
                n_joints += 17
                n_dropped += int((~kept).sum())
                residuals.append(pose[kept, :2] - proj[c][i][kept])
                confs.append(pose[kept, 2])
    assert 1 - n_found / n_person_views == pytest.approx(model.miss_prob, abs=0.012)  # 4 sigma
    assert n_dropped / n_joints == pytest.approx(model.joint_drop_prob, abs=0.004)
    assert n_false / n_views == pytest.approx(model.false_per_view, abs=0.04)
    res = np.concatenate(residuals)
    assert res.mean(axis=0) == pytest.approx([0, 0], abs=0.1)
    assert res.std(axis=0) == pytest.approx([model.sigma_px] * 2, rel=0.03)
    confs = np.concatenate(confs)
    assert confs.min() >= 0.5 and confs.max() <= 1.0 and confs.mean() == pytest.approx(0.75, abs=0.01)
    false_confs = np.concatenate(false_confs)
    assert false_confs.min() >= 0.2 and false_confs.max() <= 0.45
    assert len(orders) > 1  # person order is shuffled


def test_empirical_flip_rate_matches_the_model(rig):
    model = NoiseModel(sigma_px=0.0, joint_drop_prob=0.0, miss_prob=0.0, false_per_view=0.0, flip_prob=0.1)
    rng = np.random.default_rng(3)
    people = _people()
    proj = [[cam.project(p) for p in people] for cam in rig]
    n, flipped = 0, 0
    for _ in range(300):
        dets, ids = synthesize_detections_with_ids(rig, people, rng, model)
        for c, (det, who) in enumerate(zip(dets, ids, strict=True)):
            for pose, i in zip(det.poses, who, strict=True):
                n += 1
                if not np.allclose(pose[:, :2], proj[c][i], atol=1e-3):
                    swapped = proj[c][i][[COCO17.joints.index(_mirror(j)) for j in COCO17.joints]]
                    np.testing.assert_allclose(pose[:, :2], swapped, atol=1e-3)
                    flipped += 1
    assert n == 3600
    assert flipped / n == pytest.approx(model.flip_prob, abs=0.02)  # 4 sigma


def _mirror(name: str) -> str:
    if name.startswith("left_"):
        return "right_" + name[5:]
    return "left_" + name[6:] if name.startswith("right_") else name


def test_false_detections_look_like_people(rig):
    model = NoiseModel(sigma_px=0.0, joint_drop_prob=0.0, miss_prob=1.0, false_per_view=3.0)
    dets, ids = synthesize_detections_with_ids(rig, _people(), np.random.default_rng(3), model)
    n = 0
    for det, who in zip(dets, ids, strict=True):
        assert (who == -1).all()
        width, height = rig[det.camera].size
        for pose in det.poses:
            n += 1
            assert (pose[:, 2] > 0).all()
            h = np.ptp(pose[:, 1])
            assert 0.2 * height - 1 <= h <= 0.6 * height + 1
            assert (pose[:, 0] >= 0).all() and (pose[:, 0] <= width).all() and (pose[:, 1] >= 0).all()
            ankle, nose = pose[COCO17.index("left_ankle"), 1], pose[COCO17.index("nose"), 1]
            assert ankle > nose  # upright, head at the top
            sho = abs(pose[L_SHO, 0] - pose[R_SHO, 0])
            assert 0.15 * h < sho < 0.35 * h  # human proportions
    assert n >= 6


def test_joints_outside_the_image_or_behind_the_camera_are_missing(rig):
    cam = rig[0]
    rig1 = CameraRig((cam,))
    behind = cam.center + (cam.center - np.array([0.0, 0.0, 1.0]))  # 4 m behind camera 0
    back = person(behind[:2]) + [0.0, 0.0, 0.0]
    dets = synthesize_detections(rig1, [back], np.random.default_rng(0), NoiseModel.zero())
    assert dets[0].n_people == 0
    # a person so close that the head leaves the top of the image: those joints are missing
    toward = (np.array([0.0, 0.0, 1.0]) - cam.center) / np.linalg.norm(np.array([0.0, 0.0, 1.0]) - cam.center)
    near = person((cam.center + 1.2 * toward)[:2])
    dets = synthesize_detections(rig1, [near], np.random.default_rng(0), NoiseModel.zero())
    uv = cam.project(near)
    inside = (uv[:, 1] >= -0.5) & (uv[:, 1] <= cam.size[1] - 0.5) & (uv[:, 0] >= -0.5) & (uv[:, 0] <= cam.size[0] - 0.5)
    assert 0 < inside.sum() < 17
    np.testing.assert_array_equal(dets[0].poses[0, :, 2] > 0, inside)


def test_invalid_joints_are_never_reported(rig):
    valid = np.ones(17, dtype=bool)
    valid[[0, 9, 16]] = False
    dets = synthesize_detections(rig, _people()[:1], np.random.default_rng(0), NoiseModel.zero(), valid=[valid])
    for det in dets:
        np.testing.assert_array_equal(det.poses[0, :, 2] > 0, valid)


def test_bad_inputs_raise(rig):
    rng = np.random.default_rng(0)
    with pytest.raises(ShapeError, match=r"\(17, 3\)"):
        synthesize_detections(rig, [np.zeros((14, 3))], rng)
    with pytest.raises(ShapeError, match="finite"):
        synthesize_detections(rig, [np.full((17, 3), np.nan)], rng)
    with pytest.raises(ShapeError, match="one mask per person"):
        synthesize_detections(rig, _people(), rng, valid=[np.ones(17, bool)])
    with pytest.raises(ValueError, match="miss_prob"):
        NoiseModel(miss_prob=1.5)
    with pytest.raises(ValueError, match="sigma_px"):
        NoiseModel(sigma_px=-1.0)
    with pytest.raises(ValueError, match="conf_range"):
        NoiseModel(conf_range=(0.9, 0.5))


def test_sigma_rel_grows_with_person_height(rig):
    model = NoiseModel(sigma_px=0.0, sigma_rel=0.02, joint_drop_prob=0.0, miss_prob=0.0, false_per_view=0.0,
                       flip_prob=0.0)  # fmt: skip
    people = _people()[:1]
    res, heights = [], []
    rng = np.random.default_rng(4)
    for _ in range(200):
        for cam, det in zip(rig, synthesize_detections(rig, people, rng, model), strict=True):
            truth = cam.project(people[0])
            res.append(det.poses[0, :, :2] - truth)
            heights.append(np.ptp(truth[:, 1]))
    assert np.concatenate(res).std() == pytest.approx(0.02 * np.mean(heights), rel=0.1)


# --- dataset skeletons ------------------------------------------------------------------------------


def _shelf_pose() -> np.ndarray:
    """A Shelf-14 pose from the synthetic COCO template (facing +y), head from the nose/shoulders."""
    coco = person((0.0, 0.0))
    shelf = np.zeros((14, 3))
    for i, name in enumerate(SHELF14[:12]):
        shelf[i] = coco[COCO17.index(name)]
    shelf[12] = (coco[L_SHO] + coco[R_SHO]) / 2 + [0.0, 0.0, 0.12]
    shelf[13] = shelf[12] + [0.0, 0.0, 0.26]
    return shelf


def test_shelf14_to_coco17_copies_limbs_and_places_the_face_in_front():
    shelf = _shelf_pose()
    coco = shelf14_to_coco17(shelf)
    for i, name in enumerate(SHELF14[:12]):
        np.testing.assert_array_equal(coco[COCO17.index(name)], shelf[i])
    assert [COCO17.joints[j] for j in np.flatnonzero(SYNTHETIC_FROM_SHELF14)] == [
        "nose", "left_eye", "right_eye", "left_ear", "right_ear"
    ]  # fmt: skip
    nose, le, re_, lear, rear = (
        coco[COCO17.index(n)] for n in ("nose", "left_eye", "right_eye", "left_ear", "right_ear")
    )
    assert nose[1] > 0.03  # the template faces +y
    assert le[0] < re_[0] and lear[0] < rear[0]  # facing +y, the person's left is -x (as in the template)
    assert shelf[12, 2] < nose[2] < le[2] < shelf[13, 2]
    with pytest.raises(ShapeError, match="Shelf-14"):
        shelf14_to_coco17(np.zeros((17, 3)))


@pytest.mark.parametrize("head", ["mvpose", "crossview", "voxelpose_campus", "voxelpose_shelf"])
def test_shelf14_head_survives_the_evaluation_head_rules_on_real_ground_truth(head):
    """GT -> COCO-17 (invented face) -> Shelf-14 by each head rule keeps the head part PCP-correct."""
    pytest.importorskip("scipy.io")
    from capture.benchmarks.datasets import read_shelf_gt

    gt = read_shelf_gt(_need(DATA / "shelf" / "original" / "actorsGT.mat"))
    poses = np.array([p for actor in gt.values() for p in actor.values()])
    coco = np.array([shelf14_to_coco17(p) for p in poses])
    back = coco17_to_shelf14(coco, head)
    np.testing.assert_allclose(back[:, :12], poses[:, :12])
    err = (np.linalg.norm(back[:, 12] - poses[:, 12], axis=1) + np.linalg.norm(back[:, 13] - poses[:, 13], axis=1)) / 2
    length = np.linalg.norm(poses[:, 13] - poses[:, 12], axis=1)
    assert (err <= 0.5 * length).mean() > 0.99
    left = np.einsum("ij,ij->i", coco[:, COCO17.index("left_eye")] - coco[:, COCO17.index("right_eye")],
                     coco[:, L_SHO] - coco[:, R_SHO])  # fmt: skip
    assert (left > 0).all()


def test_panoptic19_to_coco17_maps_by_name():
    joints = np.zeros((19, 4))
    joints[:, 0] = np.arange(19)
    joints[:, 3] = 0.5
    joints[15, 3] = 0.05  # a low-confidence left eye
    pose, valid = panoptic19_to_coco17(joints)
    assert pose.shape == (17, 3) and valid.shape == (17,)
    expected = {
        "nose": 1, "left_eye": 15, "left_ear": 16, "right_eye": 17, "right_ear": 18, "left_shoulder": 3,
        "right_shoulder": 9, "left_wrist": 5, "right_hip": 12, "right_ankle": 14,
    }  # fmt: skip
    for name, k in expected.items():
        assert pose[COCO17.index(name), 0] == k
    assert COCO17_FROM_PANOPTIC19 == (1, 15, 17, 16, 18, 3, 9, 4, 10, 5, 11, 6, 12, 7, 13, 8, 14)
    assert valid.tolist() == [j != COCO17.index("left_eye") for j in range(17)]
    with pytest.raises(ShapeError, match="Panoptic"):
        panoptic19_to_coco17(np.zeros((19, 3)))


def test_real_panoptic_bodies_through_real_hd_cameras():
    from calibration.io import read_panoptic_json
    from capture.benchmarks.datasets import read_panoptic_bodies

    seq = DATA / "panoptic" / "160906_band1"
    bodies = read_panoptic_bodies(_need(seq / "hdPose3d_stage1_coco19"))
    rig = read_panoptic_json(
        _need(seq / "calibration_160906_band1.json"), ["00_03", "00_06", "00_12", "00_13", "00_23"]
    )
    frame, people = next(iter(bodies.items()))
    converted = [panoptic19_to_coco17(b) for b in people]
    dets, ids = synthesize_detections_with_ids(
        rig, [p for p, _ in converted], np.random.default_rng(0), NoiseModel.zero(), frame_idx=frame,
        valid=[v for _, v in converted],
    )  # fmt: skip
    assert [d.camera for d in dets] == list(rig.names)
    assert sum(len(i) for i in ids) >= 2 * len(people)  # everyone is seen by at least two views
    for cam, det, who in zip(rig, dets, ids, strict=True):
        for pose, i in zip(det.poses, who, strict=True):
            kept = pose[:, 2] > 0
            np.testing.assert_allclose(pose[kept, :2], cam.project(converted[i][0])[kept], atol=1e-2)


def test_real_campus_ground_truth_through_the_campus_cameras():
    from calibration.io import read_voxelpose_json
    from capture.benchmarks.datasets import read_campus_gt

    gt = read_campus_gt(_need(DATA / "campus" / "crossview" / "annotation_3d.json"))
    rig = read_voxelpose_json(_need(DATA / "campus" / "calibration_campus.json"), size=(360, 288))
    frame = 710  # all three actors present
    people = [shelf14_to_coco17(actor[frame]) for actor in gt.values() if frame in actor]
    dets = synthesize_detections(rig, people, np.random.default_rng(0), NoiseModel(), frame_idx=frame)
    assert len(people) == 3
    for det in dets:
        assert 1 <= det.n_people <= 5
        kept = det.poses[..., 2] > 0
        assert (det.poses[..., 0][kept] <= 359.5).all() and (det.poses[..., 1][kept] <= 287.5).all()
