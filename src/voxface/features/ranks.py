"""One rank of a multi-process extraction (``voxface extract --devices N``), apart from ``extract.py`` so that
Lightning is imported only where several processes extract, and so that the class pickles by its module name for
Lightning's ``ddp_spawn`` (a class defined inside a function does not)."""

from __future__ import annotations

import os
import warnings
from typing import Any

import lightning as L
import torch
from torch import nn
from torch.utils.data import DataLoader


class Extractor(L.LightningModule):
    """``Trainer.predict`` hands each rank its share of the batches; each rank writes its own rows of the store."""

    def __init__(self, encoder: nn.Module, job: Any) -> None:  # features.extract._Job: what and where to write
        super().__init__()
        self.encoder, self.job = encoder, job
        self._batches: list[Any] = []
        self._writer: Any = None

    def setup(self, stage: str) -> None:  # in each started process
        # Rows go to the store, not back to Lightning: its warning about a step returning None is expected.
        warnings.filterwarnings("ignore", message=r".*predict returned None.*")
        world = self.trainer.world_size
        if self.trainer.strategy.root_device.type == "cpu" and world > 1:  # processes share the cores, not each all
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
        self._batches = self.job.batches(self.global_rank, world)
        self.trainer.strategy.barrier()  # every rank has read the progress before any writes

    def predict_dataloader(self) -> DataLoader:
        return self.job.loader(self._batches)

    def predict_step(self, item: dict[str, Any], index: int) -> None:
        if self._writer is None:
            self._writer = self.job.writer(self.global_rank)
        self._writer.write(item, self.job.encode(self.encoder, item, self.device))

    def on_predict_end(self) -> None:
        self.trainer.strategy.barrier()
        if self.trainer.is_global_zero:
            self.job.finish_if_done()
        self.trainer.strategy.barrier()
