"""The live tracker's gate and UKF on many views: unscented pixel predictions, the 3D pre-gate, buffers."""

from __future__ import annotations

import numpy as np
from synth import person

from core.skeleton import COCO17
from fusion.association import GATE_D2, gate_groups, mahalanobis2, predicted_pixels
from fusion.ukf import SigmaWeights, project_points, update

J = COCO17.n_joints
MIRROR = np.arange(J)
for _l, _r in COCO17.left_right:
    MIRROR[_l], MIRROR[_r] = _r, _l


def _ring(n_cams: int, radius: float = 5.0) -> np.ndarray:
    """(C, 3, 4) projections of cameras on a ring looking at (0, 0, 1), 1000 px focal."""
    K = np.array([[1000.0, 0, 960], [0, 1000.0, 540], [0, 0, 1]])
    Ps = []
    for a in np.linspace(0, 2 * np.pi, n_cams, endpoint=False):
        c = np.array([radius * np.cos(a), radius * np.sin(a), 1.5])
        z = np.array([0.0, 0.0, 1.0]) - c
        z /= np.linalg.norm(z)
        x = np.cross(z, [0, 0, 1.0])
        x /= np.linalg.norm(x)
        R = np.stack([x, np.cross(z, x), z])
        Ps.append(K @ np.hstack([R, (-R @ c)[:, None]]))
    return np.array(Ps)


def test_predicted_pixels_are_the_unscented_transform_per_view():
    rng = np.random.default_rng(0)
    P = _ring(5)
    pos = rng.normal(0, 0.5, (4, 3)) + [0, 0, 1]
    pos[3] = [5.5, 0.3, 1.5]  # beside camera 0, behind it: not in front
    A = rng.normal(0, 0.05, (4, 3, 3))
    cov = A @ A.transpose(0, 2, 1) + 1e-4 * np.eye(3)
    zp, Sh, front = predicted_pixels(pos, cov, P)
    w = SigmaWeights(3)
    for b in range(3):
        h = project_points(w.points(pos[b : b + 1], cov[b : b + 1])[0], P)  # (7, C, 2)
        mean = np.einsum("s,sck->ck", w.Wm, h)
        dev = h - mean
        S = np.einsum("s,sci,scj->cij", w.Wc, dev, dev)
        np.testing.assert_allclose(zp[b], mean, atol=1e-9)
        np.testing.assert_allclose(Sh[b], np.stack([S[:, 0, 0], S[:, 0, 1], S[:, 1, 1]], axis=-1), atol=1e-9)
        assert front[b].all()
    assert not front[3, 0] and front[3, 2:].all()


def _scene(P, rng, people):
    """Tracks at ``people`` (T, J, 3) with 3 cm covariances, and one group per person seen by every view."""
    C = P.shape[0]
    pos = np.array(people)
    cov = np.tile(np.eye(3) * 0.03**2, (len(people), J, 1, 1))
    z = project_points(pos, P) + rng.normal(0, 2.0, (len(people), J, C, 2))  # (G, J, C, 2)
    var = np.full((len(people), J, C), 9.0)
    meas = np.ones((len(people), J, C), bool)
    poses = np.concatenate([pos + rng.normal(0, 0.01, pos.shape), np.ones((len(people), J, 1))], axis=-1)
    return pos, cov, z, var, meas, poses


