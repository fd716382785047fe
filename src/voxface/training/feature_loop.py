"""The training loop of a feature-mode run in one process: both halves read from feature stores, only the method's
heads train, in a plain PyTorch loop instead of Lightning's.

A feature-mode step is a few milliseconds of small matrix products; Lightning's per-step machinery (its optimiser
wrapping, hooks, result collection, logger saves) cost as much again. ``run.train`` runs this loop where
``loop_device`` says so (feature mode, one process, 32-bit, no Lightning callbacks of the caller's) and Lightning
everywhere else; a run gives the same weights, validation AUCs, logs and checkpoints either way:

- the same ``TrainingModule`` (its method, hyper-parameters and ``on_save_checkpoint`` record), the same batches
  (``PairDataModule``'s sampler and loader, placed at the run's step), the same seeding of each step
  (``seed_step``), loss terms and divergence check (``step_terms``), optimiser and schedules (``build_optimizer``),
  in Lightning's order: forward, zero the gradients, backward, optimiser step, schedule step;
- validation every ``trainer.val_every`` epochs (``val_auc``, logged at the epoch's last step), ``best.ckpt`` by
  validation AUC and ``last.ckpt`` every ``trainer.checkpoint_every`` steps, at ``trainer.max_steps``, at a Ctrl-C
  and at the end, in Lightning's layout (``state_dict``, ``optimizer_states``, ``lr_schedulers``, the best score
  under ``callbacks``, ``hyper_parameters``, the encoder record): ``voxface evaluate`` reads either, and a run
  saved by either loop continues here;
- the logger's rows: ``train/<term>`` and ``epoch`` at every step, ``val_auc`` and ``train/skipped_files`` at
  the epoch's end.

Departure: ``best.ckpt`` is written from an in-memory copy of the best state when ``last.ckpt`` is next written and
when fitting ends (normally, by an error or by Ctrl-C), not at every better validation: each write holds both frozen
encoders. The ``last.ckpt`` on disk only ever names a ``best.ckpt`` already written, so a run killed outright resumes
as before (its validations since ``last.ckpt`` are made again).
"""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from voxface.encoders.loading import read_weights
from voxface.training.config import TrainConfig
from voxface.training.data import PairDataModule
from voxface.training.module import (
    TrainingModule,
    build_optimizer,
    logged_terms,
    seed_step,
    step_terms,
    trial_scores,
    validation_auc,
)
from voxface.training.progress import epoch_words
from voxface.training.resume import ResumePoints, StopTraining, run_finished


@dataclass
class Fitted:
    """How fitting ended: what ``run.train`` summarises."""

    steps: int  # optimiser steps the run holds (at a second Ctrl-C: those of its last written checkpoint)
    interrupted: bool  # stopped at once by a second Ctrl-C
    val_auc: float | None  # the last validation's
    best_score: float | None
    best_path: str | None
    global_zero: bool = True  # this process writes the run's files (rank 0 of several)


