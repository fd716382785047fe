"""``voxface synth``: write VoxSynth, a synthetic voice-face data set in the exact VoxCeleb1 layout.

What it writes under ``OUT``:
- ``wav/<id1xxxx>/<ytid>/<5 digits>.wav`` 16 kHz mono clips and ``unzippedFaces/<name>/1.6/<ytid>/<frame>.jpg``
  face crops for every identity (``voice.py``, ``face.py``);
- ``protocol/``: ``vox1_meta.csv`` (with an ``Age`` column), ``identity_splits.txt``, the ten veriflists
  and the eight 1:2 matching lists, in the VoxCeleb1 formats (read by ``voxface.protocol``);
- ``teacher_faces/<name>/<image>.jpg``: a faces-only identity set, disjoint from the rest, for
  pretraining a face teacher (the counterpart of a large face-recognition data set);
- ``teacher_voices/<name>/<clip>.wav``: a voices-only identity set, disjoint from every other, for pretraining a
  voice prior (the counterpart of the VoxCeleb2 a real speaker encoder is trained on); each set's
  ``identities.csv`` holds its identities' demographics and knobs;
- ``generative.npz`` (every sample's knobs), ``oracle.json`` (the ceiling of every list, ``oracle.py``)
  and ``voxsynth.json`` (the settings and counts; its presence marks a finished data set).

Deterministic for a seed whatever the number of workers. An interrupted run resumes: identities
already rendered are kept.
"""

from __future__ import annotations

import csv
import functools
import json
import logging
import multiprocessing
import os
import shutil
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from voxface.errors import ConfigError
from voxface.metrics import delong_interval, roc_auc
from voxface.protocol.layout import IDENTITY_KNOBS_FILE, DataRoots
from voxface.protocol.lists import (
    MATCHING_DIRECTIONS,
    MATCHING_GROUPS,
    SPLIT_TEST,
    SPLIT_TRAIN,
    SPLIT_VAL,
    TEST_SETS,
    VERIFICATION_GROUPS,
    Identity,
)
from voxface.protocol.stats import age_band
from voxface.protocol.writer import old_voice_path, write_matching, write_meta, write_splits, write_verification
from voxface.synth.face import Scene, render_face
from voxface.synth.model import FACE_KNOBS, NATIONALITIES, VOICE_KNOBS, IdentityModel, draw_population
from voxface.synth.oracle import CONSTRAINTS, Oracle, ceiling_notes, list_ceiling
from voxface.synth.voice import SAMPLE_RATE, Channel, VoiceTraits, render_voice

log = logging.getLogger("voxface")
PROTOCOL_DIR, TEACHER_DIR, PROGRESS_DIR = "protocol", "teacher_faces", ".voxsynth_progress"
VOICE_TEACHER_DIR = "teacher_voices"
DONE_FILE, ORACLE_FILE, PARAMS_FILE = "voxsynth.json", "oracle.json", "generative.npz"
YTID_CHARS = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"))
FIRST = ("Ada", "Bo", "Cai", "Dara", "Eli", "Fen", "Gus", "Hana", "Ivo", "Jun", "Kira", "Lev", "Mara", "Nico",
         "Oona", "Pim", "Quin", "Rhea", "Sol", "Tova", "Uma", "Vic", "Wren", "Xia", "Yara", "Zed")
SYLLABLES = ("ba", "ren", "tol", "vik", "mar", "so", "lin", "dor", "ka", "pel", "us", "gri", "fan", "hol", "ze",
             "quo", "nai", "wes", "tri", "mo")


