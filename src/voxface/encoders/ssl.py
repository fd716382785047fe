"""Wav2vec 2.0 / HuBERT / WavLM voice encoders (paper §5.1.2) through transformers, from a local folder.

The encoder's frame features (the last layer, or a learned softmax-weighted sum of all hidden
layers) are mean-pooled over valid frames (paper: "average pooling") and projected to the embedding
size. Nothing is downloaded: the folder is a HuggingFace ``save_pretrained`` directory on disk.

Facts this relies on (DESIGN.md §4): ``layerdrop`` must be 0 when hidden states are used; freezing
the CNN feature encoder (``feature_extractor._freeze_parameters()``) is not saved with the weights,
so it is applied whenever the encoder is built; "group-norm" models (the base ones) change their
outputs with padding even with an attention mask, so clips of different lengths are encoded one by one.

Weights are always loaded in float32, whatever dtype the folder was saved in (transformers 5 would
otherwise keep a float16 save in float16). Waveform normalisation follows the folder's
``preprocessor_config.json`` (``do_normalize``) when there is one; without it (``save_pretrained`` on
the model alone writes none), it follows ``feat_extract_norm`` in ``config.json``: fairseq pairs a
"layer"-norm feature encoder with zero-mean unit-variance waveforms and a "group"-norm one with raw
waveforms (facebookresearch/fairseq#4687).

Example:
    >>> encoder = SSLEncoder.from_pretrained("/models/wav2vec2-base", embedding_size=192)  # doctest: +SKIP
    >>> encoder(torch.randn(4, 32000)).shape  # doctest: +SKIP
    torch.Size([4, 192])
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from voxface.errors import WeightsError

SUPPORTED = ("wav2vec2", "hubert", "wavlm")
log = logging.getLogger("voxface")


def _float32() -> dict[str, torch.dtype]:
    """The keyword that makes transformers build or load a model in float32: ``dtype`` since 4.56
    (huggingface/transformers#39782), ``torch_dtype`` before."""
    import transformers
    from packaging.version import Version

    return {"dtype" if Version(transformers.__version__) >= Version("4.56") else "torch_dtype": torch.float32}


def model_from_config(hf_config: dict[str, Any], source: str) -> nn.Module:
    """A randomly initialised float32 Wav2vec 2.0 / HuBERT / WavLM from a ``config.to_dict()`` (``source``, the file
    it was stored in, names it in errors); weights are loaded into it afterwards."""
    from transformers import AutoConfig, AutoModel

    hf = dict(hf_config)
    try:
        config = AutoConfig.for_model(hf.pop("model_type"), **hf)
    except (KeyError, ValueError) as err:
        raise WeightsError(f"{source}: the stored SSL encoder configuration cannot be read: {err}") from None
    return AutoModel.from_config(config, **_float32())


def waveform_normalisation(directory: Path, config: Any) -> tuple[bool, str]:
    """Whether the model in ``directory`` expects zero-mean unit-variance waveforms, and why (for the log).

    ``preprocessor_config.json``'s ``do_normalize`` when present (absent from it: True, the default of
    transformers' Wav2Vec2FeatureExtractor); otherwise ``feat_extract_norm`` == "layer", as fairseq pretrains
    them (a layer-norm feature encoder with normalised input, a group-norm one with raw input: fairseq#4687).
    """
    preprocessor = directory / "preprocessor_config.json"
    if preprocessor.is_file():
        try:
            settings = json.loads(preprocessor.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise WeightsError(f"{preprocessor} cannot be read: {err}") from None
        if not isinstance(settings, dict):
            raise WeightsError(f"{preprocessor} must hold a JSON object, got {type(settings).__name__}")
        value = bool(settings.get("do_normalize", True))
        return value, f"do_normalize={str(value).lower()} in {preprocessor.name}"
    norm = getattr(config, "feat_extract_norm", "group")
    return norm == "layer", (f"no preprocessor_config.json; config.json has feat_extract_norm={norm!r}, which "
                             f"fairseq pretrains on {'normalised' if norm == 'layer' else 'raw'} waveforms")


class SSLEncoder(nn.Module):
    """(B, samples) 16 kHz waveforms (+ valid sample counts) -> (B, embedding_size)."""

    input = "waveform"

    def __init__(self, model: nn.Module, embedding_size: int | None = 192, layer_weighting: bool = False,
                 freeze_feature_encoder: bool = True, finetune_top_layers: int | None = None,
                 normalize_waveform: bool = False) -> None:
        super().__init__()
        self.model = model
        self.config = model.config
        self.config.layerdrop = 0.0
        self.group_norm = getattr(self.config, "feat_extract_norm", "group") == "group"
        self.normalize_waveform = normalize_waveform
        self.freeze_feature_encoder = freeze_feature_encoder
        self.finetune_top_layers = finetune_top_layers
        layers = self.config.num_hidden_layers
        self.layer_weights = nn.Parameter(torch.zeros(layers + 1)) if layer_weighting else None
        hidden = self.config.hidden_size
        self.projection = nn.Linear(hidden, embedding_size) if embedding_size else nn.Identity()
        self.embedding_size = embedding_size or hidden
        self.apply_freezing()

    def apply_freezing(self) -> None:
        """Freeze the CNN feature encoder and all but the top ``finetune_top_layers`` transformer layers."""
        if self.freeze_feature_encoder:
            self.model.feature_extractor._freeze_parameters()
        if self.finetune_top_layers is not None:
            layers = self.model.encoder.layers
            if not 0 <= self.finetune_top_layers <= len(layers):
                raise WeightsError(f"finetune_top_layers must lie in 0..{len(layers)}, got {self.finetune_top_layers}")
            trainable = {id(p) for layer in list(layers)[len(layers) - self.finetune_top_layers:]
                         for p in layer.parameters()}
            for parameter in self.model.parameters():
                if id(parameter) not in trainable:
                    parameter.requires_grad = False

    @classmethod
    def from_pretrained(cls, directory: str | Path, apply_spec_augment: bool = False, **kwargs) -> SSLEncoder:
        """Load a Wav2vec 2.0 / HuBERT / WavLM ``save_pretrained`` folder (config.json + weights) in float32;
        ``normalize_waveform`` defaults to what ``waveform_normalisation`` reads from the folder (logged).

        Raises ``WeightsError`` naming the folder when it is not a supported model folder or does not load.
        """
        from transformers import AutoConfig, AutoModel
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        directory = Path(directory)
        if not (directory / "config.json").is_file():
            raise WeightsError(f"{directory} is not a HuggingFace model folder (no config.json)")
        try:
            config = AutoConfig.from_pretrained(directory, local_files_only=True)
        except (OSError, ValueError) as err:
            raise WeightsError(f"{directory}/config.json cannot be read: {err}") from None
        if config.model_type not in SUPPORTED:
            raise WeightsError(f"{directory} holds a {config.model_type!r} model; supported: {SUPPORTED}")
        config.layerdrop = 0.0
        config.apply_spec_augment = apply_spec_augment
        # the dtype config.json gives: "dtype" since transformers 4.56, "torch_dtype" before (read without the
        # deprecated property, which logs a warning)
        saved = vars(config).get("dtype") or vars(config).get("torch_dtype")
        try:  # float32 said explicitly: transformers 5 would keep a float16 save in float16 (dtype "auto")
            model = AutoModel.from_pretrained(directory, config=config, local_files_only=True, **_float32())
        except Exception as err:  # one line naming the folder, whatever transformers or safetensors raise
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise WeightsError(f"{directory}: the weights do not load: {first}") from None
        if saved is not None and str(saved).removeprefix("torch.") != "float32":
            log.info("%s: saved as %s (config.json), loaded in float32", directory, str(saved).removeprefix("torch."))
        if "normalize_waveform" not in kwargs:
            kwargs["normalize_waveform"], why = waveform_normalisation(directory, config)
            log.info("%s: waveform normalisation %s (%s)", directory, "on" if kwargs["normalize_waveform"] else "off",
                     why)
        return cls(model, **kwargs)

    def front_end(self) -> dict[str, Any]:
        """``{"input": "waveform", "normalize_waveform": bool}``: what the encoder does to a waveform first."""
        return {"input": "waveform", "normalize_waveform": bool(self.normalize_waveform)}

    def frame_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return self.model._get_feat_extract_output_lengths(lengths).long()

    def _normalise(self, wave: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Zero mean, unit variance over each clip's valid samples, as Wav2Vec2FeatureExtractor does."""
        mask = (torch.arange(wave.shape[1], device=wave.device)[None] < lengths[:, None]).to(wave.dtype)
        count = mask.sum(1, keepdim=True)
        mean = (wave * mask).sum(1, keepdim=True) / count
        var = ((wave - mean) ** 2 * mask).sum(1, keepdim=True) / count
        return (wave - mean) / torch.sqrt(var + 1e-7) * mask

    def _encode(self, wave: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        attention = None
        if not self.group_norm and bool((lengths < wave.shape[1]).any()):
            attention = (torch.arange(wave.shape[1], device=wave.device)[None] < lengths[:, None]).long()
        output = self.model(wave, attention_mask=attention, output_hidden_states=self.layer_weights is not None)
        if self.layer_weights is not None:
            stacked = torch.stack(output.hidden_states, dim=0)
            frames = (torch.softmax(self.layer_weights, 0)[:, None, None, None] * stacked).sum(0)
        else:
            frames = output.last_hidden_state
        valid = self.frame_lengths(lengths).clamp(max=frames.shape[1])
        mask = (torch.arange(frames.shape[1], device=frames.device)[None] < valid[:, None]).to(frames.dtype)
        return (frames * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)

    def forward(self, wave: torch.Tensor, lengths: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """``generator`` is unused (the voice-encoder interface, ``fbank_encoder.py``): transformers' own time
        masking (``apply_spec_augment``) draws from the global generator, which training reseeds every step."""
        if wave.dim() != 2:
            raise ValueError(f"SSL encoders take (batch, samples) waveforms, got {tuple(wave.shape)}")
        if lengths is None:
            lengths = torch.full((wave.shape[0],), wave.shape[1], device=wave.device)
        lengths = lengths.to(wave.device)
        if self.normalize_waveform:
            wave = self._normalise(wave, lengths)
        if self.group_norm and bool((lengths < wave.shape[1]).any()):
            # Group-norm feature encoders see padding even with a mask: encode each clip at its length.
            pooled = torch.cat([self._encode(w[None, :n], n[None]) for w, n in zip(wave, lengths, strict=True)])
        else:
            pooled = self._encode(wave, lengths)
        return self.projection(pooled)
