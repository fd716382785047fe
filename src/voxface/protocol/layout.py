"""Where a VoxCeleb1-layout data set lives on disk.

Audio: ``<audio root>/<id1xxxx>/<ytid>/<5 digits>.wav`` (the released ``wav/`` folder).
Faces: ``<face root>/<VGGFace1 name>/1.6/<ytid>/<frame>.jpg`` (the 1-fps ``unzippedFaces/`` crops).
The trial lists name files relative to these two roots (see ``lists.py``).
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from voxface.errors import ProtocolError
from voxface.formats import AUDIO_SUFFIXES, IMAGE_SUFFIXES

AUDIO_DIR = "wav"
FACES_DIR = "unzippedFaces"
FACE_VERSION_DIR = "1.6"
# Optional beside an identity tree (<root>/<identity>/<image or clip>): each identity's demographics and face
# (or voice) knobs, one row per identity (VoxSynth writes it for teacher_faces and teacher_voices; voxface pretrain
# probes its embedding with it).
IDENTITY_KNOBS_FILE = "identities.csv"


@dataclass(frozen=True)
class DataRoots:
    """The audio root and the face root of one data set."""

    audio: Path
    faces: Path

    @classmethod
    def from_root(cls, root: str | Path, audio_dir: str = AUDIO_DIR, faces_dir: str = FACES_DIR) -> DataRoots:
        """Roots of a data set unpacked as ``ROOT/wav`` and ``ROOT/unzippedFaces`` (or other names). ``ROOT`` may
        not exist yet (a data set about to be generated); ``ProtocolError`` when it is a file, for every command
        that takes a data root."""
        root = Path(root)
        if root.is_file():
            raise ProtocolError(f"data root {root} is a file, not a data folder (one holding {audio_dir}/ and "
                                f"{faces_dir}/)")
        return cls(audio=root / audio_dir, faces=root / faces_dir)

    def voice(self, relative: str) -> Path:
        return self.audio / relative

    def face(self, relative: str) -> Path:
        return self.faces / relative

    def voice_videos(self, vox_id: str, unread: Counter[str] | None = None) -> dict[str, list[str]]:
        """``{ytid: [relative clip paths]}`` of one identity, sorted; empty when it has no audio. ``unread``: add
        to it how many files of each extension voxface does not read as audio lie in the identity's video folders
        (``.m4a`` in a VoxCeleb2-style tree, say), counted in the same listing."""
        return _scan(self.audio / vox_id, prefix=vox_id, suffixes=AUDIO_SUFFIXES, unread=unread)

    def face_videos(self, name: str) -> dict[str, list[str]]:
        """``{ytid: [relative frame paths]}`` of one identity, sorted; empty when it has no faces."""
        return _scan(self.faces / name / FACE_VERSION_DIR, prefix=f"{name}/{FACE_VERSION_DIR}",
                     suffixes=IMAGE_SUFFIXES)


def _folders(folder: Path) -> list[os.DirEntry]:
    """The sub-folders of ``folder`` sorted by name; none when it is not a folder."""
    try:
        with os.scandir(folder) as entries:
            return sorted((e for e in entries if e.is_dir()), key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError):
        return []


def _scan(folder: Path, prefix: str, suffixes: tuple[str, ...],
          unread: Counter[str] | None = None) -> dict[str, list[str]]:
    # os.scandir and names, not Path objects and a stat per file: a VoxCeleb1 tree has 780,000 files to look at;
    # each folder listed once (the files of other types are counted in the same pass)
    videos: dict[str, list[str]] = {}
    for video in _folders(folder):
        files = []
        with os.scandir(video.path) as entries:
            for entry in entries:
                name = entry.name
                if name.lower().endswith(suffixes) and "." in name.lstrip("."):  # what splitext takes as suffix
                    files.append(name)
                elif unread is not None and entry.is_file():
                    unread[os.path.splitext(name)[1].lower() or name] += 1
        if files:
            videos[video.name] = [f"{prefix}/{video.name}/{f}" for f in sorted(files)]
    return videos