def test_gate_skips_only_pairs_the_3d_gate_rejects():
    rng = np.random.default_rng(1)
    P = _ring(8)
    pos, cov, z, var, meas, poses = _scene(P, rng, [person((0.0, 0.0)), person((2.0, 0.5)), person((0.1, 0.0))])
    z[0, [COCO17.index("left_wrist"), COCO17.index("right_wrist")]] = z[0, [COCO17.index("right_wrist"),
                                                                              COCO17.index("left_wrist")]]  # fmt: skip
    active = np.ones((3, J), bool)
    full = gate_groups(pos, cov, active, z, var, meas, poses, P, MIRROR, 0.5)
    # Track 0 against group 1 (2 m away) fails the 3D gate: not compared in the image.
    assert not full.ok[0, 1] and full.dist_m[0, 1] > 1.5 and full.cost[0, 1] == GATE_D2
    assert not full.inlier[0, 1].any() and not full.swap[0, 1].any()
    assert full.ok[0, 0] and full.ok[1, 1]
    # Track 0 against group 2 (10 cm away) passes the 3D gate and is compared: many outliers at 10 cm.
    assert full.dist_m[0, 2] < 0.2 and full.cost[0, 2] > full.cost[0, 0]
    # Each evaluated pair's verdict is the one of that pair alone (the pair bookkeeping is right).
    for t in range(3):
        for g in range(3):
            if full.dist_m[t, g] > 1.0:
                continue
            one = gate_groups(pos[t : t + 1], cov[t : t + 1], active[t : t + 1], z[g : g + 1], var[g : g + 1],
                              meas[g : g + 1], poses[g : g + 1], P, MIRROR, 0.5)  # fmt: skip
            assert one.ok[0, 0] == full.ok[t, g]
            np.testing.assert_allclose(one.cost[0, 0], full.cost[t, g], rtol=1e-12)
            np.testing.assert_array_equal(one.inlier[0, 0], full.inlier[t, g])
            np.testing.assert_array_equal(one.swap[0, 0], full.swap[t, g])
    # The swapped wrists of group 0 are flagged in every view.
    assert full.swap[0, 0, [COCO17.index("left_wrist"), COCO17.index("right_wrist")]].all()
    assert full.swap[0, 0].sum() == 2 * P.shape[0]


def test_update_results_survive_later_calls_and_views_can_be_missing():
    """The update's work buffers are reused: its results must not be, and an unseen view must not count."""
    rng = np.random.default_rng(2)
    P = _ring(16)  # 32 pixel coordinates: more than the 7 distinct sigma points (the Woodbury form)
    B = 5
    x = np.c_[rng.normal(0, 0.3, (B, 3)) + [0, 0, 1], np.zeros((B, 3))]
    Pc = np.tile(np.diag([0.03**2] * 3 + [1.0] * 3), (B, 1, 1))
    z = project_points(x[:, :3] + 0.01, P)
    mask = np.ones((B, 16), bool)
    mask[1, 3:] = False
    z_bad = z.copy()
    z_bad[1, 3:] += 500.0  # garbage in the unseen views must not matter
    var = np.full((B, 16), 4.0)
    first = update(x, Pc, z_bad, mask, var, P)
    kept = (first.x.copy(), first.P.copy(), first.mahalanobis2.copy())
    update(x + 0.2, Pc * 2, z + 50, ~mask, var * 3, P)
    np.testing.assert_array_equal(first.x, kept[0])
    np.testing.assert_array_equal(first.P, kept[1])
    np.testing.assert_array_equal(first.mahalanobis2, kept[2])
    sub = update(x[1:2], Pc[1:2], z[1:2, :3], mask[1:2, :3], var[1:2, :3], P[:3])  # the seen views alone
    np.testing.assert_allclose(first.x[1], sub.x[0], atol=1e-10)
    np.testing.assert_allclose(first.P[1], sub.P[0], atol=1e-12)
    assert first.n_views.tolist() == [16, 3, 16, 16, 16]
    assert np.linalg.norm(first.x[:, :3] - (x[:, :3] + 0.01), axis=1).max() < 0.005


