"""The wire format: the single source of truth for every ZeroMQ message (STYLE §6).

A message is the multipart ``[topic, header, *buffers]``:

- topic: ASCII, dot-separated, trailing dot (``pose2d.cam01.``), because SUB filtering is by prefix;
- header: UTF-8 JSON ``{schema, version, camera, frame_idx, stamp_ns, arrays: [{name, dtype, shape}],
  meta}``;
- buffers: one C-contiguous little-endian buffer per array, in header order.

Never pickle. :func:`decode` checks the version, the schema, the dtypes (an allow-list), the shapes
(bounded) and the byte counts, and raises :class:`MessageError` on any mismatch so that the receiver
drops and counts the message.

A ``pose2d`` message carries ``poses`` (P, J, 3) and ``boxes`` (P, 5) float32; an RGB-D camera's
adds ``joints3d`` (P, J, 4) float32 [x, y, z, conf] (world metres; its lifted joints) and
``joints3d_cov`` (P, J, 3, 3) float32 (metres^2), decoded into :class:`fusion.rgbd.RGBDDetections`.
Those two come together or not at all; their shapes, confidences, coordinate range and covariances
(symmetric, positive definite where conf > 0) are checked, and a malformed pair makes the message
malformed (``exc.kind == "joints3d"``: dropped and counted, like any other defect).

Either kind may add ``embeddings`` (P, D) float32, one appearance descriptor (re-ID) per person
(:func:`capture.detect.reid.part_histograms`), decoded into ``Detections2D.embeddings``: 1 <= D <=
``MAX_EMBEDDING_DIM``, each row of unit L2 norm or all zeros (no appearance seen); anything else makes
the message malformed (``exc.kind == "embeddings"``).

A ``rois`` message (node -> worker, topic ``rois.<camera>.``) carries one :class:`RoiHint`: the
boxes (K, 4) float32 and ``track_ids`` (K,) int64 of the people the node expects in that camera,
and ``meta = {"full": bool}`` (:mod:`capture.service.feedback`); a malformed one has
``exc.kind == "rois"``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np

from core.errors import MessageError, ShapeError
from core.types import Detections2D, Poses3D, RGBDDetections

__all__ = [
    "SCHEMA_VERSION",
    "TOPIC_EOS",
    "TOPIC_HEARTBEAT",
    "TOPIC_POSE2D",
    "TOPIC_POSE3D",
    "TOPIC_ROIS",
    "TOPIC_STATUS",
    "Control",
    "Message",
    "RoiHint",
    "decode",
    "decode_detections",
    "decode_poses3d",
    "decode_rois",
    "encode",
    "encode_detections",
    "encode_poses3d",
    "encode_rois",
    "topic_for",
]

SCHEMA_VERSION: Final = 1
TOPIC_POSE2D: Final = "pose2d."
TOPIC_POSE3D: Final = "pose3d."
TOPIC_HEARTBEAT: Final = "ctrl.heartbeat."
TOPIC_EOS: Final = "ctrl.eos."
TOPIC_STATUS: Final = "status."
TOPIC_ROIS: Final = "rois."

_SCHEMAS: Final = {
    "pose2d": TOPIC_POSE2D,
    "pose3d": TOPIC_POSE3D,
    "heartbeat": TOPIC_HEARTBEAT,
    "eos": TOPIC_EOS,
    "status": TOPIC_STATUS,
    "rois": TOPIC_ROIS,
}
_DTYPES: Final = {"<f4": np.float32, "<f8": np.float64, "<i8": np.int64}
MAX_HEADER_BYTES: Final = 65536
MAX_ARRAYS: Final = 8
MAX_ELEMENTS: Final = 10_000_000
MAX_DIMS: Final = 4
MAX_JSON_DEPTH: Final = 6
"""Deepest nesting of objects and lists a header may have (the header itself is depth 1)."""
MAX_CAMERA_NAME: Final = 64
"""Longest camera name, characters (ASCII letters, digits, ``_`` and ``-``)."""
MAX_FRAME_IDX: Final = 2**40
"""Largest frame index accepted: 1,100 years at 30 fps; it leaves room for arithmetic in int64."""
MAX_STAMP_NS: Final = 2**62
"""Largest time stamp accepted, nanoseconds (year 2116 on the Unix clock)."""
MAX_PEOPLE: Final = 1024
"""Hard wire limit of people in one ``pose2d`` message (the node's configurable cap is lower)."""
MAX_COORD_M: Final = 1e4
"""Largest absolute world coordinate of a lifted joint, metres."""
MAX_STD_M: Final = 100.0
"""Largest standard deviation along any axis of a lifted joint's covariance, metres."""
MAX_EMBEDDING_DIM: Final = 512
"""Longest appearance descriptor (re-ID embedding) per person, floats."""
EMBEDDING_NORM_TOL: Final = 1e-3
"""Tolerance on an embedding row's L2 norm (1, or 0 for no appearance)."""
MAX_ROIS: Final = 256
"""Most boxes in one ``rois`` message."""
MAX_ROI_PX: Final = 1e5
"""Largest absolute box coordinate in a ``rois`` message, pixels."""
_POSE2D: Final = frozenset({"poses", "boxes"})
_POSE2D_RGBD: Final = frozenset({"poses", "boxes", "joints3d", "joints3d_cov"})


def topic_for(prefix: str, camera: str = "") -> str:
    """Topic string ``prefix + camera + "."`` (camera names must not contain dots).

    Example:
        >>> topic_for(TOPIC_POSE2D, "cam01")
        'pose2d.cam01.'
    """
    if "." in camera:
        raise MessageError(f"camera names must not contain '.'; got {camera!r}")
    return prefix + (camera + "." if camera else "")


@dataclass(frozen=True, slots=True)
class Message:
    """A decoded message: header fields plus named arrays (read-only).

    Attributes:
        schema: one of ``pose2d``, ``pose3d``, ``heartbeat``, ``eos``, ``status``, ``rois``.
        camera: sending camera ("" for the node).
        frame_idx: frame index (-1 where meaningless).
        stamp_ns: capture or send time, nanoseconds.
        arrays: named arrays.
        meta: small JSON-serialisable extras (statistics, process info).
    """

    schema: str
    camera: str
    frame_idx: int
    stamp_ns: int
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)


