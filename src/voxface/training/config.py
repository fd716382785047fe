"""Training configuration: plain dataclasses, read from YAML, validated before any work starts.

A YAML file has the sections below (any may be omitted to keep the defaults); ``extends: other.yaml``
(relative to the file) starts from another file, and ``key.sub=value`` overrides come last. An unknown
key or a value of the wrong kind fails at once, naming the key and the file. A training file may also declare a
``search:`` section, the space ``voxface benchmark --tune`` draws configurations from (``voxface/tuning.py``);
training itself ignores it.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import os
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from voxface.errors import ConfigError, OverrideError
from voxface.typed import build_dataclass, unknown_key

log = logging.getLogger("voxface")

SCHEDULES = ("step", "tristage", "constant")


@dataclass
class DataConfig:
    root: str = ""  # VoxCeleb1-layout root (wav/ and unzippedFaces/ below it)
    lists: str = "voxceleb1"  # protocol source: 'voxceleb1' or a folder in the same layout
    audio_dir: str = "wav"
    faces_dir: str = "unzippedFaces"
    crop_seconds: float = 2.0  # paper §5: random 2 s crops
    face_size: int = 112
    face_from_same_video: bool = False
    val_clips_per_identity: int = 10  # validation trials: one positive and one negative face per clip
    val_crop_seconds: float = 4.0
    workers: int = 2


@dataclass
class FaceConfig:
    encoder: str = "iresnet"  # a registered face encoder (encoders/registry.py)
    weights: str = ""  # the teacher: an insightface backbone.pth (or one 'voxface pretrain' wrote)
    frozen: bool = True
    cache: bool = True  # frozen teacher: embed every face (and its mirror image) once, cache on disk
    cache_dir: str = ""  # default: <out>/teacher_cache


@dataclass
class AudioConfig:
    encoder: str = "ecapa"
    weights: str = ""  # ECAPA: a SpeechBrain embedding_model.ckpt (empty: random init); SSL: a HuggingFace folder
    channels: list[int] = field(default_factory=lambda: [1024, 1024, 1024, 1024, 3072])  # ECAPA, random init
    embedding_size: int = 192
    # ECAPA's front end: kaldi (voxface's own runs), speechbrain (what SpeechBrain's checkpoints were trained on),
    # or auto: speechbrain when audio.weights is a SpeechBrain checkpoint, else kaldi
    features: str = "auto"
    mean_norm: bool = True  # per-utterance fbank mean normalisation (ECAPA)
    specaugment: bool = True  # paper §5: 0-5 frames, 0-10 channels (ECAPA)
    layer_weighting: bool = False  # SSL: learned weighted sum of hidden layers
    freeze_feature_encoder: bool = True  # SSL: keep the CNN feature encoder fixed
    finetune_top_layers: int = -1  # SSL: -1 fine-tunes every transformer layer
    apply_spec_augment: bool = False  # SSL: transformers' own time masking


@dataclass
class FeaturesConfig:
    # Feature mode (voxface extract): train on what the frozen encoders produced for every file, read from these
    # feature stores, instead of on media; face.weights and audio.weights must be the weights they were made with.
    voice: str = ""
    face: str = ""


@dataclass
class MethodConfig:
    name: str = "sun_su_2025"  # a registered method (voxface/methods/)
    args: dict[str, Any] = field(default_factory=dict)  # that method's own settings (its Args dataclass)


@dataclass
class OptimConfig:
    batch_size: int = 64  # paper §5.2; per device
    weight_decay: float = 2e-5  # paper §5.2
    lr_audio: float = 1e-3
    lr_mapping: float = 1e-3
    lr_face: float = 1e-5  # only when the teacher is not frozen
    schedule: str = "step"  # ECAPA: step between 1e-3 and 1e-8; SSL: tristage
    step_gamma: float = 0.5
    step_every_epochs: float = 1.0
    min_lr: float = 1e-8
    tristage_ratios: list[float] = field(default_factory=lambda: [0.15, 0.01, 0.07])  # then held at the final rate
    # false: the paper read literally, as fairseq's tri-stage (77% of the steps held at the final rate);
    # true: the three phases scaled to fill the run (65% / 4% / 30%)
    tristage_fill: bool = False
    tristage_init_scale: float = 0.01  # 1e-5 peak -> 1e-7 at start and end
    tristage_final_scale: float = 0.01


@dataclass
class TrainerConfig:
    out: str = "runs/train"
    epochs: int = 10  # -1: no epoch limit (then max_steps ends the run), as Lightning's max_epochs=-1
    max_steps: int = -1  # -1: no step limit
    seed: int = 0
    accelerator: str = "auto"
    devices: int = 1
    num_nodes: int = 1
    precision: str = "32-true"
    checkpoint_every: int = 200  # training steps
    val_every: int = 1  # epochs
    logger: str = "csv"  # csv or tensorboard
    progress: bool = True


@dataclass
class TrainConfig:
    data: DataConfig = field(default_factory=DataConfig)
    face: FaceConfig = field(default_factory=FaceConfig)
    audio: AudioConfig = field(default_factory=AudioConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    features: FeaturesConfig = field(default_factory=FeaturesConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> TrainConfig:
        """Built strictly; ``method.args`` are read into the method's own dataclass and stored back whole, defaults
        included, so a run folder's config.yaml says every setting."""
        from voxface.methods import method_args

        config = build_dataclass(cls, data, source, "")
        config.method.args = dataclasses.asdict(method_args(config.method.name, config.method.args, source))
        return config

    @property
    def feature_mode(self) -> bool:
        """Training on stored encoder outputs (``features:``) instead of media."""
        return bool(self.features.voice)

    def method_args(self) -> Any:
        """``method.args`` as the method's own dataclass."""
        from voxface.methods import method_args

        return method_args(self.method.name, self.method.args)

    def validate(self, check_paths: bool = True) -> TrainConfig:
        """Check every value; with ``check_paths``, also that the data and weights exist."""
        from voxface.encoders.registry import encoder_names  # torch: imported once a configuration is checked

        checks = [
            (self.audio.encoder in encoder_names("voice"), "audio.encoder", f"one of {encoder_names('voice')}"),
            (self.face.encoder in encoder_names("face"), "face.encoder", f"one of {encoder_names('face')}"),
            (self.audio.features in ("auto", "kaldi", "speechbrain"), "audio.features", "auto, kaldi or speechbrain"),
            (self.optim.schedule in SCHEDULES, "optim.schedule", f"one of {SCHEDULES}"),
            (self.trainer.logger in ("csv", "tensorboard"), "trainer.logger", "'csv' or 'tensorboard'"),
            (self.optim.batch_size >= 2, "optim.batch_size", "at least 2"),
            *((getattr(self.optim, name) >= 0, f"optim.{name}", "0 or more (a negative rate climbs the loss)")
              for name in ("lr_audio", "lr_mapping", "lr_face", "min_lr")),
            (self.optim.weight_decay >= 0, "optim.weight_decay", "0 or more"),
            (self.optim.step_gamma > 0, "optim.step_gamma", "positive (the factor applied at each step)"),
            (self.data.crop_seconds > 0, "data.crop_seconds", "positive"),
            (self.data.face_size % 16 == 0, "data.face_size", "a multiple of 16"),
            (self.trainer.epochs >= 1 or (self.trainer.epochs == -1 and self.trainer.max_steps > 0), "trainer.epochs",
             "at least 1, or -1 (no epoch limit) with trainer.max_steps set"),
            (self.trainer.checkpoint_every >= 1, "trainer.checkpoint_every", "at least 1"),
            (0 <= self.trainer.seed < 2**32, "trainer.seed", "between 0 and 4294967295 (NumPy's seed range)"),
            (not Path(self.trainer.out).is_file(), "trainer.out",
             f"a folder for the run, not the file {self.trainer.out}"),
            (len(self.optim.tristage_ratios) == 3 and sum(self.optim.tristage_ratios) <= 1,
             "optim.tristage_ratios", "three phase shares adding up to at most 1"),
            (bool(self.data.root), "data.root", "the data set root (set it in the file or as data.root=PATH)"),
            (bool(self.face.weights), "face.weights", "a face teacher backbone.pth"),
            (bool(self.features.voice) == bool(self.features.face), "features.voice / features.face",
             "both set (feature mode: both encoders frozen) or both empty"),
            (not self.features.voice or self.face.frozen, "face.frozen", "true in feature mode"),
            (not self.features.voice or bool(self.audio.weights), "audio.weights",
             "the voice encoder's weights the voice feature store was made with (feature mode)"),
        ]
        for ok, key, expected in checks:
            if not ok:
                raise ConfigError(f"config value {key} must be {expected}")
        missing = {key: value for key, value in _locations(self).items()
                   if key in INPUTS and value and not Path(value).exists()}
        for key, value in missing.items():  # a misspelt shipped-prior name is no path: say which name was meant
            if key.endswith(".weights") and difflib.get_close_matches(value, [RELEASE_PRIOR], n=1, cutoff=0.8):
                raise ConfigError(f"config value {key}: {value} is neither a file nor the shipped prior's name; "
                                  f"did you mean {key}={RELEASE_PRIOR}?")
        if check_paths and missing:  # all at once, and how to give each its place (e.g. for a moved run folder)
            named, keys = ", ".join(f"{k}: {v}" for k, v in missing.items()), " ".join(f"{k}=PATH" for k in missing)
            raise ConfigError(f"config value {named} does not exist; give its place with {keys}" if len(missing) == 1
                              else f"config values {named} do not exist; give their places with {keys}")
        return self


