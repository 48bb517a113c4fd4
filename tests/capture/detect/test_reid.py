"""Keypoint-guided part colour histograms (capture.detect.reid) on rendered synthetic people."""

import cv2
import numpy as np
import pytest
from render_people import draw_person

from capture.detect.reid import BINS_PER_PART, DIM, N_PARTS, PARTS, appearance_similarity, part_histograms
from core.errors import ShapeError
from core.skeleton import COCO17

# A standing person facing the camera, COCO-17 order, in units of body height (y down; the
# person's left is image right).
_TEMPLATE = np.array(
    [
        [0.0, 0.08], [0.02, 0.06], [-0.02, 0.06], [0.05, 0.07], [-0.05, 0.07],  # nose, eyes, ears
        [0.11, 0.2], [-0.11, 0.2], [0.15, 0.36], [-0.15, 0.36], [0.16, 0.5], [-0.16, 0.5],  # arms
        [0.08, 0.52], [-0.08, 0.52], [0.09, 0.73], [-0.09, 0.73], [0.09, 0.95], [-0.09, 0.95],  # legs
    ]
)  # fmt: skip
_J = COCO17.index


def _person(img, x, y, height, shirt, trousers):
    """Draw a person (BGR colours) with its top of head at (x, y); return its (17, 3) pose and (5,) box."""
    xy = _TEMPLATE * height + [x, y]
    draw_person(img, xy, shirt, trousers, height, min_width=2, head=0.07)
    pose = np.concatenate([xy, np.ones((17, 1))], axis=1).astype(np.float32)
    box = np.array([*(xy.min(0) - 0.05 * height), *(xy.max(0) + 0.05 * height), 0.9], np.float32)
    return pose, box


def _scene(rng, people, size=(480, 640), gain=1.0):
    """A textured background with ``people`` = [(x, y, height, shirt, trousers)]; returns image, poses, boxes."""
    img = rng.integers(60, 140, size=(*size, 3), dtype=np.uint8)
    img = cv2.GaussianBlur(img, (9, 9), 3)
    poses, boxes = zip(*(_person(img, *p) for p in people), strict=True)
    noisy = img.astype(np.float64) * gain + rng.normal(0, 3, img.shape)
    return np.clip(noisy, 0, 255).astype(np.uint8), np.stack(poses), np.stack(boxes)


RED, NAVY, GREEN, GREY = (40, 40, 200), (110, 50, 20), (60, 170, 40), (150, 150, 150)
A = (RED, NAVY)  # red shirt, navy trousers
B = (GREEN, GREY)  # green shirt, grey trousers


def _two_views(rng, gain2=1.0):
    """Persons A and B in view 1 (large) and in view 2 (smaller, swapped places, other brightness)."""
    im1, p1, b1 = _scene(rng, [(200, 40, 400, *A), (440, 60, 380, *B)])
    im2, p2, b2 = _scene(rng, [(450, 150, 180, *A), (150, 120, 220, *B)], gain=gain2)
    return part_histograms(im1, p1, b1), part_histograms(im2, p2, b2)


def test_output_shape_dtype_and_unit_norm(rng):
    img, poses, boxes = _scene(rng, [(200, 40, 400, *A), (440, 60, 380, *B)])
    d = part_histograms(img, poses, boxes)
    assert d.shape == (2, DIM) and d.dtype == np.float32 and DIM == N_PARTS * BINS_PER_PART
    assert np.allclose(np.linalg.norm(d, axis=1), 1.0, atol=1e-5)
    assert (d >= 0).all()
    blocks = d.reshape(2, N_PARTS, BINS_PER_PART)
    assert np.allclose(np.linalg.norm(blocks, axis=-1), 0.5, atol=1e-5)  # 4 parts seen, each 1/sqrt(4)
    empty = part_histograms(img, np.zeros((0, 17, 3)), np.zeros((0, 5)))
    assert empty.shape == (0, DIM) and empty.dtype == np.float32


def test_same_person_is_more_similar_across_scale_position_and_brightness(rng):
    d1, d2 = _two_views(rng, gain2=0.85)
    sim = appearance_similarity(d1, d2)
    assert sim[0, 0] > sim[0, 1] + 0.3 and sim[1, 1] > sim[1, 0] + 0.3, sim
    assert sim[0, 0] > 0.8 and sim[1, 1] > 0.8, sim


