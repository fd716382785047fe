"""``voxface benchmark``: every method on one feature store, checkpoints chosen on validation only, resumable."""

import csv
import json
import shutil

import numpy as np
import pytest

from voxface.benchmark import EVAL_FILE as EVAL
from voxface.benchmark import peer_configs, plan, run_benchmark, store_overrides
from voxface.cli import main
from voxface.errors import ConfigError, VoxfaceError
from voxface.methods import METHODS
from voxface.protocol.lists import VERIFICATION_GROUPS
from voxface.training.config import load_config


def _tiny_overrides(tiny_run, tiny_stores):
    root, base = tiny_run
    teacher = load_config(base, check_paths=False).face.weights
    return [f"data.root={root / 'voxsynth'}", f"data.lists={root / 'voxsynth' / 'protocol'}", f"face.weights={teacher}",
            "data.face_size=32", "data.val_clips_per_identity=6", "optim.batch_size=8", "trainer.epochs=2",
            *tiny_stores]


@pytest.mark.parametrize("config_set", ["voxsynth", "voxceleb1"])
def test_every_registered_method_has_a_benchmark_configuration_naming_it(config_set):
    shipped = peer_configs(config_set)
    assert set(shipped) == set(METHODS)
    for name, config in shipped.items():
        loaded = load_config(config, check_paths=False)
        assert loaded.method.name == name and loaded.feature_mode


def test_a_benchmark_refuses_methods_it_cannot_compare(tmp_path):
    with pytest.raises(ConfigError, match="did you mean 'sun_su_2025'"):
        plan(tmp_path, methods=["sun_su_2026"])
    with pytest.raises(ConfigError, match="seeds must be at least 1"):
        plan(tmp_path, seeds=0)
    with pytest.raises(ConfigError, match="--set must be one of"):
        plan(tmp_path, config_set="voxceleb2")
    assert store_overrides(tmp_path, ["features.face=/x"]) == ["features.face=/x",
                                                                f"features.voice={tmp_path / 'features' / 'voices'}"]
    with pytest.raises(ConfigError, match="names no method"):
        plan(tmp_path, methods=[""])
    with pytest.raises(ConfigError, match="'pins,,dimnet' has an empty name between commas"):
        plan(tmp_path, methods="pins,,dimnet")
    with pytest.raises(ConfigError, match="names pins twice"):
        plan(tmp_path, methods="pins,pins")
    with pytest.raises(ConfigError, match="method.name cannot be overridden"):
        plan(tmp_path, overrides=["method.name=pins"])
    with pytest.raises(ConfigError, match="^method dimnet: .*method.args.margin"):  # pins takes it, DIMNet does not
        plan(tmp_path, methods="pins,dimnet", overrides=["method.args.margin=0.5"])
    (tmp_path / "afile").write_text("")
    with pytest.raises(ConfigError, match="is a file"):
        plan(tmp_path / "afile")


def test_ctrl_c_in_a_run_stops_the_benchmark(tmp_path, monkeypatch):
    """An interrupted run (Ctrl-C inside training) is not evaluated as if it had finished: the benchmark stops."""
    from voxface.benchmark import train_once
    from voxface.training import run as run_module

    monkeypatch.setattr(run_module, "train", lambda config, resume=False: {"interrupted": True, "steps": 3})
    (planned,) = plan(tmp_path, methods=["pins"])
    with pytest.raises(KeyboardInterrupt):
        train_once(planned)


def _plant_test_lists(lists):
    """Replace every unseen-unheard veriflist and every matching list by a file no parser reads; return a restore."""
    planted = [p for p in (lists / "veriflist").iterdir() if "unseenunheard" in p.name] + list(
        (lists / "matching").iterdir())
    saved = {p: p.read_bytes() for p in planted}
    for path in planted:
        path.write_bytes(b"\x00planted: training must not read a test list\x00")

    def restore():
        for path, content in saved.items():
            path.write_bytes(content)
    return restore


def test_training_reads_no_test_list_and_keeps_the_best_validation_checkpoint(tiny_run, tiny_stores, tmp_path):
    """Model selection on validation only: with every unseen-unheard and matching list planted with unreadable bytes,
    every method still trains (so none was read), and the checkpoint kept is the best validation AUC's. (The
    seen-heard lists are read at training, for which videos to hold out of it, as the protocol requires.)"""
    from voxface.benchmark import evaluate_once, train_once

    root, _ = tiny_run
    restore = _plant_test_lists(root / "voxsynth" / "protocol")
    try:
        runs = plan(tmp_path, methods=sorted(METHODS), overrides=_tiny_overrides(tiny_run, tiny_stores))
        for run in runs:
            summary = train_once(run)
            logged = [float(r["val_auc"]) for r in csv.DictReader(
                (run.folder / "logs" / "version_0" / "metrics.csv").open()) if r.get("val_auc")]
            assert len(logged) == 2 and summary["best_val_auc"] == pytest.approx(max(logged)), run.method
            assert (run.folder / "checkpoints" / "best.ckpt").is_file()
        with pytest.raises(VoxfaceError):  # the planted lists are unreadable indeed: the evaluation reads them
            evaluate_once(runs[0])
    finally:
        restore()


