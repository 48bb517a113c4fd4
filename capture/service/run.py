"""``mvcap run`` and ``mvcap demo``: validate inputs, then launch node + workers locally."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import signal
import sys
import time
from pathlib import Path

from calibration.camera import CameraRig
from calibration.checks import load_rig
from capture.service.launcher import launch
from capture.service.report import format_summary
from capture.service.worker import check_source, is_detection_file
from core.config import CameraSource, Config, load_config
from core.errors import CalibrationError, CaptureError, ConfigError, InputError
from core.logsetup import setup_logging

__all__ = ["demo_main", "live_main", "models_for", "prepare", "run_main"]

log = logging.getLogger(__name__)

REPO_CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def prepare(cfg: Config) -> CameraRig:
    """Check a run's inputs before any process starts; return the rig of its cameras.

    The calibration is read for the configured cameras only, each taking its ``image_size`` where
    the calibration stores none (:func:`~calibration.io.read_calibration`); camera centres must be
    apart (:func:`~calibration.checks.check_rig`); the first frame of every video file or image
    folder must have its camera's calibrated (width, height), or the camera an ``image_map`` that
    fits its frames (:func:`capture.sources.image_map.check_image_map`). Webcams and detection files are
    opened (resp. looked up) but not size-checked. Stills (``[[cameras]] stills``) must be image
    folders (or detection files), on every camera or none, and no track may outlive the gap
    between two stills (``[fusion] max_missed_s``, ``max_tentative_s``, ``[smoothing] max_gap_s``).

    Returns:
        The configured cameras, in config order.

    Raises:
        ConfigError: no calibration or cameras configured; stills on some cameras only, or with
            track lifetimes that reach the gap between stills.
        CalibrationError: fewer than 2 cameras, an unreadable calibration, a configured camera
            missing from it, a camera without an image size (VoxelPose) or whose ``image_size``
            contradicts the file, or two cameras less than 1 cm apart.
        InputError: a source that cannot be opened, whose frames differ in size from the
            calibration without a fitting ``image_map``, stills that are not an image folder, or an
            ``image_map`` on an RGB-D camera.
    """
    if not cfg.calibration:
        raise ConfigError("the config names no calibration file")
    if not cfg.cameras:
        raise ConfigError("the config lists no [[cameras]]")
    _check_stills(cfg)
    sizes = {c.name: c.image_size for c in cfg.cameras if c.image_size is not None}
    min_cameras = 1 if any(c.depth for c in cfg.cameras) else 2  # one RGB-D camera alone gives 3D
    rig = load_rig(cfg.calibration, sizes=sizes, names=[c.name for c in cfg.cameras], min_cameras=min_cameras)
    from capture.sources.frames import WebcamSource, open_source
    from capture.sources.image_map import check_image_map

    for cam in cfg.cameras:
        if is_detection_file(cam.source):
            check_source(cam.source, cam.name)
            continue
        if cam.depth and cam.image_map is not None:
            raise InputError(f"camera {cam.name}: image_map is not supported with a depth source (RGB-D)")
        with open_source(cam.source, stills=cam.stills) as src:
            if isinstance(src, WebcamSource):
                continue
            check_image_map(src.size, rig[cam.name].size, cam.image_map, cam.source, cam.name, cfg.calibration)
    return rig


def _check_stills(cfg: Config) -> None:
    """Stills on every camera or none, and no track or smoothing gap that spans two stills."""
    from capture.sources.frames import STILLS_GAP_S

    stills = [c.stills for c in cfg.cameras]
    if not any(stills):
        return
    if not all(stills):
        names = ", ".join(c.name for c in cfg.cameras if not c.stills)
        raise ConfigError(f"stills must be set on every camera or none; not on {names}")
    spans = {"fusion.max_missed_s": cfg.fusion.max_missed_s, "fusion.max_tentative_s": cfg.fusion.max_tentative_s,
             "smoothing.max_gap_s": cfg.smoothing.max_gap_s}  # fmt: skip
    long = {k: v for k, v in spans.items() if v >= STILLS_GAP_S}
    if long:
        raise ConfigError(f"stills are {STILLS_GAP_S:g} s apart; {long} would carry tracks between them")


def models_for(cfg: Config) -> dict[str, str]:
    """The default detector's ONNX model of each detecting camera, exported once per input shape,
    after checking the ``[detector]`` choice (:func:`capture.detect.registry.check_detector`: a supplied
    model's file is checked here, before any worker starts).

    Each camera's input shape follows its frames (:func:`capture.detect.letterbox.input_hw_for_frame`) as
    the detector sees them (turned by ``[[cameras]] rotate``); the first frame of each source is read
    for its size. With ``[detector] rois`` also every crop shape of its ladder
    (:func:`capture.detect.crop_shapes.shape_ladder`); with ``[detector] refine = "yolo"`` the
    refinement model (``refine_input_h`` x ``refine_input_w``).

    Returns:
        camera name -> model path; cameras replaying detection files are left out.

    Raises:
        ConfigError: an unknown detector, a supplied model file missing or wrong, or ``[detector]
            device = "cuda"`` with an onnxruntime that has no CUDA execution provider.
        InputError: a source cannot be opened, or the export failed (no ultralytics, no network).
    """
    from capture.assets import yolo_pose_onnx
    from capture.detect.letterbox import input_hw_for_frame
    from capture.detect.model_files import execution_providers
    from capture.detect.registry import check_detector, uses_default_model
    from capture.sources.image_map import rotated_size

    det, models = cfg.detector, {}
    check_detector(det.name, det.model, det.box_detector)
    execution_providers(det.device)  # [detector] device = "cuda" without a CUDA onnxruntime: exit 2 here
    if det.refine == "yolo":  # the refinement model, exported once here rather than by every worker at once
        yolo_pose_onnx((det.refine_input_h, det.refine_input_w))
    if not uses_default_model(det.name, det.box_detector):
        return models
    full_hws = set()
    for cam in cfg.cameras:
        frame_wh = check_source(cam.source, cam.name, stills=cam.stills)
        if frame_wh is not None:  # the detector sees the frame turned by [[cameras]] rotate
            hw = input_hw_for_frame(rotated_size(frame_wh, cam.rotate), det.input_long_px, det.fixed_input_hw)
            models[cam.name] = str(yolo_pose_onnx(hw))
            full_hws.add(hw)
    if det.rois:  # the crop shapes, exported once here rather than by every worker mid-run
        from capture.detect.crop_shapes import shape_ladder

        for hw in sorted({s for full in full_hws for s in shape_ladder((det.roi_input_h, det.roi_input_w), full)}):
            yolo_pose_onnx(hw)
    return models


def _report(out_dir: Path, summary: dict) -> None:
    tracks = ", ".join(f"id {t['id']}: frames {t['first_frame']}-{t['last_frame']}" for t in summary.get("tracks", []))
    node = summary.get("node_ms_per_frame", {}).get("total", {})
    det = [w.get("detection_ms", {}).get("median", 0) for w in summary.get("workers", {}).values()]
    rep = summary.get("reprojection_px", {})
    print(f"output: {out_dir}")
    print(f"frames: {summary.get('frames')}  tracks: {tracks or 'none'}")
    print(f"reprojection error: median {rep.get('median')} px, p90 {rep.get('p90')} px")
    print(f"node (matching+triangulation+tracking): median {node.get('median')} ms/frame; "
          f"detection: median {max(det, default=0):.1f} ms/frame (slowest worker)")  # fmt: skip
    print(format_summary(summary, out_dir))


def _execute(cfg: Config, args: argparse.Namespace, tag: str) -> int:
    try:
        if args.stills:
            cfg = dataclasses.replace(cfg, cameras=tuple(dataclasses.replace(c, stills=True) for c in cfg.cameras))
        if args.realtime and any(c.stills for c in cfg.cameras):
            raise ConfigError("stills have no frame rate: they cannot be replayed in real time (--realtime, live)")
        rig = prepare(cfg)
        model = models_for(cfg)
    except (ConfigError, CalibrationError, InputError) as exc:
        print(f"mvcap {tag}: error: {exc}", file=sys.stderr)
        return 2
    out_dir = Path(args.out) if args.out else Path("runs") / f"{tag}-{time.strftime('%Y%m%d-%H%M%S')}"
    log.info("calibration %s; cameras %s; output %s", cfg.calibration, ", ".join(rig.names), out_dir)
    # Ctrl-C and SIGTERM reach the launcher as KeyboardInterrupt, so it stops its children, even
    # when it was started with SIGINT ignored (a background job of a non-interactive shell).
    previous = {s: signal.signal(s, signal.default_int_handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        code, summary = launch(
            cfg,
            rig,
            out_dir,
            model,
            max_frames=args.max_frames,
            overlays=not args.no_overlays,
            realtime=args.realtime,
        )
    except InputError as exc:
        print(f"mvcap {tag}: error: {exc}", file=sys.stderr)
        return 2
    except CaptureError as exc:
        print(f"mvcap {tag}: error: {exc}", file=sys.stderr)
        return 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if summary.get("failed_processes"):
        for proc, rc in summary["failed_processes"].items():
            print(f"mvcap {tag}: error: '{proc}' exited with {rc}; see {out_dir / 'logs'}", file=sys.stderr)
    _report(out_dir, summary)
    return code


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default=None, help="output folder (default: runs/<command>-<time>)")
    p.add_argument("--max-frames", type=int, default=None, help="stop after this many frames per camera")
    p.add_argument("--no-overlays", action="store_true", help="skip the overlay videos")
    p.add_argument("--realtime", action="store_true", help="replay file sources at their frame rate, as if live")
    p.add_argument(
        "--stills",
        action="store_true",
        help="every camera's image folder holds independent moments: each image set is reconstructed on its own",
    )
    p.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR")


def run_main(argv: list[str] | None = None) -> int:
    """``mvcap run --config rig.toml``: run workers + node on a configured rig."""
    p = argparse.ArgumentParser(
        prog="mvcap run", description="Run workers + node locally on the cameras of a TOML config."
    )
    p.add_argument("--config", required=True, help="TOML run config (calibration, [[cameras]], sections)")
    _common(p)
    args = p.parse_args(argv)
    setup_logging(args.log_level)
    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        print(f"mvcap run: error: {exc}", file=sys.stderr)
        return 2
    return _execute(cfg, args, "run")


def demo_main(argv: list[str] | None = None) -> int:
    """``mvcap demo``: the Pose2Sim multi-person demo (4 cameras, 100 frames, 60 fps)."""
    p = argparse.ArgumentParser(
        prog="mvcap demo",
        description="Run the pipeline on the Pose2Sim 0.10.49 multi-person demo (fetched from PyPI once, then cached).",
    )
    p.add_argument("--data", default=None, help="demo folder (videos/, calibration/); default: fetched and cached")
    p.add_argument("--config", default=None, help="TOML config for the stage sections (default: configs/demo.toml)")
    p.add_argument(
        "--detections",
        default=None,
        help="folder of <camera>.json.gz detections to replay instead of detecting",
    )
    _common(p)
    args = p.parse_args(argv)
    setup_logging(args.log_level)
    try:
        config_path = Path(args.config) if args.config else REPO_CONFIGS / "demo.toml"
        cfg = load_config(config_path) if (args.config or config_path.is_file()) else Config()
        if args.data:
            data = Path(args.data)
        else:
            from capture.assets import demo_data_dir

            data = demo_data_dir()
        calib = data / "calibration" / "Calib.qca.txt"
        names = ("cam01", "cam02", "cam03", "cam04")
        if args.detections:
            sources = [str(Path(args.detections) / f"{n}.json.gz") for n in names]
        else:
            sources = [str(data / "videos" / f"{n}.mp4") for n in names]
        cfg = dataclasses.replace(
            cfg,
            calibration=str(calib),
            cameras=tuple(CameraSource(n, s) for n, s in zip(names, sources, strict=True)),
        )
    except (ConfigError, InputError) as exc:
        print(f"mvcap demo: error: {exc}", file=sys.stderr)
        return 2
    return _execute(cfg, args, "demo")


def live_main(argv: list[str] | None = None) -> int:
    """``mvcap live --config rig.toml``: the rig live; video files and folders replayed at their rate.

    Same as ``mvcap run --realtime``: every source is paced on the wall clock (webcams are live
    anyway), frames more than 0.1 s overdue are dropped at the source, the node processes what it
    has after ``frame_timeout_s`` and prints a status line every ``status_every_s``.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--realtime" not in argv:
        argv.append("--realtime")
    return run_main(argv)
