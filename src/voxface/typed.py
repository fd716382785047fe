"""Strict reading of plain dataclasses from mappings (YAML): what every voxface configuration is built with.

An unknown key fails at once naming the nearest known one; a value of the wrong kind names its key and source.

>>> from dataclasses import dataclass
>>> @dataclass
... class Optim:
...     rate: float = 0.1
>>> build_dataclass(Optim, {"rate": "1e-3"}, "example.yaml")
Optim(rate=0.001)
>>> try:
...     build_dataclass(Optim, {"rat": 1}, "example.yaml")
... except ConfigError as err:
...     print(err)
example.yaml: unknown config key 'rat' (did you mean 'rate'?; known: rate)
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from typing import Any

from voxface.errors import ConfigError


class UnknownConfigKey(ConfigError):
    """A configuration names a key this version does not have (``key``: its dotted name)."""

    def __init__(self, message: str, key: str) -> None:
        super().__init__(message)
        self.key = key


def build_dataclass(cls: type, data: Any, source: str = "config", prefix: str = "") -> Any:
    """``cls`` from the mapping ``data`` (nested dataclasses recursively); ``prefix`` names nested keys in errors."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: '{prefix.rstrip('.') or 'top level'}' must be a mapping, got {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    unknown = [k for k in data if k not in fields]
    if unknown:
        key = prefix + str(unknown[0])
        raise UnknownConfigKey(f"{source}: {unknown_key(key, list(fields))}", key)
    values = {}
    for name, value in data.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            values[name] = build_dataclass(hint, value or {}, source, f"{prefix}{name}.")
        else:
            values[name] = _coerce(hint, value, source, f"{prefix}{name}")
    return cls(**values)


def _coerce(hint: Any, value: Any, source: str, key: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        return None if value is None else _coerce(options[0], value, source, key)
    if origin is dict:  # free-form here (method.args); checked against its own dataclass by the method registry
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: config value {key} must be a mapping, got {value!r}")
        return dict(value)
    if origin is list:
        (item,) = typing.get_args(hint)
        if not isinstance(value, list):
            raise ConfigError(f"{source}: config value {key} must be a list, got {value!r}")
        return [_coerce(item, v, source, f"{key}[{i}]") for i, v in enumerate(value)]
    if hint is float and isinstance(value, str):  # YAML 1.1 reads "1e-3" (no dot) as a string
        try:
            return _finite(float(value), source, key)
        except ValueError:
            pass
    accepted = {bool: (bool,), int: (int,), float: (int, float), str: (str, int, float)}.get(hint, ())
    if isinstance(value, accepted) and (hint is bool or not isinstance(value, bool)):
        return _finite(float(value), source, key) if hint is float else hint(value)
    raise ConfigError(f"{source}: config value {key} must be {getattr(hint, '__name__', hint)}, got {value!r}")


def _finite(value: float, source: str, key: str) -> float:
    """Every float setting is a finite number: NaN or infinity (".nan", "inf") is no meaningful setting, and would
    otherwise surface later as a diverged run; refused here once for every float field of every configuration."""
    if not math.isfinite(value):
        raise ConfigError(f"{source}: config value {key} must be a finite number, got {value}")
    return value


def unknown_key(key: str, known: list[str]) -> str:
    """"unknown config key 'a.b' (did you mean 'a.c'?; known: ...)" with the nearest known name, if any."""
    last = key.rpartition(".")[2]
    near = difflib.get_close_matches(last, known, n=1)
    guess = f"did you mean '{key[: len(key) - len(last)]}{near[0]}'?; " if near else ""
    return f"unknown config key '{key}' ({guess}known: {', '.join(known)})"