def test_the_benchmark_writes_table2_for_every_method_and_resumes(tiny_run, tiny_stores, tmp_path, capsys):
    methods = ["sun_su_2025", sorted(set(METHODS) - {"sun_su_2025"})[0]]
    out = tmp_path / "bench"
    overrides = _tiny_overrides(tiny_run, tiny_stores)
    command = ["benchmark", "--out", str(out), "--methods", ",".join(methods), "--seeds", "2", "--quiet"]
    assert main([*command, *overrides]) == 0
    printed, errors = capsys.readouterr()
    assert "Epoch" not in errors  # --quiet: no run's progress bar either
    table = json.loads((out / "benchmark.json").read_text())
    assert set(table["methods"]) == set(methods) and table["seeds"] == 2
    for name in methods:
        row = table["methods"][name]
        assert set(row["verification"]) == {f"{g}_{t}" for t in ("unseenunheard", "seenheard")
                                            for g in VERIFICATION_GROUPS}
        aucs = [json.loads((out / "runs" / name / f"seed{s}" / "benchmark_eval.json").read_text())
                ["verification"]["random_unseenunheard"]["auc"] for s in (0, 1)]
        assert row["verification"]["random_unseenunheard"]["mean"] == pytest.approx(50 * sum(aucs))
        assert row["matching"] and row["retrieval"]
        assert METHODS[name].citation and METHODS[name].citation in printed
    assert "oracle ceiling" in table["references"] and any("data reference" in k for k in table["references"])
    assert any(k.startswith("PINs (published: PINs 901/100/250") for k in table["published"])
    markdown = (out / "benchmark.md").read_text()
    assert "±" in markdown and "Each method ran its shipped configuration" in markdown
    assert table["budget"]["batch_size"] == 8 and table["budget"]["epochs"] == 2 and isinstance(
        table["budget"]["steps"], int)
    assert table["methods"]["sun_su_2025"]["configuration"]["method.args.voice_hidden"] == [256]  # shipped values
    # beside each row, DeLong's paired test against the best row, on the seed-averaged scores stored at evaluation
    from voxface.benchmark import SIGNIFICANCE_LISTS, read_scores
    from voxface.metrics import delong_test

    for key in SIGNIFICANCE_LISTS:
        best = max(methods, key=lambda m: table["methods"][m]["verification"][key]["mean"])
        other = next(m for m in methods if m != best)
        tested = table["methods"][other]["significance"][key]
        assert table["methods"][best]["significance"][key]["p"] == 1.0 and tested["best"] == best

        def averaged(name, key=key):
            stored = [read_scores(out / "runs" / name / f"seed{s}", key) for s in (0, 1)]
            assert all(np.array_equal(stored[0][0], rows) for rows, _, _ in stored)
            return stored[0][1], np.mean([scores for _, _, scores in stored], axis=0)

        labels, mine = averaged(other)
        difference, p = delong_test(labels, mine, averaged(best)[1])
        assert tested["p"] == pytest.approx(p) and tested["difference"] == pytest.approx(100 * difference)
        assert tested["tied"] == (p >= 0.05 or difference >= 0)
        assert ("≈ best (p " if tested["tied"] else "below (p ") in markdown
    # Run again: every run and evaluation is reused (nothing retrained); a lost evaluation is redone alone.
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("runs/*/seed*/checkpoints/best.ckpt")}
    (out / "runs" / methods[1] / "seed1" / "benchmark_eval.json").unlink()
    shutil.rmtree(out / "runs" / methods[0] / "seed1")  # as if it never ran
    again = run_benchmark(out, methods=methods, seeds=2, overrides=overrides, say=lambda _: None)
    for path, stamp in stamps.items():
        if methods[0] not in str(path) or "seed1" not in str(path):
            assert path.stat().st_mtime_ns == stamp, path
    assert again["methods"][methods[1]]["verification"] == table["methods"][methods[1]]["verification"]
    # other settings into the same folder: a finished run is not taken for the new one (more epochs: it continues)
    longer = run_benchmark(out, methods=methods[:1], overrides=[*overrides, "trainer.epochs=3"],
                           say=lambda _: None)
    run = json.loads((out / "runs" / methods[0] / "seed0" / "run.json").read_text())
    assert run["resumed"] and run["epochs"] == 3 and longer["methods"][methods[0]]["best_val_auc"][0] is not None


