"""Issue 16 item 14: every plot reads on its own. Each is rendered from tiny data and its labels are checked by
reading the figure's artists (titles, axis labels, legends), not its pixels."""

import re

import numpy as np
import pytest

from voxface.evaluation.plots import (
    decomposition_figure,
    distributions_figure,
    pca_figure,
    pyplot,
    roc_figure,
    save_figure,
    similarity_figure,
    similarity_matrices,
)
from voxface.protocol import DataRoots, load_protocol
from voxface.synth.preview import faces_figure, voices_figure, write_preview

GROUPS = ("random", "G", "N", "A", "GNA")


@pytest.fixture
def scores():
    rng = np.random.default_rng(0)
    labels = np.repeat([1, 0], 40)
    return {g: (labels, rng.normal(size=80) + 0.8 * labels) for g in GROUPS}


@pytest.fixture(autouse=True)
def close_figures():
    yield
    pyplot().close("all")


def texts(legend) -> list[str]:
    return [t.get_text() for t in legend.get_texts()]


def panels(fig) -> list:
    """The figure's plotting axes (a colour bar's axes left out)."""
    return [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]


def test_roc_names_run_test_set_lists_and_axes(scores):
    fig = roc_figure(scores, "my-run", "unseenunheard")
    (ax,) = fig.axes
    assert "my-run" in ax.get_title() and "unseen-unheard" in ax.get_title() and "unseenunheard" not in ax.get_title()
    assert ax.get_xlabel().startswith("false acceptance rate (")
    assert ax.get_ylabel().startswith("true acceptance rate (")
    legend = texts(ax.get_legend())
    assert any(t.startswith("all three (GNA): AUC 0.") for t in legend) and "chance" in legend


def test_score_distributions_have_density_auc_per_panel_outlines_and_one_legend(scores, tmp_path):
    fig = distributions_figure(scores, "my-run", "seenheard")
    axes = fig.axes
    assert len(axes) == 5 and fig.get_suptitle() == "my-run: cosine scores on the seen-heard lists"
    assert axes[0].get_ylabel().startswith("density")
    for ax, group in zip(axes, GROUPS, strict=True):
        assert re.search(r"\nAUC 0\.\d{3}$", ax.get_title()) and group in ax.get_title()
        assert ax.get_xlabel() == "cosine similarity (-1 to 1)"
        assert ax.get_legend() is None  # one legend, for the whole figure
        assert ax.patches and all(not patch.get_fill() for patch in ax.patches)  # outlines: nothing blends
    assert len(fig.legends) == 1 and texts(fig.legends[0]) == ["same identity", "different identities"]
    assert save_figure(fig, tmp_path / "scores.png").stat().st_size > 5_000


def test_fig4_pca_gives_variance_explained_identities_with_their_split_and_one_legend():
    rng = np.random.default_rng(1)
    groups = {f"id1000{i} (test split)": rng.normal(size=(6, 16)) + 3 * rng.normal(size=16) for i in range(3)}
    fig = pca_figure(groups, groups, "my-run")
    assert len(fig.axes) == 2 and [ax.get_title() for ax in fig.axes] == ["before training", "after training"]
    for ax in fig.axes:
        assert re.fullmatch(r"PC1 \(\d+% of variance\)", ax.get_xlabel())
        assert re.fullmatch(r"PC2 \(\d+% of variance\)", ax.get_ylabel())
        assert ax.get_legend() is None
    assert len(fig.legends) == 1 and texts(fig.legends[0]) == list(groups)
    assert fig.legends[0].get_title().get_text() == "identity (split)"
    assert "my-run" in fig.get_suptitle() and "unseen-unheard identities" in fig.get_suptitle()


