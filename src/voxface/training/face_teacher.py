"""``voxface pretrain-face``: train a face-recognition teacher (IResNet + ArcFace) on an identity folder.

The paper's prior is a face-recognition ResNet-34 trained on a large face data set. This trains one
on any ``<root>/<identity>/<image>`` tree (VoxSynth's ``teacher_faces``, or a user's own), holds out a
share of the identities, and at the end reports face-face verification AUC on them. The result is
saved the way insightface releases are (``backbone.pth``, a plain state dict), so the training code
loads it through the same ``load_insightface_backbone`` a real release goes through.
"""

from __future__ import annotations

import csv
import json
import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import lightning as L
import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from torch.utils.data import DataLoader, Dataset

from voxface.encoders.iresnet import iresnet
from voxface.encoders.loading import read_weights
from voxface.errors import ConfigError, MediaError
from voxface.losses.arcface import ArcFaceHead
from voxface.media.faces import IMAGE_SUFFIXES, face_to_tensor, read_face
from voxface.protocol.layout import IDENTITY_KNOBS_FILE
from voxface.protocol.text import read_lines
from voxface.training.quiet import quiet_lightning

log = logging.getLogger("voxface")


@dataclass
class FaceTeacherConfig:
    depth: int = 34
    width: float = 1.0
    input_size: int = 112
    num_features: int = 512
    epochs: int = 20
    batch_size: int = 128
    lr: float = 0.1  # SGD, cosine decay, as arcface_torch
    weight_decay: float = 5e-4
    margin: float = 0.5
    scale: float = 64.0
    heldout_fraction: float = 0.1
    checkpoint_every: int = 200  # training steps
    workers: int = 2
    seed: int = 0


def scan_identity_folder(root: str | Path) -> dict[str, list[Path]]:
    """``{identity: [image paths]}`` of a ``<root>/<identity>/<image>`` tree, identities with images only."""
    root = Path(root)
    if not root.is_dir():
        raise MediaError(f"face folder {root} does not exist")
    tree = {d.name: sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            for d in sorted(root.iterdir()) if d.is_dir()}
    tree = {name: images for name, images in tree.items() if images}
    if len(tree) < 4:
        raise MediaError(f"{root} has {len(tree)} identity folders with images; need at least 4 (<identity>/<image>)")
    return tree


class LabelledFaces(Dataset):
    def __init__(self, items: list[tuple[Path, int]], size: int, train: bool) -> None:
        self.items, self.size, self.train = items, size, train

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int):
        path, label = self.items[index]
        try:
            face = read_face(path, self.size)
        except MediaError as err:  # a bad image is replaced by another of the same identity
            log.warning("skipping bad file: %s", err)
            same = [i for i, (_, lab) in enumerate(self.items) if lab == label and self.items[i][0] != path]
            if not same:
                raise
            return self[same[index % len(same)]]
        flip = self.train and bool(torch.randint(2, ()).item())
        return face_to_tensor(face, flip), label


class FaceTeacherModule(L.LightningModule):
    def __init__(self, config: dict, num_classes: int) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.config = FaceTeacherConfig(**config)
        c = self.config
        self.backbone = iresnet(c.depth, width=c.width, input_size=c.input_size, num_features=c.num_features)
        self.head = ArcFaceHead(c.num_features, num_classes, c.margin, c.scale)

    def training_step(self, batch, batch_index):
        faces, labels = batch
        loss = self.head(self.backbone(faces), labels)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite ArcFace loss at step {self.global_step}")
        self.log("loss", loss, prog_bar=True)
        return loss

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.parameters(), lr=self.config.lr, momentum=0.9,
                                    weight_decay=self.config.weight_decay)
        steps = max(1, int(self.trainer.estimated_stepping_batches))
        warmup = max(1, steps // 20)

        def factor(step: int) -> float:  # linear warm-up, then cosine decay to 0 at the last step
            if step < warmup:
                return (step + 1) / warmup
            return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, steps - warmup))))

        # LambdaLR keeps only its step count in a checkpoint, so a resumed run with more epochs re-plans.
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


@torch.no_grad()
def embed_faces(backbone: torch.nn.Module, items: list[tuple[Path, int]], size: int,
                batch_size: int = 128) -> torch.Tensor:
    """(N, D) L2-normalised embeddings of the images in ``items``, in order."""
    backbone.eval()
    loader = DataLoader(LabelledFaces(items, size, train=False), batch_size=batch_size)
    device = next(backbone.parameters()).device
    return torch.cat([torch.nn.functional.normalize(backbone(x.to(device))) for x, _ in loader]).cpu()


def verification_auc(embeddings: torch.Tensor, items: list[tuple[Path, int]]) -> float:
    """Face-face verification AUC over all pairs of ``items`` (cosine of their ``embed_faces`` embeddings)."""
    labels = np.array([label for _, label in items])
    upper = np.triu_indices(len(items), k=1)
    scores = (embeddings @ embeddings.T).numpy()[upper]
    same = labels[upper[0]] == labels[upper[1]]
    return float(roc_auc_score(same, scores))


