"""Figures: ROC curves and score distributions per test set, the paper's Fig. 4 (PCA of voice embeddings), a
Fig. 5-style similarity view and the decomposition's bars.

Each ``*_figure`` function builds a matplotlib Figure that reads on its own: it names the run and the test set,
labels its axes (with units where there are any) and carries one legend where one applies to every panel.
``save_figure`` writes it. Tests read the figures' artists (titles, labels, legends), not their pixels.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

TEST_SET_NAMES = {"unseenunheard": "unseen-unheard", "seenheard": "seen-heard"}
GROUP_NAMES = {"random": "random (U)", "G": "same gender (G)", "N": "same nationality (N)", "A": "same age band (A)",
               "GNA": "all three (GNA)"}
SCORE_NAMES = {"cosine": "cosine similarity (-1 to 1)", "backend": "log-likelihood ratio (nats)"}


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def list_label(key: str) -> str:
    """``GNA_seenheard`` -> ``all three (GNA), seen-heard``."""
    group, _, test_set = key.partition("_")
    return ", ".join(filter(None, (GROUP_NAMES.get(group, group), TEST_SET_NAMES.get(test_set, test_set))))


def save_figure(fig: Figure, path: str | Path, dpi: int = 100) -> Path:
    """Write ``fig`` to ``path`` and free it."""
    plt = pyplot()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return Path(path)


def roc_figure(scores: dict[str, tuple[np.ndarray, np.ndarray]], run: str, test_set: str) -> Figure:
    """One ROC curve per list of one test set: ``{group: (labels, scores)}``, group as in ``GROUP_NAMES``."""
    from sklearn.metrics import roc_curve

    from voxface.metrics import roc_auc

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.2, 5.2))
    for group, (labels, values) in scores.items():
        fpr, tpr, _ = roc_curve(labels, values)
        ax.plot(fpr, tpr, label=f"{GROUP_NAMES.get(group, group)}: AUC {roc_auc(labels, values):.3f}")
    ax.plot([0, 1], [0, 1], "k:", linewidth=0.8, label="chance")
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="false acceptance rate (share of different-identity trials)",
           ylabel="true acceptance rate (share of same-identity trials)",
           title=f"{run}: ROC on the {TEST_SET_NAMES.get(test_set, test_set)} lists")
    ax.title.set_fontsize(9)
    ax.legend(fontsize=7, loc="lower right", title="list", title_fontsize=7)
    fig.tight_layout()
    return fig


def distributions_figure(scores: dict[str, tuple[np.ndarray, np.ndarray]], run: str, test_set: str,
                         scoring: str = "cosine") -> Figure:
    """Same- and different-identity score densities per list (one panel each, its AUC in the title), drawn as
    outlines so that the two never blend; one legend for all panels."""
    from voxface.metrics import roc_auc

    plt = pyplot()
    fig, axes = plt.subplots(1, len(scores), figsize=(3 * len(scores), 3.2), squeeze=False)
    for ax, (group, (labels, values)) in zip(axes[0], scores.items(), strict=True):
        labels, values = np.asarray(labels).astype(bool), np.asarray(values, dtype=np.float64)
        bins = np.linspace(values.min(), values.max(), 30)
        ax.hist(values[labels], bins=bins, density=True, histtype="step", linewidth=1.6, color="tab:blue",
                label="same identity")
        ax.hist(values[~labels], bins=bins, density=True, histtype="step", linewidth=1.6, linestyle="--",
                color="tab:orange", label="different identities")
        ax.set_title(f"{GROUP_NAMES.get(group, group)}\nAUC {roc_auc(labels, values):.3f}", fontsize=8)
        ax.set_xlabel(SCORE_NAMES.get(scoring, scoring), fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0, 0].set_ylabel("density (trials per unit score)", fontsize=8)
    handles, names = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, names, loc="upper right", fontsize=7, ncol=2)
    fig.suptitle(f"{run}: {scoring} scores on the {TEST_SET_NAMES.get(test_set, test_set)} lists", fontsize=9,
                 x=0.02, ha="left")
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    return fig


def pca_figure(before: dict[str, np.ndarray] | None, after: dict[str, np.ndarray], run: str,
               test_set: str = "unseenunheard") -> Figure:
    """Paper Fig. 4: voice embeddings of a few identities (``{"id10270 (test split)": (clips, dim)}``) in the
    first two principal components of each panel, before training (when known) and after; axes give the share
    of variance each component explains; one legend for both panels."""
    plt = pyplot()
    panels = ([("before training", before)] if before is not None else []) + [("after training", after)]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4.4), squeeze=False)
    for ax, (label, groups) in zip(axes[0], panels, strict=True):
        stacked = np.concatenate(list(groups.values()))
        mean = stacked.mean(0)
        _, singular, components = np.linalg.svd(stacked - mean, full_matrices=False)
        explained = singular**2 / max(float((singular**2).sum()), 1e-12)
        for colour, (name, matrix) in enumerate(groups.items()):
            points = (matrix - mean) @ components[:2].T
            ax.scatter(points[:, 0], points[:, 1], s=18, color=f"C{colour}", label=name)
        ax.set_title(label, fontsize=9)
        ax.set_xlabel(f"PC1 ({100 * explained[0]:.0f}% of variance)", fontsize=8)
        ax.set_ylabel(f"PC2 ({100 * explained[1]:.0f}% of variance)" if len(explained) > 1 else "PC2", fontsize=8)
        ax.tick_params(labelsize=7)
    handles, names = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=len(names), fontsize=7, title="identity (split)",
               title_fontsize=7)
    fig.suptitle(f"{run}: voice embeddings of {len(after)} {TEST_SET_NAMES.get(test_set, test_set)} identities, "
                 "one point per clip (paper Fig. 4)", fontsize=9)
    fig.tight_layout(rect=(0, 0.1, 1, 0.95))
    return fig


def similarity_matrices(teacher: np.ndarray, faces: np.ndarray, voices: np.ndarray) -> dict[str, np.ndarray]:
    """Cosine-similarity matrices between identities (rows: per-identity mean embeddings)."""
    def cosine(x: np.ndarray) -> np.ndarray:
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
        return x @ x.T

    return {"teacher T": cosine(teacher), "mapped faces F": cosine(faces), "voices V": cosine(voices)}


def similarity_figure(rows: dict[str, dict[str, np.ndarray]], groups: list[tuple[str, str]] | None = None,
                      test_set: str = "unseenunheard") -> Figure:
    """Fig. 5-style view: per run (a row), the identity-by-identity similarity of T, F and V, on one cosine
    colour scale. ``groups`` gives each identity's (gender, nationality) in the matrices' order (sorted by
    them): gender boundaries are drawn as black lines, nationality ones as thin grey lines, so demographic
    blocks show.

    With RKD, F keeps T's structure; without it, F is free to drift (paper section 6.2.2)."""
    plt = pyplot()
    fig, axes = plt.subplots(len(rows), 3, figsize=(10, 3.4 * len(rows) + 0.4), squeeze=False)
    image = None
    for r, (run, matrices) in enumerate(rows.items()):
        for c, (label, matrix) in enumerate(matrices.items()):
            ax = axes[r, c]
            image = ax.imshow(matrix, vmin=-1, vmax=1, cmap="RdBu_r")
            ax.set_title(f"{run}: {label}", fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_xlabel(f"identity ({len(matrix)})", fontsize=7)
            for i in range(1, len(groups or [])):
                if groups[i] == groups[i - 1]:
                    continue
                gender_changes = groups[i][0] != groups[i - 1][0]
                style = {"color": "black", "linewidth": 1.2} if gender_changes else {"color": "0.5", "linewidth": 0.4}
                ax.axhline(i - 0.5, **style)
                ax.axvline(i - 0.5, **style)
            if groups and c == 0:
                ax.set_yticks(range(len(groups)), [f"{g} {n}" for g, n in groups], fontsize=5)
                ax.set_ylabel("identity (gender, nationality)", fontsize=7)
            elif c == 0:
                ax.set_ylabel("identity", fontsize=7)
    order = "ordered by gender, then nationality; " if groups else ""
    fig.suptitle(f"Identity-by-identity similarity of per-identity mean embeddings, "
                 f"{TEST_SET_NAMES.get(test_set, test_set)} identities ({order}black lines: gender boundaries)",
                 fontsize=8)
    if image is not None:
        fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8, label="cosine similarity (-1 to 1)")
    return fig


