"""``[[cameras]] rotate``: frames turned for the detector, detections turned back into the recorded frame."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from capture.sources.image_map import rotate_frame, rotated_size, unrotate_detections, unrotate_px
from core.config import config_from_dict
from core.errors import ConfigError
from core.types import Detections2D

W, H = 7, 4  # a small landscape frame: every pixel distinct


@pytest.mark.parametrize("rotate", [0, 90, 180, 270])
def test_every_pixel_of_the_turned_frame_maps_back_to_its_source(rotate: int) -> None:
    frame = np.arange(W * H, dtype=np.uint16).reshape(H, W)  # value = v * W + u of the recorded pixel
    turned = rotate_frame(frame, rotate)
    assert turned.shape[::-1] == rotated_size((W, H), rotate)
    v, u = np.mgrid[0 : turned.shape[0], 0 : turned.shape[1]]
    back = unrotate_px(np.stack([u, v], -1).astype(float), rotate, (W, H))
    assert np.array_equal(back, np.rint(back))
    bu, bv = back[..., 0].astype(int), back[..., 1].astype(int)
    np.testing.assert_array_equal(frame[bv, bu], turned)  # the turned pixel came from that recorded pixel


def test_rotate_follows_opencv() -> None:
    frame = np.zeros((H, W), np.uint8)
    assert rotate_frame(frame, 0) is frame
    np.testing.assert_array_equal(rotate_frame(frame, 270), cv2.rotate(frame, cv2.ROTATE_90_COUNTERCLOCKWISE))


@pytest.mark.parametrize("rotate", [90, 180, 270])
def test_detections_turn_back_with_ordered_boxes(rotate: int) -> None:
    rng = np.random.default_rng(rotate)
    tw, th = rotated_size((W * 100, H * 100), rotate)
    poses = np.concatenate([rng.uniform(0, [tw, th], (2, 17, 2)), rng.uniform(0, 1, (2, 17, 1))], -1).astype(np.float32)
    boxes = np.array([[10, 20, 50, 90, 0.9], [100, 5, 130, 60, 0.7]], np.float32)
    dets = Detections2D("c", 3, 5, poses, boxes)
    out = unrotate_detections(dets, rotate, (W * 100, H * 100))
    np.testing.assert_allclose(out.poses[..., :2], unrotate_px(poses[..., :2], rotate, (W * 100, H * 100)), atol=1e-3)
    np.testing.assert_array_equal(out.poses[..., 2], poses[..., 2])
    corners = unrotate_px(boxes[:, [0, 1, 2, 3, 0, 3, 2, 1]].reshape(2, 4, 2), rotate, (W * 100, H * 100))
    np.testing.assert_allclose(out.boxes[:, :2], corners.min(1), atol=1e-3)
    np.testing.assert_allclose(out.boxes[:, 2:4], corners.max(1), atol=1e-3)
    np.testing.assert_array_equal(out.boxes[:, 4], boxes[:, 4])
    assert (out.frame_idx, out.stamp_ns) == (3, 5)
    assert unrotate_detections(dets, 0, (W, H)) is dets


def test_config_accepts_quarter_turns_only() -> None:
    def cam(**kw: object):
        return config_from_dict({"cameras": [{"name": "c", "source": "x", **kw}]}).cameras[0]

    assert cam().rotate == 0 and cam(rotate=270).rotate == 270
    for bad in (45, -90, 360, "90", True, 90.0):
        with pytest.raises(ConfigError, match="rotate"):
            cam(rotate=bad)
