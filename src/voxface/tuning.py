"""Equal tuning for ``voxface benchmark --tune N``: each method's search space, N seeded draws, and the choice of
one on validation AUC alone.

Following Musgrave, Belongie & Lim, "A Metric Learning Reality Check" (ECCV 2020): every method gets the same
number of configurations, drawn from a space around its paper's settings, each trained with the same data and
budget, and the one kept is the best on the validation identities; no test list is read before the final
evaluation. A method's benchmark configuration (``configs/<set>/peers/<method>.yaml``) declares its space in a
top-level ``search:`` section, which training itself ignores. Each entry is a dotted configuration key and how to
draw its value:

.. code-block:: yaml

    search:
      optim.lr_mapping: {log_uniform: [1.0e-4, 1.0e-2]}  # log-uniform between the bounds (both positive)
      method.args.margin: {uniform: [0.2, 1.2]}          # uniform between the bounds
      method.args.tau_every: {uniform: [18, 54]}         # integer bounds: an integer between them, both included
      method.args.hidden: [[64], [128], [256]]           # one of the choices, each equally likely
      method.args.voice_hidden: {same_as: method.args.mapping_hidden}  # the value drawn for another key

A drawn real number is rounded to three significant digits (kept within its bounds), so a table can name it.
What every method shares (the data, the encoders and their stores, the batch and the training length, the seed and
the output folder) is no method's to tune.
"""

from __future__ import annotations

import json
import math
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from voxface.errors import ConfigError, OverrideError

TUNE_SEED = 0  # the draws' seed: with a method's name and the trial's number, it fixes each trial's configuration
SELECTION_FILE = "selection.json"
RANGES = ("uniform", "log_uniform")
SHAPES = ("a list of choices, {uniform: [low, high]}, {log_uniform: [low, high]} or {same_as: another.key}")
# keys no search space may hold: what makes the comparison one (the benchmark's shared data and budget)
SHARED_PREFIXES = ("data.", "face.", "audio.", "features.", "trainer.")
SHARED_KEYS = ("optim.batch_size", "method.name")


@dataclass(frozen=True)
class Spec:
    """How one key is drawn: ``kind`` is ``choice`` (``values``: the choices), ``uniform`` or ``log_uniform``
    (``values``: low, high; integers when both are) or ``same_as`` (``values``: the other key)."""

    key: str
    kind: str
    values: tuple[Any, ...]

    @property
    def integer(self) -> bool:
        return self.kind in RANGES and all(isinstance(v, int) and not isinstance(v, bool) for v in self.values)


def override(key: str, value: Any) -> str:
    """``key=value`` with the value written as YAML, as the configuration loader reads overrides."""
    import yaml

    return f"{key}={yaml.safe_dump(value, default_flow_style=True).removesuffix(chr(10) + '...' + chr(10)).strip()}"


def _spec(key: Any, raw: Any, where: str) -> Spec:
    """One entry of a ``search:`` section, its shape checked (not yet its key against the configuration)."""
    if not isinstance(key, str) or not key:
        raise ConfigError(f"{where}: search: {key!r} is no config key; name one as section.key, e.g. "
                          "optim.lr_mapping")
    if key.startswith(SHARED_PREFIXES) or key in SHARED_KEYS:
        raise ConfigError(f"{where}: search: {key} cannot be tuned: every method shares the data, the encoders, the "
                          "batch and the training length; tune the method's own settings (optim.lr_mapping, "
                          "method.args.*)")
    if isinstance(raw, list):
        if not raw:
            raise ConfigError(f"{where}: search: {key} lists no choice; give at least one")
        return Spec(key, "choice", tuple(raw))
    if isinstance(raw, dict) and len(raw) == 1:
        ((kind, bounds),) = raw.items()
        if kind == "same_as":
            if not isinstance(bounds, str) or bounds == key:
                raise ConfigError(f"{where}: search: {key}: same_as must name another key of the space, got "
                                  f"{bounds!r}")
            return Spec(key, "same_as", (bounds,))
        if kind in RANGES:
            numbers = isinstance(bounds, list) and len(bounds) == 2 and all(
                isinstance(b, int | float) and not isinstance(b, bool) and math.isfinite(b) for b in bounds)
            if not numbers or not bounds[0] < bounds[1] or (kind == "log_uniform" and bounds[0] <= 0):
                need = "two positive numbers" if kind == "log_uniform" else "two numbers"
                raise ConfigError(f"{where}: search: {key}: {kind} needs [low, high], {need} with low < high, got "
                                  f"{bounds!r}")
            return Spec(key, kind, tuple(bounds))
    raise ConfigError(f"{where}: search: {key} must be {SHAPES}; got {raw!r}")


