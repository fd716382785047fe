"""The release priors: VoxSynth's face and voice encoders, pretrained once on populations of their own and shipped.

A real face–voice model stands on priors trained elsewhere on far more data than the pairing task (ArcFace on ~90k
identities, speaker models on thousands of speakers). VoxSynth's counterparts are made here, once, by one command:

    voxface priors --work runs/priors            # render, pretrain both (in parallel), install into the package

1. **The draw.** A faces-only and a voices-only population of ``IdentityModel()`` identities, drawn from seed
   sequences under the spawn key ``(RELEASE_STREAM, 0 / 1)``. ``voxface synth`` draws every one of its
   populations from first-level children of its seed (spawn keys of length one), so no data set it makes can
   share an identity with these, whatever its seed; names carry a ``Prior`` prefix that its name generator never
   writes (``tests/test_priors.py`` checks both on the demo's sets). The images and clips are rendered by the same
   renderers as ``teacher_faces`` / ``teacher_voices``, each set with its ``identities.csv``.
2. **The training** (``voxface pretrain``, ``configs/voxsynth/release_{face,voice}.yaml``): the demo's
   architectures (IResNet-18 x0.25 at 64 px, 128-d; ECAPA-TDNN 128/384, 64-d, Kaldi fbank) under ArcFace /
   AAM-softmax, with an auxiliary linear regression of the modality's *own* rendered attributes (its knobs, gender,
   age, standardised; ``head.attribute_weight``), as attribute-supervised face and speaker models are trained.
   Identity training alone separates a thousand synthetic identities by their easiest cues (skin tone, grey hair;
   pitch) and leaves the geometry and the voice quality that the shared latent drives poorly described; the
   attribute term asks the embedding to describe the face or the voice, not only to tell it apart. Nothing sees the
   other modality, the pairing or the shared latent.
3. **The release.** ``backbone.pth`` (insightface's plain state dict) and ``embedding_model.ckpt`` (SpeechBrain's
   plain ECAPA state dict), each in its folder under ``synth/priors/`` with ``voxface_provenance.json``: the draw,
   seed, configuration, code version, CPU time, held-out EER and per-knob probe R² with the bars they meet. They load
   through the same loaders as the releases they stand in for (``release_prior``).
"""

from __future__ import annotations

import json
import logging
import os
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from voxface.errors import ConfigError
from voxface.synth.model import FACE_KNOBS, FACE_LOADINGS, VOICE_KNOBS, VOICE_LOADINGS, IdentityModel, draw_population

log = logging.getLogger("voxface")
RELEASE_STREAM = 9001  # the first word of the release draw's spawn keys (module docstring)
PRIORS_DIR = Path(__file__).parent / "priors"
WEIGHT_FILES = {"face": "backbone.pth", "voice": "embedding_model.ckpt"}
CONFIGS = {"face": "voxsynth/release_face", "voice": "voxsynth/release_voice"}
NAME_PREFIX = {"face": "PriorFace", "voice": "PriorVoice"}
# Bars on held-out identities of the release draw (identity-mean linear probes, voxface pretrain's report).
EER_BAR = {"face": 0.02, "voice": 0.03}
SHARED_KNOB_R2, OTHER_KNOB_R2 = 0.8, 0.6
SHARED_KNOBS = {"face": tuple(k for k in FACE_KNOBS if k in FACE_LOADINGS),
                "voice": tuple(k for k in VOICE_KNOBS if k in VOICE_LOADINGS)}


