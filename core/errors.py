"""Error hierarchy shared by every package.

Every error raised on purpose by mvcap derives from :class:`CaptureError`, so a CLI can catch it
and print one line instead of a traceback.
"""

from __future__ import annotations

__all__ = [
    "CalibrationError",
    "CaptureError",
    "ConfigError",
    "InputError",
    "MessageError",
    "OutputError",
    "ShapeError",
]


class CaptureError(Exception):
    """Base class of all mvcap errors."""


class ShapeError(CaptureError, ValueError):
    """An array does not have the documented shape or dtype."""


class CalibrationError(CaptureError, ValueError):
    """A calibration file is missing, unreadable or inconsistent."""


class ConfigError(CaptureError, ValueError):
    """A configuration file or option is invalid."""


class InputError(CaptureError, ValueError):
    """An input (video, image folder, detection file) is missing or unreadable."""


class MessageError(CaptureError, ValueError):
    """A wire message is malformed, of the wrong version or inconsistent with its header."""


class OutputError(CaptureError):
    """An output cannot be written (disk full, read-only folder).

    The message is one line, ``"<path>: cannot write (<reason>)"``; the operating system's error
    (an :class:`OSError` with its ``errno``) is chained as ``__cause__``.
    """
