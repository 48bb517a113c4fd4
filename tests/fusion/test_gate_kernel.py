"""The compiled gate and bone kernels against plain numpy references: edge cases of the gate, the
multi-limb bone-length constraint, limb lengths and broadcast Mahalanobis distances."""

from __future__ import annotations

import numpy as np
import pytest

from core.skeleton import COCO17
from fusion.association import GATE_D2, gate_groups, mahalanobis2, predicted_pixels
from fusion.bones import BoneModel

J = COCO17.n_joints
MIRROR = np.arange(J)
for _l, _r in COCO17.left_right:
    MIRROR[_l], MIRROR[_r] = _r, _l
P1 = np.array([[[1000.0, 0, 500, 0], [0, 1000, 500, 0], [0, 0, 1, 0]]])  # one camera looking along +z


def _tracks(rng, T):
    pos = rng.normal(0, 0.3, (T, J, 3)) + [0, 0, 4]
    A = rng.normal(0, 0.02, (T, J, 3, 3))
    return pos, A @ A.transpose(0, 1, 3, 2) + 1e-4 * np.eye(3)


def test_gate_edge_cases_no_tracks_no_groups_one_view_all_far():
    rng = np.random.default_rng(0)
    pos, cov = _tracks(rng, 2)
    z = predicted_pixels(pos[0], cov[0], P1)[0][None]  # (1, J, 1, 2): group 0 exactly on track 0
    var, meas = np.full((1, J, 1), 4.0), np.ones((1, J, 1), bool)
    poses = np.concatenate([pos[:1], np.ones((1, J, 1))], axis=-1)
    empty = gate_groups(pos[:0], cov[:0], np.ones((0, J), bool), z, var, meas, poses, P1, MIRROR, 0.5)
    assert empty.swap.shape == (0, 1, J, 1) and empty.cost.shape == (0, 1)
    none = gate_groups(pos, cov, np.ones((2, J), bool), z[:0], var[:0], meas[:0], poses[:0], P1, MIRROR, 0.5)
    assert none.ok.shape == (2, 0) and none.inlier.shape == (2, 0, J, 1)
    one = gate_groups(pos, cov, np.ones((2, J), bool), z, var, meas, poses, P1, MIRROR, 0.5)
    assert one.ok[0, 0] and one.cost[0, 0] == 0.0 and one.inlier[0, 0].all() and not one.swap.any()
    assert one.dist_m[0, 0] == 0.0
    far = poses.copy()
    far[..., :3] += 5.0
    out = gate_groups(pos, cov, np.ones((2, J), bool), z, var, meas, far, P1, MIRROR, 0.5)
    assert not out.ok.any() and (out.cost == GATE_D2).all() and not out.inlier.any()
    few = poses.copy()
    few[0, 2:, 3] = 0.0  # two common joints: no 3D distance, compared in the image
    out = gate_groups(pos, cov, np.ones((2, J), bool), z, var, meas, few, P1, MIRROR, 0.5)
    assert np.isinf(out.dist_m).all() and out.ok[0, 0]


def test_gate_and_predictions_reject_a_covariance_that_is_not_positive_definite():
    rng = np.random.default_rng(1)
    pos, cov = _tracks(rng, 1)
    cov[0, 3] = -np.eye(3)
    poses = np.concatenate([pos, np.ones((1, J, 1))], axis=-1)
    with pytest.raises(np.linalg.LinAlgError):
        gate_groups(pos, cov, np.ones((1, J), bool), np.zeros((1, J, 1, 2)), np.ones((1, J, 1)),
                    np.ones((1, J, 1), bool), poses, P1, MIRROR, 0.5)  # fmt: skip
    with pytest.raises(np.linalg.LinAlgError):
        predicted_pixels(pos[0], cov[0], P1)


def test_mahalanobis2_broadcasts_like_the_closed_form():
    rng = np.random.default_rng(2)
    y, A = rng.normal(0, 5, (4, 3, 2)), rng.normal(0, 2, (4, 3, 2, 2))
    S = A @ A.transpose(0, 1, 3, 2)
    Sh = np.stack([S[..., 0, 0], S[..., 0, 1], S[..., 1, 1]], axis=-1)
    var = rng.uniform(1, 9, (3,))  # broadcast over the first axis
    ref = np.einsum("...i,...ij,...j->...", y, np.linalg.inv(S + var[:, None, None] * np.eye(2)), y)
    np.testing.assert_allclose(mahalanobis2(y, Sh, var), ref, rtol=1e-10)
    assert mahalanobis2(y[:0], Sh[:0], var).shape == (0, 3)