def test_bad_data_and_other_settings_are_refused_once_before_any_worker_and_a_worker_failure_is_one_line(
        tmp_path, capsys):
    """--jobs 2 with a data root that holds no data: one line from the parent, no worker started. A rerun with
    another optim.batch_size into the same folder: one line in the benchmark's words (nobody passed --resume). A run
    that fails inside a worker: the one line of its failure."""
    import yaml

    from voxface.benchmark import _run_in_processes
    from voxface.training.config import absolute_locations

    weights, empty, out = tmp_path / "weights.pth", tmp_path / "empty", tmp_path / "bench"
    weights.write_bytes(b"")  # only its existence is checked before the data
    empty.mkdir()
    settings = [f"data.root={empty}", "data.lists=voxceleb1", f"face.weights={weights}", f"audio.weights={weights}"]
    command = ["benchmark", "--out", str(out), "--methods", "pins,dimnet", "--jobs", "2", "--quiet", *settings]
    assert main(command) == 2
    err = capsys.readouterr().err
    assert err == f"voxface: error: audio root {empty / 'wav'} does not exist\n"
    assert not (out / "runs").exists() and not (out / "features").exists()

    (planned, _) = plan(out, methods="pins,dimnet", overrides=store_overrides(out, [*settings, "optim.batch_size=8"]))
    (planned.folder / "checkpoints").mkdir(parents=True)
    (planned.folder / "checkpoints" / "last.ckpt").write_bytes(b"not a checkpoint")
    (planned.folder / "config.yaml").write_text(yaml.safe_dump(absolute_locations(planned.config).to_dict()))
    assert main([*command, "optim.batch_size=16"]) == 2
    err = capsys.readouterr().err
    assert err == (f"voxface: error: pins (seed 0): {planned.folder} holds a run made with optim.batch_size=8, not "
                   f"16; a benchmark continues the runs in its folder with their own settings: give another --out "
                   f"for other settings, or delete {planned.folder} to train that run afresh\n")

    # in a worker (spawned: it reads the run's folder itself): its damaged last.ckpt fails the run, in one line
    with pytest.raises(VoxfaceError) as caught:
        _run_in_processes([planned], 2, lambda *args: pytest.fail("the run cannot have finished"))
    assert str(caught.value).startswith(f"pins (seed 0): {planned.folder / 'checkpoints' / 'last.ckpt'} is not a "
                                        "PyTorch weights file")
    assert "\n" not in str(caught.value)


def test_train_names_resume_only_where_it_was_asked_for(tmp_path):
    import torch
    import yaml

    from voxface.training.config import absolute_locations
    from voxface.training.run import train

    config = load_config("voxsynth/peers/pins", [f"trainer.out={tmp_path / 'run'}", "optim.batch_size=16"],
                         check_paths=False)
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    torch.save({}, tmp_path / "run" / "checkpoints" / "last.ckpt")
    saved = absolute_locations(config).to_dict()
    saved["optim"]["batch_size"] = 8
    (tmp_path / "run" / "config.yaml").write_text(yaml.safe_dump(saved))
    with pytest.raises(ConfigError, match=r"^--resume with a different optim.batch_size \(8 in .*, 16 now\)"):
        train(config, resume=True, resume_option="--resume")  # voxface train --resume
    with pytest.raises(ConfigError) as caught:  # a caller that continues runs by itself
        train(config, resume=True)
    assert str(caught.value) == (f"{tmp_path / 'run'} holds a run made with optim.batch_size=8, not 16: a run "
                                 "continues only with its own settings (the training length and where files are may "
                                 f"change); train into another folder, or delete {tmp_path / 'run'} to start it afresh")


def test_a_run_folder_saved_before_configs_took_the_voice_shape_from_the_weights_continues():
    """With audio.weights set the voice shape is the weights' (load_config reads it): a config.yaml saved before
    that holds the random encoder's default shape beside the same weights, which is no conflict; without weights
    the shape is a setting like any other."""
    from voxface.training.run import resume_conflict

    config = load_config("voxsynth/base", ["audio.weights=voxsynth-prior"], check_paths=False)
    saved = config.to_dict()
    saved["audio"]["channels"], saved["audio"]["embedding_size"] = [1024, 1024, 1024, 1024, 3072], 192
    assert config.audio.channels != saved["audio"]["channels"]
    assert resume_conflict(saved, config) is None
    saved["optim"]["batch_size"] = config.optim.batch_size + 1
    assert resume_conflict(saved, config)[0] == "optim.batch_size"
    scratch = load_config("voxsynth/base", ["audio.weights=", "audio.channels=[32,32,32,32,96]"], check_paths=False)
    before = scratch.to_dict()
    before["audio"]["channels"] = [64, 64, 64, 64, 192]
    assert resume_conflict(before, scratch)[0] == "audio.channels"


# ---------------------------------------------------------------- equal terms, tuning, significance


