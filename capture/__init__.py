"""Capture service: frame sources, 2D detectors, workers, the node, the wire format and the CLI.

Nothing imports ``capture``; it sits on top of core, calibration, matching, triangulation and fusion.
"""