def _reference_gate(pos, cov, active, z, var, meas, poses, P, gate_m):
    """The gate's definition, one (track, group) pair and one view at a time (module docstring of
    fusion.association): swaps, inliers, truncated mean cost and compatibility of every pair."""
    T, G, C = pos.shape[0], z.shape[0], P.shape[0]
    zp, Sh, front = predicted_pixels(pos.reshape(-1, 3), cov.reshape(-1, 3, 3), P)
    zp, Sh, front = zp.reshape(T, J, C, 2), Sh.reshape(T, J, C, 3), front.reshape(T, J, C)
    swap, inlier = np.zeros((T, G, J, C), bool), np.zeros((T, G, J, C), bool)
    cost, ok = np.full((T, G), GATE_D2), np.zeros((T, G), bool)
    pairs = [(left, right) for left, right in COCO17.left_right]
    for t in range(T):
        var_m2 = np.trace(cov[t], axis1=-2, axis2=-1)[active[t]].mean() / 3.0
        for g in range(G):
            common = active[t] & (poses[g, :, 3] > 0)
            dist = np.median(np.linalg.norm(pos[t] - poses[g, :, :3], axis=-1)[common])
            if dist > gate_m + 3.0 * np.sqrt(var_m2):
                continue
            usable = meas[g] & active[t][:, None] & front[t]
            d2 = mahalanobis2(z[g] - zp[t], Sh[t], var[g])  # (J, C)
            for left, right in pairs:
                for c in range(C):
                    d2m_l = mahalanobis2(z[g, right, c] - zp[t, left, c], Sh[t, left, c], var[g, right, c])
                    d2m_r = mahalanobis2(z[g, left, c] - zp[t, right, c], Sh[t, right, c], var[g, left, c])
                    both = usable[left, c] and usable[right, c]
                    if both and d2m_l + d2m_r < 0.25 * (d2[left, c] + d2[right, c]):
                        swap[t, g, [left, right], c] = True
                        d2[left, c], d2[right, c] = d2m_l, d2m_r
            inl = usable & (d2 <= GATE_D2)
            inlier[t, g] = inl
            n_common, n_in = usable.sum(), inl.sum()
            cost[t, g] = (d2[inl].sum() + GATE_D2 * (n_common - n_in)) / max(n_common, 1)
            ok[t, g] = 2 * n_in >= n_common and n_in >= 3
    return swap, inlier, cost, ok


def test_gate_equals_its_definition_one_observation_at_a_time():
    """The batched gate (views first, work arrays, left/right partners in the same pass) against the
    plain per-pair, per-view definition, on the memory layout the tracker passes (views before joints)."""
    rng = np.random.default_rng(5)
    P = _ring(6)
    people = [person((0.0, 0.0)), person((0.6, 0.2)), person((3.0, -1.0)), person((0.05, 0.05))]
    pos, cov, z, var, meas, poses = _scene(P, rng, people)
    T = len(people)
    A = rng.normal(0, 0.02, (T, J, 3, 3))
    cov = cov + A @ A.transpose(0, 1, 3, 2)  # correlated, different per joint
    active = rng.random((T, J)) < 0.9
    meas &= rng.random(meas.shape) < 0.85
    var = rng.uniform(4.0, 40.0, var.shape)
    lw, rw = COCO17.index("left_wrist"), COCO17.index("right_wrist")
    z[1, [lw, rw], :3] = z[1, [rw, lw], :3]  # swapped wrists in three views
    active[1, [lw, rw]], meas[1, [lw, rw], :3] = True, True
    poses[2, :4, 3] = 0.0
    z_k = np.ascontiguousarray(z.transpose(0, 2, 1, 3)).transpose(0, 2, 1, 3)  # (G, J, C, 2), views first in memory
    var_k = np.ascontiguousarray(var.transpose(0, 2, 1)).transpose(0, 2, 1)
    got = gate_groups(pos, cov, active, z_k, var_k, meas, poses, P, MIRROR, 0.5)
    swap, inlier, cost, ok = _reference_gate(pos, cov, active, z, var, meas, poses, P, 0.5)
    np.testing.assert_array_equal(got.swap, swap)
    np.testing.assert_array_equal(got.inlier, inlier)
    np.testing.assert_array_equal(got.ok, ok)
    np.testing.assert_allclose(got.cost, cost, rtol=1e-12)
    assert (
        swap[1, 1, [lw, rw], :3].all() and ok.sum() >= 3 and (cost == GATE_D2).sum() >= 4
    )  # the scene covers all cases
