import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
import warnings

import pytest
import torch

from voxface.cli import main
from voxface.errors import ConfigError, OverrideError
from voxface.methods.sun_su_2025 import SunSu2025
from voxface.training.config import PACKAGED_CONFIGS, TrainConfig, load_config, packaged_configs
from voxface.training.module import TrainingDiverged, TrainingModule
from voxface.training.pretrain import load_pretrain_config
from voxface.training.run import train
from voxface.training.schedules import step_schedule, tristage_schedule


def config_for(base, out, *overrides):
    return load_config(base, [f"trainer.out={out}", *overrides])


# ---------------------------------------------------------------- configuration


def test_every_shipped_config_parses():
    names = packaged_configs()
    assert len(names) >= 15 and "voxsynth/full" in names
    pretraining = ("voxsynth/pretrain_", "voxsynth/release_")  # voxface pretrain's and voxface priors' own
    assert sum(name.startswith(pretraining) for name in names) == 4
    for name in names:
        if name.startswith(pretraining):
            load_pretrain_config(name, check_paths=False)
        else:
            load_config(name, check_paths=False)
    # A shipped name and its path read the same; a wrong name lists what ships.
    assert load_config("voxsynth/full", check_paths=False) == load_config(
        str(PACKAGED_CONFIGS / "voxsynth" / "full.yaml"), check_paths=False)
    with pytest.raises(ConfigError, match="neither a file nor a shipped configuration.*voxsynth/full"):
        load_config("voxsynth/fulll", check_paths=False)


@pytest.mark.parametrize("override, said", [
    ("optim.lr_audio=nan", "config value optim.lr_audio must be a finite number, got nan"),
    ("optim.weight_decay=.inf", "config value optim.weight_decay must be a finite number, got inf"),
    ("optim.tristage_ratios=[0.1, -inf, 0.1]",
     "config value optim.tristage_ratios[1] must be a finite number, got -inf"),
    ("method.args.temperature=nan", "config value method.args.temperature must be a finite number, got nan"),
    ("optim.lr_mapping=-1e-3", "config value optim.lr_mapping must be 0 or more (a negative rate climbs the loss)"),
    ("optim.step_gamma=0", "config value optim.step_gamma must be positive (the factor applied at each step)"),
])
def test_float_settings_must_be_finite_and_rates_not_negative(override, said):
    """NaN and infinity are refused for every float field where values are parsed (training, method arguments,
    pretraining alike), in one line naming the key."""
    with pytest.raises(ConfigError) as caught:
        load_config("voxsynth/full", [override], check_paths=False)
    assert str(caught.value).endswith(said) and "\n" not in str(caught.value)


def test_pretraining_float_settings_must_be_finite():
    with pytest.raises(ConfigError, match=r"config value head.margin must be a finite number, got nan$"):
        load_pretrain_config("voxsynth/pretrain_face", ["head.margin=nan"], check_paths=False)


