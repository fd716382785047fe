"""Where the points go: each list's AUC beside references that show what the data, the face teacher and the
voice encoder allow, and how much of a score is demographics.

On VoxSynth, where every voice clip's and face frame's true generative knobs are known (``generative.npz``):

- **ceiling**: the oracle (``synth/oracle.py``), the best any scorer can do on these lists;
- **data reference**: scorers fitted on the training identities' *true* voice and face knobs, one per scoring
  the run uses: a linear CCA map with cosine scores (the cosine family) and the Gaussian backend
  (``scoring/backend.py``). This is what the data alone allow with as many identities;
- **face-limited**: what the run's face side keeps, with a perfect voice side: a Gaussian backend between the
  true voice knobs (whole) and the face side's embeddings side by side, [T, F]: the teacher's T and the run's
  mapped F = mapping(T), each unit length (F is a function of T, so together they hold only what the face side
  keeps; F adds what the trained non-linear mapping made linearly readable), LDA-reduced to 16, 32 or 64
  dimensions, the size and the canonical pairs chosen on validation AUC;
- **voice-limited**: what the run's voice encoder keeps, with a perfect face side: a Gaussian backend between the
  run's V (LDA-reduced to 16, 32 or 64 dimensions, chosen on validation AUC) and the true face knobs (whole);
- **achieved**: the run's own AUC (cosine, and the backend's when one scored).

The two one-sided references are meant as upper references: the run scores a voice embedding against a face
embedding, each side at best as good as its perfect counterpart. A reference fitted with too little capacity can
still fall below the run (the references before issue 22 reduced T to at most 8 PCA dimensions, as many as the
voice knobs, and read 0.67 where the run reached 0.77 with the same T), so every list records, per one-sided
reference and achieved scoring, the paired difference and its 95% interval (``limits``, DeLong's test of two
correlated AUCs); ``limit_check`` says whether the reference holds as a limit on random unseen-unheard.

On any data with metadata (VoxCeleb1's gender and nationality; VoxSynth adds age):

- **demographic probes**: linear probes fitted on the training identities' embeddings and scored on the test
  identities' (held out): gender AUC, nationality accuracy, age R², from the teacher's T, the mapped F and the
  voices' V;
- **demographics-only reference**: a trial scored only by how well the demographics predicted from the voice
  (probes on V) agree with those predicted from the face (probes on F): log P(same gender) + log P(same
  nationality) - (age gap)^2 / (2 var(age)). On a list constrained on an attribute, that attribute's term is
  worthless by construction.

Every reference is fitted on training identities only (validation identities choose sizes); ``evaluate``
refuses fitting data that hold a test identity or a file a list scores (``evaluation.backend.refuse_test_data``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voxface.evaluation.backend import SplitEmbeddings
from voxface.metrics import delong_difference, roc_auc
from voxface.protocol.lists import Protocol, VerificationList
from voxface.scoring.backend import (
    EmbeddingSet,
    GaussianBackend,
    canonical_pairs,
    fit_gaussian_backend,
    pairs_text,
    trial_pairs,
)
from voxface.scoring.cosine import unit
from voxface.scoring.probes import BINARY, CATEGORICAL, CONTINUOUS, LinearProbes
from voxface.synth.oracle import CEILING_WIDTH, Ceiling, ceiling_notes, ceiling_of, list_ceiling

ONE_SIDED = {  # the one-sided references' (voice side, face side) kinds (``Sides``)
    "face_limited": ("voice_knobs", "teacher_and_face"),
    "voice_limited": ("voice", "face_knobs"),
}
KIND_NAMES = {"voice_knobs": "true voice knobs", "face_knobs": "true face knobs", "teacher_and_face": "[T, F]",
              "voice": "V"}
LIMIT_LIST = "random_unseenunheard"  # the list the limit check reads: the constrained ones sit too near chance
KNOBS_FILE = "generative.npz"  # VoxSynth's per-sample knobs, beside its protocol/ folder
# sizes (LDA) an embedding side of a one-sided reference is reduced to; each side keeps at most its own width, so
# at 16 and above the knobs (8 voice, 15 face numbers) stay whole. Smaller sizes lost what the run itself uses:
# on the demo the face-limited reference with T at 8 PCA dimensions read 0.67 against the run's 0.77.
REFERENCE_DIMS = (16, 32, 64)
DEMOGRAPHICS = {"gender": BINARY, "nationality": CATEGORICAL, "age": CONTINUOUS}  # the probes' targets
REFERENCE_VAL_TRIALS = 20_000  # validation trials choosing a reference's sizes (a backend takes up to 100k)
COLUMNS = {  # the decomposition table's columns, in order
    "ceiling": "ceiling (oracle)",
    "data_cosine": "data reference, CCA cosine",
    "data_backend": "data reference, Gaussian backend",
    "face_limited": "face-limited (true voice knobs x the run's [T, F], backend)",
    "voice_limited": "voice-limited (the run's V x true face knobs, backend)",
    "demographics": "demographics only",
    "priors_backend": "frozen priors, Gaussian backend",
    "achieved_cosine": "achieved, cosine",
    "achieved_backend": "achieved, backend",
}


def load_knobs(protocol: Protocol) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]] | None:
    """(voice knobs, face knobs) keyed by the lists' relative paths, or None where the data have none."""
    path = protocol.root.parent / KNOBS_FILE
    if not path.is_file():
        return None
    data = np.load(path, allow_pickle=False)
    return (dict(zip(data["voice_paths"].tolist(), data["voice_knobs"], strict=True)),
            dict(zip(data["face_paths"].tolist(), data["face_knobs"], strict=True)))


