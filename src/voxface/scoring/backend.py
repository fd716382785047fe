"""A cross-modal Gaussian backend: log-likelihood ratios and calibrated probabilities for voice-face trials.

The paper scores a trial by the cosine of the two towers' embeddings; a cosine is neither a likelihood ratio
nor a probability. Speaker verification answers "same person?" with a PLDA backend and a calibration; this
module does the same across modalities, fitted on the training identities' embeddings of a trained model.
Numpy on sets of embeddings only: ``evaluation/backend.py`` embeds a checkpoint's splits and fits this.

The model (two-covariance / joint Gaussian). Each voice embedding ``v`` and face embedding ``f`` (length-
normalised, centred, optionally reduced by LDA or PCA per modality) is Gaussian; for one identity they
correlate through the identity, for two identities they are independent:

    same:       [v; f] ~ N(0, [[T_v, C], [C', T_f]])      different:  [v; f] ~ N(0, [[T_v, 0], [0, T_f]])

``T`` are the per-sample total covariances and ``C`` the cross-covariance of the identity means (the
noises of two modalities are independent, so the means' cross-covariance estimates the identity part without
bias). Whitening each side by ``T^-1/2`` and taking the SVD of the whitened ``C`` (canonical correlation
analysis) makes both covariances block-diagonal in 2x2 blocks, so the log-likelihood ratio is a sum over the
canonical pairs ``(x_k, y_k)`` with correlation ``r_k``:

    llr = sum_k  -1/2 log(1 - r_k^2) - (r_k^2 (x_k^2 + y_k^2) - 2 r_k x_k y_k) / (2 (1 - r_k^2))

With a few hundred identities the smaller canonical correlations are mostly noise, so the reduced size and
the number of canonical pairs are chosen on the validation identities (AUC), and a logistic calibration
(scale and offset, targets and non-targets weighed equally) fitted on the same trials turns the score into a
calibrated natural-log likelihood ratio. The probability of a match at prior ``p`` is then
``sigmoid(llr + log(p / (1 - p)))``.

>>> rng = np.random.default_rng(0)
>>> ids = np.repeat(np.arange(60), 4)
>>> latent = rng.standard_normal((60, 3))[ids]
>>> voices = np.c_[latent, rng.standard_normal((240, 5))] + 0.5 * rng.standard_normal((240, 8))
>>> faces = np.c_[latent, rng.standard_normal((240, 5))] + 0.5 * rng.standard_normal((240, 8))
>>> split = EmbeddingSet(voices, ids, faces, ids)
>>> backend = fit_gaussian_backend(split.subset(ids < 45), split.subset(ids >= 45))
>>> backend.llr(voices[:2], faces[:2]).shape
(2,)
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from voxface.errors import VoxfaceError
from voxface.metrics import roc_auc
from voxface.scoring.cosine import cosine, unit

BACKEND_VERSION = 1
RHO_MAX = 0.999  # a canonical correlation of 1 would make the log-likelihood ratio infinite
VAL_TRIALS_MAX = 100_000  # all validation pairs up to this many, else a sample of targets and non-targets


class BackendError(VoxfaceError):
    """A backend folder is missing, malformed, fitted for another checkpoint, or fitted on test data."""


@dataclass
class EmbeddingSet:
    """Voice and face embeddings of some identities, with each row's identity (and video, when known)."""

    voices: np.ndarray  # (n_v, D)
    voice_ids: np.ndarray  # (n_v,) identity labels, any hashable numpy dtype
    faces: np.ndarray  # (n_f, D)
    face_ids: np.ndarray  # (n_f,)
    voice_videos: np.ndarray | None = None  # (n_v,) video labels: a target pair from one video is skipped
    face_videos: np.ndarray | None = None

    def subset(self, keep_identities: np.ndarray) -> EmbeddingSet:
        """The rows whose identity is one of those where ``keep_identities`` (a mask over voice rows) holds."""
        chosen = np.unique(self.voice_ids[keep_identities])
        v, f = np.isin(self.voice_ids, chosen), np.isin(self.face_ids, chosen)
        return EmbeddingSet(self.voices[v], self.voice_ids[v], self.faces[f], self.face_ids[f],
                            None if self.voice_videos is None else self.voice_videos[v],
                            None if self.face_videos is None else self.face_videos[f])

    @property
    def identities(self) -> int:
        return len(np.intersect1d(self.voice_ids, self.face_ids))


