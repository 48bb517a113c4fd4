"""Compiled loops (:mod:`core.jit`) of the live tracker's per-frame bookkeeping (:mod:`fusion.live`).

The filter's arithmetic is compiled elsewhere (:mod:`fusion._ukf_kernels`, :mod:`fusion.bones`,
:mod:`fusion._gate_kernels`); what is left between those calls is a few dozen small array operations a
frame (expiry, the velocity relaxation of stale joints, the transposed observations and their noise,
restarts and divergence timers, bone samples, state transitions, the published poses), each costing
numpy's dispatch, about 1 us, more than its arithmetic at a few people and 17 joints. Each kernel here
is one loop doing one stage of :class:`fusion.live.LiveTracker` exactly as its numpy code did (the same
operations on every element, so the same results to rounding), in preallocated outputs or in place on
the track arrays (:class:`fusion.live_tracks.TrackArrays`).

Kernels call no kernel of another module (numba's cache would not see that module change); the
tracker calls those from Python between these.
"""

from __future__ import annotations

import math

import numpy as np

from core.jit import kernel

__all__ = ["advance_tracks", "assigned_views", "expired_tracks", "filter_bookkeeping", "observations", "publish_poses",
           "settle_tracks", "track_poses"]  # fmt: skip

_TENTATIVE, _CONFIRMED, _LOST = 0, 1, 2


@kernel
def expired_tracks(stamp_ns, last_ns, first_ns, state, max_missed_s, max_tentative_s, ns, out):  # pragma: no cover
    """Tracks unseen for more than ``max_missed_s``, or tentative ``max_tentative_s`` after their first
    detection, into ``out`` (T,) bool; returns how many."""
    n = 0
    for t in range(state.shape[0]):
        e = (stamp_ns - last_ns[t]) * ns > max_missed_s or (
            state[t] == _TENTATIVE and (stamp_ns - first_ns[t]) * ns > max_tentative_s
        )
        out[t] = e
        n += e
    return n


@kernel
def advance_tracks(x, active, views, stamp, stamp_ns, ns, tau_s, dt):  # pragma: no cover
    """Prepare the prediction of T tracks (J joints) to ``stamp_ns``; False (nothing changed) when none is behind.

    ``dt`` (T * J,): each joint's time step, seconds (``max(stamp_ns - stamp, 0)`` of its track). Joints
    active but seen by fewer than 2 views relax their velocity towards the track's mean active joint
    velocity, ``v_mean + exp(-dt / tau_s) (v - v_mean)`` (in place in ``x`` (T, J, 6)); ``stamp`` (T,)
    becomes ``max(stamp, stamp_ns)`` and ``views`` (T, J) 0. The prediction itself is
    :func:`fusion._ukf_kernels.linear_predict`.
    """
    T, J = active.shape
    ahead = False
    for t in range(T):
        d = (stamp_ns - stamp[t]) * ns
        ahead = ahead or d > 0.0
    if not ahead:
        return False
    for t in range(T):
        d = (stamp_ns - stamp[t]) * ns
        d = d if d > 0.0 else 0.0
        for j in range(J):
            dt[t * J + j] = d
        stale = False
        n_act = 0
        v0 = v1 = v2 = 0.0
        for j in range(J):
            if active[t, j]:
                n_act += 1
                v0 += x[t, j, 3]
                v1 += x[t, j, 4]
                v2 += x[t, j, 5]
                stale = stale or views[t, j] < 2
        if stale:
            n = max(n_act, 1)
            m0, m1, m2 = v0 / n, v1 / n, v2 / n
            f = math.exp(-d / tau_s)
            for j in range(J):
                if active[t, j] and views[t, j] < 2:
                    x[t, j, 3] = m0 + f * (x[t, j, 3] - m0)
                    x[t, j, 4] = m1 + f * (x[t, j, 4] - m1)
                    x[t, j, 5] = m2 + f * (x[t, j, 5] - m2)
        stamp[t] = max(stamp[t], stamp_ns)
        for j in range(J):
            views[t, j] = 0
    return True


