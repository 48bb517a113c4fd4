"""Per-view measurements of the live tracker (:mod:`fusion.live`): RGB-D lifted joints, and views
entering the filter at their own capture times.

RGB-D cameras (:mod:`fusion.rgbd`): a view may also give a joint's lifted 3D position with its
covariance. It enters by a linear Kalman update (``H = [I 0]``,
:func:`fusion.live_tracks.update_position`) *instead of* that view's pixels (the lifted point
carries the pixel's lateral information, so using both would count it twice), beside the other
views' pixels; it is gated on its own squared Mahalanobis distance (chi-square 99%, 3 degrees of
freedom: 11.34; a self-occluded joint lifted onto its occluder fails it, :func:`gate_lifted`), and
a view whose 3D measurement fails the gate falls back to its pixels. A lifted joint observes the
whole position, so it counts as two views for the tracker's velocity rule, and a person seen by one
RGB-D camera alone is a group whose ``poses`` are its lifted joints: it starts, restarts and keeps
a track as a triangulated one does.

Unsynchronised cameras (``view_stamps_ns`` of :meth:`fusion.live.LiveTracker.update`): when the
views of a frame carry their own capture times, the frame is associated and gated at the earliest
of them, and the assigned tracks are then updated one view after the other in time order, each
predicted to that view's capture time before its pixel (or lifted 3D) update
(:func:`sequential_update`), as OpenPTrack fuses detections one at a time (Munaro & Menegatti 2014,
*Fast RGB-D people tracking for service robots*, Autonomous Robots 37(3)). The published pose is
the filter's at the frame time (its position moved along its velocity from the last view's time).
Without ``view_stamps_ns`` every view enters at the frame time.
"""

from __future__ import annotations

import numpy as np
from scipy.special import chdtri

from fusion.live_tracks import predict_linear, update_position
from fusion.ukf import SigmaWeights, update

__all__ = ["GATE_D2_3D", "gate_lifted", "sequential_update", "update_lifted"]

_NS = 1e-9
GATE_D2_3D = float(chdtri(3, 0.01))  # chi2.ppf(0.99, 3)
"""Squared Mahalanobis gate of a lifted 3D joint: chi-square 99% quantile, 3 degrees of freedom."""


def gate_lifted(x: np.ndarray, P: np.ndarray, z3: np.ndarray, cov3: np.ndarray, has3: np.ndarray) -> np.ndarray:
    """Lifted joints within their 3D gate around the prediction.

    Args:
        x: (A, J, 6) predicted states, metres and metres/second.
        P: (A, J, 6, 6) their covariances.
        z3: (A, J, C, 3) lifted joints, world metres.
        cov3: (A, J, C, 3, 3) their covariances, metres^2.
        has3: (A, J, C) bool, lifted joints given.

    Returns:
        (A, J, C) bool: ``has3`` and the squared Mahalanobis distance within :data:`GATE_D2_3D`.
    """
    d_pos = z3 - x[:, :, None, :3]
    S3 = P[:, :, None, :3, :3] + np.where(has3[..., None, None], cov3, np.eye(3))
    d2 = np.einsum("ajci,ajci->ajc", d_pos, np.linalg.solve(S3, d_pos[..., None])[..., 0])
    return has3 & (d2 <= GATE_D2_3D)


def update_lifted(
    x: np.ndarray, P: np.ndarray, z3: np.ndarray, cov3: np.ndarray, used3: np.ndarray, views: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Linear updates of (A, J) joint filters with lifted joints, one view after the other.

    Args: x (A, J, 6), P (A, J, 6, 6); z3 (A, J, C, 3), cov3 (A, J, C, 3, 3); used3 (A, J, C) bool,
    the lifted joints to use; views: the views to apply, in order (default all, in index order).

    Returns: x and P updated (in place where possible).
    """
    for c in np.nonzero(used3.any(axis=(0, 1)))[0] if views is None else views:
        m = used3[..., c]
        if m.any():
            x[m], P[m], _ = update_position(x[m], P[m], z3[..., c, :][m], cov3[..., c, :, :][m])
    return x, P


def sequential_update(
    stamp: np.ndarray, x: np.ndarray, P: np.ndarray, z: np.ndarray, mask: np.ndarray, var: np.ndarray,
    view_ns: np.ndarray, lifted: tuple[np.ndarray, np.ndarray, np.ndarray] | None, projections: np.ndarray,
    w: SigmaWeights, accel_noise_mps2: float | np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Views entering at their own capture times: per view in time order, predict (constant
    velocity) to its time, then its masked pixel update (:func:`fusion.ukf.update`) and its lifted
    joints' linear updates.

    Args:
        stamp: (A,) the tracks' filter times, nanoseconds.
        x: (A, J, 6) states; P: (A, J, 6, 6) covariances.
        z: (A, J, C, 2) pixels; mask: (A, J, C) bool inliers; var: (A, J, C) pixel variances, pixels^2.
        view_ns: (C,) capture times, nanoseconds.
        lifted: (z3 (A, J, C, 3), cov3 (A, J, C, 3, 3), used3 (A, J, C)) or None.
        projections: (C, 3, 4) camera matrices; w: sigma-point weights; accel_noise_mps2: process noise,
            m/s^2, one or (A * J,) per joint filter (tracks first).

    Returns:
        x, P updated; (A, J) number of pixel views used; (A,) the tracks' new filter times, ns.
    """
    A, J, C = mask.shape
    n_px = np.zeros((A, J), np.int64)
    stamp = stamp.copy()
    seen = mask.any(axis=(0, 1)) | (False if lifted is None else lifted[2].any(axis=(0, 1)))
    for c in [c for c in np.argsort(view_ns, kind="stable") if seen[c]]:
        dt = np.maximum((view_ns[c] - stamp) * _NS, 0.0)
        if (dt > 0).any():
            xf, Pf = predict_linear(x.reshape(-1, 6), P.reshape(-1, 6, 6), np.repeat(dt, J), accel_noise_mps2)
            x, P = xf.reshape(A, J, 6), Pf.reshape(A, J, 6, 6)
            stamp = np.maximum(stamp, view_ns[c])
        m = mask[..., c]
        if m.any():
            res = update(x.reshape(-1, 6), P.reshape(-1, 6, 6), z[..., c : c + 1, :].reshape(-1, 1, 2),
                         m.reshape(-1, 1), var[..., c : c + 1].reshape(-1, 1), projections[c : c + 1], w)  # fmt: skip
            x, P = res.x.reshape(A, J, 6), res.P.reshape(A, J, 6, 6)
            n_px += res.n_views.reshape(A, J)
        if lifted is not None:
            x, P = update_lifted(x, P, *lifted, views=[c])
    return x, P, n_px, stamp
