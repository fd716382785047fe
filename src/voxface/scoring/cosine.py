"""The paper's score: the cosine of a voice embedding and a face embedding.

>>> cosine(np.array([[3.0, 4.0]]), np.array([[4.0, 3.0]]))
array([0.96])
"""

from __future__ import annotations

import numpy as np


def unit(x: np.ndarray) -> np.ndarray:
    """Rows (..., D) scaled to unit length in float64 (a zero row stays zero): the towers are trained for cosine
    scores, so directions carry the identity."""
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def cosine(voices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(N,) cosine similarity of row-paired voice and face embeddings (N, D), the paper's score."""
    return (unit(voices) * unit(faces)).sum(-1)
