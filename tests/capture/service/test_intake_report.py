"""What the node accepts from the wire (intake) and the end-of-run verdict (report)."""

from __future__ import annotations

import numpy as np

from capture import wire
from capture.service.intake import MAX_EVENTS, Intake
from capture.service.report import completeness, format_summary
from core.types import Detections2D
from fusion.rgbd import RGBDDetections

CAMS = ("cam01", "cam02")


def _pose2d(cam: str, frame: int, scores: list[float], meta: dict | None = None) -> list[bytes]:
    poses = np.stack([np.full((17, 3), s, np.float32) for s in scores]) if scores else np.zeros((0, 17, 3), np.float32)
    boxes = np.array([[0, 0, 1, 1, s] for s in scores], np.float32).reshape(-1, 5)
    dets = Detections2D(cam, frame, 1000 + frame, poses, boxes)
    return [bytes(f) for f in wire.encode_detections(dets, meta)]


def _beat(cam: str, meta: dict) -> list[bytes]:
    return [bytes(f) for f in wire.encode(wire.Message("heartbeat", cam, -1, 1, {}, meta))]


def test_people_cap_keeps_the_most_confident_in_their_order():
    intake = Intake(CAMS, 17, max_people=3, heartbeat_timeout_s=3.0)
    dets, _ = intake.accept(_pose2d("cam01", 5, [0.2, 0.9, 0.5, 0.95, 0.1]))
    assert dets.boxes[:, 4].tolist() == np.float32([0.9, 0.5, 0.95]).tolist()
    assert intake.dropped["people_capped"] == 1


def test_people_cap_keeps_the_lifted_joints_of_the_people_kept():
    intake = Intake(CAMS, 17, max_people=2, heartbeat_timeout_s=3.0)
    scores = [0.2, 0.9, 0.95]
    poses = np.stack([np.full((17, 3), s, np.float32) for s in scores])
    boxes = np.array([[0, 0, 1, 1, s] for s in scores], np.float32)
    joints3d = np.stack([np.full((17, 4), k + 1, np.float32) for k in range(3)])  # person k: value k + 1
    joints3d[..., 3] = 1.0
    cov = np.tile(np.eye(3, dtype=np.float32) * 1e-4, (3, 17, 1, 1))
    dets = RGBDDetections("cam01", 4, 1004, poses, boxes, joints3d, cov)
    got, _ = intake.accept([bytes(f) for f in wire.encode_detections(dets)])
    assert isinstance(got, RGBDDetections) and intake.dropped["people_capped"] == 1
    assert got.joints3d[:, 0, 0].tolist() == [2.0, 3.0] and got.joints3d_cov.shape == (2, 17, 3, 3)


def test_people_cap_keeps_the_descriptors_of_the_people_kept():
    intake = Intake(CAMS, 17, max_people=2, heartbeat_timeout_s=3.0)
    scores = [0.2, 0.9, 0.95]
    poses = np.stack([np.full((17, 3), s, np.float32) for s in scores])
    boxes = np.array([[0, 0, 1, 1, s] for s in scores], np.float32)
    emb = np.eye(3, 8, dtype=np.float32)  # person k: unit vector k
    dets = Detections2D("cam01", 4, 1004, poses, boxes, embeddings=emb)
    got, _ = intake.accept([bytes(f) for f in wire.encode_detections(dets)])
    assert intake.dropped["people_capped"] == 1
    assert got.embeddings is not None and got.embeddings.argmax(axis=1).tolist() == [1, 2]


def test_declared_previous_frame_is_taken_only_when_sane():
    intake = Intake(CAMS, 17, max_people=64, heartbeat_timeout_s=3.0)
    assert intake.accept(_pose2d("cam01", 5, [0.9], {"prev": [3, 1003]}))[1] == (3, 1003)
    assert intake.accept(_pose2d("cam01", 0, [0.9], {"prev": [-1, -1]}))[1] == (-1, -1)
    for bad in ([9, 1003], [3, 99999], [3], "3", [3.0, 1003], [True, 1003]):  # after the frame, not ints
        assert intake.accept(_pose2d("cam01", 5, [0.9], {"prev": bad}))[1] is None, bad


