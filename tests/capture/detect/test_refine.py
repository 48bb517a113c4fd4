"""The top-down refinement pass on person crops: capture.detect.refine."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from demo_assets import demo_video, yolo_model

from capture.detect.refine import CropRefiner, flip_poses, fuse_poses, match_detection, refine_crop_boxes
from core.config import DetectorConfig
from core.errors import ConfigError, ShapeError

# COCO-17 mirror pairs by hand (nose 0 has none): eyes, ears, shoulders, elbows, wrists, hips, knees, ankles.
MIRROR = np.array([0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15])


class FixedCropModel:
    """A stand-in model that reports given people in crop pixels, and the mirrored people (u -> W - 1 - u,
    left and right swapped by hand) when the crop it gets is mirrored (its left column is not red)."""

    def __init__(self, poses: np.ndarray, boxes: np.ndarray) -> None:
        self.poses, self.boxes = np.asarray(poses, np.float32), np.asarray(boxes, np.float32)
        self.shapes: list[tuple[int, int]] = []

    def detect(self, image_bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.shapes.append(image_bgr.shape[:2])
        if image_bgr[0, 0, 2] == 255:
            return self.poses.copy(), self.boxes.copy()
        w = image_bgr.shape[1]
        poses = self.poses[:, MIRROR].copy()
        poses[..., 0] = w - 1 - poses[..., 0]
        boxes = self.boxes.copy()
        boxes[:, [0, 2]] = w - 1 - self.boxes[:, [2, 0]]
        return poses, boxes


def _frame_marking_crop(crop: list[int], shape: tuple[int, int] = (1000, 1000)) -> np.ndarray:
    frame = np.zeros((*shape, 3), np.uint8)
    frame[crop[1] : crop[3], crop[0], 2] = 255  # the crop's left column is red: mirrored crops have it on the right
    return frame


def _person(box: np.ndarray, conf: float, rng: np.random.Generator) -> np.ndarray:
    pose = np.zeros((17, 3), np.float32)
    pose[:, 0] = rng.uniform(box[0], box[2], 17)
    pose[:, 1] = rng.uniform(box[1], box[3], 17)
    pose[:, 2] = conf
    return pose


def test_refined_keypoints_map_from_crop_to_frame_pixels() -> None:
    """Box (100, 100)-(200, 300), 10 % margin: (90, 80)-(210, 320), widened to 3:4 around its centre:
    (60, 80)-(240, 320). A keypoint at crop pixel (50, 70) is frame pixel (110, 150)."""
    box = np.array([[100.0, 100.0, 200.0, 300.0, 0.9]], np.float32)
    np.testing.assert_array_equal(refine_crop_boxes(box, (256, 192), (1000, 1000)), [[60, 80, 240, 320]])
    crop_pose = np.zeros((1, 17, 3), np.float32)
    crop_pose[0, :, :2] = [50.0, 70.0]
    crop_pose[0, 3, :2] = [130.0, 200.0]
    crop_pose[0, :, 2] = 0.9
    model = FixedCropModel(crop_pose, [[40.0, 20.0, 140.0, 220.0, 0.9]])  # the first pass's box, crop pixels
    first = np.zeros((1, 17, 3), np.float32)
    first[0, :, :2] = [112.0, 148.0]
    first[0, :, 2] = 0.5  # less confident than the refinement: replaced
    refiner = CropRefiner(model, (256, 192), fuse="replace")
    out = refiner.refine(_frame_marking_crop([60, 80, 240, 320]), first, box)
    assert model.shapes == [(240, 180)] and refiner.last_matched == 1
    np.testing.assert_allclose(out[0, 0], [110.0, 150.0, 0.9], atol=1e-5)
    np.testing.assert_allclose(out[0, 3], [190.0, 280.0, 0.9], atol=1e-5)


def test_fusion_replaces_by_confidence_and_averages_close_confident_joints() -> None:
    first = np.array(
        [[[100, 100, 0.9], [100, 100, 0.4], [100, 100, 0.8], [100, 100, 0.8], [100, 100, 0.1], [5, 5, 0.7]]]
    )
    refined = np.array(
        [[[104, 100, 0.3], [110, 100, 0.6], [104, 100, 0.4], [150, 100, 0.9], [120, 100, 0.2], [0, 0, 0]]]
    )
    heights = np.array([200.0])  # "close": within 20 px
    rep = fuse_poses(first, refined, heights, "replace")
    np.testing.assert_allclose(rep[0, :, :2], [[100, 100], [110, 100], [100, 100], [150, 100], [120, 100], [5, 5]])
    avg = fuse_poses(first, refined, heights, "average")
    np.testing.assert_allclose(avg[0, 0], [(0.9 * 100 + 0.3 * 104) / 1.2, 100, 0.9], rtol=1e-6)  # both >= 0.3, close
    np.testing.assert_allclose(avg[0, 1], [(0.4 * 100 + 0.6 * 110) / 1.0, 100, 0.6], rtol=1e-6)
    np.testing.assert_allclose(avg[0, 3], [150, 100, 0.9])  # 50 px apart: the more confident one, not the mean
    np.testing.assert_allclose(avg[0, 4], [120, 100, 0.2], rtol=1e-6)  # both below 0.3: no mean
    np.testing.assert_allclose(avg[0, 5], [5, 5, 0.7])  # nothing refined: the first pass's joint
    with pytest.raises(ConfigError, match="average"):
        fuse_poses(first, refined, heights, "mean")
    with pytest.raises(ShapeError):
        fuse_poses(first, refined[:, :5], heights)


def test_flip_poses_mirrors_u_and_swaps_left_and_right() -> None:
    rng = np.random.default_rng(1)
    poses = rng.uniform(0, 99, (2, 17, 3)).astype(np.float32)
    poses[1, 4] = 0.0  # a missing joint stays missing at (0, 0)
    from core.skeleton import COCO17

    out = flip_poses(poses, 100, COCO17.left_right)
    seen = poses[:, MIRROR, 2] > 0
    np.testing.assert_allclose(out[..., 0][seen], (99 - poses[:, MIRROR, 0])[seen], rtol=1e-5)
    np.testing.assert_allclose(out[..., 1:], poses[:, MIRROR, 1:])
    assert out[1, 3].tolist() == [0.0, 0.0, 0.0]  # joint 4 (right ear) became joint 3 (left ear)
    np.testing.assert_allclose(flip_poses(out, 100, COCO17.left_right), poses, rtol=1e-5)


def test_flip_test_time_augmentation_averages_to_the_unflipped_answer() -> None:
    """A model consistent under mirroring (it labels the mirrored person's joints as a mirror image's)
    gives the same answer with flip TTA; forgetting the left/right swap would move every paired joint."""
    rng = np.random.default_rng(2)
    crop_box = np.array([40.0, 20.0, 140.0, 220.0, 0.9])
    crop_pose = _person(crop_box, 0.9, rng)[None]
    crop_pose[0, 1::2, 2] = 0.6  # left joints less confident: a missed swap would show in the confidences too
    model = FixedCropModel(crop_pose, crop_box[None])
    box = np.array([[100.0, 100.0, 200.0, 300.0, 0.9]], np.float32)
    first = np.zeros((1, 17, 3), np.float32)
    first[0, :, :2] = crop_pose[0, :, :2] + [60, 80]
    first[0, :, 2] = 0.2
    plain = CropRefiner(model, (256, 192), fuse="replace").refine(_frame_marking_crop([60, 80, 240, 320]), first, box)
    flipped_model = FixedCropModel(crop_pose, crop_box[None])
    tta = CropRefiner(flipped_model, (256, 192), flip=True, fuse="replace")
    out = tta.refine(_frame_marking_crop([60, 80, 240, 320]), first, box)
    assert len(flipped_model.shapes) == 2 and tta.calls == 2
    np.testing.assert_allclose(out, plain, atol=1e-4)
    np.testing.assert_allclose(out[0, :, :2], crop_pose[0, :, :2] + [60, 80], atol=1e-4)


def test_the_crop_detection_matching_the_person_is_picked() -> None:
    rng = np.random.default_rng(3)
    box = np.array([100.0, 100.0, 200.0, 400.0])
    pose = _person(box, 0.9, rng)
    behind = _person(box, 0.9, rng)  # someone behind: almost the same box, other keypoints
    same = pose.copy()
    same[:, :2] += rng.normal(0, 3, (17, 2))
    far = _person(box + [400, 0, 400, 0], 0.9, rng)
    poses = np.stack([behind, far, same])
    boxes = np.array([[98, 102, 203, 398, 0.95], [500, 100, 600, 400, 0.9], [105, 95, 195, 405, 0.8]])
    assert match_detection(pose, box, poses, boxes) == 2
    assert match_detection(pose, box, poses[:2], boxes[:2]) == 0  # only the one behind overlaps: taken
    assert match_detection(pose, box, poses[1:2], boxes[1:2]) == -1
    assert match_detection(pose, box, np.zeros((0, 17, 3)), np.zeros((0, 5))) == -1


def test_a_person_not_found_in_the_crop_keeps_the_first_pass() -> None:
    model = FixedCropModel(np.zeros((0, 17, 3)), np.zeros((0, 5)))
    first = _person(np.array([100.0, 100.0, 200.0, 300.0]), 0.7, np.random.default_rng(4))[None]
    refiner = CropRefiner(model, (256, 192))
    out = refiner.refine(np.zeros((1000, 1000, 3), np.uint8), first, np.array([[100.0, 100.0, 200.0, 300.0, 0.9]]))
    np.testing.assert_array_equal(out, first)
    assert refiner.last_matched == 0
    assert refiner.refine(np.zeros((10, 10, 3), np.uint8), np.zeros((0, 17, 3)), np.zeros((0, 5))).shape == (0, 17, 3)


def test_refine_settings_are_checked() -> None:
    assert DetectorConfig().refine == ""
    with pytest.raises(ConfigError, match="refine"):
        DetectorConfig(refine="hrnet")
    with pytest.raises(ConfigError, match="refine_fuse"):
        DetectorConfig(refine="yolo", refine_fuse="median")
    with pytest.raises(ConfigError, match="multiples of 32"):
        DetectorConfig(refine="yolo", refine_input_h=250)


@pytest.mark.slow
def test_refined_keypoints_stay_near_the_first_pass_on_a_demo_frame() -> None:
    """YOLO11n-pose at 256 x 192 on each person's crop of a 1088 x 1920 demo frame finds every person
    of the full-frame pass, with confident joints a few frame pixels from the first pass's (which sees
    the frame at a third of its scale: 3 frame pixels per input pixel); the frame pipeline runs it.
    Measured on frames 0 and 20 of the 4 cameras: medians 5-14 px, 0.8-2.3 % of the box height."""
    from capture.detect.frames import FrameDetector
    from capture.detect.yolo_pose import YoloPoseOnnx

    video = demo_video("cam02")
    full_model, crop_model = yolo_model((640, 384)), yolo_model((256, 192))
    cap = cv2.VideoCapture(str(video))
    ok, frame = cap.read()
    cap.release()
    assert ok
    poses, boxes = YoloPoseOnnx(full_model, (640, 384)).detect(frame)
    assert len(boxes) >= 2
    for flip in (False, True):
        refiner = CropRefiner(YoloPoseOnnx(crop_model, (256, 192), score_threshold=0.25), (256, 192), flip=flip)
        refined = refiner.estimate(frame, poses, boxes)
        assert refiner.last_matched == len(boxes) and refiner.calls == len(boxes) * (1 + flip)
        both = (poses[..., 2] > 0.5) & (refined[..., 2] > 0.5)
        assert both.sum() >= 8 * len(boxes)
        dist = np.linalg.norm(poses[..., :2] - refined[..., :2], axis=-1)[both]
        height = np.repeat(boxes[:, 3:4] - boxes[:, 1:2], 17, axis=1)[both]  # people 700-850 px tall
        assert np.median(dist / height) < 0.025 and np.percentile(dist / height, 75) < 0.08
    cfg = DetectorConfig(refine="yolo", reid=False)
    frames = FrameDetector("cam02", str(video), cfg, model_path=str(full_model))
    dets = frames.detect(*next(frames.open()))
    frames.close()
    assert set(frames.last_ms) == {"detect", "refine"} and len(dets.boxes) == len(boxes)
    np.testing.assert_allclose(dets.boxes, boxes, atol=1e-3)  # boxes are the first pass's
    moved = np.linalg.norm(dets.poses[..., :2] - poses[..., :2], axis=-1)[both]
    assert 0 < np.median(moved) < 0.025 * np.median(boxes[:, 3] - boxes[:, 1])


def test_rtmpose_refines_each_box_with_the_users_model(tmp_path: Path) -> None:
    """``refine = "rtmpose"``: an RTMPose-shaped graph that reports the brightest spot of its input as
    every joint finds a bright spot at frame pixel (150, 200) through both crops (ours, then RTMPose's)."""
    from tiny_pose_graphs import simcc_profile_graph

    from capture.detect.refine import make_refiner

    model = simcc_profile_graph(tmp_path / "rtmpose.onnx", (256, 192))
    with pytest.raises(ConfigError, match="model"):
        make_refiner(DetectorConfig(refine="rtmpose"))
    refiner = make_refiner(DetectorConfig(refine="rtmpose", model=str(model), refine_fuse="replace"))
    assert refiner.crop_hw == (256, 192) and refiner.top_down
    frame = np.full((1000, 1000, 3), 128, np.uint8)  # grey: above ImageNet's mean, so the profiles' maxima score > 0
    frame[199:202, 149:152] = 255
    first = np.zeros((1, 17, 3), np.float32)
    first[0, :, :2] = [160.0, 190.0]
    first[0, :, 2] = 0.2
    out = refiner.refine(frame, first, np.array([[100.0, 100.0, 200.0, 300.0, 0.9]]))
    assert refiner.last_matched == 1
    np.testing.assert_allclose(out[0, :, :2], np.tile([150.0, 200.0], (17, 1)), atol=2.0)  # ~1.7 frame px per input px
    assert (out[0, :, 2] > 0.2).all()
