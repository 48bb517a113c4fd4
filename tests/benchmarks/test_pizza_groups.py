"""Real 5-view still of four people close together: each person one group over their views."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from capture.assets import cache_dir


@pytest.fixture(scope="module")
def pizza(request: pytest.FixtureRequest) -> dict:
    data = request.getfixturevalue("shared_data") / "panoptic" / "pizza_5views"
    if not data.is_dir():
        pytest.skip(f"{data} is absent")
    if not (cache_dir() / "yolo11n-pose_352x640.onnx").is_file() and importlib.util.find_spec("ultralytics") is None:
        pytest.skip("yolo11n-pose 352x640 not exported and the 'export' extra (ultralytics) is not installed")
    from capture.benchmarks.pizza import run_pizza

    return run_pizza(Path(data), affinity_of="multiway + appearance")


def test_labels_find_each_person_once_per_view(pizza: dict) -> None:
    from capture.benchmarks.pizza import EXPECTED_VIEWS

    for view, labels in enumerate(pizza["labels"]):
        named = [x for x in labels if x is not None]
        assert len(named) == len(set(named)), f"view {view}: a label given twice: {labels}"
        for person, views in EXPECTED_VIEWS.items():
            if view in views:
                assert person in named, f"view {view}: {person} not detected/labelled: {labels}"


@pytest.mark.parametrize(
    "variant",
    [
        "multiway",
        "multiway + appearance",
        "pairwise + appearance",
        pytest.param(
            "epipolar",
            marks=pytest.mark.xfail(
                strict=True,
                reason="G loses view 3, B views 0 and 4 (measured 2026-12): greedy average linkage gates the mean "
                "epipolar distance at max_epipolar_px = 30 px; G's view 3 lies 26-42 px from G's other views, "
                "B's views 0 and 4 (25.6 px apart) 22-49 px from B's views 1-3",
            ),
        ),
        pytest.param(
            "multiway + appearance, geometric mean",
            marks=pytest.mark.xfail(
                strict=True,
                reason="Dong et al.'s absolute geometric mean: B loses views 0 and 4 (measured 2026-12); B's "
                "colour histograms score 0.39-0.81 between his own views, other people's pairs up to 0.93",
            ),
        ),
    ],
)
def test_every_person_is_one_group_over_their_views(pizza: dict, variant: str) -> None:
    r = pizza["variants"][variant]
    assert r["check"]["ok"], r["check"]["problems"]
    # the four people are apart in 3D: their group centres are at least 0.4 m from each other
    pos = np.array([p for p, rows in zip(r["positions_m"], r["groups"], strict=True) if len(rows) >= 2])
    assert len(pos) == 4
    d = np.linalg.norm(pos[:, None] - pos[None], axis=2)[np.triu_indices(4, 1)]
    assert d.min() > 0.4


def test_appearance_only_lowers_affinities_and_is_uncalibrated(pizza: dict) -> None:
    """The premise of the ratio combination, on this still: a colour histogram's absolute similarity
    does not separate same-person from different-person pairs (so it must not veto a pair geometry
    accepts alone), and the combined affinity never exceeds the geometric one."""
    blocks = pizza["affinity"]
    names = blocks["names"]
    view = np.array([int(n[0]) for n in names])
    who = np.array([n[1:] for n in names])
    cross = view[:, None] != view[None, :]
    same = cross & (who[:, None] == who[None, :]) & (who[:, None] != "?")
    other = cross & (who[:, None] != who[None, :])
    assert blocks["appearance"][same].min() < blocks["appearance"][other].max()
    assert np.all(blocks["combined"] <= blocks["geometric"] + 1e-12)
    # where geometry is unambiguous (one candidate per view), the combination keeps the geometric affinity
    b = [k for k, n in enumerate(names) if n[1:] == "B"]
    np.testing.assert_allclose(blocks["combined"][np.ix_(b, b)], blocks["geometric"][np.ix_(b, b)], atol=1e-9)
