"""``voxface demo``: the main job end to end, on the built-in VoxSynth data or on the user's own.

1. data: generate VoxSynth with its oracle ceilings (or check the user's VoxCeleb1-layout tree);
2. face teacher: VoxSynth's shipped release face prior (``synth/release.py``), or the user's; with
   ``train_priors``, a small IResNet pretrained here on faces-only identities of a draw of its own;
3. voice prior (VoxSynth only): the shipped release voice prior (ECAPA-TDNN); with ``train_priors``, the demo's
   ECAPA-TDNN pretrained here on voices-only identities (``voxface pretrain --config voxsynth/pretrain_voice``);
4. embed every face with the face teacher once (VoxSynth: the runs' teacher cache and the peers' face store), then
   train the paper's method and the ablations of its Table 3 with the same settings otherwise:
   contrastive + OT + RKD ("full"), contrastive only, OT only, each with the voice encoder from the voice prior; and
   Table 4's pair: the full method with the voice encoder from scratch ("full_from_scratch");
5. fit the Gaussian backend for the full run (training identities, calibrated on validation ones), then
   evaluate every run on every list (verification, 1:2 matching, retrieval, plots, the decomposition of where the
   points go), the full run under both scorings (cosine and backend);
6. peers (VoxSynth only): ``voxface benchmark`` on VoxSynth's features: every registered method (the peers and
   the paper's) trains its heads on the same stores, made by the face teacher and the voice prior, and is scored on
   every list (``<out>/benchmark``);
7. report: Table 2 for the full method (with the oracle ceiling on VoxSynth), Table 3 across the ablations,
   Table 4's pair, the demo's bars (each judged by 95% intervals, its rule beside it) and, last, the peers' table,
   written to ``<out>/report`` and printed with the folder's path; on fewer test identities than
   ``report.ENOUGH_TEST_IDENTITIES`` the summary opens with a one-line caveat that it checks the pipeline.

Every step keeps its output in the run folder. Run again, finished steps are reused, and an
interrupted generation, teacher or training run continues from where it stopped.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from voxface.demo_record import DemoRecord
from voxface.errors import ConfigError
from voxface.synth.build import SynthConfig
from voxface.synth.oracle import list_ceiling
from voxface.synth.release import ReleaseDraw

if TYPE_CHECKING:
    from voxface.protocol.lists import Protocol

# Table 3's rows: the alignment terms each run keeps (RKD stays on in all three); on VoxSynth each run's voice encoder
# starts from the voice prior, as the paper's runs start from a pretrained speech model.
RUNS: dict[str, tuple[str, ...]] = {
    "full": (),
    "contrastive": ("method.args.terms=[contrastive,rkd]",),
    "ot_only": ("method.args.terms=[ot,rkd]",),
}
# Table 4's pair: the full run (voice encoder from the voice prior) and this one, the same but from scratch.
SCRATCH_RUN = "full_from_scratch"
CONSTRAINED = ("G", "N", "A", "GNA")
# The demo's bars on VoxSynth with the release priors (each printed with its rule): AUC on random unseen-unheard.
PRIORS_BAR = 0.84  # the frozen priors + the Gaussian backend, no shared space trained
FULL_BAR = 0.80  # the full method, cosine scoring as the paper
PEERS_G_SHARE = 2 / 3  # at least this share of the methods (8 of 12) above chance on G unseen-unheard
# Every bar is judged by 95% intervals, with three outcomes: met (True), not met (False), and "cannot tell" (None)
# where the interval reaches both sides of what the bar asks. The rules, printed beside the bars:
REACH_RULE = ("rule: met where the 95% CI lies at or above it, not met where the CI lies below it, else the trials "
              "cannot tell")
CHANCE_RULE = ("rule: above chance where the 95% CI low > 0.5, below where the CI high < 0.5, else not "
               "distinguishable from chance")
NOT_BELOW_RULE = "rule: not met only where the two 95% CIs do not overlap, the first below"


@dataclass(frozen=True)
class DemoSize:
    """How big the demo's data and models are: VoxSynth, the two priors and the training runs (each a shipped
    configuration in src/voxface/configs and overrides on top of it)."""

    synth: SynthConfig  # the benchmark's data: no teacher sets (the priors' identities are a draw of their own)
    # with --train-priors: the faces-only and voices-only identities the demo pretrains its priors on
    priors: ReleaseDraw = ReleaseDraw(face_identities=400, face_images=9, voice_identities=200, voice_clips=6)
    face_prior: tuple[str, ...] = ()  # overrides of voxsynth/pretrain_face
    voice_prior: tuple[str, ...] = ()  # overrides of voxsynth/pretrain_voice
    config: str = "voxsynth/base"  # the shipped training configuration the runs start from
    train: tuple[str, ...] = ()  # overrides on top of it
    peers: tuple[str, ...] = ()  # overrides of every voxsynth/peers/<method> configuration (the benchmark)
    peer_seeds: int = 3  # training seeds per method in the benchmark: mean ± sd and the tie test over seeds


SIZES: dict[str, DemoSize] = {
    # Training settings: the shipped voxsynth/base.yaml, the file a user edits (BENCHMARKS.md for the time).
    "default": DemoSize(synth=SynthConfig(teacher_identities=0, teacher_voices=0)),
    # The CI test's size: every step of the pipeline in under a minute (README).
    "tiny": DemoSize(
        synth=SynthConfig(identities=48, videos=3, clips_per_video=2, frames_per_video=2, min_seconds=2.0,
                          max_seconds=3.0, teacher_identities=0, val_fraction=0.25, test_fraction=0.25,
                          teacher_voices=0),
        priors=ReleaseDraw(face_identities=40, face_images=6, voice_identities=16, voice_clips=4, min_seconds=2.0,
                           max_seconds=3.0),
        face_prior=("encoder.width=0.125", "encoder.input_size=32", "encoder.num_features=32", "optim.batch_size=32",
                    "optim.lr=0.05", "head.margin=0.2", "head.scale=16.0", "data.heldout_fraction=0.1",
                    "data.workers=0"),
        voice_prior=("encoder.channels=[32,32,32,32,96]", "encoder.embedding_size=32", "optim.batch_size=16",
                     "data.crop_seconds=1.0", "data.heldout_fraction=0.25", "data.workers=0", "trainer.epochs=2"),
        train=("data.workers=0", "data.crop_seconds=1.0", "data.val_crop_seconds=2.0",
               "data.val_clips_per_identity=4", "method.args.mapping_hidden=[64]", "optim.batch_size=8",
               "optim.lr_audio=2e-3", "optim.lr_mapping=2e-3",
               "method.args.temperature=0.2", "trainer.epochs=4", "trainer.checkpoint_every=2",
               "trainer.accelerator=cpu"),
        peers=("data.val_clips_per_identity=4", "optim.batch_size=8", "trainer.epochs=2"), peer_seeds=1),
}


@dataclass
class UserData:
    """``voxface demo --data ROOT``: the user's VoxCeleb1-layout tree, lists, teacher and training config."""

    root: Path
    face_weights: Path
    lists: str = "voxceleb1"
    config: str | Path | None = None  # a training YAML or shipped name; the demo sets data, teacher and out
    overrides: list[str] = field(default_factory=list)


