"""Identity metrics and jitter of benchmark runs (COCO-17 output against Shelf-14 ground truth)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from capture.benchmarks.datasets import COCO17_TO_SHELF14_BODY
from capture.benchmarks.shelf import live_filter_variant
from capture.benchmarks.tracking_eval import tracking_metrics, tracking_table
from core.config import Config

FPS = 25.0


def _shelf14(x: float, y: float) -> np.ndarray:
    """(14, 3) a standing actor at (x, y): joints 0.1 m apart in z."""
    p = np.zeros((14, 3))
    p[:, 0], p[:, 1], p[:, 2] = x, y, np.linspace(0.0, 1.7, 14)
    return p


def _coco17(shelf: np.ndarray, junk_head: bool = True) -> np.ndarray:
    """(17, 4) COCO-17 pose whose 12 limb joints are those of ``shelf``; head joints far off."""
    out = np.zeros((17, 4))
    out[:, :3] = 9.0 if junk_head else 0.0
    out[COCO17_TO_SHELF14_BODY, :3] = shelf[:12]
    out[:, 3] = 1.0
    return out


def _walk(a: int, f: int) -> tuple[float, float]:
    return 2.0 * a + 0.02 * f, 0.0  # constant velocity 0.5 m/s along x at 25 fps


def test_tracking_metrics_on_limb_joints_with_unannotated_people():
    """Two annotated actors, each one id; actor 1 annotated in frames 0-4 and 8-9 only; an unannotated
    person 5 m away in every frame. Head joints far off must not matter (limb joints only)."""
    frames = list(range(10))
    gt = {
        0: {f: _shelf14(*_walk(0, f)) for f in frames},
        1: {f: _shelf14(*_walk(1, f)) for f in frames if f < 5 or f >= 8},
    }
    poses, ids = {}, {}
    for f in frames:
        people = [_coco17(_shelf14(*_walk(0, f))), _coco17(_shelf14(*_walk(1, f))), _coco17(_shelf14(0.0, 5.0))]
        poses[f], ids[f] = np.stack(people), np.array([3, 7, 11])
    t = tracking_metrics(gt, poses, ids, frames, FPS, ignore_unmatched=True)
    m = t["identity"]
    assert (m["mota"], m["idf1"], m["id_switches"], m["false_positives"]) == (1.0, 1.0, 0, 0)
    # Ignored: the far person in 10 frames, and actor 1 in its 3 unannotated frames.
    assert m["ignored_predictions"] == 13 and m["gt_actor_frames"] == 17
    assert m["ids_per_actor"] == {"0": [3], "1": [7]} and m["one_id_per_actor"]
    assert t["track_ids"] == 3
    assert t["jitter"]["mean_mps2"] == pytest.approx(0.0, abs=1e-9) and t["jitter"]["samples"] == 3 * 8 * 12
    assert t["ground_truth_jitter"]["mean_mps2"] == pytest.approx(0.0, abs=1e-9)
    # Without ignoring, those 13 predictions are false positives.
    full = tracking_metrics(gt, poses, ids, frames, FPS)["identity"]
    assert full["false_positives"] == 13 and full["mota"] == pytest.approx(1 - 13 / 17, abs=1e-4)


def test_tracking_table_lists_ids_per_visit():
    """Actor 2 leaves for 10 frames and comes back with a new id: "1+1" with visits, "2" without.

    By hand: 50 actor-frames, 1 switch: MOTA 0.98; IDF1 = 2*40 / (2*40 + 10 + 10) = 0.8.
    """
    frames = list(range(30))
    gt = {
        0: {f: _shelf14(*_walk(0, f)) for f in frames},
        1: {f: _shelf14(*_walk(1, f)) for f in frames if f < 10 or f >= 20},
    }
    poses, ids = {}, {}
    for f in frames:
        rows = [(1, _coco17(_shelf14(*_walk(0, f))))]
        if f in gt[1]:
            rows.append((2 if f < 10 else 5, _coco17(_shelf14(*_walk(1, f)))))
        poses[f], ids[f] = np.stack([p for _, p in rows]), np.array([i for i, _ in rows])
    visits = tracking_metrics(gt, poses, ids, frames, FPS, visit_gap_frames=5)
    whole = tracking_metrics(gt, poses, ids, frames, FPS)
    assert visits["identity"]["one_id_per_visit"] and not whole["identity"]["one_id_per_visit"]
    lines = tracking_table([("with visits", 97.5, visits, 2.5), ("whole", 97.5, whole, 2.5)])
    assert lines[0].startswith("| live node | PCP per frame | MOTA | IDF1 | ID switches | ids per actor |")
    assert lines[2] == "| with visits | 97.50 | 0.980 | 0.800 | 1 | 1 / 1+1 | 0.0 | 2.50 |"
    assert lines[3].split(" | ")[5] == "1 / 2"


def test_live_filter_variant_switches_filter_and_turns_smoothing_off():
    cfg = Config()
    other = live_filter_variant(cfg)
    assert {cfg.fusion.filter, other.fusion.filter} == {"ukf", "none"}
    assert not other.smoothing.enabled
    back = live_filter_variant(other)
    assert back.fusion == cfg.fusion and dataclasses.replace(back, smoothing=cfg.smoothing) == cfg