def test_config_errors_name_the_key(tiny_run, tmp_path):
    _, base = tiny_run
    # a typo on the command line is the command line's, with the nearest known name (issue 16 item 8)
    with pytest.raises(ConfigError, match=r"^command-line override 'optim.lr_audoi=0.1': unknown config key "
                                          r"'optim.lr_audoi' \(did you mean 'optim.lr_audio'\?"):
        load_config(base, ["optim.lr_audoi=0.1"])
    with pytest.raises(ConfigError, match=r"^command-line override 'optimiser.lr=0.1': unknown config key "
                                          r"'optimiser' \(did you mean 'optim'\?"):
        load_config(base, ["optimiser.lr=0.1"])
    typo = tmp_path / "typo.yaml"
    typo.write_text(f"extends: {base}\nmethdo:\n  name: sun_su_2025\n")
    with pytest.raises(ConfigError, match=rf"^{typo}: unknown config key 'methdo' \(did you mean 'method'\?"):
        load_config(typo)
    # a method's own arguments: strict, with the nearest name, from a file or the command line (issue 23 item 2)
    with pytest.raises(ConfigError, match=r"^command-line override 'method.args.ot_wieght=0.5': unknown config key "
                                          r"'method.args.ot_wieght' \(did you mean 'method.args.ot_weight'\?"):
        load_config(base, ["method.args.ot_wieght=0.5"])  # the command line's, not blamed on the file
    with pytest.raises(ConfigError, match=r"^command-line override 'method.args.ot_weight=abc': config value "
                                          r"method.args.ot_weight must be float"):
        load_config(base, ["method.args.ot_weight=abc"])
    shipped = tmp_path / "mine.yaml"  # extends: takes a shipped name too
    shipped.write_text("extends: voxsynth/base\nmethod:\n  args:\n    ot_weight: 0.5\n")
    assert load_config(shipped, check_paths=False).method.args["mapping_hidden"] == [256]
    shipped.write_text("extends: voxsynth/bsae\n")
    with pytest.raises(ConfigError, match=r"extends: voxsynth/bsae is neither a file beside it nor a shipped"):
        load_config(shipped, check_paths=False)
    with pytest.raises(ConfigError, match=r"method.args.terms must be a non-empty list of distinct terms .*'otp' is "
                                          r"none of them"):
        load_config(base, ["method.args.terms=[contrastive, otp]"])
    with pytest.raises(ConfigError, match=r"method.name 'sun_su' is no registered method \(did you mean "
                                          r"'sun_su_2025'\?"):
        load_config(base, ["method.name=sun_su"])
    assert load_config(base, ["optim.weight_decay=1e-3"]).optim.weight_decay == 0.001
    # a value that is not YAML (an unclosed list) is the override's, in one line, not the parser's traceback
    with pytest.raises(OverrideError, match=r"^command-line override 'audio.channels=\[1,2': the value '\[1,2' is not "
                                            "valid YAML"):
        load_config(base, ["audio.channels=[1,2"])
    with pytest.raises(ConfigError, match="optim.batch_size must be int, got 'many'"):
        load_config(base, ["optim.batch_size=many"])
    with pytest.raises(ConfigError, match="audio.encoder must be one of"):
        load_config(base, ["audio.encoder=lstm"])
    with pytest.raises(ConfigError, match="face.weights: /nowhere/backbone.pth does not exist"):
        load_config(base, ["face.weights=/nowhere/backbone.pth"])
    with pytest.raises(OverrideError, match="^command-line override 'batch_size': it is not of the form"):
        load_config(base, ["batch_size"])
    with pytest.raises(ConfigError, match=r"trainer.seed must be between 0 and 4294967295"):
        load_config(base, ["trainer.seed=-1"])
    (tmp_path / "a_file").write_text("")
    with pytest.raises(ConfigError, match=r"trainer.out must be a folder for the run, not the file .*a_file"):
        load_config(base, [f"trainer.out={tmp_path / 'a_file'}"])
    with pytest.raises(ConfigError, match=r"^config value audio.weights: voxsynth-priors is neither a file nor the "
                                          r"shipped prior's name; did you mean audio.weights=voxsynth-prior\?$"):
        load_config(base, ["audio.weights=voxsynth-priors"])
    child = tmp_path / "child.yaml"
    child.write_text(f"extends: {base}\nmethod:\n  args:\n    ot_weight: 0.25\n")
    config = load_config(child)
    assert config.method.args["ot_weight"] == 0.25 and config.data.face_size == 32
    assert config.method.args["rkd_weight"] == 1.0  # the method's defaults, stored whole
    (tmp_path / "bad.yaml").write_text("data:\n  channels: [1, 2\ntrainer:\n  epochs: 2\n")
    with pytest.raises(ConfigError, match=r"bad.yaml:3:8 is not valid YAML: expected ',' or '\]', but got ':'$"):
        load_config(tmp_path / "bad.yaml")  # where the parser stopped: line 3, column 8
    defaults = TrainConfig.from_dict({})
    assert TrainConfig.from_dict(defaults.to_dict()) == defaults


