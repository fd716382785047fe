"""``voxface benchmark``: every method on one feature store, checkpoints chosen on validation only, resumable."""

import csv
import json
import shutil

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
    printed = capsys.readouterr().out
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
    assert "±" in (out / "benchmark.md").read_text()
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