@kernel
def observations(obs_px, obs_conf, poses, tri_used, has_tri, min_conf, noise, z, conf, meas, var):  # pragma: no cover
    """A frame's observations joint-major: ``obs_px`` (G, C, J, 2) and ``obs_conf`` (G, C, J) into ``z``
    (G, J, C, 2) and ``conf`` (G, J, C); ``meas`` (G, J, C) = ``conf >= min_conf`` and, with ``has_tri``,
    only the views ``tri_used`` (G, C, J) kept for a triangulated joint (``poses[..., 3] > 0``); ``var``
    (G, J, C) = ``(noise / max(conf, 1e-6))^2`` where ``meas``, else 1."""
    G, C, J = obs_conf.shape
    for g in range(G):
        for j in range(J):
            tri = not poses[g, j, 3] <= 0  # as numpy's (conf <= 0) | tri_used: a NaN conf counts as triangulated
            for c in range(C):
                z[g, j, c, 0] = obs_px[g, c, j, 0]
                z[g, j, c, 1] = obs_px[g, c, j, 1]
                w = obs_conf[g, c, j]
                conf[g, j, c] = w
                m = w >= min_conf
                if has_tri and tri:
                    m = m and tri_used[g, c, j]
                meas[g, j, c] = m
                if m:
                    q = noise / max(w, 1e-6)
                    var[g, j, c] = q * q
                else:
                    var[g, j, c] = 1.0


@kernel
def assigned_views(assign, swap_tg, inlier_tg, swap, used):  # pragma: no cover
    """Each assigned group's swaps and inliers against its track: ``swap[g] = swap_tg[assign[g], g]`` and
    ``used[g] = inlier_tg[assign[g], g]`` ((G, J, C) bool, written for assigned groups only); returns the
    number of swapped joint views of the assigned groups."""
    G, J, C = swap.shape
    n = 0
    for g in range(G):
        k = assign[g]
        if k < 0:
            continue
        for j in range(J):
            for c in range(C):
                s = swap_tg[k, g, j, c]
                swap[g, j, c] = s
                used[g, j, c] = inlier_tg[k, g, j, c]
                n += s
    return n


@kernel
def filter_bookkeeping(
    x,
    P,
    n_px,
    n3,
    n_lifted,
    cand,
    poses,
    force,
    k,
    stamp_ns,
    restart_s,
    ns,
    var0,
    t_x,
    t_P,
    t_active,
    t_seen,
    t_views,
    t_agree,
    t_state,
    t_pending,
    bone_buf,
    bone_n,
    bone_len,
    limb_a,
    limb_b,
    active,
    fresh,
    confirmed,
):  # pragma: no cover
    """After the update of tracks ``k`` (A,): symmetrise ``P``, restart joints, keep never-observed ones,
    record the divergence timers and bone samples (see :meth:`fusion.live.LiveTracker._filter`).

    Args: x (A, J, 6), P (A, J, 6, 6) updated (modified in place); n_px, n3, n_lifted (A, J) int64 pixel
    views, lifted joints used and lifted joints given; cand (A, J, C) bool candidate views; poses (A, J, 4);
    force (A,) bool; var0 (6,) the prior variances of a restarted joint; the track arrays t_* (T, ...) of
    :class:`fusion.live_tracks.TrackArrays`: ``active``, ``seen_ns``, ``views``, ``agree_ns`` written at
    rows ``k``, ``bone_buf`` and ``bone_n`` given the samples of the triangulated limbs of confirmed and
    pending tracks. Outputs: active (A, J) bool joints initialised now, fresh (A, J) bool joints updated or
    restarted, confirmed (A,) bool tracks not tentative.

    Returns: 0 without confirmed tracks; 1 with, all their bone lengths known; 2 with some NaN among them.
    """
    A, J, C = cand.shape
    L, W = limb_a.shape[0], bone_buf.shape[2]
    code = 0
    for i in range(A):
        kk = k[i]
        for j in range(J):
            for r in range(6):
                for c in range(r + 1, 6):
                    s = 0.5 * (P[i, j, r, c] + P[i, j, c, r])
                    P[i, j, r, c] = s
                    P[i, j, c, r] = s
            n_views = n_px[i, j] + n3[i, j]
            seen = n_views > 0
            tri = poses[i, j, 3] > 0
            n_cand = 0
            for c in range(C):
                n_cand += cand[i, j, c]
            accepted = seen and 2 * n_views >= n_cand
            agree = stamp_ns if accepted else t_agree[kk, j]
            diverged = (stamp_ns - agree) * ns > restart_s or (force[i] and not accepted)
            restart = tri and (not t_active[kk, j] or diverged)
            if restart:
                for e in range(3):
                    x[i, j, e] = poses[i, j, e]
                    x[i, j, 3 + e] = 0.0
                for r in range(6):
                    for c in range(6):
                        P[i, j, r, c] = var0[r] if r == c else 0.0
            act = t_active[kk, j] or restart
            if not act:  # never-observed joints stay untouched
                for r in range(6):
                    x[i, j, r] = t_x[kk, j, r]
                    for c in range(6):
                        P[i, j, r, c] = t_P[kk, j, r, c]
            active[i, j] = act
            t_active[kk, j] = act
            fresh[i, j] = seen or restart
            if seen or restart:
                t_seen[kk, j] = stamp_ns
            t_views[kk, j] = n_cand + n_lifted[i, j] if restart else n_views + n3[i, j]
            t_agree[kk, j] = stamp_ns if restart else agree
        confirmed[i] = t_state[kk] != _TENTATIVE
        if confirmed[i] or t_pending[kk]:  # bone samples (BoneModel.measure, then push)
            for limb in range(L):
                ja, jb = limb_a[limb], limb_b[limb]
                if poses[i, ja, 3] > 0 and poses[i, jb, 3] > 0:
                    dx = poses[i, jb, 0] - poses[i, ja, 0]
                    dy = poses[i, jb, 1] - poses[i, ja, 1]
                    dz = poses[i, jb, 2] - poses[i, ja, 2]
                    bone_buf[kk, limb, bone_n[kk, limb] % W] = np.sqrt(dx * dx + dy * dy + dz * dz)
                    bone_n[kk, limb] += 1
        if confirmed[i]:
            code = max(code, 1)
            for limb in range(L):
                if np.isnan(bone_len[kk, limb]):
                    code = 2
    return code


