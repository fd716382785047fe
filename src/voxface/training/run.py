"""``voxface train --config FILE [key=value ...]``: one training run, resumable, into ``trainer.out``.

The run folder holds ``config.yaml`` (the effective configuration), ``manifests/``, ``teacher_cache/``,
``checkpoints/`` (``last.ckpt`` every ``trainer.checkpoint_every`` steps and at the end, ``best.ckpt``
by validation AUC), ``logs/`` (CSV or TensorBoard) and ``run.json`` (what happened, and how long start-up and
the steps took).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
import yaml

from voxface.encoders.loading import read_weights
from voxface.errors import ConfigError
from voxface.features import StoreView, feature_stores
from voxface.media.dataset import IdentityBatchSampler, PairConfig
from voxface.protocol import (
    SPLIT_TRAIN,
    SPLIT_VAL,
    DataRoots,
    Manifest,
    Protocol,
    build_manifest,
    load_protocol,
)
from voxface.training.config import LOCATIONS, TrainConfig, absolute_locations, voxceleb_leakage
from voxface.training.data import PairDataModule, label_space
from voxface.training.feature_loop import FeatureLoop, Fitted, loop_device
from voxface.training.module import TrainingModule
from voxface.training.progress import progress_callbacks
from voxface.training.quiet import quiet_lightning
from voxface.training.resume import ResumePoints, StopTraining, ctrl_c_stops, position, run_finished
from voxface.training.teacher_cache import build_teacher_cache

log = logging.getLogger("voxface")
# Settings a resumed run may change: how long to train and how to show it.
RESUMABLE_CHANGES = {"trainer.epochs", "trainer.max_steps", "trainer.progress"}
# With audio.weights set, the voice encoder's shape is the weights' (load_config reads it from them): a run folder
# saved before configurations recorded that shape holds the defaults here, which never described the run.
SHAPE_OF_AUDIO_WEIGHTS = {"audio.channels", "audio.embedding_size"}


def _flat(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"method": {"args": {"x": 1}}}`` -> ``{"method.args.x": 1}``."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        flat.update(_flat(value, f"{prefix}{key}.") if isinstance(value, dict) else {f"{prefix}{key}": value})
    return flat


def resume_conflict(saved: dict[str, Any], config: TrainConfig) -> tuple[str, Any, Any] | None:
    """The first setting a continued run may not change (all but ``RESUMABLE_CHANGES`` and where files are) that
    ``config`` sets otherwise than the run's saved ``config.yaml`` (``saved``): (name, saved value, value now)."""
    before, now = _flat(saved), _flat(config.to_dict())
    free = {*LOCATIONS, *RESUMABLE_CHANGES} | (SHAPE_OF_AUDIO_WEIGHTS if now.get("audio.weights") else set())
    for name, value in now.items():
        if name not in free and before.get(name) != value:
            return name, before.get(name), value
    return None


def _check_resume(saved: dict[str, Any], config: TrainConfig, out: Path, resume_option: str | None) -> None:
    before = _flat(saved)
    for name, value in _flat(config.to_dict()).items():
        if name in LOCATIONS and before.get(name) != value:  # where the files are may change (moved run or data)
            log.info("%s: %s (was %s)", name, value, before.get(name))
    conflict = resume_conflict(saved, config)
    if conflict is None:
        return
    name, was, now = conflict
    if resume_option:  # the user asked to continue: their option is the one to name
        raise ConfigError(f"{resume_option} with a different {name} ({was!r} in {out / 'config.yaml'}, {now!r} now); "
                          "only the training length and where files are may change")
    raise ConfigError(f"{out} holds a run made with {name}={was!r}, not {now!r}: a run continues only with its own "
                      "settings (the training length and where files are may change); train into another folder, or "
                      f"delete {out} to start it afresh")


def training_manifests(config: TrainConfig, protocol: Protocol | None = None) -> dict[str, Manifest]:
    """The ``train`` and ``val`` manifests a run trains and validates on: its protocol's (``data.lists``, unless
    given) splits found under its data root. What a bad data root or protocol folder fails first, in one line."""
    protocol = protocol or load_protocol(config.data.lists)
    roots = DataRoots.from_root(config.data.root, config.data.audio_dir, config.data.faces_dir)
    return {name: build_manifest(protocol, roots, split)
            for split, name in ((SPLIT_TRAIN, "train"), (SPLIT_VAL, "val"))}


