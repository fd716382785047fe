"""``voxface evaluate``: embed every voice and face the lists name once, then score every list.

Voices are embedded whole by default (``crop_seconds`` takes a centre crop instead); faces through
the teacher and the mapping. Embeddings are cached on disk, keyed by the checkpoint and each file.
Files the lists name but the data lacks stop the run before any work, unless ``skip_missing``.
Every verification list is scored by the paper's cosine and, with a fitted backend (``scoring/backend.py``,
fitted by ``evaluation/backend.py``), by calibrated log-likelihood ratios as well: AUC, EER, Cllr and minCllr
for each.
"""

from __future__ import annotations

import json
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from voxface.errors import ConfigError, MediaError, ProtocolError
from voxface.evaluation.backend import check_backend_fits, manifest_embeddings, refuse_test_data
from voxface.evaluation.checkpoint import checkpoint_digest, load_trained_model, run_name
from voxface.evaluation.embedding import Embedder, FeatureEmbedder, cached_embeddings, make_embedder
from voxface.evaluation.result import Evaluation
from voxface.metrics import (
    bootstrap_interval,
    cllr,
    delong_interval,
    equal_error_rate,
    matching_accuracy,
    min_cllr,
    retrieval,
    roc_auc,
)
from voxface.protocol.layout import DataRoots
from voxface.protocol.lists import SPLIT_NAMES, Protocol, VerificationList, load_protocol
from voxface.scoring.backend import BackendError, GaussianBackend
from voxface.scoring.cosine import cosine
from voxface.training.config import TrainConfig, voxceleb_leakage

log = logging.getLogger("voxface")


CI_METHODS = ("delong", "bootstrap", "none")


def verification_metrics(labels: np.ndarray, scores: np.ndarray, ci: str = "delong", resamples: int = 1000,
                         llr: np.ndarray | None = None) -> dict:
    """AUC with its 95% interval (``ci``: DeLong's analytic one, a percentile bootstrap of ``resamples``, or none),
    EER, minCllr and, for calibrated log-likelihood ratios ``llr`` of the same scores, Cllr (None without them:
    a raw score is not a likelihood ratio)."""
    if ci == "delong":
        low, high = delong_interval(labels, scores)
    elif ci == "bootstrap":
        low, high = bootstrap_interval(labels, scores, resamples=resamples)
    else:
        low, high = None, None
    return {"auc": roc_auc(labels, scores), "auc_ci95": [low, high], "eer": equal_error_rate(labels, scores),
            "cllr": cllr(labels, llr) if llr is not None else None, "min_cllr": min_cllr(labels, scores),
            "trials": len(labels), "positives": int(labels.sum())}


@dataclass
class EmbeddingTable:
    """Embeddings as one matrix per modality with each row's inverse length, and each file's row keyed by the
    lists' relative paths; with a backend, also every file's canonical coordinates. A trial then costs two row
    lookups: scoring never copies or normalises the large matrices."""

    voices: np.ndarray
    faces: np.ndarray
    voice_row: dict[str, int]
    face_row: dict[str, int]
    voice_scale: np.ndarray  # 1 / |row|
    face_scale: np.ndarray
    voice_coords: np.ndarray | None = None
    face_coords: np.ndarray | None = None

    @classmethod
    def from_arrays(cls, voice_paths: list[str], voices: np.ndarray, face_paths: list[str], faces: np.ndarray,
                    roots: DataRoots, backend: GaussianBackend | None = None) -> EmbeddingTable:
        """From absolute file paths and their embeddings (N, D), as the on-disk caches hold them."""
        def rows(paths: list[str], root: Path) -> dict[str, int]:
            prefix = f"{root}/"
            return {p[len(prefix):]: i for i, p in enumerate(map(str, paths)) if p.startswith(prefix)}

        def scale(x: np.ndarray) -> np.ndarray:
            return 1 / np.maximum(np.sqrt(np.einsum("ij,ij->i", x, x, dtype=np.float64)), 1e-12)

        table = cls(voices, faces, rows(voice_paths, roots.audio), rows(face_paths, roots.faces), scale(voices),
                    scale(faces))
        if backend is not None and len(voices) and len(faces):
            table.voice_coords = backend.project(voices, "voice")
            table.face_coords = backend.project(faces, "face")
        return table

    @classmethod
    def from_dicts(cls, voice_emb: dict[str, np.ndarray], face_emb: dict[str, np.ndarray], roots: DataRoots,
                   backend: GaussianBackend | None = None) -> EmbeddingTable:
        def matrix(embeddings: dict[str, np.ndarray]) -> np.ndarray:
            return np.stack(list(embeddings.values())) if embeddings else np.zeros((0, 1), np.float32)

        return cls.from_arrays(list(voice_emb), matrix(voice_emb), list(face_emb), matrix(face_emb), roots, backend)


