"""Issue 10's crowd case: two people on one epipolar plane of a camera pair, rendered in different
clothing. Geometry alone cannot tell them apart; the workers' re-ID descriptors computed on the
rendered images can, and the node's multi-way matcher then pairs them right."""

from __future__ import annotations

import cv2
import numpy as np
from render_people import draw_person
from synth import look_at_camera, person

from calibration.camera import CameraRig
from capture.detect.reid import N_PARTS, part_histograms
from matching.affinity import AffinityConfig, frame_affinity, stack_fundamentals
from matching.epipolar import EpipolarMatcher
from matching.multiway import MultiwayMatcher

CLOTHES = {"a": ((40, 40, 200), (110, 50, 20)), "b": ((60, 170, 40), (150, 150, 150))}  # BGR shirt, trousers


def _draw(img: np.ndarray, uv: np.ndarray, shirt: tuple, trousers: tuple) -> None:
    """Draw a person from its (17, 2) projected joints, sized by its height in the image."""
    draw_person(img, uv, shirt, trousers, float(np.ptp(uv[:, 1])), min_width=3, head=0.06)


def _scene(rng):
    """Two cameras side by side; person b stands 1.2 m from a along the baseline, so every joint of b
    lies on the epipolar planes of a's joints. Returns the rig and, per view, pixels, confidences and
    descriptors computed on the rendered image (view 1 lists b first)."""
    target = np.array([0.0, 0.0, 1.0])
    rig = CameraRig(
        (
            look_at_camera("left", np.array([-1.5, -5.0, 1.6]), target, f=900.0, size=(1280, 720)),
            look_at_camera("right", np.array([1.5, -5.0, 1.6]), target, f=900.0, size=(1280, 720)),
        )
    )
    base = (rig[1].center - rig[0].center) / np.linalg.norm(rig[1].center - rig[0].center)
    a = person((-0.6, 0.0), 0.0)
    people = {"a": a, "b": a + 1.2 * base}
    pts, conf, desc = [], [], []
    for c, cam in enumerate(rig):
        order = ["a", "b"] if c == 0 else ["b", "a"]
        img = cv2.GaussianBlur(rng.integers(60, 140, size=(720, 1280, 3), dtype=np.uint8), (9, 9), 3)
        uv = np.stack([cam.project(people[k]) for k in order])  # (2, 17, 2)
        for k, p in zip(order, uv, strict=True):
            _draw(img, p, *CLOTHES[k])
        poses = np.concatenate([uv, np.ones((2, 17, 1))], axis=2).astype(np.float32)
        boxes = np.array([[*p.min(0) - 20, *p.max(0) + 20, 0.9] for p in uv], np.float32)
        pts.append(uv)
        conf.append(np.ones((2, 17)))
        desc.append(part_histograms(img, poses, boxes))
    return rig, pts, conf, desc


def test_appearance_separates_two_people_on_one_epipolar_plane_where_geometry_cannot(rng):
    rig, pts, conf, desc = _scene(rng)
    F = stack_fundamentals(rig)
    geo, _, _ = frame_affinity(pts, conf, F)
    # Items: view 0 [a, b], view 1 [b, a]. Geometry ties: a in view 0 fits b in view 1 as well as a.
    assert geo[0, 3] > 0.99 and abs(geo[0, 2] - geo[0, 3]) < 1e-6 and abs(geo[1, 2] - geo[1, 3]) < 1e-6
    cfg = AffinityConfig(appearance_weight=0.5, cos_floor=0.3, n_parts=N_PARTS)
    mixed, _, _ = frame_affinity(pts, conf, F, desc, cfg)
    assert mixed[0, 3] > 0.5 > mixed[0, 2] and mixed[1, 2] > 0.5 > mixed[1, 3]
    truth = {((0, 0), (1, 1)), ((0, 1), (1, 0))}
    with_app = MultiwayMatcher(rig, cfg).match(pts, conf, desc)
    assert {tuple(sorted(g)) for g in with_app} == truth
    # Geometry alone breaks the tie by order and pairs a (view 0) with b (view 1), both matchers.
    for matcher in (MultiwayMatcher(rig, AffinityConfig()), EpipolarMatcher(rig)):
        assert ((0, 0), (1, 0)) in {tuple(sorted(g)) for g in matcher.match(pts, conf)}
