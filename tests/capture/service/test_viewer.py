"""The live viewer's logic, with a stand-in for rerun (rerun-sdk is an optional extra)."""

from __future__ import annotations

import threading
import time

import numpy as np
import zmq
from synth import ring_rig

from capture import wire
from capture.service.launcher import free_tcp_endpoint
from capture.service.viewer import bone_segments, run_viewer, track_colour
from core.skeleton import COCO17
from core.types import Poses3D


class FakeRerun:
    """Records what would be logged; archetypes become (name, args, kwargs) tuples."""

    def __init__(self) -> None:
        self.logged: list[tuple[str, object]] = []
        self.times: list[int] = []

    def __getattr__(self, name: str):
        return lambda *a, **k: (name, a, k)

    def log(self, path: str, item: object, static: bool = False) -> None:
        self.logged.append((path, item))

    def set_time(self, timeline: str, sequence: int) -> None:
        self.times.append(sequence)


def test_bone_segments_and_colours():
    pose = np.zeros((17, 4))
    pose[:, 3] = 1.0
    pose[:, :3] = np.arange(51).reshape(17, 3)
    assert bone_segments(pose, COCO17).shape == (len(COCO17.limbs), 2, 3)
    pose[COCO17.index("left_knee"), 3] = 0
    assert bone_segments(pose, COCO17).shape[0] == len(COCO17.limbs) - 2
    assert len({track_colour(i) for i in range(1, 7)}) == 6 and all(0 <= c <= 255 for c in track_colour(42))


def test_viewer_logs_cameras_people_and_clears_ended_tracks():
    rr = FakeRerun()
    endpoint = free_tcp_endpoint()
    ctx = zmq.Context.instance()
    pub = ctx.socket(zmq.PUB)
    pub.bind(endpoint)
    stop = threading.Event()
    shown: list[int] = []
    t = threading.Thread(target=lambda: shown.append(run_viewer(rr, endpoint, ring_rig(), stop, max_frames=3)))
    t.start()
    pose = np.zeros((2, 17, 4))
    pose[..., 3] = 1.0
    frames = [
        Poses3D(0, 0, np.array([1, 2]), pose),
        Poses3D(1, 1, np.array([1, 2]), pose),
        Poses3D(2, 2, np.array([1]), pose[:1]),
    ]
    sent = 0
    deadline = time.monotonic() + 20
    while t.is_alive() and time.monotonic() < deadline:
        pub.send_multipart(wire.encode_poses3d(frames[min(sent, 2)], {"skeleton": "coco17"}))
        sent += 1
        time.sleep(0.02)
    t.join(5)
    pub.close(0)
    assert shown == [3]
    paths = [p for p, _ in rr.logged]
    assert sum(p.startswith("world/cameras/") for p in paths) == 2 * 4  # transform + pinhole per camera
    assert "world/people/1/joints" in paths and "world/people/2/bones" in paths
    cleared = [(p, item) for p, item in rr.logged if isinstance(item, tuple) and item[0] == "Clear"]
    assert [p for p, _ in cleared] == ["world/people/2"]  # track 2 ended in the last frame
    assert rr.times[-1] >= 1
