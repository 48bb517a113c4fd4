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


# -- RGB-D: lifted joints in the pose2d message -----------------------------------------------------


def _rgbd(rng, P=2):
    from fusion.rgbd import RGBDDetections

    d = _dets(rng, P)
    joints = np.concatenate([rng.normal(0, 2, (P, 17, 3)), rng.uniform(0, 1, (P, 17, 1))], axis=-1)
    joints[0, 3] = 0.0  # a joint not lifted
    A = rng.normal(size=(P, 17, 3, 3))
    cov = (A @ np.swapaxes(A, -1, -2)) * 1e-4 + np.eye(3) * 1e-5
    cov[0, 3] = 0.0
    return RGBDDetections(d.camera, d.frame_idx, d.stamp_ns, d.poses, d.boxes, joints, cov)


def test_rgbd_detections_round_trip(rng):
    from fusion.rgbd import RGBDDetections

    d = _rgbd(rng)
    frames = [bytes(f) for f in wire.encode_detections(d, {"prev": [1, 2]})]
    assert len(frames) == 6  # topic, header, 4 arrays
    got = wire.decode_detections(wire.decode(frames))
    assert isinstance(got, RGBDDetections)
    assert np.array_equal(got.joints3d, d.joints3d) and np.array_equal(got.joints3d_cov, d.joints3d_cov)
    assert np.array_equal(got.poses, d.poses) and got.camera == "cam01"
    plain = wire.decode_detections(wire.decode([bytes(f) for f in wire.encode_detections(_dets(rng))]))
    assert type(plain) is Detections2D  # no lifted joints: the plain type, as before


def _with_arrays(d, **arrays):
    base = {"poses": d.poses, "boxes": d.boxes, "joints3d": d.joints3d, "joints3d_cov": d.joints3d_cov}
    base.update(arrays)
    msg = wire.Message("pose2d", "cam01", 1, 1, {k: v for k, v in base.items() if v is not None})
    return [bytes(f) for f in wire.encode(msg)]


def _cov_with(d, value, where=(1, 2)):
    cov = np.array(d.joints3d_cov)
    cov[where] = value
    return cov


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda d: {"joints3d_cov": None}, "pose2d arrays must be"),
        (lambda d: {"joints3d": None}, "pose2d arrays must be"),
        (lambda d: {"joints3d": np.array(d.joints3d)[:, :5]}, r"joints3d must be \(2, 17, 4\)"),
        (lambda d: {"joints3d_cov": np.array(d.joints3d_cov)[..., :2]}, "joints3d_cov"),
        (lambda d: {"joints3d": np.array(d.joints3d, np.float64)}, "float32"),
        (lambda d: {"joints3d": np.array(d.joints3d) * np.array([1, 1, 1, 3], np.float32)}, "conf must lie"),
        (lambda d: {"joints3d": np.array(d.joints3d) + np.array([1e5, 0, 0, 0], np.float32)}, "coordinates within"),
        (lambda d: {"joints3d_cov": _cov_with(d, [[1e-4, 5e-5, 0], [0, 1e-4, 0], [0, 0, 1e-4]])}, "symmetric"),
        (lambda d: {"joints3d_cov": _cov_with(d, -np.eye(3) * 1e-4)}, "positive definite"),
        (lambda d: {"joints3d_cov": _cov_with(d, np.zeros((3, 3)))}, "positive definite"),
        (lambda d: {"joints3d_cov": _cov_with(d, np.eye(3) * 1e6)}, "std <="),
    ],
)
def test_malformed_lifted_joints_make_the_message_malformed(rng, change, match):
    """Each defect raises MessageError of kind "joints3d" (the node drops and counts the message)."""
    d = _rgbd(rng)
    with pytest.raises(MessageError, match=match) as info:
        wire.decode_detections(wire.decode(_with_arrays(d, **change(d))))
    assert info.value.kind == "joints3d"


def test_nan_in_lifted_joints_is_rejected(rng):
    d = _rgbd(rng)
    joints = np.array(d.joints3d)
    joints[1, 4, 2] = np.nan
    with pytest.raises(MessageError, match="NaN") as info:
        wire.decode(_with_arrays(d, joints3d=joints))
    assert info.value.kind == "nan"


