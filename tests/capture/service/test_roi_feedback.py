"""Regions of interest from the node to the workers: delivery over ZeroMQ, replay, drops, CURVE."""

from __future__ import annotations

import dataclasses
import time
import uuid
from types import SimpleNamespace

import numpy as np
import pytest
import zmq
from roi_scene import person, two_cameras

from capture import wire
from capture.service.feedback import REPLAY_FRAMES, RoiPublisher, RoiSubscriber, check_feedback_endpoint
from core.config import NodeConfig
from core.errors import ConfigError


def _frame(f: int) -> SimpleNamespace:
    return SimpleNamespace(frame_idx=f, stamp_ns=1_000 + f * 16_666_667, views={})


def _result(ids: list[int]) -> SimpleNamespace:
    poses = np.stack([person((0.3 * k, 0.0, 4.0)) for k in range(len(ids))]) if ids else np.zeros((0, 17, 4))
    return SimpleNamespace(track_ids=np.array(ids, np.int64), poses=poses)


def _wait_subscribed(pub: RoiPublisher, sub: RoiSubscriber) -> None:
    """Publish probe frames (index 10,000) until ``sub`` got one (its subscription reached the publisher)."""
    deadline = time.monotonic() + 10
    while sub.poll() is None:
        assert time.monotonic() < deadline, "subscription never arrived"
        pub.publish(_frame(10_000), _result([]))
        sub.sock.poll(20, zmq.POLLIN)


def test_hints_reach_their_own_camera_only():
    ctx = zmq.Context()
    endpoint = f"inproc://roi-{uuid.uuid4().hex}"
    pub = RoiPublisher(ctx, two_cameras(), endpoint)
    with RoiSubscriber(ctx, endpoint, "cam01") as s1, RoiSubscriber(ctx, endpoint, "cam02") as s2:
        _wait_subscribed(pub, s1)
        _wait_subscribed(pub, s2)
        for f in range(3):
            pub.publish(_frame(f), _result([1, 2]))
        last = {}
        for sub in (s1, s2):
            got = [sub.wait_for(f, 5.0) for f in range(3)]
            assert [h.frame_idx for h in got] == [0, 1, 2] and all(h.camera == sub.camera for h in got)
            assert [h.full for h in got] == [True, False, False] and got[2].track_ids.tolist() == [1, 2]
            assert sub.dropped == 0 and sub.poll().frame_idx == 10_000
            last[sub.camera] = got[2].boxes
        # cam02 sits 1 m to the right of cam01: at 4 m its people lie 250 px further left, same size.
        np.testing.assert_allclose(last["cam02"][:, [0, 2]], last["cam01"][:, [0, 2]] - 250, atol=1e-3)
        np.testing.assert_allclose(last["cam02"][:, [1, 3]], last["cam01"][:, [1, 3]], atol=1e-3)
        assert pub.sent == 2 * pub.planner.frames  # one hint per camera per frame, probes included
    pub.close()
    ctx.term()


def test_wait_for_gives_the_asked_frame_and_none_on_timeout():
    ctx = zmq.Context()
    endpoint = f"inproc://roi-{uuid.uuid4().hex}"
    pub = RoiPublisher(ctx, two_cameras(), endpoint)
    with RoiSubscriber(ctx, endpoint, "cam02") as sub:
        _wait_subscribed(pub, sub)
        for f in (5, 6, 7):
            pub.publish(_frame(f), _result([3] if f != 6 else [3, 4]))
        hint = sub.wait_for(6, 5.0)
        assert hint.frame_idx == 6 and hint.track_ids.tolist() == [3, 4] and hint.full  # 6 changed the set
        assert sub.poll().frame_idx == 10_000  # the newest, by frame index
        t0 = time.monotonic()
        assert sub.wait_for(10_001, 0.2) is None
        assert 0.19 <= time.monotonic() - t0 < 2.0
    pub.close()
    ctx.term()