def test_schedules():
    tri = tristage_schedule(1000, (0.15, 0.01, 0.07), 0.01, 0.01)
    assert tri(0) == pytest.approx(0.01) and tri(150) == pytest.approx(1.0) and tri(155) == pytest.approx(1.0)
    assert tri(160 + 35) == pytest.approx(0.1, rel=0.05) and tri(999) == pytest.approx(0.01)  # held at the end
    step = step_schedule(1e-3, 0.1, 10, 1e-8)
    assert step(0) == 1.0 and step(10) == pytest.approx(0.1) and step(1000) == pytest.approx(1e-5)  # floor 1e-8


def test_the_tristage_schedule_read_literally_or_filling_the_run():
    from voxface.training.config import OptimConfig

    literal = tristage_schedule(1000, (0.15, 0.01, 0.07), 0.01, 0.01)
    assert sum(literal(s) == pytest.approx(0.01) for s in range(1000)) >= 760  # 77% held at the final rate
    ratios = tuple(r / 0.23 for r in OptimConfig().tristage_ratios)  # what optim.tristage_fill=true runs
    filled = tristage_schedule(1000, ratios, 0.01, 0.01)
    assert filled(660) == pytest.approx(1.0) and filled(990) > 0.01 and filled(999) < 0.012
    assert OptimConfig().tristage_fill is False  # the literal reading is the default


def test_ssl_heads_learn_at_the_mapping_rate(tiny_run, tiny_ssl, tmp_path):
    from voxface.training.module import parameter_groups

    _, base = tiny_run
    folder = tiny_ssl("wav2vec2", tmp_path)
    config = load_config(base, [f"trainer.out={tmp_path / 'ssl'}", "audio.encoder=wav2vec2", f"audio.weights={folder}",
                                "audio.layer_weighting=true", "optim.lr_audio=1e-5", "optim.lr_mapping=1e-3"])
    module = TrainingModule(config.to_dict())
    groups = {g["name"]: g for g in parameter_groups(module.method, config)}
    voice = module.method.voice_encoder
    head = {id(p) for p in voice.projection.parameters()} | {id(voice.layer_weights)}
    assert head <= {id(p) for p in groups["voice_fresh"]["params"]} and groups["voice_fresh"]["lr"] == 1e-3
    assert {id(p) for p in module.method.mapping.parameters()} <= {id(p) for p in groups["heads"]["params"]}
    assert groups["heads"]["lr"] == 1e-3
    assert not head & {id(p) for p in groups["audio"]["params"]} and groups["audio"]["lr"] == 1e-5
    import yaml

    from voxface.training.config import resolve_config

    assert yaml.safe_load(resolve_config("voxceleb1/ssl_base").read_text())["optim"]["lr_mapping"] == 1e-3


# ---------------------------------------------------------------- the module


def test_gradients_reach_audio_and_mapping_not_the_frozen_teacher(tiny_run, tmp_path):
    _, base = tiny_run
    module = TrainingModule(config_for(base, tmp_path).to_dict())
    module.log = lambda *args, **kwargs: None  # no trainer attached
    module.train()
    batch = {"wave": torch.randn(4, 16000) * 0.1, "face": torch.randn(4, 3, 32, 32), "identity": torch.arange(4),
             "skipped": 0}
    module.training_step(batch, 0).backward()
    method = module.method
    assert all(p.grad is not None for p in method.voice_encoder.parameters())
    assert all(p.grad is not None for p in method.mapping.parameters())
    assert all(p.grad is None and not p.requires_grad for p in method.face_encoder.parameters())
    assert not method.face_encoder.training  # a frozen teacher keeps its BatchNorm statistics


