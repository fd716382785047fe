"""Reports in the paper's Table 2 layout: AUC (%) per group on both test sets, with the published rows
(``recipes/published.csv``) and, on VoxSynth, the oracle ceiling and the share of the way from chance to it. With
a fitted backend, the run has two rows: its cosine scores (the paper's) and the backend's calibrated
log-likelihood ratios."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from voxface.evaluation.result import Evaluation
from voxface.protocol.lists import TEST_SETS
from voxface.protocol.lists import VERIFICATION_GROUPS as GROUPS
from voxface.recipes import published_rows
from voxface.scoring.backend import pairs_text
from voxface.synth.oracle import ceiling_notes, ceiling_of, list_ceiling

COLUMNS = ("U", "G", "N", "A", "GNA")
CEILING_ROW, SHARE_ROW = "oracle ceiling", "share of chance-to-ceiling"
TABLE2_SOURCE = "Sun & Su 2025 Table 2"  # the published rows a report sets a run beside (recipes/published.csv)
# Fewer unseen-unheard test identities than this and a report opens with a caveat (``few_identities_caveat``): every
# list then draws its trials from a few dozen people, and on VoxSynth the same lists' oracle ceilings scatter by
# more than the differences the tables compare (benchmarks/bench_ceiling_precision.py, BENCHMARKS.md).
ENOUGH_TEST_IDENTITIES = 50
BOLD_RULE = ("bold: the best in its column only where its 95% CI lies wholly above the runner-up's (a figure "
             "without an interval, such as a published one, counts as a point)")


def few_identities_caveat(test_identities: int | None) -> str | None:
    """The one-line caveat atop a report of a run scored on fewer than ``ENOUGH_TEST_IDENTITIES`` unseen-unheard
    test identities; None with enough of them (or an unknown count: a report written before it was recorded).

    >>> few_identities_caveat(12)[:40]
    '> **Only 12 unseen-unheard test identiti'
    >>> few_identities_caveat(80) is None
    True
    """
    if test_identities is None or test_identities >= ENOUGH_TEST_IDENTITIES:
        return None
    return (f"> **Only {test_identities} unseen-unheard test identities (fewer than {ENOUGH_TEST_IDENTITIES}): a check "
            "that the pipeline runs, not a measurement.** Which few people were drawn moves every figure here by "
            "more than the runs differ; read the 95% intervals, not the points.")


def clear_winner(cells: list[tuple[float, float | None, float | None] | None]) -> int | None:
    """The index of the highest value among ``cells`` (value, 95% low, 95% high) where its interval lies wholly
    above the runner-up's; None where they overlap (the data cannot tell the two apart), or with fewer than two
    values. A value without an interval counts as a point; None cells are skipped.

    >>> clear_winner([(55.5, 46.0, 65.0), (48.7, 40.0, 57.0)]) is None
    True
    >>> clear_winner([(88.4, None, None), (75.0, 73.9, 76.1)])
    0
    """
    ranked = sorted(((c[0], i) for i, c in enumerate(cells) if c is not None), reverse=True)
    if len(ranked) < 2:
        return None
    i, j = ranked[0][1], ranked[1][1]

    def bounds(cell: tuple[float, float | None, float | None]) -> tuple[float, float]:
        value, low, high = cell
        return (value if low is None else low), (value if high is None else high)

    return i if bounds(cells[i])[0] > bounds(cells[j])[1] else None  # type: ignore[index]


def literature_rows(source: str = TABLE2_SOURCE) -> dict[str, list[float | None]]:
    """The published rows of ``source`` (``recipes.published_rows``) as Table 2 rows: method -> AUC (%) on the
    unseen-unheard U/G/N/A/GNA lists, then the seen-heard ones; None where the source gives no figure.

    >>> literature_rows()["PINs"][:3]
    [78.5, 61.1, 77.2]
    """
    keys = [(t, g) for t in TEST_SETS for g in GROUPS]
    table: dict[str, list[float | None]] = {}
    for row in published_rows():
        if row.source == source:
            table.setdefault(row.method, [None] * len(keys))[keys.index((row.test_set, row.group))] = row.auc_percent
    return table


def write_reports(evaluation: Evaluation, out: str | Path, name: str = "ours", oracle: dict | None = None,
                  literature: bool = True) -> list[Path]:
    """Write report.json, report.csv and report.md into ``out``; return their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    keys = [f"{g}_{t}" for t in TEST_SETS for g in GROUPS]
    scored = evaluation.verification  # a list that lost every file is absent: its cells read "lost"
    ours = {name: [100 * scored[k]["auc"] if k in scored else None for k in keys]}
    if evaluation.backend:
        ours[backend_row(name)] = [100 * scored[k]["backend"]["auc"] if k in scored else None for k in keys]
    # each of our cells' 95% interval (percent), for the bold rule
    intervals = {label: [tuple(100 * x if x is not None else None for x in
                               (scored[k] if label == name else scored[k]["backend"])["auc_ci95"])
                         if k in scored else (None, None) for k in keys] for label in ours}
    published = literature_rows() if literature else {}
    rows: list[tuple[str, list[float | None]]] = list(published.items())
    rows += list(ours.items())
    ceilings = {k: list_ceiling(oracle, k) for k in keys} if oracle else {}
    # no share where the list's oracle value is no ceiling (oracle.Ceiling.noise: seen identities, or too noisy)
    noise = {k: c.noise() for k, c in ceilings.items()}
    if oracle:
        rows.append((CEILING_ROW, [100 * ceilings[k].auc for k in keys]))
        for label, values in ours.items():
            rows.append((share_row(label, len(ours)), [
                100 * ceilings[k].share(a / 100) if a is not None and noise[k] is None else None
                for a, k in zip(values, keys, strict=True)]))
    columns = [f"{t}_{c}" for t in TEST_SETS for c in COLUMNS]
    report = {"name": name, "table2_auc_percent": {label: dict(zip(columns, values, strict=True))
                                                   for label, values in rows},
              **({"oracle_ceiling": {column: {"auc": c.auc, "ci95": [c.low, c.high], "usable": noise[k] is None,
                                              **({"not_a_ceiling": list(noise[k])} if noise[k] else {})}
                                     for column, (k, c) in zip(columns, ceilings.items(), strict=True)}}
                 if oracle else {}),
              **evaluation.to_json()}
    (out / "report.json").write_text(json.dumps(report, indent=1))
    with (out / "report.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["list", "scoring", "auc", "auc_ci95_low", "auc_ci95_high", "eer", "cllr", "min_cllr",
                         "trials", "lost_trials", "oracle_ceiling", "oracle_ceiling_ci95_low",
                         "oracle_ceiling_ci95_high"])
        for key, scoring, value in _scorings(evaluation):
            low, high = (f"{x:.4f}" if x is not None else "" for x in value["auc_ci95"])
            writer.writerow([key, scoring, f"{value['auc']:.4f}", low, high, f"{value['eer']:.4f}",
                             _number(value.get("cllr")), _number(value.get("min_cllr")), value["trials"],
                             evaluation.lost_trials.get(key, 0),
                             *((_number(ceilings[key].auc), _number(ceilings[key].low), _number(ceilings[key].high))
                               if oracle else ("", "", ""))])
        for key, value in evaluation.matching.items():
            writer.writerow([f"matching_{key}", "cosine", f"{value['accuracy']:.4f}", "", "", "", "", "",
                             value["trials"], evaluation.lost_trials.get(f"matching_{key}", 0), "", "", ""])
    header = "| method | " + " | ".join(f"U-U {c}" for c in COLUMNS) + " | " + " | ".join(f"S-H {c}" for c in COLUMNS)
    caveat = few_identities_caveat(evaluation.test_identities)
    lines = [f"# Cross-modal verification: {name}", "", *([caveat, ""] if caveat else []),
             *(f"> **Warning (unseen-unheard):** {warning}." for warning in evaluation.warnings),
             *([""] if evaluation.warnings else []),
             "AUC (%) on the unseen-unheard (U-U) and seen-heard (S-H) "
             f"lists, the layout of Sun & Su 2025 Table 2; {BOLD_RULE}.", "", header + " |",
             "|---" * (1 + 2 * len(COLUMNS)) + "|"]
    # bold: the clear best method per column (published rows and this run's), never the ceiling or the shares
    methods = {label: [(v, *(intervals[label][i] if label in ours else (None, None))) if v is not None else None
                       for i, v in enumerate(values)] for label, values in rows if label in ours or label in published}
    winners = [clear_winner([cells[i] for cells in methods.values()]) for i in range(len(keys))]
    bold = [list(methods)[w] if w is not None else None for w in winners]

    def cell(label: str, i: int, v: float | None) -> str:
        if label.startswith(SHARE_ROW) and noise[keys[i]] is not None:
            return "n/a"
        if v is None:  # a list this run lost every file of, or a figure the publication does not give
            return "lost" if label in ours else "-"
        if label == CEILING_ROW:
            return f"{v:.1f}{ceilings[keys[i]].mark()}"
        return f"**{v:.1f}**" if label == bold[i] else f"{v:.1f}"

    for label, values in rows:
        lines.append(f"| {label} | " + " | ".join(cell(label, i, v) for i, v in enumerate(values)) + " |")
        if label == CEILING_ROW:
            lines.append("| ceiling 95% CI | " + " | ".join(c.interval(percent=True) for c in ceilings.values()) + " |")
    notes = ceiling_notes(ceilings)
    if notes:
        lines += ["", f"n/a: {notes}."]
    if oracle and "model_ceilings" in oracle:
        model = oracle["model_ceilings"]
        lines += ["", "The oracle ceiling above is that of these test lists. The benchmark's (the generative model's, "
                  f"on a draw of {oracle['model_ceilings_draw']['identities']} test identities), U-U: "
                  + ", ".join(f"{c} {100 * model[f'{g}_unseenunheard']:.1f}" for g, c in zip(GROUPS, COLUMNS,
                                                                                              strict=True)) + "."]
    if evaluation.backend:
        fit = evaluation.backend
        lines += ["", f"Backend ({fit['folder']}): a cross-modal Gaussian backend fitted on {fit['train_identities']} "
                  f"training identities ({fit['dims']} dimensions, {pairs_text(fit['canonical_pairs'])}), "
                  "calibrated on the validation identities. Cllr is in bits (0 perfect, 1 uninformative); minCllr "
                  "is what perfect calibration would leave. The cosine's Cllr uses the same validation calibration."]
    else:
        lines += ["", "Cllr needs calibrated scores: fit a backend ('voxface backend fit') and pass --backend; "
                  "minCllr (the best a calibration could do) is given for the cosine."]
    lines += ["", "| list | scoring | AUC | 95% CI | EER | Cllr | minCllr | trials |", "|---" * 8 + "|"]
    for key, scoring, value in _scorings(evaluation):
        low, high = value["auc_ci95"]
        interval = f"{low:.3f}-{high:.3f}" if low is not None else "not computed"
        lines.append(f"| {key} | {scoring} | {value['auc']:.3f} | {interval} | {value['eer']:.3f} | "
                     f"{_number(value.get('cllr'), 3) or '-'} | {_number(value.get('min_cllr'), 3) or '-'} | "
                     f"{value['trials']} |")
    lines += ["", "| 1:2 matching | accuracy | trials |", "|---|---|---|"]
    lines += [f"| {k} | {v['accuracy']:.3f} | {v['trials']} |" for k, v in evaluation.matching.items()]
    lines += ["", "| retrieval (unseen-unheard) | mAP | R@1 | R@5 | R@10 |", "|---|---|---|---|---|"]
    lines += [f"| {k} | {v['mAP']:.3f} | {v['R@1']:.3f} | {v['R@5']:.3f} | {v['R@10']:.3f} |"
              for k, v in evaluation.retrieval.items()]
    if evaluation.decomposition:
        from voxface.evaluation.decomposition import format_decomposition

        lines += ["", "## Where the points go", "", format_decomposition(evaluation.decomposition)]
        demographics = evaluation.decomposition.get("demographics_reference")
        if demographics:
            lines += ["", "Demographics-only reference per attribute (AUC; a trial scored only by how well the "
                      "demographics predicted from the voice agree with those predicted from the face):", "",
                      "| list | " + " | ".join(next(iter(demographics.values()))) + " |",
                      "|---" * (1 + len(next(iter(demographics.values())))) + "|"]
            lines += [f"| {name} | " + " | ".join(f"{v:.3f}" for v in row.values()) + " |"
                      for name, row in demographics.items()]
    lost = {k: v for k, v in evaluation.lost_trials.items() if v}
    if lost:
        lines += ["", "Trials lost to missing or unreadable files: " + ", ".join(f"{k} {v}" for k, v in lost.items())]
    (out / "report.md").write_text("\n".join(lines) + "\n")
    return [out / "report.json", out / "report.csv", out / "report.md"]


