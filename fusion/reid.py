"""Re-identification of people who left every view for longer than a track is kept alive.

A confirmed track unseen for ``max_missed_s`` is deleted by the live tracker (:mod:`fusion.live`);
:class:`ReIdentifier` keeps its signature for ``reid_max_s`` after it was last seen: its bone lengths
(the running medians of :mod:`fusion.bones`, with their uncertainty), where it was, and optionally an
appearance descriptor (any vector per person, e.g. keypoint-guided colour histograms, compared by
cosine similarity). A new track that starts within reach of a kept signature (distance at most
``gate_m + reid_speed_mps * time away``) is *pending*: its frames are not published until it has
``REID_MIN_HITS`` detections and its own bone lengths; it is then matched against the kept
signatures, all pending tracks against all kept signatures at once by the Hungarian method (Kuhn
1955) among the compatible pairs, and a matched track takes the old id; an unmatched one keeps its
new id. A pair is compatible when:

- spatial plausibility: the distance is within the reach above;
- body shape: the squared Mahalanobis distance of the bone-length differences,
  ``sum_l (L_old - L_new)^2 / (s_old^2 + s_new^2 + s_sys^2)`` over the limbs both know, the worst
  quarter of them left out (trimmed: a joint misplaced in a few frames spoils two limbs), at least
  ``REID_MIN_LIMBS`` kept, is within the chi-square 99% quantile for that many degrees of freedom
  (``s`` the standard error of a median: ``1.2533 * MAD * 1.4826 / sqrt(n)``, at least
  ``BONE_SAMPLE_FLOOR_M / sqrt(n)``; ``s_sys`` = ``BONE_SYSTEMATIC_M`` for triangulation biases that
  differ between places in the room);
- appearance, when both have a descriptor: cosine similarity at least ``reid_min_cosine``.

The cost of a compatible pair is its shape distance per limb plus ``1 - cosine`` (when known). A
match must be confident: every other compatible pairing of either of its two sides costs at least
``AMBIGUITY_MARGIN`` more (two kept people of one shape and no appearance: no match, new ids). This
is the track-management idea of re-identifying "lost" tracks after an occlusion (OpenPTrack's
recovery of a lost track; Munaro & Menegatti 2014, *Fast RGB-D people tracking for service
robots*, Autonomous Robots 37(3)), with anthropometric rather than only appearance features
(bone lengths as a soft biometric: BenAbdelkader, Cutler & Davis 2002, *Person identification using
automatic height and stride estimation*, ICPR).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Final

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.special import chdtri

from core.errors import ShapeError
from fusion.live_tracks import TrackArrays

__all__ = [
    "AMBIGUITY_MARGIN",
    "BONE_SAMPLE_FLOOR_M",
    "BONE_SYSTEMATIC_M",
    "REID_MIN_HITS",
    "REID_MIN_LIMBS",
    "REID_MIN_SAMPLES",
    "ReIdentifier",
    "Signature",
    "bone_signature",
    "group_descriptors",
    "running_descriptors",
    "track_roots",
    "track_signatures",
]

REID_MIN_HITS: Final = 2
"""Detections a pending track needs before it is matched (its bone lengths need samples)."""
REID_MIN_LIMBS: Final = 4
"""Limbs both signatures must know (after trimming) for a body-shape comparison."""
REID_MIN_SAMPLES: Final = 2
"""Bone-length samples a limb needs to be part of a signature."""
BONE_SAMPLE_FLOOR_M: Final = 0.01
"""Smallest per-frame spread assumed for a bone length sample, metres."""
BONE_SYSTEMATIC_M: Final = 0.01
"""Standard deviation of a bone length's bias between two places in the room, metres."""
AMBIGUITY_MARGIN: Final = 1.0
"""A match is kept only if every other compatible pairing of either side costs this much more."""
_MAD_TO_STD: Final = 1.4826
_MEDIAN_SE: Final = 1.2533  # standard error of a median / that of a mean (sqrt(pi / 2))
_NS: Final = 1e-9
_DESC_RATE: Final = 0.2  # weight of a frame's descriptor in a person's running appearance
_BIG: Final = 1e9