def _say(text: str) -> None:
    print(text, flush=True)


def _data_step(out: Path, size: DemoSize, user: UserData | None, workers: int | None, progress: bool):
    """(data root, lists, their loaded Protocol, oracle or None) after generating VoxSynth or checking the
    user's tree."""
    from voxface.protocol import DataRoots, load_protocol
    from voxface.protocol.check import check_files, format_check
    from voxface.protocol.stats import format_stats

    if user is None:
        from voxface.synth.build import format_synth_summary, generate
        from voxface.synth.preview import write_preview

        data = out / "voxsynth"
        _say(f"[1/7] VoxSynth ({size.synth.identities} identities) -> {data}")
        summary = generate(data, size.synth, workers=workers, progress=progress)
        _say(format_synth_summary(data, summary))
        for path in write_preview(data):
            _say(f"preview: {path}")
        root, lists, oracle = data, str(data / "protocol"), summary["oracle"]
    else:
        _say(f"[1/7] data: {user.root} with the {user.lists} lists")
        root, lists, oracle = user.root, user.lists, None
    protocol = load_protocol(lists)
    _say(format_stats(protocol))
    report = check_files(protocol, DataRoots.from_root(root))
    _say(format_check(report))
    return root, lists, protocol, oracle


PRIOR_FOLDERS = {"face": "teacher", "voice": "voice_prior"}  # under the demo's folder, with --train-priors
PRIOR_SETS = "prior_sets"  # the faces-only and voices-only identities --train-priors pretrains on


def prior_config(out: Path, data: Path, size: DemoSize, modality: str):
    """The pretraining configuration of the demo's own face teacher or voice prior (``--train-priors``) on the
    identity folder ``data``."""
    from voxface.training.pretrain import load_pretrain_config

    overrides = size.face_prior if modality == "face" else size.voice_prior
    return load_pretrain_config(f"voxsynth/pretrain_{modality}", [
        f"data.root={data}", f"trainer.out={out / PRIOR_FOLDERS[modality]}", *overrides], check_paths=False)


def _prior_step(config, progress: bool) -> dict:
    """Pretrain (or reuse, or continue) a prior; its ``pretrain.json`` summary."""
    from voxface.training.pretrain import SUMMARY_FILE, format_pretrain, pretrain

    folder = Path(config.trainer.out)
    if (folder / SUMMARY_FILE).is_file():
        summary = {**json.loads((folder / SUMMARY_FILE).read_text()), "reused": True}
        _say("(already trained)")
    else:
        config.trainer.progress = progress
        summary = pretrain(config, resume=(folder / "checkpoints" / "last.ckpt").is_file())
    _say(format_pretrain(summary))
    return summary


def _shipped_prior(modality: str) -> dict:
    """The shipped release prior as a pretraining summary (weights, identities, held-out EER, configuration)."""
    from voxface.synth.release import release_prior, release_provenance

    record = release_provenance(modality)
    _say(f"the release {modality} prior, shipped: {record['encoder']} on {record['train_identities']} "
         f"{modality}s-only identities of its own draw, held-out EER {record['heldout_eer']:.1%}, mean knob probe R2 "
         f"{(record.get('probes') or {}).get('mean_knob_r2')} ({release_prior(modality)})")
    return {**record, "weights": str(release_prior(modality)), "reused": True}


