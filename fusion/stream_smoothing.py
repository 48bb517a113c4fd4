"""Streaming UKF + fixed-lag RTS smoothing of every track's joints, in bounded memory.

:func:`fusion.smoothing.smooth_sequence` (the reference) smooths a whole take at its end, so its
caller keeps every frame until then. :class:`StreamSmoother` takes the frames one at a time and
hands each one back, smoothed, a bounded number of frames later. It holds only the frames it has
not yet handed back and, for each track and joint, the filter's states over them.

Design: a fixed-lag smoother (Särkkä 2013, *Bayesian Filtering and Smoothing*, fixed-lag
Gaussian smoothing). It was chosen over overlapping chunks of an RTS smoother because it leaves
the forward pass exactly the reference's: each joint's unscented Kalman filter (Wan & van der
Merwe 2000) runs causally over the whole take, with the same start, gating, updates and
``max_gap_s`` restarts as :func:`fusion.smoothing.smooth_joint_track`, one frame at a time. No
chunk boundary restarts a filter or cuts a gap in two, so only the backward pass is approximated.
A frame is handed back once each of its joints has ``lag_frames`` filter updates (observations)
after it. It is smoothed by the unscented RTS backward pass (Särkkä 2008) over the states held,
started at the newest filtered state of its stretch rather than at the stretch's end. The
smoothed mean of a frame ``L`` updates before that start differs from the full RTS's by the
filtered-minus-smoothed difference at the start, carried back through ``L`` smoother gains, so the
difference shrinks geometrically with ``L``. The lag counts updates, not frames, because a frame
before a gap, or one in a run of single-view updates, needs the observations after the gap.
Largest 3D difference from the reference (tests/fusion/test_stream_smoothing.py: 3 synthetic 30 fps
takes, 4 views, 2 px noise, gaps, ``hop_frames=1``) at lag 5/10/15/20/25: 24/10/1.7/0.41/0.08 mm
(99th percentile 3.7/0.42/0.12/0.020/0.006 mm; worst before a gap or in single-view runs).

The backward pass runs once per ``hop_frames`` frames handed back, over about ``lag_frames +
hop_frames`` states per joint. The constant-velocity transition is linear, so each of its steps is
computed in closed form (:func:`_rts_means`).

Frames also wait while their output is undecided, which keeps the reference's gap semantics. A
joint unobserved since a frame is bridged (smoothed position, confidence ``_GAP_CONF`` times that
of the nearest reconstructed frame) if an observation comes within ``max_gap_s`` of the last one;
otherwise it keeps its input. Which of the two applies is known at most ``max_gap_s`` later. A
bridged joint's nearest reconstructed frame may lie after it: the frame waits for it while it
could be nearer than the previous one. No frame waits more than ``max_gap_s`` beyond its lag.
Past that, the update count is waived and the previous reconstruction's confidence is used. That
differs from the reference only in a run of single-view updates longer than ``2 max_gap_s``.

Memory bound: at most ``max(lag_frames, frames spanning max_gap_s) + hop_frames`` frames are held
(35 at 30 fps, defaults, max_gap_s = 1 s), each with its inputs and, per track and joint, one (6,)
state and (6, 6) covariance. Nothing grows with the length of the take.

One more difference from the reference (0.02 mm with +-2 ms jitter): the backward pass's ``Q``
uses the median frame interval of the held frames, not of the track's whole span.
"""

from __future__ import annotations

import dataclasses
from collections import deque

import numpy as np
from filterpy.kalman import MerweScaledSigmaPoints, UnscentedKalmanFilter

from core.config import SmoothingConfig
from core.errors import ShapeError
from fusion.smoothing import (  # the reference's constants and model, shared
    _GAP_CONF,
    _INIT_POS_STD_M,
    _INIT_VEL_STD_MPS,
    _NS,
    SequenceFrame,
    _check_config,
    _fx,
    _process_noise,
    _project,
)

__all__ = ["StreamSmoother"]

_INIT_COV = np.diag([_INIT_POS_STD_M**2] * 3 + [_INIT_VEL_STD_MPS**2] * 3)
_NEVER = 1 << 62
"""A frame number later than any: "no frame of this joint is undecided"."""