PROBE_FIT_IDENTITIES = 400  # training identities the probes are fitted on (every k-th)
PROBE_IMAGES = 4  # images per fitting identity


def read_identity_knobs(path: str | Path) -> dict[str, dict[str, float]]:
    """``{identity: {"gender": 0/1 (f = 1), "age": years, <face knob>: value}}`` from an identities.csv."""
    lines = [line for _, line in read_lines(path)]
    rows = [{key.strip(): value.strip() for key, value in row.items() if isinstance(key, str) and value is not None}
            for row in csv.DictReader(lines)]
    knobs = {}
    for row in rows:
        values = {k: float(v) for k, v in row.items() if k not in ("name", "gender", "nationality")}
        knobs[row["name"]] = {"gender": float(row["gender"] == "f"), **values}
    return knobs


def _identity_means(items: list[tuple[Path, int]], embeddings: np.ndarray) -> np.ndarray:
    """(identities, D): the mean embedding of each label 0..K-1 of ``items``."""
    labels = np.array([label for _, label in items])
    return np.stack([embeddings[labels == k].mean(0) for k in range(labels.max() + 1)])


def knob_probes(knobs: dict[str, dict[str, float]], fit_names: list[str], fit_embeddings: np.ndarray,
                test_names: list[str], test_embeddings: np.ndarray) -> dict:
    """Linear probes from face embeddings to what made the face, scored on other identities.

    Gender: logistic regression, AUC. Age and every face knob: ridge regression. Penalties by
    cross-validation on the fitting identities, R^2 on the test identities. ``mean_knob_r2`` averages the knobs.
    """
    from sklearn.linear_model import LogisticRegression, RidgeCV
    from sklearn.metrics import r2_score
    from sklearn.model_selection import GridSearchCV
    from sklearn.preprocessing import StandardScaler

    def target(names: list[str], key: str) -> np.ndarray:
        return np.array([knobs[n][key] for n in names])

    # Standardised features: unit-norm embeddings have entries near 1/sqrt(D), too small for a fixed penalty.
    scaler = StandardScaler().fit(fit_embeddings)
    fit_embeddings, test_embeddings = scaler.transform(fit_embeddings), scaler.transform(test_embeddings)
    result: dict = {"gender_auc": None}  # None: one gender only among the fitting or the test identities
    fit_gender, test_gender = target(fit_names, "gender"), target(test_names, "gender")
    if min(np.bincount(fit_gender.astype(int), minlength=2)) >= 5 and len(set(test_gender)) == 2:
        gender = GridSearchCV(LogisticRegression(max_iter=5000), {"C": np.logspace(-3, 2, 11)}, scoring="roc_auc",
                              cv=5).fit(fit_embeddings, fit_gender)
        result["gender_auc"] = round(float(roc_auc_score(test_gender, gender.decision_function(test_embeddings))), 4)
    r2 = {}
    for key in [k for k in next(iter(knobs.values())) if k != "gender"]:
        ridge = RidgeCV(alphas=np.logspace(-3, 3, 13)).fit(fit_embeddings, target(fit_names, key))
        r2[key] = round(float(r2_score(target(test_names, key), ridge.predict(test_embeddings))), 4)
    result["age_r2"] = r2.pop("age")
    result["knob_r2"] = r2
    result["mean_knob_r2"] = round(float(np.mean(list(r2.values()))), 4)
    return result


def format_probes(probes: dict) -> str:
    gender = "n/a (one gender)" if probes["gender_auc"] is None else f"{probes['gender_auc']:.3f}"
    return (f"linear probes on held-out identities: gender AUC {gender}, age R2 {probes['age_r2']:.2f}, "
            f"mean face-knob R2 {probes['mean_knob_r2']:.2f}")


# What a resumed teacher run may change: how long it trains, how often it checkpoints, its loader workers.
RESUMABLE = {"epochs", "checkpoint_every", "workers"}


def _check_resume(blob: object, config: FaceTeacherConfig, num_classes: int, last: Path) -> None:
    """A resumed run must build the model its checkpoint holds: said naming the file, before Lightning's own
    strict loading fails with a traceback."""
    saved = blob.get("hyper_parameters", {}) if isinstance(blob, dict) else {}
    before, now = dict(saved.get("config") or {}), asdict(config)
    changed = [key for key in now if key not in RESUMABLE and key in before and before[key] != now[key]]
    if changed:
        key = changed[0]
        raise ConfigError(f"--resume: {last} was trained with {key}={before[key]!r}, not {now[key]!r}; only "
                          f"{', '.join(sorted(RESUMABLE))} may change")
    if saved.get("num_classes", num_classes) != num_classes:
        raise ConfigError(f"--resume: {last} was trained on {saved['num_classes']} identities, --data now gives "
                          f"{num_classes}; resume on the same face folder")


