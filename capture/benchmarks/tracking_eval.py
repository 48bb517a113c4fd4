"""Identities (CLEAR MOT, IDF1: :mod:`fusion.metrics`, py-motmetrics) and jitter of a tracked
sequence on Shelf/Campus, with :func:`tracking_table` for the results pages."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from capture.benchmarks.datasets import COCO17_TO_SHELF14_BODY
from fusion.metrics import DEFAULT_THRESHOLD_M, identity_metrics, jitter, sequence_from_tracks

__all__ = ["tracking_metrics", "tracking_table"]


def tracking_metrics(
    gt: Mapping[int, Mapping[int, np.ndarray]],
    poses: Mapping[int, np.ndarray],
    ids: Mapping[int, np.ndarray],
    frames: Sequence[int],
    fps: float,
    ignore_unmatched: bool = False,
    visit_gap_frames: float = float("inf"),
) -> dict:
    """Identity metrics and jitter of a COCO-17 output sequence against Shelf-14 ground truth.

    Compared on the 12 limb joints (:data:`COCO17_TO_SHELF14_BODY`; the head joints are left out, their
    definitions differ between conventions); a prediction matches an actor within a mean joint
    distance of :data:`fusion.metrics.DEFAULT_THRESHOLD_M` (0.5 m, VoxelPose's recall criterion).
    Jitter is over every published track (:func:`fusion.metrics.jitter`), the ground truth's own
    beside it.

    Args:
        gt: ``{actor: {frame: (14, 3)}}`` Shelf-14 ground truth, metres.
        poses: ``{frame: (P, 17, 4)}`` COCO-17 output, metres.
        ids: ``{frame: (P,)}`` track ids.
        frames: frames to score, in time order (consecutive frames 1 / fps apart).
        fps: frame rate, frames per second.
        ignore_unmatched: see :func:`fusion.metrics.identity_metrics`.
        visit_gap_frames: see :func:`fusion.metrics.identity_metrics`.

    Returns:
        ``{"identity": IdentityMetrics.as_dict(), "jitter": ..., "ground_truth_jitter": ...,
        "track_ids": number of distinct ids published}``.
    """
    lo, hi = min(frames), max(frames)
    gt12 = {a: {f: np.asarray(g)[:12] for f, g in t.items() if lo <= f <= hi} for a, t in gt.items()}
    body = {f: np.asarray(p)[:, COCO17_TO_SHELF14_BODY] for f, p in poses.items() if lo <= f <= hi and len(p)}
    body_ids = {f: ids[f] for f in body}
    m = identity_metrics(gt12, body, body_ids, frames, DEFAULT_THRESHOLD_M, ignore_unmatched, visit_gap_frames)
    return {
        "identity": m.as_dict(),
        "jitter": jitter(body, body_ids, 1.0 / fps).as_dict(),
        "ground_truth_jitter": jitter(*sequence_from_tracks(gt12), 1.0 / fps).as_dict(),
        "track_ids": len({int(i) for v in body_ids.values() for i in np.asarray(v).tolist()}),
    }


def tracking_table(rows: Sequence[tuple[str, float, dict, float]]) -> list[str]:
    """Markdown table of live runs: PCP, MOTA, IDF1, switches, ids per actor, jitter, node time.

    Args:
        rows: per run, (label, PCP average in percent, :func:`tracking_metrics` result, node CPU
            ms/frame median).

    Returns:
        The table's lines. "ids per actor" lists, per actor, the ids matched in each visit joined by
        "+" (e.g. ``1+1``: two visits, one id each).
    """
    lines = [
        "| live node | PCP per frame | MOTA | IDF1 | ID switches | ids per actor | jitter (m/s^2) | node ms/frame |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, pcp, t, ms in rows:
        m, visits = t["identity"], t["identity"]["visits"]
        per_actor = " / ".join(
            "+".join(str(len(v["ids"])) for v in visits if v["actor"] == a)
            for a in dict.fromkeys(v["actor"] for v in visits)
        )
        lines.append(
            f"| {label} | {pcp:.2f} | {m['mota']:.3f} | {m['idf1']:.3f} | {m['id_switches']} | {per_actor} "
            f"| {t['jitter']['mean_mps2']:.1f} | {ms:.2f} |"
        )
    return lines
