"""Identity metrics of 3D multi-person tracking (CLEAR MOT, IDF1) and jitter.

- :func:`identity_metrics`: each frame's predicted people are matched to the ground-truth people by
  the mean distance of their joints, at most ``threshold_m`` (0.5 m by default: VoxelPose's
  recall@500 mm criterion on Shelf, Campus and Panoptic), and scored by py-motmetrics (Heindl,
  ``cheind/py-motmetrics``, MIT): MOTA, MOTP and identity switches as defined by CLEAR MOT (Bernardin
  & Stiefelhagen 2008, *Evaluating multiple object tracking performance: the CLEAR MOT metrics*,
  EURASIP JIVP, §2.1-2.2: per frame, keep last frame's matches still within the threshold, then
  the Hungarian method on the rest), fragmentations (Li, Huang & Nevatia, CVPR 2009), and IDF1 (Ristani
  et al. 2016, *Performance measures and a data set for multi-target, multi-camera tracking*, ECCV
  workshops, §4: one global truth-to-prediction identity assignment over the whole sequence). Per
  ground-truth actor it also lists the prediction ids matched to it: one id while the actor is
  visible is the goal.
- :func:`jitter`: mean joint acceleration magnitude, metres/second^2, by second differences over
  consecutive frames of each track (a smooth, physically plausible track has a small one; the
  ground truth's own gives the scale of real motion).

Layout of a sequence (as the benchmarks' ``SequenceRun`` holds it): ``poses`` ``{frame: (P, J, C)}``
and ``ids`` ``{frame: (P,)}``, rows in the same order; frames are integers, consecutive frames one
frame period ``dt_s`` apart.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import motmetrics as mm
import numpy as np

from core.errors import ShapeError

__all__ = [
    "DEFAULT_THRESHOLD_M",
    "IdentityMetrics",
    "Jitter",
    "Visit",
    "identity_metrics",
    "jitter",
    "mean_joint_distances",
    "sequence_from_tracks",
]

DEFAULT_THRESHOLD_M: float = 0.5
"""Largest mean joint distance of a prediction matched to a ground-truth person, metres."""

_MM_METRICS = (
    "num_objects",
    "num_detections",
    "num_misses",
    "num_false_positives",
    "num_switches",
    "num_fragmentations",
    "mota",
    "motp",
    "idf1",
    "idp",
    "idr",
)


@dataclass(frozen=True, slots=True)
class Visit:
    """One stretch of frames in which a ground-truth actor is visible, and the ids it was given.

    Attributes:
        actor: ground-truth actor id.
        first_frame: first frame of the stretch.
        last_frame: last frame of the stretch.
        ids: prediction ids matched to the actor in the stretch, in order of first use.
        missed: frames of the stretch (with ground truth) without a match.
    """

    actor: int
    first_frame: int
    last_frame: int
    ids: tuple[int, ...]
    missed: int

    def as_dict(self) -> dict:
        """JSON-ready dictionary."""
        return {"actor": self.actor, "frames": [self.first_frame, self.last_frame], "ids": list(self.ids),
                "missed": self.missed}  # fmt: skip


@dataclass(frozen=True, slots=True)
class IdentityMetrics:
    """CLEAR MOT and identity scores of a tracked sequence (:func:`identity_metrics`).

    Attributes:
        mota: multiple object tracking accuracy, 1 - (misses + false positives + switches) / n_gt.
        motp_m: mean joint distance of the matched pairs, metres (CLEAR MOT's MOTP as a distance).
        idf1: identity F1 (2 IDTP / (2 IDTP + IDFP + IDFN)), in [0, 1].
        idp: identity precision, in [0, 1].
        idr: identity recall, in [0, 1].
        id_switches: frames where an actor is matched to another prediction id than the last one.
        fragmentations: times an actor's matched trajectory is interrupted (matched, then missed).
        misses: unmatched ground-truth actor-frames.
        false_positives: unmatched predictions (not counting ignored ones).
        n_gt: ground-truth actor-frames scored.
        n_matches: matched actor-frames.
        n_ignored: predictions left out because they lie farther than the threshold from every
            ground-truth actor of their frame (only with ``ignore_unmatched``).
        n_frames: frames scored.
        threshold_m: the matching threshold, metres.
        ids_per_actor: per ground-truth actor, the prediction ids matched to it, in order of first use.
        missed_per_actor: per ground-truth actor, its frames without a match.
        switch_frames: per ground-truth actor, the frames of its identity switches.
        visits: per actor, its stretches of visibility (split where it is absent from the ground
            truth for more than ``visit_gap_frames``), in actor then time order.
    """

    mota: float
    motp_m: float
    idf1: float
    idp: float
    idr: float
    id_switches: int
    fragmentations: int
    misses: int
    false_positives: int
    n_gt: int
    n_matches: int
    n_ignored: int
    n_frames: int
    threshold_m: float
    ids_per_actor: dict[int, tuple[int, ...]]
    missed_per_actor: dict[int, int]
    switch_frames: dict[int, tuple[int, ...]]
    visits: tuple[Visit, ...] = ()

    @property
    def one_id_per_actor(self) -> bool:
        """True if every ground-truth actor matched at most one prediction id over the sequence."""
        return all(len(v) <= 1 for v in self.ids_per_actor.values())

    @property
    def one_id_per_visit(self) -> bool:
        """True if every actor matched at most one prediction id within each of its visits."""
        return all(len(v.ids) <= 1 for v in self.visits)

    def as_dict(self) -> dict:
        """JSON-ready dictionary (rounded; actor keys as strings)."""
        return {
            "threshold_m": self.threshold_m,
            "mota": round(self.mota, 4),
            "motp_m": round(self.motp_m, 4),
            "idf1": round(self.idf1, 4),
            "idp": round(self.idp, 4),
            "idr": round(self.idr, 4),
            "id_switches": self.id_switches,
            "fragmentations": self.fragmentations,
            "misses": self.misses,
            "false_positives": self.false_positives,
            "gt_actor_frames": self.n_gt,
            "matches": self.n_matches,
            "ignored_predictions": self.n_ignored,
            "frames": self.n_frames,
            "one_id_per_actor": self.one_id_per_actor,
            "one_id_per_visit": self.one_id_per_visit,
            "ids_per_actor": {str(a): list(v) for a, v in self.ids_per_actor.items()},
            "missed_per_actor": {str(a): n for a, n in self.missed_per_actor.items()},
            "switch_frames": {str(a): list(v) for a, v in self.switch_frames.items()},
            "visits": [v.as_dict() for v in self.visits],
        }


@dataclass(frozen=True, slots=True)
class Jitter:
    """Joint acceleration magnitudes of a sequence's tracks (:func:`jitter`).

    Attributes:
        mean_mps2: mean magnitude, metres/second^2 (0 when there is no sample).
        p95_mps2: 95th percentile, metres/second^2 (0 when there is no sample).
        n_samples: joint-frames measured (a joint valid in three consecutive frames of one track).
    """

    mean_mps2: float
    p95_mps2: float
    n_samples: int

    def as_dict(self) -> dict:
        """JSON-ready dictionary (rounded)."""
        return {"mean_mps2": round(self.mean_mps2, 3), "p95_mps2": round(self.p95_mps2, 3), "samples": self.n_samples}


def _as_poses(poses: object, what: str, n_joints: int | None = None) -> np.ndarray:
    arr = np.asarray(poses, dtype=np.float64)
    if arr.size == 0:
        return np.zeros((0, n_joints if n_joints is not None else (arr.shape[1] if arr.ndim == 3 else 0), 3))
    if arr.ndim != 3 or arr.shape[2] < 3 or (n_joints is not None and arr.shape[1] != n_joints):
        want = "J" if n_joints is None else str(n_joints)
        raise ShapeError(f"{what} must be (P, {want}, >=3); got {arr.shape}")
    return arr


def _valid(poses: np.ndarray) -> np.ndarray:
    """(P, J) bool: conf > 0 with a confidence column, else every joint."""
    return poses[..., 3] > 0 if poses.shape[-1] >= 4 else np.ones(poses.shape[:2], dtype=bool)


def mean_joint_distances(gt: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Mean Euclidean joint distance between every ground-truth and every predicted pose.

    Convention: with a confidence column (C >= 4) a joint of confidence 0 is missing; a pair is
    compared on the joints valid in both, and a pair with no such joint gets NaN (never matched).

    Args:
        gt: (G, J, C>=3) ground-truth poses, metres.
        pred: (P, J, C>=3) predicted poses, same joints, metres.

    Returns:
        (G, P) mean joint distances, metres; NaN where no joint is valid in both.

    Raises:
        ShapeError: the arrays are not (N, J, >=3) with the same J.

    Example:
        >>> g = np.zeros((1, 2, 3)); p = np.zeros((2, 2, 4)); p[..., 3] = 1
        >>> p[1, :, 0] = [0.3, 0.5]; p[0, 1, 3] = 0
        >>> mean_joint_distances(g, p).tolist()
        [[0.0, 0.4]]
    """
    g, p = _as_poses(gt, "gt"), _as_poses(pred, "pred")
    if g.shape[1] != p.shape[1] and g.shape[0] and p.shape[0]:
        raise ShapeError(f"gt and pred must have the same joints; got {g.shape[1]} and {p.shape[1]}")
    if g.shape[0] == 0 or p.shape[0] == 0:
        return np.zeros((g.shape[0], p.shape[0]))
    both = _valid(g)[:, None] & _valid(p)[None]  # (G, P, J)
    d = np.linalg.norm(g[:, None, :, :3] - p[None, :, :, :3], axis=-1)
    n = both.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, np.where(both, d, 0.0).sum(axis=-1) / n, np.nan)