@dataclass
class SynthConfig:
    identities: int = 400
    videos: int = 4  # per identity; a train identity's last video is held out for the seen-heard test
    clips_per_video: int = 2
    frames_per_video: int = 2
    min_seconds: float = 2.5
    max_seconds: float = 4.5
    teacher_identities: int = 400
    teacher_images: int = 9  # per teacher identity, over 3 scenes
    # voices-only identities for a voice prior (0: none), clips each over 3 recording channels; sized for the demo's
    # time (its voice prior step, about 45 s on 2 cores)
    teacher_voices: int = 200
    teacher_voice_clips: int = 6
    val_fraction: float = 0.08  # VoxCeleb1: 901 train / 100 val / 250 test of 1251
    test_fraction: float = 0.20
    seed: int = 0
    model: IdentityModel = field(default_factory=IdentityModel)

    @classmethod
    def from_settings(cls, settings: dict) -> SynthConfig:
        """The config recorded in a ``voxsynth.json`` (``asdict`` of one, through JSON)."""
        try:
            return cls(**{**settings, "model": IdentityModel(**settings.get("model", {}))})
        except TypeError as err:
            raise ConfigError(f"voxsynth.json settings this version does not know: {err}") from None

    def validate(self) -> None:
        if not 0 <= self.seed < 2**32:
            raise ConfigError(f"--seed must be between 0 and 4294967295 (got {self.seed})")
        if self.identities < 20:
            raise ConfigError(f"--identities must be at least 20 (got {self.identities}): the lists need val and test")
        if self.teacher_identities < 0 or (self.teacher_identities and self.teacher_images < 1):
            raise ConfigError(f"--teacher-identities must be 0 or more (got {self.teacher_identities}), each with at "
                              "least 1 image (teacher_images)")
        if self.videos < 3 or self.clips_per_video < 1 or self.frames_per_video < 1:
            raise ConfigError("each identity needs at least 3 videos, 1 clip and 1 frame per video")
        if self.teacher_voices < 0 or (self.teacher_voices and self.teacher_voice_clips < 2):
            raise ConfigError(f"--teacher-voices must be 0 or more (got {self.teacher_voices}), each with at least 2 "
                              "clips (teacher_voice_clips)")
        if not 0 < self.min_seconds <= self.max_seconds:
            raise ConfigError(f"clip lengths {self.min_seconds}-{self.max_seconds} s are not a valid range")


# ---------------------------------------------------------------- the plan: who, which files, which knobs


@dataclass
class Person:
    identity: Identity
    split: int
    index: int
    videos: list[str]  # ytids
    clips: dict[str, list[str]]  # ytid -> voice paths relative to the audio root
    frames: dict[str, list[str]]  # ytid -> face paths relative to the face root


def _names(count: int, rng: np.random.Generator, taken: set[str] | None = None) -> list[str]:
    """``count`` new names, none of them in ``taken``."""
    names: list[str] = []
    taken = set(taken or ())
    while len(names) < count:
        surname = "".join(rng.choice(SYLLABLES, size=int(rng.integers(2, 4)))).capitalize()
        name = f"{rng.choice(FIRST)}_{surname}"
        if name not in taken:
            taken.add(name)
            names.append(name)
    return names


def _ytids(count: int, rng: np.random.Generator) -> list[str]:
    return ["".join(rng.choice(YTID_CHARS, size=11)) for _ in range(count)]


def plan(config: SynthConfig):
    """Everybody's demographics, splits, files and per-sample knobs, drawn from ``config.seed``."""
    config.validate()
    streams = np.random.SeedSequence(config.seed).spawn(4)
    rng_people, rng_teacher, rng_files, rng_knobs = (np.random.default_rng(s) for s in streams)
    population = draw_population(config.model, config.identities, rng_people)
    teachers = draw_population(config.model, config.teacher_identities, rng_teacher)
    names = _names(config.identities + config.teacher_identities, rng_files)
    n_test = max(4, round(config.test_fraction * config.identities))
    n_val = max(2, round(config.val_fraction * config.identities))
    # Test identities come in groups sharing gender, nationality and age band, so that each has a
    # negative for every constrained list; people with no such partner stay in train or val.
    groups: dict[tuple, list[int]] = {}
    for i in rng_files.permutation(config.identities):
        key = (population.gender[i], population.nationality[i], age_band(int(population.age[i])))
        groups.setdefault(key, []).append(int(i))
    test: list[int] = []
    # Pairs from many groups keep the test set diverse; a second round of pairs when it must be larger.
    shuffled = sorted(groups.values(), key=lambda m: rng_files.random())
    for round_start in range(0, max(map(len, shuffled)), 2):
        for members in shuffled:
            if len(members) >= round_start + 2 and len(test) < n_test:
                test += members[round_start:round_start + 2]
    rest = [int(i) for i in rng_files.permutation(config.identities) if i not in set(test)]
    split_of = np.full(config.identities, SPLIT_TRAIN)
    split_of[test] = SPLIT_TEST
    split_of[rest[:n_val]] = SPLIT_VAL
    people, voice_knobs, face_knobs = _people(config, population, names, split_of, rng_files, rng_knobs)
    return population, teachers, names[config.identities:], people, voice_knobs, face_knobs