def pretrain_face_teacher(data: str | Path, out: str | Path, config: FaceTeacherConfig | None = None,
                          resume: bool = False, progress: bool = True) -> dict:
    """Train, checkpoint (resumable), evaluate on held-out identities, write ``backbone.pth`` and ``teacher.json``."""
    config = config or FaceTeacherConfig()
    if not 0 < config.heldout_fraction < 1:
        raise ConfigError(f"heldout_fraction must lie strictly between 0 and 1, got {config.heldout_fraction}")
    out = Path(out)
    tree = scan_identity_folder(data)
    names = sorted(tree)
    rng = np.random.default_rng(config.seed)
    heldout = set(rng.choice(names, size=max(2, round(config.heldout_fraction * len(names))), replace=False).tolist())
    train_names = [n for n in names if n not in heldout]
    train_items = [(p, i) for i, n in enumerate(train_names) for p in tree[n]]
    heldout_items = [(p, i) for i, n in enumerate(sorted(heldout)) for p in tree[n]]
    checkpoints = out / "checkpoints"
    last = checkpoints / "last.ckpt"
    if resume and not last.is_file():  # as 'voxface train --resume' does: never a silent fresh start
        raise ConfigError(f"--resume: {last} does not exist; start the teacher run without --resume")
    if resume:
        # safe loading first: a file carrying code is refused before Lightning opens it
        _check_resume(read_weights(last), config, len(train_names), last)
    if not resume and last.exists():
        raise ConfigError(f"{out} already has a teacher run; pass --resume to continue it or choose another --out")

    quiet_lightning()
    L.seed_everything(config.seed, workers=True, verbose=False)
    module = FaceTeacherModule(asdict(config), num_classes=len(train_names))
    loader = DataLoader(LabelledFaces(train_items, config.input_size, train=True), batch_size=config.batch_size,
                        shuffle=True, drop_last=len(train_items) > config.batch_size, num_workers=config.workers,
                        persistent_workers=config.workers > 0)
    saver = L.pytorch.callbacks.ModelCheckpoint(dirpath=checkpoints, every_n_train_steps=config.checkpoint_every,
                                                save_last=True, save_top_k=0)
    trainer = L.Trainer(max_epochs=config.epochs, accelerator="auto", devices=1, callbacks=[saver], logger=False,
                        enable_progress_bar=progress, enable_model_summary=False, default_root_dir=out,
                        deterministic="warn")
    try:
        trainer.fit(module, loader, ckpt_path=str(last) if resume and last.exists() else None)
    except SystemExit:  # Lightning ends a fit it caught Ctrl-C in with sys.exit(1), after its own shutdown
        if not trainer.interrupted:
            raise
    if trainer.interrupted:  # a cut-short epoch is never saved as finished, nor a backbone made of it
        where = f"epoch {trainer.current_epoch + 1}, step {trainer.global_step}"
        log.warning("face teacher interrupted at %s; %s", where,
                    f"continue from its last checkpoint with the same options and --resume ({last})" if last.is_file()
                    else "it had written no checkpoint yet: start it again")
        raise KeyboardInterrupt
    trainer.save_checkpoint(last, weights_only=False)  # the full training state, said explicitly
    heldout_embeddings = embed_faces(module.backbone, heldout_items, config.input_size)
    auc = verification_auc(heldout_embeddings, heldout_items)
    torch.save(module.backbone.state_dict(), out / "backbone.pth")
    summary = {"config": asdict(config), "train_identities": len(train_names), "train_images": len(train_items),
               "heldout_identities": len(heldout), "heldout_images": len(heldout_items),
               "heldout_verification_auc": round(auc, 4), "backbone": str(out / "backbone.pth")}
    knobs_file = Path(data) / IDENTITY_KNOBS_FILE
    knobs = read_identity_knobs(knobs_file) if knobs_file.is_file() else {}
    if knobs and not set(names) <= set(knobs):
        log.warning("%s lacks %d of the %d identities; no probes", knobs_file, len(set(names) - set(knobs)), len(names))
    elif knobs:
        # What the embedding says about the face: probes fitted on training identities, scored on held-out ones.
        # Identity-level: each identity's mean embedding over its images against its knobs.
        fit_names = train_names[:: max(1, len(train_names) // PROBE_FIT_IDENTITIES)]
        fit_items = [(p, i) for i, n in enumerate(fit_names) for p in tree[n][:PROBE_IMAGES]]
        fit_embeddings = embed_faces(module.backbone, fit_items, config.input_size).numpy()
        summary["probes"] = knob_probes(knobs, fit_names, _identity_means(fit_items, fit_embeddings),
                                        sorted(heldout), _identity_means(heldout_items, heldout_embeddings.numpy()))
    (out / "teacher.json").write_text(json.dumps(summary, indent=1))
    return summary
