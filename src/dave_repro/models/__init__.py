"""Recommenders: DAVE and its variants (Section 3), the baselines, and the popularity floor."""