@dataclass
class CCACosine:
    """The cosine family's reference: cosine similarity of the top canonical pairs (no likelihood model)."""

    voice_mean: np.ndarray
    face_mean: np.ndarray
    voice_projection: np.ndarray
    face_projection: np.ndarray

    def score(self, voices: np.ndarray, faces: np.ndarray) -> np.ndarray:
        x = unit((voices - self.voice_mean) @ self.voice_projection)
        y = unit((faces - self.face_mean) @ self.face_projection)
        return (x * y).sum(1)


def fit_cca_cosine(train: EmbeddingSet, val: EmbeddingSet) -> CCACosine:
    """CCA on the training identities, the number of canonical pairs chosen by cosine AUC on ``val``."""
    labels = np.intersect1d(train.voice_ids, train.face_ids)
    v_mean, f_mean = train.voices.mean(0), train.faces.mean(0)
    to_v, to_f, rho = canonical_pairs(train.voices - v_mean, train.voice_ids, train.faces - f_mean, train.face_ids,
                                      labels)
    val_v, val_f, val_labels = trial_pairs(val, limit=REFERENCE_VAL_TRIALS)
    x, y = (val.voices[val_v] - v_mean) @ to_v, (val.faces[val_f] - f_mean) @ to_f
    best = max(range(1, len(rho) + 1), key=lambda k: roc_auc(val_labels, (unit(x[:, :k]) * unit(y[:, :k])).sum(1)))
    return CCACosine(v_mean, f_mean, to_v[:, :best], to_f[:, :best])


def fit_one_sided(train: EmbeddingSet, val: EmbeddingSet) -> GaussianBackend:
    """A one-sided reference's scorer: a Gaussian backend with each side LDA-reduced to ``REFERENCE_DIMS`` (a side
    narrower than a size stays whole), the size and the canonical pairs chosen on ``val``'s AUC. Rows are used as
    they are (``Sides`` keeps embeddings at unit length; knobs are not directions). Raises ``BackendError`` when
    the identities are too few to fit or choose on."""
    return fit_gaussian_backend(train, val, reduce="lda", dims=REFERENCE_DIMS, normalize=False,
                                val_trials=REFERENCE_VAL_TRIALS)