def test_lifecycle_events_are_bounded_and_repeated_hellos_only_counted():
    intake = Intake(CAMS, 17, max_people=64, heartbeat_timeout_s=3.0)
    hello = {"event": "hello", "host": "rig-pc\nFAKE LINE", "pid": 42}
    for _ in range(100):
        intake.accept(_beat("cam01", hello))
    assert intake.cameras["cam01"].hellos == 100 and intake.cameras["cam01"].state == "hello"
    assert [e["event"] for e in intake.events] == ["hello"] and intake.events[0]["host"] == "rig-pc?FAKE LINE"
    intake.accept(_beat("cam01", {"event": "ready"}))
    assert intake.ready() == {"cam01"}
    for pid in range(2 * MAX_EVENTS):  # restarts with new pids: each recorded, up to the bound
        intake.accept(_beat("cam02", {"event": "hello", "host": "h", "pid": pid}))
    assert len(intake.events) == MAX_EVENTS and intake.events_not_kept == 2 * MAX_EVENTS + 2 - MAX_EVENTS


def test_a_repeated_hello_read_after_the_end_of_stream_revives_nothing():
    """A flood of one sender's hellos can be read after the camera's end of stream (ZeroMQ queues
    each peer apart): the repeats leave the camera ended; a new process (another pid) revives it."""
    intake = Intake(CAMS, 17, max_people=64, heartbeat_timeout_s=3.0)
    hello = {"event": "hello", "host": "h", "pid": 7}
    intake.accept(_beat("cam02", hello))
    intake.accept(_pose2d("cam02", 0, [0.9]))
    intake.accept([bytes(f) for f in wire.encode(wire.Message("eos", "cam02", 0, 1, {}, {"frames": 1}))])
    assert intake.cameras["cam02"].state == "ended"
    intake.accept(_beat("cam02", hello))
    assert intake.cameras["cam02"].state == "ended"
    intake.accept(_beat("cam02", hello | {"pid": 8}))  # the worker restarted
    assert intake.cameras["cam02"].state == "hello"


def test_a_ready_state_in_a_heartbeat_counts_for_a_node_started_later():
    intake = Intake(CAMS, 17, max_people=64, heartbeat_timeout_s=3.0)
    intake.accept(_beat("cam02", {"frames": 10, "skipped": 4, "state": "ready"}))
    assert intake.ready() == {"cam02"} and intake.cameras["cam02"].skipped == 4


def _summary(**changes) -> dict:
    base = {
        "cameras": list(CAMS),
        "lossless": True,
        "interrupted": False,
        "started_without": [],
        "output_error": None,
        "workers": {c: {"frames": 100} for c in CAMS},
        "frames_per_camera": {c: 100 for c in CAMS},
        "cameras_ended": list(CAMS),
        "cameras_dead": [],
    }
    return base | changes


def test_verdict_rules():
    assert completeness(_summary()) == (True, [])
    # Offline: a frame lost is a failure; a camera without end of stream too.
    ok, why = completeness(_summary(frames_per_camera={"cam01": 100, "cam02": 97}))
    assert not ok and why == ["cam02: 3 of 100 frames lost"]
    ok, why = completeness(_summary(cameras_ended=["cam01"]))
    assert not ok and why == ["cam02 sent no end of stream"]
    # Live: frames skipped or late are the price of keeping up...
    assert completeness(_summary(lossless=False, frames_per_camera={"cam01": 40, "cam02": 35}))[0]
    # ...but a camera dead at the end, one never ready, a worker error or an unwritten output are not.
    dead = {"cameras_ended": ["cam01"], "cameras_dead": ["cam02"]}
    assert not completeness(_summary(lossless=False, **dead))[0]
    alive_again = {"cameras_ended": ["cam01"], "cameras_dead": []}  # dead once, then back and streaming
    assert completeness(_summary(lossless=False, **alive_again))[0]
    assert not completeness(_summary(lossless=False, started_without=["cam01"]))[0]
    assert not completeness(_summary(workers={"cam01": {"frames": 100, "error": "decoder failed"}}))[0]
    assert completeness(_summary(output_error="x: cannot write (No space left on device)"))[1] == [
        "output not written: x: cannot write (No space left on device)"
    ]


def test_console_summary_states_the_verdict_and_the_skips():
    s = _summary(lossless=False, skipped_at_source={"cam01": 7, "cam02": 0}, frames=93, outputs={"trc": ["a.trc"]})
    s["complete"], s["incomplete_because"] = completeness(s)
    text = format_summary(s, "run")
    assert "cam01 100/100 (7 skipped)" in text and "result: complete" in text and "a.trc" in text
    s["complete"], s["incomplete_because"] = False, ["cam02 is dead (no end of stream)"]
    assert "result: INCOMPLETE: cam02 is dead" in format_summary(s, "run")
