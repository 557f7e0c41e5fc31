"""dave-repro: a reproducible re-run of DAVE (Yi, Yang, Yu) from raw data to the paper's tables."""

__version__ = "0.1.0"
