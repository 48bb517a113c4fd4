"""Frames of another size than the calibration: the image_map config, mapping detections and cameras."""

from __future__ import annotations

import numpy as np
import pytest

from capture.benchmarks.synthetic import person, ring_rig
from capture.sources.image_map import camera_in_frame, check_image_map, map_detections, to_calibration_px
from core.config import ImageMap, config_from_dict
from core.errors import ConfigError, InputError
from core.types import Detections2D

# Faster-VoxelPose's demo frames: 1920x1080 shrunk by 512/1080 into 960x512 with 24.9 px bars at the sides.
PIZZA = ImageMap(512 / 1080, 512 / 1080, (960 - 1920 * 512 / 1080) / 2, 0.0)


def _cameras(image_map: dict) -> ImageMap | None:
    cfg = config_from_dict({"cameras": [{"name": "c", "source": "x", "image_map": image_map}]})
    return cfg.cameras[0].image_map


def test_config_parses_scale_and_per_axis_scales() -> None:
    assert _cameras({"scale": 0.5, "pad_y": -14}) == ImageMap(0.5, 0.5, 0.0, -14.0)
    assert _cameras({"scale_x": 0.5, "scale_y": 0.25, "pad_x": 3}) == ImageMap(0.5, 0.25, 3.0, 0.0)
    for bad in ({"pad_x": 3}, {"scale": 0.5, "scale_x": 0.5}, {"scale_x": 0.5}, {"scale": 0}, {"scale": -1.0},
                {"scale": 0.5, "shift": 2}, {"scale": "half"}, {"scale": True}):  # fmt: skip
        with pytest.raises(ConfigError, match="image_map"):
            _cameras(bad)


def test_mapped_camera_and_mapped_detections_agree_with_the_calibration() -> None:
    cam = ring_rig(dist=np.array([-0.2, 0.05, 0.001, -0.002, 0.0]))[0]
    joints = person((0.2, -0.1), 0.4)
    uv_calib = cam.project(joints)  # (J, 2) calibration pixels
    frame_cam = camera_in_frame(cam, PIZZA, (960, 512))
    uv_frame = frame_cam.project(joints)
    # the mapped camera draws where the frames show the person: frame = calib * scale + pad
    np.testing.assert_allclose(uv_frame, uv_calib * PIZZA.scale_x + [PIZZA.pad_x, 0.0], atol=1e-6)
    np.testing.assert_allclose(to_calibration_px(uv_frame, PIZZA), uv_calib, atol=1e-6)
    poses = np.concatenate([uv_frame, np.full((len(joints), 1), 0.7)], axis=1)[None].astype(np.float32)
    box = np.array([[*uv_frame.min(axis=0), *uv_frame.max(axis=0), 0.9]], np.float32)
    mapped = map_detections(Detections2D("c", 3, 5, poses, box), PIZZA)
    np.testing.assert_allclose(mapped.poses[0, :, :2], uv_calib, atol=1e-3)
    assert (mapped.poses[..., 2] == np.float32(0.7)).all() and mapped.boxes[0, 4] == np.float32(0.9)
    np.testing.assert_allclose(mapped.boxes[0, :4], [*uv_calib.min(axis=0), *uv_calib.max(axis=0)], atol=1e-3)
    assert (mapped.frame_idx, mapped.stamp_ns) == (3, 5)
    assert map_detections(mapped, None) is mapped


def test_size_mismatch_needs_a_fitting_map() -> None:
    check_image_map((1920, 1080), (1920, 1080), None)
    with pytest.raises(InputError, match="960x512 but calibration rig.json gives camera c1 1920x1080"):
        check_image_map((960, 512), (1920, 1080), None, "view_0.jpg", "c1", "rig.json")
    check_image_map((960, 512), (1920, 1080), PIZZA)  # bars of 2.6 %
    check_image_map((960, 512), (1920, 1080), ImageMap(0.5, 0.5, 0.0, -14.0))  # 14 px cropped top and bottom
    for wrong in (ImageMap(0.25, 0.25), ImageMap(1.0, 1.0), ImageMap(0.5, 0.5, 0.0, 300.0)):
        with pytest.raises(InputError, match="check the mapping"):
            check_image_map((960, 512), (1920, 1080), wrong)
