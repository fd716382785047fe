"""``voxface pretrain``: one identity-classification pretrainer for a face or a voice encoder.

The paper's priors are a face-recognition network and a speech model trained elsewhere (its Table 4 compares
ECAPA-TDNN from scratch with pretrained ones). This trains either on an ``<root>/<identity>/<file>`` tree
(VoxSynth's ``teacher_faces`` / ``teacher_voices``, or a user's own): a registered encoder under an additive
angular margin head (ArcFace / AAM-softmax, ``losses/arcface.py``), a share of the identities held out. At the
end it reports held-out identity verification (AUC and EER over all pairs of held-out files, cosine) and, where the
folder has an ``identities.csv``, linear probes from each held-out identity's mean embedding to its knobs.

The result is saved as the releases it stands in for are, and loads through the same loader:
- ``iresnet`` -> ``backbone.pth``, insightface's plain state dict (``build_face_encoder``);
- ``ecapa`` -> ``embedding_model.ckpt``, SpeechBrain's plain ECAPA-TDNN state dict (``build_voice_encoder``), its
  front end (Kaldi's fbank by default) recorded beside it;
both with ``voxface_provenance.json`` (``encoders.registry.write_provenance``: trained on what, never on VoxCeleb),
and ``pretrain.json``, the summary.

Example (the shipped demo-size settings; ``data.root`` as made by ``voxface synth``):
    voxface pretrain --config voxsynth/pretrain_voice data.root=runs/demo/voxsynth/teacher_voices
"""

from __future__ import annotations

import csv
import json
import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from voxface.encoders.iresnet import LAYERS
from voxface.encoders.loading import read_weights
from voxface.encoders.registry import ENCODERS, build_encoder, describe_encoder, save_release
from voxface.errors import ConfigError, MediaError
from voxface.formats import AUDIO_SUFFIXES, IMAGE_SUFFIXES
from voxface.losses.arcface import ArcFaceHead
from voxface.media.audio import read_voice
from voxface.media.faces import face_to_tensor, read_face
from voxface.media.fbank import FBANKS
from voxface.metrics import equal_error_rate, roc_auc
from voxface.protocol.layout import IDENTITY_KNOBS_FILE
from voxface.protocol.text import read_lines
from voxface.scoring.probes import BINARY, CONTINUOUS, LinearProbes
from voxface.training.progress import progress_callbacks
from voxface.training.quiet import quiet_lightning

log = logging.getLogger("voxface")

# the registered encoders that can be trained from scratch (encoders/registry.py EncoderKind.architecture)
PRETRAINABLE = {name: kind.modality for name, kind in ENCODERS.items() if kind.architecture}
SUMMARY_FILE = "pretrain.json"


@dataclass
class PretrainDataConfig:
    root: str = ""  # <identity>/<file> folder: images for a face encoder, audio clips for a voice encoder
    heldout_fraction: float = 0.1  # identities held out for the verification AUC / EER and the probes
    crop_seconds: float = 2.0  # voice: random training crops; held-out clips are embedded whole
    workers: int = 2


@dataclass
class PretrainEncoderConfig:
    name: str = "iresnet"  # iresnet (face) or ecapa (voice)
    # iresnet: arcface_torch's settings; input_size is also the size faces are read at (a multiple of 16)
    depth: int = 34
    width: float = 1.0
    input_size: int = 112
    num_features: int = 512
    # ecapa: SpeechBrain's spkrec-ecapa-voxceleb sizes
    channels: list[int] = field(default_factory=lambda: [1024, 1024, 1024, 1024, 3072])
    embedding_size: int = 192
    features: str = "kaldi"  # the fbank it takes: kaldi or speechbrain (recorded beside the weights)
    mean_norm: bool = True
    specaugment: bool = True  # 0-5 frames, 0-10 channels, in training only


@dataclass
class PretrainHeadConfig:
    margin: float = 0.5  # additive angular margin (ArcFace: 0.5; speaker AAM-softmax: 0.2)
    scale: float = 64.0  # logit scale (ArcFace: 64; speaker AAM-softmax: 30)
    # Weight of an auxiliary regression of the modality's own rendered attributes (identities.csv: its knobs, gender,
    # age; standardised), as attribute-supervised face and speaker models are trained; 0: the margin loss alone.
    attribute_weight: float = 0.0