def backend_row(name: str) -> str:
    """The Table 2 row of a run scored by its backend."""
    return f"{name} + backend"


def share_row(label: str, runs: int) -> str:
    return SHARE_ROW + (f" ({label})" if runs > 1 else "")


def _scorings(evaluation: Evaluation):
    """(list, scoring, metrics) for every verification list: the cosine, then the backend where it scored."""
    for key, value in evaluation.verification.items():
        yield key, "cosine", value
        if "backend" in value:
            yield key, "backend", value["backend"]


def _number(value: float | None, digits: int = 4) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _run_intervals(report: dict, row: dict[str, float | None]) -> dict[str, tuple | None]:
    """A Table 3 row's cells as (value, 95% low, 95% high) in percent, for ``clear_winner``: the AUC's interval
    from the run's report, a matching accuracy's by Wilson's interval on its trials."""
    from voxface.metrics import proportion_interval

    cells: dict[str, tuple | None] = {}
    for test_set in TEST_SETS:
        for group, column in zip(GROUPS, COLUMNS, strict=True):
            key, value = f"{test_set}_{column}", row[f"{test_set}_{column}"]
            low, high = report["verification"].get(f"{group}_{test_set}", {}).get("auc_ci95", [None, None])
            cells[key] = None if value is None else (value, *(None if x is None else 100 * x for x in (low, high)))
    for key in ("v2f_U", "f2v_U"):
        value, matching = row[key], report["matching"].get(key)
        cells[key] = None if value is None else (value, *(100 * x for x in proportion_interval(
            matching["accuracy"], matching["trials"])))
    return cells


