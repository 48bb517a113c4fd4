"""``mvcap bench frontend``: each 2D detector setting judged by the 3D output it leads to, and its cost.

The demo has no 3D ground truth, so the 2D front end is judged by what the take's 3D output reveals
(:func:`capture.benchmarks.take_quality.take_quality`): identities (more ids than people: tracks that
split), people published per frame, the node's reprojection error (median and 90th percentile over
every joint observation used, pixels, from the run's ``summary.json``), joint jumps (a joint moving
more than 10 cm between consecutive frames) and the worst forearm/shin length standard deviation
over a track (a person's bones do not change).

Each setting is a set of ``[detector]`` overrides (:data:`SETTINGS`, plus ``--model NAME=PATH`` rows
for supplied models) applied to ``configs/demo.toml``; it runs the real pipeline on the demo as
``mvcap demo --no-overlays`` does (:func:`capture.service.run.prepare`,
:func:`~capture.service.run.models_for`, :func:`capture.service.launcher.launch`: one node and
four worker processes). A setting that the config rejects (an unknown key, a bad value) or whose
detector cannot be built here (a missing optional runtime, a model that cannot be exported offline)
is skipped with its reason.

Cost per camera, from the same run: the workers' detection time per frame (median of each worker's
own stage timing, wall clock, so it grows with the machine's load), the worker processes' CPU time
per frame after they reported ready (read from ``/proc/<pid>/stat`` while they run: decoding,
detection, re-ID descriptors and sending, model loading excluded; robust on a shared machine, unlike
wall time), and frames/s per camera: measured (frames / wall time from ready to exit, all four
workers running at once) and derived for a 2-core machine running four cameras, ``2000 / (4 x CPU ms)``.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import re
import statistics
import sys
import tempfile
import tomllib
from collections.abc import Sequence
from pathlib import Path

from capture.benchmarks.common import REPO, write_result
from capture.benchmarks.process_cpu import ProcessMonitor
from capture.benchmarks.take_quality import take_quality
from core.config import CameraSource, Config, config_from_dict
from core.errors import CaptureError, ConfigError, InputError

__all__ = ["SETTINGS", "format_table", "main", "resolve_setting", "row_figures", "run_frontend", "setting_config"]

log = logging.getLogger(__name__)

SETTINGS: list[tuple[str, dict]] = [
    ("default: yolo11n-pose 640", {}),
    ("yolo11n-pose 960", {"input_long_px": 960}),
    ("movenet multipose 256", {"name": "movenet", "input_long_px": 256, "score_threshold": 0.2}),
    ("yolo11n-pose 640 + 3D-guided ROIs", {"rois": True}),
    ("yolo11n-pose 640 + refine yolo 256x192", {"refine": "yolo"}),
    ("yolo11n-pose 640 + refine yolo 256x192 replace", {"refine": "yolo", "refine_fuse": "replace"}),
    ("yolo11n-pose 640 + refine yolo 256x192 flip", {"refine": "yolo", "refine_flip": True}),
    ("yolo11n-pose 640 + refine yolo 320x256", {"refine": "yolo", "refine_input_h": 320, "refine_input_w": 256}),
]
"""(name, ``[detector]`` overrides of ``configs/demo.toml``) of each row; add rows here."""

CAMERAS = ("cam01", "cam02", "cam03", "cam04")
README_START, README_END = "<!-- frontend:start -->", "<!-- frontend:end -->"
COLUMNS = (
    "ids: distinct track ids over the take (3 people in the demo: two subjects and a bystander)",
    "people/frame: mean number of people published per frame",
    "reproj. px: the node's reprojection error of the published poses, median / p90 over all joint observations",
    "jumps: joint-frames moving > 10 cm between consecutive frames",
    "limb std cm: worst standard deviation of a forearm or shin length over a track, centimetres",
    "detect ms: each worker's median wall time of the detector call per frame (median over the cameras; "
    "grows with the machine's load)",
    "CPU ms: worker process CPU time per frame after its model loaded (mean over the cameras)",
    "fps wall: frames / wall time per worker, 4 workers at once on this machine (mean over the cameras)",
    "fps 2 cores: 2000 / (4 x CPU ms), frames/s per camera that 2 cores give 4 cameras",
)


def setting_config(base: dict, overrides: dict, where: str) -> Config:
    """The run configuration of one setting: ``base`` (a parsed TOML table) with ``[detector]`` overrides.

    Args:
        base: the parsed config (``configs/demo.toml``), not modified.
        overrides: ``[detector]`` keys and values.
        where: name for error messages.

    Returns:
        The :class:`~core.config.Config` (calibration and cameras still unset).

    Raises:
        ConfigError: an unknown key or a value of the wrong type (the config's own checks).
    """
    data = dict(base)
    data["detector"] = {**base.get("detector", {}), **overrides}
    return config_from_dict(data, where=where)


def resolve_setting(cfg: Config, data: Path, detections: Path | None) -> Config:
    """The demo's calibration and cameras (videos, or replayed ``<camera>.json.gz`` detections) set into ``cfg``."""
    if detections is not None:
        sources = [str(detections / f"{n}.json.gz") for n in CAMERAS]
    else:
        sources = [str(data / "videos" / f"{n}.mp4") for n in CAMERAS]
    return dataclasses.replace(
        cfg,
        calibration=str(data / "calibration" / "Calib.qca.txt"),
        cameras=tuple(CameraSource(n, s) for n, s in zip(CAMERAS, sources, strict=True)),
    )


def _check_detector(cfg: Config, models: dict[str, str]) -> None:
    """Build the setting's detector once here, as a worker does, so that a missing runtime or model
    skips the row instead of failing four workers. Raises ConfigError or InputError."""
    from capture.detect.letterbox import input_hw_for_frame
    from capture.detect.registry import make_detector
    from capture.service.worker import check_source

    det = cfg.detector
    cam = cfg.cameras[0]
    frame_wh = check_source(cam.source, cam.name)
    if frame_wh is None:  # replayed detections: no detector runs
        return
    if det.name == "movenet":
        import importlib.util

        if importlib.util.find_spec("ai_edge_litert") is None:
            raise ConfigError("MoveNet needs the optional runtime: pip install -e '.[movenet]' (ai-edge-litert)")
    supplied = det.name != "yolo11n-pose"
    extra = {"box_detector": det.box_detector, "box_model": models.get(cam.name)} if det.name == "rtmpose" else {}
    make_detector(
        det.name,
        model_path=det.model or None if supplied else models.get(cam.name),
        input_hw=input_hw_for_frame(frame_wh, det.input_long_px, det.fixed_input_hw),
        score_threshold=det.score_threshold,
        threads=det.threads,
        **extra,
    )


def row_figures(run_dir: Path, summary: dict, procs: dict[int, dict]) -> dict:
    """One setting's figures from its run folder, its summary and the sampled processes.

    Args:
        run_dir: the run folder (``poses3d.jsonl``).
        summary: the run's ``summary.json`` content.
        procs: pid -> sampled CPU of :class:`~capture.benchmarks.process_cpu.ProcessMonitor` (``role``,
            ``camera``, ``cpu_ready_s``, ``t_ready``, ``cpu_s``, ``t_last``).

    Returns:
        :func:`take_quality`'s figures with the node's ``reprojection_px`` (median, p90 over all
        observations), plus ``frames``, ``complete``, ``per_camera`` (``detect_ms``, ``cpu_ms``,
        ``startup_cpu_s``, ``fps_wall``) and their aggregates ``detect_ms`` (median over cameras),
        ``cpu_ms``, ``fps_wall`` (means) and ``fps_2core`` (``2000 / (4 x cpu_ms)``), and
        ``node_process_cpu_ms`` (the node process's CPU time per frame, start-up included).

    Raises:
        InputError: the run wrote no readable ``poses3d.jsonl``.
    """
    from capture.outputs import read_poses_jsonl

    _, frames = read_poses_jsonl(run_dir / "poses3d.jsonl")
    q = take_quality([f.track_ids for f in frames], [f.poses for f in frames], [[] for _ in frames])
    rep = summary.get("reprojection_px", {})
    q["reprojection_px"] = {k: None if rep.get(k) is None else round(float(rep[k]), 2) for k in ("median", "p90")}
    workers = summary.get("workers", {})
    per_cam = {}
    for p in procs.values():
        if p["role"] != "worker" or p["camera"] not in workers:
            continue
        w = workers[p["camera"]]
        n = w.get("frames", 0)
        busy = p["cpu_s"] - p["cpu_ready_s"] if p["t_ready"] is not None else None
        span = p["t_last"] - p["t_ready"] if p["t_ready"] is not None else None
        per_cam[p["camera"]] = {
            "frames": n,
            "detect_ms": w.get("detection_ms", {}).get("median"),
            "cpu_ms": round(1e3 * busy / n, 2) if busy is not None and n else None,
            "startup_cpu_s": round(p["cpu_ready_s"], 2) if p["cpu_ready_s"] is not None else None,
            "fps_wall": round(n / span, 2) if span and n else None,
        }
    node = [p for p in procs.values() if p["role"] == "node"]

    def mean(key: str) -> float | None:
        vals = [c[key] for c in per_cam.values() if c[key] is not None]
        return round(statistics.fmean(vals), 2) if vals else None

    det = [c["detect_ms"] for c in per_cam.values() if c["detect_ms"] is not None]
    cpu = mean("cpu_ms")
    return q | {
        "frames": summary.get("frames", len(frames)),
        "complete": bool(summary.get("complete")),
        "detect_ms": round(statistics.median(det), 2) if det else None,
        "cpu_ms": cpu,
        "fps_wall": mean("fps_wall"),
        "fps_2core": round(2000.0 / (4 * cpu), 2) if cpu else None,
        "node_process_cpu_ms": round(1e3 * node[0]["cpu_s"] / max(summary.get("frames", 0), 1), 2) if node else None,
        "per_camera": dict(sorted(per_cam.items())),
    }


def _run_one(cfg: Config, run_dir: Path, max_frames: int | None) -> dict:
    """Launch node + workers on ``cfg`` into ``run_dir``; returns :func:`row_figures` (or ``skipped``)."""
    from capture.service.launcher import launch
    from capture.service.run import models_for, prepare

    try:
        rig = prepare(cfg)
        models = models_for(cfg)
        _check_detector(cfg, models)
    except (ConfigError, InputError) as exc:
        return {"skipped": str(exc)}
    monitor = ProcessMonitor(run_dir / "logs")
    monitor.start()
    try:
        code, summary = launch(cfg, rig, run_dir, models, max_frames=max_frames, overlays=False)
    except CaptureError as exc:
        return {"skipped": f"run failed: {exc}"}
    finally:
        monitor.stop()
    if not (run_dir / "poses3d.jsonl").is_file():
        return {"skipped": f"run failed (exit {code}): {'; '.join(summary.get('incomplete_because', []))}"}
    row = row_figures(run_dir, summary, monitor.procs)
    if code != 0:
        row["incomplete_because"] = summary.get("incomplete_because", [])
    return row


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def run_frontend(
    settings: Sequence[tuple[str, dict]],
    data: Path,
    runs_dir: Path,
    max_frames: int | None = 100,
    detections: Path | None = None,
    base_config: Path | None = None,
    repeats: int = 1,
) -> list[dict]:
    """Run every setting on the demo; returns one row per setting.

    Settings alternate over ``repeats`` passes (so machine load hits them alike); quality figures
    come from the first pass, the cost figures are medians over the passes.

    Args:
        settings: (name, ``[detector]`` overrides) pairs.
        data: the demo folder (``videos/``, ``calibration/Calib.qca.txt``).
        runs_dir: where each run's folder goes (``<slug>-<pass>``).
        max_frames: frames per camera (None: all).
        detections: replay ``<camera>.json.gz`` detections instead of detecting (tests; every
            setting then gives the same detections).
        base_config: TOML the overrides apply to (default ``configs/demo.toml``).
        repeats: passes over the settings.

    Returns:
        Per setting ``{"setting", "overrides", "figures" | "skipped"}``.

    Raises:
        ConfigError: the base config cannot be read.
    """
    path = base_config or REPO / "configs" / "demo.toml"
    try:
        base = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the base config ({exc})") from None
    rows = [{"setting": name, "overrides": dict(o)} for name, o in settings]
    passes: list[list[dict]] = [[] for _ in rows]
    for k in range(repeats):
        for row, runs, (name, overrides) in zip(rows, passes, settings, strict=True):
            if "skipped" in row:
                continue
            try:
                cfg = resolve_setting(setting_config(base, overrides, f"setting {name!r}"), data, detections)
            except ConfigError as exc:
                row["skipped"] = str(exc)
                continue
            res = _run_one(cfg, runs_dir / f"{_slug(name)}-{k}", max_frames)
            if "skipped" in res:
                row["skipped"] = res["skipped"]
            else:
                runs.append(res)
    for row, runs in zip(rows, passes, strict=True):
        if "skipped" in row or not runs:
            continue
        fig = dict(runs[0])
        for key in ("detect_ms", "cpu_ms", "fps_wall", "fps_2core", "node_process_cpu_ms"):
            vals = [r[key] for r in runs if r[key] is not None]
            fig[key] = round(statistics.median(vals), 2) if vals else None
        fig["passes"] = len(runs)
        row["figures"] = fig
    return rows


def _fmt(v: object) -> str:
    return "n/a" if v is None else f"{v:g}" if isinstance(v, float) else str(v)


def format_table(rows: Sequence[dict], header: str = "") -> str:
    """The markdown results: one line per setting (skipped ones with their reason), then the legend.

    Args:
        rows: :func:`run_frontend`'s rows.
        header: a line on how the figures were measured, put under the title.

    Example:
        >>> fig = {"ids": 3, "people_per_frame": 2.9, "reprojection_px": {"median": 3.8, "p90": 10.4},
        ...        "jumps": 25, "limb_std_cm_max": 2.7, "detect_ms": 90.0, "cpu_ms": 110.0, "fps_wall": 6.0,
        ...        "fps_2core": 4.55, "complete": True}
        >>> print(format_table([{"setting": "a", "figures": fig}, {"setting": "b", "skipped": "no"}]).splitlines()[4])
        | a | 3 | 2.9 | 3.8 / 10.4 | 25 | 2.7 | 90 | 110 | 6 | 4.55 |
    """
    lines = ["### 2D front end on the demo (`mvcap bench frontend`)", ""]
    if header:
        lines += [header, ""]
    lines += [
        "| setting | ids | people/frame | reproj. px median / p90 | jumps > 10 cm | worst forearm/shin std cm | "
        "detect ms/frame | CPU ms/frame/camera | frames/s/camera (wall, 4 workers) | frames/s/camera (2 cores, CPU) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    skipped = []
    for r in rows:
        f = r.get("figures")
        if f is None:
            skipped.append(f"- {r['setting']}: skipped, {r.get('skipped', 'not run')}")
            continue
        rep = f["reprojection_px"]
        name = r["setting"] + ("" if f.get("complete", True) else " (INCOMPLETE run)")
        lines.append(
            f"| {name} | {f['ids']} | {_fmt(f['people_per_frame'])} | {_fmt(rep['median'])} / {_fmt(rep['p90'])} | "
            f"{f['jumps']} | {_fmt(f['limb_std_cm_max'])} | {_fmt(f['detect_ms'])} | {_fmt(f['cpu_ms'])} | "
            f"{_fmt(f['fps_wall'])} | {_fmt(f['fps_2core'])} |"
        )
    lines += ["", *skipped] if skipped else []
    lines += ["", "Columns: " + "; ".join(COLUMNS) + "."]
    return "\n".join(lines)


def _replace_section(readme: Path, body: str) -> None:
    """Replace the text between :data:`README_START` and :data:`README_END`; raises InputError without them."""
    text = readme.read_text()
    if README_START not in text or README_END not in text:
        raise InputError(f"{readme} has no {README_START} ... {README_END} markers")
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    readme.write_text(f"{head}{README_START}\n{body}\n{README_END}{tail}")


def _parse_models(specs: Sequence[str]) -> list[tuple[str, dict]]:
    out = []
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise ConfigError(f"--model expects NAME=PATH (e.g. rtmo=rtmo-s.onnx); got {spec!r}")
        out.append((f"{name} {Path(path).name}", {"name": name, "model": str(Path(path).resolve())}))
    return out


def main(argv: list[str] | None = None) -> int:
    """``mvcap bench frontend``: print and write the front-end table. Exit 0, or 2 without the demo data."""
    from core.logsetup import setup_logging

    p = argparse.ArgumentParser(prog="mvcap bench frontend", description=__doc__.splitlines()[0])
    p.add_argument("--data", default=None, help="demo folder (videos/, calibration/); default: fetched and cached")
    p.add_argument("--out", default="runs/bench", help="folder for frontend.json and frontend.md")
    p.add_argument("--runs", default=None, help="keep each setting's run folder here (default: a temporary folder)")
    p.add_argument("--max-frames", type=int, default=100, help="frames per camera")
    p.add_argument("--repeats", type=int, default=1, help="passes over the settings, alternating (cost: medians)")
    p.add_argument("--only", default=None, help="comma-separated setting names (or name prefixes) to run")
    p.add_argument("--model", action="append", default=[], help="NAME=PATH: add a row for a supplied model")
    p.add_argument("--detections", default=None, help="replay <camera>.json.gz detections (tests)")
    p.add_argument("--config", default=None, help="base TOML the overrides apply to (default: configs/demo.toml)")
    p.add_argument("--readme", default=None, help="also replace the frontend:start/end section of this README")
    p.add_argument("--log-level", default="WARNING")
    args = p.parse_args(argv)
    setup_logging(args.log_level)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        settings = list(SETTINGS) + _parse_models(args.model)
        if args.only:
            wanted = [w.strip() for w in args.only.split(",") if w.strip()]
            settings = [s for s in settings if any(s[0].startswith(w) or s[0] == w for w in wanted)]
            if not settings:
                raise ConfigError(f"--only {args.only!r} matches no setting; settings: {[s[0] for s in SETTINGS]}")
        if args.data:
            data = Path(args.data)
        else:
            from capture.assets import demo_data_dir

            data = demo_data_dir()
        if not (data / "calibration" / "Calib.qca.txt").is_file():
            raise InputError(f"{data}: not the demo folder (no calibration/Calib.qca.txt)")
        detections = Path(args.detections) if args.detections else None
        print("2D front end on the demo: " + ("replayed detections, " if detections else "")
              + f"{args.max_frames} frames x {len(CAMERAS)} cameras, {os.cpu_count()} CPU cores, "
              f"{args.repeats} pass(es)")  # fmt: skip
        for c in COLUMNS:
            print(f"  {c}")
        with tempfile.TemporaryDirectory(prefix="mvcap-frontend-") as tmp:
            runs_dir = Path(args.runs) if args.runs else Path(tmp)
            rows = run_frontend(
                settings, data, runs_dir, args.max_frames, detections,
                Path(args.config) if args.config else None, args.repeats,
            )  # fmt: skip
    except (ConfigError, InputError) as exc:
        print(f"mvcap bench frontend: error: {exc}", file=sys.stderr)
        return 2
    header = (
        f"Measured on this project's {os.cpu_count()}-core CPU machine (shared), {args.max_frames} frames x "
        f"{len(CAMERAS)} cameras, `configs/demo.toml` with each setting's `[detector]` overrides"
        + (", replayed detections" if detections else "") + "."
    )  # fmt: skip
    text = format_table(rows, header)
    print(text)
    write_result(Path(args.out), "frontend", {"benchmark": "frontend", "max_frames": args.max_frames,
                                              "rows": rows}, text)  # fmt: skip
    if args.readme:
        try:
            _replace_section(Path(args.readme), text)
        except (OSError, InputError) as exc:
            print(f"mvcap bench frontend: error: {exc}", file=sys.stderr)
            return 2
        print(f"updated {args.readme}")
    print(f"results: {Path(args.out) / 'frontend.json'}, {Path(args.out) / 'frontend.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
