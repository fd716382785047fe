"""``voxface benchmark``: every method trained and scored the same way, under the official lists (issue 24).

For each registered method (or those named) and each seed, the method's shipped configuration
``<set>/peers/<method>`` (``src/voxface/configs``; ``--set voxsynth`` or ``voxceleb1``) is trained in feature mode
on one pair of feature stores, so every method sees the same frozen face and voice encoders, the same identities,
batch size, epochs (so optimisation steps) and seed, and differs only in its heads and loss; ``plan`` refuses
configurations that differ in any of these. The checkpoint kept is the one with the best validation-identity AUC
(``best.ckpt``): no test list is read before the evaluation that follows. Each is then scored on every official list:
verification AUC with DeLong's 95% interval, EER, 1:2 matching and retrieval; beside each row, DeLong's paired test
against the best row on random and G unseen-unheard (``paired_significance``). With ``tune`` (``--tune N``), each
method first trains N configurations drawn from its search space and keeps the one of best validation AUC
(``tuning``), which is then trained with the seeds.

Into ``--out``:

- ``features/faces``, ``features/voices``: the stores, extracted once with the encoders the configurations name
  (unless the configurations point elsewhere); reused when finished;
- ``runs/<method>/seed<k>/``: each training run (``voxface train``'s folder), its ``benchmark_eval.json`` and its
  per-trial scores ``benchmark_scores.npz``;
- with tuning, ``tune/<method>/trial<k>/`` (trained, never evaluated), ``tune/<method>/selection.json`` and
  ``tune/<method>/seed<k>/`` (the chosen configuration with each seed, in place of ``runs/<method>``);
- ``benchmark.md``, ``benchmark.json``, ``benchmark.csv``: Table 2 with a row per method (mean ± sd over seeds
  where there are several), on VoxSynth the oracle ceiling and the data reference (scorers fitted on the true
  generative knobs: what the data allow), the published VoxCeleb1 rows (marked with split and source), each row's
  configuration (and tuning), then 1:2 matching and retrieval.

Resumable: a finished run and its evaluation are reused, an interrupted run continues from its ``last.ckpt``.

The end-to-end track (``--media``, ``run_benchmark(..., media=True)``): the same runs trained on the media instead
of the stores, into ``out/media`` (``runs/<method>/seed<k>``, the tables, and ``teacher_cache``: the frozen face
teacher's embeddings, made once for every run). Each method's configuration (``<set>/peers/media/<method>`` where a
method's end-to-end form differs, else ``<set>/peers/<method>``) gets ``<set>/peers/media.yaml``'s settings laid
over it: no stores, the face teacher frozen, the voice encoder from the voice prior and trainable, one budget.
"""

from __future__ import annotations

import copy
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from voxface.errors import ConfigError, OverrideError, VoxfaceError
from voxface.methods import METHODS
from voxface.protocol.lists import TEST_SETS, VERIFICATION_GROUPS
from voxface.training.config import PACKAGED_CONFIGS, TrainConfig, load_config
from voxface.tuning import SELECTION_FILE, configuration, describe, draw, override, search_space, select_trial

log = logging.getLogger("voxface")

CONFIG_SETS = ("voxsynth", "voxceleb1")
COLUMNS = ("U", "G", "N", "A", "GNA")
LIST_KEYS = [f"{g}_{t}" for t in TEST_SETS for g in VERIFICATION_GROUPS]
CEILING_REFERENCE = "oracle ceiling"  # the references row of the oracle (VoxSynth only)
BAR_LIST = "random_unseenunheard"  # the bar: every method's 95% CI low above chance here
EVAL_FILE = "benchmark_eval.json"
SCORES_FILE = "benchmark_scores.npz"  # each list's per-trial cosines, for the paired tests between rows
# the lists each row is tested against the best row on (paired DeLong), and the level below which it is not tied
SIGNIFICANCE_LISTS = ("random_unseenunheard", "G_unseenunheard")
ALPHA = 0.05
# what every method must share for the comparison to be one: the data, the lists and the stored features
SHARED = ("data.root", "data.lists", "data.audio_dir", "data.faces_dir", "face.encoder", "face.weights",
          "audio.encoder", "audio.weights", "features.face", "features.voice")
# the budget every method trains with: the same batch and the same number of optimisation steps (every sampler
# makes an epoch of total clips // batch batches, media/dataset.py IdentityBatchSampler)
BUDGET = ("optim.batch_size", "trainer.epochs", "trainer.max_steps")
MEDIA_NO_STORES = ("the end-to-end track (--media) trains on the media: leave features.face and features.voice out "
                   "of the overrides")
MEDIA = "media"  # the end-to-end track: its folder under --out, its shared settings <set>/peers/media.yaml
# ... and what every method of that track must also share: one budget, one teacher cache
MEDIA_SHARED = ("face.frozen", "face.cache_dir", "optim.batch_size", "optim.lr_audio", "optim.schedule",
                "optim.step_gamma", "optim.step_every_epochs", "trainer.epochs", "trainer.max_steps")


def peer_configs(config_set: str) -> dict[str, str]:
    """Method name -> its shipped benchmark configuration name in ``config_set`` (``voxsynth/peers/pins``)."""
    if config_set not in CONFIG_SETS:
        raise ConfigError(f"--set must be one of {', '.join(CONFIG_SETS)}, got {config_set!r}")
    folder = PACKAGED_CONFIGS / config_set / "peers"
    return {p.stem: f"{config_set}/peers/{p.stem}" for p in sorted(folder.glob("*.yaml"))
            if p.stem not in ("base", MEDIA)}


def track_folder(out: str | Path, media: bool = False) -> Path:
    """Where a track's runs and tables go: ``out`` for the features track, ``out/media`` for the end-to-end one."""
    return Path(out) / MEDIA if media else Path(out)


def media_config(config_set: str, method: str) -> str:
    """The shipped configuration a method trains from in the end-to-end track: ``<set>/peers/media/<method>`` where
    its end-to-end form differs from its features form, else ``<set>/peers/<method>``."""
    own = PACKAGED_CONFIGS / config_set / "peers" / MEDIA / f"{method}.yaml"
    return f"{config_set}/peers/{MEDIA}/{method}" if own.is_file() else peer_configs(config_set)[method]


def media_overrides(config_set: str) -> list[str]:
    """``<set>/peers/media.yaml``'s own settings (all but ``extends``) as ``key=value`` overrides, laid over every
    method's configuration in the end-to-end track, so that what the file sets is the same for every method."""
    import yaml

    from voxface.training.run import _flat

    path = PACKAGED_CONFIGS / config_set / "peers" / f"{MEDIA}.yaml"
    settings = yaml.safe_load(path.read_text()) or {}
    settings.pop("extends", None)
    return [f"{key}={json.dumps(value)}" for key, value in _flat(settings).items()]  # JSON is YAML


