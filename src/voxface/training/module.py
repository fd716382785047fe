"""The LightningModule of the paper's training (Algorithm 1): teacher -> mapping, audio encoder, total loss."""

from __future__ import annotations

import copy
import math
import random
from typing import Any

import lightning as L
import numpy as np
import torch

import voxface
from voxface.errors import VoxfaceError
from voxface.losses.alignment import AlignmentLoss
from voxface.losses.distributed import gather_with_grad
from voxface.encoders.ecapa import ECAPATDNN
from voxface.encoders.loading import load_insightface_backbone, load_speechbrain_ecapa
from voxface.methods.heads import FeatureMapping
from voxface.encoders.ssl import SSLEncoder
from voxface.encoders.voiceface import VoiceFaceModel
from voxface.training.config import FRONT_END_KEY, TrainConfig, audio_front_end
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
                          teacher_frozen=config.face.frozen, features=audio_front_end(config))


def parameter_groups(model: VoiceFaceModel, criterion: torch.nn.Module, config: TrainConfig) -> list[dict[str, Any]]:
    """Adam's parameter groups with their base rates. An SSL encoder's pretrained transformer learns at lr_audio
    (the paper's 1e-5 peak); what is initialised at random (its projection head and layer weights, the mapping
    MLP, a learnable temperature) learns at lr_mapping; a teacher being fine-tuned at lr_face."""
    optim, audio = config.optim, model.audio
    pretrained = getattr(audio, "model", None) if config.audio.encoder != "ecapa" else None
    if pretrained is None:
        audio_params, fresh_audio = list(audio.parameters()), []
    else:
        audio_params = list(pretrained.parameters())
        fresh_audio = [p for n, p in audio.named_parameters() if not n.startswith("model.")]
    groups = [("audio", audio_params, optim.lr_audio),
              ("mapping", list(model.mapping.parameters()) + fresh_audio, optim.lr_mapping),
              ("loss", list(criterion.parameters()), optim.lr_mapping)]
    if not config.face.frozen:
        groups.append(("face", list(model.teacher.parameters()), optim.lr_face))
    params = [{"name": name, "params": [p for p in parameters if p.requires_grad], "lr": lr}
              for name, parameters, lr in groups]
    return [group for group in params if group["params"]]


class AlignmentModule(L.LightningModule):
    """Multi-level alignment with prior (paper Algorithm 1), trained with Lightning on one CPU or many GPUs."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        self.save_hyperparameters({"config": config})
        self.config = TrainConfig.from_dict(config)
        self.model = build_model(self.config)
        loss = self.config.loss
        self.criterion = AlignmentLoss(loss.contrastive_weight, loss.ot_weight, loss.rkd_weight, loss.temperature,
                                       loss.learnable_temperature, loss.ot_solver, loss.sinkhorn_reg, loss.rkd_mode,
                                       loss.ot_pairs)
        self._val_scores: list[torch.Tensor] = []
        self._val_labels: list[torch.Tensor] = []
        # Fine-tuning the face encoder (face.frozen=false) must not move the prior: RKD's targets come from a
        # frozen copy of the pretrained teacher in eval mode. Held in a list, it is no submodule, so it is neither
        # trained nor saved; a resumed run rebuilds it from face.weights, as here.
        self._prior: list[torch.nn.Module] = [] if self.config.face.frozen else [
            copy.deepcopy(self.model.teacher).eval().requires_grad_(False)]

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # What evaluation needs to rebuild the model from the checkpoint alone, without the original files.
        if isinstance(self.model.audio, SSLEncoder):
            checkpoint["voxface_audio_hf_config"] = self.model.audio.config.to_dict()
            # read by voxface versions older than the front-end record below
            checkpoint["voxface_audio_normalize_waveform"] = self.model.audio.normalize_waveform
        # The front end as resolved now (fbank kind and settings, or waveform normalisation), the crops and the face
        # size: loading uses these, never re-deriving them from audio.features / audio.weights (evaluation/checkpoint)
        checkpoint[FRONT_END_KEY] = {**self.model.front_end(), "crop_seconds": self.config.data.crop_seconds,
                                     "val_crop_seconds": self.config.data.val_crop_seconds,
                                     "face_size": self.model.face_size}
        checkpoint["voxface_version"] = voxface.__version__

    # ---------------------------------------------------------------- training

    def on_train_batch_start(self, batch: dict[str, Any], batch_index: int) -> None:
        # Each step's random draws (dropout, and anything else on the global generators) start from a seed of
        # (run seed, step), as fairseq's Trainer reseeds every update: a run resumed at any step draws what the
        # uninterrupted run drew there, whatever ran in between (loader set-up, validation, a restart).
        seed = int(np.random.SeedSequence([self.config.trainer.seed, self.global_step]).generate_state(1)[0])
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)

    def training_step(self, batch: dict[str, Any], batch_index: int) -> torch.Tensor:
        teacher = batch["teacher"] if "teacher" in batch else self.model.teacher_embeddings(batch["face"])
        face = self.model.mapping(teacher)
        prior = self.prior_embeddings(batch["face"]) if self._prior else teacher
        # SpecAugment masks from a generator seeded by the step: a resumed run draws the same masks.
        generator = torch.Generator().manual_seed(self.config.trainer.seed * 1_000_003 + self.global_step)
        voice = self.model.embed_voices(batch["wave"], generator=generator)
        # All ranks see the global batch (paper: one pair per identity in the batch, N x N similarities).
        terms = self.criterion(gather_with_grad(face), gather_with_grad(voice), gather_with_grad(prior))
        for name in ("contrastive", "ot", "rkd", "loss"):
            if not torch.isfinite(terms[name]):
                raise TrainingDiverged(
                    f"the {name} loss is {float(terms[name].detach())} at step {self.global_step} (epoch "
                    f"{self.current_epoch}); the last good checkpoint is in {self.config.trainer.out}/checkpoints")
        batch_size = len(batch["wave"])
        self.log("train/loss", terms["loss"], prog_bar=True, batch_size=batch_size)
        for name in ("contrastive", "ot", "rkd", "ot_kept_fraction", "temperature"):
            self.log(f"train/{name}", terms[name], batch_size=batch_size)
        self.log("train/skipped_files", float(batch["skipped"]), on_step=False, on_epoch=True, reduce_fx="sum",
                 batch_size=batch_size)
        return terms["loss"]

    @torch.no_grad()
    def prior_embeddings(self, faces: torch.Tensor) -> torch.Tensor:
        """The pretrained teacher's T for RKD while the face encoder is fine-tuned (frozen copy, eval mode)."""
        return self._prior[0].to(faces.device).eval()(faces)

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
        params = parameter_groups(self.model, self.criterion, self.config)
        optimizer = torch.optim.Adam(params, weight_decay=optim.weight_decay)
        # The run's length from the data module, not Trainer.estimated_stepping_batches: that builds and iterates
        # the train loader before a resumed run's state is restored, and loader workers would draw the resumed
        # epoch's batches from its start (the sampler reads its position when iterated).
        trainer, per_epoch = self.trainer, self.trainer.datamodule.steps_per_epoch
        total = trainer.max_steps if trainer.max_epochs == -1 else per_epoch * max(1, trainer.max_epochs)
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
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factors)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