def limit_check(result: dict, list_name: str = LIMIT_LIST) -> tuple[bool, str] | None:
    """Whether the one-sided references hold as limits on ``list_name``, and what was measured; None where the
    decomposition has no limits there (no knobs, or the list was not scored).

    The rule: a reference fails only where it lies *significantly* below an achieved scoring, i.e. the 95% interval
    of (reference - achieved) on the same trials (``metrics.delong_difference``) lies wholly below 0. Both score
    the same trials, so the paired interval is what can tell them apart; a point-estimate rule would call a
    reference that equals the run not a limit about half the time on trial noise alone."""
    limits = result.get("limits", {}).get(list_name)
    if not limits:
        return None
    met, parts = True, []
    for reference, by_scoring in limits.items():
        for scoring, (difference, low, high) in by_scoring.items():
            row = result["lists"][list_name]
            below = high < 0
            met &= not below
            parts.append(f"{reference.replace('_', '-')} {row[reference]:.3f} vs achieved {scoring} "
                         f"{row['achieved_' + scoring]:.3f}: difference {difference:+.3f} (95% CI {low:+.3f} to "
                         f"{high:+.3f}){', below: not a limit' if below else ''}")
    return met, "; ".join(parts)


class Sides:
    """Per file, the vectors a reference scores with: true knobs, or the run's V, F, T (unit length) and
    "teacher_and_face", [T, F] / sqrt(2) (unit length too). Each kind is one matrix (``rows``) and a row per file
    (``index``): at VoxCeleb1's size a vector object per file cost seconds to make and to stack again."""

    def __init__(self, test: dict[str, dict[str, np.ndarray]], splits: list[SplitEmbeddings],
                 knobs: tuple[dict[str, np.ndarray], dict[str, np.ndarray]] | None) -> None:
        self.index: dict[str, dict[str, int]] = {}
        self.rows: dict[str, np.ndarray] = {}
        for kind in ("voice", "face", "teacher"):
            parts = [(list(test.get(kind, {})), list(test.get(kind, {}).values()))]
            parts += [(split.files[kind], split.vectors[kind]) for split in splits if kind in split.files]
            files = [f for names, _ in parts for f in names]
            if not files:
                self.index[kind], self.rows[kind] = {}, np.zeros((0, 0))
                continue
            matrix = np.concatenate([np.stack(v) if isinstance(v, list) else v for names, v in parts if names])
            matrix = matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
            self.index[kind] = {f: i for i, f in enumerate(files)}  # a later split's file replaces an earlier one
            self.rows[kind] = matrix
        if knobs is not None:
            for kind, vectors in zip(("voice_knobs", "face_knobs"), knobs, strict=True):
                self.index[kind] = {f: i for i, f in enumerate(vectors)}
                self.rows[kind] = np.stack(list(vectors.values())) if vectors else np.zeros((0, 0))

    def matrix(self, kind: str, files: list[str]) -> np.ndarray:
        if kind == "teacher_and_face":  # made for the rows asked: for every test face it took a GB at VoxCeleb1's size
            return np.hstack([self.matrix("teacher", files), self.matrix("face", files)]) / np.sqrt(2)
        index = self.index[kind]
        return self.rows[kind][np.fromiter((index[f] for f in files), dtype=np.int64, count=len(files))]

    def embedding_set(self, split: SplitEmbeddings, voice_kind: str, face_kind: str) -> EmbeddingSet:
        voice_files, face_files = split.files["voice"], split.files["face"]
        return EmbeddingSet(self.matrix(voice_kind, voice_files), split.ids["voice"],
                            self.matrix(face_kind, face_files), split.ids["face"], split.videos["voice"],
                            split.videos["face"])


def demographic_targets(protocol: Protocol, names: np.ndarray) -> dict[str, np.ndarray]:
    """Gender (1 = female), nationality and, where the metadata has it, age of each row's identity."""
    people = [protocol.identities[n] for n in names]
    targets = {"gender": np.array([p.gender == "f" for p in people]), "nationality": np.array([p.nationality
                                                                                              for p in people])}
    if all(p.age is not None for p in people):
        targets["age"] = np.array([p.age for p in people], dtype=np.float64)
    return targets


def demographic_probes(x: np.ndarray, targets: dict[str, np.ndarray]) -> LinearProbes:
    """Linear probes (``scoring.probes``) of gender, nationality and, where the targets have it, age, on rows ``x``
    (one per identity), with fixed penalties on the embedding as it is."""
    return LinearProbes(DEMOGRAPHICS).fit(x, targets)


