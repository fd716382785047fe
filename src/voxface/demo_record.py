"""What a ``voxface demo`` folder records of its own settings (``RUN/demo.json``), for the commands that continue
from it: ``voxface train|evaluate|benchmark --demo RUN``.

The demo writes the record once its data and priors are settled, before its first training run: the data root
and lists, the face and voice weights (the shipped release priors or the ones it pretrained), the face size, the
training configuration and the overrides its runs and its benchmark were made with (sizes, batch, epochs).
Reading it needs neither torch nor numpy, so a wrong folder is answered at once.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from voxface.errors import ConfigError

RECORD_FILE = "demo.json"


@dataclass(frozen=True)
class DemoRecord:
    """A demo folder's settings (paths absolute, so that they hold from any working folder)."""

    size: str  # the demo's --size ("default", "tiny"), or "custom" for a DemoSize given in Python
    data: str  # the data root (VoxSynth's, or the user's)
    lists: str  # the protocol: a folder, or "voxceleb1"
    face_weights: str  # the face teacher
    voice_weights: str | None  # the voice prior the runs start from; None on the user's own data
    face_size: int | None  # the face size the runs read (the face teacher's input size); None: the config's
    config: str | None  # the training configuration the runs start from (a shipped name, a YAML file; None: defaults)
    train: list[str] = field(default_factory=list)  # the overrides every training run was made with
    benchmark_set: str = "voxsynth"  # voxface benchmark --set
    benchmark: list[str] = field(default_factory=list)  # the overrides of the demo's voxface benchmark

    def save(self, folder: str | Path) -> Path:
        path = Path(folder) / RECORD_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=1) + "\n")
        return path


def read_demo(folder: str | Path, flag: str = "--demo") -> DemoRecord:
    """The record of the demo folder ``folder``. ``ConfigError`` in one line, naming ``flag``, when the folder does
    not exist, is no demo folder (no ``demo.json``) or its record cannot be read."""
    folder = Path(folder)
    path = folder / RECORD_FILE
    if not folder.is_dir():
        raise ConfigError(f"{flag} {folder} " + ("is a file; it takes a demo folder (voxface demo --out FOLDER)"
                                                  if folder.exists() else
                                                  f"does not exist; make it with: voxface demo --out {folder}"))
    if not path.is_file():
        raise ConfigError(f"{flag} {folder} is not a demo folder: {path} is missing (voxface demo writes it before "
                          "its first training run; a demo made by an older voxface gets it when run again with its "
                          "own --size)")
    try:
        data = json.loads(path.read_text())
        return DemoRecord(**data)
    except (OSError, ValueError, TypeError) as err:
        raise ConfigError(f"{flag} {folder}: {path} is not a demo record ({type(err).__name__}: {err}); run "
                          f"voxface demo --out {folder} again to write it afresh") from None
