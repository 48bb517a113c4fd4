"""Clock offsets between cameras from 2D keypoint motion (no calibration needed).

People speed up and slow down at the same instants whichever camera watches them, so the image
speeds of their joints, in body sizes per second, rise and fall together in every view. As in
Pose2Sim's synchronisation step (Pagnon et al. 2022, JOSS 7(77) 4362, ``synchronization.py``:
keypoint speeds, Butterworth low-pass, time-lagged cross-correlation per camera pair), offsets
come from cross-correlating them; here extended to several people, missing joints, different
frame rates and one consistent rig-wide solution:

1. Per camera, detections are linked frame to frame into tracklets (Hungarian on the mean joint
   distance, gated in body sizes), so that every speed belongs to one person.
2. Each tracklet's joints are resampled onto a time grid shared by all cameras (bridging gaps up
   to ``max_gap_s``), low-pass filtered (Butterworth, zero phase) and differentiated. Two channels
   per joint, divided by the tracklet's median keypoint-box diagonal (near and far views compare):
   the norm of its 2D velocity (independent of camera roll: portrait, rolled, overhead cameras)
   and its signed vertical image velocity (Pose2Sim's choice: nearly view-independent for upright
   cameras and, unlike a norm, not rectifying detection jitter into a bias).
3. Per camera pair, every tracklet pair is correlated per channel at every lag by masked
   normalised cross-correlation (Padfield 2012, IEEE TIP 21(5), eq. 17-19: Pearson correlation
   over the overlap of partly missing signals, all lags at once by FFT). At each lag the
   tracklets of one view are matched one-to-one to the other's (Hungarian on overlap x
   correlation): people need no cross-view association, the motion associates them.
4. Rig-wide consensus: the grid offsets maximising the sum of all pair scores (coordinate ascent),
   so that pairs which agree outvote a pair whose own highest peak is wrong. Each pair's lag is
   then its correlation peak within one frame of the consensus, refined by a parabola, and the
   offsets are the weighted least-squares fit of those lags (``o_b - o_a = lag_ab``, weight =
   peak score, reference camera 0).

Why per-person tracklets rather than one sum of speeds per frame: a bystander seen by one camera
only, or a person occluded in one view, changes that view's sum alone; on the Pose2Sim demo (1.7 s
at 60 fps, a bystander in two views) per-frame sums put camera pairs up to 40 frames off.

Limits (measured): the motion must be long and varied enough. Campus ground truth projected with
1 px noise, cameras at 30 and 25 fps: 10 s windows err at most 7 ms; 5 s windows where nobody
moves give confidence 0. On the demo, a camera whose first 3 to 12 frames are cut, or whose clock
runs 7 to 20 frames ahead, is recovered within 12 ms; with 30 of its 100 frames cut (1.2 s left),
within 24 ms.

Convention: a camera's offset ``o_c`` is its clock minus the reference clock: an event at
reference time ``t`` is stamped ``t + o_c`` by camera c, and ``t = stamp - o_c`` corrects it (the
``[node] clock_offsets_ms`` convention; a camera whose clock runs ahead has a positive offset).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import networkx as nx
import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.signal import fftconvolve

from calibration.motion_signals import PoseSeries, motion_signals
from core.errors import ShapeError

__all__ = [
    "PairLag",
    "PoseSeries",
    "TimeOffsets",
    "combine_pair_lags",
    "correlate_motion",
    "estimate_time_offsets",
    "motion_signals",
]


@dataclass(frozen=True, slots=True)
class PairLag:
    """The correlation peak of one camera pair.

    Attributes:
        a, b: camera indices.
        lag_s: ``o_b - o_a``, seconds (see the module's convention): the pair score's peak nearest
            the rig-wide consensus.
        peak: score there (0 no match .. 1 identical motion over the whole overlap).
        margin: peak minus the highest local maximum of the score more than one frame away (the
            peak itself when there is none): how unambiguous it is; negative when the pair on its
            own would have preferred another lag.
        used: whether the pair entered the least-squares fit.
    """

    a: int
    b: int
    lag_s: float
    peak: float
    margin: float
    used: bool


@dataclass(frozen=True, slots=True)
class TimeOffsets:
    """Per-camera clock offsets relative to a reference camera.

    Attributes:
        names: camera names, in input order.
        offsets_s: (C,) offsets, seconds; the reference is 0.
        confidence: (C,) mean peak score of the camera's used pairs, weighted by peak (0..1; about
            0.2-0.4 on real detections of people moving); 0 for a camera that no used pair connects
            to the reference: its offset is then 0 and means "unknown".
        residual_s: (C,) RMS residual of the camera's used pairs after the fit, seconds.
        pairs: every camera pair's peak.
        reference: index of the reference camera.
    """

    names: tuple[str, ...]
    offsets_s: np.ndarray
    confidence: np.ndarray
    residual_s: np.ndarray
    pairs: tuple[PairLag, ...]
    reference: int

    def offsets_ms(self) -> dict[str, float]:
        """Offsets by camera name, milliseconds (the ``[node] clock_offsets_ms`` table)."""
        return {n: float(o * 1e3) for n, o in zip(self.names, self.offsets_s, strict=True)}


def _masked_xcorr(x: np.ndarray, y: np.ndarray, min_overlap: int) -> tuple[np.ndarray, np.ndarray]:
    """Pearson correlation per column of x (Nx, J) against y (Ny, J) shifted, for every lag.

    Missing samples are NaN. Lag ``l`` pairs ``x[i]`` with ``y[i + l]``; the returned arrays run over
    ``l = -(Nx - 1) .. Ny - 1``: (Nx + Ny - 1, J) correlations (0 where the overlap has fewer than
    ``min_overlap`` samples or no variance) and overlap counts. Padfield 2012, eq. 17-19.
    """
    mx, my = np.isfinite(x), np.isfinite(y)
    x0, y0 = np.where(mx, x, 0.0), np.where(my, y, 0.0)
    # Centred first (Pearson is shift-invariant): keeps n Sxx - Sx^2 free of cancellation.
    x0 = np.where(mx, x0 - x0.sum(axis=0) / np.maximum(mx.sum(axis=0), 1), 0.0)
    y0 = np.where(my, y0 - y0.sum(axis=0) / np.maximum(my.sum(axis=0), 1), 0.0)
    mx, my = mx.astype(np.float64), my.astype(np.float64)

    def corr(f: np.ndarray, g: np.ndarray) -> np.ndarray:  # sum_i f[i] g[i + l]
        return fftconvolve(g, f[::-1], mode="full", axes=0)

    n = np.rint(corr(mx, my))
    sx, sy = corr(x0, my), corr(mx, y0)
    sxx, syy, sxy = corr(x0 * x0, my), corr(mx, y0 * y0), corr(x0, y0)
    with np.errstate(divide="ignore", invalid="ignore"):
        cov = n * sxy - sx * sy
        var = (n * sxx - sx * sx) * (n * syy - sy * sy)
        r = np.where((n >= min_overlap) & (var > 1e-12 * np.maximum(n, 1) ** 4), cov / np.sqrt(var), 0.0)
    return np.clip(r, -1.0, 1.0), np.where(n >= min_overlap, n, 0.0)


def correlate_motion(
    signals_a: list[tuple[int, np.ndarray]],
    signals_b: list[tuple[int, np.ndarray]],
    max_lag: int,
    min_overlap: int = 20,
) -> tuple[np.ndarray, np.ndarray]:
    """Score and correlation of every lag between two cameras' motion signals (module step 3).

    Args:
        signals_a, signals_b: :func:`motion_signals` of the two cameras on the same grid.
        max_lag: lags ``-max_lag .. max_lag`` grid steps are scored.
        min_overlap: a channel of a tracklet pair needs this many common samples at a lag.

    Returns:
        Two (2 max_lag + 1,) arrays, index ``max_lag + l`` for lag ``l`` (``o_b - o_a`` in grid
        steps), both all zeros when either camera has no signal:

        - score: sum over matched tracklet pairs and channels of overlap x max(r, 0), divided by
          the smaller camera's total of channel samples, in [0, 1]. Lags that leave little
          overlap score low, which makes it the right curve to find the peak with, but the
          overlap's decrease away from zero lag pulls a broad peak towards zero.
        - corr: the same sum divided by the matched pairs' overlap instead (overlap-weighted mean
          correlation), free of that pull: the curve to locate the peak on.
    """
    n_lags = 2 * max_lag + 1
    weight = np.zeros((n_lags, len(signals_a), len(signals_b)))
    overlap = np.zeros_like(weight)
    for p, (sa, xa) in enumerate(signals_a):
        for q, (sb, xb) in enumerate(signals_b):
            if sb + len(xb) - 1 - sa < -max_lag or sb - sa - (len(xa) - 1) > max_lag:
                continue  # no overlap at any lag in the window
            r, n = _masked_xcorr(xa, xb, min_overlap)
            # local lag l_loc pairs xa[u] with xb[u + l_loc]: grid lag = l_loc + sb - sa.
            lags = np.arange(-(len(xa) - 1), len(xb)) + sb - sa
            keep = np.abs(lags) <= max_lag
            weight[lags[keep] + max_lag, p, q] = (np.maximum(r[keep], 0.0) * n[keep]).sum(axis=1)
            overlap[lags[keep] + max_lag, p, q] = n[keep].sum(axis=1)
    total_a = sum(np.isfinite(x).sum() for _, x in signals_a)
    total_b = sum(np.isfinite(x).sum() for _, x in signals_b)
    score, corr = np.zeros(n_lags), np.zeros(n_lags)
    for k in range(n_lags):
        if weight[k].any():
            rows, cols = linear_sum_assignment(weight[k], maximize=True)
            score[k] = weight[k][rows, cols].sum()
            corr[k] = score[k] / overlap[k][rows, cols].sum()
    return score / max(min(total_a, total_b), 1), corr


def _local_peak(score: np.ndarray, corr: np.ndarray, k: int, halfwidth: int) -> tuple[float, float, float]:
    """(sub-step index, score, margin) of the peak of ``corr`` within ``k +- halfwidth``.

    The position is refined by a parabola through the neighbours on ``corr``; the score there is
    interpolated; the margin is that score minus the highest local maximum of ``score`` outside
    the window (the score itself if there is none).
    """
    lo, hi = max(k - halfwidth, 0), min(k + halfwidth + 1, len(score))
    m = lo + int(np.argmax(corr[lo:hi]))
    pos = float(m)
    if 0 < m < len(corr) - 1:
        c0, c1, c2 = corr[m - 1 : m + 2]
        denom = c0 - 2 * c1 + c2
        if denom < 0:
            pos += float(np.clip(0.5 * (c0 - c2) / denom, -0.5, 0.5))
    peak = float(np.interp(pos, np.arange(len(score)), score))
    inner = score[1:-1]
    local = np.nonzero((inner >= score[:-2]) & (inner > score[2:]))[0] + 1
    others = score[local[(local < lo) | (local >= hi)]]
    return pos, peak, peak - float(others.max()) if others.size else peak


def _consensus(curves: dict[tuple[int, int], np.ndarray], n_cams: int, ref: int, max_lag: int) -> np.ndarray:
    """Grid offsets (C,) maximising the sum of pair scores ``sum score_ab(o_b - o_a)``.

    Coordinate ascent (each camera's offset searched over the whole window given the others) from
    two starts, the reference's own pair peaks and a least-squares fit of every pair's peak; the
    better end point wins. Summing whole score curves, not only their peaks, lets the pairs that
    agree outvote a pair whose highest peak is a wrong one.
    """
    lags = np.arange(-max_lag, max_lag + 1)

    def curve(a: int, b: int, lag: np.ndarray) -> np.ndarray:  # score_ab at lags o_b - o_a
        s = curves[(a, b)] if a < b else curves[(b, a)]
        lag = lag if a < b else -lag
        ok = np.abs(lag) <= max_lag
        return np.where(ok, s[np.clip(lag + max_lag, 0, 2 * max_lag)], 0.0)

    def total(o: np.ndarray) -> float:
        return float(sum(curve(a, b, np.array(o[b] - o[a])) for a, b in curves))

    star = np.zeros(n_cams, dtype=np.int64)
    for c in range(n_cams):
        if c != ref and curve(ref, c, lags).max() > 0:
            star[c] = int(np.argmax(curve(ref, c, lags))) - max_lag
    peaks = [(a, b, float(np.argmax(s) - max_lag), float(s.max())) for (a, b), s in curves.items() if s.max() > 0]
    ls, connected, _ = combine_pair_lags(n_cams, peaks, ref)
    best, best_f = star, -1.0
    for start in (star, np.where(connected, np.rint(ls), star).astype(np.int64)):
        o = start.copy()
        for _ in range(10 * n_cams):
            moved = False
            for c in range(n_cams):
                if c == ref:
                    continue
                evidence = sum(curve(d, c, lags - o[d]) for d in range(n_cams) if d != c)
                k = int(np.argmax(evidence)) - max_lag
                if evidence[k + max_lag] > evidence[o[c] + max_lag] + 1e-12:
                    o[c], moved = k, True
            if not moved:
                break
        if total(o) > best_f:
            best, best_f = o, total(o)
    return best


def combine_pair_lags(
    n_cams: int, pairs: Sequence[tuple[int, int, float, float]], reference: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-camera offsets from pairwise lags by weighted least squares.

    Solves ``o_b - o_a = lag`` for every pair with weight ``w`` (rows scaled by ``sqrt(w)``) and
    ``o_reference = 0``, over the cameras the pairs connect to the reference.

    Args:
        n_cams: number of cameras C.
        pairs: (a, b, lag, weight) per camera pair, lag in any unit (seconds here); weight > 0.
        reference: index of the camera whose offset is 0.

    Returns:
        offsets (C,) in the lags' unit (0 for cameras not connected to the reference), connected
        (C,) bool, and (len(pairs),) residuals ``o_b - o_a - lag`` (0 for unconnected pairs).

    Raises:
        ShapeError: a camera index out of range or a weight not positive.

    Example:
        >>> offsets, connected, res = combine_pair_lags(3, [(0, 1, 0.1, 1.0), (1, 2, 0.2, 1.0), (0, 2, 0.3, 1.0)])
        >>> offsets.round(6).tolist(), connected.tolist(), np.abs(res).max() < 1e-9
        ([0.0, 0.1, 0.3], [True, True, True], np.True_)
    """
    for a, b, _, w in pairs:
        if not (0 <= a < n_cams and 0 <= b < n_cams and a != b) or not w > 0:
            raise ShapeError(
                f"pair ({a}, {b}) with weight {w}: indices must be distinct in 0..{n_cams - 1}, weight > 0"
            )
    if not 0 <= reference < n_cams:
        raise ShapeError(f"reference {reference} must be in 0..{n_cams - 1}")
    graph = nx.Graph()
    graph.add_nodes_from(range(n_cams))
    graph.add_edges_from((a, b) for a, b, _, _ in pairs)
    reach = nx.node_connected_component(graph, reference)
    cams = sorted(reach - {reference})
    col = {c: i for i, c in enumerate(cams)}
    offsets = np.zeros(n_cams)
    rows = [p for p in pairs if p[0] in reach]
    if cams:
        A = np.zeros((len(rows), len(cams)))
        rhs = np.zeros(len(rows))
        for i, (a, b, lag, w) in enumerate(rows):
            s = np.sqrt(w)
            for c, sign in ((b, s), (a, -s)):
                if c in col:
                    A[i, col[c]] += sign
            rhs[i] = s * lag
        offsets[cams] = np.linalg.lstsq(A, rhs, rcond=None)[0]
    res = np.array([offsets[b] - offsets[a] - lag if a in reach else 0.0 for a, b, lag, _ in pairs])
    return offsets, np.array([c in reach for c in range(n_cams)]), res.reshape(len(pairs))


def estimate_time_offsets(
    series: Mapping[str, PoseSeries],
    reference: str | None = None,
    max_offset_s: float = 2.0,
    step_s: float | None = None,
    min_conf: float = 0.3,
    cutoff_hz: float = 6.0,
    min_overlap_s: float = 0.5,
    min_peak: float = 0.05,
) -> TimeOffsets:
    """Clock offset of every camera relative to a reference, from the motion of the people it sees.

    Pair curves come from :func:`correlate_motion`; the grid offsets that maximise the sum of the
    pair scores are found by coordinate ascent; each pair's lag is then its correlation peak within
    one frame period of that consensus (refined below the grid step), and :func:`combine_pair_lags`
    fits the offsets to those lags, weighted by score. Pairs scoring below ``min_peak`` there are
    not used. Runs in about 0.5 s for 4 cameras x 100 frames, 5 s for 3 cameras x 60 s at 60 fps.

    Args:
        series: per camera name, its poses (at least 2 cameras); stamps on each camera's clock.
        reference: camera whose offset is 0; default the first.
        max_offset_s: offsets between any two cameras within +- this are searched, seconds.
        step_s: common grid step, seconds; default half the shortest median frame period.
        min_conf: joints below this confidence are missing.
        cutoff_hz: low-pass cutoff of joint positions, Hz.
        min_overlap_s: a joint of a tracklet pair needs this much common time at a lag, seconds.
        min_peak: pairs whose score at the consensus is lower are not used.

    Returns:
        The offsets, per-camera confidence and residual, and every pair's peak.

    Raises:
        ShapeError: fewer than 2 cameras, an unknown reference, or a non-positive option.
    """
    names = tuple(series)
    if len(names) < 2:
        raise ShapeError(f"need the poses of at least 2 cameras; got {len(names)}")
    ref = names[0] if reference is None else reference
    if ref not in names:
        raise ShapeError(f"reference camera {ref!r} is not one of {', '.join(names)}")
    if not (max_offset_s > 0 and cutoff_hz > 0 and min_overlap_s > 0):
        raise ShapeError("max_offset_s, cutoff_hz and min_overlap_s must be positive")
    periods = [float(np.median(np.diff(s.stamps_ns))) * 1e-9 for s in series.values() if s.n_frames >= 2]
    if not periods:
        raise ShapeError("every camera has fewer than 2 frames")
    step = min(periods) / 2 if step_s is None else float(step_s)
    if not step > 0:
        raise ShapeError(f"step_s must be positive; got {step_s}")
    t0_ns = min(int(s.stamps_ns[0]) for s in series.values() if s.n_frames)
    signals = [motion_signals(series[n], step, t0_ns, min_conf, cutoff_hz) for n in names]
    max_lag = int(np.ceil(max_offset_s / step))
    min_overlap = max(int(round(min_overlap_s / step)), 3)
    C, r = len(names), names.index(ref)
    curves = {
        (a, b): correlate_motion(signals[a], signals[b], max_lag, min_overlap)
        for a in range(C)
        for b in range(a + 1, C)
    }
    grid = _consensus({k: sc for k, (sc, _) in curves.items()}, C, r, max_lag)
    halfwidth = max(int(round(max(periods) / step)), 1)
    raw = []
    for (a, b), (score, corr) in curves.items():
        pos, peak, margin = _local_peak(score, corr, int(grid[b] - grid[a]) + max_lag, halfwidth)
        raw.append((a, b, (pos - max_lag) * step, peak, margin))
    good = [p for p in raw if p[3] >= min_peak]
    offsets, connected, res = combine_pair_lags(C, [(a, b, lag, pk) for a, b, lag, pk, _ in good], r)
    used = {(g[0], g[1]): float(e) for g, e in zip(good, res, strict=True) if connected[g[0]]}
    pairs = tuple(PairLag(a, b, lag, pk, mg, (a, b) in used) for a, b, lag, pk, mg in raw)
    conf, resid = np.zeros(C), np.zeros(C)
    for c in np.nonzero(connected)[0]:
        mine = [p for p in pairs if p.used and c in (p.a, p.b)]
        if mine:
            w = np.array([p.peak for p in mine])
            conf[c] = float((w * w).sum() / w.sum())
            resid[c] = float(np.sqrt(np.mean([used[(p.a, p.b)] ** 2 for p in mine])))
    for arr in (offsets, conf, resid):
        arr.setflags(write=False)
    return TimeOffsets(names, offsets, conf, resid, pairs, r)
