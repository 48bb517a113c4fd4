"""The node with real worker threads over inproc ZeroMQ, on the demo's real YOLO11n-pose detections."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from pathlib import Path

import numpy as np
import zmq
from procs import inproc_config

from calibration.io import read_calibration
from capture import wire
from capture.outputs import read_poses_jsonl
from capture.service.node import Node
from capture.service.worker import Worker
from core.config import Config

DETS = Path(__file__).resolve().parents[2] / "data" / "demo_yolo11n"
CAMS = ("cam01", "cam02", "cam03", "cam04")


def _run(
    shared_data: Path, out: Path, n_frames: int, garbage: list[list[bytes]] | None = None, cfg: Config | None = None
) -> dict:
    """Node + 4 worker threads over inproc; ``garbage`` is sent by a fifth publisher meanwhile."""
    rig = read_calibration(shared_data / "pose2sim_demo_multiperson/calibration/Calib.qca.txt")
    cfg = inproc_config(cfg)
    ctx = zmq.Context()
    node = Node(rig, cfg, out)
    stop = threading.Event()
    result: dict = {}
    # With garbage in flight the node must not end at the cameras' end of stream (two sockets
    # have no common order): the test stops it once everything sent has been filed.
    t_node = threading.Thread(target=lambda: result.update(node.run(ctx, until_all_ended=not garbage, stop=stop)))
    t_node.start()
    threads = []
    if garbage:
        attacker = ctx.socket(zmq.XPUB)
        attacker.setsockopt(zmq.SNDHWM, 0)
        attacker.connect(cfg.node.input_endpoint)
        assert attacker.poll(5000, zmq.POLLIN), "node never subscribed"
        attacker.recv()

        def attack() -> None:
            for frames in garbage:
                attacker.send_multipart(frames)

        threads.append(threading.Thread(target=attack))
    workers = [
        Worker(
            c,
            str(DETS / f"{c}.json.gz"),
            cfg.node.input_endpoint,
            max_frames=n_frames,
            subscribe_timeout_s=10,
        )
        for c in CAMS
    ]
    threads += [threading.Thread(target=w.run, args=(ctx,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    if garbage:
        deadline = time.monotonic() + 60
        c = node.intake
        while (sum(c.dropped.values()) < len(garbage) or node.frames < n_frames) and time.monotonic() < deadline:
            time.sleep(0.01)
        stop.set()
    t_node.join(60)
    assert not t_node.is_alive(), "node did not finish"
    if garbage:
        attacker.close(0)
    ctx.term()
    return result


def test_node_reconstructs_and_tracks(shared_data, tmp_path):
    summary = _run(shared_data, tmp_path, n_frames=40)
    assert summary["frames"] == 40 and summary["messages"]["malformed"] == 0
    spans = {t["id"]: (t["first_frame"], t["last_frame"], t["n_frames"]) for t in summary["tracks"]}
    full = [tid for tid, s in spans.items() if s == (0, 39, 40)]
    # Two subjects and the bystander (seen by cam01/cam02 only) are tracked through every frame.
    assert len(full) == 3 and len(spans) == 3
    assert summary["reprojection_px"]["median"] < 10
    header, frames = read_poses_jsonl(tmp_path / "poses3d.jsonl")
    assert header["joints"][0] == "nose" and len(frames) == 40
    assert {p.name for p in tmp_path.glob("person_*.trc")} == {f"person_{t}.trc" for t in spans}
    assert json.loads((tmp_path / "summary.json").read_text())["frames"] == 40
    assert set(summary["workers"]) == set(CAMS) and all(w["frames"] == 40 for w in summary["workers"].values())


def _jumps(frames, limit_m: float = 0.1) -> int:
    """Joint-frames of the same track moving more than ``limit_m`` between consecutive frames."""
    n, last = 0, {}
    for f in frames:
        for tid, pose in zip(f.track_ids.tolist(), f.poses, strict=True):
            if tid in last:
                both = (pose[:, 3] > 0) & (last[tid][:, 3] > 0)
                n += int((np.linalg.norm(pose[both, :3] - last[tid][both, :3], axis=1) > limit_m).sum())
            last[tid] = pose
    return n


def test_node_smooths_the_run_at_the_end(shared_data, tmp_path):
    """[smoothing] on: poses3d_smoothed.jsonl has the same frames and ids, far fewer joint jumps."""
    cfg = dataclasses.replace(Config(), smoothing=dataclasses.replace(Config().smoothing, enabled=True))
    summary = _run(shared_data, tmp_path, n_frames=30, cfg=cfg)
    assert summary["outputs"]["poses_smoothed"] == "poses3d_smoothed.jsonl"
    assert summary["smoothing_cpu_ms_per_frame"] > 0
    _, raw = read_poses_jsonl(tmp_path / "poses3d.jsonl")
    _, smooth = read_poses_jsonl(tmp_path / "poses3d_smoothed.jsonl")
    assert [f.frame_idx for f in smooth] == [f.frame_idx for f in raw] == list(range(30))
    assert all(np.array_equal(a.track_ids, b.track_ids) for a, b in zip(raw, smooth, strict=True))
    assert _jumps(smooth) < 0.5 * _jumps(raw), (_jumps(raw), _jumps(smooth))


def _garbage(rng: np.random.Generator, n: int) -> list[list[bytes]]:
    """``n`` malformed or hostile messages of 8 kinds (7 malformed, 1 from an unknown camera)."""
    arrays = {"poses": np.zeros((1, 17, 3), np.float32), "boxes": np.zeros((1, 5), np.float32)}
    good = [bytes(f) for f in wire.encode(wire.Message("pose2d", "cam01", 5, 1, arrays))]

    def with_header(**changes: object) -> list[bytes]:
        h = json.loads(good[1])
        h.update(changes)
        return [good[0], json.dumps(h).encode(), *good[2:]]

    def with_array0(**changes: object) -> list[bytes]:
        h = json.loads(good[1])
        h["arrays"][0].update(changes)
        return [good[0], json.dumps(h).encode(), *good[2:]]

    nan = np.full((1, 17, 3), np.nan, np.float32).tobytes()
    kinds = [
        lambda: [good[0], good[1], good[2][: int(rng.integers(0, len(good[2])))], good[3]],  # truncated
        lambda: with_header(version=int(rng.integers(2, 100))),  # wrong version
        lambda: with_array0(shape=[10**6, 10**6, 3]),  # absurd shape
        lambda: [good[0], rng.bytes(int(rng.integers(0, 300)))],  # random bytes
        lambda: with_array0(dtype="<f8"),  # wrong dtype / byte count
        lambda: [good[0], b"{" + b" " * 70000 + b"}", *good[2:]],  # oversized header
        lambda: [good[0], good[1], nan, good[3]],  # NaN payload
        lambda: [b"pose2d.cam99.", with_header(camera="cam99")[1], *good[2:]],  # unknown camera
    ]
    return [kinds[k % len(kinds)]() for k in range(n)]


def test_malformed_messages_are_dropped_and_counted(shared_data, tmp_path, rng):
    clean = _run(shared_data, tmp_path / "clean", n_frames=15)
    n = 10_000
    dirty = _run(shared_data, tmp_path / "dirty", n_frames=15, garbage=_garbage(rng, n))
    assert dirty["messages"]["unknown_camera"] == n // 8
    assert dirty["messages"]["malformed"] == n - n // 8  # every bad message counted
    by_kind = dirty["messages"]["refused_by_kind"]
    assert by_kind["malformed.version"] == by_kind["malformed.nan"] == n // 8  # and counted by kind
    assert dirty["messages"]["received"] == clean["messages"]["received"] + n
    _, a = read_poses_jsonl(tmp_path / "clean" / "poses3d.jsonl")
    _, b = read_poses_jsonl(tmp_path / "dirty" / "poses3d.jsonl")
    assert len(a) == len(b) == 15
    for fa, fb in zip(a, b, strict=True):
        assert np.array_equal(fa.track_ids, fb.track_ids) and np.array_equal(fa.poses, fb.poses)
    assert clean["tracks"] == dirty["tracks"]


def test_camera_reported_dead_after_missed_heartbeats_and_alive_again(tmp_path):
    from synth import ring_rig

    rig = ring_rig()
    node = Node(rig, Config(), tmp_path)
    beat = wire.encode(wire.Message("heartbeat", "cam1", 0, 0, {}, {"frames": 0}))
    node.handle([bytes(f) for f in beat])
    node.intake.check_liveness(time.monotonic())
    assert node.status(time.monotonic())["dead"] == []
    node.intake.cameras["cam1"].last_seen -= Config().node.heartbeat_timeout_s + 0.5  # three heartbeats missed
    node.intake.check_liveness(time.monotonic())
    assert node.status(time.monotonic())["dead"] == ["cam1"]
    assert "cam1" not in node._live()
    node.handle([bytes(f) for f in beat])  # it comes back
    st = node.status(time.monotonic())
    assert st["dead"] == [] and set(st["fps"]) == set(rig.names)
    assert [e["event"] for e in node.intake.events] == ["dead", "alive"]


def test_a_live_node_behind_the_stream_skips_stale_frames_and_counts_them(tmp_path):
    import dataclasses as dc

    from synth import ring_rig

    from core.types import Detections2D

    rig = ring_rig()
    now = time.time_ns()
    for lossless, expected in ((False, [7, 8, 9]), (True, list(range(10)))):
        cfg = Config()
        node = Node(rig, dc.replace(cfg, node=dc.replace(cfg.node, max_backlog_s=2.0, lossless=lossless)), tmp_path)
        node.started = True
        done: list[int] = []
        node._process = lambda frame, done=done: done.append(frame.frame_idx)  # noqa: B023
        empty = np.zeros((0, 17, 3), np.float32), np.zeros((0, 5), np.float32)
        for f in range(10):  # frames 0-6 captured 5 s ago, 7-9 just now: all ready at once
            stamp = now - (5_000_000_000 if f < 7 else 0) + f
            for cam in rig.names:
                node.assembler.add(Detections2D(cam, f, stamp, *empty), time.monotonic())
        node.process_ready()
        assert done == expected
        assert node.frames_skipped_behind == (0 if lossless else 7)