# Settings that say where files are, not what training does. A run stores them absolute (``absolute_locations``)
# and they may change when a run folder is resumed or loaded after being moved (``relocate``).
LOCATIONS = ("trainer.out", "data.root", "data.lists", "face.weights", "audio.weights", "face.cache_dir",
             "features.voice", "features.face")
# must exist before training starts
INPUTS = ("data.root", "data.lists", "face.weights", "audio.weights", "features.voice", "features.face")
SHIPPED_LISTS = "voxceleb1"  # data.lists naming the shipped protocol, not a folder (protocol.lists.BUILTIN)


def _locations(config: TrainConfig) -> dict[str, str]:
    """The path-valued settings that name a path: ``{"data.root": "/data/vox1", ...}`` (empty ones kept)."""
    values = {key: getattr(getattr(config, key.split(".")[0]), key.split(".")[1]) for key in LOCATIONS}
    if values["data.lists"] == SHIPPED_LISTS:
        values["data.lists"] = ""
    return values


def _set_location(config: TrainConfig, key: str, value: str) -> None:
    section, name = key.split(".")
    setattr(getattr(config, section), name, value)


def absolute_locations(config: TrainConfig) -> TrainConfig:
    """A copy whose paths are absolute (against the current folder), so that the run folder that records them
    works from any folder later."""
    config = TrainConfig.from_dict(config.to_dict())
    for key, value in _locations(config).items():
        if value:
            _set_location(config, key, os.path.abspath(os.path.expanduser(value)))
    return config


