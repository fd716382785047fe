"""Where the points go: the references, the probes and the demographics-only scorer."""

import json
import shutil

import numpy as np
import pytest

from voxface.evaluation.decomposition import (
    COLUMNS,
    LIMIT_LIST,
    REFERENCE_DIMS,
    agreement_scores,
    demographic_probes,
    fit_one_sided,
    format_decomposition,
    limit_check,
)
from voxface.evaluation.evaluate import evaluate
from voxface.metrics import delong_difference, roc_auc
from voxface.scoring.backend import BackendError, EmbeddingSet, fit_gaussian_backend


def _people(n: int, rng: np.random.Generator):
    gender = rng.integers(0, 2, n).astype(bool)
    nationality = rng.choice(np.array(["A", "B", "C"]), n)
    onehot = (nationality[:, None] == np.array(["A", "B", "C"])).astype(float)

    def embed():  # both modalities carry gender and nationality, with their own noise
        return np.c_[2.0 * gender - 1, 1.5 * onehot] + 0.6 * rng.standard_normal((n, 4))

    return gender, nationality, embed(), embed()


def test_demographics_reference_is_chance_on_a_list_constrained_on_its_attribute():
    rng = np.random.default_rng(0)
    gender, nationality, voices, faces = _people(400, rng)
    targets = {"gender": gender[:300], "nationality": nationality[:300]}
    voice_probe = demographic_probes(voices[:300], targets)
    face_probe = demographic_probes(faces[:300], targets)
    test = np.arange(300, 400)
    anyone = rng.choice(test, size=(len(test), 10))
    same_gender = np.array([rng.choice(test[gender[test] == gender[i]], 10) for i in test])

    def auc(negatives: np.ndarray, attribute: str) -> float:
        v = np.r_[test, np.repeat(test, 10)]
        f = np.r_[test, negatives.ravel()]
        labels = v == f
        scores = agreement_scores(voice_probe.predict(voices[v]), face_probe.predict(faces[f]),
                                  voice_probe.classes("nationality"), 1.0)
        return roc_auc(labels, scores[attribute])

    assert auc(anyone, "gender") > 0.7 and auc(anyone, "all") > 0.75  # the random list: demographics help
    assert abs(auc(same_gender, "gender") - 0.5) < 0.05  # the gender-constrained list: gender says nothing
    assert auc(same_gender, "nationality") > 0.6  # while the attribute it does not constrain still helps


def _face_side(identities: int, seed: int):
    """Identities whose true voice knobs hold a latent z exactly, a face teacher T that keeps z in 3 quiet
    directions under 45 loud ones of per-frame nuisance, and a run whose mapping F kept z's directions of T and
    whose voice encoder V reads z with noise."""
    rng = np.random.default_rng(seed)
    ids = np.repeat(np.arange(identities), 4)
    z = rng.standard_normal((identities, 3))[ids]
    knobs = np.c_[z, rng.standard_normal((identities, 3))[ids]] + 0.1 * rng.standard_normal((len(ids), 6))
    teacher = np.c_[0.5 * z + 0.2 * rng.standard_normal(z.shape), 2.0 * rng.standard_normal((len(ids), 45))]
    return ids, knobs, teacher, teacher[:, :3], z + 0.8 * rng.standard_normal(z.shape)


def test_a_one_sided_reference_with_too_little_capacity_falls_below_the_run_and_the_check_says_so():
    (train_ids, train_knobs, train_t, _, _), (val_ids, val_knobs, val_t, _, _) = _face_side(300, 0), _face_side(60, 1)
    ids, knobs, teacher, mapped, voices = _face_side(200, 2)
    rng = np.random.default_rng(3)
    v, f = rng.integers(0, len(ids), 3000), rng.integers(0, len(ids), 3000)
    same = rng.random(3000) < 0.5
    f[same] = [rng.choice(np.flatnonzero(ids == ids[i])) for i in v[same]]
    labels = ids[v] == ids[f]
    achieved = (voices[v] * mapped[f]).sum(1) / np.linalg.norm(voices[v], axis=1) / np.linalg.norm(mapped[f], axis=1)
    train = EmbeddingSet(train_knobs, train_ids, train_t, train_ids)
    val = EmbeddingSet(val_knobs, val_ids, val_t, val_ids)
    # the references before issue 22: T reduced by PCA to a few dimensions, all of them nuisance here
    weak = fit_gaussian_backend(train, val, reduce="pca", dims=(4, 8, 16), normalize=False)
    strong = fit_one_sided(train, val)
    assert strong.info["side_dims"]["voice"] == 6 and strong.info["side_dims"]["face"] in REFERENCE_DIMS  # knobs whole

    def check(reference) -> tuple[bool, str]:
        scores = reference.llr(knobs[v], teacher[f])
        row = {"face_limited": roc_auc(labels, scores), "achieved_cosine": roc_auc(labels, achieved)}
        paired = {"face_limited": {"cosine": list(delong_difference(labels, scores, achieved))}}
        return limit_check({"lists": {LIMIT_LIST: row}, "limits": {LIMIT_LIST: paired}})

    assert roc_auc(labels, achieved) > 0.75
    met, measured = check(weak)  # about 0.50 against the run's 0.83
    assert not met and "below: not a limit" in measured and "vs achieved cosine" in measured
    met, measured = check(strong)  # about 0.97
    assert met and "not a limit" not in measured
    assert limit_check({"lists": {}}) is None  # no knobs: nothing to check


