"""What the ``mvcap calibrate`` steps share: one-line usage errors and ``NAME=PATH`` camera lists."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["Parser", "UsageError", "parse_cameras"]


class UsageError(Exception):
    """A bad command line (argparse would print the usage and exit); the step prints one line, exit 2."""


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` that raises :class:`UsageError` instead of printing usage and exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def parse_cameras(specs: list[str], min_cameras: int = 1, what: str = "calibration steps") -> list[tuple[str, Path]]:
    """Parse repeated ``--camera NAME=PATH`` options.

    Args:
        specs: the option values, e.g. ``["cam01=videos/cam01.mp4"]``.
        min_cameras: fewest cameras the step needs.
        what: the step, for the error message.

    Returns:
        (name, path) pairs in the given order.

    Raises:
        UsageError: a value without ``=``, an empty name or path, repeated names, or too few cameras.

    Example:
        >>> parse_cameras(["cam01=a.mp4", "cam02=imgs"])
        [('cam01', PosixPath('a.mp4')), ('cam02', PosixPath('imgs'))]
    """
    out: list[tuple[str, Path]] = []
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise UsageError(f"--camera must be NAME=PATH (a video file or image folder); got {spec!r}")
        out.append((name.strip(), Path(path.strip())))
    names = [n for n, _ in out]
    if len(set(names)) != len(names):
        raise UsageError(f"camera names must be unique; got {names}")
    if len(out) < min_cameras:
        raise UsageError(f"{what} need at least {min_cameras} cameras (--camera NAME=PATH, repeated)")
    return out
