"""The live multi-person tracker: every joint of every person filtered by an unscented Kalman filter.

Per tracked person the state is each joint's position and velocity (metres, metres/second, world
frame), predicted at constant velocity with white-noise acceleration (``accel_noise_mps2`` times a
per-joint factor: 1.5 for wrists and ankles, 1 for elbows and knees, 0.5 for the head and trunk,
which move slower; Bar-Shalom et al. 2001, §6.2.2, with the noise level per target) and
updated every frame, in one batch for all joints of all people (:mod:`fusion.ukf`), by the unscented
Kalman filter (Julier & Uhlmann 1997; Wan & van der Merwe 2000) on the measurement the views
actually make: each view's 2D joint through that camera's projection, noise ``pixel_noise_px /
conf`` pixels per coordinate. A person seen by a single view still updates (along the two
directions that view observes). A frame's groups are associated with the tracks by
:mod:`fusion.association` (Mahalanobis gate, chi-square 99%, Hungarian method, left/right swaps);
for a triangulated joint only the views its robust triangulation kept are candidates, and only the
candidates within the gate enter the update.

Track states, as in OpenPTrack (Munaro & Menegatti 2014, *Fast RGB-D people tracking for service
robots*, Autonomous Robots 37(3); Carraro et al. 2016/2017, OpenPTrack's ``tracker``, which
validates a track after ``detections_to_validate`` = 3 detections, discards it if not validated
within ``sec_before_fake``, and deletes it after ``sec_before_old`` unseen): TENTATIVE when created,
CONFIRMED after ``confirm_after`` frames with a detection, LOST in a frame without one, deleted when
unseen for more than ``max_missed_s`` or still tentative ``max_tentative_s`` after its first
detection. A lost track seen again is CONFIRMED again and keeps its id. Every live track (lost ones
included) is predicted, so the node's 2D association can claim detections for it.

Once a track is confirmed, its bone lengths are estimated from the frames' triangulations (running
median, :mod:`fusion.bones`) and enter its joints' filters as soft length pseudo-measurements
(``bone_std_m``).

Divergence: a triangulated joint whose candidate views have mostly rejected the filter for 0.1 s
(or at once, for a track given its group by the 3D fallback) restarts from the triangulation.
Motion while unseen: a joint not measured by two views in a frame has its velocity relax towards
the person's mean joint velocity (time constant 0.1 s): an occluded hand moves on with the body, a
single-view joint does not drift along the ray, and a lost person moves on as a whole.

RGB-D cameras' lifted joints (beside or instead of a view's pixels) and views entering the filter
at their own capture times: :mod:`fusion.live_views`. People who left every view for longer than
``max_missed_s`` and come back: :mod:`fusion.reid` (new tracks within reach of a deleted one are
not published until matched to it, by body shape and optional appearance, or given their own id).

Published pose (per assigned group): each joint measured in the frame (or, with ``fill_missing_s``,
measured at most that long ago) at the filter's position, with confidence
``1 / (1 + (std / 0.05 m)^2)`` where ``std = sqrt(trace(P_pos) / 3)`` is the joint's RMS position
standard deviation per axis (metres): a joint known to 5 cm has confidence 0.5, to 1 cm 0.96, and
the confidence falls as the covariance grows while a joint is bridged. Other joints have
confidence 0 (and std 0).

The per-frame bookkeeping between the filter's compiled stages (expiry, velocity relaxation, the
observations and their noise, restarts and divergence timers, bone samples, state transitions, the
published poses) is compiled loops too (:mod:`core.jit`, :mod:`fusion._live_kernels`); the rare paths
(lifted joints, per-view times, swaps, re-identification, expiry) keep their numpy.
"""

from __future__ import annotations

import numpy as np

