"""``mvcap stream``: the node's 3D frames, published on loopback ZeroMQ, reach a VMC (OSC) receiver."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import zmq

from capture import wire
from capture.outputs.bvh import yup_from_world
from capture.outputs.vmc import VmcSender
from capture.service import stream
from capture.service.keys import make_keys
from capture.service.launcher import free_tcp_endpoint
from capture.service.security import CurveServer, secure_client
from capture.service.stream import Streamer
from core.types import Poses3D

pytest.importorskip("pythonosc")
from pythonosc.dispatcher import Dispatcher  # noqa: E402
from pythonosc.osc_server import BlockingOSCUDPServer  # noqa: E402

TESTS = Path(__file__).resolve().parents[2]


def _body() -> np.ndarray:
    """One standing person (17, 4), z-up world, metres: the rest pose of the default rig."""
    from capture.outputs.bvh_solve import RIG, RestPose, coco_positions, forward_kinematics

    rest_pose = np.tile(np.eye(3), (1, len(RIG), 1, 1))
    pos, _ = forward_kinematics(np.array([[0.0, 0.95, 0.0]]), rest_pose, RestPose.default())
    pose = np.ones((17, 4))
    pose[:, :3] = coco_positions(pos)[0] @ yup_from_world("z")  # Y-up to the z-up world
    return pose


def _frame(i: int) -> Poses3D:
    poses = np.stack([_body(), _body()])
    poses[1, :, 0] += 1.5
    poses[:, :, 2] += 0.01 * i
    return Poses3D(i, 10**9 + i * 33_333_333, np.array([6, 2]), poses)


class _Osc:
    """An OSC receiver on 127.0.0.1 collecting Bone/Pos names and /VMC/Ext/T times."""

    def __init__(self) -> None:
        self.bones: set[str] = set()
        self.times: list[float] = []
        self.hips: list[np.ndarray] = []
        d = Dispatcher()
        d.map("/VMC/Ext/Bone/Pos", self._bone)
        d.map("/VMC/Ext/T", lambda _a, t: self.times.append(t))
        self.server = BlockingOSCUDPServer(("127.0.0.1", 0), d)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def _bone(self, _address: str, name: str, *values: float) -> None:
        self.bones.add(name)
        if name == "Hips":
            self.hips.append(np.array(values[:3]))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def osc():
    r = _Osc()
    yield r
    r.close()


def _publish(ctx: zmq.Context, endpoint: str, stop: threading.Event, secure=None, garbage: bool = False) -> None:  # noqa: ANN001
    """Publish frames as the node does (``wire.encode_poses3d``) until stopped (30 s at most)."""
    pub = ctx.socket(zmq.PUB)
    pub.setsockopt(zmq.LINGER, 0)
    if secure is not None:
        secure(pub)
    pub.bind(endpoint)
    i, deadline = 0, time.monotonic() + 30
    try:
        while not stop.is_set() and time.monotonic() < deadline:
            if garbage and i % 2 == 0:
                pub.send_multipart([wire.TOPIC_POSE3D.encode(), b"{not json", b"x"])
            pub.send_multipart(wire.encode_poses3d(_frame(i), {"skeleton": "coco17"}))
            i += 1
            stop.wait(0.01)
    finally:
        pub.close()


def test_streamer_relays_node_frames_to_a_vmc_receiver(osc):
    endpoint = free_tcp_endpoint()
    ctx = zmq.Context()
    stop = threading.Event()
    pub = threading.Thread(target=_publish, args=(ctx, endpoint, stop), kwargs={"garbage": True})
    pub.start()
    sender = VmcSender("127.0.0.1", osc.port)  # follows the lowest id: track 2
    streamer = Streamer(endpoint, [sender])
    try:
        n = streamer.run(ctx=ctx, max_frames=8)
    finally:
        stop.set()
        pub.join()
        ctx.term()
    assert n == 8 and streamer.malformed >= 1 and sender.sent == 8 and sender.person == 2
    deadline = time.monotonic() + 5
    while len(osc.times) < 8 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(osc.times) == 8 and osc.times[0] == 0.0 and np.all(np.diff(osc.times) > 0)
    assert {"Hips", "Spine", "Neck", "Head", "LeftUpperArm", "RightLowerLeg"} <= osc.bones
    # Track 2 stands at x + 1.5 m in the world: Unity mirrors x, so its hips are at x = -1.5; frame i
    # raised them by 0.01 i m (world z, Unity y).
    hips = np.array(osc.hips)
    assert np.allclose(hips[:, 0], -1.5, atol=1e-5) and np.allclose(hips[:, 2], 0.0, atol=1e-5)
    steps = (hips[:, 1] - 0.95) / 0.01
    assert np.allclose(steps, np.round(steps), atol=1e-3) and np.all(np.diff(steps) > 0.5)


def test_cli_relays_with_curve_keys_and_prints_a_summary(osc, tmp_path, monkeypatch, capsys):
    keys = tmp_path / "keys"
    make_keys(keys, ["node", "relay"])
    endpoint = free_tcp_endpoint()
    ctx = zmq.Context()
    server = CurveServer(ctx)
    stop = threading.Event()

    def secure_pub(sock: zmq.Socket) -> None:
        server.secure(sock, keys / "node.key_secret", {"relay": keys / "relay.key"}, domain="output")

    pub = threading.Thread(target=_publish, args=(ctx, endpoint, stop), kwargs={"secure": secure_pub})
    pub.start()
    monkeypatch.setattr(stream, "stop_on_signals", threading.Event)  # leave the test process's signals alone
    argv = ["--node", endpoint, "--vmc", f"127.0.0.1:{osc.port}", "--person", "6", "--max-frames", "3",
            "--curve-secret-key", str(keys / "relay.key_secret"), "--curve-server-key", str(keys / "node.key"),
            "--log-level", "WARNING"]  # fmt: skip
    try:
        assert stream.main(argv) == 0
    finally:
        stop.set()
        pub.join()
        server.close()
        ctx.term()
    summary = json.loads(capsys.readouterr().out)
    assert summary["frames"] == 3
    assert summary["targets"][f"127.0.0.1:{osc.port}"] == {"sent": 3, "dropped": 0, "person": 6}


def test_a_relay_without_the_node_key_gets_nothing(osc, tmp_path):
    keys = tmp_path / "keys"
    make_keys(keys, ["node", "relay", "other"])
    endpoint = free_tcp_endpoint()
    ctx = zmq.Context()
    server = CurveServer(ctx)
    stop = threading.Event()

    def secure_pub(sock: zmq.Socket) -> None:
        server.secure(sock, keys / "node.key_secret", {"relay": keys / "relay.key"}, domain="output")

    pub = threading.Thread(target=_publish, args=(ctx, endpoint, stop), kwargs={"secure": secure_pub})
    pub.start()
    intruder = Streamer(
        endpoint,
        [VmcSender("127.0.0.1", osc.port)],
        secure=lambda s: secure_client(s, keys / "other.key_secret", keys / "node.key"),
    )
    timer = threading.Timer(1.5, stop.set)
    timer.start()
    try:
        n = intruder.run(ctx=ctx, stop=stop)
    finally:
        stop.set()
        pub.join()
        server.close()
        ctx.term()
    assert n == 0 and osc.times == []


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--vmc", "127.0.0.1:70000"], "port in 1..65535"),
        (["--vmc", "127.0.0.1:9000", "--person", "1", "--person", "2"], "2 --person for 1 --vmc targets"),
        (["--vmc", "127.0.0.1:9000", "--up", "north"], "unknown up axis"),
        (["--vmc", "127.0.0.1:9000", "--node", "nowhere", "--max-frames", "1"], "nowhere: cannot connect"),
        (["--vmc", "127.0.0.1:9000", "--curve-secret-key", "k"], "go together"),
    ],
)
def test_bad_input_is_one_line_exit_2(argv, message, capsys, monkeypatch):
    monkeypatch.setattr(stream, "stop_on_signals", threading.Event)
    assert stream.main([*argv, "--log-level", "ERROR"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mvcap stream: error: ") and message in err and err.count("\n") == 1