def relocate(config: TrainConfig, run: str | Path) -> TrainConfig:
    """The configuration recorded in the run folder ``run``, for where that folder is now: ``trainer.out`` becomes
    ``run``, and a recorded path that no longer exists is looked for at the same place relative to the moved folder
    (a run folder moved together with the data beside it, as the demo's ``RUN/../../voxsynth``). A path found
    nowhere is left as recorded (``validate`` names it); a teacher cache found nowhere goes back to
    ``RUN/teacher_cache``. Each change is logged."""
    config = TrainConfig.from_dict(config.to_dict())
    run = Path(os.path.abspath(run))
    recorded = Path(config.trainer.out or run)
    # The parts the recorded run folder and the actual one end with in common (e.g. train/full) lie below the
    # folder that moved: paths under the old base are looked for under the new one.
    common = 0
    for old, new in zip(reversed(recorded.parts), reversed(run.parts), strict=False):
        if old != new or old == recorded.anchor:
            break
        common += 1
    old_base = Path(*recorded.parts[:len(recorded.parts) - common])
    new_base = Path(*run.parts[:len(run.parts) - common])
    _set_location(config, "trainer.out", str(run))
    for key, value in _locations(config).items():
        if key == "trainer.out" or not value or Path(value).exists():
            continue
        try:
            moved = new_base / Path(value).relative_to(old_base)
        except ValueError:
            moved = None
        if moved is None or not moved.exists():  # a copy under another name: the same place relative to the run
            moved = Path(os.path.normpath(run / os.path.relpath(value, recorded)))
        if moved.exists():
            log.info("%s: %s (recorded as %s; the run folder moved)", key, moved, value)
            _set_location(config, key, str(moved))
        elif key == "face.cache_dir":
            _set_location(config, key, "")  # a cache: rebuilt in the run folder
    return config


def _read_yaml(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    if path.resolve() in seen:
        raise ConfigError(f"config file {path} extends itself (through {' -> '.join(map(str, seen))})")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:  # where the parser stopped (line, column from 1) and why
        mark = getattr(err, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        said = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"{path}{where} is not valid YAML: {said}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections")
    parent = data.pop("extends", None)
    if parent:  # a path relative to this file, else a shipped name (voxsynth/base)
        near = path.parent / parent
        if not near.is_file() and not Path(parent).is_absolute():
            try:
                near = resolve_config(parent)
            except ConfigError:
                raise ConfigError(f"{path}: extends: {parent} is neither a file beside it nor a shipped "
                                  f"configuration (shipped: {', '.join(packaged_configs())})") from None
        base = _read_yaml(near, seen + (path.resolve(),))
        searched = [section.get(SEARCH_SECTION) for section in (base, data)]
        data = _merge(base, data)
        if all(isinstance(s, dict) for s in searched):  # a search key's spec is replaced whole, not merged into
            data[SEARCH_SECTION] = {**searched[0], **searched[1]}
    return data


def _merge(base: dict, update: dict) -> dict:
    merged = dict(base)
    for key, value in update.items():
        merged[key] = _merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) \
            else value
    return merged