def agreement_scores(voice: dict[str, np.ndarray], face: dict[str, np.ndarray], classes: np.ndarray | None,
                     age_variance: float) -> dict[str, np.ndarray]:
    """Per trial, how well predicted demographics agree, per attribute and all together (a log-probability).
    ``voice`` and ``face``: ``LinearProbes.predict`` of the trials' voices and faces; an attribute a probe could
    not be fitted for (one gender among the training identities) is left out."""
    scores = {}
    if "gender" in voice and "gender" in face:
        scores["gender"] = np.log(voice["gender"] * face["gender"] + (1 - voice["gender"]) * (1 - face["gender"])
                                  + 1e-12)
    if classes is not None:
        scores["nationality"] = np.log((voice["nationality"] * face["nationality"]).sum(1) + 1e-12)
    if "age" in voice:
        scores["age"] = -((voice["age"] - face["age"]) ** 2) / (2 * age_variance)
    scores["all"] = sum(scores.values())
    return scores


def decompose(protocol: Protocol, lists: list[VerificationList], achieved: dict[str, dict],
              test: dict[str, dict[str, np.ndarray]], train: SplitEmbeddings, val: SplitEmbeddings,
              oracle: dict | None, achieved_scores: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] | None = None
              ) -> dict:
    """The decomposition table, the probes and the demographics-only reference, as one JSON-able dict.

    ``test`` holds the run's test embeddings per kind ("voice", "face", "teacher"), keyed by the lists'
    relative paths; ``train``/``val`` the training and validation identities' (fitting and choosing only).
    ``achieved_scores``: per scoring ("cosine", "backend"), per list, the run's (labels, scores) of the trials
    whose files were embedded, in list order; with them each one-sided reference is compared with the run on the
    same trials (``limits``: list -> reference -> scoring -> (difference, 95% low, 95% high))."""
    start = time.perf_counter()
    knobs = load_knobs(protocol)
    sides = Sides(test, [train, val], knobs)
    result: dict = {"lists": {name.name: {} for name in lists}}
    # demographic probes: fitted on training identities, scored on the held-out test identities
    random_list = next((t for t in lists if t.name == "random_unseenunheard"), lists[0])
    held_voices = sorted(set(random_list.voice_files) & set(sides.index["voice"]))
    held_faces = sorted(set(random_list.face_files) & set(sides.index["face"]))
    voice_names = {f: protocol.identity_of_number[int(s)].name for f, s in
                   zip(random_list.voice_files, random_list.voice_speakers, strict=True)}
    face_names = {f: protocol.identity_of_number[int(s)].name for f, s in
                  zip(random_list.face_files, random_list.face_speakers, strict=True)}
    probes, result["probes"] = {}, {}
    for kind, label in (("teacher", "T"), ("face", "F"), ("voice", "V")):
        side = "voice" if kind == "voice" else "face"
        # fitted on each training identity's mean embedding: one row per person, as the demographics are
        names, index = np.unique(train.ids[kind], return_inverse=True)
        rows = sides.matrix(kind, train.files[kind])
        means = np.zeros((len(names), rows.shape[1]))
        np.add.at(means, index, rows)
        probes[kind] = demographic_probes(unit(means), demographic_targets(protocol, names))
        held = held_voices if side == "voice" else held_faces
        names = np.array([(voice_names if side == "voice" else face_names)[f] for f in held])
        result["probes"][label] = probes[kind].report(sides.matrix(kind, held), demographic_targets(protocol, names))
    classes = probes["voice"].classes("nationality")
    if classes is not None and probes["face"].classes("nationality") is not None:
        assert list(classes) == list(probes["face"].classes("nationality"))  # same training identities
    demographics = {}
    for trials in lists:
        keep = [i for i, (v, f) in enumerate(zip(trials.voice_files, trials.face_files, strict=True))
                if v in sides.index["voice"] and f in sides.index["face"]]
        if not keep:
            continue
        labels = trials.labels[keep]
        v_files = [trials.voice_files[i] for i in keep]
        f_files = [trials.face_files[i] for i in keep]
        scores = agreement_scores(probes["voice"].predict(sides.matrix("voice", v_files)),
                                  probes["face"].predict(sides.matrix("face", f_files)), classes,
                                  probes["voice"].variance.get("age", 1.0))
        demographics[trials.name] = {k: roc_auc(labels, s) for k, s in scores.items()}
        result["lists"][trials.name]["demographics"] = demographics[trials.name]["all"]
    result["demographics_reference"] = demographics
    # knob references (VoxSynth)
    if knobs is None:
        result["knob_references"] = ("not computed: the data have no true voice and face parameters (VoxSynth "
                                     "writes them to generative.npz); the ceiling and the data, face-limited and "
                                     "voice-limited references need them")
    else:
        kinds = {"data_cosine": ("voice_knobs", "face_knobs"), "data_backend": ("voice_knobs", "face_knobs")}
        kinds.update(ONE_SIDED)
        fitting = {name: (sides.embedding_set(train, *pair), sides.embedding_set(val, *pair))
                   for name, pair in kinds.items()}
        cca = fit_cca_cosine(*fitting["data_cosine"])
        backends = {"data_backend": fit_gaussian_backend(*fitting["data_backend"], reduce="none", normalize=False,
                                                         val_trials=REFERENCE_VAL_TRIALS),
                    **{name: fit_one_sided(*fitting[name]) for name in ONE_SIDED}}
        # every reference as (its scoring of row-paired voices and faces, how it was fitted)
        references = {"data_cosine": (cca.score, {"canonical_pairs": int(cca.voice_projection.shape[1])}),
                      **{name: (backend.llr, {"sides": " x ".join(KIND_NAMES.get(k, k) for k in kinds[name]),
                                              **{k: backend.info[k] for k in ("reduce", "dims", "side_dims",
                                                                              "canonical_pairs", "val_auc")}})
                         for name, backend in backends.items()}}
        fits = {name: fit for name, (_, fit) in references.items()}
        for trials in lists:
            keep = [i for i, (v, f) in enumerate(zip(trials.voice_files, trials.face_files, strict=True))
                    if v in sides.index["voice"] and f in sides.index["face"]]
            labels = trials.labels[keep]
            for name, (score, _) in references.items():
                voice_kind, face_kind = kinds[name]
                v = sides.matrix(voice_kind, [trials.voice_files[i] for i in keep])
                f = sides.matrix(face_kind, [trials.face_files[i] for i in keep])
                scores = score(v, f)
                result["lists"][trials.name][name] = roc_auc(labels, scores)
                if name not in ONE_SIDED:
                    continue
                for scoring, by_list in (achieved_scores or {}).items():
                    if trials.name not in by_list:
                        continue
                    run_labels, run_scores = by_list[trials.name]
                    if not np.array_equal(run_labels, labels):  # evaluate and this table keep the same trials
                        raise ValueError(f"{trials.name}: the run's {scoring} scores are not of the trials the "
                                         "references score")
                    result.setdefault("limits", {}).setdefault(trials.name, {}).setdefault(name, {})[scoring] = \
                        list(delong_difference(labels, scores, run_scores))
        result["knob_references"] = fits
    for trials in lists:
        row = result["lists"][trials.name]
        row["achieved_cosine"] = achieved[trials.name]["auc"]
        if "backend" in achieved[trials.name]:
            row["achieved_backend"] = achieved[trials.name]["backend"]["auc"]
        if oracle:
            ceiling = list_ceiling(oracle, trials.name)
            row["ceiling"] = ceiling.auc
            result.setdefault("ceiling_ci95", {})[trials.name] = [ceiling.low, ceiling.high]
    result["train_identities"] = int(len(set(train.ids["voice"])))
    result["seconds"] = round(time.perf_counter() - start, 2)
    return result


