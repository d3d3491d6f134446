"""Quality tests run the real pipeline on real labelled data (see tests/datasets.py)."""