def _priors_step(out: Path, size: DemoSize, user: UserData | None, train_priors: bool, workers: int | None,
                 progress: bool) -> dict[str, dict]:
    """``{"face": summary, "voice": summary}`` of the demo's priors (each with its "weights"); the user's face
    teacher and no voice prior on the user's data."""
    if user is not None:
        _say(f"\n[2/7] face teacher: {user.face_weights} (given)")
        _say("\n[3/7] voice prior: none (VoxSynth's priors are trained on VoxSynth voices)")
        return {"face": {"weights": str(user.face_weights)}}
    if not train_priors:
        _say("\n[2/7] face teacher")
        face = _shipped_prior("face")
        _say("\n[3/7] voice prior")
        return {"face": face, "voice": _shipped_prior("voice")}
    from voxface.synth.release import render_release_sets

    sets = render_release_sets(out / PRIOR_SETS, size.priors, workers, progress)
    priors = {}
    for step, modality in ((2, "face"), (3, "voice")):
        config = prior_config(out, sets[modality], size, modality)
        e = config.encoder
        model = (f"IResNet-{e.depth} x{e.width}, {e.input_size}px" if modality == "face"
                 else f"ECAPA-TDNN {e.channels}, {e.embedding_size}-d")
        _say(f"\n[{step}/7] {'face teacher' if modality == 'face' else 'voice prior'}: {model}, trained here on "
             f"{config.data.root}")
        priors[modality] = _prior_step(config, progress)
    return priors


def face_size(prior: dict) -> int | None:
    """The face size a face prior reads (its pretraining configuration's input size); None for a user's teacher."""
    return (prior.get("config") or {}).get("encoder", {}).get("input_size")


def run_settings(out: Path, root: Path, lists: str, teacher: Path | str, size: DemoSize, user: UserData | None,
                 epochs: int | None = None, seed: int | None = None, voice_prior: Path | str | None = None,
                 faces_at: int | None = 64) -> list[str]:
    """The overrides every one of the demo's runs is made with, on top of its configuration: the data and lists,
    the face teacher and its embedding cache, the size's training settings (on VoxSynth, faces read at ``faces_at``
    pixels, the face teacher's input size), the voice prior where there is one, epochs and seed. What
    ``voxface train --demo`` starts from (``demo.json``)."""
    # One teacher-embedding cache for the runs: they share the teacher and the faces.
    settings = [f"data.root={root}", f"data.lists={lists}", f"face.weights={teacher}",
                f"face.cache_dir={out / 'teacher_cache'}"]
    settings += list(user.overrides) if user else [*size.train, f"data.face_size={faces_at}"]
    if voice_prior is not None:
        settings.append(f"audio.weights={voice_prior}")
    if epochs is not None:
        settings.append(f"trainer.epochs={epochs}")
    if seed is not None:
        settings.append(f"trainer.seed={seed}")
    return settings


def run_config(out: Path, name: str, root: Path, lists: str, teacher: Path, size: DemoSize,
               user: UserData | None, epochs: int | None = None, seed: int | None = None,
               voice_prior: Path | None = None, faces_at: int | None = 64, extra: tuple[str, ...] = ()):
    """The training configuration of one of the demo's runs (``run_settings``): the voice encoder from
    ``voice_prior`` where there is one, but for ``SCRATCH_RUN`` (the full one at random initialisation, Table 4).
    ``extra``: further overrides (a run the demo does not make, such as section 6.2.2's RKD-off one)."""
    from voxface.training.config import load_config

    settings = run_settings(out, root, lists, teacher, size, user, epochs, seed, voice_prior, faces_at)
    settings += [*RUNS.get(name, ()), *extra, f"trainer.out={out / 'train' / name}"]
    if voice_prior is not None and name == SCRATCH_RUN:  # Table 4 compares one architecture, initialised two ways
        from voxface.encoders.loading import ecapa_config, read_state_dict

        shape = ecapa_config(read_state_dict(voice_prior), source=str(voice_prior))
        settings += ["audio.weights=", f"audio.channels=[{','.join(str(c) for c in shape['channels'])}]",
                     f"audio.embedding_size={shape['embedding_size']}"]
    return load_config(user.config if user else size.config, settings)


def _train_step(config, progress: bool) -> dict:
    from voxface.training.resume import run_finished
    from voxface.training.run import train

    config.trainer.progress = progress
    folder = Path(config.trainer.out)
    run_file = folder / "run.json"
    if run_file.is_file():
        done = json.loads(run_file.read_text())
        if "steps_per_epoch" in done and run_finished(done["steps"], done["steps_per_epoch"], config.trainer):
            _say(f"(already trained: {done['epochs']} epochs, best validation AUC {done['best_val_auc']:.3f})")
            return {**done, "reused": True}
    resume = (folder / "checkpoints" / "last.ckpt").is_file()
    if resume:
        _say(f"(resuming from {folder / 'checkpoints' / 'last.ckpt'})")
    result = train(config, resume=resume)
    if result["interrupted"]:
        raise KeyboardInterrupt
    return result


def _checkpoint(train_dir: Path) -> Path:
    """The run's best checkpoint (its last when validation never picked one)."""
    best = train_dir / "checkpoints" / "best.ckpt"
    return best if best.is_file() else train_dir / "checkpoints" / "last.ckpt"


def _backend_step(train_dir: Path, root: Path, protocol: Protocol) -> tuple[Path, dict, bool]:
    """Fit (or reuse) the full run's Gaussian backend in ``RUN/backend``; (folder, fit info, reused)."""
    from voxface.evaluation.backend import check_backend_fits, fit_backend, format_backend
    from voxface.scoring.backend import BackendError, GaussianBackend

    folder, checkpoint = train_dir / "backend", _checkpoint(train_dir)
    try:
        backend = GaussianBackend.load(folder)
        check_backend_fits(backend, checkpoint, None)
        reused = True
        _say(f"(already fitted: {folder})")
    except BackendError:
        backend, reused = fit_backend(checkpoint, root, protocol, out=folder), False
    _say(format_backend(backend.info))
    return folder, backend.info, reused


