"""The whole demo pipeline at a tiny size: interrupted, run again, it continues and writes every report."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from voxface.cli import main
from voxface.demo import RUNS, SCRATCH_RUN, check_bars, format_bars, peers_bar
from voxface.methods import METHODS
from voxface.synth.release import release_prior

# The test waits on the demo's own progress (the checkpoint it writes, its exit), never on how long that takes: a
# slow or loaded machine only takes longer. This limit is a hang guard alone, far above any machine's time.
HANG_GUARD_S = 45 * 60


def _interrupt_when(process: subprocess.Popen, marker, log) -> None:
    started = time.monotonic()
    while not marker.exists():
        if process.poll() is not None:
            pytest.fail(f"the demo ended (exit {process.returncode}) before {marker} appeared:\n{log.read_text()}")
        if time.monotonic() - started > HANG_GUARD_S:
            process.kill()
            process.wait()
            pytest.fail(f"hang guard: the demo still runs after {HANG_GUARD_S // 60} min without writing {marker}:\n"
                        f"{log.read_text()}")
        time.sleep(0.02)
    # Lightning writes checkpoints atomically; the run has 22 of its 24 steps still to go (first checkpoint: step 2).
    process.send_signal(signal.SIGINT)  # what Ctrl-C sends
    try:
        process.wait(timeout=HANG_GUARD_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        pytest.fail(f"hang guard: the demo did not stop within {HANG_GUARD_S // 60} min of Ctrl-C:\n{log.read_text()}")


def test_tiny_demo_is_interrupted_resumes_and_reports(tmp_path, capsys):
    """With --train-priors: the priors are pretrained here, on a draw of their own, and reused when run again.
    Two epochs a run (the tiny size's four add nothing here): the best of several validations is still chosen."""
    out = tmp_path / "demo"
    command = [sys.executable, "-m", "voxface", "demo", "--size", "tiny", "--out", str(out), "--quiet",
               "--workers", "2", "--train-priors", "--epochs", "2"]
    # A shell's background job (and so a CI runner may) starts with SIGINT ignored, which a child would
    # inherit and Python would then keep: restore the default so that Ctrl-C reaches the demo.
    # Its output goes to a file: a pipe nobody reads while waiting could fill and stall the demo.
    log = tmp_path / "first.log"
    with log.open("w") as output:
        first = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, text=True,
                                 preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        # Stop it inside the second training run, right after its first step checkpoint.
        _interrupt_when(first, out / "train" / "contrastive" / "checkpoints" / "last.ckpt", log)
    stopped = json.loads((out / "train" / "contrastive" / "run.json").read_text())  # written at the stop
    assert stopped["interrupted"] and not stopped["finished"], "interrupted too late to test resuming"
    assert first.returncode == 130, log.read_text()  # stopped after the step under way, as Ctrl-C asks
    generated = (out / "voxsynth" / "voxsynth.json").stat().st_mtime_ns
    teacher = (out / "teacher" / "backbone.pth").stat().st_mtime_ns

    assert main(["demo", "--size", "tiny", "--out", str(out), "--quiet", "--workers", "2", "--train-priors",
                 "--epochs", "2"]) == 0
    printed = capsys.readouterr().out
    # the data set carries no teacher sets: the priors' identities are a draw of their own
    assert not (out / "voxsynth" / "teacher_faces").exists() and (out / "prior_sets" / "faces").is_dir()
    # Finished steps are reused, the interrupted run continues from its checkpoint.
    assert (out / "voxsynth" / "voxsynth.json").stat().st_mtime_ns == generated
    assert (out / "teacher" / "backbone.pth").stat().st_mtime_ns == teacher
    assert "(already trained" in printed
    assert f"(resuming from {out / 'train' / 'contrastive' / 'checkpoints' / 'last.ckpt'})" in printed
    assert json.loads((out / "train" / "contrastive" / "run.json").read_text())["resumed"] is True

    report = out / "report"
    for name in ("summary.md", "table2_full.md", "table3_ablations.md", "comparison.csv", "bars.json",
                 "fig5_similarity.png"):
        assert (report / name).is_file(), name
    for name in (*RUNS, SCRATCH_RUN):
        assert (out / "eval" / name / "report.json").is_file()
        assert (out / "eval" / name / "plots" / "roc_unseenunheard.png").is_file()
    summary = (report / "summary.md").read_text()
    assert "## Table 2" in summary and "## Table 3" in summary and "oracle ceiling" in summary
    # Table 4's pair: the full method from scratch and from the voice prior, which is not a Table 3 row
    assert "## Table 4" in summary and "| ECAPA-TDNN from scratch |" in summary and "from the voice prior" in summary
    assert SCRATCH_RUN not in (report / "table3_ablations.md").read_text()
    assert yaml.safe_load((out / "train" / SCRATCH_RUN / "config.yaml").read_text())["audio"]["weights"] == ""
    trained = yaml.safe_load((out / "train" / "full" / "config.yaml").read_text())
    assert trained["audio"]["weights"] == str((out / "voice_prior" / "embedding_model.ckpt").absolute())
    assert summary in printed and f"reports: {report.resolve()}" in printed
    full = json.loads((out / "eval" / "full" / "report.json").read_text())
    assert full["verification"]["random_unseenunheard"]["auc"] > 0.5  # beats chance even at this size
    bars = json.loads((report / "bars.json").read_text())
    assert len(bars) == 9 and "frozen priors with the Gaussian backend" in bars[0]["bar"]
    assert "face-limited and voice-limited references are limits" in bars[-2]["bar"]  # whether met or not, at this size
    assert "vs achieved backend" in bars[-2]["measured"] and "Limits on random_unseenunheard" in summary
    # the peers: every registered method's row, last in the summary, and its bar (met or not at this size)
    assert "every method above chance on random unseen-unheard" in bars[-1]["bar"]
    peers = summary.split("## Peers: every method on VoxSynth's features")[1]
    assert all(cls.citation in peers for cls in METHODS.values()) and (report / "table2_peers.md").is_file()
    assert json.loads((out / "benchmark" / "benchmark.json").read_text())["methods"].keys() == METHODS.keys()
    assert "backend" in full["verification"]["random_unseenunheard"]
    assert (out / "train" / "full" / "backend" / "backend.json").is_file() and "full + backend" in summary

    # --demo RUN: what the demo recorded (demo.json) is what a benchmark, a training run or an evaluation plans with
    demo_commands_take_its_settings(out, capsys)


def demo_commands_take_its_settings(out, capsys):
    from voxface.benchmark import plan, store_overrides
    from voxface.cli import build_parser
    from voxface.commands import benchmark, evaluate, train
    from voxface.training.config import load_config

    teacher, voice = out / "teacher" / "backbone.pth", out / "voice_prior" / "embedding_model.ckpt"
    args = build_parser().parse_args(["benchmark", "--demo", str(out), "--methods", "pins"])
    folder, config_set, overrides = benchmark.settings(args)
    assert folder == out / "benchmark" and config_set == "voxsynth"
    assert capsys.readouterr().err.startswith(f"from the demo {out}: data.root=")
    (planned,) = plan(folder, config_set, ["pins"], overrides=store_overrides(folder, overrides))  # as run_benchmark
    demo_run = yaml.safe_load((out / "benchmark" / "runs" / "pins" / "seed0" / "config.yaml").read_text())
    config = planned.config
    assert (config.data.root, config.face.weights, config.audio.weights) == (
        str((out / "voxsynth").absolute()), str(teacher.absolute()), str(voice.absolute()))
    assert config.data.lists == str((out / "voxsynth" / "protocol").absolute())
    assert (config.data.face_size, config.optim.batch_size, config.trainer.epochs) == (32, 8, 2)  # the tiny size's
    for section, key in (("data", "root"), ("data", "lists"), ("face", "weights"), ("audio", "weights"),
                         ("features", "face"), ("features", "voice"), ("data", "face_size"), ("optim", "batch_size"),
                         ("trainer", "epochs")):
        assert getattr(getattr(config, section), key) == demo_run[section][key], (section, key)
    trained = (out / "benchmark" / "runs" / "pins" / "seed0" / "run.json").stat().st_mtime_ns
    assert main(["benchmark", "--demo", str(out), "--methods", "pins", "--quiet"]) == 0  # the demo's run, reused
    assert (out / "benchmark" / "runs" / "pins" / "seed0" / "run.json").stat().st_mtime_ns == trained
    # the end-to-end track trains on the media: the features track's stores are left out, the demo's teacher cache in
    args = build_parser().parse_args(["benchmark", "--demo", str(out), "--media", "--methods", "pins"])
    _, _, media = benchmark.settings(args)
    capsys.readouterr()
    (planned,) = plan(folder / "media", config_set, ["pins"], overrides=media, media=True)
    assert not planned.config.feature_mode and planned.config.data.root == config.data.root
    assert planned.config.face.cache_dir == str((out / "teacher_cache").absolute())

    args = build_parser().parse_args(["train", "--demo", str(out), "--config", "voxsynth/ot_all_pairs"])
    config = load_config(*train.demo_settings(args))
    full = yaml.safe_load((out / "train" / "full" / "config.yaml").read_text())
    assert config.trainer.out == str(out / "train" / "ot_all_pairs") and config.method.args["ot_pairs"] == "all"
    for section, key in (("data", "root"), ("data", "lists"), ("face", "weights"), ("audio", "weights"),
                         ("data", "face_size"), ("optim", "batch_size"), ("trainer", "epochs"), ("face", "cache_dir")):
        assert str(getattr(getattr(config, section), key)) == str(full[section][key]), (section, key)

    args = build_parser().parse_args(["evaluate", "--demo", str(out), "--checkpoint", "x", "--out", "y"])
    data = (out / "voxsynth").absolute()
    assert evaluate.data_and_lists(args) == (data, str(data / "protocol"))


def _reports(full: float, contrastive: float, ot: float, low: float = 0.55) -> dict:
    def report(auc):
        lists = {f"{g}_{t}": {"auc": auc, "auc_ci95": [low, auc + 0.05]} for g in ("random", "G", "N", "A", "GNA")
                 for t in ("unseenunheard", "seenheard")}
        return {"verification": lists}

    return {"full": report(full), "contrastive": report(contrastive), "ot_only": report(ot)}


def test_bars_say_plainly_when_the_data_disagree_with_the_paper():
    """Every bar is judged by its 95% intervals, its rule printed beside it: met, not met, or cannot tell."""
    oracle = {"verification_auc": {"random_unseenunheard": 0.9},
              "verification_auc_ci95": {"random_unseenunheard": [0.87, 0.93]}}
    wide = check_bars(_reports(0.86, 0.84, 0.51, low=0.46), oracle)
    # CI lows 0.46: neither above chance nor below, nor at 0.80 or below it; OT's CI 0.46-0.56 holds chance
    assert [m for _, m, _ in wide] == [None, None, None, True, True]
    assert all("rule: " in bar for bar, _, _ in wide)
    assert wide[0][2].endswith("0.860 (95% CI 0.460-0.910), oracle ceiling 0.900")  # precise: unmarked
    noisy = {**oracle, "verification_auc_ci95": {"random_unseenunheard": [0.80, 0.95]}}  # marked as every table does
    assert "oracle ceiling 0.900 (too noisy)" in check_bars(_reports(0.86, 0.84, 0.51, low=0.46), noisy)[0][2]
    assert "G 0.860 (95% CI 0.460-0.910) not distinguishable from chance" in wide[1][2]
    assert format_bars(wide).startswith("- [cannot tell] the full method reaches AUC 0.80 on random_unseenunheard")
    missed = check_bars(_reports(0.70, 0.80, 0.62, low=0.56), oracle)
    assert [m for _, m, _ in missed] == [False, True, True, False, True]  # OT's CI 0.56-0.67 lies above chance
    assert "OT only 0.620 (95% CI 0.560-0.670) on random unseen-unheard: above chance" in missed[3][2]
    assert "the intervals overlap, so these trials cannot tell the two apart" in missed[-1][2]
    # the two runs' intervals apart: contrastive + OT lies below contrastive alone
    apart = _reports(0.70, 0.80, 0.51)
    apart["full"]["verification"]["random_unseenunheard"]["auc_ci95"] = [0.68, 0.72]
    apart["contrastive"]["verification"]["random_unseenunheard"]["auc_ci95"] = [0.78, 0.82]
    bar, met, measured = check_bars(apart, oracle)[-1]
    assert met is False and "rule: not met only where the two 95% CIs do not overlap" in bar
    assert "contrastive + OT lies below contrastive alone" in measured
    # Without a ceiling (the user's own data) the full method's AUC bar is left out.
    assert len(check_bars(_reports(0.85, 0.84, 0.51), None)) == 4
    # The frozen priors' reference and Table 4's pair add a bar each.
    reports = _reports(0.81, 0.80, 0.51)
    reports[SCRATCH_RUN] = _reports(0.79, 0.8, 0.5)["full"]
    priors = {"lists": {f"{g}_unseenunheard": {"auc": 0.87 if g == "random" else 0.6,
                                               "auc_ci95": [0.85, 0.89] if g == "random" else [0.52, 0.68]}
                        for g in ("random", "G", "N", "A", "GNA")}}
    bars = check_bars(reports, oracle, priors)
    assert "frozen priors" in bars[0][0] and bars[0][1] is True
    assert "G 0.600 (95% CI 0.520-0.680) above chance" in bars[0][2]
    assert "from the voice prior" in bars[-1][0] and bars[-1][1] is True
    priors["lists"]["GNA_unseenunheard"]["auc_ci95"] = [0.49, 0.7]
    assert check_bars(reports, oracle, priors)[0][1] is None  # GNA's interval holds chance: cannot tell
    priors["lists"]["random_unseenunheard"]["auc_ci95"] = [0.80, 0.83]
    assert check_bars(reports, oracle, priors)[0][1] is False  # wholly below 0.84


def test_a_peer_whose_interval_holds_chance_is_not_distinguishable_from_chance():
    """SSNet at 59.3 with its CI low at 49.9 is not "at or below chance": the data cannot tell it from chance."""
    def row(mean, low, high, g_low, g_high):
        return {"verification": {"random_unseenunheard": {"mean": mean}, "G_unseenunheard": {"mean": 55.0}},
                "bar_ci95_low": low, "bar_ci95_high": high, "g_ci95_low": g_low, "g_ci95_high": g_high}

    methods = {"pins": row(80.0, 0.78, 0.82, 0.52, 0.60), "ssnet": row(59.3, 0.499, 0.687, 0.51, 0.60),
               "dimnet": row(75.0, 0.73, 0.77, 0.53, 0.60)}
    bar, met, measured = peers_bar({"methods": methods})
    assert met is None and "not distinguishable from chance on random: ssnet" in measured
    assert "at or below" not in measured and "rule: above chance where the 95% CI low > 0.5" in bar
    methods["ssnet"] = row(45.0, 0.40, 0.48, 0.51, 0.60)
    assert peers_bar({"methods": methods})[1] is False
    assert "below chance on random: ssnet" in peers_bar({"methods": methods})[2]
    methods["ssnet"] = row(70.0, 0.68, 0.72, 0.40, 0.48)  # 2 of 3 above chance on G: enough
    assert peers_bar({"methods": methods})[1] is True


def test_the_limits_bar_fails_only_where_a_reference_lies_significantly_below_the_run():
    oracle = {"verification_auc": {"random_unseenunheard": 0.9},
              "verification_auc_ci95": {"random_unseenunheard": [0.87, 0.93]}}

    def with_limits(face_limited: float, paired: list[float]) -> dict:
        reports = _reports(0.77, 0.75, 0.51)
        row = {"face_limited": face_limited, "voice_limited": 0.81, "achieved_cosine": 0.77}
        reports["full"]["decomposition"] = {"lists": {"random_unseenunheard": row}, "limits": {"random_unseenunheard": {
            "face_limited": {"cosine": paired}, "voice_limited": {"cosine": [0.04, 0.02, 0.06]}}}}
        return reports

    assert len(check_bars(_reports(0.77, 0.75, 0.51), oracle)) == 5  # no decomposition: no limits bar
    bar, met, measured = check_bars(with_limits(0.67, [-0.10, -0.13, -0.07]), oracle)[-1]
    assert "references are limits" in bar and not met  # the case: 0.67 against the run's 0.77
    assert "face-limited 0.670 vs achieved cosine 0.770: difference -0.100 (95% CI -0.130 to -0.070), below" in measured
    # below by less than the trials can tell: not shown to fail as a limit
    assert check_bars(with_limits(0.76, [-0.01, -0.03, 0.01]), oracle)[-1][1]


def test_a_full_report_from_before_the_limits_is_evaluated_again(tmp_path, monkeypatch):
    import voxface.evaluation.evaluate
    from voxface.demo import _evaluate_step

    train, backend, out = tmp_path / "train", tmp_path / "backend", tmp_path / "eval"
    for path in (train / "checkpoints" / "best.ckpt", backend / "backend.json", out / "report.json"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("{}")
    oracle = {"verification_auc": {}}

    class Evaluated(Exception):
        pass

    def evaluate(*args, **kwargs):
        raise Evaluated

    monkeypatch.setattr(voxface.evaluation.evaluate, "evaluate", evaluate)
    old = {"oracle_ceiling": {}, "decomposition": {"knob_references": {"face_limited": {}}, "lists": {}},
           "test_identities": 80}
    (out / "report.json").write_text(json.dumps(old))
    with pytest.raises(Evaluated):  # its face-limited reference was fitted the old way and never compared
        _evaluate_step("full", train, out, tmp_path, None, oracle, backend)
    (out / "report.json").write_text(json.dumps({**old, "decomposition": {**old["decomposition"], "limits": {}}}))
    assert _evaluate_step("full", train, out, tmp_path, None, oracle, backend)["reused"]
    # an ablation evaluated before every run had its decomposition, or before reports counted test identities
    for stale in ({"oracle_ceiling": {}, "test_identities": 80}, {"oracle_ceiling": {}, "decomposition": {}}):
        (out / "report.json").write_text(json.dumps(stale))
        with pytest.raises(Evaluated):
            _evaluate_step("ot_only", train, out, tmp_path, None, oracle)
    captured = {}

    def evaluate_with(*args, **kwargs):
        captured.update(kwargs)
        raise Evaluated

    monkeypatch.setattr(voxface.evaluation.evaluate, "evaluate", evaluate_with)
    with pytest.raises(Evaluated):
        _evaluate_step("ot_only", train, out, tmp_path, None, oracle)
    assert captured["decomposition"] is True and captured["backend"] is None  # every run gets its decomposition
    (out / "report.json").write_text(json.dumps({"oracle_ceiling": {}, "decomposition": {"lists": {}},
                                                 "test_identities": 80}))
    assert _evaluate_step("ot_only", train, out, tmp_path, None, oracle)["reused"]


def _evaluated_runs(tmp_path, monkeypatch, test_identities: int = 80) -> tuple:
    """Four evaluated runs, each with a decomposition, as the demo leaves them in ``eval/``; the figure's runs
    recorded."""
    import voxface.evaluation.plots
    from voxface.evaluation.report import write_reports
    from voxface.evaluation.result import Evaluation

    keys = [f"{g}_{t}" for t in ("unseenunheard", "seenheard") for g in ("random", "G", "N", "A", "GNA")]
    out = tmp_path / "demo"
    eval_dirs, reports = {}, {}
    for name in (*RUNS, SCRATCH_RUN):
        decomposition = {"lists": {k: {"ceiling": 0.9, "data_cosine": 0.85, "achieved_cosine": 0.7} for k in keys},
                         "ceiling_ci95": {k: [0.87, 0.93] for k in keys}, "train_identities": 24, "probes": {}}
        run = Evaluation(verification={k: {"auc": 0.7, "auc_ci95": [0.6, 0.8], "eer": 0.3, "trials": 40,
                                           "positives": 20} for k in keys}, decomposition=decomposition,
                         test_identities=test_identities)
        eval_dirs[name] = out / "eval" / name
        write_reports(run, eval_dirs[name], name=name, literature=False)
        reports[name] = json.loads((eval_dirs[name] / "report.json").read_text())
    drawn = []
    figure = voxface.evaluation.plots.decomposition_figure

    def recording(runs):
        drawn.append(list(runs))
        return figure(runs)

    monkeypatch.setattr(voxface.evaluation.plots, "decomposition_figure", recording)
    priors = {"lists": {k: {"auc": 0.8, "auc_ci95": [0.78, 0.82]} for k in keys}}
    return out, eval_dirs, reports, priors, drawn


def test_the_demo_report_draws_every_runs_decomposition(tmp_path, monkeypatch):
    from voxface.demo import _report_step

    out, eval_dirs, reports, priors, drawn = _evaluated_runs(tmp_path, monkeypatch)
    folder = _report_step(out, eval_dirs, reports, None, priors=priors, test_identities=80)
    assert drawn[-1] == [*RUNS, SCRATCH_RUN] and (folder / "decomposition.png").is_file()
    assert all(reports[name]["decomposition"]["lists"]["G_seenheard"]["priors_backend"] == 0.8 for name in drawn[-1])
    summary = (folder / "summary.md").read_text()
    assert "every run's ceiling, references" in summary and "> **Only" not in summary  # 80 test identities


def test_a_demo_on_few_test_identities_says_so_atop_its_summary_once(tmp_path, monkeypatch):
    from voxface.demo import _report_step
    from voxface.evaluation.report import ENOUGH_TEST_IDENTITIES

    out, eval_dirs, reports, _, _ = _evaluated_runs(tmp_path, monkeypatch, test_identities=12)
    assert "> **Only 12" in (eval_dirs["full"] / "report.md").read_text()  # each run's own report says it too
    folder = _report_step(out, eval_dirs, reports, None, test_identities=12)
    lines = (folder / "summary.md").read_text().splitlines()
    assert lines[0] == "# voxface demo" and lines[2].startswith(
        f"> **Only 12 unseen-unheard test identities (fewer than {ENOUGH_TEST_IDENTITIES}): a check that the "
        "pipeline runs, not a measurement.**")
    assert sum("test identities (fewer than" in line for line in lines) == 1


def test_demo_on_the_users_own_data_with_their_teacher_and_config(tiny_run, tmp_path, capsys):
    root, base = tiny_run
    out = tmp_path / "mine"
    code = main(["demo", "--data", str(root / "voxsynth"), "--lists", str(root / "voxsynth" / "protocol"),
                 "--face-weights", str(root / "teacher" / "backbone.pth"), "--config", str(base), "--out", str(out),
                 "--quiet", "trainer.epochs=1"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "(given)" in printed and not (out / "voxsynth").exists() and not (out / "teacher").exists()
    assert not (out / "voice_prior").exists() and not (out / "train" / SCRATCH_RUN).exists()  # VoxSynth's voices only
    for name in RUNS:
        config = (out / "train" / name / "config.yaml").read_text()
        assert f"out: {out / 'train' / name}" in config and "epochs: 1" in config
    bars = json.loads((out / "report" / "bars.json").read_text())
    assert len(bars) == 5  # no oracle ceiling on the user's data; the tree is VoxSynth's, so its knobs give limits
    table2 = (out / "report" / "table2_full.md").read_text()
    assert "| ADSM |" not in table2 and "| Sun & Su 2025 |" not in table2  # published rows: VoxCeleb1 lists only
    assert table2.count("**") <= 2 * 10  # one bold cell per column at most


def test_demo_options_that_need_data_say_so(capsys):
    assert main(["demo", "--face-weights", "w.pth"]) == 2
    assert "go with --data" in capsys.readouterr().err
    assert main(["demo", "--data", "/nonexistent", "--face-weights", "w.pth"]) == 2
    assert capsys.readouterr().err.strip() == "voxface: error: --data /nonexistent does not exist"
    assert main(["demo", "--data", "/nonexistent"]) == 2
    assert "--data needs --face-weights" in capsys.readouterr().err
    assert main(["demo", "--size", "huge", "--out", "/tmp/never"]) == 2
    assert "--size must be one of default, tiny" in capsys.readouterr().err
    assert main(["demo", "--seed", "-1", "--out", "/tmp/never"]) == 2
    assert capsys.readouterr().err.strip() == "voxface: error: --seed must be between 0 and 4294967295 (got -1)"
    assert main(["demo", "--epochs", "0", "--out", "/tmp/never"]) == 2
    assert capsys.readouterr().err.strip() == "voxface: error: --epochs must be at least 1 (got 0)"
    assert main(["demo", "--workers", "0", "--out", "/tmp/never"]) == 2
    said = capsys.readouterr()
    assert said.err == "voxface: error: --workers must be at least 1 (got 0)\n" and said.out == ""  # no step began
    assert not Path("/tmp/never").exists()


def test_demo_and_synth_refuse_a_file_for_a_folder_and_a_negative_seed(tmp_path, capsys):
    (tmp_path / "a_file").write_text("")
    assert main(["demo", "--out", str(tmp_path / "a_file")]) == 2
    assert "--out" in capsys.readouterr().err and (tmp_path / "a_file").read_text() == ""
    assert main(["synth", "--out", str(tmp_path / "s"), "--seed", "-1", "--identities", "40"]) == 2
    assert capsys.readouterr().err.strip() == "voxface: error: --seed must be between 0 and 4294967295 (got -1)"
    assert not (tmp_path / "s").exists()


def _numbers(out) -> dict:
    """Every figure the demo reports: ceilings, the priors it pretrained, validation and every list's AUC, per
    run."""
    numbers = {"oracle": json.loads((out / "voxsynth" / "oracle.json").read_text())}
    for folder in ("teacher", "voice_prior"):
        summary = json.loads((out / folder / "pretrain.json").read_text())
        numbers[folder] = (summary["heldout_verification_auc"], summary["heldout_eer"], summary.get("probes"))
    for name in (*RUNS, SCRATCH_RUN):
        numbers[f"{name} best val"] = json.loads((out / "train" / name / "run.json").read_text())["best_val_auc"]
        report = json.loads((out / "eval" / name / "report.json").read_text())
        numbers[name] = {key: (v["auc"], v["auc_ci95"], v.get("backend", {}).get("auc"))
                         for key, v in report["verification"].items()}
    return numbers


def test_seeded_demo_reruns_give_identical_numbers(tmp_path):
    """Two fresh tiny demos, one generating with 1 process and one with 2: every number is equal, exactly. With
    --train-priors, so that every step that draws runs twice: the priors' own sets and their pretraining too (the
    shipped priors are files); one epoch a run, as a second epoch draws nothing the first did not."""
    runs = []
    for workers in ("1", "2"):
        out = tmp_path / f"demo{workers}"
        assert main(["demo", "--size", "tiny", "--out", str(out), "--quiet", "--workers", workers, "--train-priors",
                     "--epochs", "1"]) == 0
        runs.append(_numbers(out))
    assert runs[0] == runs[1]


def test_by_default_the_demo_stands_on_the_shipped_release_priors(tiny_run, tmp_path, capsys):
    """Nothing pretrained: the face teacher and the voice prior are the release files, every run reads faces at the
    face prior's 64 px, and the full run's voice encoder starts from the voice prior (the configurations the demo
    trains with, made as run_demo makes them)."""
    from voxface.demo import SIZES, _priors_step, face_size, run_config

    out, data = tmp_path / "demo", tiny_run[0] / "voxsynth"
    size = SIZES["tiny"]
    priors = _priors_step(out, size, None, train_priors=False, workers=1, progress=False)
    assert priors["face"]["weights"] == str(release_prior("face"))
    assert priors["voice"]["weights"] == str(release_prior("voice"))
    assert "the release face prior, shipped" in capsys.readouterr().out
    assert not out.exists()  # nothing pretrained, no prior sets rendered
    faces_at = face_size(priors["face"])
    voice = Path(priors["voice"]["weights"])
    configs = {name: run_config(out, name, data, str(data / "protocol"), Path(priors["face"]["weights"]), size,
                                None, voice_prior=voice, faces_at=faces_at).to_dict() for name in (*RUNS, SCRATCH_RUN)}
    for name, trained in configs.items():
        assert trained["face"]["weights"] == str(release_prior("face")) and trained["data"]["face_size"] == 64, name
        assert trained["audio"]["weights"] == ("" if name == SCRATCH_RUN else str(release_prior("voice"))), name


def test_the_summary_files_name_every_run_and_the_runs_of_the_similarity_figure(tmp_path, monkeypatch):
    """The Files section is derived from the runs there are: each evaluated run's plots (Table 4's scratch run
    included) and the Fig. 5 figure named with the count and names of the runs it draws."""
    import numpy as np

    from voxface.demo import _report_step

    out, eval_dirs, reports, _, _ = _evaluated_runs(tmp_path, monkeypatch)
    for folder in eval_dirs.values():
        (folder / "plots").mkdir()
        matrices = {k: np.eye(3) for k in ("T", "F", "V")}
        np.savez(folder / "plots" / "fig5_similarity.npz", **matrices)
    summary = (_report_step(out, eval_dirs, reports, None, test_identities=80) / "summary.md").read_text()
    files = summary.split("## Files")[1]
    for name in (*RUNS, SCRATCH_RUN):
        assert f"- {eval_dirs[name] / 'plots'}: {name}'s ROC, score distributions, PCA and similarity plots" in files
    assert ("fig5_similarity.png: Fig. 5-style similarity structure of the 3 runs of Table 3 (full, contrastive and "
            "ot_only)") in files
    assert "three runs" not in summary


def test_the_demo_sets_no_voice_shape_beside_a_voice_prior():
    """The voice prior fixes the voice encoder's shape (the weights are loaded whole): the demo's runs set no
    audio.channels / audio.embedding_size of their own that a run's record would then contradict."""
    from voxface.demo import SIZES

    for size in SIZES.values():
        assert not [s for s in size.train if s.startswith(("audio.channels=", "audio.embedding_size="))]