def shares(row: dict[str, float], ceiling: Ceiling | None) -> dict[str, float]:
    """Each AUC of a table row as its share of the way from chance (0) to the row's ceiling (1); none without a
    ceiling or where it is no ceiling to share the way to (``oracle.Ceiling.noise``: a seen-heard list, or its
    interval unknown, wider than ``CEILING_WIDTH`` or reaching chance)."""
    if ceiling is None or not ceiling.usable:
        return {}
    return {k: ceiling.share(v) for k, v in row.items() if k != "ceiling"}


def row_ceiling(result: dict, name: str) -> Ceiling | None:
    """The ceiling of list ``name`` in a decomposition ``result`` (``oracle.ceiling_of``), None without one."""
    row = result["lists"][name]
    return ceiling_of(name, row["ceiling"], result.get("ceiling_ci95", {}).get(name)) if "ceiling" in row else None


def format_decomposition(result: dict) -> str:
    """The Markdown table: AUC and, where the list's ceiling is usable (``oracle.Ceiling.noise``), the share of the
    way from chance to it; a ceiling that is not is marked in its cell and the reason given below the table."""
    if "skipped" in result:
        return f"Not computed: {result['skipped']}."
    present = [c for c in COLUMNS if any(c in row for row in result["lists"].values())]
    lines = ["| list | " + " | ".join(COLUMNS[c] for c in present) + " |", "|---" * (len(present) + 1) + "|"]

    def ceiling_cell(c: Ceiling) -> str:  # " (95% CI 0.893-0.983; seen: no bound)"
        details = ([f"95% CI {c.interval()}"] if c.low is not None else []) + ([c.verdict()] if c.verdict() else [])
        return f" ({'; '.join(details)})" if details else ""

    ceilings: dict[str, Ceiling] = {}
    for name, row in result["lists"].items():
        ceiling = row_ceiling(result, name)
        if ceiling:
            ceilings[name] = ceiling
        share = shares(row, ceiling)
        cells = [(f"{row[c]:.3f}" + (f" ({100 * share[c]:.0f}%)" if c in share else "")
                  + (ceiling_cell(ceiling) if c == "ceiling" and ceiling else "")) if c in row else "-"
                 for c in present]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    text = ["AUC per list (share of the way from chance to the ceiling, where the ceiling is usable: an "
            f"unseen-unheard list's, its 95% CI at most {CEILING_WIDTH:.2f} wide and above chance; a share above "
            "100% is a score above the ceiling's point value, as a finite list allows). References are fitted on "
            f"the {result['train_identities']} training identities only.", "", *lines]
    notes = ceiling_notes(ceilings)
    if notes:
        text += ["", f"{notes}."]
    if isinstance(result.get("knob_references"), str):
        text += ["", f"Data, face-limited and voice-limited references: {result['knob_references']}."]
    elif any("sides" in result.get("knob_references", {}).get(name, {}) for name in ONE_SIDED):
        fits = result["knob_references"]  # (a table written before issue 22 does not say which sides)
        text += ["", "One-sided references (Gaussian backends, the embedding side LDA-reduced, the knob side whole, "
                 "sizes chosen on validation AUC): " + "; ".join(f"{name.replace('_', '-')} {fits[name]['sides']} "
                                                 f"({fits[name]['side_dims']['voice']} x "
                                                 f"{fits[name]['side_dims']['face']} dimensions, "
                                                 f"{pairs_text(fits[name]['canonical_pairs'])})"
                                                 for name in ONE_SIDED if "sides" in fits.get(name, {})) + "."]
    check = limit_check(result)
    if check is not None:
        text += ["", f"Limits on {LIMIT_LIST} ({'they hold' if check[0] else 'NOT all limits'}; a reference fails "
                 f"where the paired 95% CI of reference - achieved lies below 0): {check[1]}."]
        below = [f"{name} {reference.replace('_', '-')} vs {scoring} {difference:+.3f} ({low:+.3f} to {high:+.3f})"
                 for name, references in result["limits"].items() if name != LIMIT_LIST
                 for reference, by_scoring in references.items()
                 for scoring, (difference, low, high) in by_scoring.items() if difference < 0]
        if below:
            text += ["", "Elsewhere (not checked) a one-sided reference reads below an achieved AUC (reference - "
                     "achieved, paired 95% CI): "
                     + "; ".join(below) + "."]
    probes = result["probes"]
    text += ["", "| probe (held-out identities) | " + " | ".join(probes) + " |", "|---" * (len(probes) + 1) + "|"]
    for key, label in (("gender_auc", "gender AUC"), ("nationality_accuracy", "nationality accuracy"),
                       ("nationality_majority", "nationality, majority class"), ("age_r2", "age R²")):
        if any(p.get(key) is not None for p in probes.values()):
            text.append(f"| {label} | " + " | ".join(f"{p[key]:.3f}" if p.get(key) is not None else "-"
                                                     for p in probes.values()) + " |")
    return "\n".join(text)


