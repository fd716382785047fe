"""Linear probes: what an embedding says about its identity, fitted on some identities and scored on others.

Each target has a kind, which sets its model and its score on held-out rows:

- ``"binary"`` (e.g. gender): logistic regression, scored by AUC (``metrics.roc_auc`` of its decision values);
- ``"categorical"`` (e.g. nationality): multinomial logistic regression, scored by accuracy, beside the share of
  the majority class (what guessing it would score);
- ``"continuous"`` (e.g. age, a face knob): ridge regression, scored by R².

Two settings. ``standardize`` scales each feature to zero mean and unit variance on the fitting rows (a unit-norm
embedding has entries near 1/sqrt(D), too small for a fixed penalty). ``cross_validate`` chooses the penalties on
the fitting rows instead of fixing them (C = 1, alpha = 1): logistic C over 10^-3..10^2 by 5-fold cross-validation
(AUC for a binary target, accuracy for a categorical one), ridge alpha over 10^-3..10^3 by leave-one-out
(``RidgeCV``'s closed form). A logistic target is fitted only where the fitting rows hold two classes or more
(with ``cross_validate``, at least 5 rows of each); its score is None where it was not fitted or the held-out rows
hold one class.

>>> rng = np.random.default_rng(0)
>>> x = rng.standard_normal((300, 6))
>>> targets = {"gender": x[:, 0] > 0, "age": 40 + 10 * x[:, 1] + rng.standard_normal(300)}
>>> probes = LinearProbes({"gender": BINARY, "age": CONTINUOUS})
>>> report = probes.fit(x[:200], {k: v[:200] for k, v in targets.items()}).report(
...     x[200:], {k: v[200:] for k, v in targets.items()})
>>> sorted(report), report["gender_auc"] > 0.95, report["age_r2"] > 0.95
(['age_r2', 'gender_auc'], True, True)
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression, Ridge, RidgeCV
from sklearn.metrics import make_scorer, r2_score
from sklearn.model_selection import GridSearchCV
from sklearn.preprocessing import StandardScaler

from voxface.metrics import roc_auc

BINARY, CATEGORICAL, CONTINUOUS = "binary", "categorical", "continuous"
KINDS = (BINARY, CATEGORICAL, CONTINUOUS)
CV_FOLDS = 5
LOGISTIC_C = np.logspace(-3, 2, 11)  # the grid cross-validation chooses logistic penalties from
RIDGE_ALPHAS = np.logspace(-3, 3, 13)
MAX_ITER = 5000  # lbfgs iterations: enough to converge on standardised or unit-norm embeddings


class LinearProbes:
    """Linear probes of one embedding for named targets (module docstring): ``fit`` on some rows, then
    ``predict`` or ``report`` on others. ``kinds``: target name -> "binary" | "categorical" | "continuous";
    a target the fitting data lack is left out. Raises ``ValueError`` for an unknown kind."""

    def __init__(self, kinds: dict[str, str], standardize: bool = False, cross_validate: bool = False) -> None:
        unknown = {name: kind for name, kind in kinds.items() if kind not in KINDS}
        if unknown:
            raise ValueError(f"probe kinds must be one of {', '.join(KINDS)}, got {unknown}")
        self.kinds, self.standardize, self.cross_validate = dict(kinds), standardize, cross_validate
        self.scaler: StandardScaler | None = None
        self.models: dict[str, LogisticRegression | Ridge | None] = {}  # None: too few classes to fit
        self.variance: dict[str, float] = {}  # each continuous target's variance on the fitting rows

    def _features(self, x: np.ndarray) -> np.ndarray:
        return self.scaler.transform(x) if self.scaler is not None else np.asarray(x)

    def fit(self, x: np.ndarray, targets: dict[str, np.ndarray]) -> LinearProbes:
        """Fit every target ``targets`` holds on rows ``x`` (N, D); each target an (N,) vector. Returns self."""
        self.scaler = StandardScaler().fit(x) if self.standardize else None
        x = self._features(x)
        self.models, self.variance = {}, {}
        for name, kind in self.kinds.items():
            if name not in targets:
                continue
            y = np.asarray(targets[name])
            if kind == CONTINUOUS:
                self.variance[name] = float(np.var(y))
                ridge = RidgeCV(alphas=RIDGE_ALPHAS) if self.cross_validate else Ridge(alpha=1.0)
                self.models[name] = ridge.fit(x, y)
                continue
            counts = np.unique(y, return_counts=True)[1]
            if len(counts) < 2 or (self.cross_validate and counts.min() < CV_FOLDS):
                self.models[name] = None
            elif self.cross_validate:
                scoring = make_scorer(roc_auc, response_method="decision_function") if kind == BINARY else "accuracy"
                search = GridSearchCV(LogisticRegression(max_iter=MAX_ITER), {"C": LOGISTIC_C}, scoring=scoring,
                                      cv=CV_FOLDS)
                self.models[name] = search.fit(x, y).best_estimator_
            else:
                self.models[name] = LogisticRegression(max_iter=MAX_ITER).fit(x, y)
        return self

    def classes(self, name: str) -> np.ndarray | None:
        """The classes of a fitted binary or categorical target, in the order ``predict``'s columns take."""
        model = self.models.get(name)
        return None if model is None else model.classes_

    def predict(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Per fitted target: a binary one's probability of its second class (N,), a categorical one's class
        probabilities (N, classes), a continuous one's value (N,)."""
        x = self._features(x)
        out = {}
        for name, model in self.models.items():
            if model is None:
                continue
            kind = self.kinds[name]
            out[name] = (model.predict(x) if kind == CONTINUOUS else
                         model.predict_proba(x)[:, 1] if kind == BINARY else model.predict_proba(x))
        return out

    def report(self, x: np.ndarray, targets: dict[str, np.ndarray]) -> dict[str, float | None]:
        """Scores on held-out rows for every fitted target that ``targets`` holds: ``<name>_auc`` (binary),
        ``<name>_accuracy`` and ``<name>_majority`` (categorical), ``<name>_r2`` (continuous); None where the
        target could not be fitted or the held-out rows hold one class of it."""
        x = self._features(x)
        result: dict[str, float | None] = {}
        for name, model in self.models.items():
            if name not in targets:
                continue
            y, kind = np.asarray(targets[name]), self.kinds[name]
            if kind == CONTINUOUS:
                result[f"{name}_r2"] = float(r2_score(y, model.predict(x)))
            elif kind == BINARY:
                scorable = model is not None and len(np.unique(y)) > 1
                result[f"{name}_auc"] = (roc_auc(y == model.classes_[1], model.decision_function(x)) if scorable
                                         else None)
            else:
                counts = np.unique(y, return_counts=True)[1]
                result[f"{name}_accuracy"] = float((model.predict(x) == y).mean()) if model is not None else None
                result[f"{name}_majority"] = float(counts.max() / counts.sum()) if model is not None else None
        return result