from core.config import FusionConfig
from core.errors import ShapeError
from core.skeleton import Skeleton
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
from fusion._ukf_kernels import linear_predict
from fusion.association import assign_groups, gate_groups, swap_triangulated
from fusion.bones import BoneModel
from fusion.live_tracks import (
    INIT_POS_STD_M,
    INIT_VEL_STD_MPS,
    LiveTrack,
    LiveUpdate,
    TrackArrays,
    TrackState,
    accel_scale,
    confidence_from_std,
    position_std,
)
from fusion.live_views import GATE_D2_3D, gate_lifted, sequential_update, update_lifted
from fusion.reid import REID_MIN_HITS, ReIdentifier, running_descriptors, track_roots, track_signatures
from fusion.ukf import SigmaWeights, update

__all__ = ["GATE_D2_3D", "LiveTracker"]

_NS = 1e-9
_VEL_RELAX_S = 0.1
_BONE_WINDOW = 120
_BONE_MIN_SAMPLES = 10
_BONE_REFRESH = 4
_RESTART_AFTER_S = 0.1
_P0_DIAG = np.array([INIT_POS_STD_M**2] * 3 + [INIT_VEL_STD_MPS**2] * 3)  # a restarted joint's variances
_SOME_BONE_UNKNOWN = 2  # filter_bookkeeping: a confirmed track's bone length is still NaN
_NO_TRI = np.zeros((1, 1, 1), bool)  # no tri_used given
_CONF_STD_M = 0.05  # fusion.live_tracks.confidence_from_std: 0.5 at 5 cm
# The states as plain ints: numpy compares an array with an IntEnum member several times slower.
_TENTATIVE, _CONFIRMED, _LOST = int(TrackState.TENTATIVE), int(TrackState.CONFIRMED), int(TrackState.LOST)