def identity_metrics(
    gt: Mapping[int, Mapping[int, np.ndarray]],
    poses: Mapping[int, np.ndarray],
    ids: Mapping[int, np.ndarray],
    frames: Iterable[int],
    threshold_m: float = DEFAULT_THRESHOLD_M,
    ignore_unmatched: bool = False,
    visit_gap_frames: int | float = float("inf"),
) -> IdentityMetrics:
    """MOTA, MOTP, IDF1, identity switches and fragmentations of a 3D multi-person sequence.

    Per frame of ``frames``, every ground-truth actor present and every prediction are compared by
    :func:`mean_joint_distances`; pairs farther than ``threshold_m`` cannot match. py-motmetrics'
    ``MOTAccumulator`` then applies CLEAR MOT (Bernardin & Stiefelhagen 2008): a match of the previous
    frame that is still within the threshold is kept, the rest is assigned by the Hungarian method
    minimising total distance; an actor matched to another id than at its last match is a switch
    (also across frames where it is missed or not annotated). IDF1 (Ristani et al. 2016) comes from
    one assignment of ground-truth to prediction ids over the whole sequence.

    Convention: with ``ignore_unmatched``, a prediction farther than ``threshold_m`` from every
    ground-truth actor of its frame is left out (counted in ``n_ignored``), for ground truth that
    leaves visible people unannotated (Shelf): false positives then count only predictions near an
    annotated actor that another prediction already matches (duplicates).

    Args:
        gt: ``{actor: {frame: (J, C>=3) pose}}`` metres; a frame missing for an actor means it is
            not visible there.
        poses: ``{frame: (P, J, C>=3) poses}`` predictions, metres, same joints as ``gt`` (with
            C >= 4 a joint of confidence 0 is missing); a frame missing means no prediction.
        ids: ``{frame: (P,) int}`` track id of each row of ``poses[frame]``.
        frames: frames to score, in time order.
        threshold_m: largest mean joint distance of a match, metres.
        ignore_unmatched: leave out predictions far from every annotated actor (see Convention).
        visit_gap_frames: an actor absent from the ground truth for more than this many consecutive
            frames starts a new :class:`Visit` (default: one visit per actor, for ground truth whose
            gaps are unannotated frames, not absences).

    Returns:
        The :class:`IdentityMetrics`.

    Raises:
        ShapeError: poses not (P, J, >=3), ids not (P,), or joints differing from the ground truth.
        ValueError: ``threshold_m`` not positive or ``visit_gap_frames`` negative.

    Example:
        >>> g = {0: {0: np.zeros((2, 3)), 1: np.zeros((2, 3))}}
        >>> p = {0: np.zeros((1, 2, 3)), 1: np.zeros((1, 2, 3))}
        >>> m = identity_metrics(g, p, {0: np.array([7]), 1: np.array([8])}, [0, 1])
        >>> m.mota, m.id_switches, m.ids_per_actor
        (0.5, 1, {0: (7, 8)})
    """
    if not threshold_m > 0:
        raise ValueError(f"threshold_m must be positive; got {threshold_m!r}")
    if not visit_gap_frames >= 0:
        raise ValueError(f"visit_gap_frames must be >= 0; got {visit_gap_frames!r}")
    frames = list(frames)
    actors = sorted(gt)
    acc = mm.MOTAccumulator(auto_id=False)
    n_ignored = 0
    for f in frames:
        present = [a for a in actors if f in gt[a]]
        g = np.stack([np.asarray(gt[a][f], dtype=np.float64) for a in present]) if present else None
        p = _as_poses(poses.get(f, np.zeros((0, 0, 3))), f"poses of frame {f}", None if g is None else g.shape[1])
        h = np.asarray(ids.get(f, np.zeros(0, np.int64)), dtype=np.int64).reshape(-1)
        if h.shape != (p.shape[0],):
            raise ShapeError(f"ids of frame {f} must be ({p.shape[0]},); got {h.shape}")
        d = mean_joint_distances(g, p) if g is not None else np.zeros((0, p.shape[0]))
        d = np.where(d <= threshold_m, d, np.nan)  # NaN: cannot match (motmetrics' convention)
        if ignore_unmatched:
            keep = ~np.all(np.isnan(d), axis=0)
            n_ignored += int((~keep).sum())
            d, h = d[:, keep], h[keep]
        acc.update(present, h.tolist(), d, frameid=f)
    s = mm.metrics.create().compute(acc, metrics=list(_MM_METRICS), name="seq").iloc[0]
    ev = acc.mot_events
    ev = ev.assign(frame=ev.index.get_level_values(0))
    matched = ev[ev.Type.isin(["MATCH", "SWITCH"])]
    ids_per_actor: dict[int, tuple[int, ...]] = {}
    missed: dict[int, int] = {}
    switches: dict[int, tuple[int, ...]] = {}
    visits: list[Visit] = []
    for a in actors:
        seen = sorted(f for f in set(frames) if f in gt[a])
        if not seen:
            continue
        mine = matched[matched.OId == a]
        hyp, hyp_frames = [int(x) for x in mine.HId], mine.frame.to_numpy()
        ids_per_actor[a] = tuple(dict.fromkeys(hyp))
        missed[a] = int(((ev.Type == "MISS") & (ev.OId == a)).sum())
        switches[a] = tuple(int(f) for f in ev.frame[(ev.Type == "SWITCH") & (ev.OId == a)])
        split = (
            [0] + [i + 1 for i in range(len(seen) - 1) if seen[i + 1] - seen[i] - 1 > visit_gap_frames] + [len(seen)]
        )
        for i0, i1 in zip(split[:-1], split[1:], strict=True):
            first, last = seen[i0], seen[i1 - 1]
            inside = (hyp_frames >= first) & (hyp_frames <= last)
            here = tuple(dict.fromkeys(h for h, k in zip(hyp, inside, strict=True) if k))
            visits.append(Visit(a, first, last, here, (i1 - i0) - int(inside.sum())))
    n_gt = int(s["num_objects"])
    return IdentityMetrics(
        mota=float(s["mota"]) if n_gt else 0.0,
        motp_m=float(s["motp"]) if int(s["num_detections"]) else 0.0,
        idf1=float(np.nan_to_num(s["idf1"])),
        idp=float(np.nan_to_num(s["idp"])),
        idr=float(np.nan_to_num(s["idr"])),
        id_switches=int(s["num_switches"]),
        fragmentations=int(s["num_fragmentations"]),
        misses=int(s["num_misses"]),
        false_positives=int(s["num_false_positives"]),
        n_gt=n_gt,
        n_matches=int(s["num_detections"]),
        n_ignored=n_ignored,
        n_frames=len(frames),
        threshold_m=float(threshold_m),
        ids_per_actor=ids_per_actor,
        missed_per_actor=missed,
        switch_frames=switches,
        visits=tuple(visits),
    )