def loop_device(config: TrainConfig) -> torch.device | None:
    """The device this loop trains ``config`` on, or None where the run is Lightning's: media runs, several
    processes, precisions other than 32-bit, accelerators other than the CPU and one CUDA device."""
    trainer = config.trainer
    if not config.feature_mode or trainer.devices > 1 or trainer.num_nodes > 1 or trainer.precision not in (
            "32-true", "32"):
        return None
    if trainer.accelerator == "cpu" or (trainer.accelerator == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if trainer.accelerator in ("gpu", "cuda", "auto") and torch.cuda.is_available():
        return torch.device("cuda")
    return None


def _write(blob: dict[str, Any], path: Path) -> None:
    """``blob`` to ``path``, written aside and then renamed: a file is never half there."""
    partial = path.with_name(path.name + ".part")
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(blob, partial)
    os.replace(partial, path)


class _Bar:
    """The progress bar of ``trainer.progress``: the epoch (from 1, of the run's total), its steps, the running loss
    and the last validation AUC."""

    def __init__(self, enabled: bool, epochs: int) -> None:
        self.enabled, self.epochs, self.bar = enabled, epochs, None
        self.shown: dict[str, str] = {}

    def epoch(self, epoch: int, per_epoch: int, done: int) -> None:
        if self.enabled:
            from tqdm import tqdm

            self.close()
            self.bar = tqdm(total=per_epoch, initial=done, desc=epoch_words(epoch, self.epochs), dynamic_ncols=True)

    def step(self, **shown: float) -> None:
        if self.bar is not None:
            self.shown.update({name: f"{value:.3f}" for name, value in shown.items()})
            self.bar.set_postfix(self.shown, refresh=False)
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class FeatureLoop:
    """One call's fitting of a feature-mode run (module docstring): ``fit`` trains ``module`` on ``data`` from step 0,
    or from ``resume`` (a ``last.ckpt`` written by either loop), into ``checkpoints``. ``points`` holds the Ctrl-C
    request and where ``last.ckpt`` is due; ``best`` (a ``ModelCheckpoint``) the best validation AUC and where its
    checkpoint is, kept under its own key in every checkpoint as Lightning keeps it; ``clock`` times the steps."""

    def __init__(self, module: TrainingModule, data: PairDataModule, config: TrainConfig, device: torch.device,
                 checkpoints: Path, points: ResumePoints, best: Any, clock: Any, logger: Any) -> None:
        self.module, self.method, self.data, self.config, self.device = module, module.method, data, config, device
        self.checkpoints, self.points, self.best, self.clock, self.logger = checkpoints, points, best, clock, logger
        self.per_epoch = data.steps_per_epoch
        self.optimizer, self.scheduler = build_optimizer(self.method, config, self.per_epoch)
        self.step = 0
        self.saved: tuple[int, int] | None = None  # (step, epoch counter) of the last.ckpt written
        self.val_auc: float | None = None
        self.pending_best: dict[str, Any] | None = None  # the best state not yet in best.ckpt
        self.val_batches: list[dict[str, Any]] | None = None  # the same trials every epoch: read once
        self.bar = _Bar(config.trainer.progress, config.trainer.epochs)

    # ---------------------------------------------------------------- checkpoints

    def _checkpoint(self, epoch: int) -> dict[str, Any]:
        """The full training state after ``self.step`` steps in Lightning's layout; ``epoch``: Lightning's epoch
        counter when it saves (inside an epoch, its index; at a boundary after fitting, the epochs done)."""
        module = self.module
        checkpoint = {"epoch": epoch, "global_step": self.step, "state_dict": module.state_dict(),
                      "callbacks": {self.best.state_key: self.best.state_dict()},
                      "optimizer_states": [self.optimizer.state_dict()],
                      "lr_schedulers": [self.scheduler.state_dict()],
                      "hparams_name": getattr(module, "_hparams_name", None),
                      "hyper_parameters": dict(module.hparams)}
        module.on_save_checkpoint(checkpoint)
        return checkpoint

    def _snapshot(self, checkpoint: dict[str, Any]) -> dict[str, Any]:
        """``checkpoint`` kept as it is now while training goes on: its tensors copied, but for the frozen encoders'
        (never changed in feature mode, and most of its bytes)."""
        frozen = tuple(f"method.{name}." for name in ("face_encoder", "voice_encoder"))

        def kept(value: Any, key: str = "") -> Any:
            if torch.is_tensor(value):
                return value if key.startswith(frozen) else value.detach().clone()
            if isinstance(value, dict):
                return {k: kept(v, k if isinstance(k, str) else "") for k, v in value.items()}
            if isinstance(value, list | tuple):
                return type(value)(kept(v) for v in value)
            return value

        return kept(checkpoint)

    def _flush_best(self) -> None:
        if self.pending_best is not None:
            _write(self.pending_best, Path(self.best.best_model_path))
            self.pending_best = None

    def save_last(self, epoch: int) -> None:
        """``last.ckpt`` at the current step (the best checkpoint it names written first)."""
        self._flush_best()
        if self.logger is not None:
            self.logger.save()
        _write(self._checkpoint(epoch), self.points.path)
        self.points.saved_step, self.saved = self.step, (self.step, epoch)

    def _restore(self, path: Path) -> int:
        """The training state of ``path`` (either loop's ``last.ckpt``); returns its epoch counter."""
        blob = read_weights(path)
        self.module.load_state_dict(blob["state_dict"])
        self.optimizer.load_state_dict(blob["optimizer_states"][0])
        self.scheduler.load_state_dict(blob["lr_schedulers"][0])
        if (state := blob.get("callbacks", {}).get(self.best.state_key)) is not None:
            self.best.load_state_dict(state)  # follows a moved run folder (RunCheckpoint)
        self.step = self.points.saved_step = int(blob["global_step"])
        self.saved = (self.step, int(blob.get("epoch", self.step // self.per_epoch)))
        return self.saved[1]

    # ---------------------------------------------------------------- epochs

    def _read_validation(self) -> None:
        if self.val_batches is None:
            self.val_batches = [self._on_device(batch) for batch in self.data.val_dataloader() if batch]

    def _validate(self, epoch: int) -> None:
        self._read_validation()
        modes = [(m, m.training) for m in self.module.modules()]  # restored after, module by module, as Lightning
        self.module.eval()
        scores, labels = [], []
        with torch.inference_mode():
            for batch in self.val_batches:
                scores.append(trial_scores(self.method, batch).cpu())
                labels.append(batch["label"].cpu())
        for m, training in modes:
            m.training = training
        if not scores:
            return
        self.val_auc = float(torch.tensor(validation_auc(scores, labels)))  # float32, as Lightning's log keeps it
        if self.logger is not None:
            self.logger.log_metrics({"val_auc": self.val_auc, "epoch": epoch}, step=self.step - 1)
        best, score = self.best, torch.tensor(self.val_auc)
        best.current_score = score
        if best.best_model_score is None or bool(score > best.best_model_score):  # ModelCheckpoint's mode="max"
            path = str(Path(best.dirpath or self.checkpoints) / "best.ckpt")  # where Lightning puts it
            best.best_model_score, best.best_model_path, best.kth_best_model_path = score, path, path
            best.best_k_models, best.kth_value = {path: score}, score
            self.pending_best = self._snapshot(self._checkpoint(epoch))  # the state now; written later
        self.bar.shown["val_auc"] = f"{self.val_auc:.3f}"

    def _validates(self) -> bool:
        """Whether the run validates at all: its first validation (the end of epoch ``val_every``, ``_end_epoch``)
        comes before it ends (``run_finished``)."""
        first = self.config.trainer.val_every * self.per_epoch
        return not run_finished(first - 1, self.per_epoch, self.config.trainer)

    def _end_epoch(self, epoch: int, skipped: int) -> None:
        """Lightning's epoch end: validation when due, then the epoch's replaced files."""
        if self.step % self.per_epoch == 0 and (epoch + 1) % self.config.trainer.val_every == 0:
            self._validate(epoch)
        if self.logger is not None:
            # at the epoch's last step, where Lightning logs what a module logs at an epoch's end
            self.logger.log_metrics({"train/skipped_files": float(skipped), "epoch": epoch}, step=self.step - 1)
            self.logger.save()

    def _on_device(self, batch: dict[str, Any]) -> dict[str, Any]:
        if self.device.type == "cpu":
            return batch
        return {k: v.to(self.device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}

    # ---------------------------------------------------------------- the loop

    def fit(self, resume: Path | None) -> Fitted:
        """Train to the run's end (``trainer.epochs``, ``trainer.max_steps``) or a Ctrl-C; see the class docstring.
        A second Ctrl-C stops at once (the run then holds its last written checkpoint); a ``TrainingDiverged``
        propagates, the best checkpoint written first."""
        self.module.to(self.device)
        trainer, points = self.config.trainer, self.points
        interrupted, freezing = False, gc.get_freeze_count() == 0  # a caller's own frozen objects are left alone
        try:
            counter = self._restore(resume) if resume is not None else self.step // self.per_epoch
            if counter * self.per_epoch < self.step and self.step % self.per_epoch == 0:
                self._end_epoch(counter, 0)  # saved on an epoch's last step, before the epoch's end: end it now
            if self._validates():
                self._read_validation()  # the same trials every epoch: read once, before the first step
            if freezing:  # what exists now lives through the run: collections during it scan the steps' objects only
                gc.freeze()
            self._train(trainer.max_steps)
        except StopTraining:
            points.stopped_by_request = True
        except KeyboardInterrupt:  # a second Ctrl-C
            interrupted = True
        finally:
            if freezing:
                gc.unfreeze()
            self.bar.close()
            self._flush_best()
            if self.logger is not None:
                self.logger.save()
        self.clock.ended()
        boundary = (self.step, self.step // self.per_epoch)
        if not interrupted and self.step % self.per_epoch == 0 and self.saved != boundary:
            self.save_last(boundary[1])  # the boundary checkpoint: the epoch is over
        if self.logger is not None:
            self.logger.finalize("success" if not interrupted else "failed")
        best = self.best
        return Fitted(steps=self.step if not interrupted else (points.saved_step or 0), interrupted=interrupted,
                      val_auc=self.val_auc,
                      best_score=float(best.best_model_score) if best.best_model_score is not None else None,
                      best_path=best.best_model_path or None)

    def _train(self, max_steps: int) -> None:
        config, points, method, optimizer = self.config, self.points, self.method, self.optimizer
        seed, per_epoch = config.trainer.seed, self.per_epoch
        loader = self.data.train_batches()
        sampler = self.data.sampler
        while not run_finished(self.step, per_epoch, config.trainer):
            epoch, done = divmod(self.step, per_epoch)
            sampler.set_epoch(epoch)
            sampler.skip_next(done)  # a run resumed inside the epoch goes on where it stopped
            method.start_epoch(epoch)
            skipped, stop = 0, False
            self.bar.epoch(epoch, per_epoch, done)
            for batch in loader:
                self.clock.started(self.step)
                seed_step(seed, self.step, self.device)
                terms = step_terms(method, self._on_device(batch), config, self.step, epoch)
                optimizer.zero_grad(set_to_none=True)
                terms["loss"].backward()
                optimizer.step()
                self.scheduler.step()
                self.step += 1
                skipped += int(batch["skipped"])
                logged = logged_terms(terms)
                if self.logger is not None:
                    self.logger.log_metrics({"epoch": epoch, **logged}, step=self.step - 1)
                self.bar.step(loss=logged["train/loss"])
                stop = points.stop_requested
                if points.due(self.step, stop):
                    self.save_last(epoch)
                if stop and self.step % per_epoch:
                    raise StopTraining
                if 0 < max_steps <= self.step:
                    break
            self._end_epoch(epoch, skipped)
            if stop:  # asked for on the epoch's last step: the epoch ended first, as Lightning ends it
                points.stopped_by_request = True
                return
