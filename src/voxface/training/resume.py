"""Where a training run stops and how it continues exactly.

A run's position is its optimiser step: one step per batch and a fixed number of batches per epoch
(``IdentityBatchSampler``), so step ``s`` is batch ``s % n`` of epoch ``s // n``. ``ResumePoints`` writes
``last.ckpt`` every ``trainer.checkpoint_every`` steps and at the step where a run stops early
(``trainer.max_steps`` inside an epoch, Ctrl-C), always before Lightning's fit loop counts a cut-short epoch
as finished; ``ctrl_c_stops`` turns Ctrl-C into a stop after the current step. The sampler takes its position
from the step (``PairDataModule``), the learning-rate schedules are functions of the step restored with the
optimiser, and each step's random draws are seeded by the step (``TrainingModule.on_train_batch_start``).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import lightning as L

from voxface.training.config import TrainerConfig

log = logging.getLogger("voxface")


class StopTraining(Exception):
    """Raised from a callback to leave ``Trainer.fit`` at once after a Ctrl-C, its checkpoint written."""


def run_finished(steps: int, steps_per_epoch: int, trainer: TrainerConfig) -> bool:
    """Whether ``steps`` optimiser steps complete a run of ``trainer.epochs`` epochs of ``steps_per_epoch``
    steps (-1: no epoch limit), or reach ``trainer.max_steps`` (when set, > 0): whichever comes first ends a run,
    as in Lightning."""
    return (trainer.epochs != -1 and steps >= trainer.epochs * steps_per_epoch) or 0 < trainer.max_steps <= steps


def position(steps: int, steps_per_epoch: int) -> str:
    """``steps`` in words: ``"step 20 (epoch 1: 20 of 54 steps done)"`` or ``"step 108 (2 epochs done)"``."""
    epochs, done = divmod(steps, steps_per_epoch)
    if done:
        return f"step {steps} (epoch {epochs + 1}: {done} of {steps_per_epoch} steps done)"
    return f"step {steps} ({epochs} epoch{'' if epochs == 1 else 's'} done)"


class ResumePoints(L.Callback):
    """Writes ``path`` (the run's ``last.ckpt``, the full training state) every ``every`` steps and at the step
    where the run stops early: ``max_steps`` reached, or a stop asked for by Ctrl-C (``stop_requested``).

    Written in ``on_train_batch_end`` a checkpoint is a mid-epoch one that Lightning resumes inside its epoch;
    written after ``fit`` returns, a cut-short epoch would already count as finished (why neither this nor
    ModelCheckpoint's ``save_last``, which saves again at ``on_train_end``, may write then). A stop asked for
    on an epoch's last batch lets the epoch's validation run and stops at the boundary instead.
    """

    def __init__(self, path: Path, every: int, max_steps: int, resumed: bool) -> None:
        self.path, self.every, self.max_steps, self.resumed = Path(path), every, max_steps, resumed
        self.stop_requested = False  # set by the Ctrl-C handler
        self.stopped_by_request = False  # the run stopped because of it
        self.saved_step: int | None = None  # the step ``path`` holds, once known

    def save(self, trainer: L.Trainer) -> None:
        """Write the full training state to ``path`` (written aside, then renamed: a file is never half there)."""
        partial = self.path.with_name(self.path.name + ".part")
        trainer.save_checkpoint(partial, weights_only=False)  # every rank calls it; rank 0 writes
        if trainer.is_global_zero:
            os.replace(partial, self.path)
        trainer.strategy.barrier("voxface.last_checkpoint")
        self.saved_step = trainer.global_step

    def due(self, step: int, stop: bool) -> bool:
        """Whether ``last.ckpt`` is written after training step ``step`` (counted from 1): every ``every`` steps, at
        ``max_steps``, and where a stop was asked for (``stop``)."""
        return stop or step % self.every == 0 or step == self.max_steps

    def _stop(self, trainer: L.Trainer) -> bool:
        # Every rank stops at the same step, wherever the signal arrived.
        return bool(trainer.strategy.reduce_boolean_decision(self.stop_requested, all=False))

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.resumed:
            self.saved_step = trainer.global_step  # restored from ``path``

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        stop = self._stop(trainer)
        if self.due(trainer.global_step, stop):
            self.save(trainer)
        if stop and batch_idx + 1 < trainer.num_training_batches:
            self.stopped_by_request = True
            raise StopTraining

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._stop(trainer):  # the fit loop ends after this epoch; ``train`` writes the boundary checkpoint
            self.stopped_by_request = True
            trainer.should_stop = True


@contextmanager
def ctrl_c_stops(points: ResumePoints) -> Iterator[None]:
    """While inside, the first Ctrl-C (SIGINT) asks ``points`` to stop after the current step, and a second one
    stops at once (``KeyboardInterrupt``; the run then resumes from its last written checkpoint). Left alone
    outside the main thread and where SIGINT is ignored or handled by someone else."""
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        if points.stop_requested:
            raise KeyboardInterrupt
        points.stop_requested = True
        log.warning("Ctrl-C: stopping after this training step and saving a checkpoint (Ctrl-C again: stop now)")

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def ignore_sigint(worker_id: int) -> None:
    """``DataLoader`` workers leave Ctrl-C to the main process: a terminal sends SIGINT to the whole process
    group, and a worker ended by it would fail the batch the main process still fetches before it stops."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