@dataclass(frozen=True)
class ReleaseDraw:
    """How many identities and samples each release set has, and the seed of the draw."""

    face_identities: int = 2000
    face_images: int = 8  # per identity, over 3 scenes
    voice_identities: int = 2000
    voice_clips: int = 8  # per identity, over 3 recording channels
    min_seconds: float = 2.5
    max_seconds: float = 4.5
    seed: int = 0

    def validate(self) -> None:
        for flag, count in (("--face-identities", self.face_identities), ("--voice-identities", self.voice_identities)):
            if count < 8:
                raise ConfigError(f"{flag} must be at least 8 (got {count}): a tenth or more are held out")
        if self.seed < 0:
            raise ConfigError(f"--seed must be 0 or more (got {self.seed})")
        if min(self.face_images, self.voice_clips) < 2:
            raise ConfigError("a release identity needs at least 2 images or clips")
        if not 0 < self.min_seconds <= self.max_seconds:
            raise ConfigError(f"clip lengths {self.min_seconds}-{self.max_seconds} s are not a valid range")


def draw_release_population(draw: ReleaseDraw, modality: str):
    """(``Population``, names) of the release's faces-only or voices-only identities (module docstring, 1)."""
    count = draw.face_identities if modality == "face" else draw.voice_identities
    sequence = np.random.SeedSequence(draw.seed, spawn_key=(RELEASE_STREAM, 0 if modality == "face" else 1))
    population = draw_population(IdentityModel(), count, np.random.default_rng(sequence))
    return population, [f"{NAME_PREFIX[modality]}_{i:05d}" for i in range(count)]


def render_release_sets(work: str | Path, draw: ReleaseDraw, workers: int | None = None,
                        progress: bool = True) -> dict[str, Path]:
    """Render both release sets under ``work`` (``faces/``, ``voices/``, each ``<identity>/<file>`` with its
    ``identities.csv``); resumable: rendered chunks are kept. Returns ``{"face": folder, "voice": folder}``."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from tqdm import tqdm

    from voxface.protocol.layout import IDENTITY_KNOBS_FILE
    from voxface.synth.build import _render_teacher_task, write_identity_knobs

    draw.validate()
    work = Path(work)
    settings_file = work / "draw.json"
    settings = asdict(draw)
    if settings_file.is_file() and json.loads(settings_file.read_text()) != settings:
        raise ConfigError(f"{work} holds release sets of another draw; choose another --work or delete it")
    work.mkdir(parents=True, exist_ok=True)
    settings_file.write_text(json.dumps(settings, indent=1))
    progress_dir = work / ".progress"
    progress_dir.mkdir(exist_ok=True)
    sd = IdentityModel().sample_sd
    folders, tasks = {"face": work / "faces", "voice": work / "voices"}, []
    for modality, folder in folders.items():
        population, names = draw_release_population(draw, modality)
        write_identity_knobs(folder / IDENTITY_KNOBS_FILE, names, population, modality)
        for start in range(0, len(names), 10):
            done = progress_dir / f"{modality}_{start:06d}.done"
            if done.exists():
                continue
            members = range(start, min(start + 10, len(names)))
            task = {"folder": str(folder), "seed": draw.seed, "done": str(done), "sample_sd": sd,
                    "spawn_key": [RELEASE_STREAM, 0 if modality == "face" else 1]}
            if modality == "face":
                task.update(people=[(i, names[i], population.face[i]) for i in members], images=draw.face_images)
            else:
                task.update(people=[(i, names[i], population.voice[i], float(population.rate[i])) for i in members],
                            clips=draw.voice_clips, min_seconds=draw.min_seconds, max_seconds=draw.max_seconds)
            tasks.append(task)
    workers = max(1, workers or os.cpu_count() or 1)
    with tqdm(total=len(tasks), desc="release sets", unit="task", disable=not progress) as bar:
        if workers == 1:
            for task in tasks:
                _render_teacher_task(task)
                bar.update()
        else:
            with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
                for future in [pool.submit(_render_teacher_task, t) for t in tasks]:
                    future.result()
                    bar.update()
    return folders


def check_release_bars(summary: dict, modality: str) -> dict:
    """Each bar of a pretraining summary (``pretrain.json``) as ``{bar: {"measured", "bar", "met"}}``: held-out EER,
    and the probe R² of every knob (the shared latent's knobs against 0.8, the others against 0.6)."""
    bars = {"heldout_eer": {"measured": summary["heldout_eer"], "bar": f"<= {EER_BAR[modality]}",
                            "met": summary["heldout_eer"] <= EER_BAR[modality]}}
    for knob, r2 in summary.get("probes", {}).get("knob_r2", {}).items():
        bar = SHARED_KNOB_R2 if knob in SHARED_KNOBS[modality] else OTHER_KNOB_R2
        bars[f"{knob}_r2"] = {"measured": r2, "bar": f">= {bar}", "met": r2 >= bar}
    return bars


def code_version() -> str:
    """voxface's version, and the git commit of the source tree where it is one (``+dirty`` with changes)."""
    from voxface import __version__

    root = Path(__file__).resolve().parents[3]
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", "src"], capture_output=True,
                               text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return __version__
    return f"{__version__} (git {commit[:12]}{'+dirty' if dirty else ''})"


def _pretrain_both(folders: dict[str, Path], work: Path, overrides: dict[str, list[str]]) -> dict[str, float]:
    """Run ``voxface pretrain`` for both modalities in two processes side by side (one thread each: the models are
    too small to use two), resuming where a run was cut short; returns each run's CPU seconds (its data workers
    included). Raises ``ConfigError`` naming the log of a run that failed."""
    processes = {}
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    for modality, folder in folders.items():
        out = work / f"{modality}_run"
        if (out / "pretrain.json").is_file():
            continue
        args = [sys.executable, "-m", "voxface", "pretrain", "--config", CONFIGS[modality], f"data.root={folder}",
                f"trainer.out={out}", "trainer.progress=false", *overrides.get(modality, [])]
        if (out / "checkpoints" / "last.ckpt").is_file():
            args.insert(4, "--resume")
        out.mkdir(parents=True, exist_ok=True)
        log = (out / "pretrain.log").open("a")
        processes[modality] = (subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env), out)
    seconds = {}
    for modality, (process, out) in processes.items():
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        seconds[modality] = usage.ru_utime + usage.ru_stime
        if process.returncode != 0:
            raise ConfigError(f"pretraining the {modality} prior failed; see {out / 'pretrain.log'}")
        (out / "cpu_seconds.txt").write_text(f"{seconds[modality]:.0f}\n")
    return seconds