def plan_teacher_voices(config: SynthConfig, taken: set[str]):
    """(population, names) of the voices-only identities: drawn from a stream of the seed's own, so that the rest
    of the data set is the same with or without them, with names none of the ``taken`` (every other) has."""
    rng = np.random.default_rng(np.random.SeedSequence(config.seed).spawn(5)[4])
    voices = draw_population(config.model, config.teacher_voices, rng)
    return voices, _names(config.teacher_voices, rng, taken)


def _people(config: SynthConfig, population, names: list[str], split_of: np.ndarray, rng_files: np.random.Generator,
            rng_knobs: np.random.Generator) -> tuple[list[Person], dict, dict]:
    """Each identity's videos, clip and frame paths, and every sample's knobs (identity knobs + jitter)."""
    people, voice_knobs, face_knobs = [], {}, {}
    sd = config.model.sample_sd
    for i in range(len(split_of)):
        ident = Identity(vox_id=f"id1{i + 1:04d}", name=names[i], gender="mf"[population.gender[i]],
                         nationality=NATIONALITIES[population.nationality[i]][0],
                         set="test" if split_of[i] == SPLIT_TEST else "dev", age=int(population.age[i]))
        person = Person(ident, int(split_of[i]), i, _ytids(config.videos, rng_files), {}, {})
        for ytid in person.videos:
            person.clips[ytid] = [f"{ident.vox_id}/{ytid}/{c + 1:05d}.wav" for c in range(config.clips_per_video)]
            first_frame = int(rng_files.integers(1, 400)) * 25
            person.frames[ytid] = [f"{ident.name}/1.6/{ytid}/{first_frame + 25 * f:07d}.jpg"
                                   for f in range(config.frames_per_video)]
            for path in person.clips[ytid]:
                voice_knobs[path] = population.voice[i] + rng_knobs.normal(0, sd, population.voice.shape[1])
            for path in person.frames[ytid]:
                face_knobs[path] = population.face[i] + rng_knobs.normal(0, sd, population.face.shape[1])
        people.append(person)
    return people, voice_knobs, face_knobs


# ---------------------------------------------------------------- rendering (in worker processes)


def _render_person(task: dict) -> str:
    roots, seed = DataRoots(Path(task["audio"]), Path(task["faces"])), task["seed"]
    for v, ytid in enumerate(task["videos"]):
        rng = np.random.default_rng([seed, task["index"], v, 0])
        channel, scene = Channel.draw(rng), Scene.draw(rng)
        for c, (path, knobs) in enumerate(task["clips"][ytid]):
            clip_rng = np.random.default_rng([seed, task["index"], v, 1, c])
            seconds = clip_rng.uniform(task["min_seconds"], task["max_seconds"])
            wave = render_voice(VoiceTraits.from_knobs(knobs, task["rate"]), channel, seconds, clip_rng)
            target = roots.voice(path)
            target.parent.mkdir(parents=True, exist_ok=True)
            sf.write(target, wave, SAMPLE_RATE, subtype="PCM_16")
        for f, (path, knobs) in enumerate(task["frames"][ytid]):
            frame_rng = np.random.default_rng([seed, task["index"], v, 2, f])
            target = roots.face(path)
            target.parent.mkdir(parents=True, exist_ok=True)
            render_face(knobs, scene, frame_rng).save(target, quality=int(frame_rng.integers(85, 96)))
    Path(task["done"]).touch()
    return task["done"]


def _task_rng(task: dict, *words: int) -> np.random.Generator:
    """The generator of one draw of a teacher task: ``[seed, *words]``, under the task's ``spawn_key`` where it has
    one (the release priors' own stream, ``synth/release.py``), so that no two draws share noise."""
    return np.random.default_rng(np.random.SeedSequence([task["seed"], *words],
                                                        spawn_key=tuple(task.get("spawn_key", ()))))


def _render_teachers(task: dict) -> str:
    for index, name, knobs in task["people"]:
        folder = Path(task["folder"]) / name
        folder.mkdir(parents=True, exist_ok=True)
        rng = _task_rng(task, 10**6 + index)
        scenes = [Scene.draw(rng) for _ in range(3)]
        for k in range(task["images"]):
            image_rng = _task_rng(task, 10**6 + index, k)
            face = knobs + image_rng.normal(0, task["sample_sd"], len(knobs))
            render_face(face, scenes[k % 3], image_rng).save(folder / f"{k:04d}.jpg", quality=90)
    Path(task["done"]).touch()
    return task["done"]