def compare_runs(report_dirs: list[str | Path], out: str | Path) -> list[Path]:
    """Several evaluated runs side by side (the paper's Table 3 / Table 4 layout): one row per run.

    Each folder is an ``evaluate --out`` folder holding ``report.json``. Writes comparison.md/.csv/.json.
    """
    out = Path(out)
    runs = []
    for folder in map(Path, report_dirs):
        path = folder / "report.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist: run 'voxface evaluate --out {folder}' first")
        report = json.loads(path.read_text())
        runs.append((report["name"], report["table2_auc_percent"][report["name"]], report))
    names = [name for name, _, _ in runs]
    if len(set(names)) != len(names):  # the same run name twice: tell them apart by folder
        runs = [(f"{name} ({Path(d).name})", values, report) for (name, values, report), d in
                zip(runs, report_dirs, strict=True)]
    keys = [f"{t}_{c}" for t in TEST_SETS for c in COLUMNS]
    out.mkdir(parents=True, exist_ok=True)
    def matching(report: dict, name: str) -> float | None:
        return 100 * report["matching"][name]["accuracy"] if name in report["matching"] else None

    table = {name: {**{k: values[k] for k in keys}, "v2f_U": matching(report, "v2f_U"),
                    "f2v_U": matching(report, "f2v_U")} for name, values, report in runs}
    oracle = next((r["table2_auc_percent"][CEILING_ROW] for _, _, r in runs if CEILING_ROW in r["table2_auc_percent"]),
                  None)
    # absent from a report written before ceilings had intervals
    ceiling_json = next((r["oracle_ceiling"] for _, _, r in runs if "oracle_ceiling" in r), None)
    list_names = {f"{t}_{c}": f"{g}_{t}" for t in TEST_SETS for g, c in zip(GROUPS, COLUMNS, strict=True)}
    (out / "comparison.json").write_text(json.dumps({"runs": table, "oracle_ceiling": oracle,
                                                     "oracle_ceiling_intervals": ceiling_json}, indent=1))
    columns = keys + ["v2f_U", "f2v_U"]
    with (out / "comparison.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["run", *columns])
        for name, row in table.items():
            writer.writerow([name, *("" if row[c] is None else f"{row[c]:.2f}" for c in columns)])
    header = ["run"] + [f"U-U {c}" for c in COLUMNS] + [f"S-H {c}" for c in COLUMNS] + ["1:2 v2f U", "1:2 f2v U"]
    lines = ["# Runs side by side", "", "Verification AUC (%) and 1:2 matching accuracy (%); the layout of Sun & Su "
             f"2025 Tables 3 and 4; {BOLD_RULE} (matching: Wilson's interval).", "",
             "| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    cells_by_run = {name: _run_intervals(report, table[name]) for name, _, report in runs}
    winners = {c: clear_winner([cells_by_run[name][c] for name in table]) for c in columns}
    for i, (name, row) in enumerate(table.items()):
        cells = ["lost" if row[c] is None else f"**{row[c]:.1f}**" if winners[c] == i else f"{row[c]:.1f}"
                 for c in columns]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if oracle:  # each list's ceiling decided as in Table 2 (oracle.ceiling_of), named by its list
        ceilings = {list_names[k]: ceiling_of(list_names[k], oracle[k] / 100,
                                              ceiling_json[k]["ci95"] if ceiling_json else None) for k in keys}
        lines.append(f"| {CEILING_ROW} | " + " | ".join(f"{oracle[k]:.1f}{ceilings[list_names[k]].mark()}"
                                                        for k in keys) + " | | |")
        if ceiling_json:
            lines.append("| ceiling 95% CI | " + " | ".join(ceilings[list_names[k]].interval(percent=True)
                                                           for k in keys) + " | | |")
        notes = ceiling_notes(ceilings)
        if notes:
            lines += ["", f"{notes}."]
    (out / "comparison.md").write_text("\n".join(lines) + "\n")
    paths = [out / "comparison.json", out / "comparison.csv", out / "comparison.md"]
    decompositions = {name: report["decomposition"] for name, _, report in runs
                      if "lists" in report.get("decomposition", {})}
    if decompositions:
        from voxface.evaluation.plots import decomposition_figure, save_figure

        paths.append(save_figure(decomposition_figure(decompositions), out / "decomposition.png"))
    similarity, groups = {}, None
    for (name, _, _), folder in zip(runs, report_dirs, strict=True):
        matrices = Path(folder) / "plots" / "fig5_similarity.npz"
        if matrices.is_file():
            stored = np.load(matrices, allow_pickle=False)
            similarity[name] = {"teacher T": stored["T"], "mapped faces F": stored["F"], "voices V": stored["V"]}
            if "gender" in stored and groups is None:
                groups = list(zip(stored["gender"].tolist(), stored["nationality"].tolist(), strict=True))
    if similarity:
        from voxface.evaluation.plots import save_figure, similarity_figure

        same_size = groups is not None and all(len(m["voices V"]) == len(groups) for m in similarity.values())
        paths.append(save_figure(similarity_figure(similarity, groups if same_size else None),
                                 out / "fig5_similarity.png", dpi=110))
    return paths