@dataclass
class PretrainOptimConfig:
    optimizer: str = "sgd"  # sgd (momentum 0.9, as arcface_torch) or adam
    batch_size: int = 128
    lr: float = 0.1  # peak rate: linear warm-up over the first 5% of steps, then cosine decay to 0
    weight_decay: float = 5e-4


@dataclass
class PretrainTrainerConfig:
    out: str = "runs/pretrain"
    epochs: int = 20
    seed: int = 0
    checkpoint_every: int = 200  # training steps
    accelerator: str = "auto"
    progress: bool = True


@dataclass
class PretrainConfig:
    """What ``voxface pretrain`` reads (``training.config.read_config``): data, encoder, head, optim, trainer."""

    data: PretrainDataConfig = field(default_factory=PretrainDataConfig)
    encoder: PretrainEncoderConfig = field(default_factory=PretrainEncoderConfig)
    head: PretrainHeadConfig = field(default_factory=PretrainHeadConfig)
    optim: PretrainOptimConfig = field(default_factory=PretrainOptimConfig)
    trainer: PretrainTrainerConfig = field(default_factory=PretrainTrainerConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def modality(self) -> str:
        return ENCODERS[self.encoder.name].modality

    def validate(self, check_paths: bool = True) -> PretrainConfig:
        """Check every value before any work; with ``check_paths``, that ``data.root`` is a folder. Raises
        ``ConfigError`` naming the key."""
        if self.encoder.name not in PRETRAINABLE:
            raise ConfigError(f"config value encoder.name must be one of {tuple(PRETRAINABLE)} (encoders trained "
                              f"from scratch here), got {self.encoder.name!r}")
        e, d = self.encoder, self.data
        checks = [
            (0 < d.heldout_fraction < 1, "data.heldout_fraction", "strictly between 0 and 1"),
            (d.crop_seconds > 0, "data.crop_seconds", "positive"),
            (d.workers >= 0, "data.workers", "0 or more"),
            (self.optim.optimizer in ("sgd", "adam"), "optim.optimizer", "sgd or adam"),
            (self.optim.batch_size >= 2, "optim.batch_size", "at least 2"),
            (self.optim.lr > 0, "optim.lr", "positive"),
            (self.head.scale > 0 and 0 <= self.head.margin < math.pi / 2, "head",
             "a positive head.scale and a head.margin in [0, pi/2)"),
            (self.head.attribute_weight >= 0, "head.attribute_weight", "0 (off) or positive"),
            (self.trainer.epochs >= 1, "trainer.epochs", "at least 1"),
            (self.trainer.checkpoint_every >= 1, "trainer.checkpoint_every", "at least 1"),
            (bool(d.root), "data.root", "an <identity>/<file> folder (set it in the file or as data.root=PATH)"),
        ]
        mine = set(ENCODERS[e.name].architecture)  # the settings of the chosen encoder, checked; the others unset
        checks += [check for setting, check in (
            ("depth", (e.depth in LAYERS, "encoder.depth", f"one of {sorted(LAYERS)}")),
            ("width", (e.width > 0, "encoder.width", "positive")),
            ("input_size", (e.input_size >= 16 and e.input_size % 16 == 0, "encoder.input_size", "a multiple of 16")),
            ("num_features", (e.num_features >= 1, "encoder.num_features", "at least 1")),
            ("channels", (len(e.channels) == 5 and min(e.channels) >= 8 and all(c % 8 == 0 for c in e.channels[1:4]),
                          "encoder.channels", "five channel counts, the middle three multiples of 8 (Res2Net scale)")),
            ("embedding_size", (e.embedding_size >= 1, "encoder.embedding_size", "at least 1")),
            ("features", (e.features in FBANKS, "encoder.features", f"one of {tuple(FBANKS)}"))) if setting in mine]
        for ok, key, expected in checks:
            if not ok:
                raise ConfigError(f"config value {key} must be {expected}")
        # a setting of the other encoder would be silently ignored: said instead
        other = sorted({s for kind in ENCODERS.values() for s in kind.architecture} - mine)
        default = PretrainEncoderConfig()
        changed = [k for k in other if getattr(e, k) != getattr(default, k)]
        if changed:
            raise ConfigError(f"config value encoder.{changed[0]} is a setting of another encoder, not of "
                              f"encoder.name {e.name}")
        if check_paths and not Path(d.root).is_dir():
            raise ConfigError(f"config value data.root: {d.root} is not a folder; give it with data.root=PATH")
        return self


def load_pretrain_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = (),
                         check_paths: bool = True) -> PretrainConfig:
    """A pretraining configuration (a YAML path or a shipped name such as ``voxsynth/pretrain_voice``, plus
    ``key=value`` overrides), read strictly and validated."""
    from voxface.training.config import read_config

    return read_config(PretrainConfig, path, overrides).validate(check_paths)


