"""The live tracker's compiled bookkeeping (fusion._live_kernels) against the plain numpy it replaced."""

from __future__ import annotations

import numpy as np
import pytest

from fusion._live_kernels import (
    advance_tracks,
    assigned_views,
    expired_tracks,
    filter_bookkeeping,
    observations,
    publish_poses,
    settle_tracks,
    track_poses,
)
from fusion.bones import BoneModel
from fusion.live_tracks import confidence_from_std, position_std

NS = 1e-9
LIMBS = np.array([[0, 1], [1, 2], [2, 3], [1, 4]])


def _cov(rng, *shape):
    a = rng.normal(0, 0.1, (*shape, 6, 6))
    return a @ np.swapaxes(a, -1, -2) + 1e-3 * np.eye(6)


@pytest.mark.parametrize("G", [0, 1, 4])
@pytest.mark.parametrize("with_tri", [False, True])
def test_observations_match_numpy(G, with_tri):
    rng = np.random.default_rng(G)
    C, J = 3, 5
    px, w = rng.normal(0, 100, (G, C, J, 2)), rng.uniform(0, 1, (G, C, J))
    poses = rng.normal(0, 1, (G, J, 4))
    if G:
        poses[0, 0, 3] = np.nan
    tri_used = rng.random((G, C, J)) < 0.5
    z, conf, meas, var = np.empty((G, J, C, 2)), np.empty((G, J, C)), np.empty((G, J, C), bool), np.empty((G, J, C))
    tri = tri_used if with_tri else np.zeros((1, 1, 1), bool)
    observations(px, w, poses, tri, with_tri, 0.3, 2.0, z, conf, meas, var)
    ref_meas = w.transpose(0, 2, 1) >= 0.3
    if with_tri:
        ref_meas &= (poses[..., 3] <= 0)[..., None] | tri_used.transpose(0, 2, 1)
    np.testing.assert_array_equal(z, px.transpose(0, 2, 1, 3))
    np.testing.assert_array_equal(conf, w.transpose(0, 2, 1))
    np.testing.assert_array_equal(meas, ref_meas)
    np.testing.assert_allclose(var, np.where(ref_meas, (2.0 / np.maximum(conf, 1e-6)) ** 2, 1.0), rtol=1e-15)


def test_advance_relaxes_stale_velocities_and_steps_back_never():
    rng = np.random.default_rng(1)
    T, J = 3, 5
    x = rng.normal(0, 1, (T, J, 6))
    active = rng.random((T, J)) < 0.7
    active[2] = False  # a track without active joints
    views = rng.integers(0, 4, (T, J))
    stamp = np.array([100, 50_000_000, 200_000_000], np.int64)
    now = 150_000_000  # the last track is ahead of now: dt 0
    dt = np.maximum((now - stamp) * NS, 0.0)
    stale = active & (views < 2)
    n_act = np.maximum(active.sum(axis=1), 1)
    v_mean = (x[..., 3:] * active[..., None]).sum(axis=1)[:, None] / n_act[:, None, None]
    f = np.exp(-dt / 0.1)[:, None, None]
    ref = x.copy()
    ref[..., 3:] = np.where(stale[..., None], v_mean + f * (x[..., 3:] - v_mean), x[..., 3:])
    dts = np.empty(T * J)
    assert advance_tracks(x, active, views, stamp, now, NS, 0.1, dts)
    np.testing.assert_allclose(x, ref, rtol=1e-13, atol=1e-15)
    np.testing.assert_array_equal(dts, np.repeat(dt, J))
    np.testing.assert_array_equal(stamp, [now, now, 200_000_000])
    assert not views.any()
    # Nobody behind: nothing changes.
    x2, views2 = x.copy(), np.ones((T, J), np.int64)
    assert not advance_tracks(x2, active, views2, stamp, now, NS, 0.1, dts)
    np.testing.assert_array_equal(x2, x)
    assert views2.all()
    assert not advance_tracks(np.zeros((0, J, 6)), np.zeros((0, J), bool), np.zeros((0, J), np.int64),
                              np.zeros(0, np.int64), now, NS, 0.1, np.empty(0))  # fmt: skip


