"""YOLO-pose pre/post-processing on hand-built network outputs, plus the real model when cached."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from demo_assets import demo_video, yolo_model

from capture.detect.detector import Detector
from capture.detect.letterbox import letterbox
from capture.detect.registry import detector_names, make_detector
from capture.detect.yolo_pose import YoloPoseOnnx, decode_yolo_pose
from core.errors import ConfigError, InputError, ShapeError

W, H = 1088, 1920  # portrait frames of the Pose2Sim demo
INPUT_HW = (640, 384)
N_ANCHORS = 60


def _raw_output(people: list[tuple[int, np.ndarray, np.ndarray, float]], gain, pad) -> np.ndarray:
    """(1, 56, N) network output with the given people at given anchors, background score 0.01.

    Each person is (anchor, box_xyxy (4,) original px, kpts (17, 3) original px, score).
    """
    out = np.zeros((1, 56, N_ANCHORS), np.float32)
    out[0, 4] = 0.01
    gx, gy = gain
    px, py = pad
    for anchor, box, kpts, score in people:
        x1, y1, x2, y2 = box[0] * gx + px, box[1] * gy + py, box[2] * gx + px, box[3] * gy + py
        out[0, :5, anchor] = [(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1, score]
        k_in = kpts.copy()
        k_in[:, 0] = kpts[:, 0] * gx + px
        k_in[:, 1] = kpts[:, 1] * gy + py
        out[0, 5:, anchor] = k_in.reshape(-1)
    return out


def _person(rng: np.random.Generator, x0: float, y0: float) -> tuple[np.ndarray, np.ndarray]:
    kpts = np.column_stack([x0 + rng.uniform(0, 200, 17), y0 + rng.uniform(0, 600, 17), rng.uniform(0.05, 1.0, 17)])
    box = np.array([kpts[:, 0].min(), kpts[:, 1].min(), kpts[:, 0].max(), kpts[:, 1].max()])
    return box, kpts


def test_letterbox_matches_ultralytics_geometry() -> None:
    image = np.full((H, W, 3), 7, np.uint8)
    padded, gain, pad = letterbox(image, INPUT_HW)
    assert padded.shape == (640, 384, 3) and padded.dtype == np.uint8
    # 1088 x 1920 -> 363 x 640, 21 px of padding split 10 left / 11 right as in LetterBox(center=True)
    assert pad == (10, 0)
    assert gain == pytest.approx((363 / 1088, 640 / 1920))
    assert (padded[:, :10] == 114).all() and (padded[:, 10 + 363 :] == 114).all()
    assert (padded[:, 10 : 10 + 363] == 7).all()


def test_letterbox_landscape_pads_top_and_bottom() -> None:
    padded, gain, pad = letterbox(np.zeros((480, 640, 3), np.uint8), (640, 640))
    assert padded.shape == (640, 640, 3)
    assert pad == (0, 80) and gain == pytest.approx((1.0, 1.0))
    assert (padded[:80] == 114).all() and (padded[80:560] == 0).all()


def test_decode_maps_keypoints_back_and_suppresses(rng: np.random.Generator) -> None:
    _, gain, pad = letterbox(np.zeros((H, W, 3), np.uint8), INPUT_HW)
    box_a, kpts_a = _person(rng, 100, 300)
    box_b, kpts_b = _person(rng, 700, 900)
    box_c, kpts_c = _person(rng, 400, 100)
    dup_kpts = kpts_a + [3.0, 3.0, 0.0]
    raw = _raw_output(
        [
            (5, box_a, kpts_a, 0.9),
            (6, box_a + 3.0, dup_kpts, 0.8),  # duplicate of A: suppressed by NMS
            (20, box_b, kpts_b, 0.7),
            (40, box_c, kpts_c, 0.3),  # below the score threshold: dropped
        ],
        gain,
        pad,
    )
    poses, boxes = decode_yolo_pose(raw, gain, pad, (W, H), score_threshold=0.5, iou_threshold=0.6)
    assert poses.shape == (2, 17, 3) and poses.dtype == np.float32
    assert boxes.shape == (2, 5) and boxes.dtype == np.float32
    np.testing.assert_allclose(boxes[:, 4], [0.9, 0.7], atol=1e-6)
    np.testing.assert_allclose(poses[0], kpts_a, atol=1e-3)
    np.testing.assert_allclose(poses[1], kpts_b, atol=1e-3)
    np.testing.assert_allclose(boxes[0, :4], box_a, atol=1e-3)
    np.testing.assert_allclose(boxes[1, :4], box_b, atol=1e-3)


def test_decode_keeps_overlapping_people_below_iou(rng: np.random.Generator) -> None:
    _, gain, pad = letterbox(np.zeros((H, W, 3), np.uint8), INPUT_HW)
    box = np.array([100.0, 100.0, 300.0, 700.0])
    kpts = np.column_stack([np.full(17, 200.0), np.linspace(100, 700, 17), np.ones(17)])
    shifted = box + [120.0, 0.0, 120.0, 0.0]  # IoU = 80 / 320 = 0.25
    raw = _raw_output([(1, box, kpts, 0.8), (2, shifted, kpts + [120, 0, 0], 0.9)], gain, pad)
    poses, boxes = decode_yolo_pose(raw, gain, pad, (W, H), 0.5, 0.6)
    assert poses.shape[0] == 2
    np.testing.assert_allclose(boxes[:, :4], [shifted, box], atol=1e-3)  # sorted by score


def test_decode_clips_to_image_and_handles_empty() -> None:
    _, gain, pad = letterbox(np.zeros((H, W, 3), np.uint8), INPUT_HW)
    kpts = np.column_stack([np.full(17, 500.0), np.linspace(200, 800, 17), np.ones(17)])
    kpts[0, 0] = -25.0  # in the left padding band
    raw = _raw_output([(3, np.array([-25.0, 200.0, 600.0, 800.0]), kpts, 0.95)], gain, pad)
    poses, boxes = decode_yolo_pose(raw, gain, pad, (W, H))
    assert poses[0, 0, 0] == 0.0 and boxes[0, 0] == 0.0
    empty = np.zeros((1, 56, N_ANCHORS), np.float32)
    poses, boxes = decode_yolo_pose(empty, gain, pad, (W, H))
    assert poses.shape == (0, 17, 3) and boxes.shape == (0, 5)


def test_decode_rejects_wrong_output_shape() -> None:
    with pytest.raises(ShapeError, match=r"\(1, 56, N\); got \(1, 55, 10\)"):
        decode_yolo_pose(np.zeros((1, 55, 10), np.float32), (1.0, 1.0), (0, 0), (10, 10))


def test_registry() -> None:
    assert detector_names() == ("yolo11n-pose", "yolo-pose", "rtmo", "rtmpose", "movenet")
    with pytest.raises(ConfigError, match="unknown detector 'openpose'; valid: yolo11n-pose, yolo-pose"):
        make_detector("openpose")
    for name in ("yolo-pose", "rtmo", "rtmpose"):  # a supplied model is required, named in the error
        with pytest.raises(ConfigError, match=rf"detector '{name}' needs a model file: set \[detector\] model"):
            make_detector(name)


def test_missing_or_corrupt_model(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="model file not found"):
        YoloPoseOnnx(tmp_path / "absent.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not an onnx graph")
    with pytest.raises(InputError, match="cannot load ONNX model"):
        YoloPoseOnnx(bad)


def test_real_model_on_demo_frame() -> None:
    model, video = yolo_model((640, 384)), demo_video()
    cap = cv2.VideoCapture(str(video))
    ok, frame = cap.read()
    cap.release()
    assert ok
    det = YoloPoseOnnx(model, threads=1)
    assert isinstance(det, Detector)
    poses, boxes = det.detect(frame)
    h, w = frame.shape[:2]
    assert poses.shape[0] >= 2 and poses.shape[1:] == (17, 3) and boxes.shape == (poses.shape[0], 5)
    assert (poses[..., 0] >= 0).all() and (poses[..., 0] <= w).all()
    assert (poses[..., 1] >= 0).all() and (poses[..., 1] <= h).all()
    assert ((poses[..., 2] >= 0) & (poses[..., 2] <= 1)).all()
    assert (boxes[:, 4] > 0.5).all() and (boxes[:, 2] > boxes[:, 0]).all()
    # Same frame as the committed fixture (made by tests/data/make_demo_detections.py): the run-time
    # path must reproduce it to well under a pixel.
    from capture.sources.detection_files import read_detections_json

    ref = read_detections_json(Path(__file__).resolve().parents[2] / "data/demo_yolo11n/cam01.json.gz")[0]
    assert ref.n_people == poses.shape[0]
    order = np.argsort(boxes[:, 0])
    ref_order = np.argsort(ref.boxes[:, 0])
    assert np.abs(poses[order, :, :2] - ref.poses[ref_order, :, :2]).max() < 0.05
    with pytest.raises(ShapeError, match="uint8"):
        det.detect(frame.astype(np.float32))
    with pytest.raises(ConfigError, match="input_hw must match"):
        YoloPoseOnnx(model, input_hw=(480, 288))


def test_input_follows_the_frame_orientation() -> None:
    from capture.detect.letterbox import input_hw_for_frame

    # landscape and portrait HD frames get the same effective resolution (one third of the pixels)
    assert input_hw_for_frame((1920, 1080)) == (384, 640)
    assert input_hw_for_frame((1080, 1920)) == (640, 384)
    assert input_hw_for_frame((1088, 1920)) == (640, 384)  # the demo: the old fixed default
    assert input_hw_for_frame((960, 512)) == (352, 640)  # 341.3 rounded up to the stride
    assert input_hw_for_frame((1000, 1000), 320) == (320, 320)
    assert input_hw_for_frame((4000, 100), 640) == (32, 640)  # never below one stride
    assert input_hw_for_frame((1920, 1080), 640, fixed_hw=(640, 384)) == (640, 384)  # explicit input wins
    for frame in ((1920, 1080), (1080, 1920), (960, 512)):
        h, w = input_hw_for_frame(frame)
        padded, gain, _ = letterbox(np.zeros((frame[1], frame[0], 3), np.uint8), (h, w))
        assert max(h, w) == 640 and h % 32 == 0 and w % 32 == 0
        assert min(gain) == pytest.approx(640 / max(frame), rel=2e-3)  # the long side fills the input
        assert (h - frame[1] * min(gain)) < 32 and (w - frame[0] * min(gain)) < 32  # less than a stride of padding
    with pytest.raises(ConfigError, match="multiple of 32"):
        input_hw_for_frame((1920, 1080), 600)
    with pytest.raises(ConfigError, match="multiples of 32"):
        input_hw_for_frame((1920, 1080), fixed_hw=(640, 380))


def test_detector_config_input_geometry() -> None:
    from core.config import DetectorConfig, config_from_dict

    assert DetectorConfig().fixed_input_hw is None and DetectorConfig().input_long_px == 640
    old = config_from_dict({"detector": {"input_h": 640, "input_w": 384}}).detector  # older configs still load
    assert old.fixed_input_hw == (640, 384)
    for bad in ({"input_h": 640}, {"input_long_px": 100}, {"input_h": 640, "input_w": 390}, {"input_long_px": 0}):
        with pytest.raises(ConfigError, match="input"):
            config_from_dict({"detector": bad})


def test_default_detector_through_the_workers_frame_stage(tmp_path: Path) -> None:
    """The path `mvcap demo` takes: the registry's default detector on a real frame via FrameDetector,
    with re-ID descriptors; it must find the demo's people (a keyword the default factory does not
    take broke every worker once)."""
    from capture.detect.frames import FrameDetector
    from core.config import DetectorConfig

    model, video = yolo_model((640, 384)), demo_video()
    cap = cv2.VideoCapture(str(video))
    ok, frame = cap.read()
    cap.release()
    assert ok
    folder = tmp_path / "cam01"
    folder.mkdir()
    cv2.imwrite(str(folder / "000.png"), frame)
    frames = FrameDetector("cam01", str(folder), DetectorConfig(), str(model))
    dets = frames.detect(*next(frames.open()))
    frames.close()
    assert frames.input_hw == (640, 384) and dets.n_people >= 2
    assert dets.embeddings is not None and dets.embeddings.shape[0] == dets.n_people
