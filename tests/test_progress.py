"""The training progress bar counts epochs as the run's summary does."""

import lightning as L
import torch

from voxface.training.progress import EpochBar, progress_callbacks


class _Tiny(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def training_step(self, batch, _index):
        return ((self.weight - batch[0]) ** 2).sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_the_last_of_four_epochs_reads_epoch_4_of_4():
    """Lightning's own bar ended a four-epoch run at "Epoch 3/3" while the summary said "after 4 epochs"."""
    bar = EpochBar()
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.ones(2, 1)), batch_size=2)
    trainer = L.Trainer(max_epochs=4, callbacks=[bar], logger=False, enable_checkpointing=False,
                        enable_model_summary=False, accelerator="cpu")
    trainer.fit(_Tiny(), data)
    assert bar.train_progress_bar.desc.startswith("Epoch 4/4") and trainer.current_epoch == 4
    assert progress_callbacks(False) == [] and isinstance(progress_callbacks(True)[0], EpochBar)