def _evaluate_step(name: str, train_dir: Path, eval_dir: Path, root: Path, protocol: Protocol, oracle: dict | None,
                   backend: Path | None = None) -> dict:
    from voxface.evaluation.evaluate import evaluate
    from voxface.evaluation.report import write_reports

    checkpoint = _checkpoint(train_dir)
    report_file = eval_dir / "report.json"
    newer = [checkpoint] + ([backend / "backend.json"] if backend else [])
    if report_file.is_file() and all(report_file.stat().st_mtime > p.stat().st_mtime for p in newer):
        report = json.loads(report_file.read_text())
        # redone when written before ceilings had intervals, before the knob references were compared with the
        # run (the older face-limited reference read below the run, so it was no limit), before every run had its
        # decomposition, or before the report counted its test identities
        knobs = isinstance(report.get("decomposition", {}).get("knob_references"), dict)
        if ((not oracle or "oracle_ceiling" in report) and (not knobs or "limits" in report["decomposition"])
                and "decomposition" in report and "test_identities" in report):
            _say(f"(already evaluated: {report_file})")
            return {**report, "reused": True}
    # every run gets the decomposition; the full run's reuses its backend's cached embeddings
    result = evaluate(checkpoint, root, protocol, out=eval_dir, backend=backend, decomposition=True, name=name)
    # the published rows sit beside results on VoxCeleb1's own lists only
    write_reports(result, eval_dir, name=name, oracle=oracle, literature=protocol.source == "voxceleb1")
    return json.loads(report_file.read_text())


def _auc_text(row: dict) -> str:
    low, high = row["auc_ci95"]
    return f"{row['auc']:.3f} (95% CI {low:.3f}-{high:.3f})"


def reaches(interval: list | tuple, bar: float) -> bool | None:
    """Whether a 95% interval shows a value at or above ``bar`` (True), below it (False), or cannot tell (None).

    >>> reaches([0.81, 0.85], 0.80), reaches([0.70, 0.79], 0.80), reaches([0.78, 0.82], 0.80)
    (True, False, None)
    """
    low, high = interval
    if low is not None and low >= bar:
        return True
    return False if high is not None and high < bar else None


def above_chance(interval: list | tuple) -> bool | None:
    """True where the 95% interval lies above 0.5, False where it lies below, None where it contains chance."""
    low, high = interval
    if low is not None and low > 0.5:
        return True
    return False if high is not None and high < 0.5 else None


def chance_words(interval: list | tuple) -> str:
    """What a 95% interval says of chance, in the bars' words."""
    return {True: "above chance", False: "below chance", None: "not distinguishable from chance"}[
        above_chance(interval)]


def all_of(verdicts: list[bool | None]) -> bool | None:
    """Several parts of one bar: met where all are, not met where one is not, else the trials cannot tell."""
    if all(v is True for v in verdicts):
        return True
    return False if any(v is False for v in verdicts) else None


def not_below(first: list | tuple, second: list | tuple) -> bool:
    """False only where the first 95% interval lies wholly below the second (they do not overlap)."""
    return not (first[1] is not None and second[0] is not None and first[1] < second[0])


def check_bars(reports: dict[str, dict], oracle: dict | None, priors: dict | None = None
               ) -> list[tuple[str, bool | None, str]]:
    """The demo's bars as (bar and its rule, met, what was measured), from each run's report.json and, where given,
    the frozen priors' reference (``decomposition.priors_reference``). Met is True, False, or None where the 95%
    intervals cannot tell (``REACH_RULE``, ``CHANCE_RULE``, ``NOT_BELOW_RULE``)."""
    from voxface.evaluation.decomposition import limit_check

    key = "random_unseenunheard"
    full = reports["full"]["verification"]
    uu = [f"{g}_unseenunheard" for g in CONSTRAINED]
    bars: list[tuple[str, bool | None, str]] = []
    if priors is not None:
        lists = priors["lists"]
        met = all_of([reaches(lists[key]["auc_ci95"], PRIORS_BAR)] + [above_chance(lists[k]["auc_ci95"]) for k in uu])
        bars.append((f"the frozen priors with the Gaussian backend reach AUC {PRIORS_BAR:.2f} on {key} ({REACH_RULE}) "
                     f"and every constrained unseen-unheard list lies above chance ({CHANCE_RULE})", met,
                     f"random {_auc_text(lists[key])}; " + ", ".join(
                         f"{k.split('_')[0]} {_auc_text(lists[k])} {chance_words(lists[k]['auc_ci95'])}"
                         for k in uu)))
    if oracle:
        bars.append((f"the full method reaches AUC {FULL_BAR:.2f} on {key}, cosine scoring ({REACH_RULE})",
                     reaches(full[key]["auc_ci95"], FULL_BAR), f"{_auc_text(full[key])}, oracle ceiling "
                     f"{list_ceiling(oracle, key).auc:.3f}{list_ceiling(oracle, key).mark()}"
                     + (f"; with the Gaussian backend {_auc_text(full[key]['backend'])}" if "backend" in full[key]
                        else "")))
    for test_set in ("unseenunheard", "seenheard"):
        rows = {g: full[f"{g}_{test_set}"] for g in CONSTRAINED}
        bars.append((f"full method above chance on every constrained {test_set} list ({CHANCE_RULE})",
                     all_of([above_chance(row["auc_ci95"]) for row in rows.values()]),
                     ", ".join(f"{g} {_auc_text(row)} {chance_words(row['auc_ci95'])}" for g, row in rows.items())))
    ot = reports["ot_only"]["verification"][key]
    bars.append(("OT alone is not distinguishable from chance (Table 3; rule: its 95% CI contains 0.5)",
                 above_chance(ot["auc_ci95"]) is None,
                 f"OT only {_auc_text(ot)} on random unseen-unheard: {chance_words(ot['auc_ci95'])}"))
    contrastive = reports["contrastive"]["verification"][key]
    with_ot = full[key]
    met = not_below(with_ot["auc_ci95"], contrastive["auc_ci95"])
    measured = f"contrastive + OT {_auc_text(with_ot)}, contrastive only {_auc_text(contrastive)}"
    if not met:
        measured += ": contrastive + OT lies below contrastive alone, the OT term hurt on these data"
    elif with_ot["auc"] < contrastive["auc"]:
        measured += ": lower by the point AUCs, but the intervals overlap, so these trials cannot tell the two apart"
    bars.append((f"contrastive + OT is not below contrastive alone (Table 3; {NOT_BELOW_RULE})", met, measured))
    if SCRATCH_RUN in reports:
        prior, scratch = full[key], reports[SCRATCH_RUN]["verification"][key]
        met = not_below(prior["auc_ci95"], scratch["auc_ci95"])
        bars.append((f"the full method from the voice prior is not below it from scratch (Table 4; {NOT_BELOW_RULE};"
                     " one seed: the seed spread is in BENCHMARKS.md)", met,
                     f"from the prior {_auc_text(prior)}, from scratch {_auc_text(scratch)}"
                     + (": lower by the point AUCs, but the intervals overlap, so these trials cannot tell the two "
                        "apart" if met and prior["auc"] < scratch["auc"] else "")))
    limits = limit_check(reports["full"].get("decomposition", {}))
    if limits is not None:  # VoxSynth: the decomposition's one-sided references, compared with the run
        bars.append((f"the face-limited and voice-limited references are limits: not below the full method on {key} "
                     "(rule: not met where the paired 95% CI of reference - achieved, DeLong, lies below 0)", *limits))
    return bars


