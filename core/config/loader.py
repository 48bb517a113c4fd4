"""The whole run configuration and its TOML reader: unknown sections or keys and wrong types are refused."""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.config.cameras import CameraSource, cameras_from_list
from core.config.detector import DetectorConfig
from core.config.node import NodeConfig
from core.config.reconstruction import (
    FusionConfig,
    MatchingConfig,
    RGBDConfig,
    SmoothingConfig,
    TriangulationConfig,
)
from core.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Config:
    """A full run configuration."""

    calibration: str = ""
    cameras: tuple[CameraSource, ...] = ()
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    matching: MatchingConfig = field(default_factory=MatchingConfig)
    triangulation: TriangulationConfig = field(default_factory=TriangulationConfig)
    fusion: FusionConfig = field(default_factory=FusionConfig)
    smoothing: SmoothingConfig = field(default_factory=SmoothingConfig)
    node: NodeConfig = field(default_factory=NodeConfig)
    rgbd: RGBDConfig = field(default_factory=RGBDConfig)


_SECTIONS: dict[str, type] = {
    "detector": DetectorConfig,
    "matching": MatchingConfig,
    "triangulation": TriangulationConfig,
    "fusion": FusionConfig,
    "smoothing": SmoothingConfig,
    "node": NodeConfig,
    "rgbd": RGBDConfig,
}


def _section(cls: type, values: Any, where: str) -> Any:
    if not isinstance(values, dict):
        raise ConfigError(f"{where}: [{cls.__name__}] must be a table")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; valid keys: {sorted(fields)}")
    out = {}
    for key, value in values.items():
        default = getattr(cls(), key)
        if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        # bool is an int subclass: an int must not pass for a bool, nor a bool for an int.
        if not isinstance(value, type(default)) or isinstance(value, bool) != isinstance(default, bool):
            raise ConfigError(f"{where}: {key} must be {type(default).__name__}; got {value!r}")
        out[key] = value
    return cls(**out)


def config_from_dict(data: dict[str, Any], where: str = "config") -> Config:
    """Build a :class:`Config` from a parsed TOML table.

    Raises:
        ConfigError: unknown section or key, or a value of the wrong type.
    """
    known = {"calibration", "cameras", *_SECTIONS}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown section(s) {unknown}; valid: {sorted(known)}")
    kwargs: dict[str, Any] = {
        name: _section(cls, data.get(name, {}), f"{where} [{name}]") for name, cls in _SECTIONS.items()
    }
    calibration = data.get("calibration", "")
    if not isinstance(calibration, str):
        raise ConfigError(f"{where}: calibration must be a path string")
    cameras = cameras_from_list(data.get("cameras", []), where)
    return Config(calibration=calibration, cameras=cameras, **kwargs)


def load_config(path: str | Path) -> Config:
    """Read a TOML run configuration; relative paths in it are resolved against its folder.

    Raises:
        ConfigError: missing or unparseable file, unknown keys, wrong types.
    """
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML ({exc})") from None
    cfg = config_from_dict(data, where=str(path))

    def resolve(p: str) -> str:
        return p if (not p or p.isdigit() or Path(p).is_absolute()) else str((path.parent / p).resolve())

    return dataclasses.replace(
        cfg,
        calibration=resolve(cfg.calibration),
        cameras=tuple(dataclasses.replace(c, source=resolve(c.source), depth=resolve(c.depth)) for c in cfg.cameras),
        detector=dataclasses.replace(cfg.detector, model=resolve(cfg.detector.model)),
    )
