"""Parse the VoxCeleb1 cross-modal protocol files into typed records.

A protocol *source* is a folder laid out like ``../shared/data/voxceleb1`` (each file plain or
``.xz``-compressed): ``vox1_meta.csv``, ``identity_splits.txt``, ``veriflist/*.txt`` and
``matching/*.csv``. ``"voxceleb1"`` names the copy shipped inside this package; VoxSynth writes
its own folder in the same formats, so every list, real or synthetic, goes through this one parser.

>>> protocol = load_protocol("voxceleb1")
>>> trials = protocol.verification("random", "unseenunheard")
>>> len(trials), int(trials.labels.sum())
(30496, 15248)
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np

from voxface.errors import ProtocolError
from voxface.formats import IMAGE_SUFFIXES
from voxface.protocol.text import fields, read_lines

TEST_SETS = ("unseenunheard", "seenheard")
VERIFICATION_GROUPS = ("random", "G", "N", "A", "GNA")
MATCHING_GROUPS = ("U", "G", "N", "GN")
MATCHING_DIRECTIONS = ("v2f", "f2v")
# identity_splits.txt (Learnable PINs): 1 train, 2 val, 4 unseen-unheard test. 3 never appears:
# seen-heard trials use held-out videos of the train identities.
SPLIT_TRAIN, SPLIT_VAL, SPLIT_TEST = 1, 2, 4
SPLIT_NAMES = {SPLIT_TRAIN: "train", SPLIT_VAL: "val", SPLIT_TEST: "test"}
VERIFICATION_HEADER = ["id", "voice-speaker-id", "face-speaker-id", "label", "voice-path", "face-path"]
BUILTIN = "voxceleb1"


@dataclass(frozen=True)
class Identity:
    """One row of ``vox1_meta.csv`` (plus the optional ``Age`` column VoxSynth writes)."""

    vox_id: str  # "id10001": the folder name of the released audio
    name: str  # VGGFace1 name: the folder name of the face crops
    gender: str  # "m" or "f"
    nationality: str
    set: str  # "dev" or "test" in VoxCeleb1's speaker-verification split
    age: int | None = None

    @property
    def number(self) -> int:
        """The speaker id used in the veriflists: the VoxCeleb1 number minus 10000."""
        return int(self.vox_id[2:]) - 10000


@dataclass
class VerificationList:
    """One veriflist as columns. ``voice_files``/``face_files`` are released paths relative to the
    audio and face roots (``id10002/gaQqIoV_aLY/00001.wav``, ``A.R._Rahman/1.6/<ytid>/0007400.jpg``)."""

    group: str
    test_set: str
    trial_ids: np.ndarray
    voice_speakers: np.ndarray
    face_speakers: np.ndarray
    labels: np.ndarray  # 1 = same identity; always taken from the label column, never row parity
    voice_paths: list[str]  # as written in the list (old naming)
    face_paths: list[str]
    voice_files: list[str] = field(repr=False)
    face_files: list[str] = field(repr=False)

    @property
    def name(self) -> str:
        return f"{self.group}_{self.test_set}"

    @property
    def identities(self) -> int:
        """How many distinct identities the list's voices and faces belong to."""
        return len(set(self.voice_speakers.tolist()) | set(self.face_speakers.tolist()))

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class MatchingList:
    """One 1:2 matching list: probe, the correct candidate, the wrong one (released paths)."""

    direction: str  # "v2f": voice probe, face candidates; "f2v": the reverse
    group: str
    probes: list[str]
    positives: list[str]
    negatives: list[str]

    @property
    def name(self) -> str:
        return f"{self.direction}_{self.group}"

    def __len__(self) -> int:
        return len(self.probes)


def voice_file_from_list_path(list_path: str, vox_id_of_name: dict[str, str]) -> str:
    """Map a veriflist voice path to the released layout.

    ``A.R._Rahman/gaQqIoV_aLY_0000001.wav`` -> ``id10002/gaQqIoV_aLY/00001.wav``. YouTube ids may
    contain ``_``, so the clip number is split off at the last one.
    """
    name, _, file_name = list_path.partition("/")
    stem = file_name.removesuffix(".wav")
    ytid, _, clip = stem.rpartition("_")
    if not name or not ytid or len(clip) != 7 or not clip.isdigit():
        raise ProtocolError(f"voice path {list_path!r} is not of the form <Name>/<ytid>_<7 digits>.wav")
    if name not in vox_id_of_name:
        raise ProtocolError(f"voice path {list_path!r} names {name!r}, who is not in the metadata")
    return f"{vox_id_of_name[name]}/{ytid}/{clip[-5:]}.wav"


