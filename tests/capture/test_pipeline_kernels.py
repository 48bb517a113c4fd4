"""The reconstruction's compiled glue (capture._pipeline_kernels) against plain numpy references: the
padding of the kept detections as FrameReconstructor._prepare computed it before (concatenate, keep mask,
rank scatter), the gathering of the groups' detections (fancy-index assignment), and the reprojection
error of the published poses (einsum)."""

from __future__ import annotations

import numpy as np
import pytest

from capture._pipeline_kernels import gather_members, pad_detections, reprojection_errors
from capture.pipeline import FrameReconstructor
from core.skeleton import COCO17
from core.types import Detections2D

J = 17


def _reference_pad(poses_per_view, boxes_per_view, min_box, min_conf, min_valid):
    """The numpy padding of FrameReconstructor._prepare before its kernel (undistortion left out)."""
    C = len(poses_per_view)
    n = [len(p) for p in poses_per_view]
    poses = np.concatenate([np.zeros((0, J, 3))] + poses_per_view, dtype=np.float64)
    score = np.concatenate([np.zeros(0, np.float32)] + [b[:, 4] for b in boxes_per_view], dtype=np.float32)
    keep = (score >= min_box) & ((poses[:, :, 2] >= min_conf).sum(axis=1) >= min_valid)
    view = np.repeat(np.arange(C), n)[keep]
    counts = np.bincount(view, minlength=C)
    rank = np.arange(view.size) - (np.cumsum(counts) - counts)[view]
    kept = np.zeros((C, int(counts.max(initial=0)), J, 3))
    kept[view, rank] = poses[keep]
    return kept[..., :2], kept[..., 2], counts, keep


def _random_views(rng, n_per_view):
    poses, boxes = [], []
    for k in n_per_view:
        p = np.concatenate([rng.uniform(0, 1920, (k, J, 2)), rng.uniform(0, 1, (k, J, 1))], axis=2).astype(np.float32)
        b = rng.uniform(0, 1, (k, 5)).astype(np.float32)
        poses.append(p)
        boxes.append(b)
    return poses, boxes


@pytest.mark.parametrize("n_per_view", [[3, 0, 2, 5], [0, 0, 0], [1], [], [4, 4, 4, 4, 4, 4, 4, 4]])
def test_pad_detections_matches_numpy(n_per_view):
    rng = np.random.default_rng(len(n_per_view))
    for _ in range(20):
        poses, boxes = _random_views(rng, n_per_view)
        if sum(n_per_view):  # scores and confidences at float32(threshold): compared in float32 resp. float64
            boxes[-1][:, 4] = np.float32(0.35)
            poses[0][..., 2] = np.where(rng.random(poses[0].shape[:2]) < 0.5, np.float32(0.7), poses[0][..., 2])
        allp = np.concatenate([np.zeros((0, J, 3), np.float32)] + poses)
        allb = np.concatenate([np.zeros((0, 5), np.float32)] + boxes)
        got = pad_detections(allp, allb, np.array(n_per_view, np.int64), np.float32(0.35), 0.7, 6.0)
        want = _reference_pad(poses, boxes, 0.35, 0.7, 6)
        for g, w in zip(got, want, strict=True):
            assert g.shape == w.shape and g.dtype == w.dtype
            np.testing.assert_array_equal(g, w)


def _reference_gather(members, pts, conf, G, by_view):
    C, J_ = pts.shape[0], pts.shape[2]
    g, c, i = members.T
    if by_view:
        obs, w = np.zeros((C, G, J_, 2)), np.zeros((C, G, J_))
        obs[c, g], w[c, g] = pts[c, i], conf[c, i]
    else:
        obs, w = np.zeros((G, C, J_, 2)), np.zeros((G, C, J_))
        obs[g, c], w[g, c] = pts[c, i], conf[c, i]
    return obs, w


