"""Per-camera overlay videos: the tracked 3D skeletons reprojected onto each camera's source video."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from calibration.camera import Camera
from core.errors import InputError
from core.skeleton import Skeleton
from core.types import Poses3D

__all__ = ["render_overlay"]


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
