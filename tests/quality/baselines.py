"""Baselines scored on the same data in the same run: river HalfSpaceTrees, IsolationForest."""

from __future__ import annotations

import numpy as np


def river_hst_scores(reference: np.ndarray, stream: np.ndarray, seed: int = 42) -> np.ndarray:
    """river's `MinMaxScaler | HalfSpaceTrees`, learned on the reference, then scored."""
    from river import anomaly, compose, preprocessing

    model = compose.Pipeline(preprocessing.MinMaxScaler(),
                             anomaly.HalfSpaceTrees(seed=seed, n_trees=25, height=15,
                                                    window_size=250))
    names = [f"f{i}" for i in range(reference.shape[1])]
    for row in reference:
        model.learn_one(dict(zip(names, row.tolist(), strict=True)))
    return np.array([model.score_one(dict(zip(names, row.tolist(), strict=True)))
                     for row in stream])


def isolation_forest_scores(reference: np.ndarray, stream: np.ndarray,
                            seed: int = 0) -> np.ndarray:
    """scikit-learn's IsolationForest fitted on the reference; higher = more anomalous."""
    from sklearn.ensemble import IsolationForest

    forest = IsolationForest(n_estimators=200, random_state=seed).fit(reference)
    return -forest.score_samples(stream)
