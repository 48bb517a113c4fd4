"""Run configuration: frozen dataclasses, one section per package, read from TOML.

Defaults live only here. Unknown sections or keys raise :class:`~core.errors.ConfigError`.
``configs/demo.toml`` documents every key with its unit. One module per part of a config file:

- :mod:`core.config.detector`: ``[detector]`` (the workers' 2D pose model);
- :mod:`core.config.reconstruction`: ``[matching]``, ``[triangulation]``, ``[fusion]``, ``[rgbd]``,
  ``[smoothing]``;
- :mod:`core.config.node`: ``[node]`` (sockets, frame assembly, security);
- :mod:`core.config.cameras`: ``[[cameras]]``;
- :mod:`core.config.loader`: the whole :class:`Config` and :func:`load_config`.
"""

from core.config.cameras import ROTATIONS, CameraSource, ImageMap
from core.config.detector import DEVICES, DetectorConfig
from core.config.loader import Config, config_from_dict, load_config
from core.config.node import NodeConfig
from core.config.reconstruction import (
    FILTERS,
    MATCHING_METHODS,
    TRIANGULATION_METHODS,
    FusionConfig,
    MatchingConfig,
    RGBDConfig,
    SmoothingConfig,
    TriangulationConfig,
)

__all__ = [
    "CameraSource",
    "Config",
    "DEVICES",
    "FILTERS",
    "MATCHING_METHODS",
    "TRIANGULATION_METHODS",
    "DetectorConfig",
    "FusionConfig",
    "ImageMap",
    "MatchingConfig",
    "NodeConfig",
    "RGBDConfig",
    "ROTATIONS",
    "SmoothingConfig",
    "TriangulationConfig",
    "config_from_dict",
    "load_config",
]