VERDICTS = {True: "met", False: "NOT MET", None: "cannot tell"}  # how a bar's outcome is printed


def format_bars(bars: list[tuple[str, bool | None, str]]) -> str:
    return "\n".join(f"- [{VERDICTS[met]}] {bar}: {measured}" for bar, met, measured in bars)


TABLE4_LISTS = ("random_unseenunheard", "G_unseenunheard")  # the paper's Table 4 columns: random / G


def table4_rows(reports: dict[str, dict], voice_prior: dict | None) -> str:
    """Table 4's pair as markdown: the full method with the voice encoder from scratch and from the voice prior
    (AUC % with 95% CI on the unseen-unheard random and G lists); empty without a from-scratch run."""
    if SCRATCH_RUN not in reports or voice_prior is None:
        return ""
    prior = (f"from the voice prior ({voice_prior['train_identities']} voices-only identities, held-out speaker "
             f"EER {voice_prior['heldout_eer']:.1%})")
    lines = ["| voice encoder | " + " | ".join(TABLE4_LISTS) + " |", "|---|" + "---|" * len(TABLE4_LISTS)]
    for name, label in ((SCRATCH_RUN, "ECAPA-TDNN from scratch"), ("full", f"ECAPA-TDNN {prior}")):
        cells = []
        for key in TABLE4_LISTS:
            row = reports[name]["verification"][key]
            low, high = row["auc_ci95"]
            cells.append(f"{100 * row['auc']:.1f} ({100 * low:.1f}-{100 * high:.1f})")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


BENCHMARK_FOLDER = "benchmark"  # under the demo's folder


def voice_store(out: Path) -> Path:
    """The voice prior's feature store: the demo's benchmark makes it, the priors' reference reads it."""
    return out / BENCHMARK_FOLDER / "features" / "voices"


def _face_store(out: Path, root: Path, teacher: Path, progress: bool) -> Path:
    """Every face of the data through the face teacher, once, where the training runs look for their teacher cache
    (a store holding more faces than a run needs serves it: ``features.extract_with``); the benchmark's face store."""
    from voxface.features import extract_features, weights_sha256

    folder = out / "teacher_cache" / f"teacher_{weights_sha256(teacher)[:16]}"
    # replace: a cache of the train and validation faces alone, from an older demo, is made again whole
    extract_features("iresnet", teacher, root, folder, progress=progress, replace=True)
    return folder


def peers_overrides(root: Path, lists: str, teacher: Path | str, voice_prior: Path | str, faces: Path, voices: Path,
                    size: DemoSize, faces_at: int | None) -> list[str]:
    """The overrides of the demo's ``voxface benchmark`` (every ``voxsynth/peers/<method>`` configuration): the data,
    lists, both priors, the face store the runs' teacher cache holds, the benchmark's voice store (so that a
    benchmark of the demo's data into another folder reuses both stores), the face size and the size's peers
    settings."""
    return [f"data.root={root}", f"data.lists={lists}", f"face.weights={teacher}", f"audio.weights={voice_prior}",
            f"features.face={faces}", f"features.voice={voices}", f"data.face_size={faces_at}", *size.peers]


def _peers_step(out: Path, root: Path, lists: str, teacher: Path, voice_prior: Path, faces: Path, size: DemoSize,
                faces_at: int, progress: bool) -> dict:
    """``voxface benchmark`` on VoxSynth's features (or its finished runs, reused): every method's Table 2 row."""
    from voxface.benchmark import run_benchmark

    folder = out / BENCHMARK_FOLDER
    overrides = peers_overrides(root, lists, teacher, voice_prior, faces, voice_store(out), size, faces_at)
    # two runs at once where there are two cores: a run's small heads keep about one busy (BENCHMARKS.md)
    return run_benchmark(folder, "voxsynth", overrides=overrides, progress=progress, say=_say,
                         jobs=min(2, os.cpu_count() or 1), seeds=size.peer_seeds)


