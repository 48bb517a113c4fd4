"""VMC out: a python-osc server on loopback receives the bones, whose rotations rebuild the input's bones."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from scipy.spatial.transform import Rotation
from test_bvh import synthetic_take

from capture.outputs.bvh import yup_from_world
from capture.outputs.bvh_solve import RIG, forward_kinematics
from capture.outputs.vmc import (
    UNITY_FROM_YUP,
    VMC_BONES,
    VmcSender,
    parse_host_port,
    unity_positions,
    unity_quaternions,
)
from core.errors import InputError
from core.skeleton import COCO17
from core.types import Poses3D

pythonosc = pytest.importorskip("pythonosc")
from pythonosc.dispatcher import Dispatcher  # noqa: E402
from pythonosc.osc_server import BlockingOSCUDPServer  # noqa: E402

UNITY_NAMES = [name for _, name in VMC_BONES]
PARENT = {j.unity: RIG[j.parent].unity for j in RIG if j.unity is not None and j.parent >= 0}


class Receiver:
    """A VMC receiver on 127.0.0.1 (one thread: datagrams handled in order), split into frames."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, tuple]] = []
        self.cond = threading.Condition()
        dispatcher = Dispatcher()
        dispatcher.set_default_handler(self._on)
        self.server = BlockingOSCUDPServer(("127.0.0.1", 0), dispatcher)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def _on(self, address: str, *args: object) -> None:
        with self.cond:
            self.messages.append((address, args))
            self.cond.notify_all()

    def frames(self, n: int, timeout: float = 10.0) -> list[dict]:
        """The first ``n`` frames (split at each /VMC/Ext/T), waiting for them."""
        with self.cond:
            self.cond.wait_for(lambda: sum(a == "/VMC/Ext/T" for a, _ in self.messages) >= n, timeout)
            msgs = list(self.messages)
        out, cur = [], {"bones": {}}
        for address, args in msgs:
            if address == "/VMC/Ext/Bone/Pos":
                cur["bones"][args[0]] = np.array(args[1:], dtype=np.float64)
            else:
                cur[address] = args
            if address == "/VMC/Ext/T":
                out.append(cur)
                cur = {"bones": {}}
        assert len(out) >= n, f"received {len(out)} of {n} frames"
        return out[:n]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def _world_take(rng: np.random.Generator, n: int, up: str) -> np.ndarray:
    """A synthetic take (T, 17, 4) in a world whose ``up`` axis points up."""
    pts = synthetic_take(rng, n)
    world = pts.copy()
    world[..., :3] = pts[..., :3] @ yup_from_world(up)  # yup_from_world is a rotation: its inverse is .T
    return world


def _bone_dirs(points_yup: np.ndarray) -> dict[str, np.ndarray]:
    """Observed unit directions (3,) of the bones, solver frame, by the Unity bone that points along it."""
    j = {name: points_yup[k, :3] for k, name in enumerate(COCO17.joints)}
    pairs = {
        "LeftUpperArm": ("left_shoulder", "left_elbow"), "LeftLowerArm": ("left_elbow", "left_wrist"),
        "RightUpperArm": ("right_shoulder", "right_elbow"), "RightLowerArm": ("right_elbow", "right_wrist"),
        "LeftUpperLeg": ("left_hip", "left_knee"), "LeftLowerLeg": ("left_knee", "left_ankle"),
        "RightUpperLeg": ("right_hip", "right_knee"), "RightLowerLeg": ("right_knee", "right_ankle"),
    }  # fmt: skip
    out = {b: (j[e] - j[s]) / np.linalg.norm(j[e] - j[s]) for b, (s, e) in pairs.items()}
    neck = (j["left_shoulder"] + j["right_shoulder"]) / 2
    spine = neck - (j["left_hip"] + j["right_hip"]) / 2
    out["Spine"] = spine / np.linalg.norm(spine)
    clav = j["left_shoulder"] - neck
    out["LeftShoulder"] = clav / np.linalg.norm(clav)
    return out


REST_DIR = {  # rest direction of each bone, solver frame (T-pose facing +Z, left along +X)
    "LeftUpperArm": (1, 0, 0), "LeftLowerArm": (1, 0, 0), "RightUpperArm": (-1, 0, 0), "RightLowerArm": (-1, 0, 0),
    "LeftUpperLeg": (0, -1, 0), "LeftLowerLeg": (0, -1, 0), "RightUpperLeg": (0, -1, 0), "RightLowerLeg": (0, -1, 0),
    "Spine": (0, 1, 0), "LeftShoulder": (1, 0, 0),
}  # fmt: skip


def test_unity_conversion_mirrors_x_and_keeps_rotations_consistent(rng):
    assert np.isclose(np.linalg.det(UNITY_FROM_YUP), -1.0)  # right-handed to left-handed
    assert unity_positions(np.array([[1.0, 2.0, 3.0]])).tolist() == [[-1.0, 2.0, 3.0]]
    rots = Rotation.random(20, random_state=1).as_matrix()
    q = unity_quaternions(rots)
    v = rng.normal(size=(20, 3))
    # Rotating in our frame then converting == converting then applying the Unity quaternion.
    rotated = unity_positions(np.einsum("tij,tj->ti", rots, v))
    assert np.allclose(Rotation.from_quat(q).apply(unity_positions(v)), rotated)
    xyzw = Rotation.from_matrix(rots).as_quat()
    flipped = xyzw * [1, -1, -1, 1]
    assert np.allclose(np.abs((q * flipped).sum(1)), 1.0)  # (qx, -qy, -qz, qw) up to sign


