"""Read and write 2D detections as files, to replay a recording or test without running a network.

Formats:

- OpenPose JSON folders (Cao et al. 2017, "Realtime Multi-Person 2D Pose Estimation using Part
  Affinity Fields"): one ``*_keypoints.json`` per frame, ``people[i].pose_keypoints_2d`` a flat list
  of x, y, c. BODY_25 (25 joints) and COCO-18 (18 joints) are mapped to COCO-17 by joint name; 17
  joints are taken as COCO-17 as they are.
- COCO keypoint results (Lin et al. 2014, cocodataset.org "results format"): a JSON list of
  ``{"image_id" or "frame": int, "keypoints": 51 floats, "bbox": [x, y, w, h], "score": float}``.
- mvcap detections (``format: "mvcap-detections"``, version 1), gzip-compressed when the name ends
  in ``.gz``; written by :func:`write_detections_json`, read by :func:`read_detections_json`.

Convention: poses are (P, 17, 3) float32 [u_px, v_px, conf] in COCO-17 order; a missing joint has
conf 0 and coordinates 0. Files without stamps get ``stamp_ns = epoch_ns + round(frame_idx * 1e9 /
fps)``.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np

from core.errors import InputError, ShapeError
from core.skeleton import COCO17
from core.types import Detections2D

__all__ = [
    "is_detection_file",
    "BODY25_TO_COCO17",
    "COCO18_TO_COCO17",
    "FORMAT",
    "VERSION",
    "keypoint_boxes",
    "read_coco_json",
    "read_detections_json",
    "read_json_file",
    "read_openpose_folder",
    "write_detections_json",
]


def is_detection_file(source: str) -> bool:
    """Whether a camera source is a detections file to replay instead of frames to detect on."""
    return source.endswith((".json", ".json.gz"))


log = logging.getLogger(__name__)

FORMAT: Final = "mvcap-detections"
VERSION: Final = 1
J: Final = COCO17.n_joints

OPENPOSE_BODY25: Final = (
    "Nose", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist", "MidHip",
    "RHip", "RKnee", "RAnkle", "LHip", "LKnee", "LAnkle", "REye", "LEye", "REar", "LEar",
    "LBigToe", "LSmallToe", "LHeel", "RBigToe", "RSmallToe", "RHeel",
)  # fmt: skip
"""OpenPose BODY_25 joint order (openpose/doc/02_output.md)."""

OPENPOSE_COCO18: Final = (
    "Nose", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist",
    "RHip", "RKnee", "RAnkle", "LHip", "LKnee", "LAnkle", "REye", "LEye", "REar", "LEar",
)  # fmt: skip
"""OpenPose COCO (18 joints: COCO-17 plus Neck, different order)."""

_COCO17_FROM_OPENPOSE: Final = {
    "nose": "Nose", "left_eye": "LEye", "right_eye": "REye", "left_ear": "LEar", "right_ear": "REar",
    "left_shoulder": "LShoulder", "right_shoulder": "RShoulder", "left_elbow": "LElbow",
    "right_elbow": "RElbow", "left_wrist": "LWrist", "right_wrist": "RWrist", "left_hip": "LHip",
    "right_hip": "RHip", "left_knee": "LKnee", "right_knee": "RKnee", "left_ankle": "LAnkle",
    "right_ankle": "RAnkle",
}  # fmt: skip


def _mapping(names: tuple[str, ...]) -> tuple[int, ...]:
    return tuple(names.index(_COCO17_FROM_OPENPOSE[j]) for j in COCO17.joints)


BODY25_TO_COCO17: Final = _mapping(OPENPOSE_BODY25)
"""For each COCO-17 joint, its index in BODY_25.

Example:
    >>> BODY25_TO_COCO17
    (0, 16, 15, 18, 17, 5, 2, 6, 3, 7, 4, 12, 9, 13, 10, 14, 11)
"""

COCO18_TO_COCO17: Final = _mapping(OPENPOSE_COCO18)
"""For each COCO-17 joint, its index in OpenPose COCO-18.

Example:
    >>> COCO18_TO_COCO17
    (0, 15, 14, 17, 16, 5, 2, 6, 3, 7, 4, 11, 8, 12, 9, 13, 10)