def _render_teacher_voices(task: dict) -> str:
    for index, name, knobs, rate in task["people"]:
        folder = Path(task["folder"]) / name
        folder.mkdir(parents=True, exist_ok=True)
        rng = _task_rng(task, 2 * 10**6 + index)
        channels = [Channel.draw(rng) for _ in range(3)]
        for k in range(task["clips"]):
            clip_rng = _task_rng(task, 2 * 10**6 + index, k)
            voice = knobs + clip_rng.normal(0, task["sample_sd"], len(knobs))
            seconds = clip_rng.uniform(task["min_seconds"], task["max_seconds"])
            wave = render_voice(VoiceTraits.from_knobs(voice, rate), channels[k % 3], seconds, clip_rng)
            sf.write(folder / f"{k:04d}.wav", wave, SAMPLE_RATE, subtype="PCM_16")
    Path(task["done"]).touch()
    return task["done"]


def _render_teacher_task(task: dict) -> str:
    return (_render_teacher_voices if "clips" in task else _render_teachers)(task)


def write_identity_knobs(path: Path, names: list[str], population, modality: str = "face") -> None:
    """A teacher set's demographics and face (or voice) knobs, for ``voxface pretrain``'s probes."""
    knobs, values = (FACE_KNOBS, population.face) if modality == "face" else (VOICE_KNOBS, population.voice)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["name", "gender", "nationality", "age", *knobs])
        for i, name in enumerate(names):
            writer.writerow([name, "mf"[population.gender[i]], NATIONALITIES[population.nationality[i]][0],
                             int(population.age[i]), *(f"{v:.5f}" for v in values[i])])


# ---------------------------------------------------------------- trial lists


def _constraint_key(ident: Identity, group: str) -> tuple:
    values = {"g": ident.gender, "n": ident.nationality, "a": age_band(ident.age)}
    return tuple(values[f] for f in CONSTRAINTS[group])  # the same table the oracle scores with


class _Pool:
    """People by list constraint key, so that a negative is drawn in O(1) (large draws have thousands)."""

    def __init__(self, people: list[Person]) -> None:
        self.people = people
        self.members: dict[tuple, list[Person]] = {}
        self.position: dict[tuple[str, int], int] = {}  # (group, id(person)) -> index in its key's members
        for group in CONSTRAINTS:
            for p in people:
                members = self.members.setdefault((group, _constraint_key(p.identity, group)), [])
                self.position[(group, id(p))] = len(members)
                members.append(p)

    def pick_other(self, person: Person, group: str, rng: np.random.Generator) -> Person | None:
        """Uniformly one of the *other* people sharing ``person``'s key for ``group``; None when there is none.

        Draws exactly as a scan of the pool for candidates would (same order, same random number)."""
        members = self.members[(group, _constraint_key(person.identity, group))]
        if len(members) < 2:
            return None
        j = int(rng.integers(len(members) - 1))
        return members[j if j < self.position[(group, id(person))] else j + 1]


def _random_frame(person: Person, videos: list[str], rng: np.random.Generator) -> str:
    frames = person.frames[videos[int(rng.integers(len(videos)))]]
    return frames[int(rng.integers(len(frames)))]


def _random_clip(person: Person, videos: list[str], rng: np.random.Generator) -> str:
    clips = person.clips[videos[int(rng.integers(len(videos)))]]
    return clips[int(rng.integers(len(clips)))]


def _list_face(path: str) -> str:
    """Released face path -> the veriflists' ``<Name>/<ytid>/<frame>.jpg``."""
    name, _, ytid, frame = path.split("/")
    return f"{name}/{ytid}/{frame}"


