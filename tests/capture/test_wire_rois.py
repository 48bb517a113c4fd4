"""The ``rois`` message (node -> worker regions of interest): round trip and every refusal."""

from __future__ import annotations

import json

import numpy as np
import pytest

from capture import wire
from core.errors import MessageError, ShapeError


def _hint(k: int = 2, full: bool = False) -> wire.RoiHint:
    boxes = np.array([[10.5, 20.25, 110.0, 320.0], [400.0, 0.0, 520.0, 240.0], [0.0, 5.0, 1.0, 6.0]])[:k]
    return wire.RoiHint("cam03", 17, 1_700_000_000_123_456_789, boxes, np.array([4, 9, 11][:k]), full)


def _frames(hint: wire.RoiHint) -> list[bytes]:
    return [bytes(f) for f in wire.encode_rois(hint)]


def _with(frames: list[bytes], boxes=None, ids=None, **header_changes) -> list[bytes]:
    """The message with its boxes / track_ids buffers and header fields replaced (header kept consistent)."""
    header = json.loads(frames[1])
    bufs = list(frames[2:])
    for k, arr in ((0, boxes), (1, ids)):
        if arr is not None:
            arr = np.ascontiguousarray(arr)
            header["arrays"][k] = {
                "name": header["arrays"][k]["name"],
                "dtype": arr.dtype.str,
                "shape": list(arr.shape),
            }
            bufs[k] = arr.tobytes()
    header.update(header_changes)
    return [frames[0], json.dumps(header).encode(), *bufs]


@pytest.mark.parametrize("k, full", [(2, False), (0, True), (3, True)])
def test_rois_round_trip(k, full):
    hint = _hint(k, full)
    frames = _frames(hint)
    assert frames[0] == b"rois.cam03."
    got = wire.decode_rois(wire.decode(frames))
    assert (got.camera, got.frame_idx, got.stamp_ns, got.full) == ("cam03", 17, hint.stamp_ns, full)
    assert got.boxes.dtype == np.float32 and got.boxes.shape == (k, 4) and np.array_equal(got.boxes, hint.boxes)
    assert got.track_ids.dtype == np.int64 and got.track_ids.tolist() == [4, 9, 11][:k]
    assert not got.boxes.flags.writeable and not got.track_ids.flags.writeable


def test_hint_shapes_are_checked_at_construction():
    with pytest.raises(ShapeError, match=r"\(K, 4\)"):
        wire.RoiHint("cam01", 0, 0, np.zeros((2, 5)), np.array([1, 2]))
    with pytest.raises(ShapeError):
        wire.RoiHint("cam01", 0, 0, np.zeros((2, 4)), np.array([1]))
    with pytest.raises(MessageError, match="camera"):
        wire.encode_rois(wire.RoiHint("", 0, 0, np.zeros((0, 4)), np.zeros(0)))


def _too_many() -> tuple[np.ndarray, np.ndarray]:
    k = wire.MAX_ROIS + 1
    boxes = np.tile(np.array([[0, 0, 10, 10]], np.float32), (k, 1))
    return boxes, np.arange(1, k + 1, dtype=np.int64)


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda f: _with(f, boxes=np.array([[10, 20, 10, 30], [1, 2, 3, 4]], np.float32)), id="x0_eq_x1"),
        pytest.param(lambda f: _with(f, boxes=np.array([[10, 20, 30, 5], [1, 2, 3, 4]], np.float32)), id="y0_gt_y1"),
        pytest.param(lambda f: _with(f, boxes=np.array([[0, 0, 2e5, 4], [1, 2, 3, 4]], np.float32)), id="huge"),
        pytest.param(lambda f: _with(f, boxes=np.zeros((2, 5), np.float32)), id="boxes_not_k4"),
        pytest.param(lambda f: _with(f, boxes=np.array([[0, 0, 9, 9], [1, 2, 3, 4]], np.float64)), id="float64"),
        pytest.param(lambda f: _with(f, ids=np.array([4], np.int64)), id="ids_short"),
        pytest.param(lambda f: _with(f, ids=np.array([4.0, 9.0], np.float32)), id="ids_float"),
        pytest.param(lambda f: _with(f, ids=np.array([0, 9], np.int64)), id="id_zero"),
        pytest.param(lambda f: _with(f, *_too_many()), id="too_many"),
        pytest.param(lambda f: _with(f, meta={}), id="no_full"),
        pytest.param(lambda f: _with(f, meta={"full": 1}), id="full_not_bool"),
        pytest.param(lambda f: f[:3], id="no_track_ids"),
    ],
)
def test_malformed_rois_are_refused(mutate):
    frames = mutate(_frames(_hint()))
    with pytest.raises(MessageError) as err:
        wire.decode_rois(wire.decode(frames))
    assert getattr(err.value, "kind", None) in ("rois", "arrays")


def test_non_finite_boxes_are_refused():
    frames = _with(_frames(_hint()), boxes=np.array([[np.nan, 0, 9, 9], [1, 2, 3, 4]], np.float32))
    with pytest.raises(MessageError, match="NaN"):
        wire.decode(frames)


def test_other_messages_are_not_hints():
    frames = [bytes(f) for f in wire.encode(wire.Message("heartbeat", "cam03", 1, 2))]
    with pytest.raises(MessageError, match="not a rois message"):
        wire.decode_rois(wire.decode(frames))
    # a rois header sent under another camera's topic
    with pytest.raises(MessageError, match="topic"):
        wire.decode(_with(_frames(_hint()), camera="cam30"))
