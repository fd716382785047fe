"""scoring/: numpy on sets of embeddings. The Gaussian backend has tests/test_backend.py; here the probes."""

import numpy as np
import pytest

from voxface.metrics import roc_auc
from voxface.scoring.probes import BINARY, CATEGORICAL, CONTINUOUS, LinearProbes


def _identities(n: int, seed: int):
    rng = np.random.default_rng(seed)
    gender = rng.integers(0, 2, n).astype(bool)
    nationality = rng.choice(np.array(["A", "B", "C"]), n, p=[0.5, 0.3, 0.2])
    age = rng.uniform(20, 70, n)
    onehot = nationality[:, None] == np.array(["A", "B", "C"])
    x = np.c_[2.0 * gender - 1, 2.0 * onehot, (age - 45) / 15, rng.standard_normal((n, 4))]
    return x + 0.3 * rng.standard_normal(x.shape), {"gender": gender, "nationality": nationality, "age": age}


def test_probes_read_each_kind_and_report_it_on_held_out_rows():
    x, targets = _identities(400, 0)
    fit = {k: v[:300] for k, v in targets.items()}
    held = {k: v[300:] for k, v in targets.items()}
    kinds = {"gender": BINARY, "nationality": CATEGORICAL, "age": CONTINUOUS}
    for settings in ({}, {"standardize": True, "cross_validate": True}):
        probes = LinearProbes(kinds, **settings).fit(x[:300], fit)
        report = probes.report(x[300:], held)
        assert list(report) == ["gender_auc", "nationality_accuracy", "nationality_majority", "age_r2"]
        assert report["gender_auc"] > 0.98 and report["age_r2"] > 0.85
        assert report["nationality_accuracy"] > 0.9 > report["nationality_majority"]
        predicted = probes.predict(x[300:])
        assert predicted["nationality"].shape == (100, 3) and list(probes.classes("nationality")) == ["A", "B", "C"]
        assert np.allclose(predicted["nationality"].sum(1), 1)
        assert roc_auc(held["gender"], predicted["gender"]) == pytest.approx(report["gender_auc"])
        assert probes.variance["age"] == pytest.approx(np.var(fit["age"]))
    noise = np.random.default_rng(1).standard_normal(x.shape)
    blind = LinearProbes(kinds).fit(noise[:300], fit).report(noise[300:], held)
    assert abs(blind["gender_auc"] - 0.5) < 0.15 and blind["age_r2"] < 0.05


def test_a_probe_without_two_classes_to_fit_or_score_says_none():
    x, targets = _identities(60, 2)
    few = {"gender": np.r_[np.ones(57, bool), np.zeros(3, bool)]}  # 3 of one gender: too few for 5 folds
    probes = LinearProbes({"gender": BINARY}, cross_validate=True).fit(x, few)
    assert probes.report(x, few) == {"gender_auc": None} and probes.predict(x) == {}
    fitted = LinearProbes({"gender": BINARY}).fit(x, few)  # fixed penalties: two classes are enough
    assert fitted.report(x[:10], {"gender": np.ones(10, bool)}) == {"gender_auc": None}  # one class held out
    absent = LinearProbes({"gender": BINARY, "age": CONTINUOUS}).fit(x, {"gender": targets["gender"]})
    assert set(absent.report(x, targets)) == {"gender_auc"}  # a target the fitting data lack is left out
    with pytest.raises(ValueError, match="probe kinds must be one of"):
        LinearProbes({"gender": "ordinal"})
