"""Data layer: download → preprocess → split, for the five datasets of DAVE §4.1.1."""
