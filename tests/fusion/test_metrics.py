"""Identity metrics and jitter on hand-made sequences whose scores are computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from core.errors import ShapeError
from fusion.metrics import identity_metrics, jitter, mean_joint_distances, sequence_from_tracks

J = 4


def _pose(x: float, y: float = 0.0, conf: float | None = None) -> np.ndarray:
    """(J, 3) or (J, 4) pose: J joints stacked 0.2 m apart in z at (x, y)."""
    p = np.zeros((J, 3))
    p[:, 0], p[:, 1], p[:, 2] = x, y, np.arange(J) * 0.2
    return p if conf is None else np.concatenate([p, np.full((J, 1), conf)], axis=1)


def _frame(*rows: tuple[int, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    if not rows:
        return np.zeros((0, J, 3)), np.zeros(0, np.int64)
    return np.stack([p for _, p in rows]), np.array([i for i, _ in rows], dtype=np.int64)


def _seq(frames: dict[int, list[tuple[int, np.ndarray]]]) -> tuple[dict, dict]:
    built = {f: _frame(*rows) for f, rows in frames.items()}
    return {f: p for f, (p, _) in built.items()}, {f: i for f, (_, i) in built.items()}


def test_identity_swap_counts_two_switches_and_halves_idf1():
    """Actors A (x=0) and B (x=2) tracked as ids 1, 2 for 3 frames, then as 2, 1 for 3 frames.

    By hand: 12 GT actor-frames all matched, 2 switches at frame 3: MOTA = 1 - 2/12. IDF1: the best
    global assignment keeps 3 of each actor's 6 frames: IDTP = 6, IDFP = IDFN = 6, IDF1 = 0.5.
    """
    gt = {0: {f: _pose(0.0) for f in range(6)}, 1: {f: _pose(2.0) for f in range(6)}}
    poses, ids = _seq({f: [(1, _pose(0.0)), (2, _pose(2.0))] if f < 3 else [(2, _pose(0.0)), (1, _pose(2.0))]
                       for f in range(6)})  # fmt: skip
    m = identity_metrics(gt, poses, ids, range(6))
    assert m.id_switches == 2
    assert m.switch_frames == {0: (3,), 1: (3,)}
    assert m.mota == pytest.approx(1 - 2 / 12)
    assert m.idf1 == pytest.approx(0.5)
    assert m.ids_per_actor == {0: (1, 2), 1: (2, 1)}
    assert not m.one_id_per_actor
    assert (m.misses, m.false_positives, m.fragmentations, m.n_gt, m.n_matches) == (0, 0, 0, 12, 12)
    assert m.motp_m == pytest.approx(0.0)


def test_miss_false_positive_fragmentation_and_ignored_predictions():
    """Actor A seen in frames 0-3, predicted (id 1) in 0, 1 and 3 only; a far prediction (id 9) in frame 1.

    By hand: FN 1, FP 1, no switch: MOTA = 1 - 2/4 = 0.5; one fragmentation (matched, missed,
    matched); IDF1 = 2*3 / (2*3 + 1 + 1) = 0.75. With ``ignore_unmatched`` the far prediction is
    left out: MOTA 0.75, IDF1 = 6 / 7.
    """
    gt = {0: {f: _pose(0.0) for f in range(4)}}
    poses, ids = _seq({0: [(1, _pose(0.05))], 1: [(9, _pose(5.0)), (1, _pose(0.0))], 2: [], 3: [(1, _pose(0.0))]})
    m = identity_metrics(gt, poses, ids, range(4))
    assert (m.misses, m.false_positives, m.id_switches, m.fragmentations) == (1, 1, 0, 1)
    assert m.mota == pytest.approx(0.5)
    assert m.idf1 == pytest.approx(0.75)
    assert m.motp_m == pytest.approx(0.05 / 3)
    assert m.ids_per_actor == {0: (1,)} and m.missed_per_actor == {0: 1}
    assert m.one_id_per_actor and m.n_ignored == 0
    ign = identity_metrics(gt, poses, ids, range(4), ignore_unmatched=True)
    assert (ign.false_positives, ign.n_ignored, ign.misses) == (0, 1, 1)
    assert ign.mota == pytest.approx(0.75)
    assert ign.idf1 == pytest.approx(6 / 7)


def test_threshold_decides_a_match():
    """A prediction 0.6 m from the truth: a miss and a false positive at 0.5 m, a match at 0.7 m."""
    gt = {0: {0: _pose(0.0)}}
    poses, ids = _seq({0: [(1, _pose(0.6))]})
    strict = identity_metrics(gt, poses, ids, [0], threshold_m=0.5)
    assert (strict.misses, strict.false_positives, strict.n_matches) == (1, 1, 0)
    assert strict.mota == pytest.approx(-1.0)
    loose = identity_metrics(gt, poses, ids, [0], threshold_m=0.7)
    assert (loose.misses, loose.false_positives, loose.mota) == (0, 0, 1.0)
    assert loose.motp_m == pytest.approx(0.6)


def test_clear_mot_keeps_last_match_within_threshold():
    """Two predictions near A; id 1 is nearer in frame 0, id 2 in frame 1, both within 0.5 m.

    CLEAR MOT keeps the frame-0 match (id 1) while it stays within the threshold: no switch; the other
    prediction is a false positive in each frame: MOTA = 1 - 2/2 = 0.
    """
    gt = {0: {0: _pose(0.0), 1: _pose(0.0)}}
    poses, ids = _seq({0: [(1, _pose(0.1)), (2, _pose(0.3))], 1: [(1, _pose(0.3)), (2, _pose(0.1))]})
    m = identity_metrics(gt, poses, ids, [0, 1])
    assert m.id_switches == 0 and m.ids_per_actor == {0: (1,)}
    assert m.false_positives == 2 and m.mota == pytest.approx(0.0)


def test_missing_joints_are_not_compared():
    """A joint of confidence 0 lying 10 m away must not prevent the match."""
    p = _pose(0.0, conf=1.0)
    p[0, :3], p[0, 3] = [10.0, 10.0, 10.0], 0.0
    gt = {0: {0: _pose(0.0)}}
    m = identity_metrics(gt, {0: p[None]}, {0: np.array([3])}, [0])
    assert m.n_matches == 1 and m.motp_m == pytest.approx(0.0)
    d = mean_joint_distances(np.stack([_pose(0.0)]), np.stack([p, np.zeros((J, 4))]))
    assert d[0, 0] == pytest.approx(0.0) and np.isnan(d[0, 1])


def test_visits_split_at_long_absences():
    """Actor absent in frames 3-9 returns with a new id: two visits of one id each, one switch."""
    frames = [0, 1, 2, 10, 11]
    gt = {0: {f: _pose(0.0) for f in frames}}
    poses, ids = _seq({f: [(1 if f < 3 else 2, _pose(0.0))] for f in frames})
    poses[12], ids[12] = np.zeros((0, J, 3)), np.zeros(0, np.int64)
    m = identity_metrics(gt, poses, ids, range(13), visit_gap_frames=5)
    assert m.id_switches == 1 and m.switch_frames == {0: (10,)}
    assert [(v.first_frame, v.last_frame, v.ids, v.missed) for v in m.visits] == [(0, 2, (1,), 0), (10, 11, (2,), 0)]
    assert m.one_id_per_visit and not m.one_id_per_actor
    whole = identity_metrics(gt, poses, ids, range(13))
    assert [(v.first_frame, v.last_frame, v.ids) for v in whole.visits] == [(0, 11, (1, 2))]
    assert not whole.one_id_per_visit
    assert whole.as_dict()["visits"] == [{"actor": 0, "frames": [0, 11], "ids": [1, 2], "missed": 0}]


def test_frames_outside_the_range_are_not_scored():
    gt = {0: {f: _pose(0.0) for f in range(4)}}
    poses, ids = _seq({f: [(f + 1, _pose(0.0))] for f in range(4)})  # a new id every frame
    m = identity_metrics(gt, poses, ids, [2])
    assert (m.n_gt, m.id_switches, m.n_frames) == (1, 0, 1)
    assert identity_metrics(gt, poses, ids, range(4)).id_switches == 3


def test_identity_metrics_errors():
    gt = {0: {0: _pose(0.0)}}
    poses, ids = _seq({0: [(1, _pose(0.0))]})
    with pytest.raises(ShapeError, match="ids of frame 0"):
        identity_metrics(gt, poses, {0: np.array([1, 2])}, [0])
    with pytest.raises(ShapeError, match="poses of frame 0"):
        identity_metrics(gt, {0: np.zeros((1, J + 1, 3))}, ids, [0])
    with pytest.raises(ValueError, match="threshold_m"):
        identity_metrics(gt, poses, ids, [0], threshold_m=0.0)


def test_jitter_is_the_second_difference_per_track():
    """Track 1 moves at constant velocity (0 m/s^2); track 2 steps 0.1 m once at dt 0.1 s: the two
    second differences around the step are 0.1 / 0.01 = 10 m/s^2 each, for each of the J joints."""
    dt = 0.1
    tracks = {
        1: {f: _pose(0.3 * f) for f in range(4)},
        2: {f: _pose(0.1 if f >= 2 else 0.0, y=5.0) for f in range(4)},
    }
    poses, ids = sequence_from_tracks(tracks)
    j = jitter(poses, ids, dt)
    assert j.n_samples == 2 * 2 * J
    assert j.mean_mps2 == pytest.approx(10.0 * (2 * J) / (4 * J))
    assert j.p95_mps2 == pytest.approx(10.0)
    # Row order within a frame does not matter: reverse it in every frame.
    rev = jitter({f: p[::-1] for f, p in poses.items()}, {f: i[::-1] for f, i in ids.items()}, dt)
    assert rev.mean_mps2 == pytest.approx(j.mean_mps2) and rev.n_samples == j.n_samples


def test_jitter_skips_gaps_and_missing_joints():
    dt = 0.04
    # Frames 0, 1, 3, 4: no three consecutive frames, no sample.
    poses, ids = sequence_from_tracks({1: {f: _pose(f * f * 1.0) for f in (0, 1, 3, 4)}})
    assert jitter(poses, ids, dt).n_samples == 0
    # A joint of confidence 0 in the middle frame is not measured (its coordinates are garbage).
    rows = {f: _pose(0.0, conf=1.0) for f in range(3)}
    rows[1][0, :3], rows[1][0, 3] = 50.0, 0.0
    poses, ids = sequence_from_tracks({1: rows})
    j = jitter(poses, ids, dt)
    assert j.n_samples == J - 1 and j.mean_mps2 == pytest.approx(0.0)
    with pytest.raises(ValueError, match="dt_s"):
        jitter(poses, ids, 0.0)
    with pytest.raises(ShapeError, match="ids of frame 0"):
        jitter(poses, {**ids, 0: np.array([1, 2])}, dt)


def test_ground_truth_round_trip_scores_perfectly(rng):
    """Ground truth scored against itself (ids renamed) is perfect, whatever the people's motion."""
    gt = {a: {f: _pose(2.0 * a + rng.normal(0, 0.05), rng.normal(0, 0.05)) for f in range(20) if (f + a) % 7}
          for a in range(3)}  # fmt: skip
    poses, ids = sequence_from_tracks({a + 10: t for a, t in gt.items()})
    m = identity_metrics(gt, poses, ids, range(20))
    assert (m.mota, m.idf1, m.id_switches) == (1.0, 1.0, 0)
    assert m.ids_per_actor == {0: (10,), 1: (11,), 2: (12,)}
