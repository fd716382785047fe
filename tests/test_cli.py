"""The ``voxface`` command line itself: what it says about itself."""

import subprocess
import sys

import pytest

import voxface
from voxface.cli import main


def test_version_prints_the_package_version(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["--version"])
    assert caught.value.code == 0
    assert capsys.readouterr().out == f"voxface {voxface.__version__}\n"
    # as a researcher types it: python -m voxface --version
    done = subprocess.run([sys.executable, "-m", "voxface", "--version"], capture_output=True, text=True, check=True)
    assert done.stdout == f"voxface {voxface.__version__}\n" and not done.stderr