def _rts_means(xs: np.ndarray, covs: np.ndarray, dts: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Smoothed means of the unscented RTS pass (Särkkä 2008) for the constant-velocity model.

    The transition ``x' = F x`` is linear, so the unscented transform of each backward step is
    exact and the step is the linear RTS one (Rauch, Tung & Striebel 1965): with ``F`` over ``dt``,
    ``K = P F^T (F P F^T + Q)^-1`` and ``x_s[k] = x[k] + K (x_s[k+1] - F x[k])``. This is what
    filterpy's ``UnscentedKalmanFilter.rts_smoother`` computes with one ``Q`` for every step (as
    :func:`fusion.smoothing.smooth_joint_track` calls it), without its sigma points: the same
    result to about 1e-10 m, at a tenth of the cost. Smoothed covariances are not needed.

    Args:
        xs: (n, 6) filtered states [x, y, z, vx, vy, vz], metres and metres/second.
        covs: (n, 6, 6) their covariances.
        dts: (n - 1,) intervals between consecutive states, seconds.
        q: (6, 6) process noise covariance used for every step.

    Returns:
        (n, 6) smoothed states; the last is ``xs[-1]``.
    """
    n = len(xs)
    F = np.tile(np.eye(6), (n - 1, 1, 1))
    F[:, :3, 3:] = dts[:, None, None] * np.eye(3)
    cross = covs[:-1] @ F.transpose(0, 2, 1)  # P F^T, (n - 1, 6, 6)
    gains = np.linalg.solve(F @ cross + q, cross.transpose(0, 2, 1)).transpose(0, 2, 1)
    prior = np.einsum("kij,kj->ki", F, xs[:-1])
    out = xs.copy()
    for k in range(n - 2, -1, -1):
        out[k] = xs[k] + gains[k] @ (out[k + 1] - prior[k])
    return out


class _Stretch:
    """One filter run of one joint of one track (a stretch of :func:`smooth_joint_track`).

    Attributes:
        base: number of the frame of ``xs[0]``.
        xs: (6,) filtered states of the frames from ``base`` on (those not yet returned).
        covs: (6, 6) their covariances.
        last: number of the frame of the last update (observation).
        last_s: its time, seconds.
        haves: (frame number, confidence) of the frames where the joint was reconstructed, from
            the last one before ``base`` on.
        updates: numbers of the frames from ``base`` on where the filter was updated.
        closed: the stretch has ended (gap longer than ``max_gap_s``, or end of take).
    """

    __slots__ = ("base", "closed", "covs", "haves", "last", "last_s", "updates", "xs")

    def __init__(self, n: int, stamp_s: float, x: np.ndarray, cov: np.ndarray, conf: float) -> None:
        self.base = n
        self.xs: deque[np.ndarray] = deque([x])
        self.covs: deque[np.ndarray] = deque([cov])
        self.last = n
        self.last_s = stamp_s
        self.haves: deque[tuple[int, float]] = deque([(n, conf)])
        self.updates: deque[int] = deque()
        self.closed = False

    @property
    def newest(self) -> int:
        return self.base + len(self.xs) - 1

    def prune(self, first: int) -> None:
        """Forget the states of the frames before ``first`` (returned) and the older confidences."""
        while self.xs and self.base < first:
            self.xs.popleft()
            self.covs.popleft()
            self.base += 1
        while len(self.haves) > 1 and self.haves[1][0] < first:
            self.haves.popleft()
        while self.updates and self.updates[0] < first:
            self.updates.popleft()


class _Joint:
    """The filter state of one joint of one track: its current (6,) state and its stretches."""

    __slots__ = ("cov", "stretches", "x")

    def __init__(self) -> None:
        self.x = np.zeros(6)
        self.cov = np.zeros((6, 6))
        self.stretches: list[_Stretch] = []

    @property
    def open(self) -> _Stretch | None:
        return self.stretches[-1] if self.stretches and not self.stretches[-1].closed else None


@dataclasses.dataclass(slots=True)
class _Pending:
    """A frame not yet returned: its number, index, input, time and output poses (P, J, 4)."""

    n: int
    frame_idx: int
    frame: SequenceFrame
    stamp_s: float
    rows: dict[int, int]
    out: np.ndarray


class StreamSmoother:
    """Frame-by-frame version of :func:`fusion.smoothing.smooth_sequence`, in bounded memory.

    Push the take's frames in time order. Each push returns the frames whose smoothed poses are
    final, oldest first, and :meth:`flush` returns the rest at the end of the take. Every frame
    pushed comes out once, in push order, with the reference's output for it apart from the
    fixed-lag approximation (module docstring): the same track ids and rows, the same missing joints
    (conf 0) and the same confidences. Positions agree to a fraction of a millimetre at the default
    lag and 30 fps. With ``cfg.rts`` False the output is the causal filter's, as in the reference
    (identical).

    When frames come out: frame ``k`` is final once ``lag_frames`` newer frames have been pushed,
    each filtered joint of its tracks has ``lag_frames`` updates after ``k``, and no joint waits on
    a gap's outcome. The last two conditions are waived ``max_gap_s`` after ``k``. Final frames
    are handed out in batches of at least ``hop_frames``. So a frame comes out ``lag_frames`` to
    ``lag_frames + hop_frames - 1`` frames after it was pushed, or at most ``max_gap_s`` later
    than that when its joints are not observed.

    Args:
        projections: (C, 3, 4) projection matrices of the C views, world metres to undistorted
            pixels.
        cfg: filter settings (``rts``, noises, gate, ``max_gap_s``).
        min_conf: smallest 2D confidence used (the triangulation's ``min_joint_conf``).
        lag_frames: observations (and frames) a frame waits for before its smoothing is final,
            >= 0 (0 returns the causal filter's estimate). The default, 20 (0.67 s at 30 fps), kept
            the error below 0.5 mm on the test takes (module docstring).
        hop_frames: least number of frames returned per backward pass, >= 1. A larger hop costs
            less CPU, holds more frames and lets most frames wait longer than ``lag_frames``.

    Raises:
        ShapeError: ``projections`` is not (C, 3, 4).
        ValueError: a non-positive setting in ``cfg``, or a negative lag or hop.

    Example:
        >>> from core.config import SmoothingConfig
        >>> P = np.stack([np.hstack([np.eye(3), [[dx], [0.0], [4.0]]]) for dx in (0.0, -1.0)])
        >>> sm = StreamSmoother(P, SmoothingConfig(enabled=True), lag_frames=2, hop_frames=1)
        >>> X = np.array([0.1, 0.2, 0.3, 1.0])
        >>> uv = np.stack([(p @ X)[:2] / (p @ X)[2] for p in P])  # (C, 2)
        >>> f = SequenceFrame(0, np.array([7]), np.array([[X]]), uv[None, :, None], np.ones((1, 2, 1)))
        >>> [len(sm.push(k, dataclasses.replace(f, stamp_ns=k * 33_000_000))) for k in range(4)]
        [0, 0, 1, 1]
        >>> out = sm.flush()
        >>> [k for k, _ in out], out[-1][1].poses.shape, out[-1][1].track_ids.tolist()
        ([2, 3], (1, 1, 4), [7])
    """

    def __init__(
        self,
        projections: np.ndarray,
        cfg: SmoothingConfig,
        min_conf: float = 0.3,
        lag_frames: int = 20,
        hop_frames: int = 5,
    ) -> None:
        _check_config(cfg)
        self.projections = np.asarray(projections, dtype=np.float64)
        if self.projections.ndim != 3 or self.projections.shape[1:] != (3, 4):
            raise ShapeError(f"projections must be (C, 3, 4); got {self.projections.shape}")
        if lag_frames < 0 or hop_frames < 1:
            raise ValueError(f"lag_frames must be >= 0 and hop_frames >= 1; got {lag_frames}, {hop_frames}")
        self.cfg = cfg
        self.min_conf = float(min_conf)
        self.lag_frames = int(lag_frames)
        self.hop_frames = int(hop_frames)
        sigma_points = MerweScaledSigmaPoints(6, alpha=1e-3, beta=2.0, kappa=0.0)
        self._ukf = UnscentedKalmanFilter(6, 2, 1.0, None, _fx, sigma_points)
        self._q_memo: dict[float, np.ndarray] = {}
        self._reset()

    def _reset(self) -> None:
        self._n_joints: int | None = None
        self._n = 0  # number of the next frame pushed
        self._last_ns: int | None = None
        self._last_s: float | None = None
        self._pending: deque[_Pending] = deque()
        self._tracks: dict[int, list[_Joint]] = {}

    @property
    def retained_frames(self) -> int:
        """Frames pushed and not yet returned."""
        return len(self._pending)

    @property
    def retained_states(self) -> int:
        """(6,) states (each with its (6, 6) covariance) held, over all tracks, joints and stretches."""
        return sum(len(s.xs) for joints in self._tracks.values() for j in joints for s in j.stretches)

    # -- input ----------------------------------------------------------------------------------
    def push(self, frame_idx: int, frame: SequenceFrame) -> list[tuple[int, SequenceFrame]]:
        """Add the next frame of the take; return the frames whose smoothing is now final.

        Args:
            frame_idx: the frame's index, handed back with it (not interpreted).
            frame: the frame (:class:`SequenceFrame`); its ``stamp_ns`` must exceed the previous
                frame's.

        Returns:
            (frame_idx, frame) of the frames now final, oldest first: the input frame with ``poses``
            replaced by the smoothed (P, J, 4) float64 poses [x, y, z, conf], metres, rows as in the
            input. (A track id repeated within a frame: its last row is smoothed and the others
            are passed through, as in :func:`smooth_sequence`.)

        Raises:
            ShapeError: the frame's arrays disagree with each other, with ``projections`` or with
                the previous frames' joint count.
            ValueError: ``stamp_ns`` does not exceed the previous frame's. The frame is not taken
                and the smoother is unchanged, so the caller may drop it and go on.
        """
        self._check(frame_idx, frame)
        n = self._n
        stamp_s = float(np.float64(frame.stamp_ns) * _NS)
        rows = {int(tid): r for r, tid in enumerate(np.asarray(frame.track_ids).tolist())}
        out = np.array(frame.poses, dtype=np.float64, copy=True)
        self._pending.append(_Pending(n, int(frame_idx), frame, stamp_s, rows, out))
        dt = stamp_s - self._last_s if self._last_s is not None else 0.0
        q = self._q(dt) if self._last_s is not None else None
        self._n += 1
        self._last_ns, self._last_s = int(frame.stamp_ns), stamp_s
        for tid in rows:
            self._tracks.setdefault(tid, [_Joint() for _ in range(frame.poses.shape[1])])
        poses = np.asarray(frame.poses, dtype=np.float64)
        obs_px = np.asarray(frame.obs_px, dtype=np.float64)
        obs_conf = np.asarray(frame.obs_conf, dtype=np.float64)
        for tid, joints in self._tracks.items():
            r = rows.get(tid)
            for j, joint in enumerate(joints):
                if r is None:
                    if joint.open is not None:
                        self._step(joint, n, stamp_s, dt, q, None, None, None)
                else:
                    self._step(joint, n, stamp_s, dt, q, poses[r, j], obs_px[r, :, j], obs_conf[r, :, j])
        self._drop_idle_tracks()
        return self._emit(force=False)

    def flush(self) -> list[tuple[int, SequenceFrame]]:
        """End the take: return every frame not yet returned, smoothed up to the take's end.

        The smoother is then empty and ready for a new take (times may start over).

        Returns:
            (frame_idx, frame) of the remaining frames, oldest first, as :meth:`push` returns them.
        """
        for joints in self._tracks.values():
            for joint in joints:
                if joint.open is not None:
                    joint.open.closed = True
        out = self._emit(force=True)
        self._reset()
        return out

    def _check(self, frame_idx: int, frame: SequenceFrame) -> None:
        C = self.projections.shape[0]
        P = len(frame.track_ids)
        J = self._n_joints
        if J is None and np.ndim(frame.poses) == 3:
            J = frame.poses.shape[1]
        if frame.poses.shape != (P, J, 4) or frame.obs_px.shape != (P, C, J, 2) or frame.obs_conf.shape != (P, C, J):
            raise ShapeError(
                f"frame {frame_idx}: poses (P, J, 4), obs_px (P, {C}, J, 2), obs_conf (P, {C}, J) with P = "
                f"{P} track ids and J = {J} joints; got {frame.poses.shape}, {frame.obs_px.shape}, "
                f"{frame.obs_conf.shape}"
            )
        if self._last_ns is not None and frame.stamp_ns <= self._last_ns:
            raise ValueError(f"frame {frame_idx}: stamp_ns must increase; got {frame.stamp_ns} after {self._last_ns}")
        self._n_joints = J

    # -- forward filter (the loop of smooth_joint_track, one frame at a time) --------------------
    def _q(self, dt: float) -> np.ndarray:
        """(6, 6) process noise over ``dt`` seconds, memoised (the frame interval rarely changes)."""
        q = self._q_memo.get(dt)
        if q is None:
            if len(self._q_memo) > 256:
                self._q_memo.clear()
            q = self._q_memo[dt] = _process_noise(dt, self.cfg.accel_noise_mps2)
        return q

    def _gated_views(self, ref: np.ndarray, obs_px: np.ndarray, obs_conf: np.ndarray) -> np.ndarray:
        seen = np.nonzero(obs_conf >= self.min_conf)[0]
        if len(seen) == 0:
            return seen
        err = np.linalg.norm(_project(self.projections[seen], ref) - obs_px[seen], axis=-1)
        return seen[err <= self.cfg.gate_px]

    def _hx(self, x: np.ndarray, cams: np.ndarray) -> np.ndarray:
        return _project(self.projections[cams], x[:3]).ravel()

    def _step(
        self,
        joint: _Joint,
        n: int,
        stamp_s: float,
        dt: float,
        q: np.ndarray | None,
        point: np.ndarray | None,
        obs_px: np.ndarray | None,
        obs_conf: np.ndarray | None,
    ) -> None:
        """Advance one joint's filter to frame ``n``; ``point`` None: its track is absent there."""
        st = joint.open
        if st is not None and stamp_s - st.last_s > self.cfg.max_gap_s:
            st.closed = True
            st = None
        conf = 0.0 if point is None else float(point[3])
        # Triangulated: a position and 2 views (else the tracker filled it in), as in smooth_joint_track.
        triangulated = conf > 0 and int(np.count_nonzero(obs_conf >= self.min_conf)) >= 2
        if st is None:
            if not triangulated or len(self._gated_views(point[:3], obs_px, obs_conf)) == 0:
                return
            joint.x = np.r_[point[:3], 0.0, 0.0, 0.0]
            joint.cov = _INIT_COV.copy()
            joint.stretches.append(_Stretch(n, stamp_s, joint.x.copy(), joint.cov.copy(), conf))
            return
        ukf = self._ukf
        ukf.x, ukf.P, ukf.Q = joint.x, joint.cov, q
        ukf.predict(dt=dt)
        if point is not None:
            cams = self._gated_views(point[:3] if triangulated else ukf.x[:3], obs_px, obs_conf)
            if len(cams):
                r = np.repeat((self.cfg.pixel_noise_px / obs_conf[cams]) ** 2, 2)
                ukf.update(obs_px[cams].ravel(), R=np.diag(r), hx=self._hx, cams=cams)
                if len(cams) >= 2 or triangulated:
                    st.last, st.last_s = n, stamp_s  # one view alone leaves depth unobserved: not a sighting
                st.updates.append(n)
            if conf > 0:
                st.haves.append((n, conf))
        joint.x, joint.cov = ukf.x.copy(), ukf.P.copy()
        st.xs.append(joint.x)
        st.covs.append(joint.cov)

    def _drop_idle_tracks(self) -> None:
        first = self._pending[0].n if self._pending else self._n
        for tid in list(self._tracks):
            joints = self._tracks[tid]
            for joint in joints:
                joint.stretches = [s for s in joint.stretches if not s.closed or s.newest >= first]
            if not any(joint.stretches for joint in joints):
                del self._tracks[tid]

    # -- output -----------------------------------------------------------------------------------
    def _end(self, st: _Stretch) -> int:
        """Last frame of ``st`` known to be smoothed (the reference's ``frames[:n]``)."""
        return st.last if self.cfg.rts else st.newest

    def _ready_until(self, joints: list[_Joint]) -> int:
        """Last frame up to which every joint of a track is decided and has its lag of observations."""
        until = _NEVER
        lag = self.lag_frames if self.cfg.rts else 0
        for joint in joints:
            st = joint.open
            if st is None:
                continue
            end = self._end(st)
            # (A stretch whose reconstructions up to ``end`` were all returned has only frames
            # after ``end`` left, undecided until it is bridged or closed.)
            h_last = max((n for n, _ in st.haves if n <= end), default=end)
            # After h_last the frames in the stretch are missing joints (bridged); the nearest
            # reconstruction of frame k > h_last is h_last unless one comes before 2k - h_last.
            until = min(until, (end + h_last + 1) // 2)
            if lag:  # the RTS window of frame k must hold ``lag`` observations after k
                until = min(until, st.updates[-lag] - 1 if len(st.updates) >= lag else st.base - 1)
        return until

    def _emit(self, force: bool) -> list[tuple[int, SequenceFrame]]:
        pending = self._pending
        if not pending:
            return []
        newest = pending[-1]
        if force:
            m = len(pending)
        else:
            until = {tid: self._ready_until(joints) for tid, joints in self._tracks.items()}
            m = 0
            for p in pending:
                if newest.n - p.n < self.lag_frames:
                    break
                timed_out = newest.stamp_s - p.stamp_s > self.cfg.max_gap_s
                if not timed_out and any(p.n > until.get(tid, _NEVER) for tid in p.rows):
                    break
                m += 1
            if m < self.hop_frames:
                return []
        first, last = pending[0].n, pending[m - 1].n
        stamps = np.array([p.stamp_s for p in pending])
        dt_nominal = float(np.median(np.diff(stamps))) if len(stamps) > 1 else 1.0
        q = self._q(dt_nominal)
        for tid, joints in self._tracks.items():
            for j, joint in enumerate(joints):
                for st in joint.stretches:
                    self._write(tid, j, st, first, last, stamps, q)
        out = []
        for _ in range(m):
            p = pending.popleft()
            out.append((p.frame_idx, dataclasses.replace(p.frame, poses=p.out)))
        first = pending[0].n if pending else self._n
        for joints in self._tracks.values():
            for joint in joints:
                for st in joint.stretches:
                    st.prune(first)
        self._drop_idle_tracks()
        return out

    def _write(self, tid: int, j: int, st: _Stretch, first: int, last: int, stamps: np.ndarray, q: np.ndarray) -> None:
        """Write joint ``j`` of track ``tid`` from stretch ``st`` into frames ``first..last``."""
        a = max(first, st.base)
        end = self._end(st)
        b = min(last, end)
        if b < a:
            return
        X = np.array([st.xs[k - st.base] for k in range(a, end + 1)])
        if self.cfg.rts and end > a:
            covs = np.array([st.covs[k - st.base] for k in range(a, end + 1)])
            X = _rts_means(X, covs, np.diff(stamps[a - first : end - first + 1]), q)
        haves = [h for h in st.haves if h[0] <= end]
        for k in range(a, b + 1):
            p = self._pending[k - first]
            r = p.rows.get(tid)
            if r is None:
                continue
            p.out[r, j, :3] = X[k - a, :3]
            if p.out[r, j, 3] <= 0:
                before = [h for h in haves if h[0] < k]
                after = [h for h in haves if h[0] > k]
                near = before[-1]
                if after and after[0][0] - k < k - near[0]:
                    near = after[0]
                p.out[r, j, 3] = _GAP_CONF * near[1]