@pytest.mark.parametrize("config_set", ["voxsynth", "voxceleb1"])
def test_every_method_trains_heads_on_both_modalities_with_one_budget(config_set):
    """Equal terms on features: every shipped configuration has the base's batch and training length (plan refuses
    others), and every method's face and voice paths both reach parameters that train."""
    import torch

    from voxface.methods.base import LabelSpace, Towers

    runs = plan("unused", config_set=config_set)  # refuses configurations that differ in budget
    assert len({(r.config.optim.batch_size, r.config.trainer.epochs, r.config.trainer.max_steps) for r in runs}) == 1
    labels = LabelSpace(identities=12, videos=24, clips=48)
    for run in runs:
        method = METHODS[run.method](run.config.method_args(), Towers(None, None, 24, 16, labels=labels)).eval()
        for side, head, width in (("face", method.face_head, 24), ("voice", method.voice_head, 16)):
            embedded = head(torch.randn(6, width))
            out = (embedded * torch.randn_like(embedded)).sum()  # not .sum(): a normalised output's can be constant
            params = [p for p in method.parameters() if p.requires_grad]
            grads = torch.autograd.grad(out, params, allow_unused=True)
            assert any(g is not None and g.abs().sum() > 0 for g in grads), (run.method, side)
    assert runs[[r.method for r in runs].index("sun_su_2025")].config.method.args["voice_hidden"]


def test_a_benchmark_refuses_methods_with_another_budget(tmp_path):
    from voxface.benchmark import PlannedRun, check_shared

    runs = [PlannedRun(m, 0, load_config(f"voxsynth/peers/{m}", extra, check_paths=False))
            for m, extra in (("pins", []), ("dimnet", ["optim.batch_size=64"]))]
    with pytest.raises(ConfigError, match=r"^dimnet's configuration sets optim.batch_size to 64 where pins's has 32: "
                                          r"a benchmark trains every method on one budget"):
        check_shared(runs)


def _space_file(tmp_path, search, extends="voxsynth/peers/base"):
    import yaml

    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump({"extends": extends, "search": search}, sort_keys=False))
    return path


def test_a_search_space_is_parsed_and_drawn_reproducibly_within_its_bounds(tmp_path):
    from voxface.tuning import draw, search_space

    search = {"optim.lr_mapping": {"log_uniform": [1.0e-4, 1.0e-2]},
              "method.args.temperature": {"uniform": [0.05, 0.5]},
              "method.args.mapping_hidden": [[32], [64], [128]],
              "method.args.voice_hidden": {"same_as": "method.args.mapping_hidden"},
              "method.args.sinkhorn_reg": {"uniform": [1, 9]}}  # integer bounds: integers (a float field takes them)
    space = search_space(_space_file(tmp_path, search))
    assert [s.kind for s in space.values()] == ["log_uniform", "uniform", "choice", "same_as", "uniform"]
    draws = [draw(space, "sun_su_2025", k) for k in range(40)]
    assert draws == [draw(space, "sun_su_2025", k) for k in range(40)]  # seeded: the same every time
    assert draws[:3] != [draw(space, "pins", k) for k in range(3)]  # each method its own stream
    for values in draws:
        assert list(values) == list(search)
        assert 1e-4 <= values["optim.lr_mapping"] <= 1e-2 and 0.05 <= values["method.args.temperature"] <= 0.5
        assert values["method.args.mapping_hidden"] in search["method.args.mapping_hidden"]
        assert values["method.args.voice_hidden"] == values["method.args.mapping_hidden"]
        assert isinstance(values["method.args.sinkhorn_reg"], int) and 1 <= values["method.args.sinkhorn_reg"] <= 9
        assert float(f"{values['optim.lr_mapping']:.3g}") == values["optim.lr_mapping"]  # three digits, for tables
    lrs = np.log10([v["optim.lr_mapping"] for v in draws])  # log-uniform: both decades visited
    assert (lrs < -3).any() and (lrs > -3).any()
    assert len({tuple(v["method.args.mapping_hidden"]) for v in draws}) == 3
    # a trial's draw depends neither on how many trials nor on the other keys
    fewer = search_space(_space_file(tmp_path, {"optim.lr_mapping": search["optim.lr_mapping"]}))
    assert [draw(fewer, "sun_su_2025", k)["optim.lr_mapping"] for k in range(5)] == [
        v["optim.lr_mapping"] for v in draws[:5]]
    # a file extending another keeps its space, each key it names replaced whole
    child = search_space(_space_file(tmp_path, {"method.args.temperature": [0.1, 0.2]},
                                     extends="voxsynth/peers/sun_su_2025"))
    assert child["method.args.temperature"].kind == "choice" and child["optim.lr_mapping"].kind == "log_uniform"


@pytest.mark.parametrize("config_set", ["voxsynth", "voxceleb1"])
def test_every_shipped_configuration_declares_a_valid_search_space(config_set):
    from voxface.tuning import search_space

    for name, config in peer_configs(config_set).items():
        space = search_space(config)  # every key set to its choices and bounds through the loader
        assert "optim.lr_mapping" in space and len(space) >= 3, name