def _check_override_key(text: str, key: str, root: type) -> None:
    """An override's key must name a field: said as the command line's, not blamed on the config file. Keys below a
    free-form mapping (``method.args.x``) are checked when the configuration is built."""
    cls: Any = root
    for depth, part in enumerate(key.split(".")):
        if typing.get_origin(cls) is dict:
            return
        if not dataclasses.is_dataclass(cls):
            raise OverrideError(text, f"'{'.'.join(key.split('.')[:depth])}' is a value, not a section")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        if part not in fields:
            prefix = ".".join(key.split(".")[:depth])
            raise OverrideError(text, unknown_key((prefix + '.' if prefix else '') + part, list(fields)))
        cls = typing.get_type_hints(cls)[part]


def parse_override(text: str, root: type | None = None) -> dict[str, Any]:
    """``optim.batch_size=32`` -> ``{"optim": {"batch_size": 32}}`` (the value read as YAML), its key checked
    against ``root`` (default ``TrainConfig``)."""
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise OverrideError(text, "it is not of the form section.key=value")
    _check_override_key(text, key, root or TrainConfig)
    try:
        value = yaml.safe_load(raw) if raw else ""
    except yaml.YAMLError as err:  # e.g. an unclosed list: name the override, not the parser's traceback
        where = getattr(err, "problem", None) or type(err).__name__
        raise OverrideError(text, f"the value {raw!r} is not valid YAML ({where}); quote it or close its brackets, "
                                  "e.g. audio.channels=[32,32,32,32,96]") from None
    for part in reversed(key.split(".")):
        value = {part: value}
    return value


PACKAGED_CONFIGS = Path(__file__).resolve().parent.parent / "configs"  # shipped with the package


def packaged_configs() -> list[str]:
    """Names of the shipped configurations, e.g. ``voxsynth/full``, ``voxsynth/peers/pins``."""
    return sorted(str(p.relative_to(PACKAGED_CONFIGS).with_suffix("")) for p in PACKAGED_CONFIGS.rglob("*.yaml"))


def resolve_config(name: str | Path) -> Path:
    """A YAML path as given, or a shipped configuration by name: ``voxsynth/full`` (``.yaml`` optional)."""
    path = Path(name)
    if path.is_file():
        return path
    shipped = PACKAGED_CONFIGS / path.with_suffix(".yaml")
    if not path.is_absolute() and shipped.is_file():
        return shipped
    raise ConfigError(f"config {name} is neither a file nor a shipped configuration "
                      f"(shipped: {', '.join(packaged_configs())})")


def read_config(root: type, path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = (),
                ignore: tuple[str, ...] = ()) -> Any:
    """The dataclass ``root`` built strictly from a YAML file (a path or a shipped name, ``resolve_config``;
    ``extends:`` followed) and ``key.sub=value`` overrides: an unknown key fails with the nearest known name, a
    value of the wrong kind names its key and file. ``ignore``: top-level sections read by others (``search``).
    What any voxface YAML (training, pretraining) is read with."""
    data = _read_yaml(resolve_config(path)) if path else {}
    for section in ignore:
        data.pop(section, None)
    for override in overrides:
        data = _merge(data, parse_override(override, root))
    source = str(path or "overrides")
    try:  # a root with its own reader (TrainConfig: method.args against the method's dataclass) builds itself
        return root.from_dict(data, source) if hasattr(root, "from_dict") else build_dataclass(root, data, source)
    except ConfigError as err:  # a key below a free-form mapping (method.args.x) checked only now: whose is it?
        for override in overrides:
            key = override.partition("=")[0]
            if getattr(err, "key", None) == key or f"config value {key} " in str(err):
                raise OverrideError(override, str(err).removeprefix(f"{source}: ")) from None
        raise


SEARCH_SECTION = "search"  # a training file's search space for voxface benchmark --tune (tuning.py)


