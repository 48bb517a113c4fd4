"""Run outputs: 3D poses as JSON Lines (flushed per frame), TRC export, per-camera overlay videos.

``poses3d.jsonl`` starts with one header record (format, version, skeleton, joint names, units), then
one record per output frame::

    {"frame": 12, "stamp_ns": 200000000, "timestamp_s": 0.2,
     "people": [{"id": 1, "joints": [[x, y, z, conf], ...]}]}

with x, y, z in metres in the calibration's world frame and conf 0 for a missing joint. Each record
is flushed as it is written, so a run cut short leaves a readable file up to its last frame.
"""

from __future__ import annotations

import json
import logging
import os
from collections import defaultdict
from pathlib import Path
from typing import IO, Any

import cv2
import numpy as np

from calibration.camera import Camera
from core.errors import InputError
from core.skeleton import Skeleton
from core.types import Poses3D

__all__ = ["PosesWriter", "read_poses_jsonl", "render_overlay", "write_trc_files"]

log = logging.getLogger(__name__)

FORMAT: str = "mvcap-poses3d"
VERSION: int = 1


class PosesWriter:
    """Append-only JSON Lines writer of tracked 3D poses, flushed per frame.

    Args:
        path: output file (``poses3d.jsonl``); created or truncated.
        skeleton: the joints' skeleton, written into the header record.
        fsync: also ``os.fsync`` every record, so that a power loss keeps every written frame
            (flushing alone survives a killed process, not a power loss).
    """

    def __init__(self, path: str | Path, skeleton: Skeleton, fsync: bool = False):
        self.path = Path(path)
        self.fsync = fsync
        self._fh: IO[str] = self.path.open("w", encoding="utf-8")
        header = {
            "format": FORMAT,
            "version": VERSION,
            "skeleton": skeleton.name,
            "joints": list(skeleton.joints),
            "units": "m",
        }
        self._write(header)

    def _write(self, record: dict[str, Any]) -> None:
        self._fh.write(json.dumps(record, separators=(",", ":")) + "\n")
        self._fh.flush()
        if self.fsync:
            os.fsync(self._fh.fileno())

    def write(self, frame: Poses3D) -> None:
        """Append one frame's poses and flush."""
        people = [
            {"id": int(tid), "joints": np.round(pose, 5).tolist()}
            for tid, pose in zip(frame.track_ids, frame.poses, strict=True)
        ]
        self._write(
            {
                "frame": frame.frame_idx,
                "stamp_ns": frame.stamp_ns,
                "timestamp_s": round(frame.stamp_ns * 1e-9, 6),
                "people": people,
            }
        )

    def close(self) -> None:
        """Close the file (idempotent)."""
        if not self._fh.closed:
            self._fh.close()


