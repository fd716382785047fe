"""k-means for the label-free methods' per-epoch clustering (Self-Lifting, CMPC): scikit-learn's, single-threaded.

Run with its own OpenMP threads beside torch's on a small machine, scikit-learn's k-means left both pools contending
for the cores: on 2 cores a Self-Lifting run of 216 steps took 38 s instead of 3 s. A few hundred clusters of a few
thousand rows need no second thread.
"""

from __future__ import annotations

import numpy as np


def kmeans(rows: np.ndarray, clusters: int, iterations: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(N, D) rows -> each row's cluster (N,) int64 and the centroids (K, D), K = ``min(clusters, N)``; started from
    K random rows (faiss's start, as the reference code's k-means), ``iterations`` Lloyd steps at most, one thread.

    >>> assign, centroids = kmeans(np.array([[0.0], [0.1], [5.0], [5.1]]), clusters=2, iterations=10, seed=0)
    >>> len(set(assign[:2].tolist())), len(set(assign.tolist())), centroids.shape
    (1, 2, (2, 1))
    """
    from sklearn.cluster import KMeans  # imported when first used: it adds seconds to every command's start
    from threadpoolctl import threadpool_limits

    model = KMeans(n_clusters=min(clusters, len(rows)), init="random", n_init=1, max_iter=iterations,
                   random_state=seed)
    with threadpool_limits(limits=1):
        assign = model.fit_predict(np.asarray(rows, dtype=np.float64))
    return assign.astype(np.int64), model.cluster_centers_
