"""The run configuration reader: types are checked, unknown names refused, paths resolved."""

from __future__ import annotations

import pytest

from core.config import CameraSource, Config, ImageMap, config_from_dict, load_config
from core.errors import ConfigError

CAMS = [{"name": "cam01", "source": "a.mp4"}, {"name": "cam02", "source": "frames/"}]


def test_empty_table_gives_the_defaults():
    assert config_from_dict({}) == Config()


def test_sections_and_cameras_are_read():
    cfg = config_from_dict(
        {
            "calibration": "calib.toml",
            "cameras": [*CAMS[:1], {**CAMS[1], "image_map": {"scale": 0.5, "pad_y": -14}, "rotate": 90}],
            "detector": {"input_long_px": 960},
            "matching": {"method": "multiway", "appearance_weight": 0.5},
            "node": {"clock_offsets_ms": {"cam02": 12.5}},
        }
    )
    assert cfg.detector.input_long_px == 960
    assert cfg.matching.method == "multiway" and cfg.matching.appearance_weight == 0.5
    assert cfg.node.clock_offsets_ms == {"cam02": 12.5}
    assert cfg.cameras == (
        CameraSource("cam01", "a.mp4"),
        CameraSource("cam02", "frames/", image_map=ImageMap(0.5, 0.5, 0.0, -14.0), rotate=90),
    )


def test_an_integer_is_accepted_for_a_float_key_but_not_the_reverse():
    assert config_from_dict({"fusion": {"accel_noise_mps2": 25}}).fusion.accel_noise_mps2 == 25.0
    with pytest.raises(ConfigError, match="min_views must be int"):
        config_from_dict({"triangulation": {"min_views": 2.0}})


@pytest.mark.parametrize(
    "data, message",
    [
        ({"detectors": {}}, r"unknown section\(s\) \['detectors'\]"),
        ({"fusion": {"filtre": "ukf"}}, r"unknown key\(s\) \['filtre'\]"),
        ({"fusion": []}, "must be a table"),
        # bool is an int subclass in Python: neither may pass for the other.
        ({"triangulation": {"min_views": True}}, "min_views must be int"),
        ({"smoothing": {"enabled": 1}}, "enabled must be bool"),
        ({"fusion": {"filter": "kalman"}}, "fusion.filter must be one of"),
        ({"calibration": 3}, "calibration must be a path string"),
        ({"cameras": [{"name": "cam01"}]}, "cameras must be a list of"),
        ({"cameras": [{**CAMS[0], "lens": "wide"}]}, "cameras must be a list of"),
        ({"cameras": [{**CAMS[0], "rotate": 45}]}, r"cam01: rotate must be one of \(0, 90, 180, 270\)"),
        ({"cameras": [{**CAMS[0], "stills": "yes"}]}, "cam01: stills must be true or false"),
        ({"cameras": [{**CAMS[0], "image_size": [1920]}]}, "cam01: image_size must be"),
        ({"cameras": [{**CAMS[0], "image_map": {"scale": 0.5, "scale_x": 0.5}}]}, "needs scale, or both"),
        ({"cameras": [{**CAMS[0], "image_map": {"scale": -1}}]}, "cam01: image_map: scales must be positive"),
    ],
)
def test_bad_values_are_refused_with_the_key_named(data, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict(data, where="run.toml")


def test_relative_paths_resolve_against_the_config_folder(tmp_path):
    folder = tmp_path / "take"
    folder.mkdir()
    path = folder / "run.toml"
    path.write_text(
        'calibration = "calib.toml"\n'
        '[detector]\nmodel = "models/pose.onnx"\n'
        '[[cameras]]\nname = "cam01"\nsource = "videos/cam01.mp4"\ndepth = "/abs/depth"\n'
        '[[cameras]]\nname = "cam02"\nsource = "0"\n'
    )
    cfg = load_config(path)
    assert cfg.calibration == str(folder / "calib.toml")
    assert cfg.detector.model == str(folder / "models" / "pose.onnx")
    assert cfg.cameras[0].source == str(folder / "videos" / "cam01.mp4")
    assert cfg.cameras[0].depth == "/abs/depth"
    assert cfg.cameras[1].source == "0"  # a webcam index is not a path


def test_unreadable_or_invalid_files_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match=r"missing\.toml: cannot read config"):
        load_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[detector\n")
    with pytest.raises(ConfigError, match=r"bad\.toml: invalid TOML"):
        load_config(bad)


def test_shipped_configs_load():
    from pathlib import Path

    for path in sorted(Path(__file__).resolve().parents[2].joinpath("configs").glob("*.toml")):
        assert isinstance(load_config(path), Config), path