def test_fine_tuning_the_face_encoder_keeps_the_prior_fixed(tiny_run, tmp_path):
    from voxface.training.module import parameter_groups

    _, base = tiny_run
    config = load_config(base, [f"trainer.out={tmp_path}", "face.frozen=false", "face.cache=false",
                                "optim.lr_face=1e-2"])
    module = TrainingModule(config.to_dict())
    module.log = lambda *args, **kwargs: None  # no trainer attached
    method = module.method
    optimizer = torch.optim.Adam(parameter_groups(method, config))
    torch.manual_seed(0)
    fixed = torch.randn(4, 3, 32, 32)
    targets, encoded = method.prior(fixed), method.encode_face(fixed).detach()
    module.train()
    for step in range(4):
        batch = {"wave": torch.randn(4, 16000) * 0.1, "face": torch.randn(4, 3, 32, 32),
                 "identity": torch.arange(4), "skipped": 0}
        optimizer.zero_grad()
        module.training_step(batch, step).backward()
        optimizer.step()
    module.eval()
    assert torch.equal(method.prior(fixed), targets)  # RKD's targets: the pretrained teacher, unmoved
    assert not torch.allclose(method.encode_face(fixed), encoded, atol=1e-4)  # the encoder moved
    assert not any(key.startswith("_prior") for key in module.state_dict())  # not trained, not saved


def test_a_nan_loss_stops_the_run_naming_the_step_and_term(tiny_run, tmp_path, monkeypatch):
    _, base = tiny_run
    original = SunSu2025.losses
    calls = {"n": 0}

    def poisoned(self, *args):
        terms = original(self, *args)
        calls["n"] += 1
        if calls["n"] == 4:
            terms["ot_loss"] = terms["ot_loss"] * float("nan")
        return terms

    monkeypatch.setattr(SunSu2025, "losses", poisoned)
    with pytest.raises(TrainingDiverged, match=r"the ot_loss loss is nan at step 3"):
        train(config_for(base, tmp_path / "nan"))
    kept = torch.load(tmp_path / "nan" / "checkpoints" / "last.ckpt", weights_only=False)
    assert kept["global_step"] == 2  # the last good checkpoint, from before the failing step


def _last(run):
    return torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)


def _interrupt_after_first_checkpoint(command, run, log, guard=600.0):
    """Start ``command`` in its own process group, press Ctrl-C as a terminal does (SIGINT to the whole group,
    loader workers included) once it has written its first checkpoint, and return its exit code."""
    with open(log, "w") as output:
        # A shell's background job may start with SIGINT ignored, which the child would keep: restore the default.
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
                                   preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        started = time.monotonic()
        try:
            while not (run / "checkpoints" / "last.ckpt").exists():  # its own progress, however slow the machine
                assert process.poll() is None, f"exit {process.returncode} before a checkpoint:\n{log.read_text()}"
                assert time.monotonic() - started < guard, "hang guard: no checkpoint"
                time.sleep(0.05)
            os.killpg(process.pid, signal.SIGINT)
            return process.wait(timeout=guard)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)