def test_expiry_states_and_new_groups_match_numpy():
    rng = np.random.default_rng(2)
    T, G, J = 6, 5, 4
    last = rng.integers(0, 2_000_000_000, T)
    first = rng.integers(0, 2_000_000_000, T)
    state = rng.integers(0, 3, T)
    out = np.empty(T, bool)
    now = 2_500_000_000
    ref = ((now - last) * NS > 1.0) | ((state == 0) & ((now - first) * NS > 0.8))
    assert expired_tracks(now, last, first, state, 1.0, 0.8, NS, out) == ref.sum()
    np.testing.assert_array_equal(out, ref)

    assign = np.array([2, -1, 0, 5, -1])
    hits = rng.integers(0, 4, T)
    poses = rng.normal(0, 1, (G, J, 4))
    hit = np.zeros(T, bool)
    hit[assign[assign >= 0]] = True
    r_hits, r_last, r_state = hits.copy(), last.copy(), state.copy()
    r_hits[hit] += 1
    r_last[hit] = now
    r_state[hit & (r_state == 2)] = 1
    r_state[hit & (r_state == 0) & (r_hits >= 3)] = 1
    r_state[~hit & (r_state == 1)] = 2
    new = np.empty(G, bool)
    n = settle_tracks(assign, now, hits, last, state, 3, poses, 2, new)
    ref_new = (assign < 0) & ((poses[..., 3] > 0).sum(axis=1) >= 2)
    assert n == ref_new.sum()
    np.testing.assert_array_equal(new, ref_new)
    np.testing.assert_array_equal(hits, r_hits)
    np.testing.assert_array_equal(last, r_last)
    np.testing.assert_array_equal(state, r_state)


def test_assigned_views_gather_each_groups_track():
    rng = np.random.default_rng(3)
    T, G, J, C = 3, 4, 5, 2
    sw, inl = rng.random((T, G, J, C)) < 0.2, rng.random((T, G, J, C)) < 0.6
    assign = np.array([1, -1, 0, 2])
    swap, used = np.zeros((G, J, C), bool), np.zeros((G, J, C), bool)
    n = assigned_views(assign, sw, inl, swap, used)
    g = np.nonzero(assign >= 0)[0]
    ref_s, ref_u = np.zeros_like(swap), np.zeros_like(used)
    ref_s[g], ref_u[g] = sw[assign[g], g], inl[assign[g], g]
    np.testing.assert_array_equal(swap, ref_s)
    np.testing.assert_array_equal(used, ref_u)
    assert n == ref_s.sum()


def test_filter_bookkeeping_matches_numpy():
    rng = np.random.default_rng(4)
    T, J, C, L = 4, 5, 3, LIMBS.shape[0]
    bones = BoneModel(LIMBS, window=6, min_samples=2)
    k = np.array([3, 0, 2])
    A = k.size
    x, P = rng.normal(0, 1, (A, J, 6)), rng.normal(0, 1, (A, J, 6, 6))  # P not symmetric yet
    n_px, n3, n_lifted = rng.integers(0, 3, (A, J)), rng.integers(0, 2, (A, J)), rng.integers(0, 2, (A, J))
    cand = rng.random((A, J, C)) < 0.6
    poses = rng.normal(0, 1, (A, J, 4))
    force = np.array([False, True, False])
    now = 1_000_000_000
    t_x, t_P = rng.normal(0, 1, (T, J, 6)), rng.normal(0, 1, (T, J, 6, 6))
    t_active = rng.random((T, J)) < 0.6
    t_seen = rng.integers(-1, now, (T, J))
    t_views = rng.integers(0, 3, (T, J))
    t_agree = np.where(rng.random((T, J)) < 0.5, now - 50_000_000, now - 500_000_000)
    t_state, t_pending = np.array([1, 0, 0, 2]), np.array([False, False, True, False])
    buf, count = bones.empty(T)
    count[:] = rng.integers(0, 9, count.shape)
    t_len = rng.uniform(0.2, 0.5, (T, L))
    t_len[3, 1] = np.nan
    var0 = np.array([9e-4] * 3 + [1.0] * 3)
    # The numpy of LiveTracker._filter.
    Pr = 0.5 * (P + np.swapaxes(P, -1, -2))
    xr = x.copy()
    n_views = n_px + n3
    seen, tri, n_cand = n_views > 0, poses[..., 3] > 0, cand.sum(axis=-1)
    accepted = seen & (2 * n_views >= n_cand)
    agree = np.where(accepted, now, t_agree[k])
    diverged = ((now - agree) * NS > 0.1) | (force[:, None] & ~accepted)
    restart = tri & (~t_active[k] | diverged)
    xr[restart] = np.concatenate([poses[..., :3], np.zeros((A, J, 3))], axis=-1)[restart]
    Pr[restart] = np.diag(var0)
    active = t_active[k] | restart
    xr[~active], Pr[~active] = t_x[k][~active], t_P[k][~active]
    confirmed = t_state[k] != 0
    ref_buf, ref_count = buf.copy(), count.copy()
    b = np.nonzero(confirmed | t_pending[k])[0]
    lengths, ok = np.zeros((T, L)), np.zeros((T, L), bool)
    lengths[k[b]], ok[k[b]] = bones.measure(poses[b, :, :3], tri[b])
    bones.push(ref_buf, ref_count, lengths, ok)
    ref_seen, ref_views, ref_agree, ref_active = t_seen.copy(), t_views.copy(), t_agree.copy(), t_active.copy()
    ref_seen[k] = np.where(seen | restart, now, t_seen[k])
    ref_views[k] = np.where(restart, n_cand + n_lifted, n_views + n3)
    ref_agree[k] = np.where(restart, now, agree)
    ref_active[k] = active

    out_active, fresh, conf = np.empty((A, J), bool), np.empty((A, J), bool), np.empty(A, bool)
    code = filter_bookkeeping(
        x, P, n_px, n3, n_lifted, cand, poses, force, k, now, 0.1, NS, var0, t_x, t_P, t_active, t_seen, t_views,
        t_agree, t_state, t_pending, buf, count, t_len, bones._a, bones._b, out_active, fresh, conf,
    )  # fmt: skip
    assert code == 2  # track 3 is confirmed with a NaN length
    np.testing.assert_array_equal(x, xr)
    np.testing.assert_array_equal(P, Pr)
    np.testing.assert_array_equal(out_active, active)
    np.testing.assert_array_equal(fresh, seen | restart)
    np.testing.assert_array_equal(conf, confirmed)
    np.testing.assert_array_equal(t_active, ref_active)
    np.testing.assert_array_equal(t_seen, ref_seen)
    np.testing.assert_array_equal(t_views, ref_views)
    np.testing.assert_array_equal(t_agree, ref_agree)
    np.testing.assert_array_equal(count, ref_count)
    np.testing.assert_array_equal(buf, ref_buf)