# ---------------------------------------------------------------- data


def scan_identity_folder(root: str | Path, modality: str) -> dict[str, list[Path]]:
    """``{identity: [file paths]}`` of a ``<root>/<identity>/<file>`` tree: images (face) or audio clips (voice),
    identities with files only. Raises ``MediaError`` when the folder is missing or has fewer than 4 of them."""
    root = Path(root)
    suffixes, what = (IMAGE_SUFFIXES, "images") if modality == "face" else (AUDIO_SUFFIXES, "audio clips")
    if not root.is_dir():
        raise MediaError(f"{modality} folder {root} does not exist")
    tree = {d.name: sorted(p for p in d.iterdir() if p.suffix.lower() in suffixes)
            for d in sorted(root.iterdir()) if d.is_dir()}
    tree = {name: files for name, files in tree.items() if files}
    if len(tree) < 4:
        raise MediaError(f"{root} has {len(tree)} identity folders with {what}; need at least 4 "
                         f"(<identity>/<file>)")
    return tree


class LabelledFiles(Dataset):
    """(input tensor, label) per (path, label): a face image (mirrored at random in training) or a voice clip (a
    random ``crop_seconds`` crop in training; the whole clip otherwise). A bad file is replaced by another of the
    same identity."""

    def __init__(self, items: list[tuple[Path, int]], modality: str, train: bool, face_size: int = 112,
                 crop_seconds: float = 2.0) -> None:
        self.items, self.modality, self.train = items, modality, train
        self.face_size, self.crop_seconds = face_size, crop_seconds

    def __len__(self) -> int:
        return len(self.items)

    def _read(self, path: Path) -> torch.Tensor:
        # random draws from torch's generator (seeded per worker by Lightning), in training only
        if self.modality == "face":
            flip = self.train and bool(torch.randint(2, ()).item())
            return face_to_tensor(read_face(path, self.face_size), flip)
        rng = np.random.default_rng(int(torch.randint(2**31, ()).item())) if self.train else None
        return torch.from_numpy(read_voice(path, self.crop_seconds if self.train else None, rng))

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path, label = self.items[index]
        try:
            return self._read(path), label
        except MediaError as err:
            log.warning("skipping bad file: %s", err)
            same = [i for i, (p, lab) in enumerate(self.items) if lab == label and p != path]
            if not same:
                raise
            return self[same[index % len(same)]]