def test_similarity_and_decomposition_name_the_run_the_test_set_and_their_axes():
    rng = np.random.default_rng(2)
    matrices = similarity_matrices(*(rng.normal(size=(6, 8)) for _ in range(3)))
    groups = [("f", "USA")] * 3 + [("m", "UK")] * 3
    fig = similarity_figure({"rkd-on": matrices, "rkd-off": matrices}, groups)
    assert "unseen-unheard identities" in fig.get_suptitle()
    plots = panels(fig)
    assert len(plots) == 6 and all(ax.get_title().startswith(("rkd-on: ", "rkd-off: ")) for ax in plots)
    assert plots[0].get_ylabel() == "identity (gender, nationality)" and plots[0].get_xlabel() == "identity (6)"
    (bar,) = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert bar.get_ylabel() == "cosine similarity (-1 to 1)"

    lists = {f"{g}_{t}": {"ceiling": 0.9, "data_backend": 0.85, "achieved_cosine": 0.7}
             for t in ("unseenunheard", "seenheard") for g in GROUPS}
    intervals = {name: [0.87, 0.93] for name in lists}
    fig = decomposition_figure({"my-run": {"lists": lists, "ceiling_ci95": intervals}})
    (ax,) = fig.axes
    assert ax.get_title().startswith("my-run: ") and ax.get_ylabel().startswith("AUC")
    assert ax.get_xlabel() == "verification list"
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert ticks[0] == "random (U)\nunseen-unheard" and ticks[-1] == "all three (GNA)\nseen-heard"
    assert ax.get_legend() is None and len(fig.legends) == 1
    legend = "not a usable ceiling: seen-heard (memorisable) or too noisy (hatched)"
    assert texts(fig.legends[0]) == ["ceiling (oracle)", "data reference, Gaussian backend", "achieved, cosine", legend]

    def hatched(fig) -> list[str]:
        ticks = [tick.get_text().replace("\n", ", ") for tick in fig.axes[0].get_xticklabels()]
        return [tick for tick, bar in zip(ticks, fig.axes[0].containers[0], strict=True) if bar.get_hatch()]

    # a seen-heard list's oracle is no ceiling (its identities can be memorised): hatched, every one of them
    labels = ("random (U)", "same gender (G)", "same nationality (N)", "same age band (A)", "all three (GNA)")
    assert hatched(fig) == [f"{label}, seen-heard" for label in labels]
    # an unseen-unheard ceiling too noisy to be one (its interval too wide) is hatched too; a reference above a
    # precise one does not unmake it (the same decision per list as every table's)
    lists["G_unseenunheard"]["data_backend"] = 0.95
    intervals["A_unseenunheard"] = [0.70, 0.99]
    fig = decomposition_figure({"one": {"lists": lists, "ceiling_ci95": intervals},
                                "two": {"lists": lists, "ceiling_ci95": intervals}})
    assert [ax.get_title().split(":")[0] for ax in fig.axes] == ["one", "two"]  # every run drawn, one panel each
    assert hatched(fig)[0] == "same age band (A), unseen-unheard" and len(hatched(fig)) == 6
    assert texts(fig.legends[0])[-1] == legend


def test_previews_label_every_row_and_give_spectrograms_time_and_frequency_axes(tiny_run):
    root = tiny_run[0] / "voxsynth"
    protocol, roots = load_protocol(root / "protocol"), DataRoots.from_root(root)
    people = sorted(protocol.identities.values(), key=lambda p: p.vox_id)[:3]
    fig = faces_figure(roots, people, per_identity=4, face_size=32)
    assert len(fig.axes) == 3
    for ax, person in zip(fig.axes, people, strict=True):
        label = ax.get_ylabel()
        gender = {"m": "male", "f": "female"}[person.gender]
        assert person.vox_id in label and gender in label and person.nationality in label
        assert f"age {person.age}" in label
    assert "identity, gender, nationality, age" in fig.get_suptitle()

    fig = voices_figure(roots, people)
    plots = panels(fig)
    assert len(plots) == 6
    assert all(ax.get_ylabel() == "frequency (Hz)" for ax in plots[::2])
    assert all(ax.get_xlabel() == "time (s)" for ax in plots[-2:])
    hz = [float(t.get_text()) for t in plots[0].get_yticklabels()]
    assert hz == sorted(hz) and 0 < hz[0] < 100 and 7000 < hz[-1] <= 8000  # 16 kHz audio: up to Nyquist
    assert 2.0 <= plots[0].get_xlim()[1] <= 3.0  # seconds (clips of 2-3 s, the first 3 s shown)
    assert all(people[i // 2].vox_id in ax.get_title() for i, ax in enumerate(plots))
    (bar,) = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert "log Mel energy" in bar.get_ylabel()
    assert [p.name for p in write_preview(root, identities=2, per_identity=2, face_size=32)] == [
        "preview_faces.png", "preview_voices.png"]
