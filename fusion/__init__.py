"""Fusion of 3D poses over time: the live UKF tracker (:class:`LiveTracker`, batched UKF in
:mod:`fusion.ukf`, re-identification of returning people in :mod:`fusion.reid`), RGB-D lifting
(:mod:`fusion.rgbd`), constant-velocity identity tracking, and UKF + RTS smoothing of each track's
joints (over a whole take, :func:`smooth_sequence`, or streamed in bounded memory,
:class:`StreamSmoother`).

Names are imported on first use (PEP 562): a worker that only lifts depth (``fusion.rgbd``) does not
pay for filterpy and scipy.stats (about 0.7 s of start-up).
"""

from importlib import import_module
from typing import Any

_LAZY = {
    "BoneModel": "fusion.bones",
    "LiveTracker": "fusion.live",
    "LiveUpdate": "fusion.live",
    "LiveTrack": "fusion.live_tracks",
    "ReIdentifier": "fusion.reid",
    "TrackState": "fusion.live_tracks",
    "confidence_from_std": "fusion.live_tracks",
    "SequenceFrame": "fusion.smoothing",
    "smooth_joint_track": "fusion.smoothing",
    "smooth_sequence": "fusion.smoothing",
    "StreamSmoother": "fusion.stream_smoothing",
    "Track": "fusion.tracking",
    "Tracker": "fusion.tracking",
    "pose_distance_matrix": "fusion.tracking",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    """Import the module that defines ``name`` on first access."""
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'fusion' has no attribute {name!r}")