def _value(config: TrainConfig, dotted: str) -> Any:
    value: Any = config
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


@dataclass
class PlannedRun:
    """One training run of a benchmark: a method's seed, or (``trial`` set) one of its tuning trials, which is
    trained and never evaluated. ``values``: the configuration it runs with, for the table (the keys of the
    method's search space)."""

    method: str
    seed: int
    config: TrainConfig
    trial: int | None = None
    values: dict[str, Any] = field(default_factory=dict)

    @property
    def folder(self) -> Path:
        return Path(self.config.trainer.out)


def plan(out: str | Path, config_set: str = "voxsynth", methods: list[str] | None = None, seeds: int = 1,
         overrides: list[str] | tuple[str, ...] = (), tuned: dict[str, dict[str, Any]] | None = None,
         media: bool = False) -> list[PlannedRun]:
    """The runs of a benchmark: each method's configuration with ``overrides`` on top, one per seed (0..seeds-1),
    each into ``out/runs/<method>/seed<k>``; with ``tuned`` (method -> the values its tuning chose), those values
    on top too, each into ``out/tune/<method>/seed<k>``. ``media``: the end-to-end track's runs (``media_config``
    with ``media_overrides`` under ``overrides``; ``out`` is then the track's folder, ``track_folder``).
    ``ConfigError`` for an unknown method, a method without a shipped configuration in the set, fewer than one seed,
    or methods that would not share one data root, one feature store and one budget (batch size and training
    length; with ``media`` also one teacher and one voice schedule)."""
    if media and any(item.split("=", 1)[0].strip().startswith("features.") for item in overrides):
        raise ConfigError(MEDIA_NO_STORES)  # before any configuration is read
    shipped = peer_configs(config_set)
    if isinstance(methods, str):  # "pins,dimnet", as the command line takes it
        methods = [m.strip() for m in methods.split(",")]
    if methods is not None and not [m for m in methods if m]:
        raise ConfigError("--methods names no method; give names separated by commas, or leave it out for all")
    if methods is not None and "" in methods:
        raise ConfigError(f"--methods {','.join(methods)!r} has an empty name between commas; give names separated "
                          "by single commas")
    names = list(methods) if methods else sorted(METHODS)
    if len(set(names)) < len(names):
        twice = next(n for n in names if names.count(n) > 1)
        raise ConfigError(f"--methods names {twice} twice")
    if Path(out).exists() and not Path(out).is_dir():
        raise ConfigError(f"--out {out} is a file; the benchmark needs a folder")
    if any(item.split("=", 1)[0].strip() == "method.name" for item in overrides):
        raise ConfigError("method.name cannot be overridden in a benchmark: each configuration names its method; "
                          "choose methods with --methods")
    for name in names:
        if name not in METHODS:
            import difflib

            near = difflib.get_close_matches(name, list(METHODS), n=1)
            raise ConfigError(f"--methods: {name!r} is no registered method"
                              + (f" (did you mean {near[0]!r}?)" if near else "")
                              + f"; registered: {', '.join(sorted(METHODS))}")
        if name not in shipped:
            raise ConfigError(f"method {name} has no benchmark configuration {config_set}/peers/{name}.yaml")
    if seeds < 1:
        raise ConfigError(f"--seeds must be at least 1, got {seeds}")
    runs = []
    layer = media_overrides(config_set) if media else []
    for name in names:
        chosen = (tuned or {}).get(name)
        source = media_config(config_set, name) if media else shipped[name]
        for seed in range(seeds):
            folder = Path(out) / ("runs" if tuned is None else "tune") / name / f"seed{seed}"
            extra = [override(key, value) for key, value in (chosen or {}).items()]
            try:
                config = load_config(source, [*layer, *overrides, *extra, f"trainer.out={folder}",
                                              f"trainer.seed={seed}"], check_paths=False)
            except ConfigError as err:  # an override one method takes and another does not: say whose
                if isinstance(err, OverrideError) and not err.key.startswith("method."):
                    raise  # a key outside the methods' own arguments: wrong for every method alike
                raise ConfigError(f"method {name}: {err}") from None
            values = chosen if chosen is not None else configuration(
                config, list(search_space(shipped[name], check=False)), shipped[name])
            runs.append(PlannedRun(name, seed, config, values=dict(values)))
    check_shared(runs, media)
    first = runs[0].config
    if media and first.feature_mode:
        raise ConfigError(MEDIA_NO_STORES)
    if not media and not first.feature_mode:
        raise ConfigError(f"{config_set}/peers/{runs[0].method}: the benchmark trains on feature stores; set "
                          "features.face and features.voice")
    return runs


def check_shared(runs: list[PlannedRun], media: bool = False) -> None:
    """``ConfigError`` unless every run shares the data, the stores and the budget (``SHARED``, ``BUDGET``; with
    ``media`` also ``MEDIA_SHARED``: one teacher cache and one voice schedule) with the first."""
    first = runs[0].config
    for run in runs[1:]:
        for key in (*SHARED, *BUDGET, *(MEDIA_SHARED if media else ())):
            if _value(run.config, key) != _value(first, key):
                what = ("one budget: the same batch size and training length for every method" if key in BUDGET
                        else "one data root and one feature store")
                raise ConfigError(f"{run.method}'s configuration sets {key} to {_value(run.config, key)!r} where "
                                  f"{runs[0].method}'s has {_value(first, key)!r}: a benchmark trains every method on "
                                  f"{what}")


