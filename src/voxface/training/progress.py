"""The training progress bar: epochs counted from 1 out of the run's total, as every summary counts them.

Lightning's own bar counts epochs from 0 (its rich bar ends a four-epoch run at "Epoch 3/3") while a run's summary
says "after 4 epochs"; here the last epoch of four reads "Epoch 4/4".
"""

from __future__ import annotations

from typing import Any

from lightning.pytorch.callbacks import TQDMProgressBar


class EpochBar(TQDMProgressBar):
    """Lightning's tqdm bar with the epoch numbered from 1 and the total beside it."""

    def on_train_epoch_start(self, trainer: Any, *args: Any) -> None:
        super().on_train_epoch_start(trainer, *args)
        self.train_progress_bar.set_description(epoch_words(trainer.current_epoch, trainer.max_epochs))


def epoch_words(current: int, total: int | None) -> str:
    """The bar's description of epoch ``current`` (counted from 0, as Lightning does) of ``total``.

    >>> epoch_words(3, 4)
    'Epoch 4/4'
    >>> epoch_words(0, -1)
    'Epoch 1'
    """
    return f"Epoch {current + 1}" + (f"/{total}" if total is not None and total > 0 else "")


def progress_callbacks(enabled: bool) -> list[EpochBar]:
    """The progress bar to hand a Trainer whose ``enable_progress_bar`` is ``enabled`` (none when it is off)."""
    return [EpochBar()] if enabled else []