def build_lists(people: list[Person], seed: int):
    """Verification trials (as path pairs with labels) and matching trials, the VoxCeleb1 way.

    Unseen-unheard: test identities; positives take the face from another video than the voice.
    Seen-heard: train identities' held-out (last) videos; positives take the face from the voice's
    video. Negatives obey the list's constraint; a clip with no eligible negative identity is left out
    of that list, as in the real N and GNA lists. One positive face per clip serves all five groups,
    so the lists differ only in their negatives.
    """
    rng = np.random.default_rng([seed, 7])
    verification: dict[tuple[str, str], list[tuple[Person, str, Person, str]]] = {}
    for test_set in TEST_SETS:
        seen = test_set == "seenheard"
        pool = [p for p in people if p.split == (SPLIT_TRAIN if seen else SPLIT_TEST)]
        by_key = _Pool(pool)
        rows: dict[str, list] = {g: [] for g in VERIFICATION_GROUPS}
        for person in pool:
            voice_videos = person.videos[-1:] if seen else person.videos
            for ytid in voice_videos:
                for clip in person.clips[ytid]:
                    others = [v for v in person.videos if v != ytid]
                    positive = _random_frame(person, [ytid] if seen else others, rng)
                    for group in VERIFICATION_GROUPS:
                        other = by_key.pick_other(person, group, rng)
                        if other is None:
                            continue
                        negative = _random_frame(other, other.videos[-1:] if seen else other.videos, rng)
                        rows[group] += [(person, clip, person, positive), (person, clip, other, negative)]
        for group in VERIFICATION_GROUPS:
            verification[(group, test_set)] = rows[group]
    matching: dict[tuple[str, str], list[tuple[str, str, str]]] = {}
    test = [p for p in people if p.split == SPLIT_TEST]
    test_pool = _Pool(test)
    for direction in MATCHING_DIRECTIONS:
        for group in MATCHING_GROUPS:
            rows = []
            for person in test:
                for ytid in person.videos:
                    others = [v for v in person.videos if v != ytid]
                    other = test_pool.pick_other(person, group, rng)
                    if other is None:
                        continue
                    for clip, frame in zip(person.clips[ytid], person.frames[ytid], strict=False):
                        if direction == "v2f":
                            rows.append((clip, _random_frame(person, others, rng),
                                         _random_frame(other, other.videos, rng)))
                        else:
                            rows.append((frame, _random_clip(person, others, rng),
                                         _random_clip(other, other.videos, rng)))
            matching[(direction, group)] = rows
    return verification, matching


# ---------------------------------------------------------------- the oracle ceiling


def oracle_ceilings(model: IdentityModel, verification, matching, voice_knobs, face_knobs) -> dict:
    """AUC of the likelihood-ratio oracle on every veriflist, with its 95% DeLong interval (a small list's
    ceiling scatters: ``oracle.Ceiling``), and its accuracy on every matching list."""
    oracle = Oracle(model)
    result: dict[str, dict] = {"verification_auc": {}, "verification_auc_ci95": {}, "matching_accuracy": {}}
    for (group, test_set), rows in verification.items():
        voices = np.stack([voice_knobs[clip] for _, clip, _, _ in rows])
        faces = np.stack([face_knobs[face] for _, _, _, face in rows])
        labels = [int(a is b) for a, _, b, _ in rows]
        scores = oracle.log_lr(voices, faces, group)
        result["verification_auc"][f"{group}_{test_set}"] = round(roc_auc(labels, scores), 4)
        result["verification_auc_ci95"][f"{group}_{test_set}"] = [round(x, 4) for x in delong_interval(labels, scores)]
    for (direction, group), rows in matching.items():
        # The matching decision compares two likelihood ratios with marginal denominators (the
        # constraint on the wrong candidate is ignored there: a close, not exact, optimum).
        probe_knobs = voice_knobs if direction == "v2f" else face_knobs
        cand_knobs = face_knobs if direction == "v2f" else voice_knobs
        probes = np.stack([probe_knobs[p] for p, _, _ in rows])
        right = np.stack([cand_knobs[c] for _, c, _ in rows])
        wrong = np.stack([cand_knobs[w] for _, _, w in rows])
        if direction == "v2f":
            better = oracle.log_lr(probes, right) > oracle.log_lr(probes, wrong)
        else:
            better = oracle.log_lr(right, probes) > oracle.log_lr(wrong, probes)
        result["matching_accuracy"][f"{direction}_{group}"] = round(float(better.mean()), 4)
    return result


BENCHMARK_IDENTITIES = 3000
BENCHMARK_SEED = 2025


def benchmark_ceilings(model: IdentityModel, identities: int = BENCHMARK_IDENTITIES,
                       seed: int = BENCHMARK_SEED) -> dict[str, float]:
    """The *model's* ceilings: the oracle's AUC on the five unseen-unheard lists of a large draw.

    A run's own test lists hold tens of identities, so their ceilings scatter by several points; these
    are the benchmark's (what ``oracle.json`` calls ``model_ceilings``). Knobs only, nothing rendered:
    ``identities`` test identities, 2 videos with one clip and one frame each, lists built as ``build_lists``
    builds them.
    """
    return dict(_draw_benchmark_ceilings(model, identities, seed))


