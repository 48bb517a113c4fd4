"""Clock offsets from keypoint motion: known offsets on real motion, real detections, error paths."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from calibration.time_offsets import (
    PoseSeries,
    _masked_xcorr,
    combine_pair_lags,
    estimate_time_offsets,
    motion_signals,
)
from capture.sources.detection_files import read_detections_json
from core.errors import ShapeError

DEMO = Path(__file__).resolve().parents[1] / "data" / "demo_yolo11n"
DEMO_CAMS = ("cam01", "cam02", "cam03", "cam04")
DEMO_PERIOD_NS = 1e9 / 60


def _demo() -> dict[str, list]:
    return {c: read_detections_json(DEMO / f"{c}.json.gz") for c in DEMO_CAMS}


def _shifted(dets: list, k: int) -> PoseSeries:
    """One camera's detections as if its clock were k frames behind (k > 0: its first k frames are
    cut and it stamps the next one 0) or -k frames ahead (k < 0: stamps + |k| frames, last |k| cut).
    Its true offset to the others is ``-k`` frames."""
    poses = [d.poses for d in (dets[k:] if k > 0 else dets[: len(dets) + k])]
    stamps = (np.arange(len(poses)) + max(-k, 0)) * DEMO_PERIOD_NS
    return PoseSeries(stamps.astype(np.int64), tuple(poses))


# --- real detections (Pose2Sim demo, YOLO11n-pose, synchronised cameras) -------------------------


def test_demo_synchronised_cameras_come_out_within_one_frame_of_zero():
    dets = _demo()
    est = estimate_time_offsets({c: PoseSeries.from_detections(d) for c, d in dets.items()})
    offsets = est.offsets_ms()
    assert list(offsets) == list(DEMO_CAMS) and offsets["cam01"] == 0.0
    assert all(abs(v) < 1000 / 60 for v in offsets.values()), offsets
    assert (est.confidence > 0.1).all() and (est.residual_s < 1 / 60).all()
    assert all(p.used for p in est.pairs) and len(est.pairs) == 6


@pytest.mark.parametrize("k", [12, -20])
@pytest.mark.parametrize("cam", DEMO_CAMS)
def test_demo_camera_shifted_by_known_frames_is_recovered_within_one_frame(cam, k):
    dets = _demo()
    series = {c: _shifted(d, k) if c == cam else PoseSeries.from_detections(d) for c, d in dets.items()}
    offsets = estimate_time_offsets(series).offsets_ms()
    truth_ms = -k * DEMO_PERIOD_NS * 1e-6
    if cam == "cam01":  # the reference itself: the others come out shifted the other way
        got = -np.mean([v for c, v in offsets.items() if c != cam])
    else:
        got = offsets[cam]
        assert all(abs(v) < 1000 / 60 for c, v in offsets.items() if c != cam), offsets
    assert abs(got - truth_ms) < 1000 / 60, (cam, k, offsets)


def test_reference_camera_can_be_chosen():
    dets = _demo()
    series = {c: _shifted(d, 12) if c == "cam03" else PoseSeries.from_detections(d) for c, d in dets.items()}
    est = estimate_time_offsets(series, reference="cam03")
    assert est.reference == 2 and est.offsets_s[2] == 0.0
    # cam03's clock is 200 ms behind: seen from it, the others run 200 ms ahead.
    assert all(abs(v - 200.0) < 1000 / 60 for c, v in est.offsets_ms().items() if c != "cam03")


# --- real 3D motion (Campus ground truth) through real cameras, different frame rates ------------


@pytest.fixture(scope="module")
def campus(shared_data):
    from calibration.io import read_voxelpose_json
    from capture.benchmarks.datasets import read_campus_gt

    root = shared_data / "campus"
    if not (root / "crossview" / "annotation_3d.json").is_file():
        pytest.skip("Campus ground truth is absent")
    rig = read_voxelpose_json(root / "calibration_campus.json", size=(360, 288))
    return rig, read_campus_gt(root / "crossview" / "annotation_3d.json")


def _campus_stream(campus, cam_idx, fps, offset_s, t_start, duration, rng):
    """Campus people (25 fps ground truth, interpolated in time) seen by one camera at ``fps`` whose
    clock is ``offset_s`` ahead; 1 px noise, 10% of joints missing, people absent when not annotated."""
    rig, gt = campus
    stamps, frames = [], []
    for k in range(int(duration * fps)):
        stamp = t_start + k / fps
        f = (stamp - offset_s) / 0.04
        i, a = int(np.floor(f)), f - np.floor(f)
        people = []
        for track in gt.values():
            if i in track and i + 1 in track:
                uv = rig[cam_idx].project((1 - a) * track[i] + a * track[i + 1]) + rng.normal(size=(14, 2))
                conf = (rng.random(14) > 0.1).astype(float)
                people.append(np.concatenate([uv * conf[:, None], conf[:, None]], axis=1))
        stamps.append(round(stamp * 1e9))
        frames.append(np.array(people).reshape(-1, 14, 3))
    return PoseSeries(np.array(stamps, dtype=np.int64), tuple(frames))


def test_campus_two_cameras_30_and_25_fps_offset_137ms_recovered_within_one_frame(campus):
    rng = np.random.default_rng(0)
    series = {
        "a": _campus_stream(campus, 0, 30.0, 0.0, 15.0, 10.0, rng),
        "b": _campus_stream(campus, 1, 25.0, 0.137, 15.0, 10.0, rng),
    }
    est = estimate_time_offsets(series, max_offset_s=1.0)
    assert abs(est.offsets_s[1] - 0.137) < 1 / 30, est.offsets_ms()
    assert est.confidence[1] > 0.1 and est.pairs[0].margin > 0


def test_campus_three_cameras_mixed_rates_recovered_within_one_frame(campus):
    rng = np.random.default_rng(1)
    series = {
        "c0": _campus_stream(campus, 0, 30.0, 0.0, 22.0, 10.0, rng),
        "c1": _campus_stream(campus, 1, 25.0, 0.137, 22.0, 10.0, rng),
        "c2": _campus_stream(campus, 2, 30.0, -0.250, 22.3, 10.0, rng),
    }
    est = estimate_time_offsets(series)
    assert est.offsets_ms()["c0"] == 0.0
    assert abs(est.offsets_s[1] - 0.137) < 1 / 30 and abs(est.offsets_s[2] + 0.250) < 1 / 30, est.offsets_ms()
    assert all(p.used for p in est.pairs)


# --- exactness, conventions and error paths ------------------------------------------------------


def _smooth_walk(n: int, rng: np.random.Generator) -> np.ndarray:
    return np.cumsum(np.cumsum(rng.normal(size=(n, 2)), axis=0), axis=0) * 0.02


def _one_person(track: np.ndarray, stamps_ns: np.ndarray) -> PoseSeries:
    """One joint following ``track`` (T, 2) px, 16 more fixed around it: a 100 px body."""
    body = np.array([[0, 0, 1.0], [100, 100, 1.0]] * 8)
    return PoseSeries(stamps_ns, tuple(np.concatenate([[[*p, 1.0]], body])[None] for p in track))


def test_noise_free_offset_is_exact_below_a_frame_and_has_the_config_sign(rng):
    walk = _smooth_walk(800, rng)
    t = np.arange(600) / 60.0
    a = _one_person(walk[:600], (t * 1e9).astype(np.int64))
    # b sees the same motion 6.5 frames (108.3 ms) later in its stamps: its clock runs ahead.
    f = np.arange(600) - 6.5 + 50
    b_track = np.stack([np.interp(f, np.arange(800), walk[:, i]) for i in (0, 1)], axis=1)
    b = _one_person(b_track, ((t + 50 / 60) * 1e9).astype(np.int64))
    est = estimate_time_offsets({"a": a, "b": b}, max_offset_s=0.5)
    # event at frame 100 of a (t = 100/60) is at b's index 106.5 - 50, stamped (106.5) / 60.
    assert est.offsets_s[1] == pytest.approx(6.5 / 60, abs=1e-3)
    corrected = b.stamps_ns[0] * 1e-9 - est.offsets_s[1]  # t = stamp - offset, as the node does
    assert corrected == pytest.approx((50 - 6.5) / 60, abs=1e-3)


def test_camera_without_people_gets_confidence_zero(rng):
    t = (np.arange(300) / 30.0 * 1e9).astype(np.int64)
    walk = _smooth_walk(300, rng)
    empty = PoseSeries(t, tuple(np.zeros((0, 17, 3)) for _ in t))
    est = estimate_time_offsets({"a": _one_person(walk, t), "b": _one_person(walk, t), "c": empty})
    assert est.confidence[2] == 0.0 and est.offsets_s[2] == 0.0
    assert est.confidence[1] > 0 and abs(est.offsets_s[1]) < 1e-3
    assert not [p for p in est.pairs if 2 in (p.a, p.b) and p.used]


def test_masked_cross_correlation_equals_pearson_on_each_overlap(rng):
    x = rng.normal(size=(50, 3)) + 5
    y = rng.normal(size=(40, 3)) - 2
    x[rng.random(x.shape) < 0.2] = np.nan
    y[rng.random(y.shape) < 0.2] = np.nan
    r, n = _masked_xcorr(x, y, 5)
    assert r.shape == n.shape == (89, 3)
    checked = 0
    for li, lag in enumerate(range(-49, 40)):
        i = np.arange(50)
        ok = (i + lag >= 0) & (i + lag < 40)
        for j in range(3):
            a, b = x[i[ok], j], y[i[ok] + lag, j]
            m = np.isfinite(a) & np.isfinite(b)
            if m.sum() >= 5:
                assert r[li, j] == pytest.approx(np.corrcoef(a[m], b[m])[0, 1], abs=1e-9)
                assert n[li, j] == m.sum()
                checked += 1
            else:
                assert r[li, j] == 0 and n[li, j] == 0
    assert checked > 150


def test_motion_signals_shape_and_units():
    # A body of box diagonal 141 px moving right at 50 px/s: 0.354 body sizes per second.
    t = np.arange(120) / 60.0
    poses = [np.array([[[10 + 50 * s, 0, 1.0], [110 + 50 * s, 100, 1.0]]]) for s in t]
    sig = motion_signals(PoseSeries((t * 1e9).astype(np.int64), tuple(poses)), 1 / 60)
    assert len(sig) == 1
    start, x = sig[0]
    assert start == 0 and x.shape == (120, 4)
    assert np.allclose(x[10:-10, :2], 50 / np.hypot(100, 100), rtol=1e-3)  # speed, body sizes/s
    assert np.allclose(x[10:-10, 2:], 0, atol=1e-3)  # no vertical motion


def test_combine_pair_lags_least_squares_and_connectivity():
    offsets, connected, res = combine_pair_lags(
        4, [(0, 1, 0.10, 1.0), (1, 2, 0.20, 1.0), (0, 2, 0.33, 1.0)], reference=0
    )
    assert connected.tolist() == [True, True, True, False] and offsets[3] == 0.0
    # Equal weights spread the 30 ms loop inconsistency evenly: 10 ms per pair.
    assert offsets[:3] == pytest.approx([0.0, 0.11, 0.32])
    assert np.abs(res) == pytest.approx([0.01, 0.01, 0.01])
    heavy, _, _ = combine_pair_lags(3, [(0, 1, 0.10, 100.0), (1, 2, 0.20, 100.0), (0, 2, 0.33, 1.0)])
    assert heavy[2] == pytest.approx(0.30, abs=1e-3)  # the heavy pairs win
    with pytest.raises(ShapeError, match="weight"):
        combine_pair_lags(2, [(0, 1, 0.1, 0.0)])
    with pytest.raises(ShapeError, match="distinct"):
        combine_pair_lags(2, [(0, 2, 0.1, 1.0)])


def test_bad_inputs_raise():
    t = np.array([0, 10, 20])
    ok = tuple(np.zeros((0, 17, 3)) for _ in t)
    with pytest.raises(ShapeError, match="increasing"):
        PoseSeries(np.array([0, 10, 10]), ok)
    with pytest.raises(ShapeError, match=r"\(T,\)"):
        PoseSeries(t[:2], ok)
    with pytest.raises(ShapeError, match="one J"):
        PoseSeries(t, (np.zeros((1, 17, 3)), np.zeros((1, 14, 3)), np.zeros((0, 17, 3))))
    with pytest.raises(ShapeError, match="finite"):
        PoseSeries(t, (np.full((1, 17, 3), np.nan),) * 3)
    series = PoseSeries(t, ok)
    with pytest.raises(ShapeError, match="at least 2 cameras"):
        estimate_time_offsets({"a": series})
    with pytest.raises(ShapeError, match="'z' is not one of a, b"):
        estimate_time_offsets({"a": series, "b": series}, reference="z")
    with pytest.raises(ShapeError, match="positive"):
        estimate_time_offsets({"a": series, "b": series}, max_offset_s=0)