def read_search(path: str | Path) -> dict[str, Any]:
    """A training file's ``search:`` section (``extends:`` followed; empty when it has none), as written: what
    ``tuning.search_space`` parses. ``ConfigError`` when the file cannot be read or the section is no mapping."""
    source = resolve_config(path)
    section = _read_yaml(source).get(SEARCH_SECTION) or {}
    if not isinstance(section, dict):
        raise ConfigError(f"{source}: {SEARCH_SECTION}: must map config keys to their choices or ranges, got "
                          f"{section!r}")
    return section


RELEASE_PRIOR = "voxsynth-prior"  # face.weights / audio.weights: VoxSynth's shipped release prior of that modality


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = (),
                check_paths: bool = True) -> TrainConfig:
    """Read (a path or a shipped name, ``resolve_config``), merge overrides into, and validate a training
    configuration. ``face.weights`` / ``audio.weights`` set to ``voxsynth-prior`` name VoxSynth's shipped release
    priors (``synth/release.py``)."""
    config = read_config(TrainConfig, path, overrides, ignore=(SEARCH_SECTION,))
    for section, modality in ((config.face, "face"), (config.audio, "voice")):
        if section.weights == RELEASE_PRIOR:  # synth/release.py release_prior's files, named here without importing it
            name = "backbone.pth" if modality == "face" else "embedding_model.ckpt"
            section.weights = str(Path(__file__).resolve().parents[1] / "synth" / "priors" / modality / name)
    voice_shape_from_weights(config)
    return config.validate(check_paths)


def voice_shape_from_weights(config: TrainConfig) -> None:
    """Set ``audio.channels`` / ``audio.embedding_size`` to the shape of the ECAPA-TDNN in ``audio.weights``, so that
    a run's saved configuration records the encoder it trains: the weights fix the architecture
    (``encoders.registry.build_voice_encoder`` builds it from them), and the two fields describe only a randomly
    initialised encoder. Values set otherwise than the defaults and the weights are logged as ignored. Nothing is
    done without ECAPA weights on disk; a file that holds none is left for the encoder's loader to refuse."""
    audio = config.audio
    if audio.encoder != "ecapa" or not audio.weights or not Path(audio.weights).is_file():
        return
    from voxface.encoders.loading import ecapa_config, read_state_dict
    from voxface.errors import VoxfaceError

    try:
        shape = ecapa_config(read_state_dict(audio.weights), source=str(audio.weights))
    except VoxfaceError:
        return
    channels, size = [int(c) for c in shape["channels"]], int(shape["embedding_size"])
    given = (list(audio.channels), audio.embedding_size)
    if given != (channels, size) and given != (AudioConfig().channels, AudioConfig().embedding_size):
        log.warning("audio.channels=%s and audio.embedding_size=%s are ignored: audio.weights %s holds an "
                    "ECAPA-TDNN %s (%d-d), which the run trains and records", given[0], given[1], audio.weights,
                    channels, size)
    audio.channels, audio.embedding_size = channels, size


def voxceleb_leakage(config: TrainConfig, provenance: dict[str, Any] | None = None) -> str | None:
    """A warning when the voice encoder starts from weights that heard VoxCeleb (a SpeechBrain
    ``spkrec-ecapa-voxceleb`` checkpoint has heard 237 of the 250 unseen-unheard test identities); None for weights
    whose provenance says otherwise (``voxface pretrain``'s voice prior) or no weights. ``provenance``: what a
    checkpoint recorded of the weights (``encoder_record``); default: read beside ``audio.weights`` now."""
    from voxface.encoders.registry import provenance_file, weights_provenance

    given = provenance
    provenance = provenance or weights_provenance(config.audio.encoder, config.audio.weights)
    if not provenance.get("heard_voxceleb"):
        return None
    recorded = given is not None or provenance_file(config.audio.weights).is_file()
    overstate = "unseen-unheard numbers overstate how the method generalises to unheard voices"
    if recorded:
        return (f"audio.weights {config.audio.weights} was trained on {provenance['trained_on']}: it has heard 237 "
                f"of the 250 VoxCeleb1 unseen-unheard test identities, so {overstate}")
    record = provenance_file(config.audio.weights)  # an ECAPA-TDNN without one is taken for SpeechBrain's release
    return (f"audio.weights {config.audio.weights} has no provenance record ({record}), so it is taken to be trained "
            f"on {provenance['trained_on']}: if so, it has heard 237 of the 250 VoxCeleb1 unseen-unheard test "
            f"identities and {overstate}; if not, write {record} as "
            '{"trained_on": "<what it was trained on>", "heard_voxceleb": false}')


# Where a training checkpoint records its encoders (encoders/registry.py encoder_record) and method
ENCODERS_KEY = "voxface_encoders"
