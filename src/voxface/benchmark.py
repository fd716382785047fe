"""``voxface benchmark``: every method trained and scored the same way, under the official lists (issue 24).

For each registered method (or those named) and each seed, the method's shipped configuration
``<set>/peers/<method>`` (``src/voxface/configs``; ``--set voxsynth`` or ``voxceleb1``) is trained in feature mode
on one pair of feature stores, so every method sees the same frozen face and voice encoders, the same identities,
batch size, epochs and seed, and differs only in its heads and loss. The checkpoint kept is the one with the best
validation-identity AUC (``best.ckpt``): no test list is read before the evaluation that follows. Each is then
scored on every official list: verification AUC with DeLong's 95% interval, EER, 1:2 matching and retrieval.

Into ``--out``:

- ``features/faces``, ``features/voices``: the stores, extracted once with the encoders the configurations name
  (unless the configurations point elsewhere); reused when finished;
- ``runs/<method>/seed<k>/``: each training run (``voxface train``'s folder) and its ``benchmark_eval.json``;
- ``benchmark.md``, ``benchmark.json``, ``benchmark.csv``: Table 2 with a row per method (mean ± sd over seeds
  where there are several), on VoxSynth the oracle ceiling and the data reference (scorers fitted on the true
  generative knobs: what the data allow), the published VoxCeleb1 rows (marked with split and source), then
  1:2 matching and retrieval.

Resumable: a finished run and its evaluation are reused, an interrupted run continues from its ``last.ckpt``.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from voxface.errors import ConfigError, VoxfaceError
from voxface.methods import METHODS
from voxface.protocol.lists import TEST_SETS, VERIFICATION_GROUPS
from voxface.training.config import PACKAGED_CONFIGS, TrainConfig, load_config

log = logging.getLogger("voxface")

CONFIG_SETS = ("voxsynth", "voxceleb1")
COLUMNS = ("U", "G", "N", "A", "GNA")
LIST_KEYS = [f"{g}_{t}" for t in TEST_SETS for g in VERIFICATION_GROUPS]
BAR_LIST = "random_unseenunheard"  # the bar: every method's 95% CI low above chance here
EVAL_FILE = "benchmark_eval.json"
# what every method must share for the comparison to be one: the data, the lists and the stored features
SHARED = ("data.root", "data.lists", "data.audio_dir", "data.faces_dir", "face.encoder", "face.weights",
          "audio.encoder", "audio.weights", "features.face", "features.voice")


def peer_configs(config_set: str) -> dict[str, str]:
    """Method name -> its shipped benchmark configuration name in ``config_set`` (``voxsynth/peers/pins``)."""
    if config_set not in CONFIG_SETS:
        raise ConfigError(f"--set must be one of {', '.join(CONFIG_SETS)}, got {config_set!r}")
    folder = PACKAGED_CONFIGS / config_set / "peers"
    return {p.stem: f"{config_set}/peers/{p.stem}" for p in sorted(folder.glob("*.yaml")) if p.stem != "base"}


def _value(config: TrainConfig, dotted: str) -> Any:
    value: Any = config
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


@dataclass
class PlannedRun:
    method: str
    seed: int
    config: TrainConfig

    @property
    def folder(self) -> Path:
        return Path(self.config.trainer.out)


def plan(out: str | Path, config_set: str = "voxsynth", methods: list[str] | None = None, seeds: int = 1,
         overrides: list[str] | tuple[str, ...] = ()) -> list[PlannedRun]:
    """The runs of a benchmark: each method's configuration with ``overrides`` on top, one per seed (0..seeds-1),
    each into ``out/runs/<method>/seed<k>``. ``ConfigError`` for an unknown method, a method without a shipped
    configuration in the set, fewer than one seed, or methods that would not share one data root and one feature
    store."""
    shipped = peer_configs(config_set)
    if isinstance(methods, str):  # "pins,dimnet", as the command line takes it
        methods = [m.strip() for m in methods.split(",")]
    if methods is not None and not [m for m in methods if m]:
        raise ConfigError("--methods names no method; give names separated by commas, or leave it out for all")
    names = [m for m in methods if m] if methods else sorted(METHODS)
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
    for name in names:
        for seed in range(seeds):
            folder = Path(out) / "runs" / name / f"seed{seed}"
            try:
                config = load_config(shipped[name], [*overrides, f"trainer.out={folder}", f"trainer.seed={seed}"],
                                     check_paths=False)
            except ConfigError as err:  # an override one method takes and another does not: say whose
                raise ConfigError(f"method {name}: {err}") from None
            runs.append(PlannedRun(name, seed, config))
    first = runs[0].config
    for run in runs[1:]:
        for key in SHARED:
            if _value(run.config, key) != _value(first, key):
                raise ConfigError(f"{run.method}'s configuration sets {key} to {_value(run.config, key)!r} where "
                                  f"{runs[0].method}'s has {_value(first, key)!r}: a benchmark trains every method on "
                                  "one data root and one feature store")
    if not first.feature_mode:
        raise ConfigError(f"{config_set}/peers/{runs[0].method}: the benchmark trains on feature stores; set "
                          "features.face and features.voice")
    return runs


def store_overrides(out: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> list[str]:
    """``overrides`` with the stores in the benchmark's own folder (``out/features/faces``, ``out/features/voices``)
    unless they name them."""
    named = {item.split("=", 1)[0].strip() for item in overrides}
    extra = [f"features.{side}={Path(out) / 'features' / folder}"
             for side, folder in (("face", "faces"), ("voice", "voices")) if f"features.{side}" not in named]
    return [*overrides, *extra]


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
    from voxface.training.run import train

    done, saved = run.folder / "run.json", run.folder / "config.yaml"
    if done.is_file() and saved.is_file() and json.loads(done.read_text()).get("finished"):
        import yaml

        planned = absolute_locations(run.config).to_dict()
        if _comparable(yaml.safe_load(saved.read_text())) == _comparable(planned):
            return json.loads(done.read_text())
    # otherwise train, or continue (only with the run's own settings, but for its length)
    check_continues(run)
    summary = train(run.config, resume=(run.folder / "checkpoints" / "last.ckpt").is_file())
    if summary.get("interrupted"):
        raise KeyboardInterrupt  # Ctrl-C: the run keeps its last checkpoint; the benchmark stops there
    return summary


def _comparable(config: dict[str, Any]) -> dict[str, Any]:
    """A run's settings without how it is shown (a finished run is reused only when the rest is the same)."""
    return {**config, "trainer": {k: v for k, v in config.get("trainer", {}).items() if k != "progress"}}


