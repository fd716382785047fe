"""The LightningModule of the paper's training (Algorithm 1): teacher -> mapping, audio encoder, total loss."""

from __future__ import annotations

import math
from typing import Any

import lightning as L
import torch

from voxface.errors import VoxfaceError
from voxface.losses.alignment import AlignmentLoss
from voxface.losses.distributed import gather_with_grad
from voxface.models.ecapa import ECAPATDNN
from voxface.models.loading import load_insightface_backbone, load_speechbrain_ecapa
from voxface.models.mapping import FeatureMapping
from voxface.models.ssl import SSLEncoder
from voxface.models.voiceface import VoiceFaceModel
from voxface.training.config import TrainConfig
from voxface.training.data import auc
from voxface.training.schedules import step_schedule, tristage_schedule


class TrainingDiverged(VoxfaceError):
    """A loss term became NaN or infinite."""


def build_audio_encoder(config: TrainConfig) -> torch.nn.Module:
    audio = config.audio
    if audio.encoder == "ecapa":
        if audio.weights:
            return load_speechbrain_ecapa(audio.weights)
        return ECAPATDNN(channels=tuple(audio.channels), embedding_size=audio.embedding_size)
    if not audio.weights:
        raise VoxfaceError(f"audio.encoder {audio.encoder} needs audio.weights: a local HuggingFace model folder")
    encoder = SSLEncoder.from_pretrained(
        audio.weights, apply_spec_augment=audio.apply_spec_augment, embedding_size=audio.embedding_size,
        layer_weighting=audio.layer_weighting, freeze_feature_encoder=audio.freeze_feature_encoder,
        finetune_top_layers=None if audio.finetune_top_layers < 0 else audio.finetune_top_layers)
    if encoder.config.model_type != audio.encoder:
        raise VoxfaceError(f"audio.weights {audio.weights} holds a {encoder.config.model_type} model, "
                           f"but audio.encoder is {audio.encoder}")
    return encoder


def build_model(config: TrainConfig) -> VoiceFaceModel:
    teacher = load_insightface_backbone(config.face.weights)
    if teacher.input_size != config.data.face_size:
        raise VoxfaceError(f"the face teacher takes {teacher.input_size}px faces but data.face_size is "
                           f"{config.data.face_size}; set data.face_size={teacher.input_size}")
    audio = build_audio_encoder(config)
    size = audio.embedding_size
    mapping = FeatureMapping(teacher.num_features, size, tuple(config.mapping.hidden), config.mapping.norm,
                             config.mapping.dropout, config.mapping.activation)
    return VoiceFaceModel(teacher, mapping, audio, config.audio.mean_norm, config.audio.specaugment,
                          teacher_frozen=config.face.frozen)


class AlignmentModule(L.LightningModule):
    """Multi-level alignment with prior (paper Algorithm 1), trained with Lightning on one CPU or many GPUs."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        self.save_hyperparameters({"config": config})
        self.config = TrainConfig.from_dict(config)
        self.model = build_model(self.config)
        loss = self.config.loss
        self.criterion = AlignmentLoss(loss.contrastive_weight, loss.ot_weight, loss.rkd_weight, loss.temperature,
                                       loss.learnable_temperature, loss.ot_solver, loss.sinkhorn_reg, loss.rkd_mode)
        self._val_scores: list[torch.Tensor] = []
        self._val_labels: list[torch.Tensor] = []

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # What evaluation needs to rebuild the model from the checkpoint alone, without the original files.
        if isinstance(self.model.audio, SSLEncoder):
            checkpoint["voxface_audio_hf_config"] = self.model.audio.config.to_dict()
            checkpoint["voxface_audio_normalize_waveform"] = self.model.audio.normalize_waveform

    # ---------------------------------------------------------------- training

    def training_step(self, batch: dict[str, Any], batch_index: int) -> torch.Tensor:
        teacher = batch["teacher"] if "teacher" in batch else self.model.teacher_embeddings(batch["face"])
        face = self.model.mapping(teacher)
        # SpecAugment masks from a generator seeded by the step: a resumed run draws the same masks.
        generator = torch.Generator().manual_seed(self.config.trainer.seed * 1_000_003 + self.global_step)
        voice = self.model.embed_voices(batch["wave"], generator=generator)
        # All ranks see the global batch (paper: one pair per identity in the batch, N x N similarities).
        terms = self.criterion(gather_with_grad(face), gather_with_grad(voice), gather_with_grad(teacher))
        for name in ("contrastive", "ot", "rkd", "loss"):
            if not torch.isfinite(terms[name]):
                raise TrainingDiverged(
                    f"the {name} loss is {float(terms[name])} at step {self.global_step} (epoch {self.current_epoch});"
                    f" the last good checkpoint is in {self.config.trainer.out}/checkpoints")
        batch_size = len(batch["wave"])
        self.log("train/loss", terms["loss"], prog_bar=True, batch_size=batch_size)
        for name in ("contrastive", "ot", "rkd", "ot_kept_fraction", "temperature"):
            self.log(f"train/{name}", terms[name], batch_size=batch_size)
        self.log("train/skipped_files", float(batch["skipped"]), on_step=False, on_epoch=True, reduce_fx="sum",
                 batch_size=batch_size)
        return terms["loss"]

    # ---------------------------------------------------------------- validation

    def validation_step(self, batch: dict[str, Any], batch_index: int) -> None:
        if not batch:
            return
        face = self.model.embed_faces(batch.get("face"), batch.get("teacher"))
        voice = self.model.embed_voices(batch["wave"])
        self._val_scores.append(VoiceFaceModel.score(face, voice).detach().cpu())
        self._val_labels.append(batch["label"].cpu())

    def on_validation_epoch_end(self) -> None:
        if self._val_scores:
            value = auc(torch.cat(self._val_labels).numpy(), torch.cat(self._val_scores).numpy())
            self.log("val_auc", value if not math.isnan(value) else 0.5, prog_bar=True, sync_dist=False)
        self._val_scores.clear()
        self._val_labels.clear()

    # ---------------------------------------------------------------- optimisation (paper §5.2)

    def configure_optimizers(self):
        optim = self.config.optim
        groups = [("audio", self.model.audio, optim.lr_audio), ("mapping", self.model.mapping, optim.lr_mapping),
                  ("loss", self.criterion, optim.lr_mapping)]
        if not self.config.face.frozen:
            groups.append(("face", self.model.teacher, optim.lr_face))
        params = [{"name": name, "params": [p for p in module.parameters() if p.requires_grad], "lr": lr}
                  for name, module, lr in groups]
        params = [group for group in params if group["params"]]
        optimizer = torch.optim.Adam(params, weight_decay=optim.weight_decay)
        total = max(1, int(self.trainer.estimated_stepping_batches))
        if optim.schedule == "tristage":
            factors = [tristage_schedule(total, tuple(optim.tristage_ratios), optim.tristage_init_scale,
                                         optim.tristage_final_scale)] * len(params)
        elif optim.schedule == "step":
            sampler = getattr(self.trainer.datamodule, "sampler", None)  # built by estimated_stepping_batches
            per_epoch = len(sampler) if sampler is not None else max(1, total // max(1, self.trainer.max_epochs or 1))
            size = max(1, int(round(optim.step_every_epochs * per_epoch)))
            factors = [step_schedule(group["lr"], optim.step_gamma, size, optim.min_lr) for group in params]
        else:
            factors = [lambda step: 1.0] * len(params)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factors)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
