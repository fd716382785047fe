"""The oracle ceiling: the best possible scorer for a trial list under the known VoxSynth model.

The oracle knows each sample's knobs (``model.py``) but not whose they are. It scores a trial
(voice knobs v, face knobs f) by the likelihood ratio of "same identity" against "different
identities drawn the way the list draws its negatives" (same gender / nationality / age band / all
three). By the Neyman-Pearson lemma no scorer has a higher AUC in expectation, so the oracle's AUC on
each list is the ceiling a trained model is measured against.

With demographics z on a grid (gender x nationality x whole-year age) and the knobs Gaussian given z:

    p(v, f | same)      = sum_z P(z) N([v; f]; mu(z), Sigma_joint)
    p(v, f | diff, key) = sum_k [sum_{z in k} P(z) N(v; mu_v(z))] [sum_{z in k} P(z) N(f; mu_f(z))] / P(k)

where k runs over the values of the list's constraint key (a single value for the random list).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp

from voxface.protocol.stats import AGE_BANDS
from voxface.synth.model import AGES, GENDERS, NATIONALITIES, IdentityModel, age_prior

# A list's ceiling is measured precisely enough to share the way from chance to it only where its 95% interval is
# at most this wide (``Ceiling``; the evidence: benchmarks/bench_ceiling_precision.py).
CEILING_WIDTH = 0.10
# Constraint keys of the verification groups and matching groups.
CONSTRAINTS = {"random": (), "U": (), "G": ("g",), "N": ("n",), "A": ("a",), "GN": ("g", "n"), "GNA": ("g", "n", "a")}


def age_band_index(age: np.ndarray) -> np.ndarray:
    return np.searchsorted(np.array([high for _, high, _ in AGE_BANDS]), np.asarray(age))


class Oracle:
    """Log likelihood-ratio scores for batches of (voice knobs, face knobs) pairs."""

    def __init__(self, model: IdentityModel) -> None:
        g, n, a = np.meshgrid(np.arange(len(GENDERS)), np.arange(len(NATIONALITIES)), np.arange(len(AGES)),
                              indexing="ij")
        self.g, self.n, self.a = g.ravel(), n.ravel(), AGES[a.ravel()]
        shares = np.array([row[1] for row in NATIONALITIES])
        self.log_prior = (np.log(0.5) + np.log(shares / shares.sum())[self.n] + np.log(age_prior())[a.ravel()])
        self.mu_v = model.voice_mean(self.g, self.n, self.a)
        self.mu_f = model.face_mean(self.g, self.n, self.a)
        vv, ff, vf = model.covariances()
        joint = np.block([[vv, vf], [vf.T, ff]])
        self._gauss = {name: _Gaussian(cov) for name, cov in (("v", vv), ("f", ff), ("joint", joint))}
        self.dv = vv.shape[0]

    def _keys(self, constraint: str) -> np.ndarray:
        fields = CONSTRAINTS[constraint]
        key = np.zeros_like(self.g)
        for name, values, size in (("g", self.g, 2), ("n", self.n, len(NATIONALITIES)),
                                   ("a", age_band_index(self.a), len(AGE_BANDS))):
            if name in fields:
                key = key * size + values
        return key

    def log_lr(self, voice: np.ndarray, face: np.ndarray, constraint: str = "random") -> np.ndarray:
        """(T, voice knobs), (T, face knobs) -> (T,) log p(same) - log p(different | constraint)."""
        voice, face = np.atleast_2d(voice), np.atleast_2d(face)
        joint_mu = np.concatenate([self.mu_v, self.mu_f], axis=1)
        log_same = logsumexp(self.log_prior + self._gauss["joint"].log_pdf(np.concatenate([voice, face], 1), joint_mu),
                             axis=1)
        lv = self.log_prior + self._gauss["v"].log_pdf(voice, self.mu_v)
        lf = self.log_prior + self._gauss["f"].log_pdf(face, self.mu_f)
        _, keys = np.unique(self._keys(constraint), return_inverse=True)
        members = np.zeros((len(keys), keys.max() + 1))
        members[np.arange(len(keys)), keys] = 1.0
        # log sum over each key's grid points as one matrix product (thousands of keys x trials otherwise).
        with np.errstate(divide="ignore"):
            terms = (_log_sum_by_key(lv, members) + _log_sum_by_key(lf, members)
                     - np.log(np.exp(self.log_prior) @ members))
        return log_same - logsumexp(terms, axis=1)


def _log_sum_by_key(log_values: np.ndarray, members: np.ndarray) -> np.ndarray:
    """(T, Z) log values, (Z, K) 0/1 membership -> (T, K) log of the sums within each key."""
    top = log_values.max(axis=1, keepdims=True)
    return np.log(np.exp(log_values - top) @ members) + top


class _Gaussian:
    """log N(x; mu, cov) for every (x, mu) pair via one Cholesky whitening."""

    def __init__(self, cov: np.ndarray) -> None:
        self.inv_chol = np.linalg.inv(np.linalg.cholesky(cov))
        self.const = -0.5 * (np.linalg.slogdet(cov)[1] + cov.shape[0] * np.log(2 * np.pi))

    def log_pdf(self, x: np.ndarray, mu: np.ndarray) -> np.ndarray:
        wx, wm = x @ self.inv_chol.T, mu @ self.inv_chol.T
        sq = (wx**2).sum(1)[:, None] + (wm**2).sum(1)[None, :] - 2 * wx @ wm.T
        return self.const - 0.5 * np.maximum(sq, 0.0)


SEEN_TEST_SET = "seenheard"  # the test set whose identities are the training identities (protocol.lists.TEST_SETS)
NOISE = {  # why a list's oracle value is no ceiling to share the way to (``Ceiling.noise``), as the reports print it
    "seen": "not a ceiling on seen-heard lists: their test identities are the training identities, which a scorer "
            "fitted on them can memorise (the oracle bounds scorers of unseen identities only)",
    "unknown": "too noisy: no 95% CI recorded (an oracle.json from before intervals, with no voxsynth.json beside it "
               "to recompute them from)",
    "wide": f"too noisy: 95% CI wider than {CEILING_WIDTH:.2f} (too few test trials to measure it)",
    "chance": "too noisy: 95% CI includes chance",
}
MARKS = {"seen": "seen: no bound"}  # a ceiling cell's mark per ``NOISE`` kind; every other kind reads "too noisy"


@dataclass(frozen=True)
class Ceiling:
    """One list's oracle ceiling and its 95% DeLong interval (``oracle.json``; the interval is None in a file
    written before intervals were recorded). Build one with ``ceiling_of`` (or ``list_ceiling``), which knows from
    the list's name whether its identities were seen in training.

    The oracle is the best scorer of identities it has not seen (Neyman-Pearson over the generative knobs); on a
    seen-heard list the test identities are the training identities, so a scorer fitted on them can memorise them
    and exceed it: there it is no ceiling. On an unseen-unheard list of a few dozen identities the ceiling
    scatters by several points, even below chance (0.461 on a tiny demo's GNA list). A share of the way from
    chance to the ceiling only means something on an unseen-unheard list whose ceiling is measured precisely: its
    interval at most ``CEILING_WIDTH`` wide and above 0.5 (``noise``). That decision is the list's alone, the same
    in every table; a score on a precise ceiling's list may still land above its point value, as a finite list
    allows (a share above 100%).

    >>> round(Ceiling(0.90, 0.87, 0.93).share(0.70), 3)
    0.5
    >>> Ceiling(0.78, 0.66, 0.90).share(0.60) is None
    True
    >>> ceiling_of("random_seenheard", 0.938, (0.893, 0.983)).noise()
    ('seen', '')
    """

    auc: float
    low: float | None = None
    high: float | None = None
    seen: bool = False

    def noise(self) -> tuple[str, str] | None:
        """Why this list's oracle value is no ceiling to share the way to, as (``NOISE`` key, detail), or None
        where it is one, measured precisely. Depends on the list alone (its test set and its oracle's interval)."""
        if self.seen:
            return "seen", ""
        if self.low is None or self.high is None:
            return "unknown", ""
        if self.high - self.low > CEILING_WIDTH:
            return "wide", f"{self.interval()}"
        if self.low <= 0.5:
            return "chance", f"{self.interval()}"
        return None

    @property
    def usable(self) -> bool:
        """Whether shares of this ceiling mean something: an unseen-unheard list's, measured precisely."""
        return self.noise() is None

    def verdict(self) -> str:
        """``""`` where usable, else ``seen: no bound`` or ``too noisy``: the words every table marks it with."""
        noise = self.noise()
        return "" if noise is None else MARKS.get(noise[0], "too noisy")

    def mark(self) -> str:
        """What a table prints after the ceiling's value: ``""`` where usable, else `` (verdict)``."""
        return f" ({self.verdict()})" if self.verdict() else ""

    def share(self, auc: float) -> float | None:
        """How far from chance (0) to this ceiling (1) ``auc`` lies; None when the ceiling is not usable."""
        return (auc - 0.5) / (self.auc - 0.5) if self.usable else None

    def interval(self, percent: bool = False) -> str:
        """``0.915-0.947`` (``91.5-94.7`` in percent), or ``-`` where the interval is unknown."""
        if self.low is None or self.high is None:
            return "-"
        return f"{100 * self.low:.1f}-{100 * self.high:.1f}" if percent else f"{self.low:.3f}-{self.high:.3f}"


def ceiling_of(name: str, auc: float, interval: tuple | list | None = None) -> Ceiling:
    """The ceiling of the verification list ``name`` (``G_seenheard``, ...) with oracle AUC ``auc`` and its 95%
    interval (low, high; None or (None, None) where unknown): the one place that decides which lists' identities
    were seen in training, so every table makes the same decision per list."""
    seen = SEEN_TEST_SET in name.split("_")
    return Ceiling(auc, *(interval or (None, None)), seen=seen)


def why_no_shares(noisy: Mapping[str, tuple[str, str]]) -> str:
    """One sentence: on which lists the oracle value is no ceiling to share the way to (list -> ``Ceiling.noise``),
    and why.

    >>> print(why_no_shares({"G_seenheard": ("seen", ""), "A_unseenunheard": ("wide", "0.60-0.85")}))
    ... # doctest: +NORMALIZE_WHITESPACE
    No share of chance-to-ceiling: not a ceiling on seen-heard lists: their test identities are the training
    identities, which a scorer fitted on them can memorise (the oracle bounds scorers of unseen identities only) on
    G_seenheard; too noisy: 95% CI wider than 0.10 (too few test trials to measure it) on A_unseenunheard
    (0.60-0.85)
    """
    kinds: dict[str, list[str]] = {}
    for name, (kind, detail) in noisy.items():
        kinds.setdefault(kind, []).append(f"{name} ({detail})" if detail else name)
    return ("No share of chance-to-ceiling: "
            + "; ".join(f"{NOISE[kind]} on {', '.join(names)}" for kind, names in kinds.items()))


def ceiling_notes(ceilings: Mapping[str, Ceiling]) -> str | None:
    """``why_no_shares`` for every list (name -> ceiling) whose ceiling is not usable; None where all are."""
    noisy = {name: noise for name, c in ceilings.items() if (noise := c.noise()) is not None}
    return why_no_shares(noisy) if noisy else None


def list_ceiling(oracle: dict, key: str) -> Ceiling:
    """The ceiling of list ``key`` (``random_unseenunheard``, ...) in a loaded ``oracle.json``."""
    return ceiling_of(key, oracle["verification_auc"][key], oracle.get("verification_auc_ci95", {}).get(key))
