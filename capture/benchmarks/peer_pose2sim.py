"""The peer on the node's own input: Pose2Sim 0.10.49's association + triangulation, timed in the same run.

Pose2Sim (Pagnon, Domalain & Reveret 2022, "Pose2Sim: an open-source Python package for multiview
markerless kinematics", JOSS 7(77) 4362) runs offline on folders of files. Its multi-person
``personAssociation.associate_all`` (Plücker ray-to-ray affinity + SVT multi-way matching, after
Dong et al. CVPR 2019) and ``triangulation.triangulate_all`` (per-joint confidence-weighted DLT
with camera-subset search, then identities by Hungarian on 3D distance) are run here, unmodified,
in a separate virtualenv (:func:`peer_env`) on the demo's recorded YOLO11n-pose detections
(``tests/data/demo_yolo11n``) converted to the layout Pose2Sim reads:

- ``pose/<camera>_json/<camera>_<frame:012d>_keypoints.json``: OpenPose JSON (Cao et al. 2017) in
  OpenPose's own file naming (Pose2Sim takes the last number of a name as the frame), one file per
  camera per frame, ``people[i].pose_keypoints_2d`` = 17 x (x, y, c) in COCO-17 order, which is the
  keypoint id order of Pose2Sim's ``skeletons.COCO_17`` (``pose_model = "COCO_17"``); a missing
  joint is 0, 0, 0 as OpenPose writes it;
- ``calibration/Calib.toml``: the demo's Qualisys calibration through :func:`calibration.io.write_calibration`
  (Pose2Sim's own TOML layout);
- ``Config.toml``: the demo's own (``Pose2Sim/Demo_MultiPerson/Config.toml``) with ``pose_model``
  (``COCO_17``), ``frame_rate`` (60), ``frame_range`` (all) and ``project_dir`` overridden in memory;
  everything else as shipped (e.g. lens distortion ignored, ``undistort_points`` off by default).

This file is also the script the peer's interpreter runs (``python peer_pose2sim.py _peer ...``):
the peer environment has numpy but not this project, so project imports stay inside functions.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import numpy as np

__all__ = [
    "PEER_PACKAGES",
    "PEER_VERSION",
    "compare_node_peer",
    "openpose_frame",
    "peer_env",
    "prepare_project",
    "time_pose2sim",
]

PEER_VERSION: Final = "0.10.49"
PEER_PACKAGES: Final = (
    "numpy==2.4.6",
    "scipy==1.17.1",
    "pandas==3.1.1",
    "matplotlib==3.11.2",
    "opencv-python-headless==5.0.0.93",
    "rtoml==0.14.0",
    "tqdm==4.70.1",
    "anytree==2.13.0",
    "c3d==0.6.0",
)
"""What ``Pose2Sim.personAssociation`` and ``Pose2Sim.triangulation`` import (found by trying: each
missing one stops the import), pinned; pip resolves their own dependencies. The wheel's other 9
requirements (opensim, rtmlib, openvino, PySide6, ...) serve other steps and are not installed."""

_MARKER: Final = ".mvcap-peer-complete"
_SINGLE_THREAD: Final = {k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
REPO: Final = Path(__file__).resolve().parents[2]


def _one_line(proc: subprocess.CompletedProcess, what: str) -> str:
    last = (proc.stderr.strip().splitlines() or proc.stdout.strip().splitlines() or ["no output"])[-1]
    return f"{what} failed (exit {proc.returncode}): {last.strip()}"


def peer_env(cache_dir: Path | None = None) -> Path:
    """Make (once) a virtualenv holding Pose2Sim 0.10.49 and the packages its two steps import.

    The wheel is fetched with ``pip download --no-deps`` (the user's pip configuration applies) and
    checked against the sha256 that :mod:`capture.assets` pins for the same wheel, then installed
    with ``--no-deps``; :data:`PEER_PACKAGES` are installed beside it. A marker file is written
    last; a folder without it (an interrupted build) is rebuilt. Needs the package index once.

    Args:
        cache_dir: parent folder; default :func:`capture.assets.cache_dir` (``$MVCAP_CACHE`` or
            ``~/.cache/mvcap``). The environment is ``<cache_dir>/peer-pose2sim-0.10.49``.

    Returns:
        Path of the environment's python.

    Raises:
        InputError: pip failed (no network, no such version), or the wheel's hash differs. The
            message is one line.
    """
    from capture.assets import DEMO_SHA256, sha256_file
    from capture.assets import cache_dir as default_cache
    from core.errors import InputError

    dest = Path(cache_dir or default_cache()) / f"peer-pose2sim-{PEER_VERSION}"
    python = dest / "bin" / "python"
    if (dest / _MARKER).is_file() and python.is_file():
        return python
    if dest.exists():
        shutil.rmtree(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)

    def run(cmd: list[str], what: str) -> None:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise InputError(_one_line(proc, what))

    with tempfile.TemporaryDirectory(prefix=".peer-", dir=dest.parent) as tmp:
        spec = f"pose2sim=={PEER_VERSION}"
        pip_dl = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:"]
        run([*pip_dl, "--retries", "1", "--timeout", "15", spec, "-d", tmp], f"pip download {spec}")
        wheels = sorted(Path(tmp).glob("*.whl"))
        if len(wheels) != 1 or sha256_file(wheels[0]) != DEMO_SHA256:
            raise InputError(f"pip download {spec}: expected one wheel with sha256 {DEMO_SHA256}")
        run([sys.executable, "-m", "venv", str(dest)], "python -m venv")
        pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        run([*pip, "--no-deps", str(wheels[0])], f"pip install --no-deps {wheels[0].name}")
        run([*pip, *PEER_PACKAGES], "pip install of the peer's packages")
    run([str(python), "-c", "import Pose2Sim.personAssociation, Pose2Sim.triangulation"], "importing Pose2Sim")
    (dest / _MARKER).write_text(f"{spec} {' '.join(PEER_PACKAGES)}\n")
    return python


def openpose_frame(poses: np.ndarray) -> dict:
    """One camera frame as OpenPose JSON (``*_keypoints.json`` layout, version 1.3).

    Args:
        poses: (P, 17, 3) [u_px, v_px, conf] in COCO-17 order, distorted pixels; conf 0 = missing.

    Returns:
        ``{"version": 1.3, "people": [...]}`` with ``pose_keypoints_2d`` = 51 floats per person
        (x, y, c per joint, COCO-17 order = Pose2Sim's ``COCO_17`` keypoint ids); missing joints are
        written as 0, 0, 0.

    Raises:
        ShapeError: ``poses`` is not (P, 17, 3).
    """
    from core.errors import ShapeError

    poses = np.asarray(poses, dtype=np.float64)
    if poses.ndim != 3 or poses.shape[1:] != (17, 3):
        raise ShapeError(f"poses must be (P, 17, 3); got {poses.shape}")
    poses = np.where((poses[..., 2] > 0)[..., None], poses, 0.0)
    people = [
        {
            "person_id": [-1],
            "pose_keypoints_2d": [round(float(v), 3) for v in p.reshape(-1)],
            "face_keypoints_2d": [],
            "hand_left_keypoints_2d": [],
            "hand_right_keypoints_2d": [],
        }
        for p in poses
    ]
    return {"version": 1.3, "people": people}


def prepare_project(calibration: Path, detections_dir: Path, config: Path, dest: Path, frames: int | None) -> int:
    """Write a Pose2Sim project folder from our calibration and detections; returns the frame count.

    Args:
        calibration: any calibration :func:`calibration.io.read_calibration` reads (the demo's
            ``Calib.qca.txt``); written as ``dest/calibration/Calib.toml``.
        detections_dir: folder of ``<camera>.json.gz`` (mvcap detections), one per calibrated camera.
        config: Pose2Sim ``Config.toml`` to copy (the demo's own).
        dest: project folder to create (must not hold a previous project).
        frames: first frames to convert (None: all that every camera has).

    Returns:
        Number of frames written per camera.

    Raises:
        InputError, CalibrationError: unreadable inputs.
    """
    from calibration.io import read_calibration, write_calibration
    from capture.sources.detection_files import read_detections_json

    rig = read_calibration(calibration)
    per_cam = {n: read_detections_json(Path(detections_dir) / f"{n}.json.gz") for n in rig.names}
    n = min(len(v) for v in per_cam.values())
    n = n if frames is None else min(n, int(frames))
    (dest / "calibration").mkdir(parents=True)
    write_calibration(rig, dest / "calibration" / "Calib.toml", "toml")
    shutil.copyfile(config, dest / "Config.toml")
    for name, dets in per_cam.items():
        folder = dest / "pose" / f"{name}_json"
        folder.mkdir(parents=True)
        for f in range(n):
            (folder / f"{name}_{f:012d}_keypoints.json").write_text(json.dumps(openpose_frame(dets[f].poses)))
    return n


def time_pose2sim(python: Path, calibration: Path, detections_dir: Path, frames: int | None = None) -> dict:
    """Run Pose2Sim's association + triangulation once in its environment; CPU ms per frame.

    The project is written to a temp folder (:func:`prepare_project`, not timed), then a subprocess
    of ``python`` imports Pose2Sim (not timed) and times ``associate_all`` and ``triangulate_all``
    with ``time.process_time`` (one BLAS/OpenMP thread). Pose2Sim's own file I/O inside them (its
    JSON reads and writes per frame, the .trc output) is timed apart as well, so that ``compute``
    excludes it: the node gets its detections in memory.

    Args:
        python: the peer's interpreter (:func:`peer_env`).
        calibration: calibration file (the demo's ``Calib.qca.txt``).
        detections_dir: folder of ``<camera>.json.gz`` mvcap detections.
        frames: first frames to process (None: all).

    Returns:
        ``{"frames", "tracks", "association_ms_per_frame", "triangulation_ms_per_frame",
        "total_ms_per_frame", "file_io_ms_per_frame", "compute_ms_per_frame"}``; ``tracks`` is the
        number of .trc files (people) Pose2Sim wrote.

    Raises:
        InputError: the demo's Config.toml cannot be fetched, or Pose2Sim failed (one-line message).
    """
    from capture.assets import demo_data_dir
    from core.errors import InputError

    with tempfile.TemporaryDirectory(prefix="mvcap-pose2sim-") as tmp:
        project = Path(tmp) / "demo"
        n = prepare_project(calibration, detections_dir, demo_data_dir() / "Config.toml", project, frames)
        out = Path(tmp) / "timing.json"
        env = {**os.environ, **_SINGLE_THREAD, "MPLBACKEND": "Agg", "TQDM_DISABLE": "1"}
        env.pop("PYTHONPATH", None)
        cmd = [str(python), "-I", str(Path(__file__).resolve()), "_peer", str(project), str(out)]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp, check=False)
        if proc.returncode != 0 or not out.is_file():
            raise InputError(_one_line(proc, "Pose2Sim"))
        res = json.loads(out.read_text())
    ms = {k: v * 1e3 / n for k, v in res["seconds"].items()}
    total = ms["association"] + ms["triangulation"]
    return {
        "frames": n,
        "tracks": res["tracks"],
        "association_ms_per_frame": round(ms["association"], 2),
        "triangulation_ms_per_frame": round(ms["triangulation"], 2),
        "total_ms_per_frame": round(total, 2),
        "file_io_ms_per_frame": round(ms["file_io"], 2),
        "compute_ms_per_frame": round(total - ms["file_io"], 2),
    }


def _node_pass(rig, frames: Sequence[Sequence], cfg, fusion) -> list[float]:
    """One pass of the node's reconstruction over the frames; CPU ms per frame (one thread)."""
    from capture.pipeline import FrameReconstructor
    from core.skeleton import COCO17

    rec = FrameReconstructor(rig, COCO17, cfg.matching, cfg.triangulation, fusion)
    out = []
    for views in frames:
        c0 = time.thread_time()
        rec.process(list(views), views[0].stamp_ns)
        out.append((time.thread_time() - c0) * 1e3)
    return out


def compare_node_peer(
    python: Path, calibration: Path, detections_dir: Path, repeats: int = 3, frames: int | None = None
) -> dict:
    """Time the node and Pose2Sim alternately in one run on the same 2D input; returns the figures.

    Each round runs the node (default config, then ``filter = "none"``) over the frames in this
    process, then one Pose2Sim pass (:func:`time_pose2sim`). Figures are medians over rounds of each
    pass's mean CPU ms per frame (the node's per-frame median is given too); Pose2Sim's split
    (association, triangulation, file I/O) is that of its median round, so that the parts add up.
    The ratios are medians over rounds of Pose2Sim's compute (its file I/O excluded) or total over the
    node's mean with the default config in the same round: load on the machine hits both alike.

    Args:
        python: the peer's interpreter (:func:`peer_env`).
        calibration: calibration file (the demo's ``Calib.qca.txt``).
        detections_dir: folder of ``<camera>.json.gz`` mvcap detections.
        repeats: rounds (at least 1).
        frames: first frames to use (None: all).

    Raises:
        InputError: as :func:`time_pose2sim`.
    """
    import dataclasses

    from calibration.io import read_calibration
    from capture.sources.detection_files import read_detections_json
    from core.config import Config

    rig = read_calibration(calibration)
    per_cam = {n: read_detections_json(Path(detections_dir) / f"{n}.json.gz") for n in rig.names}
    n = min(len(v) for v in per_cam.values())
    n = n if frames is None else min(n, int(frames))
    seq = [[per_cam[c][f] for c in rig.names] for f in range(n)]
    cfg = Config()
    configs = {cfg.fusion.filter: cfg.fusion, "none": dataclasses.replace(cfg.fusion, filter="none")}
    from capture.kernel_warmup import warm_up
    from core.skeleton import COCO17

    for fusion in configs.values():  # compiled kernels: compiled or loaded before anything is timed
        warm_up(rig, COCO17, cfg.matching, cfg.triangulation, fusion)
    node: dict[str, list[list[float]]] = {k: [] for k in configs}
    peer = []
    for _ in range(max(1, int(repeats))):
        for name, fusion in configs.items():
            node[name].append(_node_pass(rig, seq, cfg, fusion))
        peer.append(time_pose2sim(python, calibration, detections_dir, n))
    med = statistics.median
    node_fig = {
        name: {
            "mean_ms_per_frame": round(med(statistics.fmean(p) for p in passes), 3),
            "median_ms_per_frame": round(med(med(p) for p in passes), 3),
        }
        for name, passes in node.items()
    }
    mid = sorted(peer, key=lambda p: p["total_ms_per_frame"])[(len(peer) - 1) // 2]
    peer_fig = {k: v for k, v in mid.items() if k.endswith("_ms_per_frame")}
    ours = [statistics.fmean(p) for p in node[cfg.fusion.filter]]

    def ratio(key: str) -> float:
        return round(med(p[key] / o for p, o in zip(peer, ours, strict=True)), 1)

    return {
        "benchmark": "node vs Pose2Sim 0.10.49 association + triangulation, same 2D input, CPU, one thread",
        "frames": n,
        "rounds": len(peer),
        "node": node_fig,
        "node_default_filter": cfg.fusion.filter,
        "pose2sim": peer_fig,
        "pose2sim_tracks": peer[0]["tracks"],
        "per_round": {
            "node_mean_ms_per_frame": [round(o, 3) for o in ours],
            "pose2sim_total_ms_per_frame": [p["total_ms_per_frame"] for p in peer],
        },
        "ratio_pose2sim_compute_to_node": ratio("compute_ms_per_frame"),
        "ratio_pose2sim_total_to_node": ratio("total_ms_per_frame"),
    }


def _peer_main(project: Path, out: Path) -> None:  # pragma: no cover - runs in the peer's environment
    """Inside the peer's python: run Pose2Sim's two steps on ``project``, write the timings to ``out``."""
    import logging

    logging.basicConfig(level=logging.ERROR)
    import rtoml
    from Pose2Sim import personAssociation as pa
    from Pose2Sim import triangulation as tr

    cfg = rtoml.load(project / "Config.toml")
    cfg["project"].update(project_dir=str(project), frame_rate=60, frame_range="all")
    cfg["pose"]["pose_model"] = "COCO_17"  # the detections' keypoints (YOLO11n-pose, COCO-17)
    io_s = [0.0]

    def timed(fn):
        def wrapper(*args, **kwargs):
            c0 = time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                io_s[0] += time.process_time() - c0

        return wrapper

    # the functions that read and write Pose2Sim's files inside the two steps (module globals they call)
    pa.read_json, pa.rewrite_json_files = timed(pa.read_json), timed(pa.rewrite_json_files)
    tr.extract_files_frame_f, tr.make_trc = timed(tr.extract_files_frame_f), timed(tr.make_trc)
    os.chdir(project)
    c0 = time.process_time()
    pa.associate_all(cfg)
    c1 = time.process_time()
    tr.triangulate_all(cfg)
    c2 = time.process_time()
    tracks = len(list((project / "pose-3d").glob("*.trc")))
    seconds = {"association": c1 - c0, "triangulation": c2 - c1, "file_io": io_s[0]}
    out.write_text(json.dumps({"seconds": seconds, "tracks": tracks}))


def main(argv: list[str] | None = None) -> int:
    """``python -m capture.benchmarks.peer_pose2sim [--repeats N] [--frames N]``: print the comparison."""
    import argparse

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["_peer"]:
        _peer_main(Path(argv[1]), Path(argv[2]))
        return 0
    p = argparse.ArgumentParser(prog="peer_pose2sim", description=main.__doc__)
    p.add_argument("--calibration", default=None, help="calibration (default: the demo's, fetched and cached)")
    p.add_argument("--detections", default=str(REPO / "tests/data/demo_yolo11n"), help="folder of <camera>.json.gz")
    p.add_argument("--repeats", type=int, default=3, help="rounds (node then peer)")
    p.add_argument("--frames", type=int, default=None, help="first frames only")
    args = p.parse_args(argv)
    os.environ.update(_SINGLE_THREAD)
    from capture.assets import demo_data_dir
    from core.errors import CaptureError

    try:
        calib = Path(args.calibration) if args.calibration else demo_data_dir() / "calibration" / "Calib.qca.txt"
        python = peer_env()
        res = compare_node_peer(python, calib, Path(args.detections), args.repeats, args.frames)
    except CaptureError as exc:
        print(f"peer skipped: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