def collate_padded(batch: list[tuple[torch.Tensor, int]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Whole clips of different lengths: (B, longest) zero-padded waves, (B,) lengths, (B,) labels."""
    lengths = torch.tensor([len(x) for x, _ in batch])
    waves = torch.zeros(len(batch), int(lengths.max()))
    for i, (x, _) in enumerate(batch):
        waves[i, : len(x)] = x
    return waves, lengths, torch.tensor([label for _, label in batch])


# ---------------------------------------------------------------- the model


def build_pretrain_encoder(config: PretrainEncoderConfig) -> torch.nn.Module:
    """The encoder ``config`` names, at random initialisation (``encoders.registry.build_encoder``, from the settings
    that belong to it): (B, 3, S, S) faces or (B, samples) 16 kHz waves -> (B, embedding size)."""
    return build_encoder(config.name, **{k: getattr(config, k) for k in ENCODERS[config.name].architecture})


class PretrainModule(L.LightningModule):
    """A registered encoder under an additive angular margin head (Deng et al. 2019, Eq. 3), with an optional
    auxiliary linear regression of each training identity's attributes (``attribute_targets``: (identities, A),
    standardised) from the embedding, weighted by ``head.attribute_weight``.

    The regression reads ``sqrt(D) * e / |e|``: the unit-norm embedding that cosine scoring and the probes see, at
    unit scale per entry, so that what it makes linear survives the normalisation."""

    def __init__(self, config: dict, num_classes: int, attributes: int = 0) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.config = PretrainConfig(**{k: cls(**config[k]) for k, cls in _SECTIONS.items()})
        self.encoder = build_pretrain_encoder(self.config.encoder)
        head = self.config.head
        self.head = ArcFaceHead(self.encoder.embedding_size, num_classes, head.margin, head.scale)
        self.attribute_head = torch.nn.Linear(self.encoder.embedding_size, attributes) if attributes else None
        # filled by pretrain() before training; saved in checkpoints, so a resumed run regresses the same targets
        self.register_buffer("attribute_targets", torch.zeros(num_classes if attributes else 0, attributes))

    def training_step(self, batch, batch_index):
        inputs, labels = batch
        embeddings = self.encoder(inputs)
        margin = self.head(embeddings, labels)
        loss = margin
        if self.attribute_head is not None:
            unit = torch.nn.functional.normalize(embeddings) * math.sqrt(embeddings.shape[1])
            attributes = torch.nn.functional.mse_loss(self.attribute_head(unit), self.attribute_targets[labels])
            loss = margin + self.config.head.attribute_weight * attributes
            self.log("attr", attributes, prog_bar=True)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite margin loss at step {self.global_step}")
        self.log("loss", loss, prog_bar=True)
        return loss

    def configure_optimizers(self):
        optim = self.config.optim
        if optim.optimizer == "sgd":
            optimizer = torch.optim.SGD(self.parameters(), lr=optim.lr, momentum=0.9, weight_decay=optim.weight_decay)
        else:
            optimizer = torch.optim.Adam(self.parameters(), lr=optim.lr, weight_decay=optim.weight_decay)
        steps = max(1, int(self.trainer.estimated_stepping_batches))
        warmup = max(1, steps // 20)

        def factor(step: int) -> float:  # linear warm-up, then cosine decay to 0 at the last step
            if step < warmup:
                return (step + 1) / warmup
            return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, steps - warmup))))

        # LambdaLR keeps only its step count in a checkpoint, so a resumed run with more epochs re-plans.
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


_SECTIONS = {"data": PretrainDataConfig, "encoder": PretrainEncoderConfig, "head": PretrainHeadConfig,
             "optim": PretrainOptimConfig, "trainer": PretrainTrainerConfig}


# ---------------------------------------------------------------- held-out verification


@torch.no_grad()
def embed_files(encoder: torch.nn.Module, items: list[tuple[Path, int]], config: PretrainConfig,
                batch_size: int = 32) -> torch.Tensor:
    """(N, D) L2-normalised embeddings of the files in ``items``, in order (voice clips whole)."""
    encoder.eval()
    dataset = LabelledFiles(items, config.modality, False, config.encoder.input_size, config.data.crop_seconds)
    device = next(encoder.parameters()).device
    if config.modality == "face":
        loader = DataLoader(dataset, batch_size=batch_size)
        rows = [encoder(x.to(device)) for x, _ in loader]
    else:
        loader = DataLoader(dataset, batch_size=batch_size, collate_fn=collate_padded)
        rows = [encoder(x.to(device), lengths.to(device)) for x, lengths, _ in loader]
    return torch.nn.functional.normalize(torch.cat(rows)).cpu()


def verification_scores(embeddings: torch.Tensor, items: list[tuple[Path, int]]) -> dict[str, float]:
    """``{"auc", "eer"}`` of identity verification over all pairs of ``items`` (cosine of their embeddings)."""
    labels = np.array([label for _, label in items])
    upper = np.triu_indices(len(items), k=1)
    scores = (embeddings @ embeddings.T).numpy()[upper]
    same = labels[upper[0]] == labels[upper[1]]
    return {"auc": round(roc_auc(same, scores), 4), "eer": round(equal_error_rate(same, scores), 4)}


# ---------------------------------------------------------------- knob probes (identities.csv)

PROBE_FIT_IDENTITIES = 400  # training identities the probes are fitted on (every k-th)
PROBE_FILES = {"face": 4, "voice": 2}  # files per fitting identity (a whole clip costs more to embed than an image)


def read_identity_knobs(path: str | Path) -> dict[str, dict[str, float]]:
    """``{identity: {"gender": 0/1 (f = 1), "age": years, <knob>: value}}`` from an identities.csv."""
    lines = [line for _, line in read_lines(path)]
    rows = [{key.strip(): value.strip() for key, value in row.items() if isinstance(key, str) and value is not None}
            for row in csv.DictReader(lines)]
    knobs = {}
    for row in rows:
        values = {k: float(v) for k, v in row.items() if k not in ("name", "gender", "nationality")}
        knobs[row["name"]] = {"gender": float(row["gender"] == "f"), **values}
    return knobs


def attribute_targets(data: Path, names: list[str]) -> torch.Tensor:
    """(len(names), A) float32: each identity's attributes from ``data/identities.csv`` (gender as 0/1, age, every
    knob), standardised over ``names``; what ``head.attribute_weight`` regresses. Raises ``ConfigError`` when the
    file is missing or lacks one of the identities."""
    knobs_file = data / IDENTITY_KNOBS_FILE
    if not knobs_file.is_file():
        raise ConfigError(f"config value head.attribute_weight > 0 needs {knobs_file} (name, gender, age and the "
                          "knobs of every identity); set head.attribute_weight=0 for identity training alone")
    knobs = read_identity_knobs(knobs_file)
    missing = [n for n in names if n not in knobs]
    if missing:
        raise ConfigError(f"{knobs_file} lacks {len(missing)} of the {len(names)} training identities (first: "
                          f"{missing[0]}); head.attribute_weight needs every one")
    values = np.array([[knobs[n][key] for key in knobs[names[0]]] for n in names], dtype=np.float64)
    values = (values - values.mean(0)) / np.maximum(values.std(0), 1e-6)
    return torch.from_numpy(values).float()


def _identity_means(items: list[tuple[Path, int]], embeddings: np.ndarray) -> np.ndarray:
    """(identities, D): the mean embedding of each label 0..K-1 of ``items``."""
    labels = np.array([label for _, label in items])
    return np.stack([embeddings[labels == k].mean(0) for k in range(labels.max() + 1)])


def knob_probes(knobs: dict[str, dict[str, float]], fit_names: list[str], fit_embeddings: np.ndarray,
                test_names: list[str], test_embeddings: np.ndarray) -> dict:
    """Linear probes (``scoring.probes``) from embeddings to what made the face or voice, scored on other identities.

    Gender: logistic regression, AUC (None where the fitting identities hold fewer than 5 of a gender or the test
    identities one gender). Age and every knob: ridge regression, R^2 on the test identities. Features
    standardised, penalties cross-validated on the fitting identities. ``mean_knob_r2`` averages the knobs.
    """
    keys = list(next(iter(knobs.values())))

    def targets(names: list[str]) -> dict[str, np.ndarray]:
        return {key: np.array([knobs[n][key] for n in names]) for key in keys}

    # Standardised features: unit-norm embeddings have entries near 1/sqrt(D), too small for a fixed penalty.
    probes = LinearProbes({key: BINARY if key == "gender" else CONTINUOUS for key in keys}, standardize=True,
                          cross_validate=True).fit(fit_embeddings, targets(fit_names))
    scores = probes.report(test_embeddings, targets(test_names))
    gender = scores.pop("gender_auc", None)
    r2 = {key: round(scores[f"{key}_r2"], 4) for key in keys if key != "gender"}
    result: dict = {"gender_auc": None if gender is None else round(gender, 4), "age_r2": r2.pop("age")}
    result["knob_r2"] = r2
    result["mean_knob_r2"] = round(float(np.mean(list(r2.values()))), 4)
    return result


def format_probes(probes: dict, modality: str = "face") -> str:
    gender = "n/a (one gender)" if probes["gender_auc"] is None else f"{probes['gender_auc']:.3f}"
    return (f"linear probes on held-out identities: gender AUC {gender}, age R2 {probes['age_r2']:.2f}, "
            f"mean {modality}-knob R2 {probes['mean_knob_r2']:.2f}")


# ---------------------------------------------------------------- resuming

# What a resumed run may change: how long it trains, how often it checkpoints, where files are, its loader workers.
RESUMABLE = {"trainer.epochs", "trainer.checkpoint_every", "trainer.out", "trainer.progress", "trainer.accelerator",
             "data.root", "data.workers"}


def _flat(config: dict, prefix: str = "") -> dict[str, Any]:
    flat = {}
    for key, value in config.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[prefix + key] = value
    return flat


def _check_resume(blob: object, config: PretrainConfig, num_classes: int, last: Path) -> None:
    """A resumed run must build the model its checkpoint holds: said naming the file, before Lightning's own
    strict loading fails with a traceback."""
    saved = blob.get("hyper_parameters", {}) if isinstance(blob, dict) else {}
    before, now = _flat(dict(saved.get("config") or {})), _flat(config.to_dict())
    changed = [key for key in now if key not in RESUMABLE and key in before and before[key] != now[key]]
    if changed:
        key = changed[0]
        raise ConfigError(f"--resume: {last} was trained with {key}={before[key]!r}, not {now[key]!r}; only "
                          f"{', '.join(sorted(RESUMABLE))} may change")
    if saved.get("num_classes", num_classes) != num_classes:
        raise ConfigError(f"--resume: {last} was trained on {saved['num_classes']} identities, data.root now gives "
                          f"{num_classes}; resume on the same folder")


# ---------------------------------------------------------------- the run


def _split(tree: dict[str, list[Path]], config: PretrainConfig) -> tuple[list[str], list[str]]:
    """(training identities, held-out identities), both sorted; the held-out draw depends on the seed only."""
    names = sorted(tree)
    rng = np.random.default_rng(config.trainer.seed)
    count = max(2, round(config.data.heldout_fraction * len(names)))
    heldout = set(rng.choice(names, size=count, replace=False).tolist())
    return [n for n in names if n not in heldout], sorted(heldout)


def pretrain(config: PretrainConfig, resume: bool = False) -> dict:
    """Train (checkpointed, resumable), evaluate on held-out identities, write the weights (``save_release``), their
    provenance and ``pretrain.json``; returns that summary. Raises ``ConfigError`` / ``MediaError`` before any work
    for bad settings or data, ``KeyboardInterrupt`` after an interruption (its checkpoint kept)."""
    config.validate()
    out, data = Path(config.trainer.out), Path(config.data.root)
    tree = scan_identity_folder(data, config.modality)
    train_names, heldout = _split(tree, config)
    train_items = [(p, i) for i, n in enumerate(train_names) for p in tree[n]]
    heldout_items = [(p, i) for i, n in enumerate(heldout) for p in tree[n]]
    checkpoints = out / "checkpoints"
    last = checkpoints / "last.ckpt"
    if resume and not last.is_file():  # as 'voxface train --resume' does: never a silent fresh start
        raise ConfigError(f"--resume: {last} does not exist; start the pretraining run without --resume")
    if resume:
        # safe loading first: a file carrying code is refused before Lightning opens it
        _check_resume(read_weights(last), config, len(train_names), last)
    if not resume and last.exists():
        raise ConfigError(f"{out} already has a pretraining run; pass --resume to continue it or choose another "
                          "trainer.out")

    targets = attribute_targets(data, train_names) if config.head.attribute_weight > 0 else None

    quiet_lightning()
    L.seed_everything(config.trainer.seed, workers=True, verbose=False)
    module = PretrainModule(config.to_dict(), num_classes=len(train_names),
                            attributes=0 if targets is None else targets.shape[1])
    if targets is not None:
        module.attribute_targets.copy_(targets)
    workers, batch = config.data.workers, config.optim.batch_size
    dataset = LabelledFiles(train_items, config.modality, True, config.encoder.input_size, config.data.crop_seconds)
    loader = DataLoader(dataset, batch_size=batch, shuffle=True, drop_last=len(train_items) > batch,
                        num_workers=workers, persistent_workers=workers > 0)
    saver = L.pytorch.callbacks.ModelCheckpoint(dirpath=checkpoints, save_last=True, save_top_k=0,
                                                every_n_train_steps=config.trainer.checkpoint_every)
    trainer = L.Trainer(max_epochs=config.trainer.epochs, accelerator=config.trainer.accelerator, devices=1,
                        callbacks=[saver, *progress_callbacks(config.trainer.progress)], logger=False,
                        enable_progress_bar=config.trainer.progress,
                        enable_model_summary=False, default_root_dir=out, deterministic="warn")
    try:
        trainer.fit(module, loader, ckpt_path=str(last) if resume else None)
    except SystemExit:  # Lightning ends a fit it caught Ctrl-C in with sys.exit(1), after its own shutdown
        if not trainer.interrupted:
            raise
    if trainer.interrupted:  # a cut-short epoch is never saved as finished, nor weights made of it
        where = f"epoch {trainer.current_epoch + 1}, step {trainer.global_step}"
        log.warning("pretraining interrupted at %s; %s", where,
                    f"continue from its last checkpoint with the same settings and --resume ({last})" if last.is_file()
                    else "it had written no checkpoint yet: start it again")
        raise KeyboardInterrupt
    trainer.save_checkpoint(last, weights_only=False)  # the full training state, said explicitly
    module.cpu()
    heldout_embeddings = embed_files(module.encoder, heldout_items, config)
    scores = verification_scores(heldout_embeddings, heldout_items)
    trained_on = f"{data.resolve()} ({len(train_names)} identities, voxface pretrain)"
    weights = save_release(config.encoder.name, module.encoder, out, trained_on)
    summary = {"config": config.to_dict(), "modality": config.modality, "encoder": config.encoder.name,
               "encoder_description": describe_encoder(config.encoder.name, module.encoder),
               "train_identities": len(train_names), "train_files": len(train_items),
               "heldout_identities": len(heldout), "heldout_files": len(heldout_items),
               "heldout_verification_auc": scores["auc"], "heldout_eer": scores["eer"],
               "steps": trainer.global_step, "weights": str(weights)}
    probes = _probes(module, config, data, tree, train_names, heldout, heldout_items, heldout_embeddings)
    if probes is not None:
        summary["probes"] = probes
    (out / SUMMARY_FILE).write_text(json.dumps(summary, indent=1))
    return summary


def _probes(module: PretrainModule, config: PretrainConfig, data: Path, tree: dict[str, list[Path]],
            train_names: list[str], heldout: list[str], heldout_items: list[tuple[Path, int]],
            heldout_embeddings: torch.Tensor) -> dict | None:
    """What the embedding says about the identity: probes fitted on training identities, scored on held-out ones,
    identity-level (each identity's mean embedding against its knobs); None without an identities.csv."""
    knobs_file = data / IDENTITY_KNOBS_FILE
    knobs = read_identity_knobs(knobs_file) if knobs_file.is_file() else {}
    if not knobs:
        return None
    if not set(tree) <= set(knobs):
        log.warning("%s lacks %d of the %d identities; no probes", knobs_file, len(set(tree) - set(knobs)), len(tree))
        return None
    fit_names = train_names[:: max(1, len(train_names) // PROBE_FIT_IDENTITIES)]
    fit_items = [(p, i) for i, n in enumerate(fit_names) for p in tree[n][:PROBE_FILES[config.modality]]]
    fit_embeddings = embed_files(module.encoder, fit_items, config).numpy()
    return knob_probes(knobs, fit_names, _identity_means(fit_items, fit_embeddings),
                       heldout, _identity_means(heldout_items, heldout_embeddings.numpy()))


def format_pretrain(summary: dict) -> str:
    """The lines ``voxface pretrain`` prints for a finished run."""
    model = summary.get("encoder_description", summary["encoder"])
    lines = [f"{summary['modality']} encoder: {model} on {summary['train_identities']} identities / "
             f"{summary['train_files']} files; held-out verification AUC {summary['heldout_verification_auc']:.3f}, "
             f"EER {summary['heldout_eer']:.1%} on {summary['heldout_identities']} unseen identities"]
    if "probes" in summary:
        lines.append(format_probes(summary["probes"], summary["modality"]))
    lines.append(f"weights: {summary['weights']} (saved as its releases are, provenance beside it)")
    return "\n".join(lines)

