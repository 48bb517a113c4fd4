"""Shared fixtures: a seeded rng, a synthetic 4-camera ring, real-data location."""

from __future__ import annotations

import os
import sys
from pathlib import Path

# One BLAS thread per process: the suite runs on 2 busy cores, where OpenBLAS threads of the
# least-squares solvers wait on each other (measured 22 s instead of 3.6 s for one calibration).
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402 - after the thread settings
import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
# tests/synth.py; and the repository itself, so that `capture` is the package and never the test
# folder tests/capture (a namespace-package candidate once tests/ is on sys.path).
sys.path[:0] = [str(Path(__file__).resolve().parent), str(REPO)]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session", autouse=True)
def compiled_kernels():
    """Compile the node's kernels (core.jit) once, before any test: on a fresh checkout this takes tens of
    seconds, and node processes started by the tests then load them from the cache instead of each
    compiling them while its test waits."""
    from capture.benchmarks.synthetic import ring_rig
    from capture.kernel_warmup import warm_up
    from core.config import FusionConfig
    from core.skeleton import COCO17

    for filt in ("ukf", "none"):
        warm_up(ring_rig(4), COCO17, fusion=FusionConfig(filter=filt))


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture
def rig():
    from synth import ring_rig

    return ring_rig()


@pytest.fixture
def cpu_hogs():
    """Busy loops on every core for the duration of the test (killed afterwards): a loaded machine."""
    import os
    import subprocess

    procs = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"], stdout=subprocess.DEVNULL)
        for _ in range(os.cpu_count() or 2)
    ]
    yield procs
    for p in procs:
        p.kill()
        p.wait()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent")
    return SHARED_DATA


from fsfixtures import read_only_dir, tmpfs  # noqa: E402,F401 - fixtures shared by the writers' tests