def face_file_from_list_path(list_path: str) -> str:
    """``<Name>/<ytid>/<frame>.jpg`` -> ``<Name>/1.6/<ytid>/<frame>.jpg`` (the 1-fps face crops)."""
    parts = list_path.split("/")
    if (len(parts) != 3 or not all(parts) or {".", ".."} & set(parts)
            or not parts[2].lower().endswith(IMAGE_SUFFIXES)):
        raise ProtocolError(f"face path {list_path!r} is not of the form <Name>/<ytid>/<frame>.jpg")
    return f"{parts[0]}/1.6/{parts[1]}/{parts[2]}"


def _mapped(paths: list[str], convert: Callable[[str], str], where: Callable[[int], str]) -> list[str]:
    """``convert`` of each path, computed once per distinct path: a list names each file in many trials, and the
    trials then share one string per file (a sixth of the strings, and of the time, on VoxCeleb1's lists). A path
    ``convert`` refuses is said with ``where`` (its file and line) of its first trial."""
    distinct = {}
    for path in dict.fromkeys(paths):
        try:
            distinct[path] = convert(path)
        except ProtocolError as err:
            raise ProtocolError(f"{where(paths.index(path))}: {err}") from None
    return [distinct[path] for path in paths]


class Protocol:
    """The metadata, splits and trial lists of one protocol source; lists are parsed on first use."""

    def __init__(self, source: str | Path = BUILTIN) -> None:
        if str(source) == BUILTIN:
            self.root = Path(str(resources.files("voxface.protocol") / "data" / BUILTIN))
        else:
            self.root = Path(source)
            if not self.root.is_dir():
                raise ProtocolError(f"protocol folder {self.root} does not exist (or use '{BUILTIN}')")
        self.source = str(source)
        self.identities = self._read_meta()
        self.splits = self._read_splits()
        self.vox_id_of_name = {ident.name: ident.vox_id for ident in self.identities.values()}
        self.identity_of_number = {ident.number: ident for ident in self.identities.values()}

    def file(self, relative: str) -> Path:
        """The file ``relative`` in this source, plain or ``.xz``."""
        for candidate in (self.root / relative, self.root / f"{relative}.xz"):
            if candidate.is_file():
                return candidate
        raise ProtocolError(f"protocol file {relative} is missing from {self.root}")

    def identities_in_split(self, split: int) -> list[Identity]:
        return [self.identities[name] for name, s in self.splits.items() if s == split]

    def _read_meta(self) -> dict[str, Identity]:
        path = self.file("vox1_meta.csv")
        rows = read_lines(path)
        if not rows:
            raise ProtocolError(f"{path}: empty metadata file")
        header = fields(rows[0][1].split("\t"), 0)
        required = ["VoxCeleb1 ID", "VGGFace1 ID", "Gender", "Nationality", "Set"]
        missing = [c for c in required if c not in header]
        if missing:
            raise ProtocolError(f"{path}: missing columns {missing} (is it tab-separated?)")
        col = {name: header.index(name) for name in header}
        identities: dict[str, Identity] = {}
        for line_no, line in rows[1:]:
            row = fields(line.split("\t"), len(header))
            if len(row) != len(header):
                raise ProtocolError(f"{path}:{line_no}: {len(row)} fields, expected {len(header)}")
            age = row[col["Age"]] if "Age" in col else ""
            if age and not age.isdigit():
                raise ProtocolError(f"{path}:{line_no}: age {age!r} is not a whole number of years")
            ident = Identity(
                vox_id=row[col["VoxCeleb1 ID"]],
                name=row[col["VGGFace1 ID"]],
                gender=row[col["Gender"]],
                nationality=row[col["Nationality"]],
                set=row[col["Set"]],
                age=int(age) if age else None,
            )
            if ident.gender not in ("m", "f") or not ident.vox_id.startswith("id"):
                raise ProtocolError(f"{path}:{line_no}: bad identity row {row}")
            identities[ident.name] = ident
        return identities

    def _read_splits(self) -> dict[str, int]:
        path = self.file("identity_splits.txt")
        splits: dict[str, int] = {}
        for line_no, line in read_lines(path):
            parts = line.split()
            if len(parts) != 2 or not parts[1].isdigit():
                raise ProtocolError(f"{path}:{line_no}: expected '<Name> <split>', got {line!r}")
            if parts[0] not in self.identities:
                raise ProtocolError(f"{path}:{line_no}: {parts[0]!r} is not in vox1_meta.csv")
            split = int(parts[1])
            if split not in SPLIT_NAMES:
                raise ProtocolError(f"{path}:{line_no}: split {split} of {parts[0]!r} is none of "
                                    f"{', '.join(f'{k} ({v})' for k, v in SPLIT_NAMES.items())}")
            if splits.setdefault(parts[0], split) != split:
                raise ProtocolError(f"{path}:{line_no}: {parts[0]!r} is given split {split} here and "
                                    f"{splits[parts[0]]} on an earlier line")
        return splits

    @cache  # noqa: B019 - a Protocol lives as long as the program; each list is parsed once
    def verification(self, group: str, test_set: str) -> VerificationList:
        """The veriflist of ``group`` (random, G, N, A, GNA) on ``test_set``."""
        if group not in VERIFICATION_GROUPS or test_set not in TEST_SETS:
            raise ProtocolError(
                f"no verification list {group}/{test_set}: groups are {VERIFICATION_GROUPS}, "
                f"test sets {TEST_SETS}"
            )
        path = self.file(f"veriflist/veriflist_test_{group}_{test_set}.txt")
        columns: list[list[str]] = [[] for _ in VERIFICATION_HEADER]
        lines = read_lines(path)
        # one reader over every line (a reader per line cost a third of the parse)
        rows = [(line_no, fields(row, len(VERIFICATION_HEADER)))
                for (line_no, _), row in zip(lines, csv.reader(line for _, line in lines), strict=True)]
        if not rows:
            raise ProtocolError(f"{path} is empty; expected the header {','.join(VERIFICATION_HEADER)} and trials")
        if rows[0][1] != VERIFICATION_HEADER:
            raise ProtocolError(f"{path}: header {rows[0][1]}, expected {VERIFICATION_HEADER}")
        for line_no, row in rows[1:]:
            if len(row) != 6:
                raise ProtocolError(f"{path}:{line_no}: {len(row)} fields, expected 6")
            if row[3] not in ("0", "1"):
                raise ProtocolError(f"{path}:{line_no}: label {row[3]!r} is not 0 or 1")
            for column, value in zip(columns, row, strict=True):
                column.append(value)
        if not columns[0]:
            raise ProtocolError(f"{path}: no trials")
        try:
            ints = [np.asarray(c, dtype=np.int64) for c in columns[:3]]
        except ValueError as err:
            raise ProtocolError(f"{path}: a trial id or speaker id is not an integer ({err})") from None
        voice_paths, face_paths = columns[4], columns[5]

        def where(trial: int) -> str:
            return f"{path}:{rows[1 + trial][0]}"

        return VerificationList(
            group=group,
            test_set=test_set,
            trial_ids=ints[0],
            voice_speakers=ints[1],
            face_speakers=ints[2],
            labels=np.asarray(columns[3], dtype=np.int8),
            voice_paths=voice_paths,
            face_paths=face_paths,
            voice_files=_mapped(voice_paths, lambda p: voice_file_from_list_path(p, self.vox_id_of_name), where),
            face_files=_mapped(face_paths, face_file_from_list_path, where),
        )

    @cache  # noqa: B019
    def matching(self, direction: str, group: str) -> MatchingList:
        """The 1:2 matching list of ``direction`` (v2f, f2v) and ``group`` (U, G, N, GN)."""
        if direction not in MATCHING_DIRECTIONS or group not in MATCHING_GROUPS:
            raise ProtocolError(
                f"no matching list {direction}/{group}: directions are {MATCHING_DIRECTIONS}, "
                f"groups {MATCHING_GROUPS}"
            )
        path = self.file(f"matching/matching_{direction}_{group}.csv")
        probes, positives, negatives = [], [], []
        for line_no, line in read_lines(path):
            parts = line.split()
            if len(parts) != 3:
                raise ProtocolError(f"{path}:{line_no}: expected 'probe correct wrong', got {line!r}")
            probes.append(parts[0])
            positives.append(parts[1])
            negatives.append(parts[2])
        if not probes:
            raise ProtocolError(f"{path}: no trials")
        return MatchingList(direction, group, probes, positives, negatives)

    def all_verification(self) -> list[VerificationList]:
        return [self.verification(g, t) for t in TEST_SETS for g in VERIFICATION_GROUPS]

    def all_matching(self) -> list[MatchingList]:
        return [self.matching(d, g) for d in MATCHING_DIRECTIONS for g in MATCHING_GROUPS]


def load_protocol(source: str | Path = BUILTIN) -> Protocol:
    """Load a protocol source: ``"voxceleb1"`` (shipped) or a folder in the same layout."""
    return Protocol(source)
