"""Recipes: data that stand beside the library rather than in its code.

``published.csv`` holds published verification figures, one AUC per row, each with where it was published and
on which identity split, so that a report sets a run beside figures of the same protocol only. Columns:

- ``method``: the row's label in a report (``Sun & Su 2025`` is the paper voxface reproduces);
- ``venue_year``: where the method was published (empty where the citing table leaves it unclear: Sun & Su's
  reference for ADSM, [10], is Nagrani et al., CVPR 2018, a paper of another name);
- ``source``: the table the figure is read from (``Sun & Su 2025 Table 2``);
- ``split``: the identity split of the lists (``PINs 901/100/250``: Learnable PINs' train/val/test identities
  of VoxCeleb1, the lists ``voxface`` ships);
- ``test_set``: ``unseenunheard`` or ``seenheard``; ``group``: ``random``, ``G``, ``N``, ``A`` or ``GNA``;
- ``auc_percent``: the verification AUC in percent.

>>> rows = published_rows()
>>> [(r.method, r.test_set, r.group, r.auc_percent) for r in rows[:2]]
[('PINs', 'unseenunheard', 'random', 78.5), ('PINs', 'unseenunheard', 'G', 61.1)]
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from voxface.errors import ConfigError
from voxface.protocol.lists import TEST_SETS, VERIFICATION_GROUPS

PUBLISHED = Path(__file__).with_name("published.csv")
COLUMNS = ("method", "venue_year", "source", "split", "test_set", "group", "auc_percent")


@dataclass(frozen=True)
class PublishedRow:
    """One published AUC (module docstring)."""

    method: str
    venue_year: str
    source: str
    split: str
    test_set: str
    group: str
    auc_percent: float


def published_rows(path: str | Path = PUBLISHED) -> list[PublishedRow]:
    """The rows of a published-figures CSV (``published.csv`` by default), in file order. Raises ``ConfigError``
    naming the file and line where a column is missing, a test set or group is unknown, or an AUC is not a
    percentage."""
    path = Path(path)
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ConfigError(f"{path}: the header lacks {', '.join(missing)}; it needs {','.join(COLUMNS)}")
        rows = []
        for line, record in enumerate(reader, start=2):
            where = f"{path}, line {line}"
            if record["test_set"] not in TEST_SETS or record["group"] not in VERIFICATION_GROUPS:
                raise ConfigError(f"{where}: test_set must be one of {', '.join(TEST_SETS)} and group one of "
                                  f"{', '.join(VERIFICATION_GROUPS)}, got {record['test_set']!r} and "
                                  f"{record['group']!r}")
            try:
                auc = float(record["auc_percent"])
            except (TypeError, ValueError):
                auc = float("nan")
            if not 0 <= auc <= 100:
                raise ConfigError(f"{where}: auc_percent must be a number from 0 to 100, got {record['auc_percent']!r}")
            rows.append(PublishedRow(*(record[c] for c in COLUMNS[:-1]), auc))
    return rows
