"""When a camera's frame is detected on crops and when in full: capture.detect.frames.FrameDetector with rois."""

from __future__ import annotations

import numpy as np
import pytest

from capture.detect.crops import CropDetector
from capture.detect.frames import FrameDetector
from capture.wire import RoiHint
from core.config import DetectorConfig, ImageMap
from core.skeleton import COCO17


class Recorder:
    """A detector stand-in that records the image shapes it was given and finds nobody."""

    skeleton = COCO17

    def __init__(self) -> None:
        self.calls: list[tuple[int, ...]] = []

    def detect(self, image_bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.calls.append(image_bgr.shape)
        return np.zeros((0, 17, 3), np.float32), np.zeros((0, 5), np.float32)


def _frames(full_every: int, image_map: ImageMap | None = None) -> tuple[FrameDetector, Recorder, Recorder]:
    cfg = DetectorConfig(rois=True, roi_full_every=full_every, roi_input_h=64, roi_input_w=32, reid=False)
    frames = FrameDetector("cam01", "unused.mp4", cfg, image_map=image_map)
    full, crop = Recorder(), Recorder()
    frames._detector, frames._crops, frames.input_hw = full, CropDetector(crop, (64, 32)), (480, 640)
    return frames, full, crop


def _hint(boxes: list, full: bool = False) -> RoiHint:
    return RoiHint("cam01", 0, 0, np.array(boxes, np.float32).reshape(-1, 4), np.arange(1, len(boxes) + 1), full)


FRAME = np.zeros((480, 640, 3), np.uint8)


def test_full_frame_every_n_frames_and_crops_between() -> None:
    frames, full, crop = _frames(full_every=3)
    modes = []
    for f in range(7):
        frames.set_hint(_hint([[100, 100, 150, 200]]))
        frames.detect(f, 0, FRAME)
        modes.append(frames.last_mode)
    assert modes == ["crops", "crops", "full", "crops", "crops", "full", "crops"]
    assert len(full.calls) == 2 and crop.calls == [(100, 50, 3)] * 5  # the 50 x 100 box fits the 1:2 crop
    assert frames.modes == {"full": 2, "crops": 5, "crops_run": 5}
    assert "detect" in frames.last_ms


@pytest.mark.parametrize(
    "hint",
    [None, _hint([[100, 100, 150, 200]], full=True), _hint([]), _hint([[700, 500, 900, 600]])],
    ids=["no hint", "node asks for full", "no box", "box outside the frame"],
)
def test_full_frame_without_a_usable_hint(hint: RoiHint | None) -> None:
    frames, full, crop = _frames(full_every=30)
    frames.set_hint(hint)
    frames.detect(0, 0, FRAME)
    assert frames.last_mode == "full" and len(full.calls) == 1 and not crop.calls


def test_full_frame_when_crops_would_cost_as_much() -> None:
    frames, full, crop = _frames(full_every=30)
    frames.input_hw = (64, 64)  # a full pass costs 2 crops of 64 x 32
    frames.set_hint(_hint([[0, 0, 40, 80], [300, 0, 340, 80]]))
    frames.detect(0, 0, FRAME)
    assert frames.last_mode == "full" and not crop.calls
    frames.set_hint(_hint([[0, 0, 40, 80]]))
    frames.detect(1, 0, FRAME)
    assert frames.last_mode == "crops" and len(crop.calls) == 1


def test_hint_boxes_are_mapped_from_calibration_to_frame_pixels() -> None:
    frames, _, crop = _frames(full_every=30, image_map=ImageMap(scale_x=0.5, scale_y=0.5, pad_x=10.0, pad_y=0.0))
    frames.set_hint(_hint([[100, 100, 200, 300]]))  # calibration pixels: frame [60, 50, 110, 150]
    frames.detect(0, 0, FRAME)
    np.testing.assert_array_equal(frames._crops.last_crops, [[60, 50, 110, 150]])
    assert crop.calls == [(100, 50, 3)]


def test_on_the_grid_crops_are_windows_of_the_full_input_and_a_full_pass_when_as_costly() -> None:
    """With a ladder of shapes the crops are stride-aligned windows of the full pass's input; hints
    spread over the frame need windows costing as much as the full pass: the frame is detected in full."""
    cfg = DetectorConfig(rois=True, roi_full_every=30, roi_input_h=64, roi_input_w=96, reid=False)
    frames = FrameDetector("cam01", "unused.mp4", cfg)
    full, crop, made = Recorder(), Recorder(), {}

    def make(hw: tuple[int, int]) -> Recorder:
        made[hw] = Recorder()
        return made[hw]

    frames._detector, frames.input_hw = full, (480, 640)  # the full pass samples the 640 x 480 frame 1:1
    frames._crops = CropDetector(crop, (64, 96), make=make, max_hw=(480, 640))
    frames.set_hint(_hint([[100, 100, 150, 200]]))
    frames.detect(0, 0, FRAME)
    assert frames.last_mode == "crops" and not full.calls
    (x0, y0, x1, y1), (h, w) = frames._crops.last_crops[0], frames._crops.last_shapes[0]
    assert (x1 - x0, y1 - y0) == (w, h) and x0 % 32 == 0 and y0 % 32 == 0  # a window, no resampling
    assert x0 <= 100 and y0 <= 100 and x1 >= 150 and y1 >= 200
    assert [c[:2] for c in (crop.calls + [c for r in made.values() for c in r.calls])] == [(h, w)]
    frames.set_hint(_hint([[0, 0, 300, 200], [340, 280, 640, 480], [0, 280, 300, 480], [340, 0, 640, 200]]))
    frames.detect(1, 0, FRAME)  # four corners: the windows together cost more than the full frame
    assert frames.last_mode == "full" and len(full.calls) == 1


@pytest.mark.slow
def test_yolo_frames_on_crops_match_the_full_pass_on_a_real_frame(shared_data) -> None:
    """The real worker stage: YOLO11n-pose crops (stride-aligned windows of the 640 x 384 input,
    the ladder set up when opened, its top shared with the full pass) find the full pass's people with
    the same joints to a frame pixel or two (median), on a demo frame (1088 x 1920)."""
    import importlib.util

    from capture.assets import cache_dir

    video = shared_data / "pose2sim_demo_multiperson" / "videos" / "cam02.mp4"
    if not video.is_file():
        pytest.skip(f"{video} not available")
    ladder = [(256, 160), (320, 192), (384, 256), (448, 288), (512, 320), (576, 352), (640, 384)]
    missing = [hw for hw in ladder if not (cache_dir() / f"yolo11n-pose_{hw[0]}x{hw[1]}.onnx").is_file()]
    if missing and importlib.util.find_spec("ultralytics") is None:
        pytest.skip(f"YOLO11n-pose exports {missing} missing and the 'export' extra is not installed")
    cfg = DetectorConfig(rois=True, roi_full_every=30, reid=False)
    frames = FrameDetector("cam02", str(video), cfg)
    _, _, image = next(frames.open())
    try:
        full = frames.detect(0, 0, image)  # no hint: the full pass
        assert frames.last_mode == "full" and len(full.boxes) >= 2
        wh = full.boxes[:, 2:4] - full.boxes[:, :2]
        boxes = np.concatenate([full.boxes[:, :2] - 0.15 * wh, full.boxes[:, 2:4] + 0.15 * wh], axis=1)
        frames.set_hint(RoiHint("cam02", 0, 0, boxes.astype(np.float32), np.arange(len(boxes)), False))
        crops = frames.detect(1, 0, image)
        if frames.last_mode == "full":  # the people's windows cost as much as the full pass on this frame
            pytest.skip("crops as costly as the full pass on this frame")
        assert frames._crops.shapes == ladder and frames._crops.make((640, 384)) is frames._detector
        assert len(crops.boxes) == len(full.boxes)
        for p in range(len(full.boxes)):
            q = int(np.argmin(np.abs(crops.boxes[:, :4] - full.boxes[p, :4]).max(axis=1)))
            both = (full.poses[p, :, 2] > 0.5) & (crops.poses[q, :, 2] > 0.5)
            assert both.sum() >= 8
            assert np.median(np.linalg.norm(full.poses[p, both, :2] - crops.poses[q, both, :2], axis=1)) < 2.0
    finally:
        frames.close()