def sequence_from_tracks(tracks: Mapping[int, Mapping[int, np.ndarray]]) -> tuple[dict, dict]:
    """Per-track layout ``{id: {frame: (J, C)}}`` (e.g. ground truth) to ``(poses, ids)`` per frame.

    Args:
        tracks: ``{track_id: {frame: (J, C>=3) pose}}``, metres.

    Returns:
        ``({frame: (P, J, C) poses}, {frame: (P,) int64 ids})``, frames and rows sorted.

    Example:
        >>> poses, ids = sequence_from_tracks({4: {0: np.zeros((2, 3))}, 2: {0: np.ones((2, 3))}})
        >>> poses[0].shape, ids[0].tolist()
        ((2, 2, 3), [2, 4])
    """
    frames = sorted({f for t in tracks.values() for f in t})
    poses, ids = {}, {}
    for f in frames:
        here = sorted(k for k in tracks if f in tracks[k])
        poses[f] = np.stack([np.asarray(tracks[k][f], dtype=np.float64) for k in here])
        ids[f] = np.array(here, dtype=np.int64)
    return poses, ids


def jitter(poses: Mapping[int, np.ndarray], ids: Mapping[int, np.ndarray], dt_s: float) -> Jitter:
    """Mean joint acceleration magnitude over consecutive frames of each track.

    For a track present in frames f-1, f and f+1, each joint valid in all three (confidence > 0 with
    a confidence column) gives |x(f+1) - 2 x(f) + x(f-1)| / dt_s^2 (the central second difference).

    Args:
        poses: ``{frame: (P, J, C>=3) poses}``, metres.
        ids: ``{frame: (P,) int}`` track id of each row.
        dt_s: time between consecutive frames, seconds.

    Returns:
        The :class:`Jitter` (mean and 95th percentile, metres/second^2).

    Raises:
        ShapeError: poses not (P, J, >=3) or ids not (P,).
        ValueError: ``dt_s`` not positive.

    Example:
        >>> p = {f: np.array([[[0.5 * 2.0 * (f * 0.1) ** 2, 0.0, 0.0]]]) for f in range(4)}
        >>> round(jitter(p, {f: np.array([1]) for f in range(4)}, 0.1).mean_mps2, 6)
        2.0
    """
    if not dt_s > 0:
        raise ValueError(f"dt_s must be positive; got {dt_s!r}")
    by_track: dict[int, dict[int, np.ndarray]] = {}
    for f in sorted(poses):
        p = _as_poses(poses[f], f"poses of frame {f}")
        h = np.asarray(ids.get(f, np.zeros(0, np.int64))).reshape(-1)
        if h.shape != (p.shape[0],):
            raise ShapeError(f"ids of frame {f} must be ({p.shape[0]},); got {h.shape}")
        for k, row in zip(h.tolist(), p, strict=True):
            by_track.setdefault(int(k), {})[f] = row
    acc: list[np.ndarray] = []
    for rows in by_track.values():
        fs = np.array(sorted(rows))
        if fs.size < 3:
            continue
        x = np.stack([rows[f] for f in fs.tolist()])  # (N, J, C)
        ok = _valid(x)
        mid = np.nonzero((fs[1:-1] - fs[:-2] == 1) & (fs[2:] - fs[1:-1] == 1))[0] + 1
        if mid.size == 0:
            continue
        a = (x[mid + 1, :, :3] - 2.0 * x[mid, :, :3] + x[mid - 1, :, :3]) / dt_s**2
        both = ok[mid - 1] & ok[mid] & ok[mid + 1]
        acc.append(np.linalg.norm(a, axis=-1)[both])
    mags = np.concatenate(acc) if acc else np.zeros(0)
    if mags.size == 0:
        return Jitter(0.0, 0.0, 0)
    return Jitter(float(mags.mean()), float(np.percentile(mags, 95)), int(mags.size))