def evaluate_once(run: PlannedRun, decomposition: bool = False) -> dict[str, Any]:
    """Score a trained run's best checkpoint (chosen on validation AUC) on every list, from the stores; reuse the
    stored result while the checkpoint is the same file."""
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
                not decomposition or "decomposition" in saved):
            return saved
    try:
        result = evaluate(checkpoint, config.data.root, config.data.lists, audio_dir=config.data.audio_dir,
                          faces_dir=config.data.faces_dir, bootstrap=0, decomposition=decomposition, workers=0)
    except VoxfaceError as err:  # evaluate's hint names its own option, which a benchmark does not have
        raise type(err)(f"{run.method}: {str(err).split('; pass --skip-missing')[0]}") from None
    record = {"method": run.method, "seed": run.seed, "checkpoint_sha256": digest, "lists": lists,
              **result.to_json()}
    stored.write_text(json.dumps(record, indent=1))
    return record


def _run_one(run: PlannedRun, decomposition: bool) -> tuple[dict[str, Any], float, float]:
    """Train (or reuse) and evaluate one run: (its evaluation record, seconds training, seconds in all)."""
    start = time.perf_counter()
    summary = train_once(run)
    trained = time.perf_counter() - start
    record = evaluate_once(run, decomposition=decomposition)
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
            record = json.loads((run.folder / EVAL_FILE).read_text())
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
                  say: Any = print) -> dict[str, Any]:
    """Extract the stores, train and evaluate every planned run (module docstring), write the tables; returns
    ``benchmark.json``'s content.

    ``overrides``: ``key=value`` settings applied to every method's configuration, as on the command line. Outside the
    demo's folders ``data.root``, ``data.lists``, ``face.weights`` and ``audio.weights`` are needed; the stores go to
    ``out/features`` unless ``features.face`` / ``features.voice`` name them. ``methods``: names, or one string of
    names separated by commas; None for every registered method. ``jobs``: runs at once, each in its own process
    with its share of the cores (the heads on stored features are small: one run keeps about one core busy); the
    processes are spawned, so a script calling this with ``jobs > 1`` needs an ``if __name__ == "__main__":`` guard.
    Numbers depend on the threads a run gets: compare benchmarks made with the same ``jobs`` on the same machine.
    Raises ``ConfigError`` (module docstring's refusals, a missing path), ``KeyboardInterrupt`` on Ctrl-C (each run
    keeps its last checkpoint; run again to continue).

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
    runs = plan(out, config_set, methods, seeds, store_overrides(out, overrides))
    first = runs[0].config
    for what, path in (("data.root", first.data.root), ("face.weights", first.face.weights),
                       ("audio.weights", first.audio.weights)):
        if not path or not Path(path).exists():
            raise ConfigError(f"{what} {path or '(none)'} does not exist: give it as an override ({what}=PATH)")
    # What every run would refuse, refused here once, before any extraction or worker: run folders that hold other
    # settings, and the data (every run trains on the same root, lists and stores: plan() checks that).
    from voxface.training.run import training_manifests

    for run in runs:
        check_continues(run)
    training_manifests(first)
    started = time.perf_counter()
    extract_stores(first, progress)  # refuses stores made otherwise than the configurations say, here too
    timings = {"features": round(time.perf_counter() - started, 1)}
    results: dict[tuple[str, int], dict[str, Any]] = {}

    def done(run: PlannedRun, record: dict[str, Any], trained: float, seconds: float) -> None:
        results[(run.method, run.seed)] = record
        timings[f"{run.method}/seed{run.seed}"] = round(seconds, 1)
        auc = record["verification"].get(BAR_LIST, {})
        say(f"  {run.method} (seed {run.seed}): trained {trained:.1f} s, best val AUC "
            f"{_fmt(record['best_val_auc'], 3)}, random unseen-unheard AUC {_fmt(auc.get('auc'), 3)} "
            f"(95% CI {_interval(auc.get('auc_ci95'))})")

    # the data reference (true knobs, VoxSynth) does not depend on the method: fitted once, with the first run
    if jobs == 1:
        for index, run in enumerate(runs):
            done(run, *_run_one(run, index == 0))
    else:
        _run_in_processes(runs, jobs, done)
    timings["total"] = round(time.perf_counter() - started, 1)
    grouped: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        grouped.setdefault(run.method, []).append(results[(run.method, run.seed)])
    table = benchmark_table(grouped, first, config_set, seeds)
    table["seconds"] = timings
    table["jobs"] = jobs
    write_benchmark(table, out)
    return table


# ---------------------------------------------------------------- the tables


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


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
    if oracle:
        references["oracle ceiling"] = {k: 100 * oracle["verification_auc"][k] for k in LIST_KEYS
                                        if k in oracle["verification_auc"]}
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
            "methods": rows, "references": references, "published": published,
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

        writer.writerow(["row", "kind", *(c for k in LIST_KEYS for c in named(k)),
                         "random_unseenunheard_ci95_low_min_over_seeds",
                         *(c for k in matching_keys for c in named(f"matching_{k}")),
                         *(c for k in retrieval_keys for c in named(k))])
        for name, row in methods.items():
            low = row["bar_ci95_low"]
            writer.writerow([name, "method", *cells(row["verification"], LIST_KEYS),
                             _fmt(None if low is None else 100 * low, 2), *cells(row["matching"], matching_keys),
                             *cells(row["retrieval"], retrieval_keys)])
        for kind, group in (("reference", table["references"]), ("published", table["published"])):
            for name, values in group.items():
                writer.writerow([name, kind, *(c for k in LIST_KEYS for c in [_fmt(values.get(k), 2)] + [""] * (
                    len(stats) - 1))])

    def cell(stat: dict[str, float] | None) -> str:
        if stat is None:
            return "lost"
        return f"{stat['mean']:.1f} ± {stat['sd']:.1f}" if several else f"{stat['mean']:.1f}"

    header = ["method", *(f"U-U {c}" for c in COLUMNS), *(f"S-H {c}" for c in COLUMNS),
              "U-U random 95% CI low" + (" (lowest seed)" if several else "")]
    lines = [f"# Every method under the official lists ({table['set']})", "",
             f"Verification AUC (%), the layout of Sun & Su 2025 Table 2. Every method trained its heads on the same "
             f"stored features (faces: {table['encoders']['face']}; voices: {table['encoders']['voice']}), the same "
             f"identities and budget, and kept the checkpoint of best validation AUC; "
             + (f"mean ± sd over {table['seeds']} seeds." if several else "one seed."), "",
             "| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for row in methods.values():
        low = row["bar_ci95_low"]
        lines.append(f"| {row['citation']} | " + " | ".join(cell(row["verification"].get(k)) for k in LIST_KEYS)
                     + f" | {_fmt(None if low is None else 100 * low)} |")
    for name, values in table["references"].items():
        lines.append(f"| *{name}* | " + " | ".join(_fmt(values.get(k)) for k in LIST_KEYS) + " | |")
    if table["published"]:
        where = ("the same lists" if table["published_same_data"]
                 else "VoxCeleb1, not these data: for the shape of the comparison only")
        lines += ["", f"Published (each with its split and source; {where}):", "",
                  "| " + " | ".join(header[:-1]) + " |", "|---" * (len(header) - 1) + "|"]
        lines += [f"| {name} | " + " | ".join(_fmt(values.get(k)) for k in LIST_KEYS) + " |"
                  for name, values in table["published"].items()]
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
