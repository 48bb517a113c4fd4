"""Benchmarks with the field's protocols: Shelf and Campus PCP, CMU Panoptic MPJPE/AP, node timing."""