def score_trials(table: EmbeddingTable, trials: VerificationList,
                 backend: GaussianBackend | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(kept rows, cosines, calibrated llrs or None) of one list's trials whose voice and face were embedded."""
    v = np.fromiter((table.voice_row.get(p, -1) for p in trials.voice_files), dtype=np.int64, count=len(trials))
    f = np.fromiter((table.face_row.get(p, -1) for p in trials.face_files), dtype=np.int64, count=len(trials))
    keep = np.flatnonzero((v >= 0) & (f >= 0))
    if not len(keep):
        return keep, np.zeros(0), (np.zeros(0) if backend is not None else None)
    v, f = v[keep], f[keep]
    cosines = np.einsum("ij,ij->i", table.voices[v], table.faces[f]).astype(np.float64)  # in the cache's precision
    cosines *= table.voice_scale[v] * table.face_scale[f]
    if backend is None:
        return keep, cosines, None
    if table.voice_coords is None or table.face_coords is None:
        raise ValueError("score_trials with a backend needs a table built with that backend (from_arrays/from_dicts)")
    return keep, cosines, backend.calibrate(backend.llr_projected(table.voice_coords[v], table.face_coords[f]))


def evaluate(checkpoint: str | Path, data: str | Path, lists: str | Path = "voxceleb1", out: str | Path | None = None,
             skip_missing: bool = False, crop_seconds: float | None = None, batch_size: int = 32,
             workers: int | None = None,
             bootstrap: int = 1000, audio_dir: str = "wav", faces_dir: str = "unzippedFaces",
             backend: str | Path | None = None, ci: str = "delong", decomposition: bool = True,
             reference_per_identity: int = 8, name: str | None = None,
             from_features: bool | None = None) -> Evaluation:
    """Score every list the protocol holds with a checkpoint (module docstring). ``decomposition``: also fit the
    references and probes of ``decomposition.py`` on up to ``reference_per_identity`` voices and faces of each
    training and validation identity (cached beside the backend's embeddings, or under ``out``). ``name``: the
    run's name in the plots (default: ``run_name(checkpoint)``). ``from_features``: embed from the run's feature
    stores (default: when it trained on them; False re-embeds media with the checkpoint's encoders)."""
    if ci not in CI_METHODS:
        raise ConfigError(f"the interval method must be one of {', '.join(CI_METHODS)}, got {ci!r}")
    protocol = lists if isinstance(lists, Protocol) else load_protocol(lists)
    scorer = None
    if backend is not None:  # checked before any embedding work
        scorer = GaussianBackend.load(backend)
        check_backend_fits(scorer, checkpoint, crop_seconds)
    roots = DataRoots.from_root(data, audio_dir, faces_dir)
    verification = protocol.all_verification()
    matching = protocol.all_matching()
    # Each distinct file named once, in path order, and found by its list string from then on: path objects made
    # and sorted per trial cost tens of seconds on VoxCeleb1's 300,000 trials.
    def named(direction: str) -> set[str]:  # what the matching lists take from the probe's side in ``direction``
        return {p for m in matching for p in (m.probes if m.direction == direction else m.positives + m.negatives)}

    voice_of = _paths(roots.audio, {v for t in verification for v in t.voice_files} | named("v2f"))
    face_of = _paths(roots.faces, {f for t in verification for f in t.face_files} | named("f2v"))
    voices, faces = list(voice_of.values()), list(face_of.values())
    model, config = load_trained_model(checkpoint)
    embedder = make_embedder(model, config, data, from_features, batch_size, workers, crop_seconds)
    # From feature stores the media need not be here: the stores say which files they hold (a file missing from
    # them is an unreadable one below); a stat per listed file cost seconds at VoxCeleb1's size.
    missing = [] if isinstance(embedder, FeatureEmbedder) else [p for p in voices + faces if not os.path.isfile(p)]
    if missing and not skip_missing:
        raise ProtocolError(f"{len(missing)} files the lists need are missing under {data}, e.g. "
                            f"{', '.join(map(str, missing[:3]))}; pass --skip-missing to score the rest")
    missing_set = set(missing)
    key = checkpoint_digest(checkpoint) + (f"_crop{crop_seconds}" if crop_seconds else "") + (
        "_features" if isinstance(embedder, FeatureEmbedder) else "")
    cache = Path(out) / "embeddings" if out else None
    voice_emb, voice_err = cached_embeddings(embedder, [p for p in voices if p not in missing_set], "voice",
                                             cache / f"voices_{key}.npz" if cache else None)
    face_emb, face_err = cached_embeddings(embedder, [p for p in faces if p not in missing_set], "face",
                                           cache / f"faces_{key}.npz" if cache else None)
    bad = {**voice_err, **face_err}
    if bad and not skip_missing:
        first = next(iter(bad.values()))
        raise MediaError(f"{len(bad)} files the lists need cannot be read, e.g. {first}; "
                         f"pass --skip-missing to score the rest")
    result = Evaluation(encoded=dict(embedder.encoded))
    if leakage := voxceleb_leakage(config, model.voice_encoder.provenance):  # as the checkpoint recorded it
        log.warning("%s", leakage)
        result.warnings.append(leakage)
    if scorer is not None:
        result.backend = {"folder": str(backend), **{k: scorer.info[k] for k in ("dims", "canonical_pairs",
                                                                               "train_identities", "val_auc")}}

    # Retrieval over the unseen-unheard identities: every voice and face its random list names. It runs in a
    # thread of its own beside the scoring and the decomposition below: its sorts use every core while those
    # hold one (at VoxCeleb1's size this overlap took a fifth off the wall time).
    trials = protocol.verification("random", "unseenunheard")
    result.test_identities = trials.identities
    voice_ids = {voice_of[v]: s for v, s in zip(trials.voice_files, trials.voice_speakers, strict=True)}
    face_ids = {face_of[f]: s for f, s in zip(trials.face_files, trials.face_speakers, strict=True)}
    v_paths = [p for p in sorted(voice_ids) if p in voice_emb]
    f_paths = [p for p in sorted(face_ids) if p in face_emb]
    for path, identity in face_ids.items():
        if path in face_emb:
            result.face_files_by_identity.setdefault(int(identity), []).append(path)
    v_ids, f_ids = np.array([voice_ids[p] for p in v_paths]), np.array([face_ids[p] for p in f_paths])
    v_keep, f_keep = np.isin(v_ids, f_ids), np.isin(f_ids, v_ids)
    retrieving = background = None
    if v_keep.any() and f_keep.any():  # identities with both a voice and a face left to retrieve
        v_matrix, f_matrix = np.stack([voice_emb[p] for p in v_paths]), np.stack([face_emb[p] for p in f_paths])

        def both_directions() -> dict[str, dict[str, float]]:
            return {"voice_to_face": retrieval(v_matrix[v_keep], v_ids[v_keep], f_matrix, f_ids),
                    "face_to_voice": retrieval(f_matrix[f_keep], f_ids[f_keep], v_matrix, v_ids)}

        background = ThreadPoolExecutor(1)
        retrieving = background.submit(both_directions)
    table = EmbeddingTable.from_dicts(voice_emb, face_emb, roots, scorer)
    for trials in verification:
        keep, scores, llr = score_trials(table, trials, scorer)
        result.lost_trials[trials.name] = len(trials) - len(keep)
        labels = trials.labels[keep]
        if labels.all() or not labels.any():  # every trial (or every trial of one class) lost: nothing to score
            result.lost_trials[trials.name] = len(trials)
            log.warning("%s: all %d trials lost to missing or unreadable files", trials.name, len(trials))
            continue
        result.scores[trials.name] = (labels, scores)
        result.trial_rows[trials.name] = keep
        result.verification[trials.name] = verification_metrics(
            labels, scores, ci, bootstrap, scorer.calibrate_cosine(scores) if scorer is not None else None)
        if llr is not None:
            result.backend_scores[trials.name] = (labels, llr)
            result.verification[trials.name]["backend"] = verification_metrics(labels, llr, ci, bootstrap, llr)
    scored = [t for t in verification if t.name in result.verification]
    if decomposition and scored:
        result.decomposition = _decomposition(protocol, roots, scored, result, embedder, voice_emb, face_emb,
                                              Path(backend) / "embeddings" if backend else
                                              (Path(out) / "embeddings" / f"references_{key}" if out else None),
                                              reference_per_identity)
    for m in matching:
        probe_map, cand_map = (voice_emb, face_emb) if m.direction == "v2f" else (face_emb, voice_emb)
        probe_of, cand_of = (voice_of, face_of) if m.direction == "v2f" else (face_of, voice_of)
        rows = [(probe_of[p], cand_of[a], cand_of[b]) for p, a, b in zip(m.probes, m.positives, m.negatives,
                                                                         strict=True)]
        rows = [r for r in rows if r[0] in probe_map and r[1] in cand_map and r[2] in cand_map]
        result.lost_trials[f"matching_{m.name}"] = len(m) - len(rows)
        if not rows:
            continue
        probes = np.stack([probe_map[r[0]] for r in rows])
        right = cosine(probes, np.stack([cand_map[r[1]] for r in rows]))
        wrong = cosine(probes, np.stack([cand_map[r[2]] for r in rows]))
        result.matching[m.name] = {"accuracy": matching_accuracy(right, wrong), "trials": len(rows)}
    if retrieving is not None:
        result.retrieval.update(retrieving.result())
        background.shutdown()
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        result.plots = [str(p) for p in write_plots(result, Path(out) / "plots", config, embedder, voice_emb,
                                                    voice_ids, protocol, name or run_name(checkpoint))]
        (Path(out) / "evaluation.json").write_text(json.dumps(result.to_json(), indent=1))
    return result


def _paths(root: Path, relative: set[str]) -> dict[str, str]:
    """``{relative: str(root / relative)}`` in the order of the paths (sorted part by part, as paths sort): strings,
    which every reader takes, since making 230,000 path objects cost seconds at VoxCeleb1's size."""
    prefix = f"{root}{os.sep}"
    return {rel: f"{prefix}{rel}" for rel in sorted(relative, key=lambda rel: rel.split("/"))}


def _decomposition(protocol: Protocol, roots: DataRoots, verification: list[VerificationList], result: Evaluation,
                   embedder: Embedder, voice_emb: dict[str, np.ndarray], face_emb: dict[str, np.ndarray],
                   cache: Path | None, per_identity: int) -> dict:
    """Embed (or read from the caches) the training and validation identities, then ``decomposition.decompose``."""
    from voxface.evaluation.decomposition import decompose
    from voxface.protocol import SPLIT_TRAIN, SPLIT_VAL, build_manifest
    from voxface.synth.build import oracle_beside

    try:
        manifests = [build_manifest(protocol, roots, SPLIT_TRAIN), build_manifest(protocol, roots, SPLIT_VAL)]
    except ProtocolError as err:  # e.g. a copy of the data with the test identities only
        log.warning("decomposition skipped: %s", err)
        return {"skipped": f"the references need training and validation identities: {err}"}
    refuse_test_data(protocol, roots, manifests)
    train, val = (manifest_embeddings(embedder, m, cache, ("voice", "face", "teacher"), per_identity)
                  for m in manifests)
    teacher_emb, _ = cached_embeddings(embedder, list(face_emb), "teacher", cache / "test_teachers.npz" if cache
                                       else None)

    def relative(embeddings: dict[str, np.ndarray], root: Path) -> dict[str, np.ndarray]:
        prefix = f"{root}/"
        return {str(p)[len(prefix):]: v for p, v in embeddings.items() if str(p).startswith(prefix)}

    test = {"voice": relative(voice_emb, roots.audio), "face": relative(face_emb, roots.faces),
            "teacher": relative(teacher_emb, roots.faces)}
    oracle = oracle_beside(protocol.root) if protocol.source != "voxceleb1" else None
    try:
        return decompose(protocol, verification, result.verification, test, train, val, oracle,
                         {"cosine": result.scores, "backend": result.backend_scores})
    except BackendError as err:  # too few identities to fit or choose on
        log.warning("decomposition skipped: %s", err)
        return {"skipped": str(err)}


def write_plots(result: Evaluation, folder: Path, config: TrainConfig, embedder: Embedder,
                voice_emb: dict[str, np.ndarray], voice_ids: dict[str, int], protocol: Protocol,
                run: str) -> list[Path]:
    """ROC curves and score distributions per test set, Fig. 4 (PCA before/after training), Fig. 5 and the
    decomposition's bars, each naming ``run``."""
    from voxface.encoders.registry import encoder_record, rebuild_encoder
    from voxface.evaluation.plots import decomposition_figure, distributions_figure, pca_figure, roc_figure, save_figure
    from voxface.training.towers import build_towers

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for test_set in ("unseenunheard", "seenheard"):
        group = {k.split("_")[0]: v for k, v in result.scores.items() if k.endswith(test_set)}
        if not group:  # every list of this test set lost its files
            continue
        paths.append(save_figure(roc_figure(group, run, test_set), folder / f"roc_{test_set}.png"))
        paths.append(save_figure(distributions_figure(group, run, test_set), folder / f"scores_{test_set}.png"))
    # Fig. 4: the three unseen-unheard identities with the most clips; "before" is the audio encoder as
    # training initialised it (same seed, same construction order), "after" the trained one.
    by_id: dict[int, list[str]] = {}
    for path, identity in voice_ids.items():
        if path in voice_emb:
            by_id.setdefault(int(identity), []).append(path)
    chosen = sorted(by_id, key=lambda i: (-len(by_id[i]), i))[:3]
    if len(chosen) == 3:
        def label(number: int) -> str:
            identity = protocol.identity_of_number.get(number)
            split = SPLIT_NAMES.get(protocol.splits.get(identity.name), "unknown") if identity else "unknown"
            return f"{identity.vox_id if identity else number} ({split} split)"

        method, before = embedder.model, None
        trained_voice = method.voice_encoder
        try:
            if not config.audio.weights:
                # the encoders as training initialised them: the same seed and construction order (build_towers),
                # the face encoder rebuilt from the checkpoint's record so that its file need not be here
                torch.manual_seed(config.trainer.seed)
                face = method.face_encoder
                rebuild_encoder(encoder_record(config.face.encoder, face), face.state_dict())
                method.voice_encoder = build_towers(config, face=face).voice.to(embedder.device).eval()
                before_emb, _ = embedder.embed([p for i in chosen for p in by_id[i]], "voice")
                before = {label(i): np.stack([before_emb[p] for p in by_id[i]]) for i in chosen}
            # else pretrained starting weights may not be on this machine: show the trained model only
        finally:
            method.voice_encoder = trained_voice
        after = {label(i): np.stack([voice_emb[p] for p in by_id[i]]) for i in chosen}
        paths.append(save_figure(pca_figure(before, after, run), folder / "fig4_voice_pca.png"))
    paths += _similarity_figure(result, folder, embedder, voice_emb, by_id, protocol, run)
    if "lists" in result.decomposition:
        paths.append(save_figure(decomposition_figure({run: result.decomposition}), folder / "decomposition.png"))
    return paths


def _similarity_figure(result, folder, embedder, voice_emb, by_id, protocol: Protocol, run: str) -> list[Path]:
    """Fig. 5 for this run: T, F and V similarity between up to 20 unseen-unheard identities, ordered by gender
    and then nationality (half from each gender where the data allow). The matrices and the order are kept in
    fig5_similarity.npz so that 'voxface report' can put runs (RKD on / off) side by side."""
    from voxface.evaluation.plots import save_figure, similarity_figure, similarity_matrices

    face_files = result.face_files_by_identity
    meta = protocol.identity_of_number

    def group(i: int) -> tuple[str, str]:
        identity = meta.get(int(i))
        return (identity.gender, identity.nationality) if identity else ("?", "?")

    usable = sorted((i for i in by_id if face_files.get(i)), key=lambda i: (*group(i), i))
    genders = sorted({group(i)[0] for i in usable})
    per_gender = 20 // max(1, len(genders))
    identities = sorted([i for g in genders for i in [j for j in usable if group(j)[0] == g][:per_gender]],
                        key=lambda i: (*group(i), i))
    if len(identities) < 3:
        return []
    teacher, mapped, voices = [], [], []
    for identity in identities:
        files = face_files[identity]
        f, _ = embedder.embed(files, "face")  # a face pass keeps its T: the teacher pass costs no encoder call
        t, _ = embedder.embed(files, "teacher")
        teacher.append(np.stack([t[p] for p in files if p in t]).mean(0))
        mapped.append(np.stack([f[p] for p in files if p in f]).mean(0))
        voices.append(np.stack([voice_emb[p] for p in by_id[identity]]).mean(0))
    matrices = similarity_matrices(np.stack(teacher), np.stack(mapped), np.stack(voices))
    groups = [group(i) for i in identities]
    np.savez(folder / "fig5_similarity.npz", **{k.split()[-1]: v for k, v in matrices.items()},
             gender=np.array([g for g, _ in groups]), nationality=np.array([n for _, n in groups]))
    return [save_figure(similarity_figure({run: matrices}, groups), folder / "fig5_similarity.png", dpi=110)]
