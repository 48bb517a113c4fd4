"""Fixtures: real full and read-only file systems for the writers' error paths (imported by conftest).

Tests run as root here, where ``chmod 0555`` does not stop writes; a small tmpfs (``mount -t tmpfs``)
gives real ENOSPC and EROFS errors, and the test is skipped where mounting is not permitted.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Callable[..., Path]]:
    """``mount(size_kib, read_only=False) -> folder``: a fresh tmpfs, unmounted after the test."""
    mounted: list[Path] = []

    def mount(size_kib: int = 64, read_only: bool = False) -> Path:
        if shutil.which("mount") is None:
            pytest.skip("no mount command: cannot make a small or read-only file system")
        where = tmp_path / f"fs{len(mounted)}"
        where.mkdir()
        opts = f"size={size_kib}k" + (",ro" if read_only else "")
        res = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(where)], capture_output=True, text=True)
        if res.returncode != 0:
            pytest.skip(f"mounting a tmpfs is not permitted here (uid {os.getuid()}): {res.stderr.strip()}")
        mounted.append(where)
        return where

    yield mount
    for where in reversed(mounted):
        subprocess.run(["umount", "-l", str(where)], check=False)


@pytest.fixture
def read_only_dir(tmp_path: Path, tmpfs: Callable[..., Path]) -> Path:
    """A folder where creating a file fails: chmod 0555 for a normal user, a read-only tmpfs for root."""
    if os.getuid() != 0:
        where = tmp_path / "ro"
        where.mkdir()
        where.chmod(0o555)
        return where
    return tmpfs(64, read_only=True)
