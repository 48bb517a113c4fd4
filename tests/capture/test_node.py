"""The node with real worker threads over inproc ZeroMQ, on the demo's real YOLO11n-pose detections."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import zmq

from calibration.io import read_calibration
from capture import messages as wire
from capture.node import Node
from capture.outputs import read_poses_jsonl
from capture.worker import Worker
from core.config import Config

DETS = Path(__file__).resolve().parents[1] / "data" / "demo_yolo11n"
CAMS = ("cam01", "cam02", "cam03", "cam04")


def _run(shared_data: Path, out: Path, n_frames: int, garbage: list[list[bytes]] | None = None) -> dict:
    rig = read_calibration(shared_data / "pose2sim_demo_multiperson/calibration/Calib.qca.txt")
    tag = uuid.uuid4().hex
    cfg = Config()
    cfg = dataclasses.replace(
        cfg,
        node=dataclasses.replace(
            cfg.node, input_endpoint=f"inproc://in-{tag}", output_endpoint=f"inproc://out-{tag}"
        ),
    )
    ctx = zmq.Context()
    node = Node(rig, cfg, out)
    result: dict = {}
    t_node = threading.Thread(target=lambda: result.update(node.run(ctx)))
    t_node.start()
    attacker = None
    if garbage:
        attacker = ctx.socket(zmq.XPUB)
        attacker.connect(cfg.node.input_endpoint)
        assert attacker.poll(5000, zmq.POLLIN), "node never subscribed"
        attacker.recv()
    if attacker is not None:
        for frames in garbage:
            attacker.send_multipart(frames)
        # Wait until the node has filed every bad message, so that the cameras' end of stream
        # cannot end the run before the garbage is read (two sockets have no common order).
        deadline = time.monotonic() + 30
        while node.counters.malformed < len(garbage) and time.monotonic() < deadline:
            time.sleep(0.01)
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
    threads = [threading.Thread(target=w.run, args=(ctx,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    t_node.join(60)
    assert not t_node.is_alive(), "node did not finish after every camera ended"
    if attacker is not None:
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
    assert set(summary["workers"]) == set(CAMS) and all(
        w["frames"] == 40 for w in summary["workers"].values()
    )


def _garbage(rng: np.random.Generator, n: int) -> list[list[bytes]]:
    good = [
        bytes(f)
        for f in wire.encode(
            wire.Message(
                "pose2d",
                "cam01",
                5,
                1,
                {"poses": np.zeros((1, 17, 3), np.float32), "boxes": np.zeros((1, 5), np.float32)},
            )
        )
    ]
    out = []
    for k in range(n):
        kind = k % 5
        if kind == 0:
            out.append([good[0], good[1], good[2][:-3], good[3]])  # truncated buffer
        elif kind == 1:
            h = json.loads(good[1])
            h["version"] = 99
            out.append([good[0], json.dumps(h).encode(), *good[2:]])  # wrong version
        elif kind == 2:
            h = json.loads(good[1])
            h["arrays"][0]["shape"] = [10**6, 10**6, 3]
            out.append([good[0], json.dumps(h).encode(), *good[2:]])  # absurd shape
        elif kind == 3:
            out.append([b"pose2d.cam01.", rng.bytes(int(rng.integers(0, 200)))])  # random header
        else:
            h = json.loads(good[1])
            h["arrays"][0]["dtype"] = "<f8"
            out.append([good[0], json.dumps(h).encode(), *good[2:]])  # wrong dtype / byte count
    return out


def test_malformed_messages_are_dropped_and_counted(shared_data, tmp_path, rng):
    clean = _run(shared_data, tmp_path / "clean", n_frames=15)
    dirty = _run(shared_data, tmp_path / "dirty", n_frames=15, garbage=_garbage(rng, 500))
    assert dirty["messages"]["malformed"] == 500
    _, a = read_poses_jsonl(tmp_path / "clean" / "poses3d.jsonl")
    _, b = read_poses_jsonl(tmp_path / "dirty" / "poses3d.jsonl")
    assert len(a) == len(b) == 15
    for fa, fb in zip(a, b, strict=True):
        assert np.array_equal(fa.track_ids, fb.track_ids) and np.array_equal(fa.poses, fb.poses)
    assert clean["tracks"] == dirty["tracks"]
