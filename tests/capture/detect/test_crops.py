"""Crop-only detection around hint boxes: capture.detect.crops."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from demo_assets import demo_video, yolo_model

from capture.detect.crops import (
    CropDetector,
    boxes_to_detector_px,
    dedupe,
    fit_aspect,
    merge_boxes,
    rotate_px,
)
from capture.detect.letterbox import letterbox
from capture.sources.image_map import unrotate_px
from core.config import ImageMap
from core.skeleton import COCO17


class BrightestSpot:
    """A detector stand-in that letterboxes its image like YOLO and reports the brightest pixel as
    every joint (and a box around it), mapped back with the letterbox's gain and padding."""

    skeleton = COCO17

    def __init__(self, input_hw: tuple[int, int]) -> None:
        self.input_hw = input_hw
        self.calls: list[tuple[int, int]] = []

    def detect(self, image_bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.calls.append(image_bgr.shape[:2])
        padded, (gx, gy), (px, py) = letterbox(image_bgr, self.input_hw)
        grey = padded.sum(axis=2).astype(float)
        if grey.max() < 600:
            return np.zeros((0, 17, 3), np.float32), np.zeros((0, 5), np.float32)
        v, u = np.unravel_index(int(np.argmax(grey)), grey.shape)
        u, v = (u - px) / gx, (v - py) / gy
        poses = np.tile(np.array([u, v, 0.9], np.float32), (1, 17, 1))
        return poses, np.array([[u - 10, v - 10, u + 10, v + 10, 0.9]], np.float32)


@pytest.mark.parametrize("rotate", [90, 180, 270])
def test_rotate_px_inverts_unrotate_px(rotate: int) -> None:
    uv = np.random.default_rng(rotate).uniform(0, 300, (20, 2))
    back = unrotate_px(rotate_px(uv, rotate, (400, 300)), rotate, (400, 300))
    np.testing.assert_allclose(back, uv, atol=1e-9)


def test_hint_keypoint_maps_back_to_its_frame_pixel_through_image_map_and_letterbox() -> None:
    """A dot at a known frame pixel, hinted in calibration pixels, is found where it is in the frame."""
    image_map = ImageMap(scale_x=0.5, scale_y=0.5, pad_x=20.0, pad_y=-8.0)
    frame = np.zeros((480, 640, 3), np.uint8)
    dot = np.array([371.0, 203.0])  # frame pixels
    frame[int(dot[1]) - 1 : int(dot[1]) + 2, int(dot[0]) - 1 : int(dot[0]) + 2] = 255
    calib = (dot - [20.0, -8.0]) / 0.5
    hint = np.array([[calib[0] - 90, calib[1] - 300, calib[0] + 50, calib[1] + 100]])  # not centred on the dot
    boxes = boxes_to_detector_px(hint, image_map)
    np.testing.assert_allclose(boxes[0], [dot[0] - 45, dot[1] - 150, dot[0] + 25, dot[1] + 50])
    net = BrightestSpot((64, 96))  # crop shape of another aspect than the box: letterbox pads
    poses, out = CropDetector(net, (64, 96)).detect(frame, boxes)
    assert len(net.calls) == 1 and len(out) == 1
    np.testing.assert_allclose(poses[0, 0, :2], dot, atol=2.0)  # a crop of ~300 px at 96 px: 3 px per input px


def test_boxes_to_detector_px_follows_the_turn() -> None:
    box = np.array([[10.0, 20.0, 50.0, 80.0]])
    turned = boxes_to_detector_px(box, rotate=90, frame_wh=(200, 100))
    corners = unrotate_px(turned.reshape(2, 2), 90, (200, 100))
    np.testing.assert_allclose(np.sort(corners[:, 0]), [10, 50])
    np.testing.assert_allclose(np.sort(corners[:, 1]), [20, 80])
    assert (turned[:, 2] > turned[:, 0]).all() and (turned[:, 3] > turned[:, 1]).all()


def test_fit_aspect_contains_the_box_keeps_the_aspect_and_stays_in_the_frame() -> None:
    rng = np.random.default_rng(0)
    x0, y0 = rng.uniform(0, 500, 50), rng.uniform(0, 300, 50)
    boxes = np.stack([x0, y0, x0 + rng.uniform(20, 200, 50), y0 + rng.uniform(20, 300, 50)], axis=1)
    crops = fit_aspect(boxes, 0.625, (640, 480))
    assert (crops[:, :2] >= 0).all() and (crops[:, 2] <= 640).all() and (crops[:, 3] <= 480).all()
    inside = np.clip(boxes, 0, [640, 480, 640, 480])
    assert (crops[:, :2] <= inside[:, :2] + 1e-9).all() and (crops[:, 2:] >= inside[:, 2:] - 1e-9).all()
    w, h = crops[:, 2] - crops[:, 0], crops[:, 3] - crops[:, 1]
    uncut = (h < 480) & (w < 640)
    assert (np.abs(w[uncut] / h[uncut] - 0.625) <= 2.5 / h[uncut]).all()  # integer corners: within 2 px


def test_overlapping_boxes_merge_and_distant_ones_do_not() -> None:
    boxes = np.array([[100, 100, 200, 300], [110, 105, 210, 305], [500, 100, 600, 300], [40, 380, 60, 420]], float)
    crops, owner = merge_boxes(boxes, 0.5, (800, 600))
    assert owner.tolist() == [0, 0, 1, 2]
    assert len(crops) == 3
    assert crops[0][0] <= 100 and crops[0][2] >= 210 and crops[0][1] <= 100 and crops[0][3] >= 305
    apart, _ = merge_boxes(boxes[[0, 2]], 0.5, (800, 600))  # side by side: one crop would halve the resolution
    assert len(apart) == 2
    alone, owner_alone = merge_boxes(boxes[:1], 0.5, (800, 600))
    assert owner_alone.tolist() == [0] and alone[0].tolist() == [100, 100, 200, 300]


def test_a_person_cut_by_another_crop_is_kept_once_and_close_people_of_one_crop_both() -> None:
    hints = np.array([[0, 0, 100, 200], [90, 0, 190, 200]], float)
    owner = np.array([0, 1])
    crops = np.array([[0, 0, 120, 200], [70, 0, 190, 200]])  # frame 190 x 200: crop 1 ends at the frame's edge
    boxes = np.array(
        [
            [2, 5, 98, 195, 0.90],  # person A, crop 0 (its own)
            [90, 5, 120, 195, 0.95],  # person B cut by crop 0's right edge
            [92, 4, 188, 196, 0.85],  # person B, crop 1
            [70, 4, 98, 195, 0.80],  # person A cut by crop 1's left edge
            [20, 150, 60, 199, 0.70],  # someone else, in crop 0 only: kept
        ]
    )
    keep = dedupe(boxes, np.array([0, 0, 1, 1, 0]), hints, owner, crops, (190, 200))
    assert sorted(keep.tolist()) == [0, 2, 4]
    cut_first = boxes.copy()
    cut_first[1, 4] = 0.99  # a cut box scored above the whole one still loses to it
    assert sorted(dedupe(cut_first, np.array([0, 0, 1, 1, 0]), hints, owner, crops, (190, 200)).tolist()) == [0, 2, 4]
    one_crop = dedupe(boxes[[0, 2]], np.array([0, 0]), hints[:1], owner[:1])  # two people behind each other
    assert sorted(one_crop.tolist()) == [0, 1]


def test_crop_detector_runs_one_model_call_per_merged_crop() -> None:
    frame = np.zeros((480, 640, 3), np.uint8)
    net = BrightestSpot((64, 32))
    hints = np.array([[100, 100, 160, 220], [110, 105, 170, 225], [400, 100, 460, 220]], float)
    det = CropDetector(net, (64, 32))
    poses, boxes = det.detect(frame, hints)
    assert len(net.calls) == 2 and det.last_crops.shape == (2, 4)
    assert poses.shape == (0, 17, 3) and boxes.shape == (0, 5)


@pytest.mark.parametrize("camera", ["cam02", "cam03"])
def test_crops_around_the_full_frame_boxes_find_the_same_people(camera: str) -> None:
    """YOLO11n-pose at 256 x 160 on crops around the full-frame pass's boxes (widened 10 %) finds
    the same people, their joints a few frame pixels from the full-frame ones (1088 x 1920 frames)."""
    from capture.detect.yolo_pose import YoloPoseOnnx

    cap = cv2.VideoCapture(str(demo_video(camera)))
    ok, frame = cap.read()
    cap.release()
    assert ok
    full = YoloPoseOnnx(yolo_model((640, 384)), (640, 384))
    crops = CropDetector(YoloPoseOnnx(yolo_model((256, 160)), (256, 160)), (256, 160))
    poses, boxes = full.detect(frame)
    assert len(boxes) >= 2
    wh = boxes[:, 2:4] - boxes[:, :2]
    hints = np.concatenate([boxes[:, :2] - 0.1 * wh, boxes[:, 2:4] + 0.1 * wh], axis=1)
    crop_poses, crop_boxes = crops.detect(frame, hints)
    assert len(crop_boxes) == len(boxes)
    for p in range(len(boxes)):
        match = int(np.argmin(np.abs(crop_boxes[:, :4] - boxes[p, :4]).max(axis=1)))
        assert np.abs(crop_boxes[match, :4] - boxes[p, :4]).max() < 40  # box corners, frame pixels
        mirror = np.arange(17)
        for left, right in COCO17.left_right:
            mirror[[left, right]] = [right, left]
        errs = []
        for other in (crop_poses[match], crop_poses[match, mirror]):  # a person seen from behind: either labelling
            both = (poses[p, :, 2] > 0.5) & (other[:, 2] > 0.5)
            assert both.sum() >= 8
            errs.append(np.median(np.linalg.norm(poses[p, both, :2] - other[both, :2], axis=1)))
        assert min(errs) < 20.0  # frame pixels; the full pass sees the frame at 1/3 scale (7 px of its input)


def test_grid_windows_see_the_full_pass_pixels_and_find_what_it_finds() -> None:
    """On the grid, each crop is a stride-aligned window of the full pass's letterboxed input: a
    detector sees there the very pixels the full pass sees, so it finds the dot where the full pass
    does (to float rounding), at any hint position; each shape's model is built once, on first use."""
    rng = np.random.default_rng(3)
    nets: dict[tuple[int, int], BrightestSpot] = {}

    def make(hw: tuple[int, int]) -> BrightestSpot:
        assert hw not in nets
        nets[hw] = BrightestSpot(hw)
        return nets[hw]

    small = BrightestSpot((256, 160))
    det = CropDetector(small, (256, 160), make=make, max_hw=(640, 384))
    full = BrightestSpot((640, 384))
    assert det.on_grid and det.shapes[0] == (256, 160) and det.shapes[-1] == (640, 384)
    assert not CropDetector(BrightestSpot((256, 160)), (256, 160)).on_grid
    for size in ([300, 1200], [100, 200], [900, 1800]):
        frame = np.zeros((1920, 1088, 3), np.uint8)
        dot = rng.uniform([size[0] / 2, size[1] / 2], [1088 - size[0] / 2, 1920 - size[1] / 2])
        frame[int(dot[1]) - 2 : int(dot[1]) + 3, int(dot[0]) - 2 : int(dot[0]) + 3] = 255
        lo = dot - rng.uniform(0.2, 0.8, 2) * size  # the dot anywhere inside the hint
        hint = np.clip(np.concatenate([lo, lo + size]), 0, [1088, 1920, 1088, 1920])[None]  # as FrameDetector clips
        plan = det.plan(hint, (1088, 1920))
        crops, owner, shapes, (windows, _, _) = plan
        assert owner.tolist() == [0] and (windows % 32 == 0).all()  # aligned to the stride
        assert (windows[:, 2:] - windows[:, :2]).tolist() == shapes[:, ::-1].tolist()  # no resampling
        assert crops[0, 0] <= hint[0, 0] and crops[0, 1] <= hint[0, 1]  # the hint inside the crop
        assert crops[0, 2] >= hint[0, 2] - 1 and crops[0, 3] >= hint[0, 3] - 1
        poses, _ = det.detect(frame, hint, plan)
        np.testing.assert_allclose(poses[0, 0, :2], full.detect(frame)[0][0, 0, :2], atol=1e-3)
    assert len(small.calls) == 1 and set(nets) <= set(det.shapes)
    assert all(len(n.calls) == 1 for n in nets.values())  # three sizes, three shapes, one model each


@pytest.mark.slow
@pytest.mark.parametrize("camera", ["cam02", "cam03"])
def test_grid_windows_reproduce_the_full_pass_on_real_frames(camera: str) -> None:
    """YOLO11n-pose on stride-aligned windows of the full pass's 640 x 384 input, around the full
    pass's boxes (widened 10 %), finds the same people with the same joints to within a frame pixel
    or two (median; the full pass's input pixel is 3 frame pixels), where crops scaled to 256 x 160
    deviate by 10-20 px (test above)."""
    from capture.detect.yolo_pose import YoloPoseOnnx

    cap = cv2.VideoCapture(str(demo_video(camera)))
    ok, frame = cap.read()
    cap.release()
    assert ok
    full = YoloPoseOnnx(yolo_model((640, 384)), (640, 384))
    crops = CropDetector(YoloPoseOnnx(yolo_model((256, 160)), (256, 160)), (256, 160),
                         make=lambda hw: YoloPoseOnnx(yolo_model(hw), hw), max_hw=(640, 384))  # fmt: skip
    poses, boxes = full.detect(frame)
    wh = boxes[:, 2:4] - boxes[:, :2]
    hints = np.clip(np.concatenate([boxes[:, :2] - 0.1 * wh, boxes[:, 2:4] + 0.1 * wh], axis=1), 0, [1088, 1920] * 2)
    crop_poses, crop_boxes = crops.detect(frame, hints)
    assert len(crop_boxes) == len(boxes)
    for p in range(len(boxes)):
        match = int(np.argmin(np.abs(crop_boxes[:, :4] - boxes[p, :4]).max(axis=1)))
        both = (poses[p, :, 2] > 0.5) & (crop_poses[match, :, 2] > 0.5)
        assert both.sum() >= 8
        assert np.median(np.linalg.norm(poses[p, both, :2] - crop_poses[match, both, :2], axis=1)) < 2.0