# ---------------------------------------------------------------- the frozen priors' own reference


def priors_reference(protocol: Protocol, roots, lists: list[VerificationList], voice_store: str | Path,
                     face_store: str | Path) -> dict:
    """What the frozen priors give with no training of a shared space: a Gaussian backend (``scoring/backend.py``,
    LDA as ``voxface backend fit``) between the voice prior's and the face prior's stored embeddings, fitted on the
    training identities (every stored file of theirs), its sizes chosen on the validation identities, scored on
    every list. Returns ``{"lists": {name: {"auc", "auc_ci95", "trials"}}, "fit": {...}}``; trials with a file
    missing from a store are left out and counted.

    ``voice_store`` / ``face_store``: feature stores (``voxface extract``) of the data under ``roots``.
    """
    from voxface.evaluation.embedding import store_key
    from voxface.features.store import FeatureStore
    from voxface.metrics import delong_interval
    from voxface.protocol import SPLIT_TRAIN, SPLIT_VAL, build_manifest

    stores = {"voice": FeatureStore.open(voice_store), "face": FeatureStore.open(face_store)}
    store_roots = {side: Path(store.meta["root"]).resolve() for side, store in stores.items()}
    where = {"voice": roots.voice, "face": roots.face}

    def vectors(side: str, relative: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(rows of the stored files, mask of the files found)."""
        keys = [store_key(where[side](rel), store_roots[side]) for rel in relative]
        found = np.array([k is not None and k in stores[side] for k in keys], dtype=bool)
        rows = stores[side].vectors([k for k, ok in zip(keys, found, strict=True) if ok], view=0)
        return np.asarray(rows, dtype=np.float64), found

    def split_set(split: int) -> EmbeddingSet:
        manifest = build_manifest(protocol, roots, split)
        parts = {}
        for side in ("voice", "face"):
            items = [(rel, ident.name, ytid) for ident in manifest.identities for ytid, video in ident.videos.items()
                     for rel in (video.voices if side == "voice" else video.faces)]
            rows, found = vectors(side, [rel for rel, _, _ in items])
            kept = [item for item, ok in zip(items, found, strict=True) if ok]
            parts[side] = (unit(rows), np.array([n for _, n, _ in kept]), np.array([y for _, _, y in kept]))
        (v, v_ids, v_videos), (f, f_ids, f_videos) = parts["voice"], parts["face"]
        return EmbeddingSet(v, v_ids, f, f_ids, v_videos, f_videos)

    start = time.perf_counter()
    backend = fit_gaussian_backend(split_set(SPLIT_TRAIN), split_set(SPLIT_VAL), reduce="lda")
    result: dict = {"lists": {}, "fit": {k: backend.info[k] for k in ("reduce", "dims", "side_dims",
                                                                     "canonical_pairs", "val_auc")
                                         if k in backend.info}}
    for trials in lists:
        voices, v_found = vectors("voice", list(trials.voice_files))
        faces, f_found = vectors("face", list(trials.face_files))
        keep = v_found & f_found
        scores = backend.llr(unit(voices[keep[v_found]]), unit(faces[keep[f_found]]))
        labels = trials.labels[keep]
        result["lists"][trials.name] = {"auc": roc_auc(labels, scores), "auc_ci95": list(delong_interval(labels,
                                                                                                        scores)),
                                        "trials": int(keep.sum()), "left_out": int((~keep).sum())}
    result["seconds"] = round(time.perf_counter() - start, 2)
    return result
