"""Unsynchronised cameras: clock offsets and different frame rates (FrameAssembler + reconstruction)."""

from __future__ import annotations

import numpy as np
import pytest
from synth import person, ring_rig

from calibration.camera import CameraRig, fundamental_matrix
from capture.reconstruct import FrameReconstructor
from capture.service.sync import FrameAssembler
from core.skeleton import COCO17
from core.types import Detections2D
from matching.clock import Stream, estimate_clock_offset

DURATION_S = 6.0
OFFSET_NS = 137_000_000  # camera 1's clock runs 137 ms ahead of camera 0's


def _people(t: float) -> list[np.ndarray]:
    """Two people walking at about 0.7 m/s and turning."""
    return [
        person((1.2 * np.cos(0.6 * t), 1.2 * np.sin(0.6 * t)), 0.6 * t + 1.6),
        person((-0.5 + 0.1 * t, -1.0), 0.0),
    ]


def _stream(rig: CameraRig, c: int, fps: float, offset_ns: int, rng: np.random.Generator) -> list[Detections2D]:
    out = []
    for f in range(int(DURATION_S * fps)):
        t = f / fps
        uv = [rig[c].project(X) + rng.normal(scale=1.0, size=(17, 2)) for X in _people(t)]
        poses = np.concatenate([np.stack(uv), np.ones((2, 17, 1))], axis=2)
        boxes = np.tile([0.0, 0.0, 1.0, 1.0, 0.9], (2, 1))
        out.append(Detections2D(rig[c].name, f, int(t * 1e9) + offset_ns, poses.astype(np.float32), boxes))
    return out


def _run(rig, streams, window_ns, offsets):
    """Feed detections in capture order through the assembler and the reconstructor; MPJPE (m)."""
    asm = FrameAssembler(rig.names, window_ns=window_ns, offsets_ns=offsets, timeout_s=1e9)
    rec = FrameReconstructor(rig, COCO17)
    arrivals = sorted(((d.stamp_ns - offsets.get(d.camera, 0), d) for s in streams for d in s), key=lambda x: x[0])
    errors, n_frames, n_two_view = [], 0, 0
    live = set(rig.names)
    frames = []
    for _, d in arrivals:
        asm.add(d, 0.0)
        frames += asm.pop_ready(0.0, live)
    frames += asm.pop_ready(0.0, live, flush=True)
    for fr in frames:
        views = [fr.views.get(n) for n in rig.names]
        res = rec.process(views, fr.stamp_ns)
        n_frames += 1
        n_two_view += len(fr.views) == 2
        truth = _people(fr.stamp_ns * 1e-9)
        for pose in res.poses:
            ok = pose[:, 3] > 0
            err = [np.linalg.norm(pose[ok, :3] - X[ok], axis=1).mean() for X in truth]
            errors.append(min(err))
    return float(np.mean(errors)), n_frames, n_two_view, len(errors)


@pytest.fixture
def rig2():
    return ring_rig().subset(["cam0", "cam1"])


def test_offset_clocks_and_different_rates_match_synchronised_case(rig2):
    rng = np.random.default_rng(3)
    sync = [_stream(rig2, 0, 30.0, 0, rng), _stream(rig2, 1, 30.0, 0, rng)]
    mpjpe_sync, n_sync, _, _ = _run(rig2, sync, 0, {})
    # 30 fps and 25 fps, camera 1's clock 137 ms ahead, grouped by capture time (20 ms window).
    asyn = [_stream(rig2, 0, 30.0, 0, rng), _stream(rig2, 1, 25.0, OFFSET_NS, rng)]
    mpjpe_async, n_frames, n_two_view, n_poses = _run(rig2, asyn, 20_000_000, {"cam1": OFFSET_NS})
    assert n_sync == 180 and mpjpe_sync < 0.015
    # Stated tolerance: pairing views up to 20 ms apart at ~0.7 m/s adds at most ~1.5 cm.
    assert mpjpe_async < mpjpe_sync + 0.015
    assert n_two_view >= 0.7 * 150 and n_poses >= 2 * 0.7 * 150
    # Ignoring the offset pairs views 137 ms apart: clearly worse (the test can fail).
    mpjpe_wrong, *_ = _run(rig2, asyn, 20_000_000, {})
    assert mpjpe_wrong > mpjpe_async + 0.02


def test_clock_offset_estimated_from_detections(rig2):
    rng = np.random.default_rng(4)
    a, b = _stream(rig2, 0, 30.0, 0, rng), _stream(rig2, 1, 25.0, OFFSET_NS, rng)

    def stream(dets):
        return Stream(
            np.array([d.stamp_ns for d in dets]),
            [d.poses[..., :2].astype(float) for d in dets],
            [d.poses[..., 2].astype(float) for d in dets],
        )

    F = fundamental_matrix(rig2[0], rig2[1])
    offset, cost = estimate_clock_offset(F, stream(a), stream(b), search_ns=300e6, step_ns=4e6)
    assert abs(offset - OFFSET_NS) < 6e6 and cost < 5.0


def _d(cam: str, f: int) -> Detections2D:
    return Detections2D(cam, f, f * 33_333_333, np.zeros((0, 17, 3), np.float32), np.zeros((0, 5), np.float32))


def test_stray_frame_ahead_is_rejected_and_a_camera_that_moved_on_is_not_locked_out():
    cams = ("a", "b", "c")
    asm = FrameAssembler(cams, timeout_s=1.0, max_jump=30, max_ahead=120)
    for f in range(10):
        for c in cams:
            assert asm.add(_d(c, f), 0.0) == "accepted"
    assert asm.add(_d("a", 80), 0.0) == "implausible"  # one stray index 70 ahead of everyone
    assert asm.add(_d("a", 80), 0.0) == "implausible"  # repeating it does not help
    assert asm.add(_d("a", 400), 0.0) == "implausible"  # beyond max_ahead of the rig
    # 'a' alone stalled for 40 frames: its first frames after the stall are refused, then it resyncs.
    verdicts = [asm.add(_d("a", f), 0.0) for f in range(50, 56)]
    assert verdicts == ["implausible", "implausible"] + ["accepted"] * 4
    assert asm.implausible == 5


def test_a_dead_camera_does_not_hold_the_reference_back():
    cams = ("a", "b", "c")
    asm = FrameAssembler(cams, timeout_s=1.0, max_jump=30, max_ahead=120)
    for c in cams:
        asm.add(_d(c, 0), 0.0)
    # 'b' and 'c' go silent; 'a' goes on for 10 s at 30 fps: it is never refused.
    verdicts = [asm.add(_d("a", f), f / 30.0) for f in range(1, 300)]
    assert set(verdicts) == {"accepted"}
    assert asm.reference(10.0) == 299