def test_a_run_stopped_anywhere_resumes_exactly(tiny_run, tmp_path, capsys):
    """Issue 21 item 1: stopped by Ctrl-C inside an epoch, by trainer.max_steps inside an epoch (between two
    checkpoint steps) and on an epoch boundary, and resumed each time, a run ends as the uninterrupted one: the
    same weights and validation AUCs. Ctrl-C says where it stopped and how to continue, and exits 130."""
    _, base = tiny_run
    # Dropout draws from the global generators and a loader worker prefetches batches: both must come back.
    settings = ["trainer.epochs=2", "trainer.checkpoint_every=4", "method.args.mapping_dropout=0.3", "data.workers=1"]
    straight = train(config_for(base, tmp_path / "straight", *settings))
    per_epoch = straight["steps_per_epoch"]
    assert straight["steps"] == 2 * per_epoch and per_epoch >= 16 and straight["finished"]
    metrics = (tmp_path / "straight" / "logs").rglob("metrics.csv")
    aucs = [float(row["val_auc"]) for row in csv.DictReader(next(metrics).open()) if row["val_auc"]]
    assert len(aucs) == 2 and aucs[1] == pytest.approx(straight["val_auc"])

    run = tmp_path / "split"
    code = _interrupt_after_first_checkpoint(
        [sys.executable, "-m", "voxface", "train", "--config", str(base), f"trainer.out={run}", *settings],
        run, tmp_path / "train.log")
    printed = (tmp_path / "train.log").read_text()
    stopped = re.search(rf"interrupted at step (\d+) \(epoch 1: \d+ of {per_epoch} steps done\); continue with: "
                        rf"voxface train --config {re.escape(str(run / 'config.yaml'))} --resume", printed)
    assert code == 130 and stopped, printed
    step = int(stopped.group(1))
    assert 4 <= step < per_epoch - 3, "interrupted too late to test resuming inside the epoch"
    record = json.loads((run / "run.json").read_text())
    assert (record["steps"], record["epochs"], record["interrupted"], record["finished"]) == (step, 0, True, False)
    assert _last(run)["global_step"] == step  # saved at the step it stopped at, not at the last multiple of 4

    # trainer.max_steps inside the epoch, off the checkpoint steps: recorded as steps, and raising it continues
    inside = next(s for s in range(step + 1, per_epoch) if s % 4)
    assert main(["train", "--config", str(run / "config.yaml"), "--resume", f"trainer.max_steps={inside}"]) == 0
    assert f"trained to step {inside} (epoch 1: {inside} of {per_epoch} steps done)" in capsys.readouterr().out
    record = json.loads((run / "run.json").read_text())
    assert (record["steps"], record["epochs"], record["finished"]) == (inside, 0, True)
    assert _last(run)["global_step"] == inside
    with pytest.raises(ConfigError, match=rf"already finished at step {inside} \(epoch 1: {inside} of {per_epoch} "
                                          rf"steps done\); raise trainer.epochs \(2\) or trainer.max_steps "
                                          rf"\({inside}\) to continue it"):
        train(load_config(run / "config.yaml"), resume=True)
    # trainer.max_steps on the epoch boundary: validated there as the uninterrupted run was
    boundary = train(load_config(run / "config.yaml", [f"trainer.max_steps={per_epoch}"]), resume=True)
    assert (boundary["steps"], boundary["epochs"]) == (per_epoch, 1)
    assert boundary["val_auc"] == pytest.approx(aucs[0], abs=1e-6)
    # and without a step limit, to the end
    resumed = train(load_config(run / "config.yaml", ["trainer.max_steps=-1"]), resume=True)
    assert (resumed["steps"], resumed["epochs"], resumed["finished"]) == (straight["steps"], 2, True)
    assert resumed["val_auc"] == pytest.approx(straight["val_auc"], abs=1e-6)
    assert resumed["best_val_auc"] == pytest.approx(straight["best_val_auc"], abs=1e-6)
    a, b = _last(tmp_path / "straight")["state_dict"], _last(run)["state_dict"]
    assert a.keys() == b.keys()
    for key in a:
        assert torch.allclose(a[key].float(), b[key].float(), atol=1e-6), key
    with pytest.raises(ConfigError, match="already holds a run"):
        train(config_for(base, tmp_path / "straight"))
    with pytest.raises(ConfigError, match="holds a run made with method.args.ot_weight=.*, not 0.5"):
        train(config_for(base, tmp_path / "straight", *settings, "method.args.ot_weight=0.5"), resume=True)


def test_the_sampler_refuses_to_hand_out_batches_the_trainer_does_not_expect():
    """A pass started before a resumed trainer's counters were restored would train the wrong batches: the
    trainer's check of each batch (PairDataModule) turns that into an error instead of a silent wrong run."""
    from voxface.media.dataset import IdentityBatchSampler

    sampler, plain = IdentityBatchSampler([3] * 12, 4, seed=0), IdentityBatchSampler([3] * 12, 4, seed=0)
    plain.set_epoch(1)
    sampler.follow(lambda: (1, 2))  # the trainer's counters: epoch index 1, two of its batches done
    assert list(sampler) == list(plain)[2:]
    sampler.check_next((1, 2))  # the trainer trains that batch
    with pytest.raises(RuntimeError, match=r"handed out batch 3 of epoch 1 \(counted from 0\) where the trainer is "
                                           r"at batch 0 of epoch 0"):
        sampler.check_next((0, 0))


