"""The ``voxface`` command line. Every error a user can cause ends in one line, not a traceback."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from voxface import __version__
from voxface.errors import VoxfaceError


def _add_lists_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--lists", default="voxceleb1",
                        help="protocol files: 'voxceleb1' (shipped) or a folder in the same layout "
                        "(default: %(default)s)")


def _add_root_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("root", type=Path, help="data set root holding the audio and face folders")
    parser.add_argument("--audio-dir", default="wav", help="audio folder under ROOT (default: %(default)s)")
    parser.add_argument("--faces-dir", default="unzippedFaces", help="face folder under ROOT (default: %(default)s)")


def _lists_hint(root: Path, lists: str) -> None:
    """A root with its own protocol/ folder scored against the shipped VoxCeleb1 lists is almost always a slip."""
    if lists == "voxceleb1" and (Path(root) / "protocol").is_dir():
        print(f"note: this root has its own protocol/ folder: pass --lists {Path(root) / 'protocol'} to use it "
              "(scoring it against the VoxCeleb1 lists now)", file=sys.stderr)


def cmd_protocol_stats(args: argparse.Namespace) -> int:
    from voxface.protocol import load_protocol
    from voxface.protocol.stats import format_stats

    print(format_stats(load_protocol(args.lists)))
    return 0


def cmd_protocol_check(args: argparse.Namespace) -> int:
    from voxface.protocol import DataRoots, load_protocol
    from voxface.protocol.check import check_files, format_check

    _lists_hint(args.root, args.lists)
    roots = DataRoots.from_root(args.root, args.audio_dir, args.faces_dir)
    results = check_files(load_protocol(args.lists), roots, workers=args.workers, quick=args.quick)
    print(format_check(results, quick=args.quick))
    return 1 if any(r.missing or r.unreadable for r in results) else 0


def cmd_protocol_manifest(args: argparse.Namespace) -> int:
    from voxface.protocol import SPLIT_TRAIN, SPLIT_VAL, DataRoots, build_manifest, load_protocol

    _lists_hint(args.root, args.lists)
    protocol = load_protocol(args.lists)
    roots = DataRoots.from_root(args.root, args.audio_dir, args.faces_dir)
    for split, file_name in ((SPLIT_TRAIN, "train.json"), (SPLIT_VAL, "val.json")):
        manifest = build_manifest(protocol, roots, split)
        manifest.save(args.out / file_name)
        print(f"{manifest.summary()} -> {args.out / file_name}")
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    from voxface.synth.build import SynthConfig, format_synth_summary, generate
    from voxface.synth.preview import write_preview

    sizes = {"identities": args.identities, "teacher_identities": args.teacher_identities,
             "teacher_voices": args.teacher_voices}
    config = SynthConfig(seed=args.seed, **{k: v for k, v in sizes.items() if v is not None})
    readers = None
    if args.legibility is not None:  # checked before the data set is generated
        from voxface.synth.legibility import LegibilityConfig

        readers = LegibilityConfig.sized(args.legibility)
        readers.validate()
    summary = generate(args.out, config, workers=args.workers, progress=not args.quiet)
    print(format_synth_summary(args.out, summary))
    small = {split: n for split, n in summary["identities"].items() if split in ("val", "test") and n < 8}
    if small:
        print("warning: only " + " and ".join(f"{n} {split}" for split, n in small.items()) + " identities: "
              "checkpoint selection, calibration and the test AUCs will be noisy; --identities 100 or more "
              "gives at least 8 of each", file=sys.stderr)
    if args.preview:
        for path in write_preview(args.out):
            print(f"preview: {path}")
    if readers is not None:
        from voxface.synth.legibility import legibility_beside

        print(legibility_beside(args.out, readers, config.model, workers=args.workers))
    return 0


def cmd_pretrain(args: argparse.Namespace) -> int:
    from voxface.training.pretrain import format_pretrain, load_pretrain_config, pretrain

    config = load_pretrain_config(args.config, args.overrides)
    print(format_pretrain(pretrain(config, resume=args.resume)))
    return 0


def cmd_priors(args: argparse.Namespace) -> int:
    from voxface.synth.release import ReleaseDraw, format_release, make_release

    draw = ReleaseDraw(**{k: v for k, v in (("face_identities", args.face_identities),
                                            ("voice_identities", args.voice_identities), ("seed", args.seed))
                          if v is not None})
    overrides = {"face": args.face or [], "voice": args.voice or []}
    records = make_release(args.work, draw, install=not args.no_install, workers=args.workers, overrides=overrides,
                           progress=not args.quiet)
    print(format_release(records))
    where = "src/voxface/synth/priors" if not args.no_install else str(args.work / "release")
    print(f"weights and provenance: {where}")
    return 0


# pretrain-face's flags and the face pretraining settings they set (what it was before 'voxface pretrain')
PRETRAIN_FACE_FLAGS = {"data": "data.root", "out": "trainer.out", "depth": "encoder.depth", "width": "encoder.width",
                       "input_size": "encoder.input_size", "embedding_size": "encoder.num_features",
                       "epochs": "trainer.epochs", "batch_size": "optim.batch_size", "lr": "optim.lr",
                       "margin": "head.margin", "scale": "head.scale", "heldout": "data.heldout_fraction",
                       "checkpoint_every": "trainer.checkpoint_every", "workers": "data.workers",
                       "seed": "trainer.seed"}


def cmd_pretrain_face(args: argparse.Namespace) -> int:
    """``voxface pretrain-face``: ``voxface pretrain`` of an IResNet, its flags mapped onto the settings."""
    overrides = ["encoder.name=iresnet"] + [f"{key}={getattr(args, flag)}" for flag, key in PRETRAIN_FACE_FLAGS.items()
                                            if getattr(args, flag) is not None]
    if args.quiet:
        overrides.append("trainer.progress=false")
    args.overrides = overrides + list(args.overrides)
    return cmd_pretrain(args)


def cmd_train(args: argparse.Namespace) -> int:
    from voxface.training.config import load_config, relocate
    from voxface.training.resume import position
    from voxface.training.run import train

    if args.resume:  # a run resumes with its own saved settings (only what may change, e.g. epochs, from here)
        run = _run_folder(args.config, args.overrides)
        saved = run / "config.yaml"
        if not saved.is_file():
            raise VoxfaceError(f"--resume: no run in {run.absolute()}; a run started with overrides resumes from "
                               "its own settings: voxface train --config RUN/config.yaml --resume")
        # The run's own files where the folder is now, its data where recorded (or moved along with it).
        config = relocate(load_config(saved, args.overrides, check_paths=False), run).validate()
    else:
        config = load_config(args.config, args.overrides)
    summary = train(config, resume=args.resume, resume_option="--resume")
    where = position(summary["steps"], summary["steps_per_epoch"])
    if summary["interrupted"] and not summary["last_checkpoint"]:
        print(f"interrupted at {where}, before its first checkpoint: start it again", file=sys.stderr)
        return 130
    if summary["interrupted"]:
        print(f"interrupted at {where}; continue with: voxface train --config "
              f"{Path(summary['out']) / 'config.yaml'} --resume", file=sys.stderr)
        return 130
    print(f"trained to {where} in {summary['seconds']} s; "
          f"validation AUC {_rounded(summary['val_auc'])} (best {_rounded(summary['best_val_auc'])}); "
          f"run folder {summary['out']}")
    return 0


def _run_folder(config: str | None, overrides: list[str]) -> Path:
    """The run folder ``--resume`` continues: the one ``--config`` names (``RUN`` or ``RUN/config.yaml``, wherever it
    is now) unless ``trainer.out=`` is given, else ``trainer.out``."""
    given = Path(config) if config else None
    if given is not None and given.is_dir():
        return given
    if (given is not None and given.name == "config.yaml" and (given.parent / "checkpoints").is_dir()
            and not any(o.startswith("trainer.out=") for o in overrides)):
        return given.parent
    from voxface.training.config import load_config

    return Path(load_config(config, overrides, check_paths=False).trainer.out)


def _rounded(value: float | None) -> str:
    return "none yet" if value is None else f"{value:.3f}"


def cmd_evaluate(args: argparse.Namespace) -> int:
    from voxface.evaluation.checkpoint import run_name
    from voxface.evaluation.evaluate import evaluate
    from voxface.evaluation.report import write_reports
    from voxface.synth.build import oracle_beside

    _lists_hint(args.data, args.lists)
    name = args.name or run_name(args.checkpoint)
    result = evaluate(args.checkpoint, args.data, args.lists, out=args.out, skip_missing=args.skip_missing,
                      crop_seconds=args.crop, batch_size=args.batch_size, workers=args.workers,
                      bootstrap=args.bootstrap, backend=args.backend, ci=args.ci,
                      decomposition=not args.no_decomposition, name=name,
                      from_features=False if args.media else None)
    oracle = oracle_beside(args.lists) if args.lists != "voxceleb1" else None
    paths = write_reports(result, args.out, name=name,
                          oracle=oracle, literature=args.lists == "voxceleb1")  # published rows: VoxCeleb1's lists only
    print((Path(args.out) / "report.md").read_text())
    print("reports: " + ", ".join(map(str, paths)))
    return 0


def cmd_benchmark(args: argparse.Namespace) -> int:
    from voxface.benchmark import run_benchmark

    if args.out is None:
        args.out = Path("runs/demo/benchmark" if args.config_set == "voxsynth" else "runs/voxceleb1/benchmark")
    print(f"benchmark ({args.config_set}) -> {args.out}", flush=True)
    table = run_benchmark(args.out, args.config_set, args.methods, args.seeds, args.overrides,
                          progress=not args.quiet, jobs=args.jobs)
    print((Path(args.out) / "benchmark.md").read_text())
    print(f"{len(table['methods'])} methods in {table['seconds']['total']:.0f} s; tables: {args.out}/benchmark.md, "
          f".csv, .json")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from voxface.evaluation.report import compare_runs

    try:
        paths = compare_runs(args.runs, args.out)
    except FileNotFoundError as err:
        raise VoxfaceError(str(err)) from None
    print((Path(args.out) / "comparison.md").read_text())
    print("reports: " + ", ".join(map(str, paths)))
    return 0


def cmd_backend_fit(args: argparse.Namespace) -> int:
    from voxface.evaluation.backend import fit_backend, format_backend

    backend = fit_backend(args.checkpoint, args.data, args.lists, out=args.out, reduce=args.reduce,
                          crop_seconds=args.crop, batch_size=args.batch_size, workers=args.workers,
                          from_features=False if args.media else None)
    print(format_backend(backend.info))
    print(f"backend: {args.out} (use with: voxface evaluate ... --backend {args.out}; "
          f"voxface score ... --backend {args.out})")
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from voxface.evaluation.api import VoiceFaceScorer, default_backend
    from voxface.evaluation.backend import NO_BACKEND

    backend = None if args.no_backend else args.backend if args.backend is not None else default_backend(
        args.checkpoint)
    if backend is not None and args.backend is None:
        print(f"(probabilities from {backend}, the run's fitted backend; --no-backend for cosine scores only)",
              file=sys.stderr)
    matches = VoiceFaceScorer(args.checkpoint, crop_seconds=args.crop, backend=backend, prior=args.prior,
                              without_backend=NO_BACKEND).score(args.voice, args.faces)
    with_probability = matches[0].probability is not None
    print("rank  cosine" + "  P(same)" * with_probability + "  face")
    for rank, match in enumerate(sorted(matches, key=lambda m: -m.rank_score), start=1):
        p = f"  {match.probability:7.3f}" if with_probability else ""
        print(f"{rank:>4}  {match.cosine:+.3f}{p}  {match.face}")
    if with_probability:
        print(f"P(same): the calibrated probability that the voice and the face are one person, at a prior of "
              f"{args.prior:g} (--prior)")
    elif not args.no_backend:
        print("(no probability: pass --backend RUN/backend, fitted with 'voxface backend fit')", file=sys.stderr)
    return 0



def cmd_embed(args: argparse.Namespace) -> int:
    import numpy as np

    from voxface.errors import MediaError
    from voxface.evaluation.api import VoiceFaceScorer, write_embeddings
    from voxface.protocol.text import read_lines

    if not args.files.is_file():
        raise VoxfaceError(f"--files {args.files} does not exist (a text file with one path per line)")
    # relative paths are read against the list file's folder, as lists of files usually mean them
    lines = [(number, args.files.parent / line.strip()) for number, line in read_lines(args.files)]
    if not lines:
        raise MediaError(f"--files {args.files} lists no {args.kind} files (one path per line)")
    vectors, errors = VoiceFaceScorer(args.checkpoint, crop_seconds=args.crop).embed_readable(
        [path for _, path in lines], args.kind)
    bad = [(number, errors[path]) for number, path in lines if path in errors]
    if bad and not args.skip_unreadable:
        more = f" (and {_count(len(bad) - 1, 'more unreadable line')})" if len(bad) > 1 else ""
        raise MediaError(f"{args.files} line {bad[0][0]}: {bad[0][1]}{more}; correct or remove it, or pass "
                         "--skip-unreadable to embed the other lines")
    for number, error in bad:
        print(f"skipped {args.files} line {number}: {error}", file=sys.stderr)
    kept = [path for _, path in lines if path in vectors]
    if not kept:
        raise MediaError(f"{args.files}: no line names a readable file ({_count(len(lines), 'line')} tried); "
                         "nothing to write")
    npy, index = write_embeddings(np.stack([vectors[path] for path in kept]), [str(path) for path in kept], args.out)
    print(f"{len(kept)} {args.kind} embeddings -> {npy} (index {index})"
          + (f"; {_count(len(bad), 'unreadable line')} skipped (listed above)" if bad else ""))
    return 0


def _count(number: int, thing: str) -> str:
    return f"{number} {thing}{'' if number == 1 else 's'}"


def cmd_extract(args: argparse.Namespace) -> int:
    from voxface.features import extract_features
    from voxface.features.store import META, read_meta

    finished = (args.out / META).is_file() and read_meta(args.out).get("complete")
    store = extract_features(args.encoder, args.weights, args.data, args.out, lists=args.lists,
                             crop_seconds=args.crop, batch_size=args.batch_size, devices=args.devices,
                             progress=not args.quiet)
    meta = store.meta
    print(f"{meta['count']} {meta['modality']} files by {meta['encoder']} ({meta['dim']}-d, "
          f"{len(meta['views'])} view{'s' if len(meta['views']) > 1 else ''}), {meta['count'] - len(store)} "
          f"unreadable -> {args.out}" + (" (reused: already extracted the same way)" if finished else ""))
    return 0


def cmd_app(args: argparse.Namespace) -> int:
    try:
        from voxface.app import serve
    except ImportError as err:
        raise VoxfaceError(f"voxface app needs its extra ({err.name} is missing): pip install 'voxface[app]'") from None

    serve(args.checkpoint, args.gallery, args.eval, args.backend, args.host, args.port,
          use_backend=not args.no_backend)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from voxface.demo import UserData, run_demo

    user = None
    if args.data is not None:
        if args.face_weights is None:
            raise VoxfaceError("--data needs --face-weights: the face teacher (an insightface backbone.pth)")
        user = UserData(root=args.data, face_weights=args.face_weights, lists=args.lists, config=args.config,
                        overrides=args.overrides)
    elif args.face_weights or args.config or args.overrides:
        raise VoxfaceError("--face-weights, --config and key=value overrides go with --data (your own data set)")
    if args.train_priors and user is not None:
        raise VoxfaceError("--train-priors trains VoxSynth priors; with --data the face teacher is --face-weights")
    result = run_demo(args.out, size=args.size, user=user, epochs=args.epochs, workers=args.workers, seed=args.seed,
                      progress=not args.quiet, train_priors=args.train_priors)
    return 0 if all(bar["met"] for bar in result["bars"]) or not args.strict else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="voxface", description="Voice-face identity embeddings: data, training, evaluation.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--version", action="version", version=f"voxface {__version__}",
                        help="print voxface's version and exit")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    protocol = commands.add_parser(
        "protocol", help="VoxCeleb1 cross-modal protocol: lists, statistics, file checks, manifests")
    protocol_commands = protocol.add_subparsers(dest="protocol_command", required=True, metavar="SUBCOMMAND")
    stats = protocol_commands.add_parser("stats", help="identities, trials and positives of every list (paper Table 1)")
    _add_lists_arg(stats)
    stats.set_defaults(func=cmd_protocol_stats)
    check = protocol_commands.add_parser("check", help="which files the lists need are present, missing or unreadable")
    _add_root_args(check)
    _add_lists_arg(check)
    check.add_argument("--workers", type=int, default=8, help="threads reading files (default: %(default)s)")
    check.add_argument("--quick", action="store_true",
                       help="only look for each file, without decoding it (a minute for all of VoxCeleb1's)")
    check.set_defaults(func=cmd_protocol_check)
    manifest = protocol_commands.add_parser(
        "manifest", help="train (minus seen-heard videos) and val manifests of a data set")
    _add_root_args(manifest)
    _add_lists_arg(manifest)
    manifest.add_argument("--out", type=Path, required=True, help="folder for train.json and val.json")
    manifest.set_defaults(func=cmd_protocol_manifest)

    synth = commands.add_parser("synth", help="generate VoxSynth, the built-in synthetic benchmark (VoxCeleb1 layout)")
    synth.add_argument("--out", type=Path, required=True, help="output folder (an interrupted run resumes there)")
    synth.add_argument("--identities", type=int, default=None, help="voice-face identities (default: the demo's, 400)")
    synth.add_argument("--teacher-identities", type=int, default=None,
                       help="faces-only identities for pretraining a face teacher (default: 400; 0: none)")
    synth.add_argument("--teacher-voices", type=int, default=None,
                       help="voices-only identities for pretraining a voice prior (default: 200; 0: none)")
    synth.add_argument("--seed", type=int, default=0, help="random seed; the output is deterministic for it")
    synth.add_argument("--workers", type=int, default=None, help="processes (default: all CPU cores)")
    synth.add_argument("--preview", action="store_true", help="also write PNGs of faces and voice spectrograms")
    synth.add_argument("--legibility", type=int, nargs="?", const=600, default=None, metavar="IDENTITIES",
                       help="also measure how legible the media are: supervised single-sample readers of the demo's "
                            "size regress the true knobs, R² per knob on held-out identities, in OUT/legibility.json "
                            "(a draw of its own, independent of --seed: IDENTITIES training identities, default 600, "
                            "and a quarter as many held out; 12-16 minutes on 2 cores; exits 0 whether or not the "
                            "bars are met)")
    synth.add_argument("--quiet", action="store_true", help="no progress bar")
    synth.set_defaults(func=cmd_synth)

    pretrain = commands.add_parser("pretrain", help="pretrain a face or voice encoder on an identity folder "
                                   "(identity classification, additive angular margin)")
    pretrain.add_argument("--config", required=True,
                          help="a YAML file or a shipped name: voxsynth/pretrain_face, voxsynth/pretrain_voice")
    pretrain.add_argument("--resume", action="store_true", help="continue the run in trainer.out from its last "
                          "checkpoint")
    pretrain.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                          help="e.g. data.root=runs/demo/voxsynth/teacher_voices trainer.epochs=8")
    pretrain.set_defaults(func=cmd_pretrain)

    priors = commands.add_parser("priors", help="make the release priors: render their own VoxSynth draw, pretrain "
                                 "the face and voice encoders side by side, install them into the package")
    priors.add_argument("--work", type=Path, required=True, help="working folder: the rendered sets, both runs and "
                        "the release; an interrupted run resumes there")
    priors.add_argument("--face-identities", type=int, default=None, help="faces-only identities (default: 2000)")
    priors.add_argument("--voice-identities", type=int, default=None, help="voices-only identities (default: 2000)")
    priors.add_argument("--seed", type=int, default=None, help="seed of the release draw (default: 0)")
    priors.add_argument("--face", nargs="*", metavar="KEY=VALUE", help="overrides of voxsynth/release_face")
    priors.add_argument("--voice", nargs="*", metavar="KEY=VALUE", help="overrides of voxsynth/release_voice")
    priors.add_argument("--no-install", action="store_true", help="leave the package's shipped priors as they are "
                        "(the release stays in WORK/release)")
    priors.add_argument("--workers", type=int, default=None, help="rendering processes (default: all CPU cores)")
    priors.add_argument("--quiet", action="store_true", help="no progress bar")
    priors.set_defaults(func=cmd_priors)

    face = commands.add_parser("pretrain-face", help="pretrain an IResNet face teacher (voxface pretrain with "
                               "encoder.name=iresnet; flags as before)")
    face.add_argument("--config", default=None, help="a YAML file or shipped name to start from (default: "
                      "arcface_torch's IResNet-34 settings)")
    face.add_argument("--data", type=Path, default=None,
                      help="<identity>/<image> folder, e.g. VoxSynth's teacher_faces (data.root)")
    face.add_argument("--out", type=Path, default=None, help="run folder: checkpoints, backbone.pth, pretrain.json "
                      "(trainer.out)")
    face.add_argument("--depth", type=int, default=None, choices=[18, 34, 50, 100], help="default 34")
    face.add_argument("--width", type=float, default=None, help="channel multiplier (default 1.0)")
    face.add_argument("--input-size", type=int, default=None, help="face size, a multiple of 16 (default 112)")
    face.add_argument("--embedding-size", type=int, default=None, help="default 512")
    face.add_argument("--epochs", type=int, default=None, help="default 20")
    face.add_argument("--batch-size", type=int, default=None, help="default 128")
    face.add_argument("--lr", type=float, default=None, help="peak SGD learning rate (default 0.1)")
    face.add_argument("--margin", type=float, default=None, help="ArcFace additive angular margin (default 0.5)")
    face.add_argument("--scale", type=float, default=None, help="ArcFace logit scale (default 64)")
    face.add_argument("--heldout", type=float, default=None, help="share of identities held out (default 0.1)")
    face.add_argument("--checkpoint-every", type=int, default=None, help="training steps between checkpoints "
                      "(default 200)")
    face.add_argument("--workers", type=int, default=None, help="data loader processes (default 2)")
    face.add_argument("--seed", type=int, default=None, help="default 0")
    face.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    face.add_argument("--quiet", action="store_true", help="no progress bar")
    face.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="further settings, as for voxface pretrain")
    face.set_defaults(func=cmd_pretrain_face)

    train = commands.add_parser("train", help="train the voice-face model (paper Algorithm 1) from a YAML config")
    train.add_argument("--config", default=None,
                       help="a YAML file or a shipped name such as voxsynth/full (src/voxface/configs/); "
                            "else defaults + overrides")
    train.add_argument("--resume", action="store_true",
                       help="continue a run from its last.ckpt: the run folder --config names (RUN or "
                            "RUN/config.yaml, from any folder), else trainer.out")
    train.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="e.g. optim.batch_size=32 trainer.epochs=5")
    train.set_defaults(func=cmd_train)

    ev = commands.add_parser("evaluate", help="score every trial list with a trained checkpoint; write reports")
    ev.add_argument("--checkpoint", type=Path, required=True, help="a 'voxface train' checkpoint (.ckpt)")
    ev.add_argument("--data", type=Path, required=True, help="data set root (wav/, unzippedFaces/)")
    _add_lists_arg(ev)
    ev.add_argument("--out", type=Path, required=True, help="folder for reports and the embedding cache")
    ev.add_argument("--skip-missing", action="store_true", help="score what exists; report the trials lost")
    ev.add_argument("--crop", type=float, default=None, help="centre-crop voices to this many seconds")
    ev.add_argument("--batch-size", type=int, default=32)
    ev.add_argument("--workers", type=int, default=None,
                    help="loader processes (default: 2 with a GPU, 0 on a CPU, where they slow the encoder down)")
    ev.add_argument("--ci", choices=["delong", "bootstrap", "none"], default="delong",
                    help="95%% interval of each AUC: DeLong's analytic one, a percentile bootstrap, or none "
                         "(default: %(default)s)")
    ev.add_argument("--bootstrap", type=int, default=1000, help="resamples with --ci bootstrap (default: %(default)s)")
    ev.add_argument("--name", default=None,
                    help="the run's name in the reports and plots (default: the run folder of --checkpoint)")
    ev.add_argument("--no-decomposition", action="store_true",
                    help="skip the references and demographic probes (they embed up to 8 voices and faces of each "
                         "training and validation identity, cached; with --backend its embeddings are reused)")
    ev.add_argument("--media", action="store_true",
                    help="a run trained on feature stores: re-embed the media with its encoders instead of reading "
                         "the stores")
    ev.add_argument("--backend", type=Path, default=None,
                    help="a 'voxface backend fit' folder: also score by its calibrated log-likelihood ratios")
    ev.set_defaults(func=cmd_evaluate)

    backend = commands.add_parser("backend", help="a Gaussian (PLDA-style) backend: likelihood ratios, probabilities")
    backend_commands = backend.add_subparsers(dest="backend_command", required=True, metavar="SUBCOMMAND")
    fit = backend_commands.add_parser(
        "fit", help="fit it on the training identities' embeddings, calibrate it on the validation identities")
    fit.add_argument("--checkpoint", type=Path, required=True, help="a 'voxface train' checkpoint (.ckpt)")
    fit.add_argument("--data", type=Path, required=True, help="data set root (wav/, unzippedFaces/)")
    _add_lists_arg(fit)
    fit.add_argument("--out", type=Path, required=True, help="backend folder, e.g. RUN/backend")
    fit.add_argument("--reduce", choices=["lda", "pca", "none"], default="lda",
                     help="per-modality reduction before the joint Gaussian (default: %(default)s)")
    fit.add_argument("--crop", type=float, default=None, help="centre-crop voices (as evaluate --crop will)")
    fit.add_argument("--media", action="store_true",
                     help="a run trained on feature stores: embed media instead of reading the stores")
    fit.add_argument("--batch-size", type=int, default=32)
    fit.add_argument("--workers", type=int, default=None,
                     help="loader processes (default: 2 with a GPU, 0 on a CPU, where they slow the encoder down)")
    fit.set_defaults(func=cmd_backend_fit)

    report = commands.add_parser("report", help="put several evaluated runs side by side (Table 3 / 4 layout)")
    report.add_argument("runs", type=Path, nargs="+", help="folders written by 'voxface evaluate --out'")
    report.add_argument("--out", type=Path, required=True)
    report.set_defaults(func=cmd_report)

    score = commands.add_parser("score", help="score one voice against faces with a trained checkpoint")
    score.add_argument("--checkpoint", type=Path, required=True)
    score.add_argument("--crop", type=float, default=None, help="centre-crop the voice to this many seconds")
    which = score.add_mutually_exclusive_group()
    which.add_argument("--backend", type=Path, default=None,
                       help="a 'voxface backend fit' folder: also give the probability of a match "
                            "(default: RUN/backend when it exists)")
    which.add_argument("--no-backend", action="store_true",
                       help="cosine scores only: use no backend, not even the run's own RUN/backend (e.g. to score "
                            "with another --crop than it was fitted on)")
    score.add_argument("--prior", type=float, default=0.5,
                       help="prior probability that a face is the speaker's, for the probability (default: 0.5)")
    score.add_argument("voice", type=Path)
    score.add_argument("faces", type=Path, nargs="+")
    score.set_defaults(func=cmd_score)

    embed = commands.add_parser("embed", help="export voice or face embeddings to .npy with an index .csv")
    embed.add_argument("--checkpoint", type=Path, required=True)
    embed.add_argument("--kind", choices=["voice", "face"], required=True)
    embed.add_argument("--files", type=Path, required=True,
                       help="a .txt file with one audio or image path per line (relative paths are read against "
                            "the list file's folder)")
    embed.add_argument("--out", type=Path, required=True, help="output stem: OUT.npy and OUT.csv")
    embed.add_argument("--crop", type=float, default=None)
    embed.add_argument("--skip-unreadable", action="store_true",
                       help="leave out the lines whose file cannot be read (each named on stderr) and write the "
                            "rest; without it, such a line stops the export, named with its line number")
    embed.set_defaults(func=cmd_embed)

    extract = commands.add_parser(
        "extract", help="embed every voice or face file of a data root once into a feature store (resumable)")
    extract.add_argument("--encoder", required=True, help="a registered encoder: its modality picks the files")
    extract.add_argument("--weights", type=Path, required=True, help="its weights file or HuggingFace folder")
    extract.add_argument("--data", type=Path, required=True, help="data root holding wav/ and unzippedFaces/")
    extract.add_argument("--lists", default=None,
                         help="only the files of the identities of these lists: 'voxceleb1' or a protocol folder "
                              "(default: every file)")
    extract.add_argument("--out", type=Path, required=True, help="the feature store folder")
    extract.add_argument("--crop", type=float, default=None, help="centre crop of each voice, seconds (default: "
                                                                    "whole clips)")
    extract.add_argument("--batch-size", type=int, default=32)
    extract.add_argument("--devices", type=int, default=None, help="GPUs (default: all; none: one CPU process)")
    extract.add_argument("--quiet", action="store_true", help="no progress bar")
    extract.set_defaults(func=cmd_extract)

    bench = commands.add_parser(
        "benchmark", help="train and evaluate every method on one feature store under the official lists (Table 2)",
        description="Every registered method (or those of --methods), each with its shipped configuration "
                    "<set>/peers/<method>, trained on the same stored features and evaluated on every official "
                    "list; writes benchmark.md/.csv/.json. Run again to continue an interrupted benchmark.")
    bench.add_argument("--set", dest="config_set", default="voxsynth", choices=("voxsynth", "voxceleb1"),
                       help="which shipped configurations (default: %(default)s)")
    bench.add_argument("--out", type=Path, default=None,
                       help="benchmark folder: features/, runs/, the tables (default: runs/demo/benchmark for "
                            "voxsynth, the demo's; runs/voxceleb1/benchmark for voxceleb1)")
    bench.add_argument("--methods", type=lambda text: [m.strip() for m in text.split(",")], default=None,
                       help="method names, comma-separated, e.g. pins,dimnet (default: every registered one)")
    bench.add_argument("--seeds", type=int, default=1, help="seeds per method (default 1): N > 1 reports mean ± sd")
    bench.add_argument("--jobs", type=int, default=1,
                       help="runs at once, each in its own process (default 1; the heads keep about one core busy "
                            "each)")
    bench.add_argument("--quiet", action="store_true", help="no progress bars")
    bench.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                       help="applied to every method's configuration, e.g. data.root=... features.face=...; the "
                            "stores default to OUT/features/faces and OUT/features/voices")
    bench.set_defaults(func=cmd_benchmark)

    app = commands.add_parser("app", help="a local web page: rank faces for a voice, browse a run's results")
    app.add_argument("--checkpoint", type=Path, required=True, help="a 'voxface train' checkpoint (.ckpt)")
    app.add_argument("--gallery", type=Path, default=None,
                     help="folder of faces (and voices) to pick from (default: the run's own test identities)")
    app.add_argument("--eval", type=Path, default=None, help="an evaluation or demo folder for the Results tab")
    app_backend = app.add_mutually_exclusive_group()
    app_backend.add_argument("--backend", type=Path, default=None,
                             help="a fitted backend folder for probabilities (default: RUN/backend when it exists)")
    app_backend.add_argument("--no-backend", action="store_true",
                             help="rank by cosine only: use no backend, not even the run's own RUN/backend")
    app.add_argument("--host", default="127.0.0.1")
    app.add_argument("--port", type=int, default=7860)
    app.set_defaults(func=cmd_app)

    demo = commands.add_parser(
        "demo", help="the main job end to end: data, teacher, method + ablations, evaluation, reports (resumes)",
        description="On VoxSynth (default) or your own VoxCeleb1-layout data (--data ROOT --face-weights W): "
                    "train the full method and the contrastive-only and OT-only ablations, evaluate each on every "
                    "list and write Table 2 / Table 3 reports and plots into one run folder. Run again to continue.")
    demo.add_argument("--out", type=Path, default=Path("runs/demo"), help="run folder (default: %(default)s)")
    demo.add_argument("--size", default="default", help="VoxSynth and model sizes: default or tiny (a quick check)")
    demo.add_argument("--epochs", type=int, default=None, help="training epochs of every run (default: the size's)")
    demo.add_argument("--workers", type=int, default=None, help="processes for generation (default: all cores)")
    demo.add_argument("--quiet", action="store_true", help="no progress bars")
    demo.add_argument("--seed", type=int, default=None, help="the training runs' seed (default: the config's, 0)")
    demo.add_argument("--strict", action="store_true", help="exit with status 1 when a bar is not met")
    demo.add_argument("--train-priors", action="store_true", help="pretrain the face teacher and the voice prior "
                      "here, on a small draw of their own, instead of loading the shipped release priors")
    demo.add_argument("--data", type=Path, default=None, help="your VoxCeleb1-layout root instead of VoxSynth")
    demo.add_argument("--lists", default="voxceleb1", help="with --data: 'voxceleb1' or a protocol folder")
    demo.add_argument("--face-weights", type=Path, default=None, help="with --data: the face teacher backbone.pth")
    demo.add_argument("--config", default=None,
                      help="with --data: a training YAML or shipped name (audio encoder, sizes); the demo sets data, "
                           "teacher, out")
    demo.add_argument("overrides", nargs="*", metavar="key=value", help="with --data: training config overrides")
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(message)s")
    try:
        return args.func(args)
    except VoxfaceError as err:
        print(f"voxface: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("voxface: interrupted", file=sys.stderr)
        return 130