@dataclass(slots=True)
class Signature:
    """What identifies N people: kept signatures of deleted tracks, or those of pending tracks.

    Attributes:
        ids: (N,) int64 track ids.
        last_ns: (N,) int64 last detection, nanoseconds.
        root: (N, 3) mean position of the person's known joints, metres, world frame.
        bone_len: (N, L) bone lengths, metres (NaN: unknown).
        bone_se: (N, L) their standard errors, metres (NaN: unknown).
        desc: (N, D) unit appearance descriptors (rows of zeros: none), or None.
    """

    ids: np.ndarray
    last_ns: np.ndarray
    root: np.ndarray
    bone_len: np.ndarray
    bone_se: np.ndarray
    desc: np.ndarray | None = None

    def take(self, idx: np.ndarray) -> Signature:
        """The signatures selected by ``idx`` (boolean mask or indices)."""
        return Signature(self.ids[idx], self.last_ns[idx], self.root[idx], self.bone_len[idx], self.bone_se[idx],
                         None if self.desc is None else self.desc[idx])  # fmt: skip


def bone_signature(buf: np.ndarray, count: np.ndarray, window: int, min_samples: int) -> tuple[np.ndarray, np.ndarray]:
    """Median bone lengths and their standard errors from sample buffers (:class:`fusion.bones.BoneModel`).

    Args:
        buf: (N, L, W) samples, metres (NaN: not filled).
        count: (N, L) samples written (may exceed W).
        window: W.
        min_samples: limbs with fewer samples are unknown (NaN).

    Returns:
        lengths (N, L) and standard errors (N, L), metres; NaN where unknown.

    Example:
        >>> buf = np.full((1, 1, 4), np.nan); buf[0, 0, :3] = [0.30, 0.31, 0.32]
        >>> [np.round(a, 4).tolist() for a in bone_signature(buf, np.array([[3]]), 4, 3)]
        [[[0.31]], [[0.0107]]]
    """
    n = np.minimum(count, window)
    ok = n >= max(min_samples, 1)
    with warnings.catch_warnings():  # all-NaN rows (limbs never measured) give NaN, as wanted
        warnings.simplefilter("ignore", RuntimeWarning)
        med = np.nanmedian(buf, axis=-1)
        mad = np.nanmedian(np.abs(buf - med[..., None]), axis=-1)
    spread = np.maximum(_MAD_TO_STD * np.nan_to_num(mad), BONE_SAMPLE_FLOOR_M)
    se = _MEDIAN_SE * spread / np.sqrt(np.maximum(n, 1))
    return np.where(ok, med, np.nan), np.where(ok, se, np.nan)