def test_parse_host_port():
    assert parse_host_port("192.168.1.5:39540") == ("192.168.1.5", 39540)
    assert parse_host_port("[::1]:9000") == ("::1", 9000) and parse_host_port("::1") == ("::1", 39539)
    for bad in ("host:0", "host:70000", ":9000", "host:port"):
        with pytest.raises(InputError, match="HOST:PORT"):
            parse_host_port(bad)


def test_receiver_gets_the_bones_and_their_rotations_rebuild_the_input(receiver, rng):
    world = _world_take(rng, 12, "-y")  # a Panoptic-like world: y down
    sender = VmcSender("127.0.0.1", receiver.port, up="-y")
    for f in range(12):
        assert sender.send(Poses3D(f, 1_000_000_000 + f * 33_333_333, np.array([4]), world[f : f + 1])) == 4
    frames = receiver.frames(12)
    sender.close()
    yup = world.copy()
    yup[..., :3] = world[..., :3] @ yup_from_world("-y").T
    for f, got in enumerate(frames):
        assert set(got["bones"]) == set(UNITY_NAMES) and len(UNITY_NAMES) == 18
        assert got["/VMC/Ext/Root/Pos"] == ("root", 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0)
        assert got["/VMC/Ext/OK"] == (1, 3, 0, 1) and got["/VMC/Ext/T"][0] == pytest.approx(f * 0.033333333, abs=1e-6)
        # Unity local quaternions -> our frame -> world rotations along the Unity hierarchy.
        world_rot: dict[str, np.ndarray] = {}
        for name in UNITY_NAMES:  # parents first
            q = got["bones"][name][3:]
            local = UNITY_FROM_YUP @ Rotation.from_quat(q).as_matrix() @ UNITY_FROM_YUP
            world_rot[name] = local if name == "Hips" else world_rot[PARENT[name]] @ local
        for bone, direction in _bone_dirs(yup[f]).items():
            rebuilt = world_rot[bone] @ np.asarray(REST_DIR[bone], float)
            assert np.degrees(np.arccos(np.clip(rebuilt @ direction, -1, 1))) < 0.01, (f, bone)
        hips = (yup[f, COCO17.index("left_hip"), :3] + yup[f, COCO17.index("right_hip"), :3]) / 2
        assert np.allclose(got["bones"]["Hips"][:3], unity_positions(hips[None])[0], atol=1e-5)
        # Non-root bones carry their rest offset (Unity frame): the left upper arm sits at +clavicle, i.e. -X.
        assert got["bones"]["LeftUpperArm"][0] < 0 and got["bones"]["RightUpperArm"][0] > 0


def test_positions_rebuilt_from_the_stream_match_the_input(receiver, rng):
    """Forward kinematics of the received rotations (with the rest offsets sent) puts the wrists back."""
    world = _world_take(rng, 40, "z")
    sender = VmcSender("127.0.0.1", receiver.port)
    for f in range(40):
        sender.send(Poses3D(f, f * 10**7, np.array([1]), world[f : f + 1]))
    got = receiver.frames(40)[-1]
    sender.close()
    rest = sender.performer.solver.rest
    local = np.tile(np.eye(3), (1, len(RIG), 1, 1))
    root = UNITY_FROM_YUP @ got["bones"]["Hips"][:3]
    for k, j in enumerate(RIG):
        if j.unity is not None:
            local[0, k] = UNITY_FROM_YUP @ Rotation.from_quat(got["bones"][j.unity][3:]).as_matrix() @ UNITY_FROM_YUP
            if j.unity != "Hips":
                assert np.allclose(UNITY_FROM_YUP @ got["bones"][j.unity][:3], rest.offsets[k], atol=1e-6)
    pos, _ = forward_kinematics(root[None], local, rest)
    yup = world[-1, :, :3] @ yup_from_world("z").T
    for rig_name, coco in (("LeftHand", "left_wrist"), ("RightFoot", "right_ankle"), ("LeftLeg", "left_knee")):
        assert np.linalg.norm(pos[0, [j.name for j in RIG].index(rig_name)] - yup[COCO17.index(coco)]) < 1e-3


def test_performers_are_chosen_held_and_released(receiver, rng):
    world = _world_take(rng, 3, "z")
    first = VmcSender("127.0.0.1", receiver.port, release_s=0.5)
    fixed = VmcSender("127.0.0.1", receiver.port, person=9)

    def frame(f: int, ids: list[int]) -> Poses3D:
        return Poses3D(f, f * 100_000_000, np.array(ids, dtype=np.int64), np.repeat(world[:1], len(ids), 0))

    assert fixed.send(frame(0, [5, 2])) is None  # track 9 not seen yet: nothing sent
    assert first.send(frame(0, [5, 2]), taken={9}) == 2  # the lowest free id
    assert first.send(frame(1, [5, 3]), taken={9}) == 2  # 2 is gone: its last pose is held...
    got = receiver.frames(2)
    assert got[0]["/VMC/Ext/OK"][3] == 1 and got[1]["/VMC/Ext/OK"][3] == 0  # ... with tracking 0
    assert np.allclose(got[1]["bones"]["Hips"], got[0]["bones"]["Hips"])
    assert first.send(frame(7, [5, 3]), taken={9, 3}) == 5  # ... until release_s passed: then the lowest free
    assert fixed.send(frame(8, [9, 5])) == 9 and fixed.send(frame(9, [5])) == 9  # a fixed id is kept
    first.close()
    fixed.close()


def test_unresolvable_host_is_an_input_error():
    with pytest.raises(InputError, match="cannot resolve"):
        VmcSender("no-such-host.invalid", 39539)