@pytest.mark.parametrize("search, message", [
    ({"method.args.tmperature": [0.1]},
     "search: method.args.tmperature: unknown config key 'method.args.tmperature' (did you mean "
     "'method.args.temperature'?"),
    ({"optim.lr_mapin": {"log_uniform": [1e-4, 1e-2]}},
     "search: optim.lr_mapin: unknown config key 'optim.lr_mapin' (did you mean 'optim.lr_mapping'?"),
    ({"method.args.temperature": [0.1, -1.0]}, "search: method.args.temperature: config value "
                                                "method.args.temperature must be positive"),
    ({"method.args.temperature": {"log_uniform": [0, 1]}},
     "search: method.args.temperature: log_uniform needs [low, high], two positive numbers with low < high, got "
     "[0, 1]"),
    ({"method.args.temperature": {"uniform": [0.5, 0.1]}}, "uniform needs [low, high], two numbers with low < high"),
    ({"method.args.temperature": {"normal": [0, 1]}},
     "search: method.args.temperature must be a list of choices, {uniform: [low, high]}, {log_uniform: [low, "
     "high]} or {same_as: another.key}; got {'normal': [0, 1]}"),
    ({"method.args.temperature": 0.1}, "must be a list of choices"),
    ({"method.args.temperature": []}, "search: method.args.temperature lists no choice"),
    ({"method.args.voice_hidden": {"same_as": "method.args.mapping_hidden"}},
     "same_as names 'method.args.mapping_hidden', which the space does not draw itself"),
    ({"optim.batch_size": [16, 32]}, "search: optim.batch_size cannot be tuned: every method shares"),
    ({"trainer.epochs": [2, 4]}, "search: trainer.epochs cannot be tuned"),
])
def test_a_bad_search_space_is_refused_in_one_line_naming_its_file_and_key(tmp_path, search, message):
    from voxface.tuning import search_space

    path = _space_file(tmp_path, search)
    with pytest.raises(ConfigError) as caught:
        search_space(path)
    assert str(caught.value).startswith(f"{path}: ") and message in str(caught.value)
    assert "\n" not in str(caught.value)
    path.write_text("extends: voxsynth/peers/pins\nsearch: [optim.lr_mapping]\n")
    with pytest.raises(ConfigError, match="search: must map config keys to their choices or ranges"):
        search_space(path)
    # training itself ignores the section
    assert load_config(_space_file(tmp_path, search), check_paths=False).method.name == "sun_su_2025"


def test_tuning_refuses_a_negative_budget_and_an_override_of_a_drawn_key(tmp_path, capsys):
    from voxface.benchmark import plan_trials

    assert main(["benchmark", "--out", str(tmp_path), "--methods", "pins", "--tune", "-1", "--quiet"]) == 2
    assert capsys.readouterr().err == ("voxface: error: --tune must be 0 (each method's shipped configuration) or "
                                       "the number of configurations to draw for every method, got -1\n")
    with pytest.raises(ConfigError, match=r"^optim.lr_mapping is given as an override and is in pins's search space"):
        plan_trials(tmp_path, "voxsynth", ["pins"], 2, ["optim.lr_mapping=0.01"])
    trials = plan_trials(tmp_path, "voxsynth", ["pins", "dimnet"], 3)
    assert [(t.method, t.trial, t.seed) for t in trials] == [("pins", k, 0) for k in range(3)] + [
        ("dimnet", k, 0) for k in range(3)]
    assert trials[1].folder == tmp_path / "tune" / "pins" / "trial1"
    assert trials[1].config.method.args["margin"] == trials[1].values["method.args.margin"]


def test_the_trial_kept_is_the_best_on_validation_whatever_the_test_lists_say(tmp_path):
    from voxface.tuning import SELECTION_FILE, select, select_trial

    assert select([0.61, None, 0.64, 0.64, 0.5]) == 2  # the first of equals; a trial that never validated: never
    with pytest.raises(ConfigError, match="no trial validated"):
        select([None, float("nan")])
    folders = []
    for k, (val, test) in enumerate([(0.70, 0.90), (0.75, 0.60), (0.72, 0.95)]):
        folder = tmp_path / f"trial{k}"
        folder.mkdir()
        (folder / "run.json").write_text(json.dumps({"finished": True, "best_val_auc": val}))
        (folder / "benchmark_eval.json").write_text(json.dumps(  # what a test list would say: never read
            {"verification": {"random_unseenunheard": {"auc": test}}}))
        folders.append(folder)
    chosen = select_trial("pins", folders, [{"x": k} for k in range(3)], tmp_path / SELECTION_FILE)
    assert chosen["chosen"] == 1 and chosen["values"] == {"x": 1}
    assert json.loads((tmp_path / SELECTION_FILE).read_text())["tried"][2]["best_val_auc"] == 0.72
    shutil.rmtree(folders[0])
    with pytest.raises(ConfigError, match=r"^pins: .*trial0/run.json does not exist: that trial never finished"):
        select_trial("pins", folders, [{}] * 3)