@pytest.mark.parametrize("per_view", [False, True])
def test_published_poses_match_numpy(per_view):
    rng = np.random.default_rng(5)
    T, G, J = 3, 4, 5
    x, P = rng.normal(0, 1, (T, J, 6)), _cov(rng, T, J)
    active = rng.random((T, J)) < 0.7
    seen = rng.integers(-1, 10**9, (T, J))
    stamp, ids, pending = rng.integers(9 * 10**8, 10**9, T), np.array([4, 7, 9]), np.array([False, True, False])
    updated = rng.random((T, J)) < 0.5
    assign = np.array([2, -1, 0, 1])
    now = 10**9
    std_all = position_std(P)
    # predictions(): every track, active joints
    out = np.empty((T, J, 4))
    track_poses(x, P, active, 0.05, out)
    ref = np.concatenate([x[..., :3], confidence_from_std(std_all)[..., None]], axis=-1)
    ref[~active] = 0.0
    np.testing.assert_array_equal(out, ref)
    # update(): per assigned group
    poses, std, out_ids = np.zeros((G, J, 4)), np.zeros((G, J)), np.zeros(G, np.int64)
    publish_poses(assign, updated, x, P, active, seen, stamp, ids, pending, now, 0.2, NS, 0.05, per_view, poses, std,
                  out_ids)  # fmt: skip
    g = np.nonzero(assign >= 0)[0]
    k = assign[g]
    pub = updated[k] | (active[k] & ((now - seen[k]) * NS <= 0.2) & (seen[k] >= 0))
    xk = x[k].copy()
    if per_view:
        xk[..., :3] += ((now - stamp[k]) * NS)[:, None, None] * xk[..., 3:]
    ref = np.zeros((G, J, 4))
    ref[g] = np.concatenate([xk[..., :3], confidence_from_std(std_all[k])[..., None]], axis=-1)
    ref[g] = np.where(pub[..., None], ref[g], 0.0)
    np.testing.assert_allclose(poses, ref, rtol=1e-14, atol=1e-15)
    ref_std = np.zeros((G, J))
    ref_std[g] = np.where(pub, std_all[k], 0.0)
    np.testing.assert_array_equal(std, ref_std)
    np.testing.assert_array_equal(out_ids, [9, 0, 4, 0])
