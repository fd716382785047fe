"""How much of its knobs one VoxSynth sample carries: supervised readers, R² per knob (issue 22).

The oracle ceiling (``oracle.py``) scores with every sample's true knobs. It is a ceiling for models that
see media only if the media carry those knobs. This module measures that in the best case a model of the
demo's size could have: a *supervised* reader per modality (the demo's ECAPA-TDNN on one clip's fbank, the
demo's face IResNet on one frame) trained to regress the sample's true knobs, on a separate draw of
identities rendered the way ``voxface synth`` renders them (a channel per video, a scene per video, an
expression per frame), and scored on held-out identities:

    R²_k = 1 - sum_i (y_ik - ŷ_ik)² / sum_i (y_ik - ȳ_k)²      (i: held-out samples, k: knob)

Bars (issue 22): every knob with a shared-latent loading (``model.VOICE_LOADINGS``, ``FACE_LOADINGS``)
R² ≥ 0.8 from one sample, every other knob ≥ 0.6.

>>> config = LegibilityConfig(identities=6, heldout=4, videos=1, epochs=1, voice_channels=(16, 16, 16, 16, 48),
...                           voice_embedding=16, face_width=0.125, face_features=16, face_size=32)
>>> result = measure_legibility(config, modalities=("face",))  # doctest: +SKIP
>>> sorted(result["face"]["r2"]) == sorted(FACE_KNOBS)  # doctest: +SKIP
True
"""

from __future__ import annotations

import hashlib
import inspect
import io
import json
import logging
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from sklearn.metrics import r2_score
from torch import nn

from voxface.encoders.ecapa import ECAPATDNN
from voxface.encoders.iresnet import iresnet
from voxface.errors import ConfigError
from voxface.media.faces import face_to_tensor
from voxface.media.fbank import KaldiFbank
from voxface.synth import face, voice
from voxface.synth.face import Scene, render_face
from voxface.synth.model import (
    FACE_KNOBS,
    FACE_LOADINGS,
    VOICE_KNOBS,
    VOICE_LOADINGS,
    IdentityModel,
    draw_population,
)
from voxface.synth.voice import SAMPLE_RATE, Channel, VoiceTraits, render_voice

log = logging.getLogger("voxface")
SHARED_BAR, PRIVATE_BAR = 0.8, 0.6  # issue 22's bars on single-sample R²
LEGIBILITY_FILE = "legibility.json"