"""

_OPENPOSE_MAPS: Final = {25: BODY25_TO_COCO17, 18: COCO18_TO_COCO17, 17: tuple(range(17))}


def _stamp_ns(epoch_ns: int, frame_idx: int, fps: float) -> int:
    return int(epoch_ns) + round(frame_idx * 1e9 / fps)


def _check_fps(fps: float) -> float:
    if not np.isfinite(fps) or fps <= 0:
        raise ShapeError(f"fps must be a positive number; got {fps}")
    return float(fps)


def _clean(poses: np.ndarray) -> np.ndarray:
    """Zero the coordinates of joints with conf <= 0 (the missing-joint convention); (P, J, 3)."""
    poses = poses.astype(np.float32, copy=True)
    missing = ~(poses[..., 2] > 0)
    poses[missing] = 0.0
    return poses


def keypoint_boxes(poses: np.ndarray) -> np.ndarray:
    """Boxes around the visible keypoints of each person, score = mean keypoint conf.

    Args:
        poses: (P, J, 3) [u_px, v_px, conf]; joints with conf 0 are ignored for the extent.

    Returns:
        (P, 5) float32 [x1, y1, x2, y2, score], pixels; all zeros for a person without a visible
        joint. The score averages conf over all J joints (missing ones count as 0).

    Example:
        >>> keypoint_boxes(np.array([[[10, 20, 1.0], [30, 5, 0.5], [99, 99, 0.0]]]))
        array([[10. ,  5. , 30. , 20. ,  0.5]], dtype=float32)
    """
    poses = np.asarray(poses, dtype=np.float64)
    visible = poses[..., 2] > 0
    big = np.finfo(np.float64).max
    lo = np.where(visible[..., None], poses[..., :2], big).min(axis=1)
    hi = np.where(visible[..., None], poses[..., :2], -big).max(axis=1)
    any_visible = visible.any(axis=1)[:, None]
    lo, hi = np.where(any_visible, lo, 0.0), np.where(any_visible, hi, 0.0)
    score = poses[..., 2].mean(axis=1, keepdims=True) if poses.shape[1] else np.zeros((len(poses), 1))
    return np.concatenate([lo, hi, score], axis=1).astype(np.float32)


def read_json_file(path: str | Path) -> Any:
    """Parse a JSON file (gzip-compressed if its first bytes say so).

    Raises:
        InputError: missing, unreadable or invalid file; the one-line message names it.
    """
    path = Path(path)
    try:
        with path.open("rb") as f:
            raw = f.read()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        return json.loads(raw)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (OSError, EOFError) as exc:
        raise InputError(f"{path}: cannot read ({exc})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not valid JSON ({exc})") from None


def _frame_number(path: Path) -> int | None:
    """Last integer in an OpenPose file name (``cam01_000000000012_keypoints.json`` -> 12)."""
    digits = re.findall(r"\d+", path.name.removesuffix("_keypoints.json"))
    return int(digits[-1]) if digits else None


def read_openpose_folder(
    path: str | Path, camera: str | None = None, fps: float = 30.0, epoch_ns: int = 0
) -> list[Detections2D]:
    """Read an OpenPose JSON folder (Cao et al. 2017) as COCO-17 detections, one per file.

    The frame index is the last number in each file name before ``_keypoints.json`` (OpenPose
    writes ``<name>_<12-digit frame>_keypoints.json``), or the sorted position when names carry
    no number. People without any visible joint are dropped.

    Args:
        path: folder of ``*_keypoints.json`` files.
        camera: camera name; default: the folder name.
        fps: frame rate for the stamps, frames per second.
        epoch_ns: stamp of frame 0, nanoseconds.

    Returns:
        Detections2D per file, by frame index; boxes from keypoint extents (:func:`keypoint_boxes`).

    Raises:
        InputError: not a folder, no keypoint file, or a malformed file (named in the message):
            bad JSON, a keypoint list not a multiple of 3, or an unrecognised joint count.
    """
    folder = Path(path)
    fps = _check_fps(fps)
    if not folder.is_dir():
        raise InputError(f"{folder}: not an OpenPose JSON folder")
    files = sorted(folder.glob("*_keypoints.json"))
    if not files:
        raise InputError(f"{folder}: no *_keypoints.json file")
    numbers = [_frame_number(f) for f in files]
    if None in numbers or len(set(numbers)) != len(numbers):
        numbers = list(range(len(files)))
    camera = folder.name if camera is None else camera
    out = []
    for frame_idx, file in sorted(zip(numbers, files, strict=True)):
        doc = read_json_file(file)
        people = doc.get("people") if isinstance(doc, dict) else None
        if not isinstance(people, list):
            raise InputError(f"{file}: expected an object with a 'people' list")
        poses = []
        for i, person in enumerate(people):
            try:
                flat = np.asarray(person["pose_keypoints_2d"], dtype=np.float64)
            except (KeyError, TypeError, ValueError) as exc:
                raise InputError(f"{file}: people[{i}]: no numeric pose_keypoints_2d ({exc})") from None
            n = flat.size // 3
            if flat.ndim != 1 or flat.size % 3 or n not in _OPENPOSE_MAPS:
                raise InputError(
                    f"{file}: people[{i}].pose_keypoints_2d has {flat.size} values; expected 3 x "
                    f"{' or '.join(str(k) for k in _OPENPOSE_MAPS)} joints (BODY_25, COCO-18, COCO-17)"
                )
            if not np.isfinite(flat).all():
                raise InputError(f"{file}: people[{i}] has NaN or inf keypoints")
            poses.append(flat.reshape(n, 3)[list(_OPENPOSE_MAPS[n])])
        arr = _clean(np.asarray(poses, np.float32).reshape(-1, J, 3))
        arr = arr[(arr[..., 2] > 0).any(axis=1)]
        stamp = _stamp_ns(epoch_ns, frame_idx, fps)
        out.append(Detections2D(camera, frame_idx, stamp, arr, keypoint_boxes(arr)))
    log.info("read %d OpenPose frames of %s from %s", len(out), camera, folder)
    return out


def read_coco_json(
    path: str | Path,
    camera: str | None = None,
    fps: float = 30.0,
    epoch_ns: int = 0,
    n_frames: int | None = None,
) -> list[Detections2D]:
    """Read COCO keypoint results (a JSON list of person dicts) grouped by frame.

    Each item has ``"frame"`` (or ``"image_id"``) int, ``"keypoints"`` 51 floats x, y, c (COCO-17
    order), optional ``"bbox"`` [x, y, w, h] pixels and ``"score"``. When every c is 0, 1 or 2 and
    some c is 2, c is taken as COCO visibility (ground truth) and conf = 1 for visible joints.

    Args:
        path: JSON file (gzip accepted).
        camera: camera name; default: the file stem.
        fps: frame rate for the stamps, frames per second.
        epoch_ns: stamp of frame 0, nanoseconds.
        n_frames: number of frames; default: the largest frame index + 1. Frames without people
            give empty detections.

    Returns:
        One Detections2D per frame 0 .. n_frames - 1, people by descending score.

    Raises:
        InputError: bad JSON, not a list, or an item lacking a frame, with the wrong keypoint count,
            or a negative frame (the message names the file and the item).
    """
    path = Path(path)
    fps = _check_fps(fps)
    doc = read_json_file(path)
    if not isinstance(doc, list):
        raise InputError(f"{path}: expected a JSON list of COCO keypoint results; got {type(doc).__name__}")
    per_frame: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}
    for i, item in enumerate(doc):
        try:
            frame = item["frame"] if "frame" in item else item["image_id"]
            frame = int(frame)
            kpts = np.asarray(item["keypoints"], dtype=np.float64)
            if kpts.shape != (3 * J,) or not np.isfinite(kpts).all():
                raise ValueError(f"keypoints must be {3 * J} finite floats; got shape {kpts.shape}")
            kpts = kpts.reshape(J, 3)
            if "bbox" in item:
                x, y, w, h = (float(v) for v in item["bbox"])
                box = np.array([x, y, x + w, y + h, float(item.get("score", 1.0))])
            else:
                box = keypoint_boxes(kpts[None])[0].astype(np.float64)
                box[4] = float(item.get("score", box[4]))
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{path}: item {i}: {type(exc).__name__} {exc}") from None
        if frame < 0:
            raise InputError(f"{path}: item {i}: negative frame {frame}")
        per_frame.setdefault(frame, []).append((kpts, box))
    conf = np.array([k[:, 2] for items in per_frame.values() for k, _ in items]).reshape(-1)
    as_visibility = conf.size > 0 and np.isin(conf, (0, 1, 2)).all() and (conf == 2).any()
    count = (max(per_frame) + 1 if per_frame else 0) if n_frames is None else int(n_frames)
    camera = path.name.split(".")[0] if camera is None else camera
    out = []
    for frame_idx in range(count):
        items = sorted(per_frame.get(frame_idx, []), key=lambda kb: -kb[1][4])
        poses = np.array([k for k, _ in items], np.float64).reshape(-1, J, 3)
        if as_visibility:
            poses[..., 2] = poses[..., 2] > 0
        boxes = np.array([b for _, b in items], np.float64).reshape(-1, 5)
        out.append(Detections2D(camera, frame_idx, _stamp_ns(epoch_ns, frame_idx, fps), _clean(poses), boxes))
    if per_frame and max(per_frame) >= count:
        log.warning("%s: %d frames requested, detections up to frame %d ignored", path, count, max(per_frame))
    return out


def _round(values: np.ndarray, decimals: int) -> list:
    """Rounded nested lists; ``+ 0.0`` turns -0.0 into 0.0."""
    return (np.round(values.astype(np.float64), decimals) + 0.0).tolist()


def write_detections_json(path: str | Path, camera: str, fps: float, detections: Sequence[Detections2D]) -> Path:
    """Write detections of one camera as mvcap-detections JSON (gzip when ``path`` ends in ``.gz``).

    Coordinates are rounded to 0.01 px and confidences/scores to 0.001. The gzip header carries no
    time stamp or name, so identical detections give identical bytes. The file is written to a
    temp name and renamed.

    Args:
        path: output file.
        camera: camera name; every detection must carry it.
        fps: frame rate of the stream, frames per second (stored for reference).
        detections: per-frame detections, COCO-17 poses.

    Returns:
        ``path``.

    Raises:
        InputError: a detection of another camera, or poses that are not COCO-17.
    """
    path = Path(path)
    fps = _check_fps(fps)
    frames = []
    for det in detections:
        if det.camera != camera:
            raise InputError(f"{path}: detection of camera {det.camera!r} in a file for {camera!r}")
        if det.poses.shape[1:] != (J, 3) and det.n_people:
            raise InputError(f"{path}: poses must be (P, {J}, 3) COCO-17; got {det.poses.shape}")
        poses = np.concatenate([np.round(det.poses[..., :2], 2), np.round(det.poses[..., 2:], 3)], axis=-1)
        boxes = np.concatenate([np.round(det.boxes[:, :4], 2), np.round(det.boxes[:, 4:], 3)], axis=-1)
        frames.append(
            {
                "frame_idx": det.frame_idx,
                "stamp_ns": det.stamp_ns,
                "poses": _round(poses, 3),
                "boxes": _round(boxes, 3),
            }
        )
    doc = {"format": FORMAT, "version": VERSION, "camera": camera, "fps": fps, "skeleton": COCO17.name}
    doc["frames"] = frames
    data = json.dumps(doc, separators=(",", ":")).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with tmp.open("wb") as f:
        if path.name.endswith(".gz"):
            with gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0, compresslevel=9) as gz:
                gz.write(data)
        else:
            f.write(data)
    os.replace(tmp, path)
    log.info("wrote %d frames of %s to %s", len(frames), camera, path)
    return path


def read_detections_json(path: str | Path) -> list[Detections2D]:
    """Read an mvcap-detections file written by :func:`write_detections_json`.

    Args:
        path: ``.json`` or ``.json.gz`` file (gzip is recognised by its magic bytes).

    Returns:
        Per-frame detections in file order; poses (P, 17, 3) float32, boxes (P, 5) float32.

    Raises:
        InputError: unreadable file, wrong format or version, or a malformed frame (the message
            names the file and the frame).
    """
    path = Path(path)
    doc = read_json_file(path)
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise InputError(f"{path}: not an {FORMAT} file")
    if doc.get("version") != VERSION:
        raise InputError(f"{path}: {FORMAT} version {doc.get('version')!r} unsupported; expected {VERSION}")
    if doc.get("skeleton") != COCO17.name:
        raise InputError(f"{path}: skeleton {doc.get('skeleton')!r} unsupported; expected {COCO17.name!r}")
    camera, frames = doc.get("camera"), doc.get("frames")
    if not isinstance(camera, str) or not isinstance(frames, list):
        raise InputError(f"{path}: 'camera' must be a string and 'frames' a list")
    out = []
    for i, frame in enumerate(frames):
        try:
            poses = np.asarray(frame["poses"], dtype=np.float32)
            boxes = np.asarray(frame["boxes"], dtype=np.float32)
            poses = poses.reshape(0, J, 3) if poses.size == 0 else poses
            boxes = boxes.reshape(0, 5) if boxes.size == 0 else boxes
            if poses.ndim != 3 or poses.shape[1:] != (J, 3) or boxes.shape != (poses.shape[0], 5):
                shapes = f"{poses.shape} and {boxes.shape}"
                raise ValueError(f"poses must be (P, {J}, 3) and boxes (P, 5); got {shapes}")
            out.append(Detections2D(camera, int(frame["frame_idx"]), int(frame["stamp_ns"]), poses, boxes))
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{path}: frames[{i}]: {type(exc).__name__} {exc}") from None
    return out
