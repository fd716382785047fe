"""A method is a module: what one voice-face approach trains on top of the two encoders, found by name.

A method owns its heads, its loss and any frozen reference it needs (open_clip's task habit); the training loop
knows none of them. It declares which batches it needs (``sampler``, ``batch_keys``), turns a batch into named
terms (``losses``: the loop sums the terms whose name ends in ``_loss`` and logs every term), and embeds each
modality (``embed_face``, ``embed_voice``) for evaluation. Its settings are its own dataclass ``Args``, read
from ``method.args`` with the configuration's strict, nearest-name errors.

The encoders are given to it (``encoders/registry.py``). In feature mode (``features:`` in a training config)
there are none: batches carry what the frozen encoders produced, read from a feature store, and only the heads
train; a method then works unchanged, since it sees encoder outputs through ``encode_face`` / ``encode_voice``.

Adding a method: one file in ``voxface/methods/`` with a ``Method`` subclass decorated ``@register_method``, whose
docstring has a runnable example, and one YAML config naming it (``method.name``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import nn

from voxface.errors import ConfigError

# What a method's batches are made of (training/data.py makes them):
# - identity_unique: one (voice, face) pair per identity in a global batch (contrastive losses treat the rest of the
#   batch as negatives, so no negative is a false one);
# - identity_classes: P identities with K pairs each (K: the method's ``pairs_per_identity``), for losses that need
#   positives within a batch (lifted structure, center loss);
# - video_pairs: voice clips drawn uniformly, each with a face of the same video, labels unused (self-supervised
#   methods: a batch may hold an identity twice, as it would without labels).
SAMPLERS = ("identity_unique", "identity_classes", "video_pairs")
# What a batch may carry besides the inputs, each (B,) int64: the training identity (0..identities-1), its gender
# and nationality (indices into LabelSpace's sorted values), the clip's video and the clip itself (global indices
# over the training split). A method receives only the keys it declares in ``batch_keys``.
BATCH_KEYS = ("identity", "gender", "nationality", "video", "clip")
METHODS: dict[str, type[Method]] = {}


@dataclasses.dataclass(frozen=True)
class LabelSpace:
    """The sizes of the training split's label spaces: what classifiers and memory banks are built for.

    Saved with a checkpoint (``hyper_parameters.labels``), so a trained classifier rebuilds at its size."""

    identities: int
    genders: int = 2
    nationalities: int = 1
    videos: int = 0
    clips: int = 0
    gender_names: tuple[str, ...] = ("f", "m")
    nationality_names: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "gender_names": list(self.gender_names),
                "nationality_names": list(self.nationality_names)}

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> LabelSpace | None:
        if not values:
            return None
        return cls(**{**values, "gender_names": tuple(values.get("gender_names", ("f", "m"))),
                      "nationality_names": tuple(values.get("nationality_names", ()))})


@dataclasses.dataclass
class Towers:
    """What a method is built on: the two encoders (None in feature mode) and their output sizes."""

    face: nn.Module | None
    voice: nn.Module | None
    face_dim: int
    voice_dim: int
    face_frozen: bool = True
    voice_frozen: bool = False
    labels: LabelSpace | None = None  # the training split's label sizes; None where nothing trains (examples)

    @classmethod
    def of(cls, face: nn.Module, voice: nn.Module, face_frozen: bool = True, voice_frozen: bool = False,
           labels: LabelSpace | None = None) -> Towers:
        return cls(face, voice, face.embedding_size, voice.embedding_size, face_frozen, voice_frozen, labels)

    def label_space(self, method: str) -> LabelSpace:
        """The label sizes, for a method that builds classifiers or memory banks; ConfigError when absent."""
        if self.labels is None:
            raise ConfigError(f"the {method} method needs the training split's label sizes (Towers.labels)")
        return self.labels


class Method(nn.Module):
    """Base class: holds the encoders (frozen ones kept in eval mode, outside autograd) and the two embedding paths.

    Subclasses set ``name``, ``Args`` (a dataclass; ``validate()`` raises ``ConfigError`` naming
    ``method.args.<key>``), ``sampler`` and ``batch_keys``, and implement ``face_head``, ``voice_head`` and
    ``losses``.
    """

    name: ClassVar[str]
    Args: ClassVar[type]
    # how reports name it ("Learnable PINs (Nagrani et al., ECCV 2018)"), and its label in recipes/published.csv
    # where published figures exist for it ("PINs")
    citation: ClassVar[str] = ""
    published_as: ClassVar[str] = ""
    sampler: ClassVar[str] = "identity_unique"
    # what losses() reads besides the two inputs ("face" images or "face_features", "wave" or "voice_features"):
    # a subset of BATCH_KEYS; the training loop hands a method no other key (a label-free method sees no label)
    batch_keys: ClassVar[tuple[str, ...]] = ()
    # identity_classes batches: pairs of each identity in a batch (K of P x K)
    pairs_per_identity: int = 1

    def __init__(self, args: Any, towers: Towers) -> None:
        super().__init__()
        self.args, self.towers = args, towers
        self.face_encoder, self.voice_encoder = towers.face, towers.voice
        for encoder, frozen in ((towers.face, towers.face_frozen), (towers.voice, towers.voice_frozen)):
            if encoder is not None and frozen:
                encoder.requires_grad_(False)

    def train(self, mode: bool = True) -> Method:
        super().train(mode)
        for encoder, frozen in ((self.face_encoder, self.towers.face_frozen),
                                (self.voice_encoder, self.towers.voice_frozen)):
            if encoder is not None and frozen:
                encoder.eval()  # a frozen encoder keeps its BatchNorm statistics
        return self

    # ---------------------------------------------------------------- encoders (or stored features)

    @property
    def face_size(self) -> int | None:
        """The face encoder's input size in pixels; None in feature mode."""
        return getattr(self.face_encoder, "input_size", None)

    def encode_face(self, faces: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) normalised faces -> the face encoder's (B, face_dim) output (no gradient when frozen)."""
        if self.face_encoder is None:
            raise ConfigError(f"the {self.name} model was trained on stored features: it has no face encoder; "
                              "embed stored face features instead")
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.towers.face_frozen):
            return self.face_encoder(faces)

    def encode_voice(self, wave: torch.Tensor, lengths: torch.Tensor | None = None,
                     generator: torch.Generator | None = None) -> torch.Tensor:
        """(B, samples) 16 kHz waveforms -> the voice encoder's (B, voice_dim) output."""
        if self.voice_encoder is None:
            raise ConfigError(f"the {self.name} model was trained on stored features: it has no voice encoder; "
                              "embed stored voice features instead")
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.towers.voice_frozen):
            return self.voice_encoder(wave, lengths, generator=generator)

    def face_input(self, batch: dict[str, Any]) -> torch.Tensor:
        """A batch's face encoder outputs: stored ones (``face_features``) or computed from ``face`` images."""
        return batch["face_features"] if "face_features" in batch else self.encode_face(batch["face"])

    def voice_input(self, batch: dict[str, Any], generator: torch.Generator | None = None) -> torch.Tensor:
        """A batch's voice encoder outputs: stored ones (``voice_features``) or computed from ``wave``."""
        if "voice_features" in batch:
            return batch["voice_features"]
        return self.encode_voice(batch["wave"], batch.get("lengths"), generator)

    def embedded_pairs(self, batch: dict[str, Any], gather: Callable[[torch.Tensor], torch.Tensor],
                       generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch's faces and voices through the heads, each (global B, D), gathered over ranks."""
        face = gather(self.face_head(self.face_input(batch)))
        return face, gather(self.voice_head(self.voice_input(batch, generator)))

    # ---------------------------------------------------------------- what a method defines

    def face_head(self, encoded: torch.Tensor) -> torch.Tensor:
        """(B, face_dim) face encoder outputs -> (B, D) embeddings in the shared space."""
        raise NotImplementedError

    def voice_head(self, encoded: torch.Tensor) -> torch.Tensor:
        """(B, voice_dim) voice encoder outputs -> (B, D) embeddings in the shared space."""
        raise NotImplementedError

    def losses(self, batch: dict[str, Any], gather: Callable[[torch.Tensor], torch.Tensor],
               generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Named terms of one training batch; ``gather`` makes a rank's (B, ...) tensor the global batch's."""
        raise NotImplementedError

    def start_epoch(self, epoch: int) -> None:
        """Called at the start of every training epoch (0-based): per-epoch work such as re-clustering a memory
        bank (CMPC, Self-Lifting) or advancing a curriculum. Nothing by default."""

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """The method's own parameters (heads, learnable loss parameters), by role; the encoders' are the loop's."""
        encoders = {id(p) for e in (self.face_encoder, self.voice_encoder) if e is not None for p in e.parameters()}
        return {"heads": [p for p in self.parameters() if id(p) not in encoders]}

    # ---------------------------------------------------------------- embedding, for evaluation

    def embed_face(self, faces: torch.Tensor | None = None, *, features: torch.Tensor | None = None) -> torch.Tensor:
        """Shared-space face embeddings (B, D) from (B, 3, S, S) faces or the face encoder's stored outputs."""
        return self.face_head(features if features is not None else self.encode_face(faces))

    def embed_voice(self, wave: torch.Tensor | None = None, lengths: torch.Tensor | None = None, *,
                    features: torch.Tensor | None = None) -> torch.Tensor:
        """Shared-space voice embeddings (B, D) from (B, samples) waveforms (valid ``lengths`` for padded batches)
        or the voice encoder's stored outputs."""
        return self.voice_head(features if features is not None else self.encode_voice(wave, lengths))


def check_args(checks: list[tuple[bool, str, str]]) -> None:
    """A method's ``Args.validate``: ``(ok, key, expected)`` per setting; ConfigError for the first that fails,
    naming ``method.args.<key>`` and what it must be."""
    for ok, key, expected in checks:
        if not ok:
            raise ConfigError(f"config value method.args.{key} must be {expected}")


def register_method(cls: type[Method]) -> type[Method]:
    """Class decorator: make ``cls`` buildable by its ``name`` from a configuration."""
    if not (cls.__doc__ and ">>>" in cls.__doc__):
        raise TypeError(f"method {cls.__name__} has no runnable docstring example (>>>); every method needs one")
    if not cls.citation:
        raise TypeError(f"method {cls.__name__} has no citation (how reports name it: 'Method (Authors, venue year)')")
    if cls.sampler not in SAMPLERS:
        raise TypeError(f"method {cls.__name__} asks for sampler {cls.sampler!r}; known: {SAMPLERS}")
    if not set(cls.batch_keys) <= set(BATCH_KEYS):
        raise TypeError(f"method {cls.__name__} asks for batch keys {cls.batch_keys}; known: {BATCH_KEYS}")
    METHODS[cls.name] = cls
    return cls


def method_class(name: str) -> type[Method]:
    """The registered method ``name``; ConfigError with the nearest name otherwise."""
    import difflib

    # The shipped methods are registered already: importing this module runs voxface/methods/__init__.py,
    # which imports each of them (a lazy import of one here would make base and it import each other).
    if name not in METHODS:
        near = difflib.get_close_matches(name, list(METHODS), n=1)
        guess = f"did you mean {near[0]!r}? " if near else ""
        raise ConfigError(f"config value method.name {name!r} is no registered method ({guess}registered: "
                          f"{', '.join(sorted(METHODS))})")
    return METHODS[name]


def method_args(name: str, args: dict[str, Any], source: str = "config") -> Any:
    """``method.args`` read into the method's own dataclass (strict: an unknown key names the nearest known one)
    and validated."""
    from voxface.typed import build_dataclass

    parsed = build_dataclass(method_class(name).Args, args, source, "method.args.")
    if hasattr(parsed, "validate"):
        try:
            parsed.validate()
        except ConfigError as err:
            raise ConfigError(f"{source}: {err}") from None
    return parsed