def test_lifted_joints_reach_the_node_intake_and_malformed_ones_are_counted(rng):
    """The node's intake hands an RGB-D camera's lifted joints on, and counts a malformed pair under
    malformed.joints3d without crashing."""
    from capture.service.intake import Intake
    from fusion.rgbd import RGBDDetections

    intake = Intake(("cam01",), n_joints=17, max_people=64, heartbeat_timeout_s=3.0)
    d = _rgbd(rng)
    got, _ = intake.accept([bytes(f) for f in wire.encode_detections(d)])
    assert isinstance(got, RGBDDetections) and np.array_equal(got.joints3d, d.joints3d)
    assert intake.accept(_with_arrays(d, joints3d_cov=_cov_with(d, -np.eye(3)))) is None
    assert intake.dropped == {"malformed.joints3d": 1}


def _unit_rows(rng, P, D=24):
    emb = rng.normal(size=(P, D)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    return emb


def test_embeddings_round_trip_plain_and_rgbd(rng):
    """The optional appearance descriptors travel with plain and RGB-D detections, bit for bit; a zero
    row (no appearance seen) is accepted, and a message without them decodes to embeddings None."""
    from fusion.rgbd import RGBDDetections

    d = _dets(rng, P=3)
    emb = _unit_rows(rng, 3)
    emb[1] = 0.0
    d = Detections2D(d.camera, d.frame_idx, d.stamp_ns, d.poses, d.boxes, embeddings=emb)
    got = wire.decode_detections(wire.decode([bytes(f) for f in wire.encode_detections(d)]))
    assert type(got) is Detections2D and np.array_equal(got.embeddings, emb)
    lifted = _rgbd(rng, P=3)
    r = RGBDDetections.from_detections(d, lifted.joints3d, lifted.joints3d_cov)  # keeps the embeddings
    got = wire.decode_detections(wire.decode([bytes(f) for f in wire.encode_detections(r)]))
    assert isinstance(got, RGBDDetections) and np.array_equal(got.embeddings, emb)
    assert np.array_equal(got.joints3d, r.joints3d)
    plain = wire.decode_detections(wire.decode([bytes(f) for f in wire.encode_detections(_dets(rng))]))
    assert plain.embeddings is None


def _plain_with(d, emb):
    msg = wire.Message("pose2d", "cam01", 1, 1, {"poses": d.poses, "boxes": d.boxes, "embeddings": emb})
    return [bytes(f) for f in wire.encode(msg)]


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda e: e.astype(np.float64), "float32"),
        (lambda e: e[:2], r"\(3, D\)"),
        (lambda e: e.reshape(-1), r"\(3, D\)"),
        (lambda e: e[:, :0], "D must lie"),
        (lambda e: np.tile(e, (1, 22)), "D must lie"),  # 528 > 512
        (lambda e: e * 2.0, "norm 1"),
        (lambda e: e * np.array([[1.0], [0.5], [1.0]], np.float32), "norm 1"),
    ],
)
def test_malformed_embeddings_make_the_message_malformed(rng, make, match):
    d = _dets(rng, P=3)
    with pytest.raises(MessageError, match=match) as info:
        wire.decode_detections(wire.decode(_plain_with(d, make(_unit_rows(rng, 3)))))
    assert info.value.kind == "embeddings"


def test_malformed_embeddings_refuse_rgbd_messages_too(rng):
    d = _rgbd(rng)
    with pytest.raises(MessageError) as info:
        wire.decode_detections(wire.decode(_with_arrays(d, embeddings=_unit_rows(rng, 3))))
    assert info.value.kind == "embeddings"


def test_non_finite_embeddings_are_rejected(rng):
    d = _dets(rng, P=3)
    emb = _unit_rows(rng, 3)
    emb[2, 5] = np.inf
    with pytest.raises(MessageError, match="NaN or inf") as info:
        wire.decode(_plain_with(d, emb))
    assert info.value.kind == "nan"


def test_embeddings_reach_the_node_intake_and_malformed_ones_are_counted(rng):
    from capture.service.intake import Intake

    intake = Intake(("cam01",), n_joints=17, max_people=64, heartbeat_timeout_s=3.0)
    d = _dets(rng, P=3)
    emb = _unit_rows(rng, 3)
    got, _ = intake.accept(_plain_with(d, emb))
    assert np.array_equal(got.embeddings, emb)
    assert intake.accept(_plain_with(d, emb * 3.0)) is None
    assert intake.dropped == {"malformed.embeddings": 1}
