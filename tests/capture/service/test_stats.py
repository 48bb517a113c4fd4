"""RunningStats: stats_ms's figures in constant memory, percentiles within 2 % of numpy's."""

from __future__ import annotations

import numpy as np
import pytest

from capture.service.proc import stats_ms
from capture.service.stats import RunningStats


@pytest.mark.parametrize("vectorised", [False, True])
def test_percentiles_within_2_percent_of_numpy_on_lognormal_samples(rng, vectorised):
    samples = rng.lognormal(mean=np.log(12.0), sigma=1.0, size=100_000)  # timings, ms
    s = RunningStats()
    n_bins = len(s._counts)
    if vectorised:
        s.extend(samples)
    else:
        for v in samples:
            s.add(v)
    assert len(s._counts) == n_bins and not hasattr(s, "__dict__")  # memory does not grow with n
    for q, got in ((50, s.median), (90, s.p90), (99, s.p99), (99.9, s.percentile(99.9))):
        want = np.percentile(samples, q)
        assert abs(got - want) <= 0.02 * want, (q, got, want)
    assert s.count == 100_000 and s.min == samples.min() and s.max == samples.max()
    assert s.mean == pytest.approx(samples.mean(), rel=1e-12)
    exact, approx = stats_ms(list(samples)), s.summary()
    assert (
        approx.keys() == exact.keys()
        and approx["n"] == exact["n"]
        and approx["mean"] == pytest.approx(exact["mean"], abs=1e-4)
    )
    for k in ("median", "p90", "p99"):
        assert approx[k] == pytest.approx(exact[k], rel=0.01)


def test_summary_matches_stats_ms_keys_and_rounding(rng):
    assert RunningStats().summary() == stats_ms([])
    values = list(rng.uniform(0.5, 40.0, size=999))
    s = RunningStats()
    s.extend(values)
    exact, approx = stats_ms(values), s.summary()
    assert list(approx) == list(exact) and isinstance(approx["n"], int)
    assert all(round(v, 4) == v for v in approx.values())
    assert approx["median"] == pytest.approx(exact["median"], rel=0.006)


def test_add_and_extend_agree_and_extremes_are_exact():
    a, b = RunningStats(), RunningStats()
    values = [0.0, 5e-4, 0.002, 3.0, 3.0, 250.0, 2e7]  # under- and overflow bins too
    for v in values:
        a.add(v)
    b.extend(np.array(values))
    assert np.array_equal(a._counts, b._counts) and a.count == b.count == 7
    assert a.min == 0.0 and a.max == 2e7 and a.percentile(0) == 0.0 and a.percentile(100) == 2e7
    assert a.median == pytest.approx(3.0, rel=0.005)


def test_single_sample_is_exact_and_bad_input_raises():
    s = RunningStats()
    s.add(7.25)
    assert s.summary() == {"median": 7.25, "p90": 7.25, "p99": 7.25, "mean": 7.25, "n": 1}
    with pytest.raises(ValueError, match="finite"):
        s.add(float("nan"))
    with pytest.raises(ValueError, match="finite"):
        s.extend([1.0, float("inf")])
    with pytest.raises(ValueError, match=r"\[0, 100\]"):
        s.percentile(101)
    assert s.count == 1
