"""Where the points go: the references, the probes and the demographics-only scorer."""

import json
import shutil

import numpy as np
import pytest

from voxface.evaluation.backend import BackendError
from voxface.evaluation.decomposition import COLUMNS, DemographicProbe, agreement_scores, format_decomposition
from voxface.evaluation.evaluate import evaluate
from voxface.evaluation.metrics import roc_auc


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
    voice_probe = DemographicProbe.fit(voices[:300], targets)
    face_probe = DemographicProbe.fit(faces[:300], targets)
    test = np.arange(300, 400)
    anyone = rng.choice(test, size=(len(test), 10))
    same_gender = np.array([rng.choice(test[gender[test] == gender[i]], 10) for i in test])

    def auc(negatives: np.ndarray, attribute: str) -> float:
        v = np.r_[test, np.repeat(test, 10)]
        f = np.r_[test, negatives.ravel()]
        labels = v == f
        scores = agreement_scores(voice_probe.predict(voices[v]), face_probe.predict(faces[f]),
                                  voice_probe.nationality.classes_, 1.0)
        return roc_auc(labels, scores[attribute])

    assert auc(anyone, "gender") > 0.7 and auc(anyone, "all") > 0.75  # the random list: demographics help
    assert abs(auc(same_gender, "gender") - 0.5) < 0.05  # the gender-constrained list: gender says nothing
    assert auc(same_gender, "nationality") > 0.6  # while the attribute it does not constrain still helps


def test_evaluate_breaks_each_list_down_on_voxsynth(tiny_run, trained_checkpoint, tmp_path):
    from voxface.protocol import SPLIT_TRAIN, load_protocol

    root, _ = tiny_run
    data, lists = root / "voxsynth", root / "voxsynth" / "protocol"
    result = evaluate(trained_checkpoint, data, lists, out=tmp_path, workers=0)
    table = result.decomposition["lists"]
    assert set(table) == set(result.verification)
    for row in table.values():
        assert set(row) == set(COLUMNS) - {"achieved_backend"}  # every reference on VoxSynth; no backend here
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
    assert "| random_unseenunheard |" in text and "%)" in text


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
    assert "Data, face-limited and voice-limited references: not computed" in format_decomposition(
        result.decomposition)
