"""CURVE security: key files, allow-listed handshakes on loopback TCP, per-camera User-Id, exposure."""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq

from capture import wire
from capture.cli import main as cli_main
from capture.service.security import (
    CurveServer,
    is_loopback,
    load_keypair,
    load_public_key,
    load_public_keys,
    peer_name,
    secure_client,
    warn_if_exposed,
)
from core.errors import CaptureError, ConfigError, InputError

WAIT_S = 5.0  # bound of every wait; each step normally takes milliseconds
NAMES = ("node", "cam01", "cam02", "intruder")


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("keys")
    assert cli_main(["keys", "--out", str(out), "--names", ",".join(NAMES)]) == 0
    return out


@pytest.fixture
def ctx() -> Iterator[zmq.Context]:
    context = zmq.Context()
    yield context
    context.destroy(linger=0)


@pytest.fixture
def server(ctx: zmq.Context, keys: Path) -> Iterator[tuple[CurveServer, zmq.Socket, str]]:
    """A node-like SUB bound on a free loopback port, allowing cam01 and cam02 only."""
    auth = CurveServer(ctx)
    sub = ctx.socket(zmq.SUB)
    sub.linger = 0
    sub.subscribe(b"")
    auth.secure(sub, keys / "node.key_secret", load_public_keys(keys, ["cam01", "cam02"]))
    sub.bind("tcp://127.0.0.1:*")
    yield auth, sub, sub.last_endpoint.decode()
    sub.close()
    auth.close()


def _client(ctx: zmq.Context, endpoint: str, keys: Path, name: str | None) -> zmq.Socket:
    """A worker-like XPUB that connects; CURVE client with ``name``'s key, or plain if None."""
    sock = ctx.socket(zmq.XPUB)
    sock.linger = 0
    if name is not None:
        secure_client(sock, keys / f"{name}.key_secret", keys / "node.key")
    sock.connect(endpoint)
    return sock