@pytest.mark.parametrize("by_view", [True, False])
@pytest.mark.parametrize("C,P,G", [(4, 3, 3), (1, 1, 1), (32, 6, 10), (4, 0, 0), (3, 2, 0)])
def test_gather_members_matches_fancy_indexing(by_view, C, P, G):
    rng = np.random.default_rng(C * 100 + P * 10 + G)
    pts, conf = rng.normal(size=(C, P, J, 2)), rng.uniform(size=(C, P, J))
    for _ in range(10):
        rows = []
        for g in range(G):  # each group: distinct views, any detection of each
            views = rng.choice(C, size=rng.integers(1, C + 1), replace=False)
            rows += [(g, c, rng.integers(P)) for c in views]
        members = np.array(rows, dtype=np.int64).reshape(-1, 3)
        got = gather_members(members, pts, conf, G, by_view)
        want = _reference_gather(members, pts, conf, G, by_view)
        for a, b in zip(got, want, strict=True):
            assert a.shape == b.shape
            np.testing.assert_array_equal(a, b)


def _reference_reproj(Pm, out, used, obs_px):
    """The numpy reprojection error of FrameReconstructor._process_live before its kernel."""
    seen = used & (out[:, None, :, 3] > 0)
    q = np.einsum("cij,pnj->pcni", Pm[:, :, :3], out[..., :3]) + Pm[:, :, 3][None, :, None]
    uv = q[..., :2] / np.where(np.abs(q[..., 2:]) > 1e-9, q[..., 2:], 1e-9)
    return np.linalg.norm(uv - obs_px, axis=-1)[seen]


@pytest.mark.parametrize("C,P", [(4, 3), (1, 1), (32, 8), (4, 0)])
def test_reprojection_errors_match_einsum(C, P):
    rng = np.random.default_rng(C + P)
    Pm = rng.normal(size=(C, 3, 4)) * [[1000.0], [1000.0], [1.0]]
    for _ in range(10):
        out = np.concatenate([rng.normal(size=(P, J, 3)), rng.uniform(-0.5, 1, (P, J, 1))], axis=2)
        out[..., 3] = np.where(out[..., 3] < 0, 0.0, out[..., 3])  # missing joints
        if P:  # a joint on a camera's principal plane: the depth is floored at 1e-9
            out[0, 0, :3] = np.linalg.lstsq(Pm[0, 2:, :3], -Pm[0, 2:, 3], rcond=None)[0]
            out[0, 0, 3] = 1.0
        used = rng.random((P, C, J)) < 0.7
        obs = rng.normal(size=(P, C, J, 2)) * 500
        got = reprojection_errors(Pm, out, used, obs)
        want = _reference_reproj(Pm, out, used, obs)
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-6)


def test_prepare_keeps_descriptors_of_kept_detections_in_order():
    """Per-detection data (here appearance descriptors) follows the kept detections of each view, with
    dropped detections and missing or empty views before it."""
    from calibration.camera import Camera, CameraRig

    K = np.array([[1000.0, 0, 640], [0, 1000.0, 360], [0, 0, 1]])
    rig = CameraRig(
        tuple(Camera(f"c{c}", K, np.zeros(5), np.eye(3), np.array([-c, 0.0, 0.0]), (1280, 720)) for c in range(4))
    )
    rec = FrameReconstructor(rig, COCO17)
    rng = np.random.default_rng(0)
    views = [None]
    for c, k in ((1, 0), (2, 4), (3, 3)):
        poses, boxes = _random_views(rng, [k])
        poses[0][..., 2] = 0.9
        if k:
            boxes[0][:, 4] = [0.9, 0.1, 0.9, 0.9][:k]  # detection 1 dropped
        emb = rng.uniform(size=(k, 8)).astype(np.float32)
        views.append(Detections2D(f"c{c}", 0, 0, poses[0], boxes[0], embeddings=emb))
    pts, conf, counts, lifted, desc = rec._prepare(views)
    assert counts.tolist() == [0, 0, 3, 2] and pts.shape == (4, 3, J, 2)
    assert desc[0] is None and desc[1].shape == (0, 8)
    np.testing.assert_array_equal(desc[2], views[2].embeddings[[0, 2, 3]])
    np.testing.assert_array_equal(desc[3], views[3].embeddings[[0, 2]])
    np.testing.assert_array_equal(pts[2, :3], views[2].poses[[0, 2, 3], :, :2])
    np.testing.assert_array_equal(conf[3, 2], 0.0)