def test_a_late_subscriber_gets_the_hints_it_missed():
    """ZeroMQ's slow joiner: hints published before the worker's subscription arrived are replayed."""
    ctx = zmq.Context()
    endpoint = f"inproc://roi-{uuid.uuid4().hex}"
    pub = RoiPublisher(ctx, two_cameras(), endpoint)
    for f in range(REPLAY_FRAMES + 5):  # nobody listens yet; the oldest 5 fall out of the replay buffer
        pub.publish(_frame(f), _result([1]))
    with RoiSubscriber(ctx, endpoint, "cam01") as sub:
        deadline = time.monotonic() + 10
        while not pub.poll() and time.monotonic() < deadline:
            time.sleep(0.005)
        assert pub.replayed == REPLAY_FRAMES  # cam01's only
        assert sub.wait_for(5, 5.0).frame_idx == 5 and sub.wait_for(REPLAY_FRAMES + 4, 5.0) is not None
        assert sub.wait_for(4, 0.05) is None  # older than the buffer: not replayed, so it times out
    pub.close()
    ctx.term()


def test_malformed_and_foreign_messages_are_dropped_and_counted():
    ctx = zmq.Context()
    endpoint = f"inproc://roi-{uuid.uuid4().hex}"
    raw = ctx.socket(zmq.XPUB)
    raw.bind(endpoint)
    with RoiSubscriber(ctx, endpoint, "cam01") as sub:
        assert raw.poll(5000, zmq.POLLIN) and raw.recv() == b"\x01rois.cam01."
        good = wire.RoiHint("cam01", 3, 9, np.array([[1.0, 2.0, 30.0, 40.0]]), np.array([5]), False)
        frames = [bytes(f) for f in wire.encode_rois(good)]
        raw.send_multipart([frames[0], b"{not json", *frames[2:]])
        raw.send_multipart([frames[0], frames[1], frames[2][:-4], frames[3]])  # short buffer
        raw.send_multipart(frames)
        hint = sub.wait_for(3, 5.0)
        assert hint.boxes.tolist() == [[1.0, 2.0, 30.0, 40.0]] and sub.dropped == 2 and sub.received == 1
    raw.close(0)
    ctx.term()


def test_feedback_beyond_loopback_needs_curve():
    check_feedback_endpoint(NodeConfig())  # loopback default
    exposed = dataclasses.replace(NodeConfig(), feedback_endpoint="tcp://0.0.0.0:5557")
    with pytest.raises(ConfigError, match="feedback_endpoint tcp://0.0.0.0:5557 is reachable"):
        check_feedback_endpoint(exposed)
    check_feedback_endpoint(dataclasses.replace(exposed, curve_secret_key="node.key_secret"))
    with pytest.raises(ConfigError, match="tcp://, ipc:// or inproc://"):
        NodeConfig(feedback_endpoint="udp://127.0.0.1:5557")


def test_curve_feedback_reaches_keyed_workers_only(tmp_path):
    """With CURVE the feedback socket accepts the cameras' keys (as the node input); a plain worker gets nothing."""
    from capture.service.keys import make_keys
    from capture.service.launcher import free_tcp_endpoint
    from capture.service.security import NodeSecurity, secure_client

    make_keys(tmp_path, ["node", "cam01", "cam02"])
    endpoint = free_tcp_endpoint()
    node_cfg = NodeConfig(
        curve_secret_key=str(tmp_path / "node.key_secret"), curve_clients_dir=str(tmp_path), feedback_endpoint=endpoint
    )
    ctx = zmq.Context()
    security = NodeSecurity(ctx, node_cfg, ["cam01", "cam02"])
    pub = RoiPublisher(ctx, two_cameras(), endpoint, security)

    def keyed(sock: zmq.Socket) -> None:
        secure_client(sock, tmp_path / "cam01.key_secret", tmp_path / "node.key")

    with RoiSubscriber(ctx, endpoint, "cam01", secure=keyed) as good, RoiSubscriber(ctx, endpoint, "cam01") as plain:
        _wait_subscribed(pub, good)
        pub.publish(_frame(1), _result([1]))
        assert good.wait_for(1, 5.0).track_ids.tolist() == [1]
        assert plain.wait_for(1, 0.3) is None and plain.received == 0
    deadline = time.monotonic() + 10
    while not security.server.rejections["feedback"] and time.monotonic() < deadline:
        security.server.poll_rejections()
        time.sleep(0.01)
    assert security.server.rejections["feedback"] >= 1  # the plain worker's handshake
    pub.close()
    security.close()
    ctx.term()
