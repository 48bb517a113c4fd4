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