def test_delong_test_p_value_by_hand_and_from_the_interval():
    import math

    from scipy.stats import norm

    from voxface.metrics import delong_difference, delong_test

    # by hand: placements of a (AUC 1) are all 1; of b, positives [1, 0.5] and negatives [0.5, 1]; the differences'
    # variances are 0.125 / 2 each, so sd = sqrt(0.125), z = 0.25 / sd = 1 / sqrt(2), p = erfc(z / sqrt(2))
    labels = np.array([1, 1, 0, 0])
    difference, p = delong_test(labels, np.array([0.9, 0.8, 0.3, 0.1]), np.array([0.9, 0.2, 0.3, 0.1]))
    assert difference == pytest.approx(0.25) and p == pytest.approx(math.erfc(0.5))
    rng = np.random.default_rng(3)
    labels = rng.random(400) < 0.5
    a, b = labels + rng.normal(0, 1.2, 400), labels + rng.normal(0, 1.5, 400)
    difference, p = delong_test(labels, a, b)
    same, low, high = delong_difference(labels, a, b)
    sd = (high - low) / (2 * norm.ppf(0.975))
    assert difference == pytest.approx(same) and p == pytest.approx(2 * norm.sf(abs(same) / sd))
    assert delong_test(labels, a, a) == (0.0, 1.0)


def test_rows_not_significantly_below_the_best_are_marked_tied():
    from voxface.benchmark import paired_significance
    from voxface.metrics import delong_test

    rng = np.random.default_rng(0)
    n = 600
    labels = rng.random(n) < 0.5
    rows = np.arange(n)
    signal = labels.astype(float)

    def seeds(strength, noise, count=2):
        return [(rows, labels, strength * signal + rng.normal(0, noise, n)) for _ in range(count)]

    scores = {"strong": seeds(1.0, 0.8), "close": seeds(0.97, 0.8), "weak": seeds(0.3, 1.0)}
    # a run that lost trial 5 (a missing file): every row is tested on the trials all scored
    scores["close"][1] = (np.delete(rows, 5), np.delete(labels, 5), np.delete(scores["close"][1][2], 5))
    tested = paired_significance(scores, "strong")
    assert tested["strong"] == {"best": "strong", "difference": 0.0, "p": 1.0, "tied": True, "trials": n - 1}
    assert tested["close"]["tied"] and tested["close"]["p"] >= 0.05
    assert not tested["weak"]["tied"] and tested["weak"]["p"] < 1e-6 and tested["weak"]["difference"] < 0
    # the p-value is DeLong's on the seed-averaged scores of the common trials, computed here a second way
    keep = np.delete(rows, 5)
    average = {m: np.mean([s[np.searchsorted(r, keep)] for r, _, s in runs], axis=0) for m, runs in scores.items()}
    difference, p = delong_test(labels[keep], average["weak"], average["strong"])
    assert tested["weak"]["p"] == pytest.approx(p) and tested["weak"]["difference"] == pytest.approx(100 * difference)
    with pytest.raises(ValueError, match="different labels"):
        paired_significance({"a": [(rows, labels, signal)], "b": [(rows, ~labels, signal)]}, "a")


def test_tuning_reads_no_test_list_before_the_final_evaluation(tiny_run, tiny_stores, tmp_path):
    """--tune with every unseen-unheard and matching list planted with unreadable bytes: every trial trains, each
    method's trial is chosen (on the trials' validation AUC) and its final run trains; only the final evaluation
    reads a planted list, and fails there."""
    root, _ = tiny_run
    methods = ["pins", "sun_su_2025"]
    restore = _plant_test_lists(root / "voxsynth" / "protocol")
    try:
        with pytest.raises(VoxfaceError):
            run_benchmark(tmp_path, methods=methods, tune=2, overrides=_tiny_overrides(tiny_run, tiny_stores),
                          say=lambda _: None)
    finally:
        restore()
    for name in methods:
        selection = json.loads((tmp_path / "tune" / name / "selection.json").read_text())
        aucs = [json.loads((tmp_path / "tune" / name / f"trial{k}" / "run.json").read_text())["best_val_auc"]
                for k in range(2)]
        assert selection["chosen"] == int(np.argmax(aucs)) and [t["best_val_auc"] for t in selection["tried"]] == aucs
        assert not list((tmp_path / "tune" / name).glob("trial*/benchmark_*"))  # trials are never evaluated
    assert (tmp_path / "tune" / methods[0] / "seed0" / "checkpoints" / "best.ckpt").is_file()


