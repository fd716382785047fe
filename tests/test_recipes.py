"""Recipes out of the core (issue 23 item 6): published figures are data the report reads, and ship in the wheel."""

import fnmatch
import tomllib
from pathlib import Path

import pytest

import voxface
from voxface.errors import ConfigError
from voxface.evaluation.report import literature_rows
from voxface.recipes import PUBLISHED, published_rows

PACKAGE = Path(voxface.__file__).parent


def test_table2_rows_are_the_papers():
    """Sun & Su 2025 Table 2 (AUC %): unseen-unheard U/G/N/A/GNA, then seen-heard U/G/N/A/GNA."""
    assert literature_rows() == {
        "PINs": [78.5, 61.1, 77.2, 74.9, 58.8, 87.0, 74.2, 85.9, 86.6, 74.0],
        "DIMNet": [83.2, 71.2, 81.9, 78.0, 62.8, 94.7, 89.9, 93.2, 94.8, 87.8],
        "SSNet": [78.8, 62.4, 53.1, 73.5, 51.4, 91.2, 82.5, 89.9, 90.7, 81.8],
        "ADSM": [88.4, 79.3, 83.6, 83.9, 64.7, 95.9, 92.5, 93.9, 95.5, 89.9],
        "Sun & Su 2025": [84.4, 72.2, 84.5, 81.1, 66.6, 95.5, 89.1, 95.7, 95.7, 88.2],
    }
    rows = published_rows()
    assert {(r.source, r.split) for r in rows} == {("Sun & Su 2025 Table 2", "PINs 901/100/250")}
    assert len({(r.method, r.test_set, r.group) for r in rows}) == len(rows) == 50  # no figure twice
    assert literature_rows("another table") == {}


def test_a_bad_published_file_is_one_line_naming_the_line(tmp_path):
    header = "method,venue_year,source,split,test_set,group,auc_percent\n"
    path = tmp_path / "published.csv"
    path.write_text(header + "X,2020,T,S,unseenunheard,random,78.5\nX,2020,T,S,unseenunheard,G,high\n")
    with pytest.raises(ConfigError, match=r"line 3: auc_percent must be a number from 0 to 100, got 'high'"):
        published_rows(path)
    path.write_text(header + "X,2020,T,S,unseen,random,78.5\n")
    with pytest.raises(ConfigError, match="line 2: test_set must be one of"):
        published_rows(path)
    path.write_text("method,auc_percent\nX,78.5\n")
    with pytest.raises(ConfigError, match="the header lacks venue_year, source, split, test_set, group"):
        published_rows(path)


def test_every_data_file_of_the_package_ships_in_the_wheel():
    """pyproject's package-data patterns match every non-Python file under src/voxface (the recipes included)."""
    pyproject = tomllib.loads((PACKAGE.parents[1] / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["voxface"]
    data = [p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*")
            if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts]
    assert PUBLISHED.relative_to(PACKAGE).as_posix() in data
    # setuptools' globs: "*" stays inside one folder
    unshipped = [f for f in data if not any(fnmatch.fnmatch(f, p) and f.count("/") == p.count("/") for p in patterns)]
    assert not unshipped, f"not in [tool.setuptools.package-data]: {unshipped}"