Control = Message


def encode(msg: Message) -> list[bytes | memoryview]:
    """Encode a message into ZeroMQ frames ``[topic, header, *buffers]``.

    Raises:
        MessageError: unknown schema, unsupported dtype, or non-serialisable meta.
    """
    if msg.schema not in _SCHEMAS:
        raise MessageError(f"unknown schema {msg.schema!r}; known: {sorted(_SCHEMAS)}")
    specs, buffers = [], []
    for name, arr in msg.arrays.items():
        a = np.ascontiguousarray(arr)
        dtype = a.dtype.newbyteorder("<").str
        if dtype not in _DTYPES:
            raise MessageError(f"array {name!r}: dtype {a.dtype} not allowed; allowed: {sorted(_DTYPES)}")
        a = a.astype(dtype, copy=False)
        specs.append({"name": name, "dtype": dtype, "shape": list(a.shape)})
        buffers.append(memoryview(a.reshape(-1)).cast("B") if a.size else b"")
    header = {
        "schema": msg.schema,
        "version": SCHEMA_VERSION,
        "camera": msg.camera,
        "frame_idx": int(msg.frame_idx),
        "stamp_ns": int(msg.stamp_ns),
        "arrays": specs,
        "meta": msg.meta,
    }
    try:
        head = json.dumps(header, allow_nan=False, separators=(",", ":")).encode()
    except (TypeError, ValueError) as exc:
        raise MessageError(f"header not serialisable: {exc}") from None
    return [topic_for(_SCHEMAS[msg.schema], msg.camera).encode("ascii"), head, *buffers]


def _bad(kind: str, text: str) -> MessageError:
    """A :class:`MessageError` tagged with the kind of defect (``exc.kind``), for per-kind counters."""
    exc = MessageError(text)
    exc.kind = kind
    return exc


def _field(header: dict, key: str, kind: type | tuple[type, ...]) -> Any:
    value = header.get(key)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise _bad("field", f"header field {key!r} must be {kind}; got {type(value).__name__}")
    return value