def test_a_tiny_voxsynth_run_learns(tiny_run, tmp_path, capsys):
    _, base = tiny_run
    code = main(["train", "--config", str(base), f"trainer.out={tmp_path / 'learn'}", "trainer.epochs=10"])
    assert code == 0
    summary = json.loads((tmp_path / "learn" / "run.json").read_text())
    # 16 val identities x 6 clips x (1 positive + 1 negative); chance is 0.5 (measured: about 0.63)
    assert summary["best_val_auc"] > 0.58, summary
    assert (tmp_path / "learn" / "checkpoints" / "best.ckpt").is_file()
    assert list((tmp_path / "learn" / "logs").rglob("metrics.csv"))
    assert "validation AUC" in capsys.readouterr().out


def test_resuming_a_finished_run_or_a_missing_teacher_run_says_so(tiny_run, tmp_path):
    """Issue 16 items 6 and 7."""
    from voxface.training.pretrain import load_pretrain_config, pretrain

    root, base = tiny_run
    config = load_config(base, [f"trainer.out={tmp_path / 'run'}", "trainer.epochs=1"])
    train(config)
    with pytest.raises(ConfigError, match=r"already finished at step \d+ \(1 epoch done\); raise trainer.epochs \(1\)"):
        train(config, resume=True)
    with pytest.raises(ConfigError, match="--resume: .*last.ckpt does not exist; start the pretraining run without"):
        pretrain(load_pretrain_config("voxsynth/pretrain_face", [f"data.root={root / 'voxsynth' / 'teacher_faces'}",
                                                                 f"trainer.out={tmp_path / 'nothing'}"]), resume=True)


def test_resume_reads_the_runs_own_settings(tiny_run, tmp_path, capsys):
    """Issue 16 item 5: a run started with overrides resumes from RUN/config.yaml, and the error says so."""
    _, base = tiny_run
    run = tmp_path / "run"
    assert main(["train", "--config", str(base), f"trainer.out={run}", "trainer.epochs=1"]) == 0
    capsys.readouterr()
    assert main(["train", "--config", str(base), "--resume"]) == 2  # the override naming the run is not repeated
    assert "voxface train --config RUN/config.yaml --resume" in capsys.readouterr().err
    assert main(["train", "--config", str(run / "config.yaml"), "--resume", "trainer.epochs=2"]) == 0
    assert json.loads((run / "run.json").read_text())["epochs"] == 2