class LiveTracker:
    """Causal multi-person tracker with a batched UKF per joint (see the module docstring).

    Args:
        projections: (C, 3, 4) camera matrices mapping world metres to undistorted pixels, in the
            order of the views of ``obs_px``.
        skeleton: joints (J), limbs (bone lengths) and left/right pairs.
        cfg: the ``[fusion]`` settings (``confirm_after``, ``max_missed_s``, ``max_tentative_s``,
            ``accel_noise_mps2``, ``pixel_noise_px``, ``bone_std_m``, ``min_joints``, ``gate_m``,
            ``fill_missing_s``).
        min_joint_conf: 2D joints below this confidence are not measurements.

    Raises:
        ShapeError: ``projections`` is not (C, 3, 4).
    """

    def __init__(
        self, projections: np.ndarray, skeleton: Skeleton, cfg: FusionConfig | None = None, min_joint_conf: float = 0.3
    ):
        projections = np.asarray(projections, dtype=np.float64)
        if projections.ndim != 3 or projections.shape[1:] != (3, 4):
            raise ShapeError(f"projections must be (C, 3, 4); got {projections.shape}")
        self.cfg = cfg or FusionConfig()
        self.projections = projections
        self.n_joints = skeleton.n_joints
        self.min_joint_conf = float(min_joint_conf)
        self.bones = BoneModel(np.array(skeleton.limbs, dtype=np.int64).reshape(-1, 2), _BONE_WINDOW,
                               _BONE_MIN_SAMPLES, self.cfg.bone_std_m)  # fmt: skip
        self._mirror = np.arange(self.n_joints)
        for left, right in skeleton.left_right:
            self._mirror[left], self._mirror[right] = right, left
        self._pairs = np.array(skeleton.left_right, dtype=np.int64).reshape(-1, 2)
        self._w = SigmaWeights(6)
        # Per-joint acceleration noise (J,): hands and feet move faster than the trunk.
        self._accel = self.cfg.accel_noise_mps2 * np.array([accel_scale(n) for n in skeleton.joints])
        self._var = np.tile(self._accel**2, 0)
        self._t = TrackArrays.empty(0, self.n_joints, self.bones)
        self._next_id = 1
        self._updates = 0
        self._advanced_ns: int | None = None
        self.n_swapped = 0
        c = self.cfg
        self.reid = ReIdentifier(c.reid_max_s, c.reid_speed_mps, c.gate_m, c.reid_min_cosine)
        self._desc: dict[int, np.ndarray] = {}  # track id -> unit running appearance descriptor
        self.n_reidentified = 0

    def continue_ids_above(self, track_id: int) -> None:
        """Give new tracks ids above ``track_id`` (a take continued after a restart reuses no id)."""
        self._next_id = max(self._next_id, int(track_id) + 1)

    @property
    def tracks(self) -> tuple[LiveTrack, ...]:
        """Snapshots of the live (not deleted) tracks."""
        t = self._t
        std = position_std(t.P)
        lengths = self.bones.lengths(t.bone_buf, t.bone_n)  # fresh, not the cached ones
        return tuple(
            LiveTrack(
                int(t.ids[k]),
                TrackState(int(t.state[k])),
                self._pose(t.x[k], std[k], t.active[k]),
                np.where(t.active[k], std[k], 0.0),
                t.x[k, :, 3:].copy(),
                lengths[k],
                int(t.stamp_ns[k]),
                int(t.last_ns[k]),
                int(t.hits[k]),
            )  # fmt: skip
            for k in range(len(t.ids))
        )

    @staticmethod
    def _pose(x: np.ndarray, std: np.ndarray, publish: np.ndarray) -> np.ndarray:
        """(J, 4) or (T, J, 4) poses: positions where ``publish``, confidence from ``std``, else 0."""
        out = np.concatenate([x[..., :3], confidence_from_std(std)[..., None]], axis=-1)
        out[~publish] = 0.0
        return out

    # -- prediction ----------------------------------------------------------------------------
    def _advance(self, stamp_ns: int) -> None:
        """Delete expired tracks, then predict the rest to ``stamp_ns`` (velocity relaxation included)."""
        if stamp_ns == self._advanced_ns:  # already there (predictions then update of one frame)
            return
        self._advanced_ns = stamp_ns
        t = self._t
        expired = np.empty(len(t.ids), bool)
        c = self.cfg
        if expired_tracks(stamp_ns, t.last_ns, t.first_ns, t.state, c.max_missed_s, c.max_tentative_s, _NS, expired):
            self._keep_signatures(np.nonzero(expired & (t.state != _TENTATIVE) & ~t.pending)[0])
            for i in t.ids[expired].tolist():
                self._desc.pop(i, None)
            t = self._t = t.take(~expired)
        self.reid.forget_older(stamp_ns)
        # Joints not observed by two views in the last frame (their velocity is unobservable, along
        # the ray at least) relax towards the person's mean joint velocity (compiled with the time steps).
        T, J = t.x.shape[:2]
        dts = np.empty(T * J)
        if not advance_tracks(t.x, t.active, t.views, t.stamp_ns, stamp_ns, _NS, _VEL_RELAX_S, dts):
            return
        x, P = np.empty((T, J, 6)), np.empty((T, J, 6, 6))
        linear_predict(t.x.reshape(-1, 6), t.P.reshape(-1, 6, 6), dts, self._accel_var(T), x.reshape(-1, 6),
                       P.reshape(-1, 6, 6))  # fmt: skip
        t.x, t.P = x, P

    def _accel_var(self, n_tracks: int) -> np.ndarray:
        """(T * J,) acceleration variance of every joint of ``n_tracks`` tracks (cached per T)."""
        if self._var.shape[0] != n_tracks * self.n_joints:
            self._var = np.tile(self._accel**2, n_tracks)
        return self._var

    def predictions(self, stamp_ns: int) -> tuple[np.ndarray, np.ndarray]:
        """Live tracks' ids and poses predicted to ``stamp_ns`` (expired tracks are deleted first).

        Args:
            stamp_ns: frame time, nanoseconds (non-decreasing over calls).

        Returns:
            ids: (T,) int64 track ids (tentative, confirmed and lost tracks).
            poses: (T, J, 4) predicted poses [x, y, z, conf], metres; conf 0 for joints never
                observed.
        """
        self._advance(stamp_ns)
        t = self._t
        poses = np.empty((*t.active.shape, 4))
        track_poses(t.x, t.P, t.active, _CONF_STD_M, poses)
        return t.ids.copy(), poses

    # -- update --------------------------------------------------------------------------------
    def update(
        self,
        poses: np.ndarray,
        obs_px: np.ndarray,
        obs_conf: np.ndarray,
        stamp_ns: int,
        hint_ids: np.ndarray | None = None,
        tri_used: np.ndarray | None = None,
        obs_3d: np.ndarray | None = None,
        obs_3d_cov: np.ndarray | None = None,
        view_stamps_ns: np.ndarray | None = None,
        descriptors: np.ndarray | None = None,
    ) -> LiveUpdate:
        """Associate the groups of one frame with the tracks, filter, and manage the tracks.

        Args:
            poses: (G, J, 4) triangulated poses [x, y, z, conf], metres; conf 0 = missing (a group
                seen by one view has none). They start tracks, restart diverged joints, give the
                bone lengths and the 3D pre-gate.
            obs_px: (G, C, J, 2) each group's 2D joints per view, undistorted pixels.
            obs_conf: (G, C, J) their confidences; 0 where the view is not in the group.
            stamp_ns: frame time, nanoseconds (non-decreasing).
            hint_ids: (G,) optional track id each group was built for (0: none).
            tri_used: (G, C, J) optional bool, views the robust triangulation kept for each joint;
                for a triangulated joint (``poses[..., 3] > 0``) only these may enter the filter
                (a view inconsistent with the others is an outlier even when the prediction,
                lagging or uncertain, would admit it).
            obs_3d: (G, C, J, 4) optional lifted joints of RGB-D views [x, y, z, conf], world
                metres; conf 0 where the view gives none. Used where the view's 2D joint is a
                measurement too (confidence, ``tri_used``).
            obs_3d_cov: (G, C, J, 3, 3) their covariances, metres^2 (needed with ``obs_3d``).
            view_stamps_ns: (C,) optional capture time of each view, nanoseconds on the clock of
                ``stamp_ns`` (clock offsets already corrected). Given, the frame is gated at their
                minimum (call :meth:`predictions` with it) and each view's observations enter the
                filter at its own time, in time order; None: every view at ``stamp_ns``.
            descriptors: (G, D) optional appearance descriptor of each group (any vectors compared by
                cosine similarity, e.g. colour histograms; a row of zeros: none). A track keeps their
                running mean for re-identification (:mod:`fusion.reid`).

        Returns:
            :class:`LiveUpdate`.

        Raises:
            ShapeError: inconsistent shapes.
        """
        G, J, C = poses.shape[0], self.n_joints, self.projections.shape[0]
        if poses.shape != (G, J, 4) or obs_px.shape != (G, C, J, 2) or obs_conf.shape != (G, C, J):
            raise ShapeError(
                f"update needs poses (G, {J}, 4), obs_px (G, {C}, {J}, 2), obs_conf (G, {C}, {J}); got "
                f"{poses.shape}, {obs_px.shape}, {obs_conf.shape}"
            )
        hints = np.zeros(G, np.int64) if hint_ids is None else np.asarray(hint_ids, dtype=np.int64)
        if hints.shape != (G,):
            raise ShapeError(f"hint_ids must be ({G},); got {hints.shape}")
        view_ns = None
        if view_stamps_ns is not None:
            view_ns = np.asarray(view_stamps_ns, dtype=np.int64)
            if view_ns.shape != (C,):
                raise ShapeError(f"view_stamps_ns must be ({C},); got {view_ns.shape}")
        self._advance(stamp_ns if view_ns is None else int(view_ns.min()))
        if tri_used is not None and tri_used.shape != obs_conf.shape:
            raise ShapeError(f"tri_used must be (G, {C}, {J}); got {tri_used.shape}")
        f64 = np.float64
        poses = np.ascontiguousarray(poses, f64)
        # Joint-major observations (G, J, C): pixels, confidences, measurements and their noise.
        z, conf, meas, var = np.empty((G, J, C, 2)), np.empty((G, J, C)), np.empty((G, J, C), bool), np.empty((G, J, C))
        tri = _NO_TRI if tri_used is None else np.ascontiguousarray(tri_used, bool)
        px, w = np.ascontiguousarray(obs_px, f64), np.ascontiguousarray(obs_conf, f64)
        observations(px, w, poses, tri, tri_used is not None, self.min_joint_conf, self.cfg.pixel_noise_px, z, conf,
                     meas, var)  # fmt: skip
        z3 = has3 = cov3 = None
        if obs_3d is not None:
            if obs_3d.shape != (G, C, J, 4) or obs_3d_cov is None or obs_3d_cov.shape != (G, C, J, 3, 3):
                raise ShapeError(
                    f"obs_3d must be (G, {C}, {J}, 4) with obs_3d_cov (G, {C}, {J}, 3, 3); got {obs_3d.shape}, "
                    f"{None if obs_3d_cov is None else obs_3d_cov.shape}"
                )
            z3 = obs_3d[..., :3].transpose(0, 2, 1, 3).astype(np.float64)  # (G, J, C, 3)
            cov3 = obs_3d_cov.transpose(0, 2, 1, 3, 4).astype(np.float64)  # (G, J, C, 3, 3)
            has3 = meas & (obs_3d[..., 3] > 0).transpose(0, 2, 1)
        T = len(self._t.ids)
        assign = np.full(G, -1, np.int64)  # track index per group
        fallback = np.zeros(G, bool)
        swap, used = np.zeros((G, J, C), bool), np.zeros((G, J, C), bool)  # of the assigned groups
        n_swapped = 0
        if T and G:
            t = self._t
            gating = gate_groups(t.x[..., :3], t.P[..., :3, :3], t.active, z, var, meas, poses, self.projections,
                                 self._mirror, self.cfg.gate_m)  # fmt: skip
            assign, fallback = assign_groups(gating, t.ids, hints, self.cfg.gate_m)
            n_swapped = assigned_views(assign, gating.swap, gating.inlier, swap, used) // 2
        self.n_swapped += n_swapped
        z_eff, var_eff, conf_eff, meas_eff = z, var, conf, meas
        if n_swapped:
            m = self._mirror
            z_eff = np.where(swap[..., None], z[:, m], z)
            var_eff, conf_eff, meas_eff = (np.where(swap, a[:, m], a) for a in (var, conf, meas))
            poses = np.ascontiguousarray(swap_triangulated(poses, swap, meas, self._pairs), f64)
            if has3 is not None:
                z3 = np.where(swap[..., None], z3[:, m], z3)
                cov3 = np.where(swap[..., None, None], cov3[:, m], cov3)
                has3 = np.where(swap, has3[:, m], has3)
        updated = np.zeros((len(self._t.ids), J), bool)
        g_idx = np.nonzero(assign >= 0)[0]
        if g_idx.size:
            k_idx = assign[g_idx]
            g = slice(None) if g_idx.size == G else g_idx  # every group assigned (as usual): no copies
            lifted = None if has3 is None else (z3[g], cov3[g], has3[g])
            updated[k_idx], used3 = self._filter(
                k_idx, z_eff[g], used[g], meas_eff[g], var_eff[g], poses[g], fallback[g], stamp_ns, lifted, view_ns
            )  # fmt: skip
            if lifted is not None:
                used[g] |= used3
        t = self._t
        new = np.empty(G, bool)
        if settle_tracks(assign, stamp_ns, t.hits, t.last_ns, t.state, self.cfg.confirm_after, poses,
                         self.cfg.min_joints, new):  # fmt: skip
            new = np.nonzero(new)[0]
            self._start(poses[new], stamp_ns)
            assign[new] = np.arange(len(self._t.ids) - new.size, len(self._t.ids))
            # A track starts at its group's triangulation: the views that triangulation kept are its used ones.
            used[new] = meas_eff[new] & (poses[new, :, 3] > 0)[..., None]
            updated = np.concatenate([updated, poses[new, :, 3] > 0])
        if descriptors is not None and G:
            g = np.nonzero(assign >= 0)[0]
            running_descriptors(self._desc, self._t.ids[assign[g]], np.asarray(descriptors, float).reshape(G, -1)[g])
        if self._t.pending.any():
            self._reidentify(stamp_ns)
        return self._output(assign, updated, z_eff, conf_eff, used, stamp_ns, n_swapped, view_ns is not None)

    def _filter(
        self, k: np.ndarray, z: np.ndarray, mask: np.ndarray, cand: np.ndarray, var: np.ndarray, poses: np.ndarray,
        force: np.ndarray, stamp_ns: int, lifted: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
        view_ns: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
        """UKF update of tracks ``k`` (A,) with their groups, then the lifted 3D joints' linear updates.

        Args: z (A, J, C, 2) pixels, mask (A, J, C) inliers, cand (A, J, C) candidate observations (for
        a triangulated joint: the views its triangulation kept), var (A, J, C), poses (A, J, 4), force (A,)
        bool: restart at once the joints the candidates mostly reject (assigned by the 3D fallback);
        lifted: optional (z3 (A, J, C, 3) metres, cov3 (A, J, C, 3, 3), has3 (A, J, C) bool);
        view_ns: optional (C,) capture times, nanoseconds: the views enter one after the other.

        Returns: (A, J) bool joints updated or (re)started, and (A, J, C) bool lifted joints used.
        """
        t, (A, J, C) = self._t, mask.shape
        in_order = A == len(t.ids) and k.tolist() == list(range(A))  # all tracks, in order: no gathers
        x, P = (t.x, t.P) if in_order else (t.x[k], t.P[k])
        used3 = np.zeros((A, J, C), bool)
        if lifted is not None:
            z3, cov3, has3 = lifted  # those within their 3D gate replace their view's pixels
            used3 = gate_lifted(x, P, z3, cov3, has3) & t.active[k][..., None]
            mask = mask & ~used3
        if view_ns is None:
            res = update(x.reshape(-1, 6), P.reshape(-1, 6, 6), z.reshape(-1, C, 2), mask.reshape(-1, C),
                         var.reshape(-1, C), self.projections, self._w)  # fmt: skip
            x, P = res.x.reshape(A, J, 6), res.P.reshape(A, J, 6, 6)
            n_px = res.n_views.reshape(A, J)
            if lifted is not None:
                x, P = update_lifted(x, P, z3, cov3, used3)
        else:
            lift = None if lifted is None else (z3, cov3, used3)
            x, P, n_px, t.stamp_ns[k] = sequential_update(
                t.stamp_ns[k], x, P, z, mask, var, view_ns, lift, self.projections, self._w, np.tile(self._accel, A)
            )
        f64 = np.float64
        x, P = np.ascontiguousarray(x, f64), np.ascontiguousarray(P, f64)  # fresh: modified in place
        if lifted is None:
            n3 = n_lifted = np.zeros((A, J), np.int64)
        else:
            n3, n_lifted = used3.sum(axis=-1), lifted[2].sum(axis=-1)
        # P symmetrised; a joint never initialised restarts from its triangulation, and so does one whose
        # filter the views that agree with each other (the triangulation's) have mostly rejected for a
        # while; never-observed joints stay untouched; the divergence timers, and the bone samples of
        # confirmed tracks and pending ones (for re-identification): one compiled loop.
        active, fresh, confirmed = np.empty((A, J), bool), np.empty((A, J), bool), np.empty(A, bool)
        code = filter_bookkeeping(
            x, P, np.ascontiguousarray(n_px, np.int64), np.ascontiguousarray(n3, np.int64),
            np.ascontiguousarray(n_lifted, np.int64), np.ascontiguousarray(cand, bool), poses,
            np.ascontiguousarray(force, bool), np.ascontiguousarray(k, np.int64), stamp_ns, _RESTART_AFTER_S, _NS,
            _P0_DIAG, t.x, t.P, t.active, t.seen_ns, t.views, t.agree_ns, t.state, t.pending, t.bone_buf, t.bone_n,
            t.bone_len, self.bones._a, self.bones._b, active, fresh, confirmed,
        )  # fmt: skip
        if code:  # the bone-length constraint on confirmed tracks
            # The medians move by one sample a frame: refreshed every few frames, or while some are missing.
            self._updates += 1
            every = confirmed.all()
            kc = k if every else k[confirmed]
            if self._updates % _BONE_REFRESH == 0 or code == _SOME_BONE_UNKNOWN:
                if in_order and every:
                    t.bone_len = self.bones.lengths(t.bone_buf, t.bone_n)
                else:
                    t.bone_len[kc] = self.bones.lengths(t.bone_buf[kc], t.bone_n[kc])
            lengths = t.bone_len if in_order and every else t.bone_len[kc]
            if every:  # constrained in place
                self.bones.constrain(x, P, lengths, active)
            else:
                xc, Pc = x[confirmed], P[confirmed]
                self.bones.constrain(xc, Pc, lengths, active[confirmed])
                x[confirmed], P[confirmed] = xc, Pc
        if in_order:
            t.x, t.P = x, P
        else:
            t.x[k], t.P[k] = x, P
        return fresh, used3

    def _start(self, poses: np.ndarray, stamp_ns: int) -> None:
        """Start tentative tracks at the triangulated poses (N, J, 4), at rest."""
        n = poses.shape[0]
        new = TrackArrays.empty(n, self.n_joints, self.bones)
        new.ids = np.arange(self._next_id, self._next_id + n, dtype=np.int64)
        self._next_id += n
        new.hits[:] = 1
        new.first_ns[:] = new.last_ns[:] = new.stamp_ns[:] = stamp_ns
        new.active = poses[..., 3] > 0
        new.x[..., :3] = np.where(new.active[..., None], poses[..., :3], 0.0)
        new.seen_ns = np.where(new.active, stamp_ns, -1)
        new.views = np.where(new.active, 2, 0)
        new.agree_ns = new.seen_ns.copy()
        new.state[:] = TrackState.CONFIRMED if self.cfg.confirm_after <= 1 else TrackState.TENTATIVE
        if len(self.reid):  # someone who left might be back: not published until re-identified or not
            new.pending = self.reid.reachable(track_roots(new.x, new.active), stamp_ns).any(axis=1)
        self._t = self._t.extend(new)

    # -- re-identification -------------------------------------------------------------------------
    def _keep_signatures(self, idx: np.ndarray) -> None:
        """Hand the signatures of confirmed tracks ``idx``, about to be deleted, to the re-identifier."""
        if idx.size and self.cfg.reid_max_s > 0:
            self.reid.keep(track_signatures(self._t, idx, self.bones.window, self._desc))

    def _reidentify(self, stamp_ns: int) -> None:
        """Pending tracks with enough detections are matched to kept signatures: a match takes the old
        id (and appearance), the others keep their own id; either way they are published from now on."""
        t = self._t
        idx = np.nonzero(t.pending & (t.hits >= max(REID_MIN_HITS, self.cfg.confirm_after)))[0]
        if not idx.size:
            return
        old = self.reid.match(track_signatures(t, idx, self.bones.window, self._desc), stamp_ns)
        for k, i in zip(idx.tolist(), old.tolist(), strict=True):
            if i:
                desc = self._desc.pop(int(t.ids[k]), None)
                if desc is not None:
                    self._desc[i] = desc
                t.ids[k] = i
                self.n_reidentified += 1
        t.pending[idx] = False

    def _output(
        self, assign: np.ndarray, updated: np.ndarray, z: np.ndarray, conf: np.ndarray, used: np.ndarray,
        stamp_ns: int, n_swapped: int, per_view: bool = False,
    ) -> LiveUpdate:  # fmt: skip
        G, J = assign.shape[0], self.n_joints
        t = self._t
        poses, std = np.zeros((G, J, 4)), np.zeros((G, J))
        ids = np.zeros(G, np.int64)
        # Per assigned group: joints updated now or seen at most fill_missing_s ago, at the frame time (with
        # per-view times the filter is at its last view's), a pending track's id 0 (not published yet).
        publish_poses(assign, updated, t.x, t.P, t.active, t.seen_ns, t.stamp_ns, t.ids, t.pending, stamp_ns,
                      self.cfg.fill_missing_s, _NS, _CONF_STD_M, per_view, poses, std, ids)  # fmt: skip
        return LiveUpdate(
            ids, poses, std, z.transpose(0, 2, 1, 3), conf.transpose(0, 2, 1), used.transpose(0, 2, 1), n_swapped
        )
