"""Compiled kernels: numba's ``njit`` with the project's settings, in one place.

The node's per-frame work is a few hundred small array operations (at most a few hundred joints
and 32 views): numpy spends about 1 us of dispatch per operation whatever its size, so a frame
costs its call count, not its arithmetic. The hot loops (robust DLT, track claims, the UKF update,
the association gate) are written as plain loops compiled by numba (Lam, Pitrou & Seibert, "Numba:
a LLVM-based Python JIT compiler", LLVM-HPC 2015), one call per stage and frame.

Settings, the same for every kernel:

- ``cache=True``: the machine code is written next to the module (``__pycache__``, or numba's user
  cache directory where that is read-only), so a process compiles a kernel once per installation,
  not once per start (a first start compiles for a few seconds).
- ``error_model="numpy"``: a division by zero gives ``inf``/``nan`` as in numpy, never raises.
- no ``fastmath``: IEEE arithmetic, so results do not depend on the machine's vector width and an
  offline run gives the same output on every machine of one architecture. Sums may be taken in
  another order than numpy's, so results agree with the numpy references to rounding (the tests
  compare to 1e-9), not bit for bit.
- ``nogil=True``: a kernel releases the GIL, so the node's receiver threads run meanwhile.

Rule: a kernel calls only kernels of its own module. numba's cache entry of a kernel is checked
against its own source file only, so a kernel compiled together with one of another module would
keep running that module's old code after the module changed. Kernels of different modules are
chained from Python instead (about 1 us per call).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from numba import njit

__all__ = ["kernel"]

log = logging.getLogger(__name__)


def kernel(fn: Callable[..., Any] | None = None, **options: Any) -> Any:
    """Compile ``fn`` with numba's ``njit`` and the project's settings (see the module docstring).

    Use as ``@kernel`` or ``@kernel(inline="always")``; keyword options override the defaults.

    Example:
        >>> import numpy as np
        >>> @kernel
        ... def total(a):
        ...     s = 0.0
        ...     for v in a:
        ...         s += v
        ...     return s
        >>> total(np.arange(4.0))
        6.0
    """
    settings = {"cache": True, "nogil": True, "error_model": "numpy", **options}
    if fn is None:
        return lambda f: _compile(f, settings)
    return _compile(fn, settings)


def _compile(fn: Callable[..., Any], settings: dict[str, Any]) -> Any:
    """numba's dispatcher for ``fn``; without a cache where no cache location is writable (a read-only
    installation without a writable home directory): the kernels then compile in every process."""
    try:
        return njit(**settings)(fn)
    except RuntimeError as exc:  # numba: "cannot cache function ...: no locator available"
        if not settings.get("cache") or "cache" not in str(exc):
            raise
        log.warning("compiled kernel %s is not cached (%s): it compiles in every process", fn.__qualname__, exc)
        return njit(**{**settings, "cache": False})(fn)
