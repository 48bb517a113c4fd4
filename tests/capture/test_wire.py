import json

import numpy as np
import pytest

from capture import wire
from core.errors import MessageError
from core.types import Detections2D, Poses3D


def _dets(rng, P=3):
    poses = rng.uniform(0, 1000, size=(P, 17, 3)).astype(np.float32)
    boxes = rng.uniform(0, 1000, size=(P, 5)).astype(np.float32)
    return Detections2D("cam01", 42, 123456789, poses, boxes)


def test_detections_round_trip(rng):
    d = _dets(rng)
    frames = wire.encode_detections(d)
    assert bytes(frames[0]) == b"pose2d.cam01."
    got = wire.decode_detections(wire.decode([bytes(f) for f in frames]))
    assert got.camera == "cam01" and got.frame_idx == 42 and got.stamp_ns == 123456789
    assert np.array_equal(got.poses, d.poses) and np.array_equal(got.boxes, d.boxes)


def test_empty_detections_round_trip():
    d = Detections2D("cam02", 0, 0, np.zeros((0, 17, 3)), np.zeros((0, 5)))
    got = wire.decode_detections(wire.decode([bytes(f) for f in wire.encode_detections(d)]))
    assert got.poses.shape == (0, 17, 3) and got.boxes.shape == (0, 5)


def test_poses3d_round_trip(rng):
    p = Poses3D(7, 99, np.array([1, 4]), rng.normal(size=(2, 17, 4)))
    got = wire.decode_poses3d(wire.decode([bytes(f) for f in wire.encode_poses3d(p, {"node_ms": 1.5})]))
    assert got.track_ids.tolist() == [1, 4] and np.array_equal(got.poses, p.poses)


def _mutate_header(frames, **changes):
    header = json.loads(bytes(frames[1]))
    header.update(changes)
    return [bytes(frames[0]), json.dumps(header).encode(), *(bytes(f) for f in frames[2:])]


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda f: f[:1], "at least 2"),
        (lambda f: [f[0], b"\xff\xfe", *f[2:]], "UTF-8 JSON"),
        (lambda f: _mutate_header(f, version=2), "version"),
        (lambda f: _mutate_header(f, schema="pose9d"), "schema"),
        (lambda f: _mutate_header(f, camera="cam02"), "topic"),
        (lambda f: [*f[:2], f[2][:-4], *f[3:]], "bytes"),
        (lambda f: f[:-1], "buffers"),
        (
            lambda f: _mutate_header(
                f,
                arrays=[
                    {"name": "poses", "dtype": "|O", "shape": [3, 17, 3]},
                    {"name": "boxes", "dtype": "<f4", "shape": [3, 5]},
                ],
            ),
            "dtype",
        ),
        (
            lambda f: _mutate_header(
                f,
                arrays=[
                    {"name": "poses", "dtype": "<f4", "shape": [10**9, 17, 3]},
                    {"name": "boxes", "dtype": "<f4", "shape": [3, 5]},
                ],
            ),
            "shape",
        ),
        (
            lambda f: _mutate_header(
                f,
                arrays=[
                    {"name": "poses", "dtype": "<f4", "shape": [-3, 17, 3]},
                    {"name": "boxes", "dtype": "<f4", "shape": [3, 5]},
                ],
            ),
            "shape",
        ),
        (lambda f: _mutate_header(f, frame_idx="7"), "frame_idx"),
    ],
)
def test_malformed_messages_raise(rng, mutate, match):
    frames = [bytes(f) for f in wire.encode_detections(_dets(rng))]
    with pytest.raises(MessageError, match=match):
        wire.decode(mutate(frames))


def test_wrong_dtype_for_pose2d_is_rejected(rng):
    d = _dets(rng)
    msg = wire.Message("pose2d", "cam01", 1, 1, {"poses": d.poses.astype(np.float64), "boxes": d.boxes})
    with pytest.raises(MessageError, match="float32"):
        wire.decode_detections(wire.decode([bytes(f) for f in wire.encode(msg)]))


def test_nan_payload_rejected(rng):
    d = _dets(rng)
    poses = np.array(d.poses)
    poses[0, 0, 0] = np.nan
    msg = wire.Message("pose2d", "cam01", 1, 1, {"poses": poses, "boxes": d.boxes})
    with pytest.raises(MessageError, match="NaN"):
        wire.decode([bytes(f) for f in wire.encode(msg)])


def test_random_bytes_never_crash(rng):
    for _ in range(2000):
        n = int(rng.integers(0, 5))
        frames = [rng.bytes(int(rng.integers(0, 64))) for _ in range(n)]
        with pytest.raises(MessageError):
            wire.decode(frames)