class _Payload:
    """Pickles to a call that would write ``marker``: what a malicious checkpoint carries."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('ran')",))


def test_every_path_that_reads_a_checkpoint_refuses_a_planted_payload(tiny_run, trained_checkpoint, tmp_path, capsys):
    """Issue 16 item 3: evaluate, score, embed, train --resume and pretrain --resume refuse the file, and the
    payload never runs."""
    from voxface.training.pretrain import load_pretrain_config, pretrain

    root, base = tiny_run
    marker = tmp_path / "payload-ran"
    evil = tmp_path / "evil.ckpt"
    torch.save({"state_dict": _Payload(marker), "hyper_parameters": {}}, evil)
    voice = next((root / "voxsynth" / "wav").rglob("*.wav"))
    face = next((root / "voxsynth" / "unzippedFaces").rglob("*.jpg"))
    (tmp_path / "faces.txt").write_text(str(face))
    data = ["--data", str(root / "voxsynth"), "--lists", str(root / "voxsynth" / "protocol")]
    for argv in (["evaluate", "--checkpoint", str(evil), *data, "--out", str(tmp_path / "e")],
                 ["score", "--checkpoint", str(evil), str(voice), str(face)],
                 ["embed", "--checkpoint", str(evil), "--kind", "face", "--files", str(tmp_path / "faces.txt"),
                  "--out", str(tmp_path / "x")]):
        assert main(argv) == 2, argv[0]
        assert "voxface: error:" in capsys.readouterr().err
    run = tmp_path / "run"
    from lightning.pytorch.callbacks import model_checkpoint

    model_checkpoint.warning_cache.clear()  # Lightning warns once per process; an earlier run may have used it
    with warnings.catch_warnings(record=True) as caught:  # stopped before any validation: no Lightning hint
        warnings.simplefilter("always")
        train(load_config(base, [f"trainer.out={run}", "trainer.max_steps=2"]))
    assert not [w for w in caught if "monitored key" in str(w.message)]
    (run / "run.json").write_text(json.dumps({"interrupted": True, "epochs": 0}))
    torch.save({"state_dict": _Payload(marker)}, run / "checkpoints" / "last.ckpt")
    with pytest.raises(Exception, match="last.ckpt"):
        train(load_config(run / "config.yaml"), resume=True)
    teacher = tmp_path / "teacher" / "checkpoints"
    teacher.mkdir(parents=True)
    torch.save({"state_dict": _Payload(marker)}, teacher / "last.ckpt")
    with pytest.raises(Exception, match="last.ckpt"):
        pretrain(load_pretrain_config("voxsynth/pretrain_face", [f"data.root={root / 'voxsynth' / 'teacher_faces'}",
                                                                 f"trainer.out={tmp_path / 'teacher'}"]), resume=True)
    assert not marker.exists()  # no path ran the payload


def test_a_batch_larger_than_the_identities_stops_before_any_face_is_embedded(tiny, tmp_path, monkeypatch):
    """voxsynth/full's batch of 32 on a data set with fewer training identities is refused before the face teacher
    embeds a single face (it used to be said after that whole pass)."""
    import voxface.training.run as run

    def embedding_begun(*args, **kwargs):
        raise AssertionError("the teacher cache was begun before the batch was checked")

    monkeypatch.setattr(run, "frozen_teacher_cache", embedding_begun)
    config = load_config("voxsynth/full", [f"data.root={tiny.root}", f"data.lists={tiny.root / 'protocol'}",
                                           f"trainer.out={tmp_path / 'run'}", "trainer.progress=false"])
    with pytest.raises(ConfigError, match=r"^batch of 32 distinct identities \(32 x 1 ranks / 1 per identity\) is "
                                          r"larger than the \d+ identities with clips; lower the batch size$"):
        run.train(config)


def test_a_runs_config_records_the_voice_shape_its_weights_hold(caplog):
    """The voice encoder is built whole from audio.weights, so the configuration carries the weights' shape (what
    a run's config.yaml then records): a stale audio.channels / audio.embedding_size beside them is logged as
    ignored, in one line; the defaults (a random encoder's) are replaced silently."""
    from voxface.encoders.loading import ecapa_config, read_state_dict

    plain = load_config("voxsynth/base", ["audio.weights=voxsynth-prior"], check_paths=False)
    shape = ecapa_config(read_state_dict(plain.audio.weights))
    assert plain.audio.channels == list(shape["channels"]) and plain.audio.embedding_size == shape["embedding_size"]
    assert plain.audio.channels != [32, 32, 32, 32, 96]  # the shipped prior is not the tiny demo's stale shape
    with caplog.at_level("WARNING", logger="voxface"):
        stale = load_config("voxsynth/base", ["audio.weights=voxsynth-prior", "audio.channels=[32,32,32,32,96]",
                                              "audio.embedding_size=32"], check_paths=False)
    assert (stale.audio.channels, stale.audio.embedding_size) == (plain.audio.channels, plain.audio.embedding_size)
    assert stale.to_dict()["audio"]["channels"] == plain.audio.channels
    (line,) = [r.getMessage() for r in caplog.records if "are ignored" in r.getMessage()]
    assert line.startswith("audio.channels=[32, 32, 32, 32, 96] and audio.embedding_size=32 are ignored: "
                           "audio.weights ") and f"holds an ECAPA-TDNN {plain.audio.channels}" in line
    # no weights: the fields describe the random encoder, as given
    scratch = load_config("voxsynth/base", ["audio.weights=", "audio.channels=[32,32,32,32,96]"], check_paths=False)
    assert scratch.audio.channels == [32, 32, 32, 32, 96]
