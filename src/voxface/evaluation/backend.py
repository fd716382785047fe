"""``voxface backend fit``: the Gaussian backend (``scoring/backend.py``) fitted on a trained checkpoint's
embeddings of the training and validation identities, and the checks that keep test data out of the fit and a
backend with the checkpoint it was fitted for.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voxface.evaluation.checkpoint import checkpoint_sha256, load_trained_model
from voxface.evaluation.embedding import Embedder, FeatureEmbedder, cached_embeddings, make_embedder
from voxface.protocol import SPLIT_TEST, SPLIT_TRAIN, SPLIT_VAL, DataRoots, Manifest, Protocol, build_manifest
from voxface.protocol.lists import load_protocol
from voxface.scoring.backend import BackendError, EmbeddingSet, GaussianBackend, fit_gaussian_backend, pairs_text


def refuse_test_data(protocol: Protocol, roots: DataRoots, manifests: list[Manifest]) -> None:
    """Stop when fitting data holds a test identity or a file any verification list scores."""
    test_names = {ident.name for ident in protocol.identities_in_split(SPLIT_TEST)}
    planted = sorted(test_names & {ident.name for m in manifests for ident in m.identities})
    if planted:
        raise BackendError(f"the fitting data holds {len(planted)} test (unseen-unheard) identities, e.g. "
                           f"{', '.join(planted[:3])}: a backend is fitted on training and validation identities only")
    scored_voices = {v for t in protocol.all_verification() for v in t.voice_files}  # relative to the roots
    scored_faces = {f for t in protocol.all_verification() for f in t.face_files}
    used = sorted(str(root(p)) for m in manifests for ident in m.identities
                  for root, files, scored in ((m.roots.voice, ident.voices, scored_voices),
                                              (m.roots.face, ident.faces, scored_faces))
                  for p in files if p in scored and root(p) in (roots.voice(p), roots.face(p)))
    if used:
        raise BackendError(f"the fitting data holds {len(used)} files that the test lists score, e.g. {used[0]}: "
                           f"a backend is fitted on training and validation media only")


@dataclass
class SplitEmbeddings:
    """Embeddings of one split's media, per kind ("voice", "face", "teacher"): vectors with each row's identity
    name, video and file path relative to its root."""

    split: str
    vectors: dict[str, np.ndarray]
    ids: dict[str, np.ndarray]
    videos: dict[str, np.ndarray]
    files: dict[str, list[str]]
    unreadable: int = 0

    def embedding_set(self, face_kind: str = "face") -> EmbeddingSet:
        return EmbeddingSet(self.vectors["voice"], self.ids["voice"], self.vectors[face_kind], self.ids[face_kind],
                            self.videos["voice"], self.videos[face_kind])


def manifest_embeddings(embedder: Embedder, manifest: Manifest, cache: Path | None,
                        kinds: tuple[str, ...] = ("voice", "face"), per_identity: int | None = None) -> SplitEmbeddings:
    """A manifest's voices and faces embedded (cached in ``cache``), up to ``per_identity`` of each per identity
    (taken across its videos in turn). Unreadable files are left out and counted."""
    rows: dict[str, list] = {"voice": [], "face": []}
    for ident in manifest.identities:
        for side in rows:
            taken = [(rel, ytid) for ytid, video in ident.videos.items()
                     for rel in (video.voices if side == "voice" else video.faces)]
            if per_identity is not None and len(taken) > per_identity:
                order = np.argsort([i for video in ident.videos.values()  # round-robin over the videos
                                    for i in range(len(video.voices if side == "voice" else video.faces))],
                                   kind="stable")
                taken = [taken[i] for i in sorted(order[:per_identity])]
            rows[side] += [(rel, ident.name, ytid) for rel, ytid in taken]
    result = SplitEmbeddings(manifest.split, {}, {}, {}, {})
    for kind in kinds:
        side = "voice" if kind == "voice" else "face"
        root = manifest.roots.voice if side == "voice" else manifest.roots.face
        paths = [root(rel) for rel, _, _ in rows[side]]
        vectors, errors = cached_embeddings(embedder, paths, kind,
                                            cache / f"{manifest.split}_{kind}s.npz" if cache else None)
        result.unreadable += len(errors) if kind != "teacher" else 0  # the faces' errors, counted once
        kept = [(vectors[p], item) for p, item in zip(paths, rows[side], strict=True) if p in vectors]
        if not kept:
            raise BackendError(f"no {side} of the {manifest.split} identities could be embedded")
        result.vectors[kind] = np.stack([e for e, _ in kept])
        result.ids[kind] = np.array([name for _, (_, name, _) in kept])
        result.videos[kind] = np.array([ytid for _, (_, _, ytid) in kept])
        result.files[kind] = [rel for _, (rel, _, _) in kept]
    return result


def fit_backend(checkpoint: str | Path, data: str | Path, lists: str | Path | Protocol = "voxceleb1",
                out: str | Path | None = None, reduce: str = "lda", crop_seconds: float | None = None,
                batch_size: int = 32, workers: int | None = None, audio_dir: str = "wav",
                faces_dir: str = "unzippedFaces", manifests: tuple[Manifest, Manifest] | None = None,
                from_features: bool | None = None) -> GaussianBackend:
    """``voxface backend fit``: embed the training and validation identities with a trained checkpoint (voices
    whole, or centre crops as ``evaluate --crop`` takes them), fit the backend, save it into ``out``.

    ``manifests`` (train, val) replaces the protocol's own splits; whatever they hold, test identities and
    files the verification lists score are refused. ``from_features``: as ``evaluate``'s (the run's feature stores
    when it trained on them)."""
    protocol = lists if isinstance(lists, Protocol) else load_protocol(lists)
    roots = DataRoots.from_root(data, audio_dir, faces_dir)
    if manifests is None:
        manifests = (build_manifest(protocol, roots, SPLIT_TRAIN), build_manifest(protocol, roots, SPLIT_VAL))
    refuse_test_data(protocol, roots, list(manifests))
    model, config = load_trained_model(checkpoint)
    start = time.perf_counter()
    embedder = make_embedder(model, config, data, from_features, batch_size, workers, crop_seconds)
    cache = Path(out or ".") / "embeddings" / ("features" if isinstance(embedder, FeatureEmbedder) else "")
    # the teachers' T comes free with the faces' F and is kept for 'evaluate''s decomposition (decomposition.py)
    train, val = (manifest_embeddings(embedder, m, cache, ("voice", "face", "teacher")) for m in manifests)
    embed_seconds = time.perf_counter() - start
    backend = fit_gaussian_backend(train.embedding_set(), val.embedding_set(), reduce=reduce)
    backend.info.update({
        "checkpoint": str(Path(checkpoint).resolve()), "checkpoint_sha256": checkpoint_sha256(checkpoint),
        "data": str(Path(data).resolve()), "lists": protocol.source, "crop_seconds": crop_seconds,
        "unreadable_files": train.unreadable + val.unreadable, "embed_seconds": round(embed_seconds, 2),
        "embedded": dict(embedder.encoded)})
    if out is not None:
        backend.save(out)
    return backend


def check_backend_fits(backend: GaussianBackend, checkpoint: str | Path, crop_seconds: float | None,
                       without: str = "leave out --backend", crop_option: str | None = "--crop") -> None:
    """Stop when a backend was fitted for another checkpoint or another voice crop than the one scoring now.
    The message offers the ways out: ``without``, how the caller scores without the backend (``voxface score``:
    "pass --no-backend"), and, where the caller has one, its ``crop_option`` (None: the caller's crop is fixed)."""
    if backend.info.get("checkpoint_sha256") != checkpoint_sha256(checkpoint):
        raise BackendError(f"the backend was fitted for {backend.info.get('checkpoint', 'another checkpoint')}, not "
                           f"{checkpoint}: refit it with 'voxface backend fit --checkpoint {checkpoint}', or {without}")
    if backend.info.get("crop_seconds") != crop_seconds:
        fitted = backend.info.get("crop_seconds")
        clips = {c: "whole clips" if c is None else f"{c:g} s crops" for c in (fitted, crop_seconds)}
        same = ([f"score without {crop_option}" if fitted is None else f"score with the same {crop_option} {fitted:g}"]
                if crop_option else [])
        raise BackendError(f"the backend was fitted on {clips[fitted]}, not {clips[crop_seconds]}: "
                           + ", ".join([*same, f"refit it on {clips[crop_seconds]}"]) + f", or {without}")


def format_backend(info: dict) -> str:
    val = info["val_auc"]
    return (f"Gaussian backend on {info['train_identities']} training identities ({info['train_voices']} voices, "
            f"{info['train_faces']} faces): {info['reduce']} to {info['dims']} dimensions, "
            f"{pairs_text(info['canonical_pairs'])} "
            f"(correlations {', '.join(f'{r:.2f}' for r in info['canonical_correlations'])}); "
            f"validation AUC {val['backend']:.3f} (cosine {val['cosine']:.3f}) on {info['val_identities']} "
            f"identities; embedding {info['embed_seconds']:.1f} s, fitting {info['fit_seconds']:.2f} s")


NO_BACKEND = "pass --no-backend (cosine scores only)"  # the way out score and the app offer when a backend misfits
