"""Figures: ROC curves per group, score distributions, and the paper's Fig. 4 (PCA of voice embeddings)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_roc(scores: dict[str, tuple[np.ndarray, np.ndarray]], path: Path, title: str) -> Path:
    """One ROC curve per list: ``{name: (labels, scores)}``."""
    from sklearn.metrics import roc_curve

    from voxface.evaluation.metrics import roc_auc

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 5))
    for name, (labels, values) in scores.items():
        fpr, tpr, _ = roc_curve(labels, values)
        ax.plot(fpr, tpr, label=f"{name} (AUC {roc_auc(labels, values):.3f})")
    ax.plot([0, 1], [0, 1], "k:", linewidth=0.8)
    ax.set(xlabel="false acceptance rate", ylabel="true acceptance rate", title=title)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_distributions(scores: dict[str, tuple[np.ndarray, np.ndarray]], path: Path, title: str) -> Path:
    """Positive and negative cosine-score histograms per list."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(scores), figsize=(3 * len(scores), 2.8), squeeze=False, sharey=True)
    for ax, (name, (labels, values)) in zip(axes[0], scores.items(), strict=True):
        labels = np.asarray(labels).astype(bool)
        bins = np.linspace(values.min(), values.max(), 30)
        ax.hist(values[labels], bins=bins, alpha=0.6, label="same identity", density=True)
        ax.hist(values[~labels], bins=bins, alpha=0.6, label="different", density=True)
        ax.set_title(name, fontsize=8)
        ax.set_xlabel("cosine score", fontsize=8)
    axes[0, 0].legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_pca(before: dict[str, np.ndarray] | None, after: dict[str, np.ndarray], path: Path) -> Path:
    """Paper Fig. 4: voice embeddings of a few identities in 2-D PCA, before (when known) and after training."""
    plt = _pyplot()
    panels = ([("before training", before)] if before is not None else []) + [("after training", after)]
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 4), squeeze=False)
    axes = axes[0]
    for ax, (label, groups) in zip(axes, panels, strict=True):
        stacked = np.concatenate(list(groups.values()))
        centred = stacked - stacked.mean(0)
        _, _, components = np.linalg.svd(centred, full_matrices=False)
        for name, matrix in groups.items():
            points = (matrix - stacked.mean(0)) @ components[:2].T
            ax.scatter(points[:, 0], points[:, 1], s=18, label=name)
        ax.set_title(label)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[-1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def similarity_matrices(teacher: np.ndarray, faces: np.ndarray, voices: np.ndarray) -> dict[str, np.ndarray]:
    """Cosine-similarity matrices between identities (rows: per-identity mean embeddings)."""
    def cosine(x: np.ndarray) -> np.ndarray:
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
        return x @ x.T

    return {"teacher T": cosine(teacher), "mapped faces F": cosine(faces), "voices V": cosine(voices)}


def plot_similarity(rows: dict[str, dict[str, np.ndarray]], path: Path,
                    groups: list[tuple[str, str]] | None = None) -> Path:
    """Fig. 5-style view: per run (a row), the identity-by-identity similarity of T, F and V, on one cosine
    colour scale. ``groups`` gives each identity's (gender, nationality) in the matrices' order (sorted by
    them): gender boundaries are drawn as black lines, nationality ones as thin grey lines, so demographic
    blocks show.

    With RKD, F keeps T's structure; without it, F is free to drift (paper section 6.2.2)."""
    plt = _pyplot()
    fig, axes = plt.subplots(len(rows), 3, figsize=(10, 3.2 * len(rows)), squeeze=False)
    image = None
    for r, (run, matrices) in enumerate(rows.items()):
        for c, (label, matrix) in enumerate(matrices.items()):
            ax = axes[r, c]
            image = ax.imshow(matrix, vmin=-1, vmax=1, cmap="RdBu_r")
            ax.set_title(f"{run}: {label}" if c == 0 else label, fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
            for i in range(1, len(groups or [])):
                if groups[i] == groups[i - 1]:
                    continue
                gender_changes = groups[i][0] != groups[i - 1][0]
                style = {"color": "black", "linewidth": 1.2} if gender_changes else {"color": "0.5", "linewidth": 0.4}
                ax.axhline(i - 0.5, **style)
                ax.axvline(i - 0.5, **style)
            if groups and c == 0:
                ax.set_yticks(range(len(groups)), [f"{g} {n}" for g, n in groups], fontsize=5)
    if image is not None:
        fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8, label="cosine similarity")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_decomposition(runs: dict[str, dict], path: Path) -> Path:
    """Per list, bars for the ceiling, the references and the achieved AUC (``decomposition.COLUMNS``); one
    panel per run (``{run: evaluation's decomposition dict}``), so ``voxface report`` stacks runs."""
    from voxface.evaluation.decomposition import COLUMNS

    plt = _pyplot()
    fig, axes = plt.subplots(len(runs), 1, figsize=(12, 3.4 * len(runs)), squeeze=False)
    for ax, (run, result) in zip(axes[:, 0], runs.items(), strict=True):
        lists = list(result["lists"])
        present = [c for c in COLUMNS if any(c in result["lists"][n] for n in lists)]
        width = 0.85 / len(present)
        for j, column in enumerate(present):
            values = [result["lists"][n].get(column, np.nan) for n in lists]
            ax.bar(np.arange(len(lists)) + (j - (len(present) - 1) / 2) * width, np.array(values) - 0.5, width,
                   bottom=0.5, label=COLUMNS[column], color=plt.get_cmap("tab10")(j))
        ax.axhline(0.5, color="black", linewidth=0.8)
        ax.set_xticks(range(len(lists)), [n.replace("_", "\n") for n in lists], fontsize=7)
        ax.set_ylim(0.4, 1.15)  # room above the bars for the legend
        ax.set_ylabel("AUC")
        ax.set_title(f"{run}: where the points go", fontsize=9)
    axes[0, 0].legend(fontsize=7, ncol=4, loc="upper center")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