@functools.lru_cache(maxsize=8)  # a pure function of a frozen model: computed once per process (about 11 s)
def _draw_benchmark_ceilings(model: IdentityModel, identities: int, seed: int) -> tuple[tuple[str, float], ...]:
    config = SynthConfig(identities=identities, videos=2, clips_per_video=1, frames_per_video=1,
                         teacher_identities=0, seed=seed, model=model)
    rng_people, rng_files, rng_knobs = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3))
    population = draw_population(model, identities, rng_people)
    names = [f"Id_{i:05d}" for i in range(identities)]
    people, voice_knobs, face_knobs = _people(config, population, names, np.full(identities, SPLIT_TEST),
                                              rng_files, rng_knobs)
    verification, _ = build_lists(people, seed)
    unseen = {key: rows for key, rows in verification.items() if key[1] == "unseenunheard"}
    return tuple(oracle_ceilings(model, unseen, {}, voice_knobs, face_knobs)["verification_auc"].items())


# ---------------------------------------------------------------- the command


def generate(out: str | Path, config: SynthConfig | None = None, workers: int | None = None,
             progress: bool = True) -> dict:
    """Write VoxSynth into ``out`` (see the module docstring); returns the summary in ``voxsynth.json``."""
    config = config or SynthConfig()
    out = Path(out)
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers must be at least 1 (got {workers})")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; give a folder (it is created when missing)")
    settings = json.loads(json.dumps(asdict(config)))
    done_file = out / DONE_FILE
    if done_file.is_file():
        summary = json.loads(done_file.read_text())
        if summary.get("config") != settings:
            raise ConfigError(f"{out} already holds VoxSynth made with other settings; "
                              "choose another --out or delete it")
        log.info("VoxSynth already complete in %s", out)
        if "verification_auc_ci95" not in summary["oracle"]:  # written before ceilings had intervals
            try:
                summary = _add_ceiling_intervals(out, config, summary)
            except ConfigError as err:  # the data are fine; the reports say the ceilings have no intervals
                log.warning("%s", err)
        return summary
    # Everything that can refuse these settings runs before anything is written: a refused run leaves no folder
    # behind, and the retry with valid settings starts afresh.
    population, teachers, teacher_names, people, voice_knobs, face_knobs = plan(config)  # plan validates config
    verification, matching = build_lists(people, config.seed)  # the lists need the plan only, not the media
    empty = [f"{a}_{b}" for (a, b), rows in {**verification, **matching}.items() if not rows]
    if empty:
        raise ConfigError(f"with {config.identities} identities the lists {empty} have no trials; use more identities")
    voices, voice_names = plan_teacher_voices(config, {p.identity.name for p in people} | set(teacher_names))
    progress_dir = out / PROGRESS_DIR
    settings_file = progress_dir / "settings.json"
    if (settings_file.is_file() and json.loads(settings_file.read_text()) != settings
            and not _nothing_made(out)):
        raise ConfigError(f"{out} holds an unfinished VoxSynth with other settings; choose another --out or delete it")
    progress_dir.mkdir(parents=True, exist_ok=True)
    settings_file.write_text(json.dumps(settings))

    roots = DataRoots.from_root(out)
    tasks, teacher_tasks = [], []
    for person in people:
        done = progress_dir / f"{person.identity.vox_id}.done"
        if not done.exists():
            tasks.append({"audio": str(roots.audio), "faces": str(roots.faces), "seed": config.seed,
                          "index": person.index, "videos": person.videos, "rate": float(population.rate[person.index]),
                          "min_seconds": config.min_seconds, "max_seconds": config.max_seconds, "done": str(done),
                          "clips": {y: [(p, voice_knobs[p]) for p in person.clips[y]] for y in person.videos},
                          "frames": {y: [(p, face_knobs[p]) for p in person.frames[y]] for y in person.videos}})
    chunk = 10
    for start in range(0, config.teacher_identities, chunk):
        done = progress_dir / f"teacher_{start:06d}.done"
        if not done.exists():
            members = [(i, teacher_names[i], teachers.face[i])
                       for i in range(start, min(start + chunk, config.teacher_identities))]
            teacher_tasks.append({"folder": str(out / TEACHER_DIR), "seed": config.seed, "people": members,
                                  "images": config.teacher_images, "sample_sd": config.model.sample_sd,
                                  "done": str(done)})
    for start in range(0, config.teacher_voices, chunk):
        done = progress_dir / f"teacher_voices_{start:06d}.done"
        if not done.exists():
            members = [(i, voice_names[i], voices.voice[i], float(voices.rate[i]))
                       for i in range(start, min(start + chunk, config.teacher_voices))]
            teacher_tasks.append({"folder": str(out / VOICE_TEACHER_DIR), "seed": config.seed, "people": members,
                                  "clips": config.teacher_voice_clips, "sample_sd": config.model.sample_sd,
                                  "min_seconds": config.min_seconds, "max_seconds": config.max_seconds,
                                  "done": str(done)})
    workers = max(1, workers or os.cpu_count() or 1)
    total = len(tasks) + len(teacher_tasks)
    with tqdm(total=total, desc="VoxSynth", unit="task", disable=not progress) as bar:
        if workers == 1:
            for task in tasks:
                _render_person(task)
                bar.update()
            for task in teacher_tasks:
                _render_teacher_task(task)
                bar.update()
        else:
            with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
                futures = [pool.submit(_render_person, t) for t in tasks]
                futures += [pool.submit(_render_teacher_task, t) for t in teacher_tasks]
                for future in futures:
                    future.result()
                    bar.update()

    protocol = out / PROTOCOL_DIR
    write_meta(protocol, [p.identity for p in people])
    write_splits(protocol, {p.identity.name: p.split for p in people})
    for (group, test_set), rows in verification.items():
        write_verification(protocol, group, test_set, [
            (a.identity.number, b.identity.number,
             old_voice_path(a.identity.name, clip.split("/")[1], clip.split("/")[2]), _list_face(face))
            for a, clip, b, face in rows])
    for (direction, group), rows in matching.items():
        write_matching(protocol, direction, group, rows)
    if config.teacher_identities:  # no teacher set, no folder (the demo's priors have their own draw)
        write_identity_knobs(out / TEACHER_DIR / IDENTITY_KNOBS_FILE, teacher_names, teachers)
    if config.teacher_voices:
        write_identity_knobs(out / VOICE_TEACHER_DIR / IDENTITY_KNOBS_FILE, voice_names, voices, "voice")
    voice_paths, face_paths = sorted(voice_knobs), sorted(face_knobs)
    np.savez_compressed(out / PARAMS_FILE, voice_paths=np.array(voice_paths),
                        voice_knobs=np.stack([voice_knobs[p] for p in voice_paths]),
                        face_paths=np.array(face_paths), face_knobs=np.stack([face_knobs[p] for p in face_paths]))
    ceilings = oracle_ceilings(config.model, verification, matching, voice_knobs, face_knobs)
    # Two ceilings: the run's own test lists (what a run on this data is measured against) and the
    # model's on a large draw (the benchmark's, calibrated against VoxCeleb1; README "VoxSynth").
    ceilings["model_ceilings"] = benchmark_ceilings(config.model)
    ceilings["model_ceilings_draw"] = {"identities": BENCHMARK_IDENTITIES, "seed": BENCHMARK_SEED}
    (out / ORACLE_FILE).write_text(json.dumps(ceilings, indent=1))
    summary = {
        "config": settings,
        "identities": {"train": sum(p.split == SPLIT_TRAIN for p in people),
                       "val": sum(p.split == SPLIT_VAL for p in people),
                       "test": sum(p.split == SPLIT_TEST for p in people),
                       "teacher": config.teacher_identities, "teacher_voices": config.teacher_voices},
        "voice_clips": len(voice_knobs), "face_frames": len(face_knobs),
        "teacher_images": config.teacher_identities * config.teacher_images,
        "teacher_voice_clips": config.teacher_voices * config.teacher_voice_clips,
        "trials": {f"{g}_{t}": len(rows) for (g, t), rows in verification.items()},
        "oracle": ceilings,
    }
    done_file.write_text(json.dumps(summary, indent=1))
    shutil.rmtree(progress_dir, ignore_errors=True)
    return summary


