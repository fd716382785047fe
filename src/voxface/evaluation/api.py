"""The Python API for scoring and exporting embeddings with a trained checkpoint.

>>> scorer = VoiceFaceScorer("runs/demo/train/full/checkpoints/best.ckpt",
...                          backend="runs/demo/train/full/backend")                 # doctest: +SKIP
>>> [(m.cosine, m.probability) for m in scorer.score("voice.wav", ["face1.jpg", "face2.jpg"])]  # doctest: +SKIP
[(0.41, 0.83), (-0.05, 0.22)]

``probability`` is P(same person) at ``prior`` (the chance of a match before looking, 0.5 by default) from
the backend's calibrated log-likelihood ratio; without a backend only the cosine is given.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voxface.errors import MediaError
from voxface.evaluation.backend import check_backend_fits
from voxface.evaluation.checkpoint import load_trained_model, run_folder
from voxface.evaluation.embedding import Embedder
from voxface.scoring.backend import GaussianBackend, probability
from voxface.scoring.cosine import cosine


@dataclass(frozen=True)
class Match:
    """One face's score against a voice: the cosine (the paper's score) and, with a backend, the calibrated
    log-likelihood ratio and the probability that voice and face belong to the same person at ``prior``."""

    face: str
    cosine: float
    llr: float | None = None
    probability: float | None = None
    prior: float | None = None

    @property
    def rank_score(self) -> float:
        """What faces are ranked by: the calibrated llr when a backend scored (the better scoring), else the cosine;
        ``voxface score`` and the app both rank with it."""
        return self.llr if self.llr is not None else self.cosine


class VoiceFaceScorer:
    """Scores between voices and faces under one trained model (whole clips unless ``crop_seconds``), with
    calibrated probabilities when a fitted backend folder is given."""

    def __init__(self, checkpoint: str | Path, crop_seconds: float | None = None, batch_size: int = 32,
                 backend: str | Path | None = None, prior: float = 0.5,
                 without_backend: str = "leave the backend out (backend=None)", crop_option: str | None = "--crop"
                 ) -> None:
        """``without_backend``, ``crop_option``: the ways out a backend that does not fit offers (how the caller
        scores without it, e.g. ``voxface score``'s "pass --no-backend"; the caller's crop option, None for none)."""
        self.backend = GaussianBackend.load(backend) if backend is not None else None
        if self.backend is not None:
            check_backend_fits(self.backend, checkpoint, crop_seconds, without_backend, crop_option)
        probability(np.zeros(1), prior)  # a prior outside (0, 1) fails here, not at the first score
        self.prior = prior
        model, self.config = load_trained_model(checkpoint)
        self.embedder = Embedder(model, batch_size=batch_size, workers=0, crop_seconds=crop_seconds)

    def embed(self, paths: list[str | Path], kind: str) -> np.ndarray:
        """(N, D) embeddings of voice (``kind="voice"``) or face files, in order; a bad file raises MediaError."""
        files = [Path(p) for p in paths]
        vectors, errors = self.embed_readable(files, kind)
        if errors:
            raise MediaError(errors[next(f for f in files if f in errors)])  # the first bad one in the order given
        return np.stack([vectors[f] for f in files])

    def embed_readable(self, paths: list[str | Path], kind: str) -> tuple[dict[Path, np.ndarray], dict[Path, str]]:
        """The embeddings of the files that could be read, and for each that could not its one-line error (naming
        the file), both keyed by path."""
        files = [Path(p) for p in paths]
        if not files:
            raise MediaError(f"no {kind} files given")
        return self.embedder.embed(list(dict.fromkeys(files)), kind)

    def score(self, voice: str | Path, faces: list[str | Path] | str | Path, prior: float | None = None) -> list[Match]:
        """One voice against each face, in the faces' order: the cosine and, with a backend, the probability of a
        match at ``prior`` (the scorer's, 0.5 unless set)."""
        prior = self.prior if prior is None else prior
        if isinstance(faces, (str, Path)):  # one face given as a path, not a list of them
            faces = [faces]
        voice_vector = self.embed([voice], "voice")  # the voice first: a bad input is named in the order given
        f = self.embed(faces, "face")
        v = np.repeat(voice_vector, len(f), axis=0)
        cosines = cosine(v, f)
        if self.backend is None:
            return [Match(str(face), float(c)) for face, c in zip(faces, cosines, strict=True)]
        llr = self.backend.llr(v, f)
        return [Match(str(face), float(c), float(x), float(p), prior)
                for face, c, x, p in zip(faces, cosines, llr, probability(llr, prior), strict=True)]


def default_backend(checkpoint: str | Path) -> Path | None:
    """``RUN/backend`` beside ``RUN/checkpoints/<file>.ckpt`` when a backend was fitted there, else None."""
    run = run_folder(checkpoint)
    folder = run / "backend" if run is not None else None
    return folder if folder is not None and (folder / "backend.json").is_file() else None


def export_embeddings(scorer: VoiceFaceScorer, paths: list[str | Path], kind: str,
                      out: str | Path) -> tuple[Path, Path]:
    """Write ``OUT.npy`` (N, D) and ``OUT.csv`` (row, path) for the given files."""
    return write_embeddings(scorer.embed(paths, kind), paths, out)


def write_embeddings(matrix: np.ndarray, paths: list[str | Path], out: str | Path) -> tuple[Path, Path]:
    """``OUT.npy`` (the rows of ``matrix``) and ``OUT.csv`` (row, path: the file of each row)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.save(out.with_suffix(".npy"), matrix)
    with out.with_suffix(".csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["row", "path"])
        writer.writerows((i, str(p)) for i, p in enumerate(paths))
    return out.with_suffix(".npy"), out.with_suffix(".csv")
