"""Benchmarks with the field's protocols (Shelf and Campus PCP, CMU Panoptic MPJPE/AP), node and
front-end timing, ablations; ``mvcap bench`` (:mod:`.cli`) runs each.
"""
