"""The feature-mode loop (training/feature_loop.py) gives what Lightning's loop gives: weights, validation AUCs,
logged rows, checkpoints evaluation reads; and it continues runs saved by either loop."""

from __future__ import annotations

import csv
import json
import signal

import pytest
import torch

from voxface.errors import ConfigError
from voxface.evaluation.checkpoint import load_trained_model
from voxface.methods.sun_su_2025 import SunSu2025
from voxface.training import run as run_module
from voxface.training.config import load_config
from voxface.training.module import TrainingDiverged
from voxface.training.run import train

SETTINGS = ["trainer.epochs=2", "trainer.checkpoint_every=5", "method.args.mapping_dropout=0.3"]


def _lightning(monkeypatch):
    """Runs after this take Lightning's loop, as media and multi-process runs do."""
    monkeypatch.setattr(run_module, "loop_device", lambda config: None)


def _rows(run):
    """The run's logged rows: {(step, name): value} over every metrics.csv of its folder (a resumed run adds one)."""
    rows = {}
    for path in sorted((run / "logs").rglob("metrics.csv")):
        for row in csv.DictReader(path.open()):
            rows.update({(int(row["step"]), k): float(v) for k, v in row.items() if v != "" and k != "step"})
    return rows


def _weights(run, name="last.ckpt"):
    return torch.load(run / "checkpoints" / name, weights_only=True)