def frozen_teacher_cache(config: TrainConfig, teacher: torch.nn.Module, manifests: dict[str, Manifest]) -> StoreView:
    """The frozen face teacher's embeddings of every face of the run's ``train`` and ``val`` manifests
    (``teacher_cache.build_teacher_cache``), in ``face.cache_dir`` (default ``trainer.out/teacher_cache``): made once,
    reused by every run that names the same folder, teacher and faces. The teacher embeds on the GPU if there is one
    and is left on the CPU."""
    roots = DataRoots.from_root(config.data.root, config.data.audio_dir, config.data.faces_dir)
    faces = [f for m in manifests.values() for ident in m.identities for f in ident.faces]
    teacher = teacher.to("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return build_teacher_cache(teacher, config.face.weights, roots, faces,
                                   config.face.cache_dir or Path(config.trainer.out) / "teacher_cache",
                                   workers=config.data.workers, progress=config.trainer.progress,
                                   encoder=config.face.encoder)
    finally:
        teacher.cpu()


class RunCheckpoint(L.pytorch.callbacks.ModelCheckpoint):
    """Lightning's ModelCheckpoint, following a run folder that moved: Lightning restores which checkpoint is the
    best only when its recorded folder is the current one; else a resumed run forgets the best score and writes
    ``best-v1.ckpt`` beside ``best.ckpt``. Paths under the recorded folder are mapped here."""

    @property
    def state_key(self) -> str:  # Lightning's own class name: runs checkpointed before keep their state
        return super().state_key.replace(type(self).__qualname__, "ModelCheckpoint", 1)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        recorded = state_dict.get("dirpath")
        if recorded and self.dirpath and recorded != self.dirpath:
            def here(path: str) -> str:
                inside = bool(path) and Path(path).is_relative_to(recorded)
                return str(Path(self.dirpath) / Path(path).relative_to(recorded)) if inside else path

            state_dict = {**state_dict, "dirpath": self.dirpath,
                          **{key: here(state_dict[key]) for key in ("best_model_path", "kth_best_model_path",
                                                                    "last_model_path") if key in state_dict},
                          "best_k_models": {here(k): v for k, v in state_dict.get("best_k_models", {}).items()}}
        super().load_state_dict(state_dict)


class StepClock(L.Callback):
    """When this call's first training step starts and when fitting ends (wall and CPU seconds), for ``run.json``'s
    ``timing``: start-up (from the call to the first step) apart from the steps (validation and checkpoints
    included)."""

    def __init__(self) -> None:
        self.first: tuple[float, float] | None = None
        self.end: tuple[float, float] | None = None
        self.first_step = 0

    def started(self, step: int) -> None:
        """A training step ``step`` (counted from 0) starts: the first one of this call is the start-up's end."""
        if self.first is None:
            self.first, self.first_step = (time.perf_counter(), time.process_time()), step

    def ended(self) -> None:
        """Fitting ended: the steps, their validation and checkpoints are done."""
        self.end = (time.perf_counter(), time.process_time())

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        self.started(trainer.global_step)

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.ended()

    def timing(self, called: tuple[float, float], steps: int) -> dict[str, Any]:
        """Seconds from ``called`` (perf_counter, process_time at the call) to the first step and over the steps;
        ``steps``: the run's step count at the end."""
        now = (time.perf_counter(), time.process_time())
        first, end = self.first or now, self.end or now
        return {"call_seconds": round(now[0] - called[0], 3),
                "start_up_seconds": round(first[0] - called[0], 3),
                "start_up_cpu_seconds": round(first[1] - called[1], 3),
                "steps": steps - self.first_step if self.first else 0,
                "training_seconds": round(end[0] - first[0], 3), "training_cpu_seconds": round(end[1] - first[1], 3)}