def test_benchmark_tune_trains_the_choice_with_the_seeds_says_it_and_resumes(tiny_run, tiny_stores, tmp_path):
    import yaml

    out = tmp_path / "bench"
    overrides = _tiny_overrides(tiny_run, tiny_stores)
    command = ["benchmark", "--out", str(out), "--methods", "pins", "--tune", "2", "--seeds", "2", "--quiet"]
    assert main([*command, *overrides]) == 0
    table = json.loads((out / "benchmark.json").read_text())
    row, selection = table["methods"]["pins"], json.loads((out / "tune" / "pins" / "selection.json").read_text())
    assert table["tune"] == 2 and row["tuning"]["chosen"] == selection["chosen"]
    assert row["configuration"] == selection["values"] == selection["tried"][selection["chosen"]]["values"]
    for seed in (0, 1):
        saved = yaml.safe_load((out / "tune" / "pins" / f"seed{seed}" / "config.yaml").read_text())
        assert saved["trainer"]["seed"] == seed
        assert saved["method"]["args"]["margin"] == row["configuration"]["method.args.margin"]
        assert saved["optim"]["lr_mapping"] == row["configuration"]["optim.lr_mapping"]
    markdown = (out / "benchmark.md").read_text()
    assert "chosen among 2 drawn from the search space" in markdown
    assert f"margin={row['configuration']['method.args.margin']}" in markdown and "| best | best |" in markdown
    with (out / "benchmark.csv").open() as handle:
        (written,) = [r for r in csv.DictReader(handle) if r["row"] == "pins"]
    assert written["tuning_chosen_trial"] == str(selection["chosen"]) and "margin=" in written["configuration"]
    assert written["random_unseenunheard_p_vs_best"] == "1" and written["G_unseenunheard_tied_with_best"] == "true"
    # again: every trial and run is reused
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("tune/pins/*/checkpoints/best.ckpt")}
    assert len(stamps) == 4
    again = run_benchmark(out, methods="pins", seeds=2, tune=2, overrides=overrides, say=lambda _: None)
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert again["methods"]["pins"]["verification"] == row["verification"]


# ---------------------------------------------------------------- the end-to-end track (--media)


@pytest.mark.parametrize("config_set", ["voxsynth", "voxceleb1"])
def test_planning_the_media_track_strips_the_stores_and_gives_every_method_one_budget(config_set, tmp_path):
    from voxface.benchmark import media_config

    features = {r.method: r.config for r in plan(tmp_path, config_set)}
    runs = plan(tmp_path / "media", config_set, media=True)
    assert [r.method for r in runs] == sorted(METHODS) and "media" not in peer_configs(config_set)
    budget = {(c.optim.batch_size, c.trainer.epochs, c.trainer.max_steps, c.optim.lr_audio, c.optim.schedule,
               c.optim.step_gamma, c.optim.step_every_epochs) for c in (r.config for r in runs)}
    assert len(budget) == 1  # one budget for every method ...
    (batch, epochs, *_), = budget  # ... the features track's batch and epochs: step-scaled settings keep their meaning
    assert {(c.optim.batch_size, c.trainer.epochs) for c in features.values()} == {(batch, epochs)}
    for run in runs:
        config, shipped = run.config, features[run.method]
        assert not config.feature_mode and config.features.face == config.features.voice == ""
        assert config.face.frozen and config.face.weights == shipped.face.weights  # the frozen face teacher
        assert config.audio.weights == shipped.audio.weights  # the voice prior, trained: nothing freezes it
        assert str(run.folder) == str(tmp_path / "media" / "runs" / run.method / "seed0")
        own = {k: v for k, v in shipped.method.args.items() if k != "voice_hidden"}  # the method's heads and loss
        assert config.method.name == run.method and {k: config.method.args[k] for k in own} == own
        assert config.optim.lr_mapping == shipped.optim.lr_mapping
    # the paper's method has no voice MLP once its voice encoder trains (the features track's stand-in for it)
    paper = next(r.config for r in runs if r.method == "sun_su_2025")
    assert paper.method.args["voice_hidden"] == [] and features["sun_su_2025"].method.args["voice_hidden"]
    assert media_config(config_set, "sun_su_2025").endswith("peers/media/sun_su_2025")
    assert media_config(config_set, "pins") == f"{config_set}/peers/pins"
    with pytest.raises(ConfigError, match=r"end-to-end track \(--media\) trains on the media: leave features"):
        plan(tmp_path / "media", config_set, methods="pins", media=True, overrides=["features.face=/x",
                                                                                  "features.voice=/y"])
    with pytest.raises(ConfigError, match=r"end-to-end track \(--media\) trains on the media: leave features"):
        plan(tmp_path / "media", config_set, methods="pins", media=True, overrides=["features.face=/x"])  # one
    # a wrong key outside the methods' own arguments is wrong for all of them: no method named
    with pytest.raises(ConfigError, match=r"^command-line override 'optim.lrr=0.1': unknown config key"):
        plan(tmp_path / "bad", config_set, methods="pins,dimnet", overrides=["optim.lrr=0.1"])
    with pytest.raises(ConfigError, match=r"^command-line override 'optim': it is not of the form section.key=value"):
        plan(tmp_path / "bad", config_set, methods="pins,dimnet", overrides=["optim"])
    # one a method's own arguments refuse is that method's
    with pytest.raises(ConfigError, match=r"^method pins: command-line override 'method.args.nosuch=1': unknown"):
        plan(tmp_path / "bad", config_set, methods="pins,dimnet", overrides=["method.args.nosuch=1"])


