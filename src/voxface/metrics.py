"""Verification, matching and retrieval metrics, with DeLong's or bootstrap confidence intervals.

Cllr (Brümmer & du Preez 2006) measures log-likelihood-ratio scores as probabilities: 0 is perfect, 1 is a
scorer that always says "no idea". minCllr is the Cllr after the best monotone recalibration (PAV), the part
of the loss that discrimination alone leaves; Cllr - minCllr is what the calibration loses.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np


def _rankdata(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties given their mean rank (scipy.stats.rankdata, imported here: scipy.stats takes seconds to
    import, and a command that loads a model needs no metric)."""
    from scipy.stats import rankdata as ranks

    return ranks(values)


def _normal_quantile(p: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(p))


def _check(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labels, scores = np.asarray(labels).astype(bool), np.asarray(scores, dtype=np.float64)
    if labels.shape != scores.shape or labels.ndim != 1:
        raise ValueError(f"labels {labels.shape} and scores {scores.shape} must be equal-length vectors")
    if labels.all() or not labels.any():
        raise ValueError("AUC and EER need both positive and negative trials")
    if not np.isfinite(scores).all():
        raise ValueError("scores contain NaN or infinite values")
    return labels, scores


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve by the rank-sum (Mann-Whitney) formula, ties counted half."""
    labels, scores = _check(labels, scores)
    ranks = _rankdata(scores)
    positives = labels.sum()
    negatives = len(labels) - positives
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def equal_error_rate(labels: np.ndarray, scores: np.ndarray) -> float:
    """The rate where false acceptance equals false rejection, interpolated on the ROC curve."""
    from sklearn.metrics import roc_curve  # sklearn takes a second to import: only where a metric needs it

    labels, scores = _check(labels, scores)
    fpr, tpr, _ = roc_curve(labels, scores)
    fnr = 1 - tpr
    i = int(np.flatnonzero(fnr <= fpr)[0])  # the first point past the crossing
    if i == 0:
        return float(fpr[0])
    # interpolate between points i-1 and i, where (fnr - fpr) changes sign
    d0, d1 = fnr[i - 1] - fpr[i - 1], fnr[i] - fpr[i]
    t = d0 / (d0 - d1) if d0 != d1 else 0.0
    return float(fpr[i - 1] + t * (fpr[i] - fpr[i - 1]))


def cllr(labels: np.ndarray, llr: np.ndarray) -> float:
    """Cllr in bits of natural-log likelihood ratios: targets and non-targets weigh half each."""
    return _cllr_bits(*_check(labels, llr))


def _cllr_bits(labels: np.ndarray, llr: np.ndarray) -> float:
    with np.errstate(over="ignore"):
        miss = np.logaddexp(0.0, -llr[labels]).mean()  # log(1 + e^-llr): a target called unlikely
        false_alarm = np.logaddexp(0.0, llr[~labels]).mean()
    return float((miss + false_alarm) / (2 * np.log(2)))


def min_cllr(labels: np.ndarray, scores: np.ndarray) -> float:
    """Cllr after the optimal monotone map from scores to log-likelihood ratios (pool-adjacent-violators)."""
    from sklearn.isotonic import IsotonicRegression

    labels, scores = _check(labels, scores)
    posterior = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True).fit_transform(scores, labels)
    prior_odds = labels.mean() / (1 - labels.mean())
    with np.errstate(divide="ignore"):
        # PAV's posteriors carry the trial list's own prior; dividing its odds out leaves likelihood ratios.
        # A block of only targets (non-targets) gets +inf (-inf): right answers that cost nothing.
        llr = np.log(posterior) - np.log1p(-posterior) - np.log(prior_odds)
    return _cllr_bits(labels, llr)


def _placements(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DeLong's structural components (midranks as in Sun & Xu 2014): per target the share of non-targets scored
    below it, per non-target the share of targets scored above it (ties half); each averages to the AUC."""
    positives, negatives = scores[labels], scores[~labels]
    m, n = len(positives), len(negatives)
    ranks = _rankdata(scores)
    return (ranks[labels] - _rankdata(positives)) / n, 1 - (ranks[~labels] - _rankdata(negatives)) / m


def _placement_variance(placement_pos: np.ndarray, placement_neg: np.ndarray) -> float:
    m, n = len(placement_pos), len(placement_neg)
    return float((placement_pos.var(ddof=1) if m > 1 else 0.0) / m + (placement_neg.var(ddof=1) if n > 1 else 0.0) / n)


def delong_interval(labels: np.ndarray, scores: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """DeLong's analytic interval of the AUC (DeLong et al. 1988; midranks as in Sun & Xu 2014): the AUC's
    variance from each trial's placement among the other class, normal approximation, clipped to [0, 1]."""
    labels, scores = _check(labels, scores)
    placement_pos, placement_neg = _placements(labels, scores)
    auc = placement_pos.mean()
    half = _normal_quantile(0.5 + confidence / 2) * np.sqrt(_placement_variance(placement_pos, placement_neg))
    return float(max(0.0, auc - half)), float(min(1.0, auc + half))


def delong_difference(labels: np.ndarray, scores_a: np.ndarray, scores_b: np.ndarray,
                      confidence: float = 0.95) -> tuple[float, float, float]:
    """AUC(a) - AUC(b) of two scorings of the same trials and its interval, (difference, low, high): DeLong et
    al. 1988's test of correlated AUCs, the variance of the difference from the trials' paired placements, so
    what the two scorings share of the trials' luck cancels. Normal approximation."""
    difference, sd = _paired_difference(labels, scores_a, scores_b)
    half = _normal_quantile(0.5 + confidence / 2) * sd
    return difference, float(difference - half), float(difference + half)


def delong_test(labels: np.ndarray, scores_a: np.ndarray, scores_b: np.ndarray) -> tuple[float, float]:
    """(AUC(a) - AUC(b), two-sided p-value) of two scorings of the same trials: DeLong et al. 1988's test of
    correlated AUCs, z = difference / its standard deviation (``delong_difference``'s), normal approximation. Two
    identical scorings (a zero variance and difference) give p = 1."""
    difference, sd = _paired_difference(labels, scores_a, scores_b)
    if sd == 0.0:
        return difference, 1.0 if difference == 0.0 else 0.0
    return difference, float(math.erfc(abs(difference) / sd / math.sqrt(2)))  # two-sided normal tail


def _paired_difference(labels: np.ndarray, scores_a: np.ndarray, scores_b: np.ndarray) -> tuple[float, float]:
    """AUC(a) - AUC(b) and its standard deviation from the trials' paired placements (DeLong et al. 1988)."""
    labels, scores_a = _check(labels, scores_a)
    _, scores_b = _check(labels, scores_b)
    pos_a, neg_a = _placements(labels, scores_a)
    pos_b, neg_b = _placements(labels, scores_b)
    return float(pos_a.mean() - pos_b.mean()), float(np.sqrt(_placement_variance(pos_a - pos_b, neg_a - neg_b)))


def bootstrap_interval(labels: np.ndarray, scores: np.ndarray, metric=roc_auc, resamples: int = 1000,
                       confidence: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of ``metric`` over trials resampled with replacement."""
    labels, scores = _check(labels, scores)
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(resamples):
        index = rng.integers(0, len(labels), len(labels))
        if labels[index].all() or not labels[index].any():
            continue
        values.append(metric(labels[index], scores[index]))
    low, high = np.percentile(values, [100 * (1 - confidence) / 2, 100 * (1 + confidence) / 2])
    return float(low), float(high)


def matching_accuracy(right_scores: np.ndarray, wrong_scores: np.ndarray) -> float:
    """1:2 matching: the share of trials where the correct candidate scores higher (ties count half)."""
    right, wrong = np.asarray(right_scores, dtype=np.float64), np.asarray(wrong_scores, dtype=np.float64)
    if right.shape != wrong.shape or right.size == 0:
        raise ValueError("matching needs equal, non-empty score vectors")
    return float(np.mean((right > wrong) + 0.5 * (right == wrong)))


def proportion_interval(share: float, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson's score interval of a proportion (e.g. a 1:2 matching accuracy) measured on ``trials`` trials.

    >>> [round(x, 3) for x in proportion_interval(0.5, 100)]
    [0.404, 0.596]
    """
    if trials < 1:
        raise ValueError("a proportion needs at least one trial")
    z = _normal_quantile(0.5 + confidence / 2)
    centre = (share + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * np.sqrt(share * (1 - share) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return float(centre - half), float(centre + half)


def retrieval(queries: np.ndarray, query_ids: np.ndarray, gallery: np.ndarray, gallery_ids: np.ndarray,
              ks: tuple[int, ...] = (1, 5, 10), block: int = 256) -> dict[str, float]:
    """Mean average precision and recall@k of cosine retrieval (a hit: any gallery item of the query's identity).

    The gallery is ranked by descending cosine (float32), ties in gallery order. Each item gets one integer key whose
    ascending order is that ranking (the cosine's bits, order-preserving, above the item's column), so a relevant
    item's rank is its key's place in the sorted row: no argsort of the whole row, and exact ties (the same file
    twice, copies of one clip) cost nothing extra. Only the relevant items' ranks enter the metrics. Queries go
    ``block`` at a time, so the memory stays that of ``block`` rows (whole matrices of VoxCeleb1's unseen-unheard
    voices and faces took several GB). ValueError when a query has no gallery item of its identity.

    Example:
        >>> x = np.eye(3)
        >>> retrieval(x, np.array([0, 1, 2]), x, np.array([0, 1, 2]))
        {'mAP': 1.0, 'R@1': 1.0, 'R@5': 1.0, 'R@10': 1.0}
    """
    q = np.asarray(queries, dtype=np.float32)
    g = np.asarray(gallery, dtype=np.float32)
    q = q / np.linalg.norm(q, axis=1, keepdims=True)
    g = g / np.linalg.norm(g, axis=1, keepdims=True)
    query_ids, gallery_ids = np.asarray(query_ids), np.asarray(gallery_ids)
    items = {identity: np.flatnonzero(gallery_ids == identity) for identity in np.unique(query_ids)}
    if any(not len(rows) for rows in items.values()):
        raise ValueError("every query needs at least one gallery item of its identity")
    precisions, firsts = np.empty(len(q)), np.empty(len(q), dtype=np.int64)
    columns = np.arange(len(g), dtype=np.uint64)

    def rank_block(start: int) -> None:
        scores = q[start:start + block] @ g.T + np.float32(0)  # (B, n); + 0 makes -0.0 the +0.0 it equals
        bits = scores.view(np.uint32)
        # IEEE-754 bits made order-preserving (negatives: all bits flipped; others: the sign bit set), then
        # complemented so that ascending keys mean descending cosine; the column below breaks ties in gallery order
        descending = np.where(bits >> 31, bits, ~(bits | np.uint32(0x80000000)))
        keys = (descending.astype(np.uint64) << np.uint64(32)) | columns
        ranked = np.sort(keys, axis=1)
        # every (query, relevant gallery item) pair of the block, query by query
        counts = np.array([len(items[identity]) for identity in query_ids[start:start + block]])
        offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
        rows = np.repeat(np.arange(len(keys)), counts)
        cols = np.concatenate([items[identity] for identity in query_ids[start:start + block]])
        mine = keys[rows, cols]
        position = np.empty(len(cols), dtype=np.int64)
        for row, (first, count) in enumerate(zip(offsets, counts, strict=True)):  # one search a query
            part = slice(first, first + count)
            position[part] = np.searchsorted(ranked[row], mine[part]) + 1
        # the same order among each query's relevant items alone
        hits = np.empty(len(cols), dtype=np.int64)
        hits[np.lexsort((mine, rows))] = np.arange(len(cols)) - np.repeat(offsets, counts) + 1
        precisions[start:start + len(keys)] = np.add.reduceat(hits / position, offsets) / counts
        firsts[start:start + len(keys)] = np.minimum.reduceat(position, offsets)  # the first hit's rank

    # Blocks on every core, each block's product on one BLAS thread (a BLAS pool per worker thread oversubscribed
    # the cores: 1.5x slower at VoxCeleb1's size); the row sorts release the interpreter's lock.
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1), ThreadPoolExecutor(max(1, min(len(os.sched_getaffinity(0)),
                                                             -(-len(q) // block)))) as pool:
        list(pool.map(rank_block, range(0, len(q), block)))
    result = {"mAP": float(precisions.mean())}
    for k in ks:
        result[f"R@{k}"] = float((firsts <= min(k, len(g))).mean())
    return result