def _int_field(header: dict, key: str, lo: int, hi: int) -> int:
    value = _field(header, key, int)
    if not lo <= value <= hi:
        raise _bad("range", f"header field {key!r} must lie in [{lo}, {hi}]; got {str(value)[:24]}")
    return value


def _depth(obj: Any) -> int:
    """Nesting depth of a parsed JSON value (a scalar is 0, ``{}`` is 1); iterative, no recursion."""
    deepest, stack = 0, [(obj, 1)]
    while stack:
        value, d = stack.pop()
        if isinstance(value, dict):
            value = list(value.values())
        elif not isinstance(value, list):
            continue
        deepest = max(deepest, d)
        if d <= MAX_JSON_DEPTH:
            stack.extend((v, d + 1) for v in value)
    return deepest


def _is_camera_name(name: str) -> bool:
    return 0 < len(name) <= MAX_CAMERA_NAME and all(c.isascii() and (c.isalnum() or c in "_-") for c in name)


def decode(frames: list[bytes] | list[memoryview]) -> Message:
    """Decode and validate ZeroMQ frames.

    Args:
        frames: ``[topic, header, *buffers]`` as received (``bytes`` or zmq frames' buffers).

    Returns:
        The :class:`Message`, with read-only arrays that copy out of the frames.

    Raises:
        MessageError: anything malformed (frame count, JSON, nesting deeper than
            ``MAX_JSON_DEPTH``, numbers out of range, version, schema, camera name, topic/camera
            mismatch, dtype, shape, byte count); ``exc.kind`` names the defect for counters.
    """
    if len(frames) > 2 + MAX_ARRAYS:
        raise _bad("frames", f"{len(frames)} frames; at most {2 + MAX_ARRAYS}")
    if len(frames) < 2:
        raise _bad("frames", f"expected at least 2 frames (topic, header); got {len(frames)}")
    topic, head, *buffers = (bytes(f) for f in frames)
    if len(head) > MAX_HEADER_BYTES:
        raise _bad("header_size", f"header of {len(head)} bytes exceeds {MAX_HEADER_BYTES}")
    try:
        header = json.loads(head.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _bad("json", f"header is not UTF-8 JSON: {str(exc)[:120]}") from None
    except RecursionError:
        raise _bad("depth", f"header nests deeper than {MAX_JSON_DEPTH}") from None
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits (int_max_str_digits)
        raise _bad("number", f"header has an unreadable number: {str(exc)[:80]}") from None
    if not isinstance(header, dict):
        raise _bad("json", "header must be a JSON object")
    if _depth(header) > MAX_JSON_DEPTH:
        raise _bad("depth", f"header nests deeper than {MAX_JSON_DEPTH}")
    version = header.get("version")
    if version != SCHEMA_VERSION:
        raise _bad("version", f"schema version {version!r} not supported; expected {SCHEMA_VERSION}")
    schema = _field(header, "schema", str)
    if schema not in _SCHEMAS:
        raise _bad("schema", f"unknown schema {schema!r}")
    camera = _field(header, "camera", str)
    if camera and not _is_camera_name(camera):
        raise _bad("camera_name", f"camera name must be 1-{MAX_CAMERA_NAME} ASCII letters, digits, '_' or '-'")
    frame_idx = _int_field(header, "frame_idx", -1, MAX_FRAME_IDX)
    stamp_ns = _int_field(header, "stamp_ns", 0, MAX_STAMP_NS)
    meta = header.get("meta", {})
    if not isinstance(meta, dict):
        raise _bad("field", "header field 'meta' must be an object")
    try:
        expected_topic = topic_for(_SCHEMAS[schema], camera).encode("ascii")
    except UnicodeEncodeError:
        raise _bad("camera_name", "camera name must be ASCII") from None
    if topic != expected_topic:
        raise _bad("topic", f"topic {topic[:64]!r} does not match header ({expected_topic!r})")
    specs = _field(header, "arrays", list)
    if len(specs) > MAX_ARRAYS or len(specs) != len(buffers):
        raise _bad("arrays", f"header lists {len(specs)} arrays but {len(buffers)} buffers came")
    arrays: dict[str, np.ndarray] = {}
    for spec, buf in zip(specs, buffers, strict=True):
        if not isinstance(spec, dict):
            raise _bad("arrays", "array spec must be an object")
        name = _field(spec, "name", str)
        dtype = spec.get("dtype")
        if dtype not in _DTYPES:
            raise _bad("dtype", f"array {name!r}: dtype {dtype!r} not allowed")
        shape = spec.get("shape")
        if (
            not isinstance(shape, list)
            or len(shape) > MAX_DIMS
            or not all(isinstance(s, int) and not isinstance(s, bool) and 0 <= s <= MAX_ELEMENTS for s in shape)
            or math.prod(shape) > MAX_ELEMENTS
        ):
            raise _bad("shape", f"array {name!r}: bad shape {str(shape)[:80]}")
        itemsize = np.dtype(_DTYPES[dtype]).itemsize
        if len(buf) != math.prod(shape) * itemsize:
            raise _bad("bytes", f"array {name!r}: {len(buf)} bytes for shape {shape} of {dtype}")
        arr = np.frombuffer(buf, dtype=dtype).reshape(shape)
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            raise _bad("nan", f"array {name!r} holds NaN or inf")
        arrays[name] = arr
    return Message(schema, camera, frame_idx, stamp_ns, arrays, meta)


def encode_detections(dets: Detections2D, meta: dict[str, Any] | None = None) -> list[bytes | memoryview]:
    """Frames of a ``pose2d`` message carrying one camera frame's :class:`Detections2D` (with the
    lifted joints of an :class:`~fusion.rgbd.RGBDDetections`)."""
    arrays = {"poses": dets.poses, "boxes": dets.boxes}
    if isinstance(dets, RGBDDetections):
        arrays |= {"joints3d": dets.joints3d, "joints3d_cov": dets.joints3d_cov}
    if dets.embeddings is not None:
        arrays["embeddings"] = dets.embeddings
    return encode(Message("pose2d", dets.camera, dets.frame_idx, dets.stamp_ns, arrays, meta or {}))


def _check_lifted(joints: np.ndarray, cov: np.ndarray, n_people: int, n_joints: int) -> None:
    """Validate a ``pose2d`` message's ``joints3d`` and ``joints3d_cov`` (finite already)."""
    if joints.dtype != np.float32 or cov.dtype != np.float32:
        raise _bad("joints3d", f"joints3d and joints3d_cov must be float32; got {joints.dtype}, {cov.dtype}")
    if joints.shape != (n_people, n_joints, 4) or cov.shape != (n_people, n_joints, 3, 3):
        raise _bad(
            "joints3d",
            f"joints3d must be ({n_people}, {n_joints}, 4) and joints3d_cov ({n_people}, {n_joints}, 3, 3); got "
            f"{joints.shape}, {cov.shape}",
        )
    conf = joints[..., 3]
    if ((conf < 0) | (conf > 1)).any() or (np.abs(joints[..., :3]) > MAX_COORD_M).any():
        raise _bad("joints3d", f"joints3d: conf must lie in [0, 1] and coordinates within {MAX_COORD_M:g} m")
    c = cov[conf > 0].astype(np.float64)  # (N, 3, 3)
    if not c.size:
        return
    scale = np.abs(c).max(axis=(1, 2), keepdims=True)
    if (np.abs(c - np.swapaxes(c, 1, 2)) > 1e-5 * scale).any():
        raise _bad("joints3d", "joints3d_cov must be symmetric")
    eig = np.linalg.eigvalsh(0.5 * (c + np.swapaxes(c, 1, 2)))
    if (eig[:, 0] <= 0).any() or (eig[:, -1] > MAX_STD_M**2).any():
        raise _bad("joints3d", f"joints3d_cov must be positive definite with std <= {MAX_STD_M:g} m where conf > 0")


def _check_embeddings(emb: np.ndarray, n_people: int) -> None:
    """Validate a ``pose2d`` message's ``embeddings`` (finite already)."""
    if emb.dtype != np.float32 or emb.ndim != 2 or emb.shape[0] != n_people:
        raise _bad("embeddings", f"embeddings must be float32 ({n_people}, D); got {emb.dtype} {emb.shape}")
    if not 1 <= emb.shape[1] <= MAX_EMBEDDING_DIM:
        raise _bad("embeddings", f"embeddings: D must lie in [1, {MAX_EMBEDDING_DIM}]; got {emb.shape[1]}")
    norm = np.linalg.norm(emb.astype(np.float64), axis=1)
    if ((np.abs(norm - 1.0) > EMBEDDING_NORM_TOL) & (norm != 0.0)).any():
        raise _bad("embeddings", "embeddings: each row must have L2 norm 1 (or be all zeros)")


def decode_detections(msg: Message) -> Detections2D:
    """The :class:`Detections2D` of a decoded ``pose2d`` message (an
    :class:`~fusion.rgbd.RGBDDetections` when it carries lifted joints).

    Raises:
        MessageError: wrong schema, missing arrays, or inconsistent shapes; ``kind == "joints3d"``
            for malformed lifted joints, ``kind == "embeddings"`` for malformed appearance
            descriptors (see the module docstring).
    """
    names = set(msg.arrays) - {"embeddings"}
    if msg.schema != "pose2d" or names not in (_POSE2D, _POSE2D_RGBD):
        if msg.schema == "pose2d" and _POSE2D < names:
            raise _bad("joints3d", f"pose2d arrays must be {sorted(_POSE2D)} or {sorted(_POSE2D_RGBD)}")
        raise _bad("pose2d", f"not a pose2d message with poses and boxes (schema {msg.schema!r})")
    poses, boxes = msg.arrays["poses"], msg.arrays["boxes"]
    if poses.dtype != np.float32 or boxes.dtype != np.float32 or poses.ndim != 3 or poses.shape[2] != 3:
        raise _bad("pose2d", f"pose2d arrays must be float32 poses (P, J, 3); got {poses.dtype} {poses.shape}")
    if boxes.shape != (poses.shape[0], 5):
        raise _bad("pose2d", f"boxes must be ({poses.shape[0]}, 5); got {boxes.shape}")
    if poses.shape[0] > MAX_PEOPLE:
        raise _bad("people", f"{poses.shape[0]} people in one view; at most {MAX_PEOPLE}")
    emb = msg.arrays.get("embeddings")
    if emb is not None:
        _check_embeddings(emb, poses.shape[0])
    if names == _POSE2D:
        return Detections2D(msg.camera, msg.frame_idx, msg.stamp_ns, poses, boxes, embeddings=emb)
    joints, cov = msg.arrays["joints3d"], msg.arrays["joints3d_cov"]
    _check_lifted(joints, cov, *poses.shape[:2])
    return RGBDDetections(msg.camera, msg.frame_idx, msg.stamp_ns, poses, boxes, joints, cov, embeddings=emb)


def encode_poses3d(frame: Poses3D, meta: dict[str, Any] | None = None) -> list[bytes | memoryview]:
    """Frames of a ``pose3d`` message (published by the node, one per output frame)."""
    return encode(
        Message(
            "pose3d",
            "",
            frame.frame_idx,
            frame.stamp_ns,
            {"track_ids": frame.track_ids, "poses": frame.poses},
            meta or {},
        )
    )


def decode_poses3d(msg: Message) -> Poses3D:
    """The :class:`Poses3D` of a decoded ``pose3d`` message.

    Raises:
        MessageError: wrong schema or inconsistent arrays.
    """
    if msg.schema != "pose3d" or set(msg.arrays) != {"track_ids", "poses"}:
        raise _bad("pose3d", f"not a pose3d message (schema {msg.schema!r})")
    ids, poses = msg.arrays["track_ids"], msg.arrays["poses"]
    if ids.dtype != np.int64 or poses.dtype != np.float64 or poses.ndim != 3 or poses.shape[0] != ids.shape[0]:
        raise _bad("pose3d", f"pose3d arrays inconsistent: ids {ids.shape} poses {poses.shape}")
    return Poses3D(msg.frame_idx, msg.stamp_ns, ids, poses)


@dataclass(frozen=True, slots=True)
class RoiHint:
    """Where the node expects people in one camera's next frames (3D-guided regions of interest).

    The node projects the 3D poses it published for frame ``frame_idx`` into the camera
    (:class:`capture.service.feedback.RoiPublisher`); a worker crops its detection to these boxes
    (Bultmann & Behnke 2021, SmartEdgeSensor3DHumanPose: feedback of the predicted 3D skeletons to
    the sensors' region-of-interest detectors).

    Attributes:
        camera: the camera the boxes are for.
        frame_idx: the node frame whose tracks the boxes come from.
        stamp_ns: that frame's time, nanoseconds.
        boxes: (K, 4) float32 [x0, y0, x1, y1], the camera's calibration pixels (x0 < x1, y0 < y1).
        track_ids: (K,) int64 the track each box belongs to.
        full: the node asks for a full-frame pass (nobody tracked, the track set changed, a track
            is tentative or lost, or the view had detections no track claimed).

    Raises:
        ShapeError: ``boxes`` not (K, 4) or ``track_ids`` not (K,).
    """

    camera: str
    frame_idx: int
    stamp_ns: int
    boxes: np.ndarray
    track_ids: np.ndarray
    full: bool = False

    def __post_init__(self) -> None:
        boxes = np.ascontiguousarray(self.boxes, dtype=np.float32)
        ids = np.ascontiguousarray(self.track_ids, dtype=np.int64)
        if boxes.ndim != 2 or boxes.shape[1] != 4 or ids.shape != (boxes.shape[0],):
            raise ShapeError(f"boxes must be (K, 4) and track_ids (K,); got {boxes.shape}, {ids.shape}")
        boxes.setflags(write=False)
        ids.setflags(write=False)
        object.__setattr__(self, "boxes", boxes)
        object.__setattr__(self, "track_ids", ids)
        object.__setattr__(self, "full", bool(self.full))


def encode_rois(hint: RoiHint) -> list[bytes | memoryview]:
    """Frames of a ``rois`` message (topic ``rois.<camera>.``) carrying one :class:`RoiHint`.

    Raises:
        MessageError: an empty or dotted camera name.
    """
    if not hint.camera:
        raise MessageError("a rois message needs a camera name")
    arrays = {"boxes": hint.boxes, "track_ids": hint.track_ids}
    return encode(Message("rois", hint.camera, hint.frame_idx, hint.stamp_ns, arrays, {"full": hint.full}))


def decode_rois(msg: Message) -> RoiHint:
    """The :class:`RoiHint` of a decoded ``rois`` message.

    Raises:
        MessageError: (``kind == "rois"``) wrong schema, no camera, arrays other than ``boxes``
            float32 (K, 4) and ``track_ids`` int64 (K,), K > ``MAX_ROIS``, a box with x0 >= x1 or
            y0 >= y1 or a coordinate beyond ``MAX_ROI_PX``, a track id < 1, or ``meta["full"]``
            not a bool (non-finite values are refused by :func:`decode` already).
    """
    if msg.schema != "rois" or not msg.camera or set(msg.arrays) != {"boxes", "track_ids"}:
        raise _bad("rois", f"not a rois message with boxes and track_ids (schema {msg.schema!r})")
    boxes, ids = msg.arrays["boxes"], msg.arrays["track_ids"]
    if boxes.dtype != np.float32 or ids.dtype != np.int64 or boxes.ndim != 2 or boxes.shape[1] != 4:
        raise _bad("rois", f"rois must be float32 boxes (K, 4), int64 track_ids (K,); got {boxes.shape}, {ids.shape}")
    if ids.shape != (boxes.shape[0],) or boxes.shape[0] > MAX_ROIS:
        raise _bad("rois", f"rois: {ids.shape} track ids for {boxes.shape[0]} boxes; at most {MAX_ROIS} boxes")
    if (np.abs(boxes) > MAX_ROI_PX).any() or (boxes[:, 2] <= boxes[:, 0]).any() or (boxes[:, 3] <= boxes[:, 1]).any():
        raise _bad("rois", f"rois: each box needs x0 < x1, y0 < y1 and coordinates within {MAX_ROI_PX:g} px")
    if (ids < 1).any():
        raise _bad("rois", "rois: track ids must be positive")
    full = msg.meta.get("full")
    if not isinstance(full, bool):
        raise _bad("rois", f"rois: meta 'full' must be true or false; got {str(full)[:24]}")
    return RoiHint(msg.camera, msg.frame_idx, msg.stamp_ns, boxes, ids, full)