def _same_state(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_the_feature_loop_trains_as_lightning_does(tiny_run, tiny_stores, tmp_path, monkeypatch):
    _, base = tiny_run
    settings = [*tiny_stores, *SETTINGS]
    assert run_module.loop_device(load_config(base, ["trainer.out=unused", *settings])) is not None
    assert run_module.loop_device(load_config(base, ["trainer.out=unused"])) is None  # media: Lightning's
    plain = train(load_config(base, [f"trainer.out={tmp_path / 'plain'}", *settings]))
    with monkeypatch.context() as patch:
        _lightning(patch)
        lightning = train(load_config(base, [f"trainer.out={tmp_path / 'lightning'}", *settings]))
    keys = ("steps", "steps_per_epoch", "epochs", "finished", "val_auc", "best_val_auc", "interrupted", "val_trials")
    assert {k: plain[k] for k in keys} == {k: lightning[k] for k in keys}
    assert plain.keys() == lightning.keys() and plain["timing"].keys() == lightning["timing"].keys()
    assert plain["best_checkpoint"] == str(tmp_path / "plain" / "checkpoints" / "best.ckpt")
    for name in ("last.ckpt", "best.ckpt"):
        a, b = _weights(tmp_path / "plain", name), _weights(tmp_path / "lightning", name)
        _same_state(a["state_dict"], b["state_dict"])
        for blob in (a, b):  # the two runs differ only in their folder
            blob["hyper_parameters"]["config"]["trainer"].pop("out")
        assert (a["epoch"], a["global_step"], a["hyper_parameters"], a["voxface_encoders"]) == (
            b["epoch"], b["global_step"], b["hyper_parameters"], b["voxface_encoders"]), name
        assert a["lr_schedulers"] == b["lr_schedulers"]
        assert a["callbacks"].keys() == b["callbacks"].keys()
    rows = _rows(tmp_path / "plain")
    assert rows.keys() == _rows(tmp_path / "lightning").keys()
    assert rows == _rows(tmp_path / "lightning")  # the same rows, the same values
    method, config = load_trained_model(tmp_path / "plain" / "checkpoints" / "best.ckpt")  # evaluation reads it
    assert config.method.name == "sun_su_2025" and not method.training
    assert (tmp_path / "plain" / "logs" / "version_0" / "hparams.yaml").is_file()


def test_a_run_saved_by_either_loop_continues_in_the_feature_loop_exactly(tiny_run, tiny_stores, tmp_path,
                                                                           monkeypatch):
    _, base = tiny_run
    settings = [*tiny_stores, *SETTINGS]
    straight = train(load_config(base, [f"trainer.out={tmp_path / 'straight'}", *settings]))
    inside = straight["steps_per_epoch"] + 3
    with monkeypatch.context() as patch:  # a run folder written by Lightning's loop, stopped inside epoch 2
        _lightning(patch)
        train(load_config(base, [f"trainer.out={tmp_path / 'lightning'}", *settings, f"trainer.max_steps={inside}"]))
    train(load_config(base, [f"trainer.out={tmp_path / 'plain'}", *settings, f"trainer.max_steps={inside - 5}"]))
    for name in ("lightning", "plain"):
        resumed = train(load_config(tmp_path / name / "config.yaml", ["trainer.max_steps=-1"]), resume=True)
        assert (resumed["steps"], resumed["val_auc"], resumed["best_val_auc"]) == (
            straight["steps"], straight["val_auc"], straight["best_val_auc"]), name
        _same_state(_weights(tmp_path / "straight")["state_dict"], _weights(tmp_path / name)["state_dict"])
        assert resumed["best_checkpoint"] == str(tmp_path / name / "checkpoints" / "best.ckpt")


def test_ctrl_c_stops_the_feature_loop_at_the_step_with_its_checkpoint(tiny_run, tiny_stores, tmp_path,
                                                                       monkeypatch):
    _, base = tiny_run
    settings = [*tiny_stores, *SETTINGS, "trainer.checkpoint_every=1000"]
    straight = train(load_config(base, [f"trainer.out={tmp_path / 'straight'}", *settings]))
    original, calls = SunSu2025.losses, {"n": 0}

    def pressed(self, *args):  # Ctrl-C during the 7th step, as a terminal sends it
        calls["n"] += 1
        if calls["n"] == 7:
            signal.raise_signal(signal.SIGINT)
        return original(self, *args)

    run = tmp_path / "split"
    # as in a terminal: a shell's background job (or a test runner) may have SIGINT ignored or handled otherwise
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with monkeypatch.context() as patch:
            patch.setattr(SunSu2025, "losses", pressed)
            stopped = train(load_config(base, [f"trainer.out={run}", *settings]))
    finally:
        signal.signal(signal.SIGINT, previous)
    assert (stopped["steps"], stopped["interrupted"], stopped["finished"]) == (7, True, False)
    assert _weights(run)["global_step"] == 7 and json.loads((run / "run.json").read_text())["steps"] == 7
    resumed = train(load_config(run / "config.yaml"), resume=True)
    assert (resumed["steps"], resumed["val_auc"], resumed["best_val_auc"]) == (
        straight["steps"], straight["val_auc"], straight["best_val_auc"])
    _same_state(_weights(tmp_path / "straight")["state_dict"], _weights(run)["state_dict"])


def test_a_diverged_feature_run_keeps_its_last_good_checkpoint_and_best(tiny_run, tiny_stores, tmp_path,
                                                                        monkeypatch):
    _, base = tiny_run
    settings = [*tiny_stores, *SETTINGS]
    per_epoch = train(load_config(base, [f"trainer.out={tmp_path / 'probe'}", *tiny_stores, "trainer.max_steps=1"]))[
        "steps_per_epoch"]
    original, calls = SunSu2025.losses, {"n": 0}

    def poisoned(self, *args):
        terms = original(self, *args)
        calls["n"] += 1
        if calls["n"] == per_epoch + 4:
            terms["ot_loss"] = terms["ot_loss"] * float("nan")
        return terms

    monkeypatch.setattr(SunSu2025, "losses", poisoned)
    step = per_epoch + 3
    with pytest.raises(TrainingDiverged, match=rf"the ot_loss loss is nan at step {step} \(epoch 1\)"):
        train(load_config(base, [f"trainer.out={tmp_path / 'nan'}", *settings]))
    kept = torch.load(tmp_path / "nan" / "checkpoints" / "last.ckpt", weights_only=False)
    assert kept["global_step"] == step - step % 5  # the last good checkpoint, from before the failing step
    best = torch.load(tmp_path / "nan" / "checkpoints" / "best.ckpt", weights_only=False)
    assert best["global_step"] == per_epoch  # the first epoch's validation, written as the run failed


def test_no_epoch_limit_trains_to_max_steps_in_either_loop(tiny_run, tiny_stores, tmp_path, monkeypatch):
    _, base = tiny_run
    settings = [*tiny_stores, *SETTINGS[1:], "trainer.epochs=-1"]
    per_epoch = train(load_config(base, [f"trainer.out={tmp_path / 'one'}", *tiny_stores, "trainer.epochs=1"]))[
        "steps_per_epoch"]
    steps = per_epoch + 2  # past the first validation, inside the second epoch
    plain = train(load_config(base, [f"trainer.out={tmp_path / 'plain'}", *settings, f"trainer.max_steps={steps}"]))
    with monkeypatch.context() as patch:
        _lightning(patch)
        lightning = train(load_config(base, [f"trainer.out={tmp_path / 'lightning'}", *settings,
                                             f"trainer.max_steps={steps}"]))
    assert plain["steps"] == lightning["steps"] == steps
    assert plain["val_auc"] == lightning["val_auc"] is not None  # the validation at the first epoch's end
    _same_state(_weights(tmp_path / "plain")["state_dict"], _weights(tmp_path / "lightning")["state_dict"])
    with pytest.raises(ConfigError, match=r"trainer.epochs must be at least 1, or -1 \(no epoch limit\) with "
                                          r"trainer.max_steps set"):
        load_config(base, ["trainer.out=unused", "trainer.epochs=0", "trainer.max_steps=5"])


def test_the_feature_loop_leaves_the_garbage_collector_as_it_found_it(tiny_run, tiny_stores, tmp_path):
    import gc

    _, base = tiny_run
    settings = [*tiny_stores, "trainer.epochs=1", "trainer.max_steps=2"]
    train(load_config(base, [f"trainer.out={tmp_path / 'a'}", *settings]))
    assert gc.get_freeze_count() == 0  # frozen during the run only
    gc.freeze()  # a caller's own frozen objects stay frozen
    try:
        train(load_config(base, [f"trainer.out={tmp_path / 'b'}", *settings]))
        assert gc.get_freeze_count() > 0  # not unfrozen (those of them freed since are no longer counted)
    finally:
        gc.unfreeze()
