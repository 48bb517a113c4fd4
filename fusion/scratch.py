"""Reused work arrays for the live tracker's large per-frame intermediates.

At 32 cameras the UKF's and the gate's intermediates are arrays of about a megabyte; allocated afresh
each frame, they cost more in new memory pages (the allocator returns such blocks to the system)
than in arithmetic. :func:`scratch` hands out views of a few buffers kept per thread and grown on
demand, for intermediates that never leave the function that asked for them.
"""

from __future__ import annotations

import math
import threading

import numpy as np

__all__ = ["scratch"]

_BUFFERS = threading.local()


def scratch(name: str, shape: tuple[int, ...]) -> np.ndarray:
    """A C-contiguous float64 work array of ``shape``, reused across calls in this thread.

    Args:
        name: the buffer (one per concurrent use: two arrays needed at once need two names).
        shape: the array's shape.

    Returns:
        A view of the buffer ``name``; its contents are undefined, and it is overwritten by the next
        call with the same name in this thread (never return it, nor keep it).

    Example:
        >>> a = scratch("doc", (2, 3))
        >>> a.shape, a.flags.c_contiguous, np.shares_memory(a, scratch("doc", (6,)))
        ((2, 3), True, True)
    """
    n = math.prod(shape)
    buf = getattr(_BUFFERS, name, None)
    if buf is None or buf.size < n:
        buf = np.empty(max(n, 2 * (0 if buf is None else buf.size)))
        setattr(_BUFFERS, name, buf)
    return buf[:n].reshape(shape)
