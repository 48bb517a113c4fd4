"""RTMPose top-down path: crop geometry, SimCC decoding by hand, and a tiny SimCC graph end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tiny_pose_graphs import constant_outputs, simcc_profile_graph

from capture.detect.detector import Detector
from capture.detect.rtmpose import RtmPoseOnnx
from capture.detect.simcc import box_center_scale, crop_affine, crop_to_image, decode_simcc
from core.errors import ConfigError, ShapeError

INPUT_WH = (192, 256)


def test_center_scale_grows_the_short_side_to_the_model_aspect() -> None:
    boxes = np.array([[100.0, 200.0, 300.0, 400.0, 0.9], [0.0, 0.0, 40.0, 400.0, 0.8]])
    center, scale = box_center_scale(boxes, INPUT_WH)
    np.testing.assert_allclose(center, [[200, 300], [20, 200]])
    # 200x200 box * 1.25 = 250x250; aspect 0.75 -> height grown to 250 / 0.75
    # 40x400 * 1.25 = 50x500 -> width grown to 500 * 0.75
    np.testing.assert_allclose(scale, [[250, 250 / 0.75], [375, 500]])
    with pytest.raises(ShapeError, match=r"\(P, >=4\)"):
        box_center_scale(np.zeros((2, 3)), INPUT_WH)


def test_simcc_argmax_decodes_to_hand_computed_pixels() -> None:
    """Known argmax bins -> input pixels (/ split 2) -> image pixels through the inverse crop."""
    sx, sy = np.zeros((1, 17, 384), np.float32), np.zeros((1, 17, 512), np.float32)
    sx[0, :, 96] = 0.8  # x_in = 48
    sy[0, :, 128] = 0.6  # y_in = 64
    sx[0, 3, 10], sy[0, 3, 20] = 1.7, 1.2  # joint 3 elsewhere, scores above 1 are clipped
    sx[0, 5] = -1.0  # joint 5: all scores <= 0 -> missing
    locs, scores = decode_simcc(sx, sy, 2.0)
    assert locs[0, 0].tolist() == [48.0, 64.0] and scores[0, 0] == pytest.approx(0.6)  # min of the two maxima
    assert locs[0, 3].tolist() == [5.0, 10.0] and scores[0, 3] == 1.0
    assert scores[0, 5] == 0.0 and locs[0, 5].tolist() == [0.0, 0.0]
    center, scale = box_center_scale(np.array([[100.0, 200.0, 300.0, 400.0]]), INPUT_WH)
    uv = crop_to_image(locs, center, scale, INPUT_WH)
    # u = 48 / 192 * 250 + 200 - 125 ; v = 64 / 256 * 333.33 + 300 - 166.67
    assert uv[0, 0] == pytest.approx([137.5, 216.6666667])
    with pytest.raises(ShapeError):
        decode_simcc(sx, sy[:, :5], 2.0)


def test_crop_affine_and_its_inverse_round_trip(rng: np.random.Generator) -> None:
    boxes = np.column_stack(
        [rng.uniform(0, 500, 4), rng.uniform(0, 500, 4), rng.uniform(600, 900, 4), rng.uniform(600, 900, 4)]
    )
    center, scale = box_center_scale(boxes, INPUT_WH)
    mats = crop_affine(center, scale, INPUT_WH)
    pts = rng.uniform(0, 1000, (4, 17, 2))
    pts_in = np.einsum("pij,pkj->pki", mats[:, :, :2], pts) + mats[:, None, :, 2]
    np.testing.assert_allclose(crop_to_image(pts_in, center, scale, INPUT_WH), pts, atol=1e-9)
    # the crop centre lands in the middle of the input
    c_in = np.einsum("pij,pj->pi", mats[:, :, :2], center) + mats[:, :, 2]
    np.testing.assert_allclose(c_in, np.tile([96.0, 128.0], (4, 1)), atol=1e-9)


class _FixedBoxes:
    """A first-pass detector that always returns the same boxes (stands in for YOLO's boxes)."""

    skeleton = None

    def __init__(self, boxes: np.ndarray) -> None:
        self.boxes = boxes.astype(np.float32)

    def detect(self, image_bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.zeros((len(self.boxes), 17, 3), np.float32), self.boxes


def test_bright_spot_in_each_box_is_found_through_crop_model_and_inverse(tmp_path: Path) -> None:
    """The profile graph's argmax sits on the spot: checks warp, normalisation sign, batching, decode, inverse."""
    model = simcc_profile_graph(tmp_path / "rtmpose.onnx", (256, 192))
    image = np.full((720, 1280, 3), 128, np.uint8)
    spots = [(300, 250), (900, 500)]
    for u, v in spots:
        image[v - 1 : v + 2, u - 1 : u + 2] = 255
    boxes = np.array([[200, 100, 420, 420, 0.9], [850, 300, 1000, 700, 0.7]], np.float32)
    det = RtmPoseOnnx(model, box_source=_FixedBoxes(boxes))
    assert isinstance(det, Detector)
    assert det.split_ratio == 2.0 and det.input_wh == (192, 256)
    poses, out_boxes = det.detect(image)
    assert poses.shape == (2, 17, 3) and poses.dtype == np.float32
    np.testing.assert_array_equal(out_boxes, boxes)
    for p, (u, v) in enumerate(spots):
        # one input pixel is scale / input size image pixels (about 1.7 and 2.6 here)
        px = (box_center_scale(boxes[p : p + 1], det.input_wh)[1][0] / det.input_wh).max()
        assert np.abs(poses[p, :, 0] - u).max() <= px and np.abs(poses[p, :, 1] - v).max() <= px
        assert (poses[p, :, 2] == 1.0).all()
    assert det.refine(image, np.zeros((0, 5))).shape == (0, 17, 3)


def test_static_batch_of_one_runs_box_by_box_and_bad_inputs_raise(tmp_path: Path) -> None:
    sx, sy = np.zeros((1, 17, 384)), np.zeros((1, 17, 512))
    sx[0, :, 100], sy[0, :, 200] = 0.9, 0.9  # input pixel (50, 100)
    outs = {"simcc_x": (sx, [1, 17, 384]), "simcc_y": (sy, [1, 17, 512])}
    model = constant_outputs(tmp_path / "b1.onnx", [1, 3, 256, 192], outs)
    det = RtmPoseOnnx(model, box_source=None)
    boxes = np.array([[0, 0, 192, 256, 1.0], [100, 100, 292, 356, 1.0]], np.float32)
    poses = det.refine(np.zeros((500, 500, 3), np.uint8), boxes)
    # box 0: 192x256 * 1.25 = 240x320 centred on (96, 128): u = 50/192*240 + 96 - 120, v = 100/256*320 + 128 - 160
    assert poses[0, 0, :2] == pytest.approx([38.5, 93.0], abs=1e-4)
    np.testing.assert_allclose(poses[1, :, :2] - poses[0, :, :2], 100.0, atol=1e-4)
    with pytest.raises(TypeError, match="box_source"):
        det.detect(np.zeros((10, 10, 3), np.uint8))
    with pytest.raises(ShapeError, match="uint8"):
        det.refine(np.zeros((10, 10, 3), np.float32), boxes)
    with pytest.raises(ConfigError, match="rtmpose"):
        RtmPoseOnnx(
            constant_outputs(tmp_path / "y.onnx", [1, 3, 64, 64], {"o": (np.zeros((1, 56, 4)), [1, 56, 4])}), None
        )


@pytest.mark.parametrize(("bgr_to_rgb", "found"), [(True, 0), (False, 1)])
def test_channel_order_fed_to_the_model(tmp_path: Path, bgr_to_rgb: bool, found: int) -> None:
    """A red spot (BGR index 2) and a blue spot (index 0): the model's first channel is R under bgr_to_rgb."""
    model = simcc_profile_graph(tmp_path / "r.onnx", (256, 192), channel=0)
    image = np.full((256, 192, 3), 128, np.uint8)
    spots = [(60, 70), (140, 200)]  # red, blue
    image[69:72, 59:62, 2] = 255
    image[199:202, 139:142, 0] = 255
    det = RtmPoseOnnx(model, box_source=None, bgr_to_rgb=bgr_to_rgb, padding=1.0)
    poses = det.refine(image, np.array([[0, 0, 192, 256]], np.float32))
    np.testing.assert_allclose(poses[0, :, :2], np.tile(spots[found], (17, 1)), atol=1.0)
