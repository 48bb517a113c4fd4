"""``mvcap bench``: benchmark scripts that print figures (never timed unit tests), one module each.

``node`` (:mod:`.node`: reconstruction time per frame, Pose2Sim in the same run), ``live``
(:mod:`.live`: the running node at up to 32 cameras), ``soak``, ``ablation`` (matching and
reconstruction methods side by side), ``pizza`` (Panoptic pizza_5views), ``frontend`` (2D detector
settings), the field's datasets ``shelf``, ``campus`` and ``panoptic`` (:mod:`.shelf`, :mod:`.campus`,
:mod:`.panoptic`), and ``report`` (their tables into README).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from importlib import import_module
from pathlib import Path

from core.errors import CaptureError

__all__ = ["main"]

REPO = Path(__file__).resolve().parents[2]
TARGETS = {
    "node": "capture.benchmarks.node",
    "live": "capture.benchmarks.live",
    "soak": "capture.benchmarks.soak",
    "ablation": "capture.benchmarks.ablation",
    "pizza": "capture.benchmarks.pizza",
    "frontend": "capture.benchmarks.frontend",
}
"""Benchmarks with a ``main(argv)`` of their own, by ``mvcap bench`` target."""

DATASETS = ("shelf", "campus", "panoptic")
README_START, README_END = "<!-- bench:start -->", "<!-- bench:end -->"


def _dataset_main(name: str, argv: list[str]) -> int:
    """``mvcap bench shelf|campus|panoptic [--data DIR] [--out DIR]``."""
    from capture.benchmarks.common import default_data_dir

    p = argparse.ArgumentParser(prog=f"mvcap bench {name}", description=f"{name} benchmark with the field's protocol")
    p.add_argument("--data", default=str(default_data_dir()), help="folder holding shelf/, campus/, panoptic/")
    p.add_argument("--out", default="runs/bench", help="folder for <name>.json and <name>.md")
    if name == "shelf":
        p.add_argument("--sweep", action="store_true", help="also score a grid of smoothing settings (about 2 minutes)")
        p.add_argument(
            "--ceiling",
            action="store_true",
            help="also compute the diagnostic ceiling: 2D candidates chosen with the ground truth",
        )
    args = p.parse_args(argv)
    data = Path(args.data)
    if not (data / name).is_dir():
        print(
            f"mvcap bench {name}: error: {data / name}: dataset folder not found (see --data)",
            file=sys.stderr,
        )
        return 2
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        if name == "shelf":
            from capture.benchmarks.shelf import run_shelf

            res = run_shelf(data, Path(args.out), sweep=args.sweep, ceiling=args.ceiling)
            print(res.pop("text"))
            peer = res["4d_association_same_detections"]["average_actors_1_3"]
            print(f"4D Association's output, same detections and evaluator: {peer:.2f}")
            if res["smoothing_cpu_ms_per_frame"] is not None:
                live = res["ours_per_frame"]["average_actors_1_3"]
                print(f"per frame (live node), before smoothing: {live:.2f}")
            if "diagnostic_candidate_ceiling" in res:
                c = res["diagnostic_candidate_ceiling"]
                print(f"diagnostic ceiling ({c['label']}): {c['average_actors_1_3']:.2f}")
            for row in res.get("smoothing_sweep", []):
                a, px, avg = row["accel_noise_mps2"], row["pixel_noise_px"], row["average"]
                print(f"sweep: accel. noise {a:g} m/s^2, 2D noise {px:g} px: {avg:.2f}")
            for filt, row in res["live"].items():
                m = row["identity"]
                print(
                    f"live, filter {filt}: PCP per frame {row['pcp_per_frame']['average_actors_1_3']:.2f}, "
                    f"MOTA {m['mota']:.3f}, IDF1 {m['idf1']:.3f}, ID switches {m['id_switches']}, "
                    f"ids per actor {m['ids_per_actor']}, jitter {row['jitter']['mean_mps2']:.1f} m/s^2, "
                    f"node {row['node_cpu_ms_per_frame']['median']:.2f} ms/frame"
                )
        elif name == "campus":
            from capture.benchmarks.campus import run_campus

            res = run_campus(data, Path(args.out))
            print(json.dumps(res, indent=2))
        else:
            from capture.benchmarks.panoptic import run_panoptic

            res = run_panoptic(data, Path(args.out))
            print(json.dumps(res["rows"], indent=2))
    except CaptureError as exc:
        print(f"mvcap bench {name}: error: {exc}", file=sys.stderr)
        return 2
    print(f"results: {Path(args.out) / (name + '.json')}, {Path(args.out) / (name + '.md')}")
    return 0


def _report_main(argv: list[str]) -> int:
    """``mvcap bench report [--results DIR] [--readme README.md]``: README results from the .md files."""
    p = argparse.ArgumentParser(prog="mvcap bench report", description="Write the README results section.")
    p.add_argument("--results", default="runs/bench", help="folder of <benchmark>.md files")
    p.add_argument("--readme", default=str(REPO / "README.md"))
    args = p.parse_args(argv)
    parts = [(Path(args.results) / f"{n}.md") for n in DATASETS]
    missing = [str(x) for x in parts if not x.is_file()]
    if missing:
        print(f"mvcap bench report: error: missing {missing}; run 'mvcap bench <name>' first", file=sys.stderr)
        return 2
    readme = Path(args.readme)
    text = readme.read_text()
    if README_START not in text or README_END not in text:
        print(
            f"mvcap bench report: error: {readme} has no {README_START} ... {README_END} markers",
            file=sys.stderr,
        )
        return 2
    body = "\n\n".join(x.read_text().strip() for x in parts)
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    readme.write_text(f"{head}{README_START}\n{body}\n{README_END}{tail}")
    print(f"updated {readme}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``mvcap bench TARGET ...``: run one benchmark; exit 2 with a usage line for an unknown target."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in TARGETS:
        return import_module(TARGETS[argv[0]]).main(argv[1:])
    if argv and argv[0] in DATASETS:
        return _dataset_main(argv[0], argv[1:])
    if argv and argv[0] == "report":
        return _report_main(argv[1:])
    p = argparse.ArgumentParser(prog="mvcap bench", description=__doc__.splitlines()[0])
    p.add_argument("target", choices=[*TARGETS, *DATASETS, "report"], help="what to benchmark")
    p.parse_args(argv)  # exits 2 with the usage line: no target, or an unknown one
    return 2