def train(config: TrainConfig, resume: bool = False, resume_option: str | None = None,
          callbacks: list[L.Callback] | None = None) -> dict[str, Any]:
    """Train one run into ``trainer.out`` (module docstring); ``resume``: continue it from its ``last.ckpt``.
    ``resume_option``: how the user asked to continue (``voxface train``: "--resume"), named in the messages; None
    for a caller that continues runs by itself (the benchmark, the demo). ``callbacks``: Lightning callbacks to run
    beside the run's own (a timer, a profiler); given, the run trains in Lightning's loop even in feature mode
    (otherwise ``feature_loop.loop_device`` picks the plain loop for single-process feature-mode runs)."""
    called = (time.perf_counter(), time.process_time())
    config = absolute_locations(config)  # the run folder records absolute paths: it works from any folder
    out = Path(config.trainer.out)
    checkpoints = out / "checkpoints"
    last = checkpoints / "last.ckpt"
    saved_config = out / "config.yaml"
    if resume:
        if not last.is_file():
            raise ConfigError(f"{resume_option or 'resume'}: {last} does not exist; start the run without "
                              f"{resume_option or 'resuming'}")
        read_weights(last)  # safe loading first: a file carrying code is refused before Lightning opens it
        _check_resume(yaml.safe_load(saved_config.read_text()), config, out, resume_option)
        done = json.loads((out / "run.json").read_text()) if (out / "run.json").is_file() else {}
        if "steps_per_epoch" in done and run_finished(done["steps"], done["steps_per_epoch"], config.trainer):
            raise ConfigError(f"the run in {out} already finished at "
                              f"{position(done['steps'], done['steps_per_epoch'])}; "
                              f"raise trainer.epochs ({config.trainer.epochs}) or trainer.max_steps "
                              f"({config.trainer.max_steps}) to continue it")
    elif last.exists():
        raise ConfigError(f"{out} already holds a run; pass --resume to continue it or set trainer.out elsewhere")
    out.mkdir(parents=True, exist_ok=True)
    saved_config.write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
    quiet_lightning()
    if leakage := voxceleb_leakage(config):
        log.warning("%s", leakage)
    L.seed_everything(config.trainer.seed, workers=True, verbose=False)
    started = time.time()

    protocol = load_protocol(config.data.lists)
    manifests = training_manifests(config, protocol)
    for name, manifest in manifests.items():
        manifest.save(out / "manifests" / f"{name}.json")
        log.info("%s", manifest.summary())

    labels, covariates = label_space(manifests["train"], protocol)
    module = TrainingModule(config.to_dict(), labels.to_dict())
    front = module.method.voice_encoder.front_end()
    said = (f"{front['fbank']} fbank" if front["input"] == "fbank"
            else f"waveform, normalisation {'on' if front['normalize_waveform'] else 'off'}")
    log.info("method %s; audio front end: %s", config.method.name, said)
    # The batch must fit the training identities: the sampler's own check, made now, before any face is embedded
    IdentityBatchSampler([len(ident.voices) for ident in manifests["train"].identities], config.optim.batch_size,
                         num_replicas=max(1, config.trainer.devices) * max(1, config.trainer.num_nodes),
                         layout=module.method.sampler, per_identity=module.method.pairs_per_identity)
    cache = voice_cache = None
    if config.feature_mode:  # both halves from feature stores, checked against the weights the encoders load
        stores = feature_stores(config)  # keyed by path from the data root; the datasets by path from each folder
        cache = StoreView(stores["face"], f"{config.data.faces_dir}/")
        voice_cache = StoreView(stores["voice"], f"{config.data.audio_dir}/")
        log.info("feature mode: faces from %s, voices from %s", config.features.face, config.features.voice)
    elif config.face.frozen and config.face.cache:
        cache = frozen_teacher_cache(config, module.method.face_encoder, manifests)
    data = PairDataModule(manifests["train"], manifests["val"],
                          PairConfig(crop_seconds=config.data.crop_seconds, face_size=config.data.face_size,
                                     face_from_same_video=config.data.face_from_same_video),
                          config.optim.batch_size, config.trainer.seed, config.data.workers, cache,
                          config.data.val_clips_per_identity, config.data.val_crop_seconds, voice_cache,
                          sampler=module.method.sampler, batch_keys=module.method.batch_keys,
                          per_identity=module.method.pairs_per_identity, covariates=covariates)

    points = ResumePoints(last, config.trainer.checkpoint_every, config.trainer.max_steps, resumed=resume)
    clock = StepClock()
    best = RunCheckpoint(dirpath=checkpoints, filename="best", monitor="val_auc", mode="max", save_top_k=1,
                         auto_insert_metric_name=False)
    logger = (L.pytorch.loggers.TensorBoardLogger(out, name="logs") if config.trainer.logger == "tensorboard"
              else L.pytorch.loggers.CSVLogger(out, name="logs"))
    device = loop_device(config) if not callbacks else None
    if device is not None:  # feature mode in one process: the plain loop (feature_loop), Lightning's results
        logger.log_hyperparams(module.hparams_initial)
        loop = FeatureLoop(module, data, config, device, checkpoints, points, best, clock, logger)
        with ctrl_c_stops(points):
            fitted = loop.fit(last if resume else None)
    else:
        fitted = _fit_lightning(config, module, data, points, best, clock, logger, callbacks or [], resume)
    steps, per_epoch = fitted.steps, data.steps_per_epoch
    summary = {
        "out": str(out),
        "steps": steps, "steps_per_epoch": per_epoch, "epochs": steps // per_epoch,  # epochs completed
        "finished": run_finished(steps, per_epoch, config.trainer),
        # None, not NaN, before the first validation: run.json stays valid JSON for strict readers
        "val_auc": fitted.val_auc, "best_val_auc": fitted.best_score,
        "best_checkpoint": fitted.best_path, "last_checkpoint": str(last) if last.is_file() else None,
        "train": manifests["train"].summary(), "val_trials": len(data.val_set),
        "seconds": round(time.time() - started, 1), "resumed": resume,
        "interrupted": (fitted.interrupted or points.stopped_by_request) and not run_finished(steps, per_epoch,
                                                                                              config.trainer),
        "timing": clock.timing(called, steps),  # this call's
    }
    if fitted.global_zero:
        (out / "run.json").write_text(json.dumps(summary, indent=1))
    return summary


