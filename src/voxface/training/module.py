"""The LightningModule of a training run: any registered method on top of the two encoders; it does not know which.

The method (``voxface/methods``) turns a batch into named terms; this loop sums the ``*_loss`` terms, logs every
term, seeds each step's draws, validates by cross-modal AUC and schedules the learning rates (paper §5.2).
"""

from __future__ import annotations

import math
import random
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F

import voxface
from voxface.encoders.registry import (
    encoder_record,
    pretrained_part,
    weights_provenance,
)
from voxface.errors import VoxfaceError
from voxface.losses.distributed import gather_with_grad
from voxface.methods import LabelSpace, Method
from voxface.metrics import roc_auc
from voxface.training.config import ENCODERS_KEY, TrainConfig
from voxface.training.schedules import step_schedule, tristage_schedule
from voxface.training.towers import build_method


class TrainingDiverged(VoxfaceError):
    """A loss term became NaN or infinite."""


# What a method receives of a batch besides the keys it declares: its inputs, stored or raw.
INPUT_KEYS = ("face", "face_features", "wave", "lengths", "voice_features")


def parameter_groups(method: Method, config: TrainConfig) -> list[dict[str, Any]]:
    """Adam's parameter groups with their base rates. A voice encoder's pretrained part (an SSL transformer) learns
    at lr_audio (the paper's 1e-5 peak), the whole of an ECAPA too; what is initialised at random (an SSL encoder's
    projection and layer weights, the method's heads, a learnable temperature) at lr_mapping; a face encoder being
    fine-tuned at lr_face."""
    optim, voice = config.optim, method.voice_encoder
    groups: list[tuple[str, list[torch.nn.Parameter], float]] = []
    if voice is not None:
        pretrained = pretrained_part(voice)
        if pretrained is None:
            audio_params, fresh = list(voice.parameters()), []
        else:
            own = {id(p) for p in pretrained.parameters()}
            audio_params = list(pretrained.parameters())
            fresh = [p for p in voice.parameters() if id(p) not in own]
        groups.append(("audio", audio_params, optim.lr_audio))
        groups.append(("voice_fresh", fresh, optim.lr_mapping))
    groups += [(name, params, optim.lr_mapping) for name, params in method.parameter_groups().items()]
    if not config.face.frozen and method.face_encoder is not None:
        groups.append(("face", list(method.face_encoder.parameters()), optim.lr_face))
    params = [{"name": name, "params": [p for p in parameters if p.requires_grad], "lr": lr}
              for name, parameters, lr in groups]
    return [group for group in params if group["params"]]