def test_darker_view_keeps_the_ranking(rng):
    """Brightness x0.7 leaves hue and saturation and moves only the coarse value bins."""
    d1, d_dark = _two_views(rng, gain2=0.7)
    sim = appearance_similarity(d1, d_dark)
    assert np.array_equal(sim.argmax(1), [0, 1]) and np.array_equal(sim.argmax(0), [0, 1]), sim
    assert sim[0, 0] > 0.75 and sim[1, 1] > 0.75, sim


def test_parts_sit_where_the_keypoints_say(rng):
    """Changing only the trousers changes only the thigh and shin blocks: the regions follow the joints."""
    img, poses, boxes = _scene(rng, [(200, 40, 400, RED, NAVY), (440, 40, 400, RED, GREEN)])
    d = part_histograms(img, poses, boxes).reshape(2, N_PARTS, BINS_PER_PART)
    bc = (d[0] * d[1]).sum(-1) * N_PARTS  # per-part Bhattacharyya coefficients (blocks of norm 1/2)
    torso, arms, thighs, shins = (bc[PARTS.index(p)] for p in PARTS)
    assert torso > 0.9 and arms > 0.8, bc
    assert thighs < 0.3 and shins < 0.3, bc


def test_half_the_joints_missing_still_matches(rng):
    """Left arm and both shins undetected (one thigh left): the parts seen still identify the person."""
    d1, _ = _two_views(rng)
    im2, p2, b2 = _scene(rng, [(450, 150, 180, *A), (150, 120, 220, *B)])
    hidden = [_J(j) for j in ("left_elbow", "left_wrist", "right_knee", "left_ankle", "right_ankle", "nose")]
    hidden += [_J(j) for j in ("left_eye", "right_eye", "left_ear")]
    p2[:, hidden, 2] = 0.0  # 9 of 17 joints missing
    d2 = part_histograms(im2, p2, b2)
    blocks = d2.reshape(2, N_PARTS, BINS_PER_PART)
    seen = np.linalg.norm(blocks, axis=-1) > 0
    assert seen.tolist() == [[True, True, True, False]] * 2  # shins unseen: zero blocks
    assert np.allclose(np.linalg.norm(d2, axis=1), 1.0, atol=1e-5)
    sim = appearance_similarity(d1, d2)
    assert sim[0, 0] > sim[0, 1] + 0.3 and sim[1, 1] > sim[1, 0] + 0.3, sim


def test_no_joints_gives_a_zero_row_and_the_unseen_similarity(rng):
    img, poses, boxes = _scene(rng, [(200, 40, 400, *A)])
    poses[..., 2] = 0.1  # every joint below min_conf
    d = part_histograms(img, poses, boxes)
    assert not d.any()
    full = part_histograms(*_scene(rng, [(200, 40, 400, *A)]))
    assert appearance_similarity(d, full).tolist() == [[0.5]]
    assert appearance_similarity(d, full, unseen=0.0).tolist() == [[0.0]]


def test_similarity_averages_the_common_parts_only():
    """Parts missing in either descriptor are ignored, and the plain cosine equals the mean
    Bhattacharyya coefficient when all parts are seen (the documented behaviour)."""
    rng = np.random.default_rng(1)
    h = rng.uniform(0, 1, size=(2, N_PARTS, BINS_PER_PART))
    h = np.sqrt(h / h.sum(-1, keepdims=True))  # unit blocks
    bc = (h[0] * h[1]).sum(-1)
    full = h.reshape(2, DIM) / np.sqrt(N_PARTS)
    sim = appearance_similarity(full[:1], full[1:])
    assert np.isclose(sim[0, 0], bc.mean()) and np.isclose(full[0] @ full[1], bc.mean())
    partial = h[1].copy()
    partial[[1, 3]] = 0.0  # only the torso and thighs seen
    partial = partial.reshape(1, DIM) / np.sqrt(2)
    assert np.isclose(appearance_similarity(full[:1], partial)[0, 0], bc[[0, 2]].mean())
    assert np.isclose(appearance_similarity(partial, partial)[0, 0], 1.0)


def test_bad_inputs_raise(rng):
    img, poses, boxes = _scene(rng, [(200, 40, 400, *A)])
    with pytest.raises(ShapeError, match="uint8"):
        part_histograms(img.astype(np.float32), poses, boxes)
    with pytest.raises(ShapeError, match="poses"):
        part_histograms(img, poses[:, :10], boxes)
    with pytest.raises(ShapeError, match="boxes"):
        part_histograms(img, poses, np.zeros((2, 5)))
    with pytest.raises(ShapeError, match="multiple"):
        appearance_similarity(np.zeros((1, 10)), np.zeros((1, 10)))