def test_evaluate_breaks_each_list_down_on_voxsynth(tiny_run, trained_checkpoint, tmp_path):
    from voxface.protocol import SPLIT_TRAIN, load_protocol

    root, _ = tiny_run
    data, lists = root / "voxsynth", root / "voxsynth" / "protocol"
    result = evaluate(trained_checkpoint, data, lists, out=tmp_path, workers=0)
    table = result.decomposition["lists"]
    assert set(table) == set(result.verification)
    for row in table.values():
        # every reference on VoxSynth; no backend here, and the frozen priors' column is the demo's (priors_reference)
        assert set(row) == set(COLUMNS) - {"achieved_backend", "priors_backend"}
        assert all(0 <= value <= 1 for value in row.values())
    assert set(result.decomposition["probes"]) == {"T", "F", "V"}
    assert {"gender_auc", "nationality_accuracy", "age_r2"} <= set(result.decomposition["probes"]["V"])
    protocol = load_protocol(lists)
    assert result.decomposition["train_identities"] == len(protocol.identities_in_split(SPLIT_TRAIN))
    assert result.encoded["teacher"] == 0  # the teacher's T came with every face's F
    saved = json.loads((tmp_path / "evaluation.json").read_text())
    assert saved["decomposition"]["lists"]["random_unseenunheard"]["ceiling"] > 0.5
    assert (tmp_path / "plots" / "decomposition.png").is_file()
    text = format_decomposition(result.decomposition)
    # each list gives its shares of chance-to-ceiling, or its ceiling is marked and named below the table: every
    # seen-heard list as no bound (its identities can be memorised), an unseen-unheard one where too noisy
    notes = next((x for x in text.splitlines() if x.startswith("No share of chance-to-ceiling")), "")
    for name in table:
        line = next(x for x in text.splitlines() if x.startswith(f"| {name} |"))
        marked = "seen: no bound)" in line if name.endswith("_seenheard") else "too noisy)" in line
        assert ("%)" in line) != marked and marked == (f" {name}" in notes), line
    assert "lands above" not in text
    # each one-sided reference against the run on the same trials (cosine only: no backend scored here)
    limits = result.decomposition["limits"]
    assert set(limits) == set(table) and set(limits[LIMIT_LIST]) == {"face_limited", "voice_limited"}
    for name in ("face_limited", "voice_limited"):
        difference, low, high = limits[LIMIT_LIST][name]["cosine"]
        assert difference == pytest.approx(table[LIMIT_LIST][name] - table[LIMIT_LIST]["achieved_cosine"])
        assert low < difference < high
    fits = result.decomposition["knob_references"]
    assert fits["face_limited"]["sides"] == "true voice knobs x [T, F]" and fits["face_limited"]["reduce"] == "lda"
    assert fits["face_limited"]["side_dims"]["voice"] == 8  # the knobs stay whole
    assert f"Limits on {LIMIT_LIST}" in text and "face-limited true voice knobs x [T, F]" in text


def test_a_reference_cannot_see_test_identities(tiny_run, trained_checkpoint, tmp_path, monkeypatch):
    import voxface.protocol
    from voxface.protocol import SPLIT_TEST

    root, _ = tiny_run
    real_build = voxface.protocol.build_manifest

    def planted(protocol, roots, split=1, exclude_seen_heard=None):
        manifest = real_build(protocol, roots, split, exclude_seen_heard)
        if split == 1:  # a test identity slipped into the training identities
            manifest.identities.append(real_build(protocol, roots, SPLIT_TEST).identities[0])
        return manifest

    monkeypatch.setattr(voxface.protocol, "build_manifest", planted)
    with pytest.raises(BackendError, match="test .*identities"):
        evaluate(trained_checkpoint, root / "voxsynth", root / "voxsynth" / "protocol", workers=0)
    monkeypatch.undo()
    # Without the knobs (real data), the references are skipped with one line; probes still run.
    lists = tmp_path / "protocol"
    shutil.copytree(root / "voxsynth" / "protocol", lists)
    result = evaluate(trained_checkpoint, root / "voxsynth", lists, workers=0)
    assert "not computed: the data have no true voice and face parameters" in result.decomposition["knob_references"]
    assert set(result.decomposition["lists"]["random_unseenunheard"]) == {"demographics", "achieved_cosine"}
    assert "limits" not in result.decomposition and limit_check(result.decomposition) is None
    assert "Data, face-limited and voice-limited references: not computed" in format_decomposition(
        result.decomposition)
