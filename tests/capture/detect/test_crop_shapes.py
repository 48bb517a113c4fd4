"""Crop geometry: capture.detect.crop_shapes (shape ladder, scale-keeping shapes, crop plans, grid windows)."""

from __future__ import annotations

import numpy as np
import pytest

from capture.detect.crop_shapes import CALL_PX, grid_windows, letterbox_geometry, pick_shape, plan_crops, shape_ladder


@pytest.mark.parametrize(
    ("smallest", "largest"), [((256, 160), (640, 384)), ((160, 256), (384, 640)), ((96, 64), (96, 64))]
)
def test_ladder_runs_from_the_crop_input_to_a_shape_covering_the_full_input(smallest, largest) -> None:
    shapes = shape_ladder(smallest, largest)
    assert shapes[0] == smallest
    assert all(h % 32 == 0 and w % 32 == 0 and h > 0 and w > 0 for h, w in shapes)
    areas = [h * w for h, w in shapes]
    assert areas == sorted(areas) and len(set(shapes)) == len(shapes)
    assert any(h >= largest[0] and w >= largest[1] for h, w in shapes)  # any box of the frame fits at its scale
    assert all(a < largest[0] * largest[1] for a in areas[:-2])  # and no rung far beyond the full pass's cost


def test_pick_shape_is_the_smallest_that_keeps_the_scale() -> None:
    shapes = shape_ladder((256, 160), (640, 384))
    rng = np.random.default_rng(0)
    wh = rng.uniform(50, 1000, size=(200, 2)) * [1, 1.8]
    boxes = np.concatenate([np.zeros((200, 2)), wh], axis=1)
    k = pick_shape(boxes, 1 / 3, shapes)
    hw = np.array(shapes)
    for (w, h), i in zip(wh, k, strict=True):
        fits = (hw[:, 0] >= h / 3 * 0.99) & (hw[:, 1] >= w / 3 * 0.99)
        if not fits.any():
            assert i == -1
            continue
        assert fits[i] and (hw[:, 0] * hw[:, 1])[fits].min() == hw[i, 0] * hw[i, 1]
    assert pick_shape(np.array([[0.0, 0.0, 1088.0, 1920.0]]), 640 / 1920, shapes).tolist() == [len(shapes) - 1]


def test_planned_crops_hold_their_hints_at_no_coarser_scale() -> None:
    shapes = shape_ladder((256, 160), (640, 384))
    rng = np.random.default_rng(1)
    frame_wh, scale = (1088, 1920), 1 / 3
    for _ in range(30):
        lo = rng.uniform([0, 0], [900, 1200], size=(3, 2))
        hints = np.concatenate([lo, np.minimum(lo + rng.uniform([80, 200], [500, 1300], size=(3, 2)), frame_wh)], 1)
        crops, owner, kind = plan_crops(hints, shapes, scale, frame_wh)
        assert owner.shape == (3,) and kind.shape == (len(crops),) and len(crops) <= 3
        for k, c in zip(owner, hints, strict=True):
            x0, y0, x1, y1 = crops[k]
            assert x0 <= np.floor(c[0]) and y0 <= np.floor(c[1]) and x1 >= np.ceil(c[2]) - 1 and y1 >= np.ceil(c[3]) - 1
        for crop, k in zip(crops, kind, strict=True):
            h_in, w_in = shapes[k]
            cw, ch = crop[2] - crop[0], crop[3] - crop[1]
            assert min(h_in / ch, w_in / cw) >= scale * 0.98  # as finely (1 % slack, + integer crop corners)
            assert 0 <= crop[0] < crop[2] <= frame_wh[0] and 0 <= crop[1] < crop[3] <= frame_wh[1]


def test_crops_merge_only_when_one_call_costs_less() -> None:
    shapes = shape_ladder((256, 160), (640, 384))
    frame_wh = (1088, 1920)
    twins = np.array([[100, 300, 400, 1300], [130, 320, 430, 1310]], float)  # one person, two hints
    crops, owner, _ = plan_crops(twins, shapes, 1 / 3, frame_wh)
    assert len(crops) == 1 and owner.tolist() == [0, 0]
    apart = np.array([[0, 0, 200, 500], [800, 1400, 1000, 1900]], float)  # opposite corners: a union costs more
    crops, owner, kind = plan_crops(apart, shapes, 1 / 3, frame_wh)
    assert len(crops) == 2 and owner.tolist() == [0, 1] and kind.tolist() == [0, 0]
    # Merging never raises the cost: the plan costs no more than one crop per hint
    rng = np.random.default_rng(2)
    for _ in range(30):
        lo = rng.uniform([0, 0], [900, 1200], size=(4, 2))
        hints = np.concatenate([lo, np.minimum(lo + rng.uniform([80, 200], [500, 1300], size=(4, 2)), frame_wh)], 1)
        cost = np.array([h * w + CALL_PX for h, w in shapes])
        _, _, kind = plan_crops(hints, shapes, 1 / 3, frame_wh)
        assert cost[kind].sum() <= cost[pick_shape(hints, 1 / 3, shapes)].sum()


@pytest.mark.parametrize("frame_wh", [(1088, 1920), (1920, 1080), (960, 512), (641, 479)])
def test_letterbox_geometry_is_the_letterbox_of_an_image(frame_wh) -> None:
    from capture.detect.letterbox import input_hw_for_frame, letterbox

    input_hw = input_hw_for_frame(frame_wh, 640)
    _, gain, pad = letterbox(np.zeros((frame_wh[1], frame_wh[0], 3), np.uint8), input_hw)
    assert letterbox_geometry(frame_wh, input_hw) == (gain, pad)


def test_grid_windows_are_aligned_hold_their_box_and_stay_in_the_input() -> None:
    rng = np.random.default_rng(4)
    input_wh, shapes = (384, 640), shape_ladder((256, 160), (640, 384))
    for _ in range(200):
        size = rng.uniform([10, 10], [352, 608])
        lo = rng.uniform([0, 0], np.array(input_wh) - size)
        box = np.concatenate([lo, lo + size])
        k = pick_shape((box + [-16, -16, 16, 16])[None], 1.0, shapes, slack=0.0)[0]  # as CropDetector plans
        hw = np.array(shapes[k if k >= 0 else -1])[None]
        (x0, y0, x1, y1) = grid_windows(box[None], hw, input_wh)[0]
        assert x0 % 32 == 0 and y0 % 32 == 0 and (x1 - x0, y1 - y0) == (hw[0, 1], hw[0, 0])
        assert x0 <= box[0] and y0 <= box[1] and x1 >= box[2] and y1 >= box[3]
        if hw[0, 1] < input_wh[0]:
            assert 0 <= x0 and x1 <= input_wh[0]
        if hw[0, 0] < input_wh[1]:
            assert 0 <= y0 and y1 <= input_wh[1]
    wide = grid_windows(np.array([[0.0, 0.0, 384.0, 100.0]]), np.array([[128, 448]]), input_wh)[0]
    assert wide[0] <= 0 and wide[2] >= 384 and wide[0] % 32 == 0  # wider than the input: it covers it all