def decomposition_figure(runs: dict[str, dict]) -> Figure:
    """Per list, bars for the ceiling, the references and the achieved AUC (``decomposition.COLUMNS``); one
    panel per run (``{run: evaluation's decomposition dict}``), so ``voxface report`` stacks runs; one legend."""
    from voxface.evaluation.decomposition import COLUMNS, row_ceiling

    plt = pyplot()
    fig, axes = plt.subplots(len(runs), 1, figsize=(12, 3.6 * len(runs) + 0.8), squeeze=False)
    shown: dict[str, object] = {}
    noisy: dict[str, object] = {}  # the legend's last entry
    for ax, (run, result) in zip(axes[:, 0], runs.items(), strict=True):
        lists = list(result["lists"])
        present = [c for c in COLUMNS if any(c in result["lists"][n] for n in lists)]
        width = 0.85 / len(present)
        for j, column in enumerate(present):
            values = [result["lists"][n].get(column, np.nan) for n in lists]
            bars = ax.bar(np.arange(len(lists)) + (j - (len(present) - 1) / 2) * width, np.array(values) - 0.5,
                          width, bottom=0.5, color=plt.get_cmap("tab10")(list(COLUMNS).index(column)))
            shown.setdefault(COLUMNS[column], bars)
            if column != "ceiling":
                continue
            for bar, name in zip(bars, lists, strict=True):  # no usable ceiling (oracle.Ceiling.noise): hatched
                ceiling = row_ceiling(result, name)
                if ceiling and not ceiling.usable:
                    bar.set_hatch("///")
                    bar.set_alpha(0.35)
                    noisy.setdefault("not a usable ceiling: seen-heard (memorisable) or too noisy (hatched)", bar)
        ax.axhline(0.5, color="black", linewidth=0.8)
        ax.set_xticks(range(len(lists)), [list_label(n).replace(", ", "\n") for n in lists], fontsize=7)
        ax.set_xlabel("verification list", fontsize=8)
        ax.set_ylim(0.4, 1.0)
        ax.set_ylabel("AUC (0.5 = chance)", fontsize=8)
        ax.set_title(f"{run}: where the points go, per verification list", fontsize=9)
    shown.update(noisy)
    fig.legend(list(shown.values()), list(shown), loc="upper center", ncol=4, fontsize=7)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.75 / (3.6 * len(runs) + 0.8)))  # room for the legend's two rows
    return fig