@kernel
def settle_tracks(assign, stamp_ns, hits, last_ns, state, confirm_after, poses, min_joints, new):  # pragma: no cover
    """Hits and state transitions of T tracks after a frame's assignment ``assign`` (G,) (in place), and
    ``new`` (G,) bool: unassigned groups with at least ``min_joints`` triangulated joints; returns how many."""
    T, G, J = state.shape[0], assign.shape[0], poses.shape[1]
    hit = np.zeros(T, np.bool_)
    for g in range(G):
        if assign[g] >= 0:
            hit[assign[g]] = True
    for t in range(T):
        if hit[t]:
            hits[t] += 1
            last_ns[t] = stamp_ns
            if state[t] == _LOST or (state[t] == _TENTATIVE and hits[t] >= confirm_after):
                state[t] = _CONFIRMED
        elif state[t] == _CONFIRMED:
            state[t] = _LOST
    n = 0
    for g in range(G):
        m = 0
        for j in range(J):
            m += poses[g, j, 3] > 0
        new[g] = assign[g] < 0 and m >= min_joints
        n += new[g]
    return n


@kernel(inline="always")
def _pose(x, P, publish, scale, out, std):  # pragma: no cover
    """One joint's published [x, y, z, conf] and std into ``out`` (4,) and ``std[0]`` (0 unless ``publish``)."""
    if not publish:
        for e in range(4):
            out[e] = 0.0
        std[0] = 0.0
        return
    s = math.sqrt(max(P[0, 0] + P[1, 1] + P[2, 2], 0.0) / 3.0)  # position_std
    r = s / scale  # confidence_from_std
    out[0], out[1], out[2], out[3] = x[0], x[1], x[2], 1.0 / (1.0 + r * r)
    std[0] = s


@kernel
def track_poses(x, P, publish, scale, out):  # pragma: no cover
    """Poses (T, J, 4) of all tracks: positions where ``publish`` (T, J), confidence from the spread."""
    T, J = publish.shape
    s = np.empty(1)
    for t in range(T):
        for j in range(J):
            _pose(x[t, j], P[t, j], publish[t, j], scale, out[t, j], s)


@kernel
def publish_poses(
    assign,
    updated,
    t_x,
    t_P,
    t_active,
    t_seen,
    t_stamp,
    t_ids,
    t_pending,
    stamp_ns,
    fill_s,
    ns,
    scale,
    per_view,
    poses,
    std,
    ids,
):  # pragma: no cover
    """The published pose (G, J, 4), std (G, J) and id (G,) of each assigned group (outputs zeroed before).

    A joint is published when ``updated`` (T, J) in the frame, or active and seen at most ``fill_s``
    before ``stamp_ns``; with ``per_view`` its position is moved from the track's time to ``stamp_ns`` at
    its velocity. A pending track's id is 0.
    """
    G = assign.shape[0]
    J = t_active.shape[1]
    xj = np.empty(6)
    s = np.empty(1)
    for g in range(G):
        k = assign[g]
        if k < 0:
            continue
        dt = (stamp_ns - t_stamp[k]) * ns
        for j in range(J):
            pub = updated[k, j] or (t_active[k, j] and (stamp_ns - t_seen[k, j]) * ns <= fill_s and t_seen[k, j] >= 0)
            for e in range(6):
                xj[e] = t_x[k, j, e]
            if per_view:
                for e in range(3):
                    xj[e] += dt * xj[3 + e]
            _pose(xj, t_P[k, j], pub, scale, poses[g, j], s)
            std[g, j] = s[0]
        ids[g] = 0 if t_pending[k] else t_ids[k]
