"""The 2D front end's models beside the default detector: supplied pose models, re-ID descriptors.

Each module is one model family or one descriptor; :mod:`capture.detectors` keeps the registry that
chooses among them by name.
"""