def _nothing_made(out: Path) -> bool:
    """Whether ``out`` holds only the settings an earlier voxface wrote before refusing them (no media, nothing
    done): such a folder starts afresh with other settings instead of being refused as unfinished."""
    entries = list(out.iterdir())
    return (entries == [out / PROGRESS_DIR]
            and [p.name for p in (out / PROGRESS_DIR).iterdir()] == ["settings.json"])


def _add_ceiling_intervals(out: Path, config: SynthConfig, summary: dict) -> dict:
    """Recompute the oracle's ceilings of a finished VoxSynth (the plan and the lists are deterministic for the
    settings, so nothing is rendered) and record their intervals in oracle.json and voxsynth.json."""
    _, _, _, people, voice_knobs, face_knobs = plan(config)
    verification, matching = build_lists(people, config.seed)
    recomputed = oracle_ceilings(config.model, verification, matching, voice_knobs, face_knobs)
    stored = summary["oracle"]["verification_auc"]
    # equal up to the stored rounding (another numpy may move the 4th decimal); else not these data's lists
    if set(recomputed["verification_auc"]) != set(stored) or any(
            abs(recomputed["verification_auc"][k] - v) > 2e-3 for k, v in stored.items()):
        raise ConfigError(f"{out}: the oracle ceilings recomputed from its settings differ from those it holds "
                          "(made by another version of VoxSynth), so they get no intervals; regenerate it into a "
                          "new folder to have them")
    ceilings = {**summary["oracle"], "verification_auc_ci95": recomputed["verification_auc_ci95"]}
    summary = {**summary, "oracle": ceilings}
    try:
        (out / ORACLE_FILE).write_text(json.dumps(ceilings, indent=1))
        (out / DONE_FILE).write_text(json.dumps(summary, indent=1))
        log.info("added the oracle ceilings' 95%% intervals to %s", out / ORACLE_FILE)
    except OSError as err:  # read-only data: use them, recompute next time
        log.warning("could not record the oracle ceilings' intervals in %s (%s)", out / ORACLE_FILE, err.strerror)
    return summary


