"""The field's 3D multi-person pose metrics, each a line-by-line port of the code that defines it.

- :func:`pcp_voxelpose`: Shelf/Campus PCP as computed by VoxelPose (Tu et al., ECCV 2020,
  microsoft/voxelpose-pytorch ``lib/dataset/shelf.py`` and ``campus.py`` ``evaluate``), also used by
  MvP and Faster VoxelPose. Shelf and Campus are Belagiannis et al. (CVPR 2014).
- :func:`pcp_crossview`: the PCP of Chen et al. (CVPR 2020, longcw/crossview_3d_pose_tracking
  ``evaluate.py``), itself derived from mvpose (Dong et al. CVPR 2019, ``src/m_utils/evaluate.py``).
- :func:`mpjpe_voxelpose`: CMU Panoptic (Joo et al.) AP/recall/MPJPE of VoxelPose
  ``lib/dataset/panoptic.py`` ``evaluate``.

Inputs are metres (PCP is scale-free; the 500 mm recall threshold and MPJPE are converted).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np

from capture.benchmarks.datasets import PANOPTIC15, PANOPTIC_EVAL_JOINTS, SHELF14
from core.errors import ShapeError

__all__ = [
    "BONE_GROUPS",
    "CAMPUS_FRAMES",
    "CROSSVIEW_SHELF_FRAMES",
    "MPJPEResult",
    "PART_NAMES",
    "PCPResult",
    "SHELF_FRAMES",
    "mpjpe_voxelpose",
    "pcp_crossview",
    "pcp_voxelpose",
]

SHELF_FRAMES: Final[tuple[int, ...]] = tuple(range(300, 601))
"""Shelf test frames of VoxelPose/MvP/Faster VoxelPose: 300-600 inclusive (301 frames)."""
CROSSVIEW_SHELF_FRAMES: Final[tuple[int, ...]] = tuple(range(300, 600))
"""Shelf test frames of mvpose and Chen et al.: ``range(300, 600)``, 300-599 (300 frames)."""
CAMPUS_FRAMES: Final[tuple[int, ...]] = tuple(range(350, 471)) + tuple(range(650, 751))
"""Campus test frames of every codebase above: 350-470 and 650-750 inclusive (222 frames)."""

_S = {n: i for i, n in enumerate(SHELF14)}
_LIMB_NAMES: Final = (
    ("right_lower_leg", "right_ankle", "right_knee"),
    ("right_upper_leg", "right_knee", "right_hip"),
    ("left_upper_leg", "left_hip", "left_knee"),
    ("left_lower_leg", "left_knee", "left_ankle"),
    ("right_lower_arm", "right_wrist", "right_elbow"),
    ("right_upper_arm", "right_elbow", "right_shoulder"),
    ("left_upper_arm", "left_shoulder", "left_elbow"),
    ("left_lower_arm", "left_elbow", "left_wrist"),
    ("head", "bottom_head", "top_head"),
)
_LIMBS: Final = np.array([(_S[a], _S[b]) for _, a, b in _LIMB_NAMES])
"""The 9 limbs, Shelf-14 indices ``[[0,1],[1,2],[3,4],[4,5],[6,7],[7,8],[9,10],[10,11],[12,13]]``."""
_R_HIP, _L_HIP, _NECK = _S["right_hip"], _S["left_hip"], _S["bottom_head"]

PART_NAMES: Final[tuple[str, ...]] = tuple(n for n, _, _ in _LIMB_NAMES) + ("torso",)
"""The 10 scored parts: the 9 limbs, then the torso (mid-hip to bottom-head)."""

BONE_GROUPS: Final[tuple[tuple[str, tuple[int, ...]], ...]] = (
    ("Head", (8,)),
    ("Torso", (9,)),
    ("Upper arms", (5, 6)),
    ("Lower arms", (4, 7)),
    ("Upper legs", (1, 2)),
    ("Lower legs", (0, 3)),
)
"""Part groups of the published tables (indices into :data:`PART_NAMES`), as in all three sources."""

_ALPHA: Final = 0.5
_PANOPTIC_ROOT: Final = PANOPTIC15.index("mid_hip")
_PANOPTIC_CONF: Final = 0.1
_AP_THRESHOLDS_MM: Final = np.arange(25, 155, 25)
_RECALL_MM: Final = 500.0


@dataclass(frozen=True, slots=True)
class PCPResult:
    """Percentage of correct parts per actor.

    Attributes:
        protocol: ``"voxelpose"`` or ``"crossview"``.
        actor_ids: ground-truth actor ids, in row order.
        correct: (A, 10) int64 correct counts per actor and part (:data:`PART_NAMES`).
        n_evaluated: (A,) int64 actor-frames scored (frames where the actor has ground truth).
        averaged_actors: ids whose PCPs are averaged into :attr:`average`.
        n_frames: frames in the evaluated range.
        recall_500: VoxelPose's "recall@500 mm" (fraction of ground-truth actor-frames whose closest
            prediction has mean joint error < 500 mm); None for protocols without it.
    """

    protocol: str
    actor_ids: tuple[int, ...]
    correct: np.ndarray
    n_evaluated: np.ndarray
    averaged_actors: tuple[int, ...]
    n_frames: int
    recall_500: float | None = None

    def __post_init__(self) -> None:
        a = len(self.actor_ids)
        for name, arr, shape in (
            ("correct", self.correct, (a, len(PART_NAMES))),
            ("n_evaluated", self.n_evaluated, (a,)),
        ):
            arr = np.asarray(arr, dtype=np.int64)
            if arr.shape != shape:
                raise ShapeError(f"{name} must be {shape}; got {arr.shape}")
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        if not set(self.averaged_actors) <= set(self.actor_ids):
            raise ValueError(f"averaged_actors {self.averaged_actors} not among {self.actor_ids}")

    @property
    def part_pcp(self) -> np.ndarray:
        """(A, 10) fraction of correct parts per actor and part; 0 for an actor never scored."""
        return self.correct / np.maximum(self.n_evaluated, 1)[:, None]

    @property
    def actor_pcp(self) -> np.ndarray:
        """(A,) fraction of correct parts per actor, all frames and parts pooled."""
        return self.part_pcp.mean(axis=1)

    @property
    def group_pcp(self) -> np.ndarray:
        """(A, 6) PCP per actor and :data:`BONE_GROUPS` group (Head, Torso, Upper arms, ...)."""
        return np.stack([self.part_pcp[:, list(idx)].mean(axis=1) for _, idx in BONE_GROUPS], axis=1)

    @property
    def average(self) -> float:
        """Mean of :attr:`actor_pcp` over :attr:`averaged_actors` (the number papers report)."""
        rows = [self.actor_ids.index(a) for a in self.averaged_actors]
        return float(self.actor_pcp[rows].mean()) if rows else 0.0

    def summary(self) -> str:
        """A plain-text table in percent: groups x actors, then the per-actor total and average."""
        head = f"PCP ({self.protocol} protocol, {self.n_frames} frames)"
        lines = [head, "group       " + "".join(f"  actor {a:<3d}" for a in self.actor_ids)]
        for g, (name, _) in enumerate(BONE_GROUPS):
            lines.append(f"{name:<12s}" + "".join(f"  {100 * v:9.2f}" for v in self.group_pcp[:, g]))
        lines.append(f"{'Total':<12s}" + "".join(f"  {100 * v:9.2f}" for v in self.actor_pcp))
        lines.append(f"average of actors {list(self.averaged_actors)}: {100 * self.average:.2f}")
        if self.recall_500 is not None:
            lines.append(f"recall@500mm: {100 * self.recall_500:.2f}")
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class MPJPEResult:
    """CMU Panoptic metrics of VoxelPose.

    Attributes:
        thresholds_mm: (6,) AP thresholds 25, 50, ..., 150 mm.
        ap: (6,) average precision at each threshold, in [0, 1].
        recall: (6,) recall at each threshold (VoxelPose's ``recs``), in [0, 1].
        mpjpe_mm: mean per-joint error over greedy matches below 500 mm, millimetres (inf if none).
        recall_500: fraction of ground-truth bodies that some prediction is closest to with error
            below 500 mm.
        n_gt: ground-truth bodies scored.
        n_pred: predictions scored.
    """

    thresholds_mm: np.ndarray
    ap: np.ndarray
    recall: np.ndarray
    mpjpe_mm: float
    recall_500: float
    n_gt: int
    n_pred: int

    def summary(self) -> str:
        """A plain-text summary: AP per threshold, recall@500 mm and MPJPE."""
        aps = " ".join(f"AP{int(t)}={100 * a:.2f}" for t, a in zip(self.thresholds_mm, self.ap, strict=True))
        return (
            f"Panoptic (voxelpose protocol, {self.n_gt} GT bodies, {self.n_pred} predictions): {aps} "
            f"recall@500mm={100 * self.recall_500:.2f} MPJPE={self.mpjpe_mm:.2f} mm"
        )


def _as_poses(poses: object, frame: int, n_joints: int, at_least: bool = False) -> np.ndarray:
    """(P, n_joints, 3) view of a frame's predictions; more joints allowed only with ``at_least``."""
    if poses is None:
        return np.zeros((0, n_joints, 3))
    arr = np.asarray(poses, dtype=np.float64)
    if arr.size == 0:
        return np.zeros((0, n_joints, 3))
    joints_ok = arr.ndim == 3 and (arr.shape[1] >= n_joints if at_least else arr.shape[1] == n_joints)
    if not joints_ok or arr.shape[2] < 3:
        want = f">={n_joints}" if at_least else str(n_joints)
        raise ShapeError(f"predictions of frame {frame} must be (P, {want}, >=3); got {arr.shape}")
    return arr[:, :n_joints, :3]


def _is_right(p_s: np.ndarray, p_e: np.ndarray, g_s: np.ndarray, g_e: np.ndarray) -> np.ndarray:
    """PCP test of mvpose/VoxelPose: (|p_s - g_s| + |p_e - g_e|) / 2 <= alpha |g_s - g_e|."""
    error_s = np.linalg.norm(p_s - g_s, axis=-1)
    error_e = np.linalg.norm(p_e - g_e, axis=-1)
    limb_length = np.linalg.norm(g_s - g_e, axis=-1)
    return (error_s + error_e) / 2.0 <= _ALPHA * limb_length


def _parts_correct(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(10,) bool: the 9 limbs then the torso of one (14, 3) prediction against one (14, 3) truth."""
    limbs = _is_right(pred[_LIMBS[:, 0]], pred[_LIMBS[:, 1]], gt[_LIMBS[:, 0]], gt[_LIMBS[:, 1]])
    pred_hip = (pred[_R_HIP] + pred[_L_HIP]) / 2.0
    gt_hip = (gt[_R_HIP] + gt[_L_HIP]) / 2.0
    torso = _is_right(pred_hip, pred[_NECK], gt_hip, gt[_NECK])
    return np.append(limbs, torso)


def pcp_voxelpose(
    gt: Mapping[int, Mapping[int, np.ndarray]],
    pred: Mapping[int, np.ndarray | Sequence[np.ndarray]],
    frames: Iterable[int],
    n_actors: int = 3,
) -> PCPResult:
    """Shelf/Campus PCP exactly as VoxelPose computes it (Tu et al. ECCV 2020).

    Port of ``evaluate`` in microsoft/voxelpose-pytorch ``lib/dataset/shelf.py`` (``campus.py`` is
    identical), the protocol of VoxelPose, MvP and Faster VoxelPose. For each frame of ``frames`` and
    each ground-truth actor present in it (frames without that actor's ground truth are skipped), the
    prediction with the smallest mean joint distance is scored; predictions are *not* assigned
    one-to-one, so one prediction may serve two actors. Parts: the 9 limbs of :data:`PART_NAMES`
    plus the torso (mid-hip to bottom-head); a part is correct if
    (|p_s - g_s| + |p_e - g_e|) / 2 <= 0.5 |g_s - g_e|.

    Convention: a frame with ground truth but no prediction at all counts all the actor's parts wrong
    (VoxelPose's own code would fail there, as it always has proposals). VoxelPose divides by
    ``total + 1e-8``; here an actor never scored gets PCP 0 exactly.

    Args:
        gt: ``{actor: {frame: (14, 3) pose}}`` Shelf-14 order, metres (:func:`read_shelf_gt`).
        pred: ``{frame: (P, 14, C>=3) poses}`` Shelf-14 order, metres; a missing frame means no
            prediction. Map COCO-17 output with :func:`~capture.benchmarks.datasets.coco17_to_shelf14`
            first (VoxelPose uses ``HeadConvention.VOXELPOSE_SHELF`` / ``VOXELPOSE_CAMPUS``).
        frames: frame indices to evaluate (:data:`SHELF_FRAMES`, :data:`CAMPUS_FRAMES`).
        n_actors: the reported average is over the first ``n_actors`` actors by id (3: Shelf's 4th
            actor is excluded, Campus has 3).

    Returns:
        The per-actor and per-part PCP, the average and recall@500 mm.

    Raises:
        ShapeError: a frame's predictions are not (P, 14, >=3).

    Example:
        >>> g = np.arange(42.0).reshape(14, 3)
        >>> pcp_voxelpose({0: {5: g}}, {5: g[None]}, [5, 6]).actor_pcp.tolist()
        [1.0]
    """
    frames = list(frames)
    actors = sorted(gt)
    correct = np.zeros((len(actors), len(PART_NAMES)), dtype=np.int64)
    n_eval = np.zeros(len(actors), dtype=np.int64)
    total_gt = match_gt = 0
    for fi in frames:
        preds = _as_poses(pred.get(fi), fi, len(SHELF14))
        for row, actor in enumerate(actors):
            g = gt[actor].get(fi)
            if g is None:
                continue
            g = np.asarray(g, dtype=np.float64)
            total_gt += 1
            n_eval[row] += 1
            if preds.shape[0] == 0:
                continue
            mpjpes = np.mean(np.sqrt(np.sum((g[None] - preds) ** 2, axis=-1)), axis=-1)
            min_n = int(np.argmin(mpjpes))
            if mpjpes[min_n] * 1000.0 < _RECALL_MM:
                match_gt += 1
            correct[row] += _parts_correct(preds[min_n], g)
    return PCPResult(
        protocol="voxelpose",
        actor_ids=tuple(actors),
        correct=correct,
        n_evaluated=n_eval,
        averaged_actors=tuple(actors[:n_actors]),
        n_frames=len(frames),
        recall_500=match_gt / total_gt if total_gt else 0.0,
    )


def pcp_crossview(
    gt: Mapping[int, Mapping[int, np.ndarray]],
    pred: Mapping[int, np.ndarray | Sequence[np.ndarray]],
    frames: Iterable[int],
    averaged_actors: Sequence[int] | None = None,
    max_gap_frames: int = 2,
) -> PCPResult:
    """PCP as evaluated by Chen et al. (CVPR 2020) cross-view tracking.

    Port of longcw/crossview_3d_pose_tracking ``evaluate.py``. It differs from
    :func:`pcp_voxelpose` in three places:

    - prediction frame: the result entry nearest in time to the ground-truth frame is used if it is
      at most ``delta_time_threshold = 0.1 s`` away (``Pose3DLoader.get_data``), i.e. at most
      ``max_gap_frames = 2`` Campus frames of 0.04 s; on a tie the later frame wins;
    - matching: the prediction with the smallest Frobenius norm of (prediction - truth) over all
      joints (sum of squared distances), not the mean joint distance;
    - the head joints (map COCO-17 with ``HeadConvention.CROSSVIEW``) and the frame ranges
      (:data:`CAMPUS_FRAMES`; Shelf :data:`CROSSVIEW_SHELF_FRAMES`, 300-599).

    The part test, the torso, the handling of frames without ground truth (skipped) and of
    ground truth without prediction (all parts wrong) are the same. The reported average is over all
    actors with ground truth in the range, Shelf's actor 3 excluded ("follow the original mvpose").

    Args:
        gt: ``{actor: {frame: (14, 3) pose}}`` Shelf-14 order, metres.
        pred: ``{frame: (P, 14, C>=3) poses}`` Shelf-14 order, metres; an entry with P = 0 is a frame
            with a result but no people.
        frames: frame indices to evaluate.
        averaged_actors: actor ids averaged into the reported number; None = every actor scored at
            least once (pass ``(0, 1, 2)`` for Shelf).
        max_gap_frames: farthest result frame used for a ground-truth frame.

    Returns:
        The per-actor and per-part PCP and the average (``recall_500`` is None).

    Raises:
        ShapeError: a frame's predictions are not (P, 14, >=3).
    """
    frames = list(frames)
    actors = sorted(gt)
    correct = np.zeros((len(actors), len(PART_NAMES)), dtype=np.int64)
    n_eval = np.zeros(len(actors), dtype=np.int64)
    pred_frames = np.array(sorted(pred), dtype=np.int64)
    for fi in frames:
        present = [(row, np.asarray(gt[a][fi], dtype=np.float64)) for row, a in enumerate(actors) if fi in gt[a]]
        if not present:
            continue
        src = _nearest_frame(pred_frames, fi, max_gap_frames)
        preds = _as_poses(pred[src] if src is not None else None, fi, len(SHELF14))
        for row, g in present:
            n_eval[row] += 1
            if preds.shape[0] == 0:
                continue
            dists = np.linalg.norm((preds - g[None]).reshape(preds.shape[0], -1), axis=-1)
            correct[row] += _parts_correct(preds[int(np.argmin(dists))], g)
    if averaged_actors is None:
        averaged = tuple(a for a, n in zip(actors, n_eval, strict=True) if n > 0)
    else:
        averaged = tuple(averaged_actors)
    return PCPResult(
        protocol="crossview",
        actor_ids=tuple(actors),
        correct=correct,
        n_evaluated=n_eval,
        averaged_actors=averaged,
        n_frames=len(frames),
    )


def _nearest_frame(sorted_frames: np.ndarray, frame: int, max_gap: int) -> int | None:
    """Nearest entry of ``sorted_frames`` to ``frame`` within ``max_gap``; ties go to the later one."""
    idx = int(np.searchsorted(sorted_frames, frame))
    n = sorted_frames.size
    if idx >= n or (idx > 0 and abs(sorted_frames[idx - 1] - frame) < abs(sorted_frames[idx] - frame)):
        idx -= 1
    if idx < 0 or idx >= n or abs(int(sorted_frames[idx]) - frame) > max_gap:
        return None
    return int(sorted_frames[idx])


def mpjpe_voxelpose(
    gt: Mapping[int, Sequence[np.ndarray]],
    pred: Mapping[int, np.ndarray | Sequence[np.ndarray]],
    scores: Mapping[int, np.ndarray | Sequence[float]] | None = None,
) -> MPJPEResult:
    """CMU Panoptic AP, recall and MPJPE exactly as VoxelPose computes them (Tu et al. ECCV 2020).

    Port of ``evaluate``, ``_eval_list_to_ap``, ``_eval_list_to_mpjpe`` and ``_eval_list_to_recall``
    of microsoft/voxelpose-pytorch ``lib/dataset/panoptic.py``. Ground truth: the first 15 COCO-19
    joints (:data:`~capture.benchmarks.datasets.PANOPTIC15`); a body is kept if its mid-hip
    confidence is > 0.1, a joint is visible if its confidence is > 0.1; frames with no kept body are
    skipped, and predictions of frames absent from ``gt`` are ignored. Each prediction is assigned to
    the ground-truth body of its frame with the smallest MPJPE over that body's visible joints (mm).
    Predictions are then taken by decreasing score: one is a true positive at threshold t if its
    MPJPE < t and its body was not taken before. AP is the area under the interpolated
    precision-recall curve (VoxelPose's ``1e-5`` guards included), at t = 25, 50, ..., 150 mm. MPJPE
    averages the true positives at t = 500 mm; recall@500 counts bodies that some prediction with
    MPJPE < 500 mm is assigned to.

    Convention: VoxelPose rotates Panoptic's world (y down) to z up before evaluating; distances do
    not change, so both ``gt`` and ``pred`` may stay in Panoptic's frame as long as they share it.
    Which frames to score is the caller's choice (VoxelPose: every 12th HD frame of its validation
    sequences, 5 cameras). Equal scores keep frame order, then prediction order (a stable sort, as
    Python's ``list.sort``).

    Args:
        gt: ``{frame: [(J>=15, 4) [x, y, z metres, conf], ...]}`` (:func:`read_panoptic_bodies`).
        pred: ``{frame: (P, J>=15, C>=3) poses}`` metres, Panoptic-15 order in the first 15 joints.
        scores: ``{frame: (P,) person scores}``; None gives every prediction score 0.

    Returns:
        AP and recall per threshold, MPJPE (mm) and recall@500 mm.

    Raises:
        ShapeError: a ground-truth body or a frame's predictions have the wrong shape.
    """
    eval_list: list[tuple[float, float, int]] = []  # (mpjpe_mm, score, gt_id)
    total_gt = 0
    for frame in sorted(gt):
        bodies = []
        for body in gt[frame]:
            b = np.asarray(body, dtype=np.float64)
            if b.ndim != 2 or b.shape[0] < PANOPTIC_EVAL_JOINTS or b.shape[1] != 4:
                raise ShapeError(f"ground-truth body of frame {frame} must be (J>=15, 4); got {b.shape}")
            b = b[:PANOPTIC_EVAL_JOINTS]
            if b[_PANOPTIC_ROOT, 3] > _PANOPTIC_CONF:
                bodies.append(b)
        if not bodies:
            continue
        preds = _as_poses(pred.get(frame), frame, PANOPTIC_EVAL_JOINTS, at_least=True)
        frame_scores = np.zeros(preds.shape[0])
        if scores is not None and preds.shape[0]:
            frame_scores = np.asarray(scores[frame], dtype=np.float64).reshape(-1)
            if frame_scores.shape != (preds.shape[0],):
                raise ShapeError(f"scores of frame {frame} must be ({preds.shape[0]},); got {frame_scores.shape}")
        for pose, score in zip(preds, frame_scores, strict=True):
            mpjpes = []
            for b in bodies:
                vis = b[:, 3] > _PANOPTIC_CONF
                err = np.sqrt(np.sum((pose[vis] - b[vis, :3]) ** 2, axis=-1)) * 1000.0
                mpjpes.append(np.mean(err))
            min_gt = int(np.argmin(mpjpes))
            eval_list.append((float(mpjpes[min_gt]), float(score), total_gt + min_gt))
        total_gt += len(bodies)

    eval_list.sort(key=lambda e: e[1], reverse=True)
    aps, recs = zip(*(_eval_list_to_ap(eval_list, total_gt, t) for t in _AP_THRESHOLDS_MM), strict=True)
    taken: set[int] = set()
    matched = []
    for mpjpe, _, gt_id in eval_list:
        if mpjpe < _RECALL_MM and gt_id not in taken:
            matched.append(mpjpe)
            taken.add(gt_id)
    recalled = {gt_id for mpjpe, _, gt_id in eval_list if mpjpe < _RECALL_MM}
    return MPJPEResult(
        thresholds_mm=_AP_THRESHOLDS_MM.astype(np.float64),
        ap=np.array(aps),
        recall=np.array(recs),
        mpjpe_mm=float(np.mean(matched)) if matched else float("inf"),
        recall_500=len(recalled) / total_gt if total_gt else 0.0,
        n_gt=total_gt,
        n_pred=len(eval_list),
    )


def _eval_list_to_ap(eval_list: list[tuple[float, float, int]], total_gt: int, threshold: float) -> tuple[float, float]:
    """VoxelPose ``_eval_list_to_ap`` on a list already sorted by decreasing score."""
    total_num = len(eval_list)
    tp = np.zeros(total_num)
    fp = np.zeros(total_num)
    gt_det: set[int] = set()
    for i, (mpjpe, _, gt_id) in enumerate(eval_list):
        if mpjpe < threshold and gt_id not in gt_det:
            tp[i] = 1
            gt_det.add(gt_id)
        else:
            fp[i] = 1
    tp = np.cumsum(tp)
    fp = np.cumsum(fp)
    recall = tp / (total_gt + 1e-5)
    precise = tp / (tp + fp + 1e-5)
    for n in range(total_num - 2, -1, -1):
        precise[n] = max(precise[n], precise[n + 1])
    precise = np.concatenate(([0], precise, [0]))
    recall = np.concatenate(([0], recall, [1]))
    index = np.where(recall[1:] != recall[:-1])[0]
    ap = np.sum((recall[index + 1] - recall[index]) * precise[index + 1])
    return float(ap), float(recall[-2])