def _fit_lightning(config: TrainConfig, module: TrainingModule, data: PairDataModule, points: ResumePoints,
                   best: RunCheckpoint, clock: StepClock, logger: Any, callbacks: list[L.Callback],
                   resume: bool) -> Fitted:
    """Fit with Lightning's Trainer (media runs, several processes, other precisions, a caller's callbacks)."""
    distributed = config.trainer.devices > 1 or config.trainer.num_nodes > 1
    trainer = L.Trainer(
        max_epochs=config.trainer.epochs, max_steps=config.trainer.max_steps, accelerator=config.trainer.accelerator,
        devices=config.trainer.devices, num_nodes=config.trainer.num_nodes,
        strategy="ddp" if distributed else "auto", precision=config.trainer.precision,
        callbacks=[points, best, clock, *progress_callbacks(config.trainer.progress), *callbacks],
        logger=logger, use_distributed_sampler=False,  # our sampler shards by rank
        check_val_every_n_epoch=config.trainer.val_every, enable_progress_bar=config.trainer.progress,
        enable_model_summary=False, num_sanity_val_steps=0, log_every_n_steps=1, default_root_dir=config.trainer.out)
    try:
        with ctrl_c_stops(points):
            trainer.fit(module, datamodule=data, ckpt_path=str(points.path) if resume else None)
    except StopTraining:  # Ctrl-C inside an epoch: last.ckpt holds the step it stopped at
        pass
    except SystemExit:  # Lightning's own ending of a second Ctrl-C: the last written checkpoint stands
        if not trainer.interrupted:
            raise
    per_epoch = len(data.sampler) if data.sampler is not None else 1
    # A checkpoint written after fit() ends would mark its epoch as finished; write one only at an epoch
    # boundary. Stopped inside one (max_steps, Ctrl-C), ResumePoints wrote last.ckpt at that step.
    at_boundary = trainer.global_step == trainer.current_epoch * per_epoch
    if at_boundary and not trainer.interrupted:
        points.save(trainer)
    metrics = trainer.callback_metrics
    return Fitted(steps=trainer.global_step if not trainer.interrupted else (points.saved_step or 0),
                  interrupted=trainer.interrupted,
                  val_auc=float(metrics["val_auc"]) if "val_auc" in metrics else None,
                  best_score=float(best.best_model_score) if best.best_model_score is not None else None,
                  best_path=best.best_model_path or None, global_zero=trainer.is_global_zero)