class ReIdentifier:
    """Kept signatures of deleted tracks, and the matching of new tracks against them.

    Args:
        keep_s: seconds after a person was last seen that its signature is kept (0: never kept).
        speed_mps: largest plausible walking speed while unseen, metres/second.
        gate_m: distance allowed on top of ``speed_mps`` times the time away, metres.
        min_cosine: smallest appearance cosine similarity of a match (when both have descriptors).

    Raises:
        ValueError: a negative time, speed or gate.
    """

    def __init__(self, keep_s: float, speed_mps: float, gate_m: float, min_cosine: float = 0.7):
        if min(keep_s, speed_mps, gate_m) < 0:
            raise ValueError(f"keep_s, speed_mps and gate_m must be >= 0; got {keep_s}, {speed_mps}, {gate_m}")
        self.keep_s, self.speed_mps, self.gate_m, self.min_cosine = keep_s, speed_mps, gate_m, min_cosine
        self.kept: Signature | None = None

    def __len__(self) -> int:
        return 0 if self.kept is None else len(self.kept.ids)

    def keep(self, sig: Signature) -> None:
        """Keep the signatures of deleted tracks (nothing when ``keep_s`` is 0)."""
        if self.keep_s <= 0 or not len(sig.ids):
            return
        if self.kept is None:
            self.kept = sig
            return
        k = self.kept
        desc = None
        if k.desc is not None or sig.desc is not None:
            d = max(0 if k.desc is None else k.desc.shape[1], 0 if sig.desc is None else sig.desc.shape[1])
            desc = np.concatenate([_pad(k.desc, len(k.ids), d), _pad(sig.desc, len(sig.ids), d)])
        self.kept = Signature(*(np.concatenate([getattr(k, f), getattr(sig, f)])
                                for f in ("ids", "last_ns", "root", "bone_len", "bone_se")), desc)  # fmt: skip

    def forget_older(self, stamp_ns: int) -> None:
        """Drop signatures last seen more than ``keep_s`` before ``stamp_ns``."""
        if self.kept is not None and len(self.kept.ids):
            self.kept = self.kept.take((stamp_ns - self.kept.last_ns) * _NS <= self.keep_s)

    def reachable(self, root: np.ndarray, stamp_ns: int) -> np.ndarray:
        """(N, K) bool: kept signature k could have walked to each of N positions (N, 3) by ``stamp_ns``."""
        if not len(self):
            return np.zeros((root.shape[0], 0), bool)
        k = self.kept
        away = np.maximum((stamp_ns - k.last_ns) * _NS, 0.0)
        dist = np.linalg.norm(root[:, None] - k.root[None], axis=-1)
        return (dist <= self.gate_m + self.speed_mps * away) & (away <= self.keep_s)

    def match(self, new: Signature, stamp_ns: int) -> np.ndarray:
        """Match pending tracks to kept signatures (see the module docstring); matched ones are removed.

        Args:
            new: the pending tracks' signatures (N).
            stamp_ns: now, nanoseconds.

        Returns:
            (N,) int64 the kept id each pending track takes, 0 for none.

        Raises:
            ShapeError: bone lengths of another skeleton.
        """
        out = np.zeros(len(new.ids), np.int64)
        if not len(self) or not len(new.ids):
            return out
        k = self.kept
        if new.bone_len.shape[1] != k.bone_len.shape[1]:
            raise ShapeError(f"bone lengths of {k.bone_len.shape[1]} limbs expected; got {new.bone_len.shape[1]}")
        ok = self.reachable(new.root, stamp_ns)  # (N, K)
        diff2 = (new.bone_len[:, None] - k.bone_len[None]) ** 2
        var = new.bone_se[:, None] ** 2 + k.bone_se[None] ** 2 + BONE_SYSTEMATIC_M**2
        both = np.isfinite(diff2) & np.isfinite(var)
        # Trimmed: the worst quarter of the common limbs is left out (a joint misplaced in the first
        # frames of a return, e.g. at the edge of the views, spoils its two limbs only).
        d2 = np.sort(np.where(both, diff2 / np.where(both, var, 1.0), np.inf), axis=-1)  # unknown last
        n_limbs = both.sum(axis=-1) - both.sum(axis=-1) // 4
        d2 = np.where(np.arange(d2.shape[-1]) < n_limbs[..., None], d2, 0.0).sum(axis=-1)
        ok &= (n_limbs >= REID_MIN_LIMBS) & (d2 <= chdtri(np.maximum(n_limbs, 1), 0.01))
        cost = d2 / np.maximum(n_limbs, 1)
        if new.desc is not None and k.desc is not None:
            d = min(new.desc.shape[1], k.desc.shape[1])
            has = (np.abs(new.desc[:, :d]).sum(1)[:, None] > 0) & (np.abs(k.desc[:, :d]).sum(1)[None] > 0)
            cos = new.desc[:, :d] @ k.desc[:, :d].T
            ok &= ~has | (cos >= self.min_cosine)
            cost = cost + np.where(has, 1.0 - cos, 0.0)
        if not ok.any():
            return out
        r, c = linear_sum_assignment(np.where(ok, cost, _BIG))
        good = ok[r, c]
        # Confident only: every other compatible pairing of either side costs clearly more.
        alt = np.where(ok, cost, np.inf)
        alt[r, c] = np.inf
        good &= cost[r, c] + AMBIGUITY_MARGIN < np.minimum(alt[r].min(axis=1), alt[:, c].min(axis=0))
        out[r[good]] = k.ids[c[good]]
        self.kept = k.take(~np.isin(np.arange(len(k.ids)), c[good]))
        return out