def search_space(config: str | Path, check: bool = True) -> dict[str, Spec]:
    """The search space a training configuration (a path or a shipped name) declares in its ``search:`` section,
    key -> ``Spec``; empty when it declares none. With ``check``, every key is set to each of its choices and both
    of its bounds through the configuration loader (all keys at once, turn by turn), so an unknown key fails with
    the nearest known name and a value the method refuses fails naming it. ``ConfigError`` (one line, naming the
    file and the key) for a bad entry."""
    from voxface.training.config import load_config, read_search, resolve_config

    where = str(resolve_config(config))
    space = {key: _spec(key, raw, where) for key, raw in read_search(config).items()}
    for spec in space.values():
        if spec.kind == "same_as" and (spec.values[0] not in space or space[spec.values[0]].kind == "same_as"):
            raise ConfigError(f"{where}: search: {spec.key}: same_as names {spec.values[0]!r}, which the space does "
                              "not draw itself; name a key drawn from choices or a range")
    drawn = [spec for spec in space.values() if spec.kind != "same_as"]
    for turn in range(max((len(spec.values) for spec in drawn), default=0) if check else 0):
        # every key at once at its turn-th choice (or bound); where that fails, each alone, to name the one at fault
        values = {spec.key: spec.values[min(turn, len(spec.values) - 1)] for spec in drawn}
        values |= {spec.key: values[spec.values[0]] for spec in space.values() if spec.kind == "same_as"}
        try:
            load_config(config, [override(k, v) for k, v in values.items()], check_paths=False)
        except ConfigError as together:
            for key, value in values.items():
                text = override(key, value)
                try:
                    load_config(config, [text], check_paths=False)
                except ConfigError as err:
                    said = err.reason if isinstance(err, OverrideError) else str(err)
                    raise ConfigError(f"{where}: search: {key}: {said}") from None
            said = together.reason if isinstance(together, OverrideError) else str(together)
            raise ConfigError(f"{where}: search: the values {describe(values)} together: {said}") from None
    return space


def draw(space: dict[str, Spec], method: str, trial: int, seed: int = TUNE_SEED) -> dict[str, Any]:
    """Trial ``trial``'s configuration of ``method``: key -> value, each key drawn from its own generator seeded
    by (``seed``, the method's name, the trial, the key), so a draw depends on neither N nor the other keys."""
    values: dict[str, Any] = {}
    for key, spec in space.items():  # in the file's order, for the tables (each key has its own generator)
        if spec.kind == "same_as":
            values[key] = None  # filled below, in its place
            continue
        rng = np.random.default_rng([seed, zlib.crc32(method.encode()), trial, zlib.crc32(key.encode())])
        if spec.kind == "choice":
            values[key] = spec.values[int(rng.integers(len(spec.values)))]
            continue
        low, high = spec.values
        if spec.kind == "uniform":
            number = rng.uniform(low, high)
        else:
            number = math.exp(rng.uniform(math.log(low), math.log(high)))
        values[key] = (int(min(high, max(low, round(number)))) if spec.integer
                       else min(float(high), max(float(low), float(f"{number:.3g}"))))
    for key, spec in space.items():
        if spec.kind == "same_as":
            values[key] = values[spec.values[0]]
    return values


def configuration(config: Any, keys: list[str] | tuple[str, ...], where: str = "config") -> dict[str, Any]:
    """The values a built ``TrainConfig`` has for dotted ``keys`` (``method.args.x`` included). ``ConfigError``
    naming ``where`` and the nearest known name for a key it does not have."""
    import dataclasses

    from voxface.typed import unknown_key

    values = {}
    for key in keys:
        value: Any = config
        for depth, part in enumerate(key.split(".")):
            known = (list(value) if isinstance(value, dict) else
                     [f.name for f in dataclasses.fields(value)] if dataclasses.is_dataclass(value) else [])
            if part not in known:
                raise ConfigError(f"{where}: search: {unknown_key('.'.join(key.split('.')[:depth + 1]), known)}")
            value = value[part] if isinstance(value, dict) else getattr(value, part)
        values[key] = value
    return values


def describe(values: dict[str, Any]) -> str:
    """A configuration in one line for a table: ``lr_mapping=0.003, temperature=0.12`` (each key's last part, or
    the whole key where two would read the same)."""
    short = [key.rsplit(".", 1)[-1] for key in values]
    return ", ".join(f"{s if short.count(s) == 1 else key}={json.dumps(value)}"
                     for s, (key, value) in zip(short, values.items(), strict=True))


def select(val_aucs: list[float | None]) -> int:
    """The trial kept: the best validation AUC (the first of equals); a trial that never validated (None) is never
    kept. ``ConfigError`` when none validated."""
    scored = [(auc, -k) for k, auc in enumerate(val_aucs) if auc is not None and math.isfinite(auc)]
    if not scored:
        raise ConfigError("no trial validated: none has a best validation AUC to choose by")
    return -max(scored)[1]


def select_trial(method: str, folders: list[Path], values: list[dict[str, Any]],
                 record: Path | None = None) -> dict[str, Any]:
    """Choose among a method's trained trials by their validation AUC (``best_val_auc`` of each folder's
    ``run.json``, nothing else: no evaluation is read), and write the choice to ``record`` when given (the trials,
    their configurations and validation AUCs, the one chosen). Returns that record."""
    aucs = []
    for folder in folders:
        summary = folder / "run.json"
        if not summary.is_file():
            raise ConfigError(f"{method}: {summary} does not exist: that trial never finished; run the benchmark "
                              "again to continue it")
        aucs.append(json.loads(summary.read_text()).get("best_val_auc"))
    try:
        chosen = select(aucs)
    except ConfigError as err:
        raise ConfigError(f"{method}: {err}") from None
    result = {"method": method, "trials": len(folders), "chosen": chosen, "values": values[chosen],
              "by": "best validation AUC", "seed": TUNE_SEED,
              "tried": [{"trial": k, "folder": str(f), "values": v, "best_val_auc": a}
                        for k, (f, v, a) in enumerate(zip(folders, values, aucs, strict=True))]}
    if record is not None:
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps(result, indent=1))
    return result
