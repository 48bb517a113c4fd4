"""The conversions that feed Pose2Sim our input: detections to OpenPose JSON, calibration to Calib.toml.

The peer itself is never installed here (it needs the package index); only what it would read is checked.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import cv2
import numpy as np
import pytest

from calibration.io import read_calibration
from capture.benchmarks.peer_pose2sim import openpose_frame, prepare_project
from capture.sources.detection_files import read_detections_json, read_openpose_folder
from core.errors import ShapeError
from core.skeleton import COCO17

REPO = Path(__file__).resolve().parents[2]
DETECTIONS = REPO / "tests" / "data" / "demo_yolo11n"

# Keypoint ids of Pose2Sim 0.10.49's skeletons.COCO_17 (Pose2Sim/skeletons.py), copied from the peer:
# the index of each joint's (x, y, c) triplet in pose_keypoints_2d that its triangulation reads.
POSE2SIM_COCO_17 = {
    "Nose": 0, "LShoulder": 5, "RShoulder": 6, "LElbow": 7, "RElbow": 8, "LWrist": 9, "RWrist": 10,
    "LHip": 11, "RHip": 12, "LKnee": 13, "RKnee": 14, "LAnkle": 15, "RAnkle": 16,
}  # fmt: skip


def _our_name(pose2sim_name: str) -> str:
    """ "LShoulder" -> "left_shoulder" (COCO17 joint names)."""
    if pose2sim_name == "Nose":
        return "nose"
    side = {"L": "left", "R": "right"}[pose2sim_name[0]]
    return f"{side}_{pose2sim_name[1:].lower()}"


def test_openpose_keypoints_sit_where_pose2sim_coco17_reads_them() -> None:
    rng = np.random.default_rng(3)
    poses = np.concatenate([rng.uniform(0, 1900, (3, 17, 2)), rng.uniform(0.05, 1, (3, 17, 1))], axis=2)
    poses[1, 7, 2] = 0.0  # a missing joint
    data = json.loads(json.dumps(openpose_frame(poses)))  # what lands on disk
    assert len(data["people"]) == 3
    for p, person in enumerate(data["people"]):
        flat = person["pose_keypoints_2d"]
        assert len(flat) == 17 * 3
        for name, kid in POSE2SIM_COCO_17.items():
            j = COCO17.joints.index(_our_name(name))
            expected = [0.0, 0.0, 0.0] if poses[p, j, 2] == 0 else poses[p, j]
            np.testing.assert_allclose(flat[3 * kid : 3 * kid + 3], expected, atol=1e-3, err_msg=f"{name} person {p}")


def test_openpose_frame_refuses_other_skeletons() -> None:
    with pytest.raises(ShapeError):
        openpose_frame(np.zeros((2, 25, 3)))
    assert openpose_frame(np.zeros((0, 17, 3)))["people"] == []


def test_project_round_trip(shared_data: Path, tmp_path: Path) -> None:
    demo = shared_data / "pose2sim_demo_multiperson"
    calib = demo / "calibration" / "Calib.qca.txt"
    project = tmp_path / "demo"
    n = prepare_project(calib, DETECTIONS, demo / "Config.toml", project, frames=3)
    assert n == 3
    assert tomllib.loads((project / "Config.toml").read_text())["project"]["multi_person"] is True
    rig = read_calibration(calib)

    # detections: Pose2Sim sorts camera folders and frames by the last number of their names
    folders = sorted((project / "pose").iterdir(), key=lambda d: int(re.findall(r"\d+", d.name)[-1]))
    assert [d.name for d in folders] == [f"{name}_json" for name in rig.names]
    for name, folder in zip(rig.names, folders, strict=True):
        frames = sorted(int(re.split(r"(\d+)", f.name)[-2]) for f in folder.glob("*.json"))
        assert frames == [0, 1, 2]
        ours = read_detections_json(DETECTIONS / f"{name}.json.gz")
        back = read_openpose_folder(folder, camera=name)
        for f in range(3):
            expected = np.where((ours[f].poses[..., 2] > 0)[..., None], ours[f].poses, 0)
            np.testing.assert_allclose(back[f].poses, expected, atol=1e-3)

    # calibration: a world point lands on the same pixel through our camera and through the TOML's
    # values as Pose2Sim uses them (Rodrigues rotation, translation in metres, K, OpenCV distortion)
    table = tomllib.loads((project / "calibration" / "Calib.toml").read_text())
    cams = [k for k, v in table.items() if isinstance(v, dict) and k != "metadata"]
    assert cams == list(rig.names)
    X = np.random.default_rng(0).uniform([-1.5, -1.5, 0.0], [1.5, 1.5, 2.0], (50, 3))
    for cam, key in zip(rig, cams, strict=True):
        c = table[key]
        assert c["size"] == list(cam.size)
        px, _ = cv2.projectPoints(
            X, np.array(c["rotation"]), np.array(c["translation"]), np.array(c["matrix"]), np.array(c["distortions"])
        )
        np.testing.assert_allclose(px.reshape(-1, 2), cam.project(X), atol=1e-6)
