"""The ``mvcap`` console script: one entry point, one subcommand per job.

Each subcommand's code lives in the module it belongs to and exposes ``main(argv) -> int``.
Exit codes: 0 ok, 1 runtime failure, 2 usage/config/input error, 130 interrupted.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from importlib import import_module

__all__ = ["main"]

_COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("capture.service.run", "demo_main"),
    "run": ("capture.service.run", "run_main"),
    "live": ("capture.service.run", "live_main"),
    "sync": ("capture.service.sync", "main"),
    "node": ("capture.service.node", "main"),
    "worker": ("capture.service.worker", "main"),
    "bench": ("capture.benchmarks.cli", "main"),
    "record": ("capture.service.record", "record_main"),
    "view": ("capture.service.viewer", "main"),
    "export": ("capture.outputs.export", "main"),
    "keys": ("capture.service.keys", "main"),
    "calibrate": ("capture.cli", "calibrate_main"),
    "stream": ("capture.service.stream", "main"),
}
_CALIBRATE: dict[str, tuple[str, str, str]] = {
    "intrinsics": (
        "capture.calibrate.intrinsics",
        "main",
        "lens and focal length per camera from a checkerboard or ChArUco board",
    ),
    "extrinsics": (
        "capture.calibrate.extrinsics",
        "main",
        "camera poses from a board seen by overlapping cameras (pose graph + bundle adjustment)",
    ),
    "people": (
        "capture.calibrate.people",
        "main",
        "refine camera poses from the people moving through the scene",
    ),
    "offsets": (
        "capture.calibrate.offsets",
        "main",
        "clock offsets between cameras from keypoint motion (prints the TOML table)",
    ),
    "check": ("capture.calibrate.check", "main", "per-camera reprojection error of a take"),
    "convert": ("capture.calibrate.convert", "main", "convert a calibration between file formats"),
}
_HELP = {
    "demo": "fetch the Pose2Sim multi-person demo (4 cameras) and run the whole pipeline on it",
    "run": "run workers + node locally on the cameras of a TOML config",
    "live": "the same, live: sources replayed at their frame rate, status line, late frames dropped",
    "sync": "clock offsets by epipolar consistency (fallback; prefer 'mvcap calibrate offsets', from motion)",
    "node": "run the reconstruction node only (multi-machine rigs)",
    "worker": "run one camera's capture + 2D detection worker only",
    "bench": "benchmarks that print figures (node: reconstruction time per frame)",
    "record": "record the node's 3D stream into a take folder (flushed and fsync-ed per frame)",
    "view": "show the 3D skeletons and camera frusta live in rerun (optional extra: '.[view]')",
    "export": "export a take or run folder to TRC, C3D, BVH and CSV",
    "keys": "make CURVE keypairs (node, cameras, viewers) to authenticate and encrypt multi-machine rigs",
    "calibrate": "make and check calibrations: intrinsics, extrinsics, people, offsets, check, convert",
    "stream": "relay the node's 3D stream live to VMC (OSC) receivers: Unity, VSeeFace, Blender",
}


def main(argv: list[str] | None = None) -> int:
    """Dispatch ``mvcap <command> [args]``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: mvcap <command> [options]\n\ncommands:")
        for name, text in _HELP.items():
            print(f"  {name:<10} {text}")
        print("\n'mvcap <command> --help' shows a command's options.")
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in _COMMANDS:
        print(f"mvcap: unknown command {name!r}; commands: {', '.join(_COMMANDS)}", file=sys.stderr)
        return 2
    module, func = _COMMANDS[name]
    entry: Callable[[list[str]], int] = getattr(import_module(module), func)
    return entry(rest)


def calibrate_main(argv: list[str]) -> int:
    """Dispatch ``mvcap calibrate <step> [args]``."""
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: mvcap calibrate <step> [options]\n\nsteps:")
        for name, (_, _, text) in _CALIBRATE.items():
            print(f"  {name:<11} {text}")
        print("\n'mvcap calibrate <step> --help' shows a step's options.")
        return 0 if argv else 2
    if argv[0] not in _CALIBRATE:
        print(f"mvcap calibrate: unknown step {argv[0]!r}; steps: {', '.join(_CALIBRATE)}", file=sys.stderr)
        return 2
    module, func, _ = _CALIBRATE[argv[0]]
    entry: Callable[[list[str]], int] = getattr(import_module(module), func)
    return entry(argv[1:])


if __name__ == "__main__":
    raise SystemExit(main())
