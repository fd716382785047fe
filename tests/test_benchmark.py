"""``voxface benchmark``: every method on one feature store, checkpoints chosen on validation only, resumable."""

import csv
import json
import shutil

import pytest

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