def _pad(desc: np.ndarray | None, n: int, d: int) -> np.ndarray:
    """(n, d) descriptors, zero-padded (zeros for none)."""
    out = np.zeros((n, d))
    if desc is not None:
        out[:, : desc.shape[1]] = desc
    return out


def running_descriptors(store: dict[int, np.ndarray], ids: np.ndarray, desc: np.ndarray) -> None:
    """Update each person's running unit appearance descriptor (exponential mean, rate 0.2), in place.

    Args:
        store: track id -> (D,) unit descriptor (modified).
        ids: (N,) track ids.
        desc: (N, D) this frame's descriptors; rows of zeros are none.
    """
    norm = np.linalg.norm(desc, axis=1)
    for i, v, n in zip(np.asarray(ids).tolist(), desc, norm.tolist(), strict=True):
        if n <= 0:
            continue
        v = v / n
        prev = store.get(int(i))
        if prev is not None and prev.shape == v.shape:
            v = (1.0 - _DESC_RATE) * prev + _DESC_RATE * v
            v /= max(float(np.linalg.norm(v)), 1e-12)
        store[int(i)] = v


def track_roots(x: np.ndarray, active: np.ndarray) -> np.ndarray:
    """(N, 3) mean position of each track's initialised joints, metres (x (N, J, 6), active (N, J) bool)."""
    n = np.maximum(active.sum(axis=1), 1)[:, None]
    return (x[..., :3] * active[..., None]).sum(axis=1) / n


def track_signatures(t: TrackArrays, idx: np.ndarray, window: int, desc: dict[int, np.ndarray]) -> Signature:
    """Signatures of the live tracker's tracks ``idx`` (:class:`fusion.live_tracks.TrackArrays`).

    Args:
        t: the tracks.
        idx: (N,) track indices.
        window: bone sample buffer length (``BoneModel.window``).
        desc: track id -> running unit appearance descriptor (:func:`running_descriptors`).

    Returns:
        :class:`Signature`: bone lengths from limbs with :data:`REID_MIN_SAMPLES` samples, the mean
        position of the known joints, descriptors (zeros where a track has none; None when no track has).
    """
    lengths, se = bone_signature(t.bone_buf[idx], t.bone_n[idx], window, REID_MIN_SAMPLES)
    ids = t.ids[idx].copy()
    d = None
    if desc:
        d = np.zeros((len(ids), max(v.shape[0] for v in desc.values())))
        for r, v in enumerate(desc.get(i) for i in ids.tolist()):
            if v is not None:
                d[r, : v.shape[0]] = v
    return Signature(ids, t.last_ns[idx].copy(), track_roots(t.x[idx], t.active[idx]), lengths, se, d)


def group_descriptors(
    groups: list[tuple[tuple[int, int], ...]], descriptors: list[np.ndarray | None] | None
) -> np.ndarray | None:
    """Each matched group's appearance: the unit mean of its views' descriptors.

    Args:
        groups: per group, its (view, detection) pairs.
        descriptors: per view, (P_c, D) descriptors of its detections, or None (the view has none);
            None when no view has any.

    Returns:
        (G, D) unit rows (zeros for a group with no descriptor), or None when no view has descriptors.
    """
    if descriptors is None or all(d is None for d in descriptors):
        return None
    dim = next(d.shape[1] for d in descriptors if d is not None)
    out = np.zeros((len(groups), dim))
    for g, members in enumerate(groups):
        for c, i in members:
            if descriptors[c] is not None:
                out[g] += descriptors[c][i]
    norm = np.linalg.norm(out, axis=1, keepdims=True)
    return np.divide(out, norm, out=np.zeros_like(out), where=norm > 0)
