"""Compiled loop of :func:`core.numeric.masked_median` (imported on its first use, so that processes
which never call it, such as the detection workers, do not load numba)."""

from __future__ import annotations

import numpy as np

from core.jit import kernel

__all__: list[str] = []


@kernel
def _masked_median_rows(values: np.ndarray, mask: np.ndarray, min_count: float, out: np.ndarray) -> None:
    """out (M,) <- :func:`core.numeric.masked_median` of the rows of ``values`` (M, K) float64 and ``mask`` (M, K) bool.

    As :func:`core.numeric._masked_median_numpy` has it: the row with the unused entries set to ``inf`` and sorted is
    the sorted usable non-NaN entries, then ``inf``, then the usable NaN entries."""
    M, K = values.shape
    buf = np.empty(K)
    for r in range(M):
        n = 0  # usable entries
        m = 0  # usable non-NaN entries, sorted into buf[:m]
        for k in range(K):
            if mask[r, k]:
                n += 1
                x = values[r, k]
                if x == x:
                    buf[m] = x
                    m += 1
        if n < min_count:
            out[r] = np.inf
            continue
        gap = 1
        while 3 * gap + 1 < m:
            gap = 3 * gap + 1
        while gap > 0:  # Shell sort (Knuth's gaps): an insertion sort for the short rows of the callers
            for i in range(gap, m):
                x = buf[i]
                j = i
                while j >= gap and buf[j - gap] > x:
                    buf[j] = buf[j - gap]
                    j -= gap
                buf[j] = x
            gap //= 3
        half = max(n, 1)
        lo = _sorted_at(buf, m, K - (n - m), (half - 1) // 2)
        out[r] = (lo + _sorted_at(buf, m, K - (n - m), half // 2)) / 2


@kernel
def _sorted_at(buf: np.ndarray, m: int, end_inf: int, i: int) -> float:
    """Entry ``i`` of the sorted row of :func:`_masked_median_rows`: ``buf[i]`` below ``m``, ``inf`` below
    ``end_inf``, NaN after."""
    if i < m:
        return buf[i]
    return np.inf if i < end_inf else np.nan