def plan_trials(out: str | Path, config_set: str, methods: list[str], tune: int,
                overrides: list[str] | tuple[str, ...] = (), media: bool = False) -> list[PlannedRun]:
    """The tuning trials of ``voxface benchmark --tune``: for each method, ``tune`` configurations drawn from the
    search space its configuration declares (``tuning.search_space``, ``tuning.draw``), each with ``overrides``
    and seed 0, into ``out/tune/<method>/trial<k>``. ``ConfigError`` for a negative ``tune``, a method without a
    search space, a bad space, an override naming a key the space draws, or a draw its method refuses."""
    if tune < 0:
        raise ConfigError(f"--tune must be 0 (each method's shipped configuration) or the number of configurations "
                          f"to draw for every method, got {tune}")
    if tune == 0:
        return []
    shipped = peer_configs(config_set)
    named = {item.split("=", 1)[0].strip() for item in overrides}
    trials = []
    for name in methods:
        space = search_space(shipped[name])
        if not space:
            raise ConfigError(f"--tune: {shipped[name]} declares no search space; every method is tuned alike, so "
                              "each needs a search: section")
        if clash := sorted(named & set(space)):
            raise ConfigError(f"{clash[0]} is given as an override and is in {name}'s search space "
                              f"({shipped[name]}); leave it out, or benchmark without --tune")
        for k in range(tune):
            values = draw(space, name, k)
            folder = Path(out) / "tune" / name / f"trial{k}"
            try:
                source = media_config(config_set, name) if media else shipped[name]
                config = load_config(source, [*(media_overrides(config_set) if media else []), *overrides,
                                              *(override(key, v) for key, v in values.items()),
                                              f"trainer.out={folder}", "trainer.seed=0"], check_paths=False)
            except ConfigError as err:
                raise ConfigError(f"{name} trial {k} ({describe(values)}): {err}") from None
            trials.append(PlannedRun(name, 0, config, trial=k, values=values))
    if trials:
        check_shared(trials, media)
    return trials