@dataclass(frozen=True)
class LegibilityConfig:
    """A legibility measurement: the draw, the readers (the demo's sizes by default) and their training."""

    identities: int = 600  # the readers' training identities (a draw of its own, not the data set's people)
    heldout: int = 150  # identities the R² is scored on
    videos: int = 4  # samples per identity, each from its own video (channel, scene)
    clip_seconds: float = 3.0  # rendered clip; the reader trains on random crops of crop_seconds
    crop_seconds: float = 2.0  # the demo's training crop
    epochs: int = 12
    batch_size: int = 32
    lr: float = 2e-3
    seed: int = 22  # the draw and the readers' initialisation
    # The demo's voice encoder (configs/voxsynth/base.yaml) and face teacher (configs/voxsynth/pretrain_face.yaml).
    voice_channels: tuple[int, ...] = (128, 128, 128, 128, 384)
    voice_embedding: int = 64
    face_depth: int = 18
    face_width: float = 0.25
    face_features: int = 128
    face_size: int = 64

    @classmethod
    def sized(cls, identities: int) -> LegibilityConfig:
        """The default measurement with ``identities`` training identities and a quarter as many held out."""
        return cls(identities=identities, heldout=max(4, identities // 4))

    def validate(self) -> None:
        """Raise ConfigError for a measurement that cannot give an R² (too few identities, samples or steps)."""
        if self.identities < 8 or self.heldout < 4:
            raise ConfigError(f"legibility needs at least 8 reader identities and 4 held-out ones (got "
                              f"{self.identities} and {self.heldout}): --legibility 8 or more")
        if self.videos < 1 or self.epochs < 1 or self.batch_size < 1 or self.lr <= 0:
            raise ConfigError("legibility needs at least 1 video per identity, 1 epoch, a batch of 1 and a positive "
                              "learning rate")
        if self.identities * self.videos < self.batch_size:
            raise ConfigError(f"{self.identities} identities x {self.videos} videos give fewer samples than one batch "
                              f"of {self.batch_size}: take more identities")
        if not 0 < self.crop_seconds <= self.clip_seconds:
            raise ConfigError(f"the training crop ({self.crop_seconds} s) must lie within the clip "
                              f"({self.clip_seconds} s)")


def knob_bars(modality: str) -> dict[str, float]:
    """Each knob's bar: SHARED_BAR where the shared latent loads on it, PRIVATE_BAR otherwise."""
    knobs, loadings = (VOICE_KNOBS, VOICE_LOADINGS) if modality == "voice" else (FACE_KNOBS, FACE_LOADINGS)
    return {k: SHARED_BAR if any(loadings.get(k, ())) else PRIVATE_BAR for k in knobs}


# ---------------------------------------------------------------- the draw, rendered as voxface synth renders


def _render_voice_identity(task: tuple) -> tuple[np.ndarray, np.ndarray]:
    seed, index, knobs, rate, videos, seconds, sample_sd = task
    waves, targets = [], []
    for v in range(videos):
        rng = np.random.default_rng([seed, index, v])
        sample = knobs + rng.normal(0, sample_sd, len(knobs))
        wave = render_voice(VoiceTraits.from_knobs(sample, rate), Channel.draw(rng), seconds, rng)
        waves.append(np.round(wave * 32767).astype(np.int16))  # as the PCM_16 files hold it
        targets.append(sample)
    return np.stack(waves), np.stack(targets)


def _render_face_identity(task: tuple) -> tuple[np.ndarray, np.ndarray]:
    seed, index, knobs, videos, size, sample_sd = task
    frames, targets = [], []
    for v in range(videos):
        rng = np.random.default_rng([seed, index, v])
        sample = knobs + rng.normal(0, sample_sd, len(knobs))
        buffer = io.BytesIO()  # JPEG, as the data set's frames are written, then the loader's resize
        render_face(sample, Scene.draw(rng), rng).save(buffer, format="JPEG", quality=int(rng.integers(85, 96)))
        with Image.open(buffer) as image:
            frames.append(np.asarray(image.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)))
        targets.append(sample)
    return np.stack(frames), np.stack(targets)


def render_draw(config: LegibilityConfig, modality: str, model: IdentityModel | None = None,
                workers: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(samples, knobs (N, K), identity index (N,)) for ``identities + heldout`` freshly drawn identities."""
    model = model or IdentityModel()
    count = config.identities + config.heldout
    population = draw_population(model, count, np.random.default_rng([config.seed, 0]))
    seed = config.seed + (1 if modality == "voice" else 2)
    if modality == "voice":
        tasks = [(seed, i, population.voice[i], population.rate[i], config.videos, config.clip_seconds,
                  model.sample_sd) for i in range(count)]
        render = _render_voice_identity
    else:
        tasks = [(seed, i, population.face[i], config.videos, config.face_size, model.sample_sd) for i in range(count)]
        render = _render_face_identity
    with ProcessPoolExecutor(workers) as pool:
        results = list(pool.map(render, tasks, chunksize=8))
    samples = np.concatenate([r[0] for r in results])
    knobs = np.concatenate([r[1] for r in results])
    return samples, knobs, np.repeat(np.arange(count), config.videos)


# ---------------------------------------------------------------- the readers


class VoiceReader(nn.Module):
    """The demo's ECAPA-TDNN on mean-normalised Kaldi fbank, and a linear head: (B, samples) -> (B, K)."""

    def __init__(self, config: LegibilityConfig, outputs: int) -> None:
        super().__init__()
        self.fbank = KaldiFbank(mean_norm=True)
        self.encoder = ECAPATDNN(channels=config.voice_channels, embedding_size=config.voice_embedding)
        self.head = nn.Linear(config.voice_embedding, outputs)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        feats, _ = self.fbank(wave)
        return self.head(self.encoder(feats))


class FaceReader(nn.Module):
    """The demo's face IResNet and a linear head: (B, 3, S, S) -> (B, K)."""

    def __init__(self, config: LegibilityConfig, outputs: int) -> None:
        super().__init__()
        self.encoder = iresnet(config.face_depth, width=config.face_width, input_size=config.face_size,
                               num_features=config.face_features)
        self.head = nn.Linear(config.face_features, outputs)

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(faces))


def _inputs(modality: str, samples: np.ndarray, rows: np.ndarray, config: LegibilityConfig,
            rng: np.random.Generator | None) -> torch.Tensor:
    """A batch as the reader takes it: a random crop of each clip (the whole clip without ``rng``) as float
    waveforms, or normalised faces (randomly flipped with ``rng``, as the demo trains its teacher)."""
    if modality == "voice":
        batch = samples[rows].astype(np.float32) / 32768.0
        if rng is not None:
            crop = int(config.crop_seconds * SAMPLE_RATE)
            starts = rng.integers(0, batch.shape[1] - crop + 1, len(rows))
            batch = np.stack([b[s:s + crop] for b, s in zip(batch, starts, strict=True)])
        return torch.from_numpy(batch)
    flips = rng.random(len(rows)) < 0.5 if rng is not None else np.zeros(len(rows), bool)
    return torch.stack([face_to_tensor(samples[r], bool(f)) for r, f in zip(rows, flips, strict=True)])


def train_reader(modality: str, samples: np.ndarray, targets: np.ndarray, train_rows: np.ndarray,
                 config: LegibilityConfig) -> tuple[nn.Module, np.ndarray, np.ndarray]:
    """A reader regressing the standardised knobs (mean squared error, AdamW, one-cycle schedule); returns it
    with the training targets' mean and standard deviation."""
    torch.manual_seed(config.seed)
    rng = np.random.default_rng([config.seed, 3])
    mean, sd = targets[train_rows].mean(0), targets[train_rows].std(0) + 1e-9
    scaled = torch.from_numpy(((targets - mean) / sd).astype(np.float32))
    reader = (VoiceReader if modality == "voice" else FaceReader)(config, targets.shape[1])
    steps_per_epoch = max(1, len(train_rows) // config.batch_size)
    optimizer = torch.optim.AdamW(reader.parameters(), lr=config.lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, config.lr, total_steps=config.epochs * steps_per_epoch)
    reader.train()
    for epoch in range(config.epochs):
        order, total = rng.permutation(train_rows), 0.0
        for step in range(steps_per_epoch):
            rows = order[step * config.batch_size:(step + 1) * config.batch_size]
            loss = nn.functional.mse_loss(reader(_inputs(modality, samples, rows, config, rng)), scaled[rows])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            total += float(loss.detach())
        log.info("%s reader, epoch %d/%d: mean squared error %.3f", modality, epoch + 1, config.epochs,
                 total / steps_per_epoch)
    return reader, mean, sd


@torch.no_grad()
def predict(reader: nn.Module, modality: str, samples: np.ndarray, rows: np.ndarray, mean: np.ndarray,
            sd: np.ndarray, config: LegibilityConfig) -> np.ndarray:
    """(len(rows), K) knob estimates on the knobs' own scale."""
    reader.eval()
    out = [reader(_inputs(modality, samples, rows[i:i + 64], config, None)).numpy() for i in range(0, len(rows), 64)]
    return np.concatenate(out) * sd + mean


def read_modality(config: LegibilityConfig, modality: str, model: IdentityModel | None = None,
                  workers: int | None = None) -> tuple[nn.Module, np.ndarray, np.ndarray, dict]:
    """Render a fresh draw of one modality, train its reader and score it on the held-out identities: (the reader,
    the knobs' training mean and sd it predicts around, ``{"r2": {knob: R²}, "bars", "met", "render_seconds",
    "train_seconds", "samples", "heldout_samples"}``)."""
    config.validate()
    start = time.perf_counter()
    samples, targets, identity = render_draw(config, modality, model, workers)
    rendered = time.perf_counter()
    train_rows = np.flatnonzero(identity < config.identities)
    test_rows = np.flatnonzero(identity >= config.identities)
    reader, mean, sd = train_reader(modality, samples, targets, train_rows, config)
    estimate = predict(reader, modality, samples, test_rows, mean, sd, config)
    trained = time.perf_counter()
    knobs = VOICE_KNOBS if modality == "voice" else FACE_KNOBS
    r2 = {k: float(r2_score(targets[test_rows, j], estimate[:, j])) for j, k in enumerate(knobs)}
    bars = knob_bars(modality)
    return reader, mean, sd, {"r2": r2, "bars": bars, "met": all(r2[k] >= bars[k] for k in knobs),
                              "render_seconds": round(rendered - start, 1),
                              "train_seconds": round(trained - rendered, 1), "samples": len(train_rows),
                              "heldout_samples": len(test_rows)}


def measure_legibility(config: LegibilityConfig | None = None, modalities: tuple[str, ...] = ("voice", "face"),
                       model: IdentityModel | None = None, workers: int | None = None) -> dict:
    """Render a fresh draw, train a reader per modality, and report R² per knob on held-out identities.

    Returns ``{"config": {...}, modality: {"r2": {knob: R²}, "bars": {knob: bar}, "met": bool,
    "render_seconds": s, "train_seconds": s, "samples": n_train, "heldout_samples": n_test}}``.
    """
    config = config or LegibilityConfig()
    config.validate()
    result: dict = {"config": asdict(config)}
    for modality in modalities:
        result[modality] = read_modality(config, modality, model, workers)[3]
    return result


def legibility_beside(out: str | Path, config: LegibilityConfig, model: IdentityModel,
                      workers: int | None = None) -> str:
    """Measure (or reuse, when ``OUT/legibility.json`` holds the same settings) the legibility of a data set's
    renderers under its identity model, write ``legibility.json`` beside its ``voxsynth.json``, and return
    the report section."""
    path = Path(out) / LEGIBILITY_FILE
    # the code too (renderers, readers, front end): a measurement by other code says nothing about these media
    readers = (sys.modules[c.__module__] for c in (ECAPATDNN, iresnet, KaldiFbank))
    modules = (voice, face, sys.modules[__name__], *readers)
    sources = "".join(inspect.getsource(m) for m in modules)
    settings = {"readers": asdict(config), "model": asdict(model),
                "code": hashlib.sha256(sources.encode()).hexdigest()[:16]}
    if path.is_file():
        try:
            stored = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:  # measured again, and rewritten
            log.warning("%s: unreadable (%s); measuring again", path, err)
            stored = {}
        if isinstance(stored, dict) and stored.get("settings") == json.loads(json.dumps(settings)):
            try:
                return format_legibility(stored) + f"\n  (measured earlier: {path})"
            except (KeyError, TypeError, ValueError, AttributeError):  # an edited or truncated file: measured again
                log.warning("%s: not a legibility measurement this version wrote; measuring again", path)
        elif stored:
            log.warning("%s was measured with other reader settings, identity model or code; measuring again (the "
                        "file is replaced)", path)
    if not path.parent.is_dir():
        raise ConfigError(f"{path.parent}: not a folder to write {LEGIBILITY_FILE} into")
    config.validate()  # before minutes of rendering, not after
    if config.identities < 100:
        log.warning("%d reader identities: R² from so few is noise (the bars are judged at 600)", config.identities)
    partial = path.with_name(path.name + ".partial")
    try:  # a folder that cannot take the file is found before the measurement, not after
        partial.write_text("")
    except OSError as err:
        raise ConfigError(f"cannot write into {path.parent} ({err.strerror or err}): choose a writable --out") from None
    try:
        result = {**measure_legibility(config, model=model, workers=workers), "settings": settings}
    except BaseException:  # an interrupted or failed measurement leaves nothing behind
        partial.unlink(missing_ok=True)
        raise
    try:  # written whole or not at all
        partial.write_text(json.dumps(result, indent=1) + "\n")
        partial.replace(path)
    except OSError as err:  # minutes of measurement are not thrown away: the section is still returned
        log.warning("cannot write %s (%s); the measurement is only printed", path, err.strerror or err)
    return format_legibility(result) + f"\n  (written to {path})"


def format_legibility(result: dict) -> str:
    """The ``voxface synth --legibility`` report section: R² per knob against its bar."""
    config = result["config"]
    lines = [f"legibility: supervised single-sample readers, R² on {config['heldout']} held-out identities "
             f"(trained on {config['identities']} x {config['videos']} samples; bars {SHARED_BAR} where the shared "
             f"latent loads, {PRIVATE_BAR} elsewhere)"]
    for modality in ("voice", "face"):
        if modality not in result:
            continue
        entry = result[modality]
        cells = [f"{k} {r2:.2f}{'' if r2 >= entry['bars'][k] else '*'}" for k, r2 in entry["r2"].items()]
        lines.append(f"  {modality}: " + ", ".join(cells))
        lines.append(f"    {'all bars met' if entry['met'] else '* below its bar'}; rendering "
                     f"{entry['render_seconds']:.0f} s, training {entry['train_seconds']:.0f} s")
    return "\n".join(lines)
