"""core.jit.kernel compiles where numba has nowhere to cache (no source file, read-only installation)."""

import logging

import numpy as np

from core.jit import kernel


def test_kernel_without_a_cache_location_still_compiles(caplog):
    namespace: dict = {}
    # Code without a source file: numba finds no cache locator for it (as for a read-only installation
    # whose user has no writable home directory).
    exec("def total(a):\n    s = 0.0\n    for v in a:\n        s += v\n    return s\n", namespace)
    with caplog.at_level(logging.WARNING, logger="core.jit"):
        total = kernel(namespace["total"])
    assert total(np.arange(5.0)) == 10.0
    assert "not cached" in caplog.text


def test_kernel_keeps_options_and_the_numpy_error_model():
    @kernel(cache=False)
    def ratio(a, b):
        return a / b

    assert ratio(1.0, 0.0) == np.inf  # error_model="numpy": no ZeroDivisionError