def store_overrides(out: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> list[str]:
    """``overrides`` with the stores in the benchmark's own folder (``out/features/faces``, ``out/features/voices``)
    unless they name them."""
    named = {item.split("=", 1)[0].strip() for item in overrides}
    extra = [f"features.{side}={Path(out) / 'features' / folder}"
             for side, folder in (("face", "faces"), ("voice", "voices")) if f"features.{side}" not in named]
    return [*overrides, *extra]


def cache_overrides(out: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> list[str]:
    """``overrides`` with the end-to-end track's one teacher cache (``out/teacher_cache``, ``out`` the track's
    folder) unless they name one: every run reads the frozen teacher's embeddings from it."""
    named = {item.split("=", 1)[0].strip() for item in overrides}
    return [*overrides] if "face.cache_dir" in named else [*overrides, f"face.cache_dir={Path(out) / 'teacher_cache'}"]


def prepare_teacher_cache(config: TrainConfig, progress: bool = False) -> None:
    """The end-to-end track's teacher cache, made once before any run (a finished one is reused), so that runs in
    parallel processes only read it (``training.run.frozen_teacher_cache``)."""
    from voxface.encoders.registry import build_face_encoder
    from voxface.training.run import frozen_teacher_cache, training_manifests

    if not (config.face.frozen and config.face.cache):
        return  # each run embeds its faces itself
    config = copy.deepcopy(config)
    config.trainer.progress = progress
    frozen_teacher_cache(config, build_face_encoder(config.face.encoder, config.face.weights),
                         training_manifests(config))


def extract_stores(config: TrainConfig, progress: bool = False) -> None:
    """Both feature stores a benchmark trains on, extracted with the encoders its configuration names (a finished
    store is reused; ``features.extract_features``)."""
    from voxface.features import extract_features

    for encoder, weights, store in ((config.face.encoder, config.face.weights, config.features.face),
                                    (config.audio.encoder, config.audio.weights, config.features.voice)):
        extract_features(encoder, weights, config.data.root, store, progress=progress,
                         audio_dir=config.data.audio_dir, faces_dir=config.data.faces_dir)


def check_continues(run: PlannedRun) -> None:
    """Stop (``ConfigError``, in the benchmark's words: nobody asked for --resume) when ``run``'s folder holds a run
    made with settings a continued run may not change; the benchmark would continue it (``train_once``)."""
    import yaml

    from voxface.training.config import absolute_locations
    from voxface.training.run import resume_conflict

    saved = run.folder / "config.yaml"
    if not (run.folder / "checkpoints" / "last.ckpt").is_file() or not saved.is_file():
        return
    try:
        recorded = yaml.safe_load(saved.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"{run.method} (seed {run.seed}): {saved} cannot be read ({err}); delete {run.folder} to "
                          "train that run afresh") from None
    conflict = resume_conflict(recorded or {}, absolute_locations(run.config))
    if conflict:
        name, was, now = conflict
        raise ConfigError(f"{run.method} (seed {run.seed}): {run.folder} holds a run made with {name}={was!r}, not "
                          f"{now!r}; a benchmark continues the runs in its folder with their own settings: give "
                          f"another --out for other settings, or delete {run.folder} to train that run afresh")


def train_once(run: PlannedRun) -> dict[str, Any]:
    """Train one planned run, or continue it from its last checkpoint, or reuse it when finished."""
    from voxface.training.config import absolute_locations
    from voxface.training.run import resume_conflict, train

    done, saved = run.folder / "run.json", run.folder / "config.yaml"
    if done.is_file() and saved.is_file() and json.loads(done.read_text()).get("finished"):
        import yaml

        # reused when it would continue with the same length: the settings a continued run keeps are the same, and
        # only where files are may differ (a moved checkout, data root or stores), as for continuing
        recorded, planned = yaml.safe_load(saved.read_text()) or {}, absolute_locations(run.config)
        length = {k: recorded.get("trainer", {}).get(k) for k in ("epochs", "max_steps")}
        if resume_conflict(recorded, planned) is None and length == {"epochs": planned.trainer.epochs,
                                                                        "max_steps": planned.trainer.max_steps}:
            return json.loads(done.read_text())
    # otherwise train, or continue (only with the run's own settings, but for its length)
    check_continues(run)
    summary = train(run.config, resume=(run.folder / "checkpoints" / "last.ckpt").is_file())
    if summary.get("interrupted"):
        raise KeyboardInterrupt  # Ctrl-C: the run keeps its last checkpoint; the benchmark stops there
    return summary


def evaluate_once(run: PlannedRun, decomposition: bool = False) -> dict[str, Any]:
    """Score a trained run's best checkpoint (chosen on validation AUC) on every list, from the stores, into
    ``benchmark_eval.json`` and each list's per-trial cosines into ``benchmark_scores.npz`` (``read_scores``); reuse
    both while the checkpoint is the same file."""
    from voxface.evaluation.checkpoint import checkpoint_sha256
    from voxface.evaluation.evaluate import evaluate

    checkpoint = run.folder / "checkpoints" / "best.ckpt"
    if not checkpoint.is_file():
        raise ConfigError(f"{run.method} (seed {run.seed}): {checkpoint} does not exist; the run never validated")
    config = run.config
    digest, lists = checkpoint_sha256(checkpoint), _lists_stamp(config.data.lists)
    stored = run.folder / EVAL_FILE
    if stored.is_file():
        saved = json.loads(stored.read_text())
        if saved.get("checkpoint_sha256") == digest and saved.get("lists") == lists and (
                not decomposition or "decomposition" in saved) and _scores_stamp(run.folder) == digest:
            return saved
    try:
        result = evaluate(checkpoint, config.data.root, config.data.lists, audio_dir=config.data.audio_dir,
                          faces_dir=config.data.faces_dir, bootstrap=0, decomposition=decomposition, workers=0)
    except VoxfaceError as err:  # evaluate's hint names its own option, which a benchmark does not have
        raise type(err)(f"{run.method}: {str(err).split('; pass --skip-missing')[0]}") from None
    record = {"method": run.method, "seed": run.seed, "checkpoint_sha256": digest, "lists": lists,
              **result.to_json()}
    write_scores(run.folder / SCORES_FILE, result.scores, result.trial_rows, digest)
    stored.write_text(json.dumps(record, indent=1))
    return record


def write_scores(path: Path, scores: dict[str, tuple[np.ndarray, np.ndarray]], rows: dict[str, np.ndarray],
                 digest: str) -> None:
    """Each list's scored trials into one ``.npz``: ``<list>.rows`` (the trials' indices in the list, int32),
    ``<list>.labels`` (bool) and ``<list>.scores`` (cosines, float32: about 5 bytes a trial), with the checkpoint's
    digest they came from."""
    arrays: dict[str, np.ndarray] = {"checkpoint_sha256": np.array(digest)}
    for name, (labels, values) in scores.items():
        arrays[f"{name}.rows"] = np.asarray(rows[name], dtype=np.int32)
        arrays[f"{name}.labels"] = np.asarray(labels, dtype=bool)
        arrays[f"{name}.scores"] = np.asarray(values, dtype=np.float32)
    partial = path.with_suffix(".partial.npz")
    np.savez_compressed(partial, **arrays)
    partial.replace(path)


def _scores_stamp(folder: Path) -> str | None:
    """The checkpoint digest a run folder's stored scores came from; None without readable scores."""
    try:
        with np.load(folder / SCORES_FILE) as stored:
            return str(stored["checkpoint_sha256"])
    except (OSError, KeyError, ValueError):
        return None


def read_scores(folder: str | Path, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """A run's stored scores of list ``name``: (trial indices, labels, cosines); None when it scored none."""
    with np.load(Path(folder) / SCORES_FILE) as stored:
        if f"{name}.rows" not in stored:
            return None
        return stored[f"{name}.rows"], stored[f"{name}.labels"], stored[f"{name}.scores"].astype(np.float64)


def _run_one(run: PlannedRun, decomposition: bool) -> tuple[dict[str, Any], float, float]:
    """Train (or reuse) and evaluate one run: (its evaluation record, seconds training, seconds in all). A tuning
    trial is trained only (its record holds what validation said)."""
    start = time.perf_counter()
    summary = train_once(run)
    trained = time.perf_counter() - start
    record = evaluate_once(run, decomposition=decomposition) if run.trial is None else {}
    record["best_val_auc"], record["steps"] = summary.get("best_val_auc"), summary.get("steps")
    return record, trained, time.perf_counter() - start


def _worker_start(threads: int) -> None:
    """A benchmark worker process: its share of the cores, the parent's quiet logging, and Ctrl-C left to the
    parent (which stops every worker at once: a worker finishing its run first made one Ctrl-C wait for the queue)."""
    import signal

    import torch

    from voxface.training.quiet import quiet_lightning

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(threads)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    quiet_lightning()


def failure_line(run: PlannedRun, err: Exception) -> str:
    """A run's failure in one line, naming the run: a VoxfaceError's own message, else the exception's first line."""
    said = str(err).strip().splitlines()[0] if str(err).strip() else ""
    if isinstance(err, VoxfaceError):
        return said if said.startswith(f"{run.method}") else f"{run.method} (seed {run.seed}): {said}"
    return (f"{run.method} (seed {run.seed}) failed: {type(err).__name__}{': ' + said if said else ''} (voxface -v "
            "benchmark ... shows the traceback)")


def _child(runs: list[PlannedRun], tasks: Any, finished: Any, threads: int) -> None:
    """A worker process: runs taken from ``tasks`` (indices; None ends it) one after another, ``(index, None, None)``
    put on ``finished`` when a run is trained and evaluated (what it made is read back from its folder). A run that
    fails puts ``(index, its one line, the traceback)`` and ends the worker: the parent stops the benchmark."""
    import traceback

    _worker_start(threads)
    while (index := tasks.get()) is not None:
        try:
            _run_one(runs[index], index == 0)
        except Exception as err:  # the parent says it in one line; a bug's traceback goes with it for -v
            finished.put((index, failure_line(runs[index], err),
                          None if isinstance(err, VoxfaceError) else traceback.format_exc()))
            return
        finished.put((index, None, None))


def _run_in_processes(runs: list[PlannedRun], jobs: int, done: Any) -> None:
    """The runs shared among ``jobs`` spawned processes, each taking the next run when it is free and paying its
    imports once; ``done(run, record, trained, seconds)`` as each run ends. Ctrl-C or a failed process stops every
    process at once (the workers ignore Ctrl-C: the parent decides)."""
    import multiprocessing
    import os
    import queue

    context = multiprocessing.get_context("spawn")  # a forked copy of a process with running OpenMP pools can hang
    threads = max(1, (os.cpu_count() or 1) // jobs)
    tasks, finished = context.Queue(), context.Queue()
    for index in range(len(runs)):
        tasks.put(index)
    workers = [context.Process(target=_child, args=(runs, tasks, finished, threads), daemon=True)
               for _ in range(min(jobs, len(runs)))]
    for _ in workers:
        tasks.put(None)
    start, left = time.perf_counter(), len(runs)
    try:
        for worker in workers:
            worker.start()
        while left:
            try:
                index, failure, trace = finished.get(timeout=0.5)
            except queue.Empty:  # a worker that ended without a word: killed (out of memory?) or crashed
                failed = [w for w in workers if w.exitcode not in (None, 0)]
                if failed or all(w.exitcode == 0 for w in workers):
                    raise VoxfaceError(f"a worker process failed (exit code {failed[0].exitcode if failed else 0}); "
                                       "run the benchmark with --jobs 1 to see why") from None
                continue
            if failure is not None:  # the first failure, in its one line; the other workers are stopped below
                if trace:
                    log.debug("the worker's traceback:\n%s", trace)
                raise VoxfaceError(failure)
            run, left = runs[index], left - 1
            summary = json.loads((run.folder / "run.json").read_text())
            record = json.loads((run.folder / EVAL_FILE).read_text()) if run.trial is None else {}
            record["best_val_auc"], record["steps"] = summary.get("best_val_auc"), summary.get("steps")
            done(run, record, summary.get("seconds", 0.0), time.perf_counter() - start)
        for worker in workers:
            worker.join()
    except BaseException:
        for worker in workers:
            if worker.is_alive():
                worker.terminate()
        for worker in workers:
            if worker.pid is not None:
                worker.join()
        raise


def _lists_stamp(lists: str | Path) -> str:
    """Which lists an evaluation read: the protocol folder's files, by name, size and modification time."""
    import hashlib

    from voxface.protocol.lists import load_protocol

    root = load_protocol(lists).root
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        stat = path.stat()
        digest.update(f"{path.relative_to(root)}\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def run_benchmark(out: str | Path, config_set: str = "voxsynth", methods: list[str] | None = None, seeds: int = 1,
                  overrides: list[str] | tuple[str, ...] = (), progress: bool = False, jobs: int = 1,
                  say: Any = print, tune: int = 0, media: bool = False) -> dict[str, Any]:
    """Extract the stores, train and evaluate every planned run (module docstring), write the tables; returns
    ``benchmark.json``'s content. ``media``: the end-to-end track instead, into ``out/media`` (``track_folder``):
    no stores; the teacher cache is made first; beside its tables, the features track's of ``out`` where there.

    ``overrides``: ``key=value`` settings applied to every method's configuration, as on the command line. Outside the
    demo's folders ``data.root``, ``data.lists``, ``face.weights`` and ``audio.weights`` are needed; the stores go to
    ``out/features`` unless ``features.face`` / ``features.voice`` name them. ``methods``: names, or one string of
    names separated by commas; None for every registered method. ``jobs``: runs at once, each in its own process
    with its share of the cores (the heads on stored features are small: one run keeps about one core busy); the
    processes are spawned, so a script calling this with ``jobs > 1`` needs an ``if __name__ == "__main__":`` guard.
    Numbers depend on the threads a run gets: compare benchmarks made with the same ``jobs`` on the same machine.
    ``tune``: 0 trains each method's shipped configuration; N > 0 first trains N configurations per method drawn
    from its search space (``tuning``) into ``out/tune/<method>/trial<k>``, keeps the one of best validation AUC,
    and trains that one with the seeds into ``out/tune/<method>/seed<k>``.
    Raises ``ConfigError`` (module docstring's refusals, a missing path, a bad search space), ``KeyboardInterrupt``
    on Ctrl-C (each run keeps its last checkpoint; run again to continue).

    Example:
        >>> table = run_benchmark("runs/bench", methods="pins,dimnet", overrides=[  # doctest: +SKIP
        ...     "data.root=runs/demo/voxsynth", "data.lists=runs/demo/voxsynth/protocol",
        ...     "face.weights=runs/demo/teacher/backbone.pth",
        ...     "audio.weights=runs/demo/voice_prior/embedding_model.ckpt"])
        >>> table["methods"]["dimnet"]["verification"]["random_unseenunheard"]["mean"]  # doctest: +SKIP
        71.1
    """

    out = Path(out)
    if jobs < 1:
        raise ConfigError(f"--jobs must be at least 1, got {jobs}")
    folder = track_folder(out, media)
    overrides = cache_overrides(folder, overrides) if media else store_overrides(out, overrides)
    def shown(planned: list[PlannedRun]) -> list[PlannedRun]:  # one progress bar at a time, and none when quiet
        for run in planned:
            run.config.trainer.progress = progress and jobs == 1
        return planned

    runs = shown(plan(folder, config_set, methods, seeds, overrides, media=media))
    names = list(dict.fromkeys(run.method for run in runs))
    trials = shown(plan_trials(folder, config_set, names, tune, overrides, media=media))
    first = runs[0].config
    for what, path in (("data.root", first.data.root), ("face.weights", first.face.weights),
                       ("audio.weights", first.audio.weights)):
        if not path or not Path(path).exists():
            raise ConfigError(f"{what} {path or '(none)'} does not exist: give it as an override ({what}=PATH)")
    # What every run would refuse, refused here once, before any extraction or worker: run folders that hold other
    # settings, and the data (every run trains on the same root, lists and stores: plan() checks that).
    from voxface.training.run import training_manifests

    for run in trials or runs:
        check_continues(run)
    training_manifests(first)
    started = time.perf_counter()
    if media:
        prepare_teacher_cache(first, progress)
    else:
        extract_stores(first, progress)  # refuses stores made otherwise than the configurations say, here too
    timings = {"teacher_cache" if media else "features": round(time.perf_counter() - started, 1)}
    selections: dict[str, dict[str, Any]] = {}
    if trials:
        say(f"  tuning: {tune} configurations per method, kept by validation AUC")

        def tried(run: PlannedRun, record: dict[str, Any], trained: float, seconds: float) -> None:
            timings[f"{run.method}/trial{run.trial}"] = round(seconds, 1)
            say(f"  {run.method} (trial {run.trial}: {describe(run.values)}): trained {trained:.1f} s, best val AUC "
                f"{_fmt(record['best_val_auc'], 3)}")

        _execute(trials, jobs, tried)
        # Each method's choice reads its trials' run.json (validation AUC) and nothing else: no list is scored yet.
        for name in names:
            mine = [t for t in trials if t.method == name]
            selections[name] = select_trial(name, [t.folder for t in mine], [t.values for t in mine],
                                            folder / "tune" / name / SELECTION_FILE)
            say(f"  {name}: trial {selections[name]['chosen']} chosen ({describe(selections[name]['values'])})")
        runs = shown(plan(folder, config_set, names, seeds, overrides, tuned={n: sel["values"] for n, sel in
                                                                              selections.items()}, media=media))
        for run in runs:
            check_continues(run)
    results: dict[tuple[str, int], dict[str, Any]] = {}

    def done(run: PlannedRun, record: dict[str, Any], trained: float, seconds: float) -> None:
        results[(run.method, run.seed)] = record
        timings[f"{run.method}/seed{run.seed}"] = round(seconds, 1)
        auc = record["verification"].get(BAR_LIST, {})
        say(f"  {run.method} (seed {run.seed}): trained {trained:.1f} s, best val AUC "
            f"{_fmt(record['best_val_auc'], 3)}, random unseen-unheard AUC {_fmt(auc.get('auc'), 3)} "
            f"(95% CI {_interval(auc.get('auc_ci95'))})")

    _execute(runs, jobs, done)
    timings["total"] = round(time.perf_counter() - started, 1)
    grouped: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        grouped.setdefault(run.method, []).append(results[(run.method, run.seed)])
    table = benchmark_table(grouped, first, config_set, seeds)
    tests = significance(table["methods"], runs)
    for name, row in table["methods"].items():
        row["configuration"] = next(run.values for run in runs if run.method == name)
        row["significance"] = {key: tested[name] for key, tested in tests.items() if name in tested}
        if name in selections:
            row["tuning"] = {k: selections[name][k] for k in ("trials", "chosen", "by", "seed")} | {
                "val_auc": [t["best_val_auc"] for t in selections[name]["tried"]]}
    steps = sorted({r.get("steps") for records in grouped.values() for r in records} - {None})
    table["budget"] = {"batch_size": first.optim.batch_size, "epochs": first.trainer.epochs,
                       "max_steps": first.trainer.max_steps, "steps": steps[0] if len(steps) == 1 else steps}
    table["tune"] = tune
    table["seconds"] = timings
    table["jobs"] = jobs
    table["track"] = MEDIA if media else "features"
    write_benchmark(table, folder)
    if media:
        write_tracks_beside(table, out / "benchmark.json", folder / "benchmark.md")
    return table


def _execute(runs: list[PlannedRun], jobs: int, done: Any) -> None:
    """Train (and, but for tuning trials, evaluate) ``runs``, one after another or in ``jobs`` processes;
    ``done(run, record, trained, seconds)`` as each ends. The data reference (true knobs, VoxSynth) does not depend
    on the method: it is fitted once, with the first run's evaluation."""
    if jobs == 1:
        for index, run in enumerate(runs):
            done(run, *_run_one(run, index == 0))
    else:
        _run_in_processes(runs, jobs, done)


# ---------------------------------------------------------------- paired tests between rows


def paired_significance(scores: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]], best: str,
                        alpha: float = ALPHA) -> dict[str, dict[str, Any]]:
    """Each method against ``best`` on one list: DeLong's paired test of two AUCs on the same trials
    (``metrics.delong_test``), two-sided. ``scores``: method -> its seeds' (trial indices, labels, cosines).

    The test compares seed-averaged scores: each trial's cosine averaged over a method's seeds, then one AUC per
    method on the trials every run scored. Pooling the seeds' scores instead would count each trial once per seed
    as if the seeds had drawn new trials; the trials are what the test samples, so pooled copies would shrink the
    variance about K-fold and call differences significant that another draw of trials would not repeat. Averaging
    keeps one observation per trial (with one seed it is that seed's own scores).

    Returns method -> ``{"best", "difference"`` (AUC(method) - AUC(best), percent points, on the averaged scores)
    ``, "p"`` (two-sided) ``, "tied"`` (not significantly below the best: p >= ``alpha`` or not below it; the best
    row is tied with itself) ``, "trials"}``. ``ValueError`` when two runs' labels of the same trial disagree (not
    one list)."""
    from functools import reduce

    from voxface.metrics import delong_test

    common = reduce(np.intersect1d, [rows for seeds in scores.values() for rows, _, _ in seeds])

    def averaged(seeds: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
        labels, total = None, np.zeros(len(common))
        for rows, truth, values in seeds:
            index = np.searchsorted(rows, common)  # rows ascend (evaluate keeps trials in list order)
            if labels is not None and not np.array_equal(labels, truth[index]):
                raise ValueError("two runs give the same trial different labels: their scores are not of one list")
            labels, total = truth[index], total + values[index]
        return labels, total / len(seeds)

    truth, reference = averaged(scores[best])
    tested = {}
    for method, seeds in scores.items():
        labels, mine = averaged(seeds)
        if not np.array_equal(labels, truth):
            raise ValueError(f"{method} and {best} give the same trial different labels: their scores are not of one "
                             "list")
        difference, p = (0.0, 1.0) if method == best else delong_test(labels, mine, reference)
        tested[method] = {"best": best, "difference": 100 * difference, "p": p,
                          "tied": method == best or not (difference < 0 and p < alpha), "trials": int(len(common))}
    return tested


def significance(rows: dict[str, dict[str, Any]], runs: list[PlannedRun]) -> dict[str, dict[str, dict[str, Any]]]:
    """``paired_significance`` on each of ``SIGNIFICANCE_LISTS`` against the row of best mean AUC there, from the
    evaluated runs' stored scores: list -> method -> its test."""
    tests = {}
    for name in SIGNIFICANCE_LISTS:
        means = {m: row["verification"][name]["mean"] for m, row in rows.items() if name in row["verification"]}
        scores = {m: [read_scores(run.folder, name) for run in runs if run.method == m] for m in means}
        scores = {m: seeds for m, seeds in scores.items() if seeds and all(s is not None for s in seeds)}
        if scores:
            tests[name] = paired_significance(scores, max(scores, key=lambda m: means[m]))
    return tests


# ---------------------------------------------------------------- the tables


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _p(p: float) -> str:
    """A p-value for a table: two significant digits, or an upper bound when tiny."""
    return "< 0.001" if p < 0.001 else f"{p:.2g}"


def _interval(ci: list | None) -> str:
    return "-" if not ci or ci[0] is None else f"{ci[0]:.3f}-{ci[1]:.3f}"


def _mean_sd(values: list[float]) -> dict[str, float]:
    array = np.asarray(values, dtype=np.float64)
    return {"mean": float(array.mean()), "sd": float(array.std(ddof=1)) if len(array) > 1 else 0.0}


def benchmark_table(results: dict[str, list[dict[str, Any]]], config: TrainConfig, config_set: str,
                    seeds: int) -> dict[str, Any]:
    """Rows of the benchmark (percent): per method the verification AUC of every list, 1:2 matching accuracy and
    retrieval, each the mean (and sd) over seeds; the bar list's lowest 95% CI bound over seeds; the oracle
    ceiling and the data reference on VoxSynth; the published rows."""
    from voxface.evaluation.report import literature_rows
    from voxface.recipes import published_rows
    from voxface.synth.build import oracle_beside

    rows: dict[str, Any] = {}
    for method, records in results.items():
        cls = METHODS[method]
        verification = {k: _mean_sd([100 * r["verification"][k]["auc"] for r in records])
                        for k in LIST_KEYS if all(k in r["verification"] for r in records)}
        matching = {k: _mean_sd([100 * r["matching"][k]["accuracy"] for r in records])
                    for k in records[0]["matching"] if all(k in r["matching"] for r in records)}
        retrieval = {f"{d} {m}": _mean_sd([100 * r["retrieval"][d][m] for r in records])
                     for d in records[0]["retrieval"] for m in ("mAP", "R@1")}
        bar_ci = [r["verification"].get(BAR_LIST, {}).get("auc_ci95", [None, None]) for r in records]
        g_ci = [r["verification"].get("G_unseenunheard", {}).get("auc_ci95", [None, None]) for r in records]
        lows, highs = [c[0] for c in bar_ci], [c[1] for c in bar_ci]
        g_lows, g_highs = [c[0] for c in g_ci], [c[1] for c in g_ci]
        rows[method] = {"citation": cls.citation or method, "published_as": cls.published_as,
                        "verification": verification, "matching": matching, "retrieval": retrieval,
                        "bar_ci95_low": min(lows) if None not in lows else None,
                        "g_ci95_low": min(g_lows) if None not in g_lows else None,
                        # the highest CI high over seeds: a method lies below chance only where every seed does
                        "bar_ci95_high": max(highs) if None not in highs else None,
                        "g_ci95_high": max(g_highs) if None not in g_highs else None,
                        "best_val_auc": [r.get("best_val_auc") for r in records], "seeds": len(records)}
    references: dict[str, dict[str, float]] = {}
    oracle = oracle_beside(config.data.lists) if str(config.data.lists) != "voxceleb1" else None
    ceiling_ci95: dict[str, list] = {}
    if oracle:
        references[CEILING_REFERENCE] = {k: 100 * oracle["verification_auc"][k] for k in LIST_KEYS
                                         if k in oracle["verification_auc"]}
        ceiling_ci95 = {k: v for k, v in oracle.get("verification_auc_ci95", {}).items() if k in LIST_KEYS}
    decomposition = next((r.get("decomposition", {}) for records in results.values() for r in records
                          if "lists" in r.get("decomposition", {})), {})
    for column, label in (("data_backend", "data reference (true knobs, Gaussian backend)"),
                          ("data_cosine", "data reference (true knobs, CCA cosine)")):
        values = {k: 100 * row[column] for k, row in decomposition.get("lists", {}).items() if column in row}
        if values:
            references[label] = values
    keys = [(t, g) for t in TEST_SETS for g in VERIFICATION_GROUPS]
    sources = {(r.method, r.source): r.split for r in published_rows()}
    published = {f"{name} (published: {split}, {source})": {f"{g}_{t}": v for (t, g), v in zip(keys, values,
                                                                                              strict=True)
                                                            if v is not None}
                 for (name, source), split in sources.items()
                 for values in [literature_rows(source).get(name)] if values}
    return {"set": config_set, "data": str(config.data.root), "lists": str(config.data.lists), "seeds": seeds,
            "features": {"face": str(config.features.face), "voice": str(config.features.voice)},
            "encoders": {"face": f"{config.face.encoder} {config.face.weights}",
                         "voice": f"{config.audio.encoder} {config.audio.weights}"},
            "methods": rows, "references": references, "ceiling_ci95": ceiling_ci95, "published": published,
            "published_same_data": str(config.data.lists) == "voxceleb1"}


def write_benchmark(table: dict[str, Any], out: str | Path) -> list[Path]:
    """benchmark.json, benchmark.csv (one row per method or reference, every list and matching column) and
    benchmark.md."""
    import csv

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "benchmark.json").write_text(json.dumps(table, indent=1))
    methods, several = table["methods"], table["seeds"] > 1
    matching_keys = sorted({k for row in methods.values() for k in row["matching"]})
    retrieval_keys = sorted({k for row in methods.values() for k in row["retrieval"]})
    with (out / "benchmark.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        # percent throughout; with several seeds each column's sd follows it
        stats = ("mean", "sd") if several else ("mean",)

        def named(key: str) -> list[str]:
            return [key] if not several else [key, f"{key}_sd"]

        def cells(values: dict[str, dict[str, float]], keys: list[str]) -> list[str]:
            return [_fmt(values.get(k, {}).get(stat), 2) for k in keys for stat in stats]

        def tests(row: dict[str, Any]) -> list[str]:
            tested = [row.get("significance", {}).get(k) for k in SIGNIFICANCE_LISTS]
            return [c for t in tested for c in (["", "", "", ""] if t is None else [
                t["best"], _fmt(t["difference"], 2), f"{t['p']:.3g}", str(t["tied"]).lower()])]

        writer.writerow(["row", "kind", *(c for k in LIST_KEYS for c in named(k)),
                         "random_unseenunheard_ci95_low_min_over_seeds",
                         *(f"{k}_{c}" for k in SIGNIFICANCE_LISTS
                           for c in ("best", "difference_to_best", "p_vs_best", "tied_with_best")),
                         "configuration", "tuning_chosen_trial", "tuning_val_auc",
                         *(c for k in matching_keys for c in named(f"matching_{k}")),
                         *(c for k in retrieval_keys for c in named(k))])
        for name, row in methods.items():
            low, tuning = row["bar_ci95_low"], row.get("tuning", {})
            writer.writerow([name, "method", *cells(row["verification"], LIST_KEYS),
                             _fmt(None if low is None else 100 * low, 2), *tests(row),
                             describe(row.get("configuration", {})), tuning.get("chosen", ""),
                             " ".join(_fmt(a, 4) for a in tuning.get("val_auc", [])),
                             *cells(row["matching"], matching_keys), *cells(row["retrieval"], retrieval_keys)])
        for kind, group in (("reference", table["references"]), ("published", table["published"])):
            for name, values in group.items():
                writer.writerow([name, kind, *(c for k in LIST_KEYS for c in [_fmt(values.get(k), 2)] + [""] * (
                    len(stats) - 1))])

    def cell(stat: dict[str, float] | None) -> str:
        if stat is None:
            return "lost"
        return f"{stat['mean']:.1f} ± {stat['sd']:.1f}" if several else f"{stat['mean']:.1f}"

    def versus(name: str, row: dict[str, Any], key: str) -> str:
        tested = row.get("significance", {}).get(key)
        if tested is None:
            return "-"
        if tested["best"] == name:
            return "best"
        return f"{'≈ best' if tested['tied'] else 'below'} (p {_p(tested['p'])})"

    budget, tune = table.get("budget", {}), table.get("tune", 0)
    steps = budget.get("steps")
    header = ["method", *(f"U-U {c}" for c in COLUMNS), *(f"S-H {c}" for c in COLUMNS),
              "U-U random 95% CI low" + (" (lowest seed)" if several else ""),
              "vs best, U-U random", "vs best, U-U G"]
    lines = [f"# Every method under the official lists ({table['set']}; {_track_title(table)})", "",
             f"Verification AUC (%), the layout of Sun & Su 2025 Table 2. {_track_sentence(table)}, on the same "
             "identities, with one budget"
             + (f" (batch {budget['batch_size']}, {budget['epochs']} epochs"
                + (f": {steps} optimisation steps" if isinstance(steps, int) else "")
                + "; the benchmark refuses configurations that differ)" if budget else "")
             + ", and kept the checkpoint of best validation AUC; "
             + (f"mean ± sd over {table['seeds']} seeds." if several else "one seed.")
             + (f" Each method's configuration was chosen among {tune} drawn from the search space its "
                "configuration file declares, by validation AUC alone (seed 0), then trained with the seeds."
                if tune else " Each method ran its shipped configuration."), "",
             "vs best: DeLong's paired test (two-sided; each trial's score averaged over the seeds) against the row of "
             f"best mean AUC on that list; ≈ best: not significantly below it (p ≥ {ALPHA}).", "",
             "| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for name, row in methods.items():
        low = row["bar_ci95_low"]
        lines.append(f"| {row['citation']} | " + " | ".join(cell(row["verification"].get(k)) for k in LIST_KEYS)
                     + f" | {_fmt(None if low is None else 100 * low)} | "
                     + " | ".join(versus(name, row, k) for k in SIGNIFICANCE_LISTS) + " |")
    from voxface.synth.oracle import ceiling_notes, ceiling_of

    ceilings = {k: ceiling_of(k, v / 100, table.get("ceiling_ci95", {}).get(k))
                for k, v in table["references"].get(CEILING_REFERENCE, {}).items()}
    for name, values in table["references"].items():
        lines.append(f"| *{name}* | " + " | ".join(
            _fmt(values.get(k)) + (ceilings[k].mark() if name == CEILING_REFERENCE and k in ceilings else "")
            for k in LIST_KEYS) + " | | | |")
    if ceilings and (notes := ceiling_notes(ceilings)):  # decided per list as in every other table
        lines += ["", f"Oracle ceiling: {notes[0].lower()}{notes[1:]}."]
    if table["published"]:
        where = ("the same lists" if table["published_same_data"]
                 else "VoxCeleb1, not these data: for the shape of the comparison only")
        lines += ["", f"Published (each with its split and source; {where}):", "",
                  "| " + " | ".join(header[:1 + len(LIST_KEYS)]) + " |", "|---" * (1 + len(LIST_KEYS)) + "|"]
        lines += [f"| {name} | " + " | ".join(_fmt(values.get(k)) for k in LIST_KEYS) + " |"
                  for name, values in table["published"].items()]
    if any(row.get("configuration") for row in methods.values()):
        chosen = "the configuration tuning chose (trial of best validation AUC)" if tune else "its shipped values"
        lines += ["", f"Configuration of each row: the keys of its search space, {chosen}:", "",
                  "| method | configuration |" + (" trial chosen | validation AUC of each trial |" if tune else ""),
                  "|---|---|" + ("---|---|" if tune else "")]
        for row in methods.values():
            tuning = row.get("tuning")
            lines.append(f"| {row['citation']} | {describe(row.get('configuration', {})) or '-'} |" + (
                f" {tuning['chosen']} of {tuning['trials']} | {' '.join(_fmt(a, 3) for a in tuning['val_auc'])} |"
                if tuning else (" | |" if tune else "")))
    if matching_keys:
        lines += ["", "1:2 matching accuracy (%):", "", "| method | " + " | ".join(matching_keys) + " |",
                  "|---" * (1 + len(matching_keys)) + "|"]
        lines += [f"| {row['citation']} | " + " | ".join(cell(row["matching"].get(k)) for k in matching_keys) + " |"
                  for row in methods.values()]
    if retrieval_keys:
        lines += ["", "Retrieval over the unseen-unheard identities (%):", "",
                  "| method | " + " | ".join(retrieval_keys) + " |", "|---" * (1 + len(retrieval_keys)) + "|"]
        lines += [f"| {row['citation']} | " + " | ".join(cell(row["retrieval"].get(k)) for k in retrieval_keys)
                  + " |" for row in methods.values()]
    (out / "benchmark.md").write_text("\n".join(lines) + "\n")
    return [out / "benchmark.json", out / "benchmark.csv", out / "benchmark.md"]


def _track_title(table: dict[str, Any]) -> str:
    return "end-to-end track" if table.get("track") == MEDIA else "features track"


def _track_sentence(table: dict[str, Any]) -> str:
    """How the rows of a table were trained, in one sentence's start."""
    faces, voices = table["encoders"]["face"], table["encoders"]["voice"]
    if table.get("track") == MEDIA:
        return (f"Every method trained end to end on the media: the face teacher frozen ({faces}), the voice encoder "
                f"fine-tuned from {voices}, the method's own heads and loss")
    return (f"Every method trained heads on both modalities on the same stored features (faces: {faces}; voices: "
            f"{voices})")


def write_tracks_beside(media: dict[str, Any], features_json: str | Path, markdown: str | Path) -> bool:
    """Append to the end-to-end track's ``markdown`` a table of both tracks' verification AUC per method (random and
    G unseen-unheard, each with its change end to end), read from the features track's ``features_json`` when there
    is one of the same set. Returns whether it did."""
    features_json = Path(features_json)
    if not features_json.is_file():
        return False
    features = json.loads(features_json.read_text())
    if features.get("set") != media["set"] or features.get("track", "features") != "features":
        return False
    keys = ("random_unseenunheard", "G_unseenunheard")
    header = ["method", *(f"{track} {k.split('_')[0]} U-U" for k in keys for track in ("features", "end to end")),
              *(f"change {k.split('_')[0]} U-U" for k in keys)]
    lines = ["", f"Both tracks, verification AUC (%) on unseen-unheard (the features track: {features_json}, "
             f"{features['seeds']} seed{'s' if features['seeds'] > 1 else ''}):", "",
             "| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for method, row in media["methods"].items():
        before = features["methods"].get(method, {}).get("verification", {})
        now = row["verification"]
        pairs = [(before.get(k, {}).get("mean"), now.get(k, {}).get("mean")) for k in keys]
        changes = [None if a is None or b is None else b - a for a, b in pairs]
        lines.append(f"| {row['citation']} | " + " | ".join(_fmt(v) for pair in pairs for v in pair) + " | "
                     + " | ".join("-" if c is None else f"{c:+.1f}" for c in changes) + " |")
    with Path(markdown).open("a") as handle:
        handle.write("\n".join(lines) + "\n")
    return True