def test_a_tiny_media_benchmark_trains_end_to_end_resumes_and_writes_its_table_beside_the_features_track(
        tiny_run, tiny_stores, tmp_path, capsys):
    import yaml

    methods, out = ["dimnet", "sun_su_2025"], tmp_path / "bench"
    overrides = _tiny_overrides(tiny_run, tiny_stores)
    assert main(["benchmark", "--out", str(out), "--methods", ",".join(methods), "--quiet", *overrides]) == 0
    media = [o for o in overrides if not o.startswith("features.")] + [
        "trainer.epochs=1", "data.crop_seconds=1.0", "data.val_crop_seconds=2.0"]
    capsys.readouterr()
    assert main(["benchmark", "--media", "--out", str(out), "--methods", ",".join(methods), "--jobs", "2", "--quiet",
                 *media]) == 0
    printed = capsys.readouterr().out
    assert f"-> {out / 'media'}" in printed and "end-to-end track" in printed
    table = json.loads((out / "media" / "benchmark.json").read_text())
    assert table["track"] == "media" and set(table["methods"]) == set(methods)
    caches = list((out / "media" / "teacher_cache").iterdir())
    assert len(caches) == 1 and caches[0].name.startswith("teacher_")  # made once, for every run
    for name in methods:
        run = out / "media" / "runs" / name / "seed0"
        config = yaml.safe_load((run / "config.yaml").read_text())
        assert config["features"] == {"voice": "", "face": ""} and config["face"]["frozen"]
        assert config["face"]["cache_dir"] == str((out / "media" / "teacher_cache").resolve())
        assert json.loads((run / "run.json").read_text())["finished"]
        assert not (run / "teacher_cache").exists()
        state = __import__("torch").load(run / "checkpoints" / "best.ckpt", weights_only=True)["state_dict"]
        assert any(key.startswith("method.voice_encoder.") for key in state)  # the voice encoder trained with it
    markdown = (out / "media" / "benchmark.md").read_text()
    assert markdown.startswith("# Every method under the official lists (voxsynth; end-to-end track)")
    assert "trained end to end on the media" in markdown and "Both tracks" in markdown
    assert (out / "benchmark.md").read_text().startswith("# Every method under the official lists (voxsynth; "
                                                         "features track)")
    both = markdown.split("Both tracks")[1]
    features = json.loads((out / "benchmark.json").read_text())["methods"]
    for name in methods:
        row = next(line for line in both.splitlines() if line.startswith(f"| {METHODS[name].citation} |"))
        before = features[name]["verification"]["random_unseenunheard"]["mean"]
        after = table["methods"][name]["verification"]["random_unseenunheard"]["mean"]
        assert row.split(" | ")[1:3] == [f"{before:.1f}", f"{after:.1f}"]
    # Run again: nothing retrained; a lost evaluation is redone alone
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("media/runs/*/seed0/checkpoints/*.ckpt")}
    (out / "media" / "runs" / methods[0] / "seed0" / EVAL).unlink()
    again = run_benchmark(out, methods=methods, overrides=media, say=lambda _: None, media=True)
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert again["methods"] == table["methods"]


def test_the_peers_tables_oracle_row_marks_each_list_as_every_report_does(tmp_path):
    """On seen-heard lists the oracle is no ceiling (the test identities are the training identities, which a method
    can memorise: a peer at 100.0 on a list whose oracle reads 62.9): its cells say so, and the reason is given once;
    an unseen-unheard ceiling is marked only where too noisy (its interval wider than CEILING_WIDTH)."""
    from voxface.benchmark import LIST_KEYS, write_benchmark

    ceiling = {k: 90.0 for k in LIST_KEYS}
    ceiling["GNA_seenheard"] = 62.9
    intervals = {k: [0.87, 0.93] for k in LIST_KEYS}
    intervals["G_unseenunheard"] = [0.60, 0.85]
    table = {"set": "voxsynth", "seeds": 1, "encoders": {"face": "iresnet f", "voice": "ecapa v"}, "methods": {},
             "references": {"oracle ceiling": ceiling, "data reference (true knobs, Gaussian backend)":
                            {k: 100.0 for k in LIST_KEYS}},
             "ceiling_ci95": intervals, "published": {}, "published_same_data": False}
    text = write_benchmark(table, tmp_path)[2].read_text()
    row = next(line for line in text.splitlines() if line.startswith("| *oracle ceiling* |"))
    assert row == ("| *oracle ceiling* | 90.0 | 90.0 (too noisy) | 90.0 | 90.0 | 90.0 | 90.0 (seen: no bound) | "
                   "90.0 (seen: no bound) | 90.0 (seen: no bound) | 90.0 (seen: no bound) | 62.9 (seen: no bound) "
                   "| | | |")
    assert ("Oracle ceiling: no share of chance-to-ceiling: too noisy: 95% CI wider than 0.10 (too few test trials "
            "to measure it) on G_unseenunheard (0.600-0.850); not a ceiling on seen-heard lists: their test "
            "identities are the training identities, which a scorer fitted on them can memorise (the oracle bounds "
            "scorers of unseen identities only) on random_seenheard, G_seenheard, N_seenheard, A_seenheard, "
            "GNA_seenheard.") in text