def peers_bar(peers: dict) -> tuple[str, bool | None, str]:
    """Every method's random unseen-unheard AUC lies above chance, and at least two thirds of the methods' G
    unseen-unheard AUC too (``CHANCE_RULE``; of several seeds, the lowest CI low and the highest CI high)."""
    rows = peers["methods"]

    def verdict(row: dict, prefix: str) -> bool | None:
        return above_chance((row.get(f"{prefix}_ci95_low"), row.get(f"{prefix}_ci95_high")))

    random = {name: verdict(row, "bar") for name, row in rows.items()}
    g = {name: verdict(row, "g") for name, row in rows.items()}
    need = int(-(-PEERS_G_SHARE * len(rows) // 1))  # ceil
    shown, possible = sum(v is True for v in g.values()), sum(v is not False for v in g.values())
    g_met = True if shown >= need else False if possible < need else None
    measured = "; ".join(f"{name} random {row['verification']['random_unseenunheard']['mean']:.1f} (low "
                         f"{100 * row['bar_ci95_low']:.1f}), G {row['verification']['G_unseenunheard']['mean']:.1f}"
                         + (f" (low {100 * row['g_ci95_low']:.1f})" if row.get("g_ci95_low") is not None else "")
                         for name, row in rows.items() if row.get("bar_ci95_low") is not None)
    for words, outcome in (("not distinguishable from chance", None), ("below chance", False)):
        names = [name for name, v in random.items() if v is outcome]
        measured += f"; {words} on random: {', '.join(names)}" if names else ""
    return (f"every method above chance on random unseen-unheard, and at least {need} of {len(rows)} on G "
            f"unseen-unheard, from VoxSynth's features ({CHANCE_RULE}; of several seeds the widest reach)",
            all_of([*random.values(), g_met]), measured + f"; {shown} of {len(rows)} above chance on G")


def _priors_reference_step(out: Path, root: Path, protocol: Protocol, faces: Path) -> dict:
    """The frozen priors' own reference (``decomposition.priors_reference``) from the benchmark's stores: the face
    prior's (the runs' teacher cache) and the voice prior's; written to ``<out>/report/priors_reference.json``."""
    from voxface.evaluation.decomposition import priors_reference
    from voxface.protocol import DataRoots

    reference = priors_reference(protocol, DataRoots.from_root(root), protocol.all_verification(),
                                 voice_store(out), faces)
    (out / "report").mkdir(parents=True, exist_ok=True)
    (out / "report" / "priors_reference.json").write_text(json.dumps(reference, indent=1))
    return reference


def _report_step(out: Path, eval_dirs: dict[str, Path], reports: dict[str, dict], oracle: dict | None,
                 voice_prior: dict | None = None, peers: dict | None = None, priors: dict | None = None,
                 test_identities: int | None = None) -> Path:
    from voxface.evaluation.decomposition import format_decomposition
    from voxface.evaluation.report import compare_runs, few_identities_caveat

    folder = out / "report"
    # further runs the user evaluated into <out>/eval (e.g. voxsynth/ot_all_pairs) join Table 3 as rows
    extra = sorted(d for d in (out / "eval").iterdir()
                   if d.name not in RUNS and d.name != SCRATCH_RUN and (d / "report.json").is_file())
    compared = [eval_dirs[name] for name in RUNS] + extra
    compare_runs(compared, folder)
    shutil.copyfile(eval_dirs["full"] / "report.md", folder / "table2_full.md")
    shutil.copyfile(folder / "comparison.md", folder / "table3_ablations.md")
    caveat = few_identities_caveat(test_identities)
    table2 = (eval_dirs["full"] / "report.md").read_text().split("\n\n| list |")[0].strip()
    if caveat:  # said once, atop the summary
        table2 = table2.replace(f"{caveat}\n\n", "")
    # every run's decomposition, each with the frozen priors' reference as a column of its own
    decompositions = {name: report["decomposition"] for name, report in reports.items()
                      if "lists" in report.get("decomposition", {})}
    for decomposition in decompositions.values():
        for name, row in decomposition["lists"].items():
            if priors and name in priors["lists"]:
                row["priors_backend"] = priors["lists"][name]["auc"]
    decomposition = reports["full"].get("decomposition")
    points = format_decomposition(decomposition) if decomposition else ""
    if decompositions:  # the figure again, now with every run of the demo and the frozen priors' column
        from voxface.evaluation.plots import decomposition_figure, save_figure

        save_figure(decomposition_figure(decompositions), folder / "decomposition.png")
    table3 = (folder / "comparison.md").read_text().strip()
    bars = check_bars(reports, oracle, priors) + ([peers_bar(peers)] if peers else [])
    table4 = table4_rows(reports, voice_prior)
    peers_table = ""
    if peers:
        benchmark = out / BENCHMARK_FOLDER
        shutil.copyfile(benchmark / "benchmark.md", folder / "table2_peers.md")
        peers_table = (benchmark / "benchmark.md").read_text().strip().replace(
            "# Every method under the official lists (voxsynth; features track)",
            "## Peers: every method on VoxSynth's features (voxface benchmark)")
    if table4:
        (folder / "table4_voice_prior.md").write_text("# Table 4. Voice encoder from scratch or pretrained "
                                                      "(full method, AUC %, 95% CI)\n\n" + table4 + "\n")
    summary = "\n\n".join([
        "# voxface demo", *([caveat] if caveat else []),
        table2.replace("# Cross-modal verification", "## Table 2. Cross-modal verification"),
        table3.replace("# Runs side by side", "## Table 3. Alignment terms (RKD on in every run)"),
        *(["## Table 4. Voice encoder from scratch or pretrained (full method, AUC %, 95% CI)", table4]
          if table4 else []),
        *(["## Where the points go (full method)", points] if points else []),
        "## Bars", format_bars(bars),
        "## Files",
        "\n".join(files_lines(out, folder, {**eval_dirs, **{d.name: d for d in extra}}, compared, bool(table4),
                              bool(peers))),
        *([peers_table] if peers_table else []),
    ])
    (folder / "summary.md").write_text(summary + "\n")
    (folder / "bars.json").write_text(json.dumps([{"bar": b, "met": m, "measured": s} for b, m, s in bars], indent=1))
    return folder


def files_lines(out: Path, folder: Path, eval_dirs: dict[str, Path], compared: list[Path], table4: bool,
                peers: bool) -> list[str]:
    """The summary's Files section, one line a file, derived from the runs there are: every evaluated run's plots
    (``eval_dirs``: run -> its evaluate folder) and the Fig. 5 figure of the runs ``compared`` in Table 3 that saved
    its matrices."""
    shown = [d.name for d in compared if (d / "plots" / "fig5_similarity.npz").is_file()]
    return [f"- {folder / 'table2_full.md'}: Table 2 with per-list CIs, EER, 1:2 matching and retrieval",
            f"- {folder / 'table3_ablations.md'} (+ .csv/.json as comparison.*): Table 3",
            *([f"- {folder / 'table4_voice_prior.md'}: Table 4's pair"] if table4 else []),
            *(f"- {d / 'plots'}: {n}'s ROC, score distributions, PCA and similarity plots"
              for n, d in eval_dirs.items() if (d / "plots").is_dir()),
            *([f"- {folder / 'fig5_similarity.png'}: Fig. 5-style similarity structure of "
               + (f"the {len(shown)} runs of Table 3 ({_names(shown)})" if len(shown) > 1 else f"the run {shown[0]}")]
              if shown else []),
            f"- {folder / 'decomposition.png'}: every run's ceiling, references (the frozen priors' "
            "included) and achieved AUC per list (each run's table in its report.md)",
            f"- {out / 'train' / 'full' / 'backend'}: the full run's Gaussian backend; the probability that a "
            f"voice and faces match: `voxface score --checkpoint {_checkpoint(out / 'train' / 'full')} "
            f"--backend {out / 'train' / 'full' / 'backend'} VOICE FACE...`",
            *([f"- {folder / 'table2_peers.md'}: every method's Table 2 row, 1:2 matching and retrieval "
               f"(runs in {out / BENCHMARK_FOLDER})"] if peers else [])]


def _names(names: list[str]) -> str:
    """``a, b and c``."""
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + f" and {names[-1]}"


def _record(out: Path, size_name: str, size: DemoSize, user: UserData | None, root: Path, lists: str, teacher: Path,
            voice_prior: Path | None, faces: Path | None, faces_at: int | None, epochs: int | None,
            seed: int | None) -> Path:
    """``RUN/demo.json``: what ``voxface train|evaluate|benchmark --demo RUN`` take from this demo (paths absolute)."""
    from voxface.synth.release import release_prior
    from voxface.training.config import RELEASE_PRIOR

    def named(weights: Path, modality: str) -> Path | str:  # the shipped priors by their name, wherever installed
        return RELEASE_PRIOR if weights.resolve() == release_prior(modality).resolve() else weights.absolute()

    here = out.absolute()
    root, teacher = root.absolute(), named(teacher, "face")
    lists = str(Path(lists).absolute()) if Path(lists).is_dir() else lists
    voice = named(voice_prior, "voice") if voice_prior is not None else None
    train = run_settings(here, root, lists, teacher, size, user, epochs, seed, voice, faces_at)
    if voice is not None and faces is not None:  # VoxSynth: the benchmark the demo runs in its step 6
        benchmark_set, benchmark = "voxsynth", peers_overrides(root, lists, teacher, voice, faces.absolute(),
                                                               voice_store(here), size, faces_at)
    else:  # the user's data: no voice prior, so no benchmark here (audio.weights is the user's to give)
        benchmark_set, benchmark = "voxceleb1", [f"data.root={root}", f"data.lists={lists}", f"face.weights={teacher}"]
    config = size.config if user is None else user.config
    if user is not None and config is not None and Path(config).is_file():
        config = str(Path(config).absolute())
    return DemoRecord(size=size_name, data=str(root), lists=lists, face_weights=str(teacher),
                      voice_weights=str(voice) if voice else None, face_size=faces_at if user is None else None,
                      config=config, train=train, benchmark_set=benchmark_set, benchmark=benchmark).save(out)


def run_demo(out: str | Path, size: str | DemoSize = "default", user: UserData | None = None,
             epochs: int | None = None, workers: int | None = None, progress: bool = True,
             seed: int | None = None, train_priors: bool = False) -> dict:
    """Run (or continue) the whole demo into ``out``; returns the bars and the report folder.

    ``seed`` sets the training runs' seed (data and teacher stay as they are): how BENCHMARKS.md measures
    the spread. ``train_priors`` pretrains the face teacher and the voice prior here, on a small draw of their own,
    instead of loading the shipped release priors."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; the demo needs a folder")
    if seed is not None and not 0 <= seed < 2**32:
        raise ConfigError(f"--seed must be between 0 and 4294967295 (got {seed})")
    if epochs is not None and epochs < 1:
        raise ConfigError(f"--epochs must be at least 1 (got {epochs})")
    if workers is not None and workers < 1:  # every flag is checked before the first step says anything
        raise ConfigError(f"--workers must be at least 1 (got {workers})")
    size_name = size if isinstance(size, str) else "custom"
    if isinstance(size, str):
        if size not in SIZES:
            raise ConfigError(f"--size must be one of {', '.join(SIZES)}, got {size!r}")
        size = SIZES[size]
    if user is not None:
        for what, path in (("--data", user.root), ("--face-weights", user.face_weights)):
            if not Path(path).exists():
                raise ConfigError(f"{what} {path} does not exist")
        from voxface.protocol import load_protocol

        load_protocol(user.lists)  # a bad --lists is said now, not after step 1 has begun
    # Wall clock of each step when it last ran (BENCHMARKS.md); a step reused from an earlier invocation
    # keeps the time it took then.
    timings_file = out / "report" / "timings.json"
    seconds: dict[str, float] = json.loads(timings_file.read_text()) if timings_file.is_file() else {}
    clock = time.monotonic()

    def lap(step: str, reused: bool = False) -> None:
        nonlocal clock
        now = time.monotonic()
        if not reused or step not in seconds:
            seconds[step] = round(now - clock, 1)
        clock = now

    generated = user is None and (out / "voxsynth" / "voxsynth.json").is_file()
    root, lists, protocol, oracle = _data_step(out, size, user, workers, progress)
    lap("data", reused=generated)
    priors = _priors_step(out, size, user, train_priors, workers, progress)
    lap("priors", reused=all(p.get("reused", False) for p in priors.values()))
    teacher, voice_prior = Path(priors["face"]["weights"]), priors.get("voice")
    names = list(RUNS) + ([SCRATCH_RUN] if voice_prior else [])
    weights = Path(voice_prior["weights"]) if voice_prior else None
    faces, faces_at = None, face_size(priors["face"])
    if user is None:
        _say("\n[4/7] the face teacher's features of every face (the runs' teacher cache and the peers' face store)")
        faces = _face_store(out, Path(root), teacher, progress)
        lap("face features")
    configs = {name: run_config(out, name, Path(root), lists, teacher, size, user, epochs, seed, weights, faces_at)
               for name in names}
    _record(out, size_name, size, user, Path(root), lists, teacher, weights, faces, faces_at, epochs, seed)
    runs = {}
    for i, name in enumerate(names, start=1):
        terms = {"full": "contrastive + OT + RKD", "contrastive": "contrastive + RKD", "ot_only": "OT + RKD",
                 SCRATCH_RUN: "contrastive + OT + RKD, voice encoder from scratch"}[name]
        if voice_prior is not None and name != SCRATCH_RUN:
            terms += ", voice encoder from the voice prior"
        _say(f"\n[4/7] training run {i}/{len(names)}: {name} ({terms}) -> {configs[name].trainer.out}")
        runs[name] = _train_step(configs[name], progress)
        _say(f"best validation AUC {runs[name]['best_val_auc']:.3f} after {runs[name]['epochs']} of "
             f"{configs[name].trainer.epochs} epochs "
             f"({runs[name]['seconds']:.0f} s)")
        lap(f"train {name}", reused=runs[name].get("reused", False))
    _say(f"\n[5/7] Gaussian backend for the full run -> {out / 'train' / 'full' / 'backend'}")
    backend, _, reused = _backend_step(out / "train" / "full", Path(root), protocol)
    lap("backend full", reused=reused)
    eval_dirs = {name: out / "eval" / name for name in names}
    reports = {}
    for i, name in enumerate(names, start=1):
        _say(f"\n[5/7] evaluating run {i}/{len(names)}: {name} on every list -> {eval_dirs[name]}")
        reports[name] = _evaluate_step(name, out / "train" / name, eval_dirs[name], Path(root), protocol, oracle,
                                       backend if name == "full" else None)
        random_list = reports[name]["verification"]["random_unseenunheard"]
        _say(f"random unseen-unheard AUC {random_list['auc']:.3f}" + (
            f" (backend {random_list['backend']['auc']:.3f})" if "backend" in random_list else ""))
        lap(f"evaluate {name}", reused=reports[name].get("reused", False))
    peers = priors_ref = None
    if user is None:
        _say(f"\n[6/7] peers: every method on VoxSynth's features -> {out / 'benchmark'}")
        peers = _peers_step(out, Path(root), lists, teacher, Path(voice_prior["weights"]), faces, size, faces_at,
                            progress)
        lap("peers benchmark")
        _say("\nthe frozen priors with the Gaussian backend (a reference: no shared space trained)")
        priors_ref = _priors_reference_step(out, Path(root), protocol, faces)
        _say(f"random unseen-unheard AUC {priors_ref['lists']['random_unseenunheard']['auc']:.3f}")
        lap("priors reference")
    else:
        _say("\n[6/7] peers: not on your data here (no voice encoder to store features with): run "
             "'voxface benchmark --set voxceleb1 data.root=... face.weights=... audio.weights=...'")
    _say("\n[7/7] reports")
    folder = _report_step(out, eval_dirs, reports, oracle, voice_prior, peers, priors_ref,
                          protocol.verification("random", "unseenunheard").identities)
    lap("report")
    timings_file.write_text(json.dumps(seconds, indent=1))
    _say("\n" + (folder / "summary.md").read_text())
    _say("seconds per step: " + ", ".join(f"{k} {v:.0f}" for k, v in seconds.items()))
    _say(f"run folder: {out.resolve()}\nreports: {folder.resolve()}")
    # absolute: the command works from any folder
    _say(f"try the full run in a browser: voxface app --checkpoint {_checkpoint(out / 'train' / 'full').absolute()} "
         f"--eval {out.absolute()}")
    return {"report": str(folder), "bars": json.loads((folder / "bars.json").read_text()), "runs": runs}