def format_synth_summary(out: Path, summary: dict) -> str:
    ids = summary["identities"]
    lines = [
        f"VoxSynth in {out}: {ids['train']} train / {ids['val']} val / {ids['test']} test identities, "
        f"{summary['voice_clips']} voice clips, {summary['face_frames']} face frames; "
        f"{ids['teacher']} faces-only teacher identities ({summary['teacher_images']} images)"
        + (f", {ids['teacher_voices']} voices-only ({summary['teacher_voice_clips']} clips)"
           if ids.get("teacher_voices") else ""),
        f"protocol files: {out / 'protocol'} (use --lists {out / 'protocol'})",
        "oracle ceiling (AUC of the best possible scorer) on these lists with its 95% CI, and the model's on a "
        "large draw:",
        f"  {'list':<22}{'trials':>7}{'ceiling':>9}{'95% CI':>15}{'model':>8}",
    ]
    model = summary["oracle"].get("model_ceilings", {})
    ceilings = {name: list_ceiling(summary["oracle"], name) for name in summary["oracle"]["verification_auc"]}
    for name, ceiling in ceilings.items():
        lines.append(f"  {name:<22}{summary['trials'][name]:>7}{ceiling.auc:>9.3f}{ceiling.interval():>15}"
                     + (f"{model[name]:>8.3f}" if name in model else f"{'':>8}") + ceiling.mark().replace(" (", "  ("))
    if model:
        draw = summary["oracle"].get("model_ceilings_draw", {}).get("identities")
        lines.append("  model: the same list's ceiling under the generative model itself, measured on a draw of "
                     + (f"{draw} " if draw else "many ") + "test identities (what these lists' ceilings estimate)")
    if notes := ceiling_notes(ceilings):
        lines.append(f"  {notes} (more --identities make lists larger)")
    matching = summary["oracle"]["matching_accuracy"]
    lines.append("  1:2 matching ceiling: " + ", ".join(f"{k} {v:.3f}" for k, v in matching.items()))
    return "\n".join(lines)


def oracle_beside(protocol_folder: str | Path) -> dict | None:
    """The ``oracle.json`` VoxSynth writes beside its ``protocol/`` folder, or None (real data have no oracle).
    One written before ceilings had intervals gets them here, recomputed from the ``voxsynth.json`` beside it."""
    folder = Path(protocol_folder).parent
    path, done = folder / ORACLE_FILE, folder / DONE_FILE
    if not path.is_file():
        return None
    oracle = json.loads(path.read_text())
    if "verification_auc_ci95" not in oracle and done.is_file():
        summary = json.loads(done.read_text())
        try:
            oracle = _add_ceiling_intervals(folder, SynthConfig.from_settings(summary["config"]), summary)["oracle"]
        except ConfigError as err:  # the reports then say that these ceilings have no intervals
            log.warning("%s", err)
    return oracle

