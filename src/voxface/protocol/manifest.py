"""Training and validation manifests: which clips and face frames of which identities to train on.

The seen-heard test set consists of held-out videos of the *train* identities, so a training
manifest drops every video that any seen-heard trial uses (its voice or its face), or the
seen-heard numbers would measure memorisation.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from voxface.errors import ProtocolError
from voxface.formats import conversion_advice
from voxface.protocol.layout import DataRoots
from voxface.protocol.lists import SPLIT_NAMES, SPLIT_TRAIN, VERIFICATION_GROUPS, Protocol
from voxface.protocol.text import read_text

log = logging.getLogger("voxface")

MANIFEST_VERSION = 1


@dataclass
class Video:
    """Voice clips and face frames of one identity in one video (paths relative to the roots)."""

    voices: list[str]
    faces: list[str]


@dataclass
class IdentityMedia:
    name: str
    vox_id: str
    videos: dict[str, Video]  # ytid -> media

    @property
    def voices(self) -> list[str]:
        return [v for video in self.videos.values() for v in video.voices]

    @property
    def faces(self) -> list[str]:
        return [f for video in self.videos.values() for f in video.faces]


@dataclass
class Manifest:
    """The identities of one split with their usable media, and what was left out and why."""

    split: str
    audio_root: str
    face_root: str
    identities: list[IdentityMedia]
    excluded_videos: int = 0  # videos dropped because a seen-heard trial uses them
    excluded_voices: int = 0
    excluded_faces: int = 0
    identities_without_media: list[str] = field(default_factory=list)

    @property
    def roots(self) -> DataRoots:
        return DataRoots(Path(self.audio_root), Path(self.face_root))

    @property
    def num_voices(self) -> int:
        return sum(len(ident.voices) for ident in self.identities)

    @property
    def num_faces(self) -> int:
        return sum(len(ident.faces) for ident in self.identities)

    def summary(self) -> str:
        text = (
            f"{self.split}: {len(self.identities)} identities, {self.num_voices} voice clips, "
            f"{self.num_faces} face frames"
        )
        if self.excluded_videos:
            text += (
                f"; excluded {self.excluded_videos} videos used by seen-heard trials "
                f"({self.excluded_voices} clips, {self.excluded_faces} frames)"
            )
        if self.identities_without_media:
            text += f"; {len(self.identities_without_media)} identities lack voices or faces and were skipped"
        return text

    def save(self, path: str | Path) -> None:
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # one line: json's C encoder (an indented dump runs the pure-Python one, a second on a run's start-up)
            path.write_text(json.dumps({"version": MANIFEST_VERSION, **asdict(self)}))
        except OSError as err:  # a file where the folder should be, no permission, a full disk
            raise ProtocolError(f"cannot write the manifest {path}: {err.strerror or err}") from None

    @classmethod
    def load(cls, path: str | Path) -> Manifest:
        path = Path(path)
        if not path.is_file():
            raise ProtocolError(f"manifest {path} does not exist")
        try:
            data = json.loads(read_text(path))
        except json.JSONDecodeError as err:
            raise ProtocolError(f"manifest {path} is not valid JSON: {err}") from None
        if data.pop("version", None) != MANIFEST_VERSION:
            raise ProtocolError(f"manifest {path} has an unknown version; rebuild it with 'voxface protocol manifest'")
        try:
            data["identities"] = [
                IdentityMedia(i["name"], i["vox_id"], {k: Video(**v) for k, v in i["videos"].items()})
                for i in data["identities"]
            ]
            return cls(**data)
        except (KeyError, TypeError) as err:
            raise ProtocolError(f"manifest {path} is malformed: {err}") from None


def seen_heard_videos(protocol: Protocol) -> set[tuple[str, str]]:
    """``(name, ytid)`` of every video whose voice or face any seen-heard trial uses."""
    used: set[tuple[str, str]] = set()
    for group in VERIFICATION_GROUPS:
        trials = protocol.verification(group, "seenheard")
        for path in trials.voice_paths:  # <Name>/<ytid>_<7 digits>.wav
            name, _, rest = path.partition("/")
            used.add((name, rest.removesuffix(".wav").rpartition("_")[0]))
        for path in trials.face_paths:  # <Name>/<ytid>/<frame>.jpg
            name, ytid, _ = path.split("/")
            used.add((name, ytid))
    return used


def build_manifest(
    protocol: Protocol,
    roots: DataRoots,
    split: int = SPLIT_TRAIN,
    exclude_seen_heard: bool | None = None,
) -> Manifest:
    """Scan the data set for the identities of ``split``.

    ``exclude_seen_heard`` defaults to True for the train split (see the module docstring).
    """
    if split not in SPLIT_NAMES:
        raise ProtocolError(f"unknown split {split}; splits are {SPLIT_NAMES}")
    if not roots.audio.is_dir():
        raise ProtocolError(f"audio root {roots.audio} does not exist")
    if not roots.faces.is_dir():
        raise ProtocolError(f"face root {roots.faces} does not exist")
    if exclude_seen_heard is None:
        exclude_seen_heard = split == SPLIT_TRAIN
    excluded = seen_heard_videos(protocol) if exclude_seen_heard else set()
    manifest = Manifest(SPLIT_NAMES[split], str(roots.audio), str(roots.faces), [])
    unread = Counter()  # extensions of files voxface does not read where clips should be (a half-converted tree too)
    for ident in protocol.identities_in_split(split):
        voices, faces = roots.voice_videos(ident.vox_id, unread), roots.face_videos(ident.name)
        videos: dict[str, Video] = {}
        for ytid in sorted(set(voices) | set(faces)):
            video = Video(voices.get(ytid, []), faces.get(ytid, []))
            if (ident.name, ytid) in excluded:
                manifest.excluded_videos += 1
                manifest.excluded_voices += len(video.voices)
                manifest.excluded_faces += len(video.faces)
            else:
                videos[ytid] = video
        media = IdentityMedia(ident.name, ident.vox_id, videos)
        if media.voices and media.faces:
            manifest.identities.append(media)
        else:
            manifest.identities_without_media.append(ident.name)
    advice = _conversion_advice(unread, roots.audio)
    if not manifest.identities:
        raise ProtocolError(
            f"no {manifest.split} identity has both voice clips under {roots.audio} and faces under {roots.faces}"
            + (f"; {advice}" if advice else "")
        )
    if advice:
        log.warning("%s: some clips are in files voxface does not read, left out; %s", manifest.split, advice)
    return manifest


def _conversion_advice(unread: Counter, audio_root: Path) -> str:
    """What to do about the audio files of an extension voxface does not read (``.m4a`` in a VoxCeleb2 tree)."""
    if not unread:
        return ""
    suffix, count = unread.most_common(1)[0]
    return (f"found {count} {suffix} files where clips should be; {conversion_advice(suffix)}; a whole tree: "
            f"find {audio_root} -name '*{suffix}' -exec sh -c 'ffmpeg -nostdin -loglevel error -i \"$1\" -ac 1 "
            f"-ar 16000 \"${{1%.*}}.wav\"' _ {{}} \\;")