def read_poses_jsonl(path: str | Path) -> tuple[dict[str, Any], list[Poses3D]]:
    """Read a ``poses3d.jsonl`` file; a truncated last line (a run killed mid-write) is ignored.

    Returns:
        The header record and the frames in file order.

    Raises:
        InputError: missing file, missing/foreign header, or a malformed record before the last line.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InputError(f"{path}: cannot read poses ({exc.strerror})") from None
    if not lines:
        raise InputError(f"{path}: empty poses file")
    try:
        header = json.loads(lines[0])
    except json.JSONDecodeError:
        header = {}
    if header.get("format") != FORMAT:
        raise InputError(f"{path}: not an {FORMAT} file (first line has no header record)")
    n_joints = len(header.get("joints", []))
    frames = []
    for n, line in enumerate(lines[1:], start=2):
        try:
            rec = json.loads(line)
            ids = [p["id"] for p in rec["people"]]
            poses = np.array([p["joints"] for p in rec["people"]], dtype=np.float64).reshape(len(ids), n_joints, 4)
            frames.append(Poses3D(rec["frame"], rec["stamp_ns"], np.array(ids, dtype=np.int64), poses))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            if n == len(lines):
                log.warning("%s: ignoring truncated last line %d", path, n)
                break
            raise InputError(f"{path}: line {n} is malformed ({exc})") from None
    return header, frames


def write_trc_files(frames: list[Poses3D], joint_names: list[str], out_dir: str | Path, rate_hz: float) -> list[Path]:
    """Write one TRC file (OpenSim marker format) per track.

    Convention: OpenSim is Y-up; our world is Z-up, so TRC (X, Y, Z) = world (x, z, -y), metres
    (a -90 degree rotation about x, right-handed). Missing joints are left blank. Each file spans the
    track's first to last frame.

    Args:
        frames: output frames in order.
        joint_names: marker names (J).
        out_dir: folder for ``person_<id>.trc``.
        rate_hz: frame rate written in the header, Hz.

    Returns:
        The written paths, by track id.
    """
    out_dir = Path(out_dir)
    per_track: dict[int, dict[int, np.ndarray]] = defaultdict(dict)
    frame_stamp = {}
    for fr in frames:
        frame_stamp[fr.frame_idx] = fr.stamp_ns
        for tid, pose in zip(fr.track_ids, fr.poses, strict=True):
            per_track[int(tid)][fr.frame_idx] = pose
    t0 = min(frame_stamp.values(), default=0)
    paths = []
    for tid in sorted(per_track):
        by_frame = per_track[tid]
        idx = [f for f in sorted(frame_stamp) if min(by_frame) <= f <= max(by_frame)]
        path = out_dir / f"person_{tid}.trc"
        J = len(joint_names)
        lines = [
            f"PathFileType\t4\t(X/Y/Z)\t{path.name}",
            "DataRate\tCameraRate\tNumFrames\tNumMarkers\tUnits\tOrigDataRate\tOrigDataStartFrame\tOrigNumFrames",
            f"{rate_hz:g}\t{rate_hz:g}\t{len(idx)}\t{J}\tm\t{rate_hz:g}\t{idx[0] + 1}\t{len(idx)}",
            "Frame#\tTime\t" + "\t\t\t".join(joint_names) + "\t\t",
            "\t\t" + "\t".join(f"X{j + 1}\tY{j + 1}\tZ{j + 1}" for j in range(J)),
            "",
        ]
        for f in idx:
            pose = by_frame.get(f)
            cells = []
            for j in range(J):
                if pose is None or pose[j, 3] <= 0:
                    cells += ["", "", ""]
                else:
                    x, y, z = pose[j, :3]
                    cells += [f"{x:.5f}", f"{z:.5f}", f"{-y:.5f}"]
            lines.append(f"{f + 1}\t{(frame_stamp[f] - t0) * 1e-9:.5f}\t" + "\t".join(cells))
        path.write_text("\n".join(lines) + "\n")
        paths.append(path)
    return paths


def _colour(track_id: int) -> tuple[int, int, int]:
    hue = (track_id * 47) % 180
    bgr = cv2.cvtColor(np.uint8([[[hue, 220, 255]]]), cv2.COLOR_HSV2BGR)[0, 0]
    return int(bgr[0]), int(bgr[1]), int(bgr[2])


def render_overlay(
    video: str | Path, camera: Camera, frames: list[Poses3D], skeleton: Skeleton, out_path: str | Path
) -> int:
    """Draw reprojected 3D skeletons and track ids on a camera's video.

    Args:
        video: the camera's source video.
        camera: its calibration (projection includes distortion).
        frames: output frames; matched to video frames by ``frame_idx``.
        skeleton: limbs to draw.
        out_path: output ``.mp4`` (mp4v codec).

    Returns:
        Number of frames written.

    Raises:
        InputError: the video cannot be read or the output cannot be written.
    """
    cap = cv2.VideoCapture(str(video))
    if not cap.isOpened():
        raise InputError(f"{video}: cannot open video for the overlay")
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    writer = cv2.VideoWriter(str(out_path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    if not writer.isOpened():
        cap.release()
        raise InputError(f"{out_path}: cannot write video")
    by_frame = {f.frame_idx: f for f in frames}
    n = 0
    thickness = max(2, size[0] // 300)
    try:
        while True:
            ok, img = cap.read()
            if not ok:
                break
            fr = by_frame.get(n)
            if fr is not None:
                for tid, pose in zip(fr.track_ids, fr.poses, strict=True):
                    valid = pose[:, 3] > 0
                    if not valid.any():
                        continue
                    uv = camera.project(pose[:, :3])
                    in_front = camera.to_camera(pose[:, :3])[:, 2] > 0
                    ok_j = valid & in_front & np.isfinite(uv).all(axis=1) & (np.abs(uv) < 1e5).all(axis=1)
                    colour = _colour(int(tid))
                    for a, b in skeleton.limbs:
                        if ok_j[a] and ok_j[b]:
                            cv2.line(
                                img,
                                tuple(np.round(uv[a]).astype(int)),
                                tuple(np.round(uv[b]).astype(int)),
                                colour,
                                thickness,
                                cv2.LINE_AA,
                            )
                    for j in np.nonzero(ok_j)[0]:
                        cv2.circle(img, tuple(np.round(uv[j]).astype(int)), thickness + 2, colour, -1, cv2.LINE_AA)
                    top = uv[ok_j][np.argmin(uv[ok_j, 1])]
                    cv2.putText(
                        img,
                        f"id {tid}",
                        (int(top[0]) - 30, int(top[1]) - 25),
                        cv2.FONT_HERSHEY_SIMPLEX,
                        1.4,
                        colour,
                        3,
                        cv2.LINE_AA,
                    )
            cv2.putText(
                img,
                f"{camera.name} frame {n}",
                (20, 50),
                cv2.FONT_HERSHEY_SIMPLEX,
                1.2,
                (255, 255, 255),
                2,
                cv2.LINE_AA,
            )
            writer.write(img)
            n += 1
    finally:
        cap.release()
        writer.release()
    return n
