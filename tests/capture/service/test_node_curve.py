"""CURVE on the node's input: only the rig's keys get in, and each key speaks for its own camera only.

Four keyed workers stream the demo's real detections into a node over loopback TCP while three
intruders try: a worker with no keys, a worker whose key is not in the allow-list, and a worker
holding cam02's key that sends as cam01. The output equals a plain run's, the unkeyed and unknown
clients are refused at the handshake and the impersonation is dropped, each counted.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path

import numpy as np
import zmq

from calibration.io import read_calibration
from capture import wire
from capture.outputs import read_poses_jsonl
from capture.service.keys import make_keys
from capture.service.launcher import free_tcp_endpoint
from capture.service.node import Node
from capture.service.security import secure_client
from capture.service.worker import Worker
from core.config import Config

DETS = Path(__file__).resolve().parents[2] / "data" / "demo_yolo11n"
CAMS = ("cam01", "cam02", "cam03", "cam04")
N_FRAMES = 20


def _intruder(ctx: zmq.Context, endpoint: str, keys: Path | None, key_name: str | None, stop: threading.Event) -> None:
    """Sends cam01 frames until stopped, keyed with ``key_name`` (None: no CURVE at all)."""
    sock = ctx.socket(zmq.XPUB)
    sock.setsockopt(zmq.LINGER, 0)
    if key_name is not None:
        secure_client(sock, keys / f"{key_name}.key_secret", keys / "node.key")
    sock.connect(endpoint)
    poses = np.full((1, 17, 3), 50.0, np.float32)
    arrays = {"poses": poses, "boxes": np.full((1, 5), 0.9, np.float32)}
    f = 0
    while not stop.is_set():
        try:
            sock.send_multipart(wire.encode(wire.Message("pose2d", "cam01", f % N_FRAMES, 1, arrays)), zmq.NOBLOCK)
        except zmq.Again:
            pass
        stop.wait(0.02)
        f += 1
    sock.close()


def _run(shared_data: Path, out: Path, keys: Path | None, intruders: bool) -> dict:
    rig = read_calibration(shared_data / "pose2sim_demo_multiperson/calibration/Calib.qca.txt")
    node_in, node_out = free_tcp_endpoint(), free_tcp_endpoint()
    cfg = Config()
    node_cfg = dataclasses.replace(cfg.node, input_endpoint=node_in, output_endpoint=node_out, status_every_s=0.0)
    if keys is not None:
        node_cfg = dataclasses.replace(
            node_cfg, curve_secret_key=str(keys / "node.key_secret"), curve_clients_dir=str(keys)
        )
    cfg = dataclasses.replace(cfg, node=node_cfg)
    ctx = zmq.Context()
    node = Node(rig, cfg, out)
    result: dict = {}
    t_node = threading.Thread(target=lambda: result.update(node.run(ctx)))
    t_node.start()
    stop = threading.Event()
    threads = []
    if intruders:
        for name in (None, "intruder", "cam02"):
            threads.append(threading.Thread(target=_intruder, args=(ctx, node_in, keys, name, stop)))
            threads[-1].start()
        time.sleep(1.0)  # let them knock (and the keyed one get in) before the take
    workers = []
    for c in CAMS:
        secure = None
        if keys is not None:

            def secure(sock: zmq.Socket, c: str = c) -> None:
                secure_client(sock, keys / f"{c}.key_secret", keys / "node.key")

        workers.append(
            Worker(c, str(DETS / f"{c}.json.gz"), node_in, max_frames=N_FRAMES, subscribe_timeout_s=20, secure=secure)
        )
    wthreads = [threading.Thread(target=w.run, args=(ctx,)) for w in workers]
    for t in wthreads:
        t.start()
    for t in wthreads:
        t.join(60)
    t_node.join(60)
    stop.set()
    for t in threads:
        t.join(10)
    assert not t_node.is_alive(), "node did not finish"
    ctx.term()
    return result


def test_unkeyed_unknown_and_impersonating_senders_are_refused_and_counted(shared_data, tmp_path):
    keys = tmp_path / "keys"
    make_keys(keys, ["node", *CAMS, "intruder"])
    plain = _run(shared_data, tmp_path / "plain", None, intruders=False)
    secured = _run(shared_data, tmp_path / "curve", keys, intruders=True)
    refused = secured["messages"]["refused_by_kind"]
    assert refused.get("rejected_handshake", 0) >= 2  # the unkeyed client and the unknown key, at least once each
    assert refused.get("impersonation", 0) >= 1  # cam02's key speaking for cam01
    assert secured["frames"] == plain["frames"] == N_FRAMES and secured["complete"]
    _, a = read_poses_jsonl(tmp_path / "plain" / "poses3d.jsonl")
    _, b = read_poses_jsonl(tmp_path / "curve" / "poses3d.jsonl")
    for fa, fb in zip(a, b, strict=True):
        assert np.array_equal(fa.track_ids, fb.track_ids) and np.array_equal(fa.poses, fb.poses)
