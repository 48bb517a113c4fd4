"""Calibration file formats, one module per format with its reader and writer side by side.

Use :mod:`calibration.io` (``read_calibration``, ``write_calibration``), which picks the module.
"""