def make_release(work: str | Path, draw: ReleaseDraw | None = None, install: bool = True, workers: int | None = None,
                 overrides: dict[str, list[str]] | None = None, progress: bool = True) -> dict[str, dict]:
    """Render the release sets, pretrain both priors and write each one's weights and provenance into
    ``work/release/<modality>`` (and, with ``install``, into the package's ``synth/priors``). Resumable: run it
    again after an interruption. Returns each modality's provenance record."""
    draw = draw or ReleaseDraw()
    work = Path(work)
    draw.validate()
    if work.exists() and not work.is_dir():
        raise ConfigError(f"--work {work} is a file; give a folder (it is created when missing)")
    from voxface.training.pretrain import load_pretrain_config

    for modality, config in CONFIGS.items():  # every override checked before anything is rendered or trained
        load_pretrain_config(config, [f"data.root={work}", *(overrides or {}).get(modality, [])], check_paths=False)
    started, version = time.time(), code_version()  # the code that renders and trains, read before it runs
    folders = render_release_sets(work, draw, workers, progress)
    render_cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    render_seconds = render_cpu.ru_utime + render_cpu.ru_stime
    _pretrain_both(folders, work, overrides or {})
    records = {}
    for modality in folders:
        run = work / f"{modality}_run"
        summary = json.loads((run / "pretrain.json").read_text())
        cpu = float((run / "cpu_seconds.txt").read_text()) if (run / "cpu_seconds.txt").is_file() else None
        bars = check_release_bars(summary, modality)
        record = {
            "trained_on": f"VoxSynth release draw: {summary['train_identities']} {modality}s-only identities "
                          f"(seed {draw.seed}, spawn key ({RELEASE_STREAM}, {0 if modality == 'face' else 1}); "
                          "no identity of any voxface synth data set)",
            "heard_voxceleb": False,
            "front_end": json.loads((Path(summary["weights"]).parent / "voxface_provenance.json").read_text()).get(
                "front_end"),
            "draw": asdict(draw), "config": summary["config"], "code_version": version,
            "encoder": summary.get("encoder_description", summary["encoder"]),
            "cpu_seconds": None if cpu is None else round(cpu), "render_cpu_seconds": round(render_seconds),
            "train_identities": summary["train_identities"], "train_files": summary["train_files"],
            "heldout_identities": summary["heldout_identities"], "heldout_files": summary["heldout_files"],
            "heldout_verification_auc": summary["heldout_verification_auc"], "heldout_eer": summary["heldout_eer"],
            "probes": summary.get("probes"), "bars": bars, "all_bars_met": all(b["met"] for b in bars.values()),
            "steps": summary["steps"], "made_in_seconds": round(time.time() - started),
            "command": "voxface priors --work " + str(work),
        }
        target = work / "release" / modality
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(summary["weights"], target / WEIGHT_FILES[modality])
        (target / "voxface_provenance.json").write_text(json.dumps(record, indent=1) + "\n")
        records[modality] = record
    # the package's priors are replaced only by a release that meets every bar (a small trial run leaves them be)
    missed = [m for m, r in records.items() if not r["all_bars_met"]]
    if install and missed:
        log.warning("not installed: the %s prior%s missed %s bars; the release stays in %s", " and ".join(missed),
                    "s" if len(missed) > 1 else "", "their" if len(missed) > 1 else "its", work / "release")
    if install and not missed:
        for modality in records:
            shipped = PRIORS_DIR / modality
            shipped.mkdir(parents=True, exist_ok=True)
            for name in (WEIGHT_FILES[modality], "voxface_provenance.json"):
                shutil.copyfile(work / "release" / modality / name, shipped / name)
    return records


