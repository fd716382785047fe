"""The Python API for scoring and exporting embeddings with a trained checkpoint.

>>> scorer = VoiceFaceScorer("runs/voxsynth/full/checkpoints/best.ckpt")  # doctest: +SKIP
>>> scorer.score("voice.wav", ["face1.jpg", "face2.jpg"])                  # doctest: +SKIP
[0.41, -0.05]
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from voxface.errors import MediaError
from voxface.evaluation.checkpoint import load_trained_model
from voxface.evaluation.evaluate import Embedder


class VoiceFaceScorer:
    """Cosine scores between voices and faces under one trained model (whole clips unless ``crop_seconds``)."""

    def __init__(self, checkpoint: str | Path, crop_seconds: float | None = None, batch_size: int = 32) -> None:
        model, self.config = load_trained_model(checkpoint)
        self.embedder = Embedder(model, batch_size=batch_size, workers=0, crop_seconds=crop_seconds)

    def embed(self, paths: list[str | Path], kind: str) -> np.ndarray:
        """(N, D) embeddings of voice (``kind="voice"``) or face files, in order; a bad file raises MediaError."""
        files = [Path(p) for p in paths]
        if not files:
            raise MediaError(f"no {kind} files given")
        vectors, errors = self.embedder.embed(files, kind)
        if errors:
            raise MediaError(next(iter(errors.values())))
        return np.stack([vectors[f] for f in files])

    def score(self, voice: str | Path, faces: list[str | Path]) -> list[float]:
        """The cosine similarity of one voice with each face, in the faces' order."""
        v = self.embed([voice], "voice")[0]
        f = self.embed(faces, "face")
        return (f @ v / (np.linalg.norm(f, axis=1) * np.linalg.norm(v))).astype(float).tolist()


def export_embeddings(scorer: VoiceFaceScorer, paths: list[str | Path], kind: str,
                      out: str | Path) -> tuple[Path, Path]:
    """Write ``OUT.npy`` (N, D) and ``OUT.csv`` (row, path) for the given files."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    matrix = scorer.embed(paths, kind)
    np.save(out.with_suffix(".npy"), matrix)
    with out.with_suffix(".csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["row", "path"])
        writer.writerows((i, str(p)) for i, p in enumerate(paths))
    return out.with_suffix(".npy"), out.with_suffix(".csv")