class TrainingModule(L.LightningModule):
    """One training run of any registered method (``method.name``), on one CPU or many GPUs."""

    def __init__(self, config: dict[str, Any], labels: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.save_hyperparameters({"config": config, "labels": labels})
        self.config = TrainConfig.from_dict(config)
        self.method = build_method(self.config, LabelSpace.from_dict(labels))
        # where the encoders' weights came from, read once as they are loaded (a file beside each), for every save
        self._provenance = {"face": weights_provenance(self.config.face.encoder, self.config.face.weights),
                            "voice": weights_provenance(self.config.audio.encoder, self.config.audio.weights)}
        self._skipped = 0  # files replaced by others this epoch (PairDataset)
        self._val_scores: list[torch.Tensor] = []
        self._val_labels: list[torch.Tensor] = []

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # What evaluation needs to rebuild the encoders from the checkpoint alone, without the original files
        # (architecture, front end as resolved, where the weights came from), and the crops and face size.
        config = self.config
        checkpoint[ENCODERS_KEY] = {
            "face": encoder_record(config.face.encoder, self.method.face_encoder, self._provenance["face"]),
            "voice": encoder_record(config.audio.encoder, self.method.voice_encoder, self._provenance["voice"]),
            "crop_seconds": config.data.crop_seconds, "val_crop_seconds": config.data.val_crop_seconds}
        checkpoint["voxface_version"] = voxface.__version__

    # ---------------------------------------------------------------- training

    def on_train_epoch_start(self) -> None:
        self.method.start_epoch(self.current_epoch)
        self._skipped = 0

    def on_train_batch_start(self, batch: dict[str, Any], batch_index: int) -> None:
        seed_step(self.config.trainer.seed, self.global_step, self.device)

    def training_step(self, batch: dict[str, Any], batch_index: int) -> torch.Tensor:
        terms = step_terms(self.method, batch, self.config, self.global_step, self.current_epoch)
        self._skipped += int(batch["skipped"])
        self._log_terms(terms, len(batch["identity"]))
        return terms["loss"]

    def _log_terms(self, terms: dict[str, Any], batch_size: int) -> None:
        """Every term of this step, as ``train/<name>`` at this step, written to the run's logger directly: through
        ``self.log`` (Lightning's per-call checks and result collection, and a logger save per step) the logging
        cost several times a feature-mode step. Only the progress bar's running loss goes through ``self.log``."""
        if self._trainer is None:  # a step called outside fitting (a test, a script): nothing to log to
            return
        if self.trainer.progress_bar_callback is not None:
            self.log("train/loss", terms["loss"], prog_bar=True, logger=False, batch_size=batch_size)
        if self.logger is None or not self.trainer.is_global_zero:
            return
        self.logger.log_metrics({"epoch": self.current_epoch, **logged_terms(terms)}, step=self.global_step)

    def on_train_epoch_end(self) -> None:
        # files replaced by others of their identity this epoch (since the run resumed, for a resumed epoch)
        self.log("train/skipped_files", float(self._skipped), on_step=False, on_epoch=True, reduce_fx="sum")

    # ---------------------------------------------------------------- validation

    def validation_step(self, batch: dict[str, Any], batch_index: int) -> None:
        if not batch:
            return
        self._val_scores.append(trial_scores(self.method, batch).detach().cpu())
        self._val_labels.append(batch["label"].cpu())

    def on_validation_epoch_end(self) -> None:
        if self._val_scores:
            self.log("val_auc", validation_auc(self._val_scores, self._val_labels), prog_bar=True, sync_dist=False)
        self._val_scores.clear()
        self._val_labels.clear()

    # ---------------------------------------------------------------- optimisation (paper §5.2)

    def configure_optimizers(self):
        # The run's length from the data module, not Trainer.estimated_stepping_batches: that builds and iterates
        # the train loader before a resumed run's state is restored, and loader workers would draw the resumed
        # epoch's batches from its start (the sampler reads its position when iterated).
        optimizer, scheduler = build_optimizer(self.method, self.config, self.trainer.datamodule.steps_per_epoch)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def trial_scores(method: Method, batch: dict[str, Any]) -> torch.Tensor:
    """(B,) cosine scores of a validation batch's trials (faces or ``face_features``, waves or ``voice_features``)."""
    face = method.embed_face(batch.get("face"), features=batch.get("face_features"))
    voice = method.embed_voice(batch.get("wave"), features=batch.get("voice_features"))
    return F.cosine_similarity(face, voice, dim=-1)


def validation_auc(scores: list[torch.Tensor], labels: list[torch.Tensor]) -> float:
    """The cross-modal verification AUC of the validation trials' ``scores`` against their 0/1 ``labels`` (lists of
    (B,) tensors, one per batch): 0.5 where the trials hold one class only (the AUC is undefined there)."""
    truth = torch.cat(labels).numpy()
    value = roc_auc(truth, torch.cat(scores).numpy()) if 0 < truth.sum() < len(truth) else math.nan
    return value if not math.isnan(value) else 0.5


def seed_step(seed: int, step: int, device: torch.device) -> None:
    """Seed the global generators for training step ``step`` of a run seeded ``seed``: each step's random draws
    (dropout, and anything else on the global generators) start from a seed of (run seed, step), as fairseq's
    Trainer reseeds every update, so a run resumed at any step draws what the uninterrupted run drew there, whatever
    ran in between (loader set-up, validation, a restart)."""
    value = int(np.random.SeedSequence([seed, step]).generate_state(1)[0])
    random.seed(value)
    np.random.seed(value)
    if device.type == "cpu":  # torch.manual_seed's effect on a CPU run; the call itself (its compiler
        torch.default_generator.manual_seed(value)  # guard) costs a tenth of a feature-mode step
    else:
        torch.manual_seed(value)


def step_terms(method: Method, batch: dict[str, Any], config: TrainConfig, step: int, epoch: int) -> dict[str, Any]:
    """The method's named terms on one training batch plus ``loss`` (the sum of its ``*_loss`` terms), what both
    training loops (Lightning's, and the feature-mode one of ``feature_loop``) differentiate and log. The method sees
    its inputs and the keys it declares, no more (a label-free method cannot read a label); SpecAugment masks come
    from a generator seeded by the step, so a resumed run draws the same masks. Raises ``TrainingDiverged`` naming
    the term, ``step`` and ``epoch`` (counted from 0) when a loss is NaN or infinite."""
    generator = torch.Generator().manual_seed(config.trainer.seed * 1_000_003 + step)
    given = {k: v for k, v in batch.items() if k in INPUT_KEYS or k in method.batch_keys}
    terms = method.losses(given, gather_with_grad, generator)
    terms["loss"] = sum(value for name, value in terms.items() if name.endswith("_loss"))
    losses = [name for name in terms if name.endswith("loss")]
    finite = torch.isfinite(torch.stack([terms[name].detach().float().reshape(()) for name in losses]))
    if not bool(finite.all()):  # one check (one device sync) for every loss term
        name = losses[int((~finite).nonzero()[0, 0])]
        raise TrainingDiverged(
            f"the {name} loss is {float(terms[name].detach())} at step {step} (epoch {epoch}); the last good "
            f"checkpoint is in {config.trainer.out}/checkpoints")
    return terms


def logged_terms(terms: dict[str, Any]) -> dict[str, float]:
    """A step's terms as the run's logger records them: ``{"train/<name>": value}`` (one device sync for all)."""
    tensors = [name for name, value in terms.items() if torch.is_tensor(value)]
    values = torch.stack([terms[name].detach().float().reshape(()) for name in tensors]).tolist() if tensors else []
    logged = {f"train/{name}": float(value) for name, value in terms.items() if not torch.is_tensor(value)}
    logged.update({f"train/{name}": value for name, value in zip(tensors, values, strict=True)})
    return logged


def build_optimizer(method: Method, config: TrainConfig,
                    per_epoch: int) -> tuple[torch.optim.Adam, torch.optim.lr_scheduler.LambdaLR]:
    """Adam over the method's ``parameter_groups`` and its per-step learning-rate schedule (paper §5.2:
    ``optim.schedule`` step, tristage or constant), for a run of ``trainer.epochs`` epochs of ``per_epoch`` steps
    (or ``trainer.max_steps``, when that comes first)."""
    optim, trainer = config.optim, config.trainer
    params = parameter_groups(method, config)
    optimizer = torch.optim.Adam(params, weight_decay=optim.weight_decay)
    total = trainer.max_steps if trainer.epochs == -1 else per_epoch * max(1, trainer.epochs)
    total = max(1, min(total, trainer.max_steps) if trainer.max_steps > 0 else total)
    if optim.schedule == "tristage":
        ratios = tuple(optim.tristage_ratios)
        if optim.tristage_fill:  # the phases scaled to fill the run, instead of fairseq's literal reading
            ratios = tuple(r / sum(ratios) for r in ratios)
        factors = [tristage_schedule(total, ratios, optim.tristage_init_scale,
                                     optim.tristage_final_scale)] * len(params)
    elif optim.schedule == "step":
        size = max(1, int(round(optim.step_every_epochs * per_epoch)))
        factors = [step_schedule(group["lr"], optim.step_gamma, size, optim.min_lr) for group in params]
    else:
        factors = [lambda step: 1.0] * len(params)
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factors)