def _subscribed(client: zmq.Socket, sub: zmq.Socket, timeout_s: float) -> bool:
    """Whether the node's subscription reaches the client (the SUB must be polled to attach peers)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if client.poll(10):
            return client.recv()[:1] == b"\x01"
        sub.poll(10)
    return False


def _send_and_receive(client: zmq.Socket, sub: zmq.Socket, camera: str) -> list[zmq.Frame]:
    msg = wire.Message("heartbeat", camera, 0, time.time_ns(), {}, {"event": "hello"})
    client.send_multipart(wire.encode(msg))
    assert sub.poll(int(WAIT_S * 1000)), "no message arrived"
    return sub.recv_multipart(copy=False)


def _rejections_reach(auth: CurveServer, n: int) -> int:
    total, deadline = 0, time.monotonic() + WAIT_S
    while total < n and time.monotonic() < deadline:
        total += auth.poll_rejections()
        time.sleep(0.01)
    return total


# (1) keys command -------------------------------------------------------------------------------
def test_keys_command_writes_private_secrets_and_refuses_overwrite(tmp_path: Path, capsys) -> None:
    out = tmp_path / "keys"
    assert cli_main(["keys", "--out", str(out), "--names", "node,cam01"]) == 0
    printed = capsys.readouterr().out
    assert "[node]" in printed and "node.key_secret" in printed and "cam01" in printed
    assert sorted(p.name for p in out.iterdir()) == ["cam01.key", "cam01.key_secret", "node.key", "node.key_secret"]
    for name in ("node", "cam01"):
        assert stat.S_IMODE((out / f"{name}.key_secret").stat().st_mode) == 0o600
        public, secret = load_keypair(out / f"{name}.key_secret")
        assert load_public_key(out / f"{name}.key") == public and len(secret) == 40
        assert b"secret-key" not in (out / f"{name}.key").read_bytes()
    assert load_public_key(out / "node.key") != load_public_key(out / "cam01.key")

    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert cli_main(["keys", "--out", str(out), "--names", "cam02,cam01"]) == 2
    assert "refusing to overwrite" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # cam02 not written either

    assert cli_main(["keys", "--out", str(out), "--names", "cam01", "--force"]) == 0
    assert (out / "cam01.key").read_bytes() != before["cam01.key"]
    assert stat.S_IMODE((out / "cam01.key_secret").stat().st_mode) == 0o600

    assert cli_main(["keys", "--out", str(out), "--names", "cam.1"]) == 2  # would break topics/files
    assert cli_main(["keys", "--out", str(out), "--names", "a,a"]) == 2


def test_bad_key_files_are_one_line_input_errors(tmp_path: Path, keys: Path, ctx: zmq.Context) -> None:
    missing = tmp_path / "nope.key"
    with pytest.raises(InputError, match="nope.key"):
        load_public_key(missing)
    garbage = tmp_path / "garbage.key"
    garbage.write_text('curve\n    public-key = "too-short"\n')
    with pytest.raises(InputError, match="garbage.key"):
        load_public_key(garbage)
    with pytest.raises(InputError, match="cam01.key"):  # a public file holds no secret
        load_keypair(keys / "cam01.key")
    with pytest.raises(InputError, match="cam09.key"):
        load_public_keys(keys, ["cam01", "cam09"])
    sock = ctx.socket(zmq.XPUB)
    with pytest.raises(InputError, match="nope.key"):
        secure_client(sock, keys / "cam01.key_secret", missing)
    sock.close(linger=0)


def test_server_refuses_unsafe_setups(ctx: zmq.Context, keys: Path) -> None:
    with CurveServer(ctx) as auth:
        with pytest.raises(CaptureError, match="ZAP handler"):
            CurveServer(ctx)  # one handler per Context
        other = zmq.Context()
        try:
            foreign = other.socket(zmq.SUB)
            with pytest.raises(CaptureError, match="another ZeroMQ Context"):  # its handshakes skip our ZAP
                auth.secure(foreign, keys / "node.key_secret", {"cam01": keys / "cam01.key"})
            foreign.close(linger=0)
        finally:
            other.term()
        sub = ctx.socket(zmq.SUB)
        with pytest.raises(ConfigError, match="cam01"):  # one key, two identities
            auth.secure(sub, keys / "node.key_secret", {"cam01": keys / "cam01.key", "cam03": keys / "cam01.key"})
        sub.bind("tcp://127.0.0.1:*")
        with pytest.raises(CaptureError, match="before"):
            auth.secure(sub, keys / "node.key_secret", {"cam01": keys / "cam01.key"})
        sub.close(linger=0)


# (2) allowed client ----------------------------------------------------------------------------
def test_allowed_client_gets_through_with_its_camera_name(ctx: zmq.Context, keys: Path, server) -> None:
    auth, sub, endpoint = server
    client = _client(ctx, endpoint, keys, "cam01")
    assert _subscribed(client, sub, WAIT_S)
    frames = _send_and_receive(client, sub, "cam01")
    assert peer_name(frames[0]) == "cam01"
    assert peer_name(frames[1]) == "cam01"
    assert wire.decode([f.buffer for f in frames]).camera == "cam01"
    assert peer_name(frames[0].bytes) is None  # copy=True drops the metadata
    assert auth.poll_rejections() == 0 and auth.rejections == {"input": 0}
    client.close()


# (3) rejected clients --------------------------------------------------------------------------
@pytest.mark.parametrize("name", [None, "intruder"], ids=["plain", "unknown-key"])
def test_unlisted_clients_get_nothing_through_and_are_counted(
    ctx: zmq.Context, keys: Path, server, name: str | None
) -> None:
    auth, sub, endpoint = server
    bad = _client(ctx, endpoint, keys, name)
    assert not _subscribed(bad, sub, 0.5)
    for _ in range(5):
        bad.send_multipart(wire.encode(wire.Message("heartbeat", "cam01", 0, 0, {}, {})))
    assert _rejections_reach(auth, 1) >= 1
    assert auth.rejections["input"] >= 1
    assert not sub.poll(300)
    # the server still works: an allowed client connects afterwards, and only its message arrives
    good = _client(ctx, endpoint, keys, "cam02")
    assert _subscribed(good, sub, WAIT_S)
    frames = _send_and_receive(good, sub, "cam02")
    assert peer_name(frames[0]) == "cam02"
    assert not sub.poll(100)
    bad.close()
    good.close()


def test_plain_sockets_have_no_peer_name(ctx: zmq.Context) -> None:
    sub, pub = ctx.socket(zmq.SUB), ctx.socket(zmq.XPUB)
    sub.subscribe(b"")
    sub.bind("tcp://127.0.0.1:*")
    pub.connect(sub.last_endpoint.decode())
    assert _subscribed(pub, sub, WAIT_S)
    frames = _send_and_receive(pub, sub, "cam01")
    assert peer_name(frames[0]) is None
    sub.close(linger=0)
    pub.close(linger=0)


# (4) a key cannot speak for another camera ------------------------------------------------------
def test_key_of_cam02_speaking_as_cam01_is_identified(ctx: zmq.Context, keys: Path, server) -> None:
    _, sub, endpoint = server
    client = _client(ctx, endpoint, keys, "cam02")
    assert _subscribed(client, sub, WAIT_S)
    frames = _send_and_receive(client, sub, "cam01")
    msg = wire.decode([f.buffer for f in frames])
    assert msg.camera == "cam01"
    assert peer_name(frames[0]) == "cam02" != msg.camera  # the node drops and counts this one
    client.close()


def test_output_side_has_its_own_allow_list(ctx: zmq.Context, keys: Path, server) -> None:
    """The node PUB as a second CURVE server (domain 'output') in the same Context."""
    auth, _, _ = server
    pub = ctx.socket(zmq.PUB)
    pub.linger = 0
    auth.secure(pub, keys / "node.key_secret", {"intruder": load_public_key(keys / "intruder.key")}, "output")
    pub.bind("tcp://127.0.0.1:*")
    endpoint = pub.last_endpoint.decode()
    got = {}
    for name in ("intruder", "cam01"):  # a viewer allowed on the output; cam01 is not
        sub = ctx.socket(zmq.SUB)
        sub.linger = 0
        sub.subscribe(b"")
        secure_client(sub, keys / f"{name}.key_secret", keys / "node.key")
        sub.connect(endpoint)
        deadline = time.monotonic() + (WAIT_S if name == "intruder" else 0.5)
        got[name] = False
        while not got[name] and time.monotonic() < deadline:
            pub.send(b"pose3d.")
            got[name] = bool(sub.poll(20))
        sub.close()
    assert got == {"intruder": True, "cam01": False}
    _rejections_reach(auth, 1)
    assert auth.rejections["output"] >= 1 and auth.rejections["input"] == 0
    pub.close()


# (5) exposure ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("endpoint", "local"),
    [
        ("tcp://127.0.0.1:5555", True),
        ("tcp://127.1.2.3:5555", True),
        ("tcp://localhost:5555", True),
        ("tcp://[::1]:5555", True),
        ("ipc:///tmp/mvcap.sock", True),
        ("inproc://node", True),
        ("tcp://*:5555", False),
        ("tcp://0.0.0.0:5555", False),
        ("tcp://[::]:5555", False),
        ("tcp://192.168.1.20:5555", False),
        ("tcp://10.0.0.1:5555", False),
        ("tcp://node.example.org:5555", False),
        ("tcp://eth0:5555", False),
        ("tcp://127.0.0.1.evil.org:5555", False),
        ("pgm://127.0.0.1;239.192.1.1:5555", False),
        ("127.0.0.1:5555", False),
    ],
)
def test_is_loopback(endpoint: str, local: bool) -> None:
    assert is_loopback(endpoint) is local


def test_warn_if_exposed(caplog) -> None:
    with caplog.at_level("WARNING"):
        assert warn_if_exposed("tcp://*:5555", curve_enabled=False)
        assert not warn_if_exposed("tcp://*:5555", curve_enabled=True)
        assert not warn_if_exposed("tcp://127.0.0.1:5555", curve_enabled=False)
    assert [r.levelname for r in caplog.records] == ["WARNING"] and "tcp://*:5555" in caplog.text


def test_secret_readable_by_others_is_warned(tmp_path: Path, keys: Path, caplog) -> None:
    leaky = tmp_path / "leaky.key_secret"
    leaky.write_bytes((keys / "cam01.key_secret").read_bytes())
    os.chmod(leaky, 0o644)
    with caplog.at_level("WARNING"):
        load_keypair(leaky)
    assert "chmod 600" in caplog.text