def release_prior(modality: str) -> Path:
    """The shipped release prior's weights file: ``synth/priors/face/backbone.pth`` (insightface layout, load with
    ``encoders.registry.build_face_encoder``) or ``synth/priors/voice/embedding_model.ckpt`` (SpeechBrain layout,
    ``build_voice_encoder``). Raises ``ConfigError`` when this installation lacks it.

    >>> release_prior("face").name
    'backbone.pth'
    """
    if modality not in WEIGHT_FILES:
        raise ConfigError(f"a release prior is 'face' or 'voice', not {modality!r}")
    path = PRIORS_DIR / modality / WEIGHT_FILES[modality]
    if not path.is_file():
        raise ConfigError(f"this installation has no release {modality} prior ({path}); make it with "
                          "'voxface priors --work DIR' or pass --train-priors to the demo")
    return path


def release_provenance(modality: str) -> dict:
    """The shipped release prior's provenance record (``make_release``)."""
    return json.loads((release_prior(modality).parent / "voxface_provenance.json").read_text())


def format_release(records: dict[str, dict]) -> str:
    """A few lines per prior: what it is, its held-out EER and probes, and the bars not met."""
    lines = []
    for modality, r in records.items():
        probes = r.get("probes") or {}
        missed = [f"{k} {v['measured']} (bar {v['bar']})" for k, v in r["bars"].items() if not v["met"]]
        lines.append(f"{modality} prior: {r['encoder']}, {r['train_identities']} identities / {r['train_files']} "
                     f"files, {r['cpu_seconds']} CPU s; held-out EER {r['heldout_eer']:.1%} on "
                     f"{r['heldout_identities']} identities; mean knob R2 {probes.get('mean_knob_r2')}; "
                     + ("every bar met" if not missed else "bars not met: " + ", ".join(missed)))
    return "\n".join(lines)