def _inverse_sqrt(covariance: np.ndarray, floor: float = 1e-6) -> np.ndarray:
    values, vectors = np.linalg.eigh(covariance)
    values = np.maximum(values, floor * max(values.max(), 1e-12))
    return vectors @ np.diag(values ** -0.5) @ vectors.T


def _llr_coefficients(rho: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(a, b, c) with each canonical pair's log-likelihood ratio = a (x^2 + y^2) + b x y + c: a bivariate normal
    with correlation rho (same identity) against two independent standard normals (the module docstring's sum)."""
    r2 = rho * rho
    return -r2 / (2 * (1 - r2)), rho / (1 - r2), -0.5 * np.log1p(-r2)


def _llr_terms(x: np.ndarray, y: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """(N, k) log-likelihood ratio of each canonical pair."""
    a, b, c = _llr_coefficients(rho)
    return a * (x * x + y * y) + b * x * y + c


def _group_means(x: np.ndarray, ids: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(len(labels), D) mean row of each identity in ``labels`` and (len(labels),) row counts."""
    index = np.searchsorted(labels, ids)
    inside = (index < len(labels)) & (labels[np.minimum(index, len(labels) - 1)] == ids)
    means = np.zeros((len(labels), x.shape[1]))
    np.add.at(means, index[inside], x[inside])
    counts = np.bincount(index[inside], minlength=len(labels)).astype(np.float64)
    return means / np.maximum(counts, 1)[:, None], counts


def _reduction(x: np.ndarray, ids: np.ndarray, method: str, dims: int) -> np.ndarray:
    """(D, dims) projection of centred rows ``x``: LDA (between- over within-identity scatter) or PCA."""
    if method == "pca":
        _, _, vt = np.linalg.svd(x, full_matrices=False)
        return vt[:dims].T
    labels = np.unique(ids)
    means, counts = _group_means(x, ids, labels)
    within = x - means[np.searchsorted(labels, ids)]
    s_within = within.T @ within / len(x)
    s_between = (means * counts[:, None]).T @ means / len(x)
    ridge = 1e-6 * np.trace(s_within) / len(s_within)  # more dimensions than identities leaves S_w singular
    from scipy.linalg import eigh  # the generalised problem; scipy.linalg imported where a backend is fitted

    _, vectors = eigh(s_between, s_within + ridge * np.eye(len(s_within)))
    return vectors[:, ::-1][:, :dims]


def pairs_text(count: int) -> str:
    """``1 canonical pair`` / ``2 canonical pairs``: how reports name a backend's kept pairs.

    >>> pairs_text(1), pairs_text(2)
    ('1 canonical pair', '2 canonical pairs')
    """
    return f"{count} canonical pair" + ("" if count == 1 else "s")


def canonical_pairs(voices: np.ndarray, voice_ids: np.ndarray, faces: np.ndarray, face_ids: np.ndarray,
                    labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(voice projection, face projection, correlations) of centred rows to canonical pairs: each side whitened
    by its per-sample total covariance, then the SVD of the whitened cross-covariance of the identity means
    (``labels``: the identities both sides share)."""
    w_v, w_f = _inverse_sqrt(np.cov(voices, rowvar=False)), _inverse_sqrt(np.cov(faces, rowvar=False))
    cross = _group_means(voices, voice_ids, labels)[0].T @ _group_means(faces, face_ids, labels)[0] / len(labels)
    u, rho, vt = np.linalg.svd(w_v @ cross @ w_f, full_matrices=False)  # w symmetric: whitened cross-covariance
    return w_v @ u, w_f @ vt.T, np.clip(rho, 0.0, RHO_MAX)


@dataclass
class GaussianBackend:
    """A fitted backend: per-modality centring and projection to canonical pairs, their correlations and a
    logistic calibration of both scorings (this backend's and the cosine, for the cosine's Cllr)."""

    voice_mean: np.ndarray  # (D,)
    face_mean: np.ndarray  # (D,)
    voice_projection: np.ndarray  # (D, k): centred unit voice -> canonical coordinates
    face_projection: np.ndarray  # (D, k)
    rho: np.ndarray  # (k,) canonical correlations
    calibration: tuple[float, float] = (1.0, 0.0)  # calibrated llr = scale * raw llr + offset
    cosine_calibration: tuple[float, float] = (1.0, 0.0)  # the same for the cosine score
    normalize: bool = True  # scale embeddings to unit length before centring
    info: dict = field(default_factory=dict)  # how it was fitted: sizes, choices, validation figures

    def project(self, embeddings: np.ndarray, kind: str) -> np.ndarray:
        """Canonical coordinates (N, k) of voice (``kind="voice"``) or face embeddings (N, D)."""
        mean, projection = ((self.voice_mean, self.voice_projection) if kind == "voice"
                            else (self.face_mean, self.face_projection))
        x = np.asarray(embeddings)
        if x.ndim != 2 or x.shape[1] != len(mean):
            raise BackendError(f"the backend takes ({len(mean)},)-d {kind} embeddings, got shape {x.shape}")
        if not np.issubdtype(x.dtype, np.floating):
            x = x.astype(np.float64)
        # (x / |x| - mean) @ P computed as (x @ P) / |x| - mean @ P: no normalised copy of a large matrix
        coords = (x @ projection.astype(x.dtype)).astype(np.float64)
        if self.normalize:
            coords /= np.maximum(np.sqrt(np.einsum("ij,ij->i", x, x, dtype=np.float64)), 1e-12)[:, None]
        return coords - mean @ projection

    def llr_projected(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Raw log-likelihood ratios of row-paired canonical coordinates (uncalibrated)."""
        a, b, c = _llr_coefficients(self.rho)
        return (x * x + y * y) @ a + (x * y) @ b + c.sum()  # the pairs' sum without an (N, k) term matrix

    def llr(self, voices: np.ndarray, faces: np.ndarray, calibrated: bool = True) -> np.ndarray:
        """Log-likelihood ratios (natural log) of row-paired voice and face embeddings, calibrated by default."""
        raw = self.llr_projected(self.project(voices, "voice"), self.project(faces, "face"))
        return self.calibrate(raw) if calibrated else raw

    def calibrate(self, raw: np.ndarray) -> np.ndarray:
        scale, offset = self.calibration
        return scale * raw + offset

    def calibrate_cosine(self, cosine: np.ndarray) -> np.ndarray:
        scale, offset = self.cosine_calibration
        return scale * np.asarray(cosine) + offset

    def save(self, folder: str | Path) -> Path:
        """``backend.npz`` (arrays) and ``backend.json`` (calibration and how it was fitted) in ``folder``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        np.savez(folder / "backend.npz", voice_mean=self.voice_mean, face_mean=self.face_mean,
                 voice_projection=self.voice_projection, face_projection=self.face_projection, rho=self.rho)
        meta = {"version": BACKEND_VERSION, "calibration": list(self.calibration),
                "cosine_calibration": list(self.cosine_calibration), "normalize": self.normalize, **self.info}
        (folder / "backend.json").write_text(json.dumps(meta, indent=1))
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> GaussianBackend:
        folder = Path(folder)
        if not (folder / "backend.json").is_file() or not (folder / "backend.npz").is_file():
            hint = " (pass the folder 'voxface backend fit --out' wrote)" if folder.is_file() else ""
            raise BackendError(f"{folder} is not a backend folder: it needs backend.json and backend.npz{hint}; "
                               f"fit one with 'voxface backend fit'")
        try:
            meta = json.loads((folder / "backend.json").read_text())
            arrays = np.load(folder / "backend.npz", allow_pickle=False)
            if meta.pop("version", None) != BACKEND_VERSION:
                raise BackendError(f"{folder}/backend.json has an unknown version; refit with 'voxface backend fit'")
            return cls(arrays["voice_mean"], arrays["face_mean"], arrays["voice_projection"],
                       arrays["face_projection"], arrays["rho"], tuple(meta.pop("calibration")),
                       tuple(meta.pop("cosine_calibration")), bool(meta.pop("normalize")), meta)
        except (ValueError, KeyError, OSError, json.JSONDecodeError) as err:
            raise BackendError(f"{folder} holds a damaged backend ({err}); refit with 'voxface backend fit'") from None


def probability(llr: np.ndarray, prior: float = 0.5) -> np.ndarray:
    """P(same person | scores) from calibrated log-likelihood ratios, for a prior probability of a match."""
    if not 0 < prior < 1:
        raise BackendError(f"the prior probability of a match must lie strictly between 0 and 1, got {prior}")
    return 1 / (1 + np.exp(-(np.asarray(llr) + np.log(prior / (1 - prior)))))


def trial_pairs(data: EmbeddingSet, seed: int = 0, limit: int = VAL_TRIALS_MAX) -> tuple[np.ndarray, ...]:
    """(voice rows, face rows, labels) of verification trials among ``data``'s identities: every pair up to
    ``limit``, else a sample with as many targets as can be had up to half of it. A target whose voice and
    face come from one video is left out, as the unseen-unheard lists leave it out."""
    n_v, n_f = len(data.voices), len(data.faces)
    if n_v * n_f <= limit:
        v, f = (a.ravel() for a in np.meshgrid(np.arange(n_v), np.arange(n_f), indexing="ij"))
    else:
        rng = np.random.default_rng(seed)
        # faces grouped by identity: a voice's target is a random row inside its identity's group
        order = np.argsort(data.face_ids, kind="stable")
        labels, first, count = np.unique(data.face_ids[order], return_index=True, return_counts=True)
        voice_rows = rng.integers(0, n_v, limit // 2)
        group = np.searchsorted(labels, data.voice_ids[voice_rows])
        has_faces = (group < len(labels)) & (labels[np.minimum(group, len(labels) - 1)] == data.voice_ids[voice_rows])
        voice_rows, group = voice_rows[has_faces], group[has_faces]
        face_rows = order[first[group] + (rng.random(len(group)) * count[group]).astype(int)]
        v = np.r_[rng.integers(0, n_v, limit // 2), voice_rows]  # random pairs (nearly all non-targets) ...
        f = np.r_[rng.integers(0, n_f, limit // 2), face_rows]  # ... and as many targets
    labels = data.voice_ids[v] == data.face_ids[f]
    if data.voice_videos is not None and data.face_videos is not None:
        keep = ~labels | (data.voice_videos[v] != data.face_videos[f])
        v, f, labels = v[keep], f[keep], labels[keep]
    if labels.all() or not labels.any():
        raise BackendError("the validation identities give no target or no non-target trial: the backend needs "
                           "at least two validation identities with voices and faces")
    return v, f, labels


def _logistic(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Scale and offset of prior-weighted logistic regression (targets and non-targets weigh half each), so
    that ``scale * score + offset`` is a log-likelihood ratio."""
    from sklearn.linear_model import LogisticRegression  # only where a backend is fitted (scoring loads one)

    model = LogisticRegression(C=1e6, class_weight="balanced", max_iter=1000)
    model.fit(np.asarray(scores, dtype=np.float64)[:, None], labels)
    return float(model.coef_[0, 0]), float(model.intercept_[0])


def fit_gaussian_backend(train: EmbeddingSet, val: EmbeddingSet, reduce: str = "lda",
                         dims: tuple[int, ...] = (4, 8, 16, 32, 64, 128), normalize: bool = True,
                         val_trials: int = VAL_TRIALS_MAX) -> GaussianBackend:
    """Fit the backend on ``train``, choose the reduced size and the number of canonical pairs by AUC on
    ``val``'s trials, and calibrate both scorings on them. ``reduce``: "lda", "pca" or "none" (whitening only).
    ``normalize=False`` keeps vectors as they are (features that are not directions, e.g. VoxSynth's knobs);
    voices and faces may differ in size: each side is reduced to at most its own width (``info["side_dims"]``),
    so a narrow side stays whole while the wider one is reduced to the size tried (``info["dims"]``).
    """
    start = time.perf_counter()
    if reduce not in ("lda", "pca", "none"):
        raise BackendError(f"reduce must be lda, pca or none, got {reduce!r}")
    labels = np.intersect1d(train.voice_ids, train.face_ids)
    if len(labels) < 3:
        raise BackendError(f"the backend needs training identities with both voices and faces; got {len(labels)}")
    unit_rows = unit if normalize else (lambda x: np.asarray(x, dtype=np.float64))
    voices, faces = unit_rows(train.voices), unit_rows(train.faces)
    v_mean, f_mean = voices.mean(0), faces.mean(0)
    voices, faces = voices - v_mean, faces - f_mean
    # each side is reduced to at most its own width: knobs (8 or 15 numbers) against a 128-d embedding keep
    # every knob while the embedding is reduced to the size tried
    widths = (voices.shape[1], faces.shape[1]) if reduce == "none" else (
        min(voices.shape[1], len(labels) - 1), min(faces.shape[1], len(labels) - 1))
    sizes = [max(widths)] if reduce == "none" else sorted({min(d, max(widths)) for d in dims})
    val_v, val_f, val_labels = trial_pairs(val, limit=val_trials)
    val_voices, val_faces = unit_rows(val.voices) - v_mean, unit_rows(val.faces) - f_mean
    grid, best = [], None
    if reduce != "none":  # components come ordered: reduce once to the largest size, then take leading columns
        full_v = _reduction(voices, train.voice_ids, reduce, min(max(sizes), widths[0]))
        full_f = _reduction(faces, train.face_ids, reduce, min(max(sizes), widths[1]))
    for d in sizes:
        if reduce == "none":
            p_v, p_f = np.eye(voices.shape[1]), np.eye(faces.shape[1])
        else:
            p_v, p_f = full_v[:, :min(d, widths[0])], full_f[:, :min(d, widths[1])]
        to_v, to_f, rho = canonical_pairs(voices @ p_v, train.voice_ids, faces @ p_f, train.face_ids, labels)
        to_v, to_f = p_v @ to_v, p_f @ to_f
        # every k at once: the llr is a running sum over canonical pairs ordered by correlation
        x, y = val_voices[val_v] @ to_v, val_faces[val_f] @ to_f
        running = np.cumsum(_llr_terms(x, y, rho), axis=1)
        for k in sorted({min(k, len(rho)) for k in (1, 2, 4, 8, 16, 32, 64, 128, len(rho))}):
            auc = roc_auc(val_labels, running[:, k - 1])
            grid.append({"dims": d, "pairs": k, "val_auc": round(auc, 5)})
            if best is None or auc > best[0] + 1e-9:
                best = (auc, d, k, to_v[:, :k], to_f[:, :k], rho[:k], p_v.shape[1], p_f.shape[1])
    assert best is not None
    val_auc, d, k, to_v, to_f, rho, d_v, d_f = best
    backend = GaussianBackend(v_mean, f_mean, to_v, to_f, rho, normalize=normalize)
    raw = backend.llr_projected(val_voices[val_v] @ to_v, val_faces[val_f] @ to_f)
    backend.calibration = _logistic(raw, val_labels)
    same_size = val.voices.shape[1] == val.faces.shape[1]  # a cosine exists only between equal sizes
    cos = cosine(val.voices[val_v], val.faces[val_f]) if same_size else None
    if cos is not None:
        backend.cosine_calibration = _logistic(cos, val_labels)
    backend.info = {
        "model": "cross-modal two-covariance (joint Gaussian) backend", "reduce": reduce, "dims": int(d),
        "side_dims": {"voice": int(d_v), "face": int(d_f)},
        "canonical_pairs": int(k), "canonical_correlations": [round(float(r), 4) for r in rho],
        "train_identities": int(len(labels)), "train_voices": int(len(train.voices)),
        "train_faces": int(len(train.faces)), "val_identities": int(val.identities),
        "val_trials": int(len(val_labels)), "val_targets": int(val_labels.sum()),
        "val_auc": {"backend": round(float(val_auc), 5),
                    **({"cosine": round(roc_auc(val_labels, cos), 5)} if cos is not None else {})},
        "selection": grid, "fit_seconds": round(time.perf_counter() - start, 3)}
    return backend
