"""Where the node expects each camera's people: the boxes of the region-of-interest hints and ``full``."""

from __future__ import annotations

import numpy as np
import pytest
from roi_scene import H, W, person, pinhole, two_cameras

from capture.service.roi_plan import RoiPlanner, roi_boxes


def test_box_is_the_projected_joints_widened_by_margin_and_motion():
    cam = pinhole()
    pose = person((0.0, 0.0, 4.0))  # joints project to x 450..550, y 300..500
    pose[2] = [9.0, 9.0, 4.0, 0.0]  # a missing joint (conf 0) far off does not count
    boxes, which = roi_boxes(cam, pose[None], lead_s=0.0, margin=0.1)
    assert which.tolist() == [0] and boxes.dtype == np.float32
    np.testing.assert_allclose(boxes[0], [440, 280, 560, 520], atol=1e-3)  # 10 % of 100 x 200 each side
    # 2 m/s for 0.1 s at 4 m: 0.2 m * 1000 px / 4 m = 50 px more on each side
    boxes, _ = roi_boxes(cam, pose[None], lead_s=0.1, margin=0.1, speed_mps=2.0)
    np.testing.assert_allclose(boxes[0], [390, 230, 610, 570], atol=1e-3)
    # the allowance is taken at the nearest joint: one joint at 2 m doubles it
    near = pose.copy()
    near[3] = [0.0, 0.0, 2.0, 1.0]
    boxes, _ = roi_boxes(cam, near[None], lead_s=0.1, margin=0.0, speed_mps=2.0)
    np.testing.assert_allclose(boxes[0], [350, 200, 650, 600], atol=1e-3)


def test_boxes_are_clipped_and_people_out_of_view_left_out():
    cam = pinhole()
    poses = np.stack(
        [
            person((0.0, 0.0, 4.0)),  # in view
            person((-2.1, 0.0, 4.0)),  # x -75..25 px: clipped at 0
            person((10.0, 0.0, 4.0)),  # far right of the image
            person((0.0, 0.0, -4.0)),  # behind the camera
            np.zeros((17, 4)),  # nobody (all joints missing)
        ]
    )
    boxes, which = roi_boxes(cam, poses, lead_s=0.0, margin=0.0)
    assert which.tolist() == [0, 1]
    np.testing.assert_allclose(boxes[1], [0, 300, 25, 500], atol=1e-3)
    assert (boxes[:, 0] >= 0).all() and (boxes[:, 2] <= W).all() and (boxes[:, 3] <= H).all()
    # a person just outside the image enters it through the motion allowance
    outside = person((2.4, 0.0, 4.0))[None]  # x 1050..1150 px
    assert roi_boxes(cam, outside, lead_s=0.0, margin=0.0)[0].shape == (0, 4)
    boxes, _ = roi_boxes(cam, outside, lead_s=0.2, margin=0.0, speed_mps=2.0)  # 100 px of reach
    np.testing.assert_allclose(boxes[0], [950, 200, 1000, 600], atol=1e-3)


@pytest.mark.parametrize("seed", range(3))
def test_boxes_hold_every_visible_joint_with_lens_distortion(seed):
    """Property: with a distorted lens, each projected joint inside the image lies inside its box."""
    rng = np.random.default_rng(seed)
    cam = pinhole(dist=np.array([-0.25, 0.08, 0.001, -0.002, 0.0]))
    poses = np.zeros((6, 17, 4))
    poses[..., :3] = rng.uniform([-1.5, -1.2, 3.0], [1.5, 1.2, 6.0], size=(6, 1, 3)) + rng.normal(0, 0.3, (6, 17, 3))
    poses[..., 3] = rng.uniform(0, 1, (6, 17)) > 0.2
    boxes, which = roi_boxes(cam, poses, lead_s=0.0, margin=0.0)
    uv = cam.project(poses[..., :3].reshape(-1, 3)).reshape(6, 17, 2)
    inside = (uv >= 0).all(-1) & (uv <= [W, H]).all(-1) & (poses[..., 3] > 0)
    for k, p in enumerate(which):
        q = uv[p][inside[p]]
        assert (q >= boxes[k, :2] - 1e-3).all() and (q <= boxes[k, 2:] + 1e-3).all()
    assert set(which.tolist()) == {p for p in range(6) if inside[p].any()}


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match=r"\(P, J, 4\)"):
        roi_boxes(pinhole(), np.zeros((2, 17, 3)), 0.0)
    with pytest.raises(ValueError, match=">= 0"):
        roi_boxes(pinhole(), np.zeros((1, 17, 4)), -0.1)


def _plan(planner: RoiPlanner, f: int, ids: list[int], live=None, unclaimed=None, period_ns: int = 16_666_667):
    poses = np.stack([person((0.3 * k, 0.0, 4.0)) for k in range(len(ids))]) if ids else np.zeros((0, 17, 4))
    return planner.plan(f, f * period_ns, np.array(ids, np.int64), poses, live, unclaimed)


def test_full_is_asked_when_nobody_is_tracked_the_set_changes_or_a_track_is_hidden():
    planner = RoiPlanner(two_cameras(), lead_frames=0)
    full = lambda hints: [h.full for h in hints]  # noqa: E731
    assert full(_plan(planner, 0, [])) == [True, True]  # nobody tracked
    assert full(_plan(planner, 1, [1, 2])) == [True, True]  # the set changed
    hints = _plan(planner, 2, [1, 2], live=np.array([1, 2]))
    assert full(hints) == [False, False]
    assert [h.track_ids.tolist() for h in hints] == [[1, 2], [1, 2]] and hints[0].boxes.shape == (2, 4)
    assert full(_plan(planner, 3, [1, 2], live=np.array([1, 2, 7]))) == [True, True]  # tentative or lost 7
    assert full(_plan(planner, 4, [1, 2], unclaimed=np.array([0, 1]))) == [False, True]  # cam02 saw someone else
    assert full(_plan(planner, 5, [2])) == [True, True]  # track 1 left the published set
    assert [h.camera for h in hints] == ["cam01", "cam02"] and {h.frame_idx for h in hints} == {2}
    assert planner.frames == 6 and planner.full_hints == 9


def test_lead_time_follows_the_frame_period():
    """The allowance is lead_frames frame periods (measured from the stamps) of motion at SPEED_MPS."""
    widths = {}
    for period_ns in (16_666_667, 33_333_333):
        planner = RoiPlanner(two_cameras(), lead_frames=3, margin=0.0, speed_mps=2.0)
        _plan(planner, 0, [1], period_ns=period_ns)
        hint = _plan(planner, 2, [1], period_ns=period_ns)[0]
        assert planner.period_s == pytest.approx(period_ns * 1e-9, rel=1e-6)
        widths[period_ns] = float(hint.boxes[0, 2] - hint.boxes[0, 0])
    # 100 px of body plus 2 * 1000 px * 2 m/s * 3 * period / 4 m
    assert widths[16_666_667] == pytest.approx(100 + 2 * 1000 * 2 * 3 / 60 / 4, abs=0.01)
    assert widths[33_333_333] == pytest.approx(100 + 2 * 1000 * 2 * 3 / 30 / 4, abs=0.01)