def _constrain_reference(limbs, r, x, P, lengths, active):
    """The stacked pseudo-measurement update with a dense H per person (fusion.bones docstring)."""
    x, P = x.copy(), P.copy()
    for t in range(x.shape[0]):
        H = np.zeros((len(limbs), 6 * J))
        y = np.zeros(len(limbs))
        for k, (a, b) in enumerate(limbs):
            d = x[t, b, :3] - x[t, a, :3]
            n = np.linalg.norm(d)
            if np.isfinite(lengths[t, k]) and active[t, a] and active[t, b] and n > 1e-6:
                H[k, 6 * a : 6 * a + 3], H[k, 6 * b : 6 * b + 3] = -d / n, d / n
                y[k] = lengths[t, k] - n
        Pb = np.zeros((6 * J, 6 * J))
        for j in range(J):
            Pb[6 * j : 6 * j + 6, 6 * j : 6 * j + 6] = P[t, j]
        PHt = Pb @ H.T
        S = H @ PHt + r * np.eye(len(limbs))
        K = PHt @ np.linalg.inv(S)
        x[t] += (K @ y).reshape(J, 6)
        for j in range(J):
            blk = slice(6 * j, 6 * j + 6)
            P[t, j] -= K[blk] @ PHt[blk].T
    return x, P


def test_bone_constraint_equals_the_dense_stacked_update():
    rng = np.random.default_rng(3)
    limbs = np.array(COCO17.limbs)
    model = BoneModel(limbs, std_m=0.02)
    T = 4
    x = np.concatenate([rng.normal(0, 0.4, (T, J, 3)), rng.normal(0, 1, (T, J, 3))], axis=-1)
    A = rng.normal(0, 0.05, (T, J, 6, 6))
    P = A @ A.transpose(0, 1, 3, 2) + 1e-4 * np.eye(6)
    lengths = rng.uniform(0.1, 0.5, (T, len(limbs)))
    lengths[rng.random(lengths.shape) < 0.2] = np.nan
    active = rng.random((T, J)) < 0.85
    active[3] = False  # a person without usable limbs: untouched
    x[2, 1] = x[2, 0]  # a zero-length limb: skipped
    ref_x, ref_P = _constrain_reference(limbs, 0.02**2, x, P, lengths, active)
    got_x, got_P = x.copy(), P.copy()
    model.constrain(got_x, got_P, lengths, active)
    np.testing.assert_allclose(got_x, ref_x, rtol=0, atol=1e-12)
    np.testing.assert_allclose(got_P, ref_P, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(got_x[3], x[3])
    # In place through a strided view too (the contract: x and P are modified).
    xs, Ps = np.zeros((T, J, 12)), np.zeros((T, J, 6, 6))
    xs[..., ::2], Ps[:] = x, P
    model.constrain(xs[..., ::2], Ps, lengths, active)
    np.testing.assert_allclose(xs[..., ::2], ref_x, rtol=0, atol=1e-12)
    model.constrain(x[:0], P[:0], lengths[:0], active[:0])  # no people


def test_measure_and_push_equal_their_numpy_definition():
    rng = np.random.default_rng(4)
    limbs = np.array(COCO17.limbs)
    model = BoneModel(limbs, window=5)
    pts, valid = rng.normal(0, 1, (3, J, 3)), rng.random((3, J)) < 0.7
    lengths, ok = model.measure(pts[:, :, :3], valid)
    np.testing.assert_allclose(lengths, np.linalg.norm(pts[:, limbs[:, 1]] - pts[:, limbs[:, 0]], axis=-1), atol=1e-15)
    np.testing.assert_array_equal(ok, valid[:, limbs[:, 0]] & valid[:, limbs[:, 1]])
    buf, count = model.empty(3)
    ref_buf, ref_count = buf.copy(), count.copy()
    for _ in range(8):
        new, sel = rng.uniform(0.2, 0.4, ok.shape), rng.random(ok.shape) < 0.6
        model.push(buf, count, new, sel)
        t, k = np.nonzero(sel)
        ref_buf[t, k, ref_count[t, k] % 5] = new[t, k]
        ref_count[t, k] += 1
    np.testing.assert_array_equal(buf, ref_buf)
    np.testing.assert_array_equal(count, ref_count)
    assert model.measure(pts[:0], valid[:0])[0].shape == (0, len(limbs))


def test_lengths_with_ties_and_nan_samples_equal_the_sorted_definition():
    rng = np.random.default_rng(5)
    model = BoneModel(np.array([[0, 1], [1, 2]]), window=9, min_samples=1)
    buf = np.round(rng.uniform(0, 1, (40, 2, 9)), 1)  # many ties
    buf[rng.random(buf.shape) < 0.1] = np.nan
    count = rng.integers(0, 15, (40, 2))
    n = np.minimum(count, 9)
    srt = np.sort(buf, axis=-1)
    rows = np.indices(n.shape)
    ref = 0.5 * (srt[(*rows, np.maximum(n - 1, 0) // 2)] + srt[(*rows, n // 2)])
    ref[n < 1] = np.nan
    np.testing.assert_array_equal(model.lengths(buf, count), ref)
