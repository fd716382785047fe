"""Load encoder weights from the files researchers have on disk: strict, safe, offline.

One function per source:
- ``load_insightface_backbone``: arcface_torch ``backbone.pth`` (a plain state dict) -> IResNet;
- ``load_speechbrain_ecapa``: SpeechBrain ``embedding_model.ckpt`` -> ECAPATDNN;
- ``SSLEncoder.from_pretrained`` (``ssl.py``): a HuggingFace folder -> Wav2vec 2.0 / HuBERT / WavLM.

Which of them builds an encoder named in a configuration, and this project's own single-encoder files, are
``registry.py``'s.

Every file goes through ``torch.load(weights_only=True)``, and architectures are read off the
tensor shapes, so a released file loads without the user restating its configuration. A mismatch
raises ``WeightsError`` listing the missing, unexpected and mis-shaped keys.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from voxface.encoders.ecapa import ECAPATDNN
from voxface.encoders.iresnet import LAYERS, IResNet, iresnet
from voxface.errors import WeightsError


def read_weights(path: str | Path) -> dict[str, Any]:
    """``torch.load(path, weights_only=True)`` with one-line errors."""
    path = Path(path)
    if path.is_dir():
        best = path / "checkpoints" / "best.ckpt"
        hint = f"; did you mean {best}?" if best.is_file() else " (a run's checkpoint is RUN/checkpoints/best.ckpt)"
        raise WeightsError(f"{path} is a folder, not a weights file{hint}")
    if not path.is_file():
        raise WeightsError(f"weights file {path} does not exist")
    with path.open("rb") as handle:  # torch.save writes a zip archive (PyTorch >= 1.6) or a pickle (protocol 2+)
        head = handle.read(4)
    if not (head.startswith(b"PK") or head[:1] == b"\x80"):
        raise WeightsError(f"{path} is not a PyTorch weights file: it is neither a torch.save zip archive nor a "
                           f"pickle (it starts with {head!r})")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # the one reader: whatever torch.load raises becomes one line naming the file
        refused = re.search(r"Unsupported global: GLOBAL (\S+)", str(err))
        if refused:  # weights_only refuses objects whose unpickling could run code, e.g. torch.save(model)
            raise WeightsError(f"{path} is not a readable PyTorch weights file: it holds a pickled "
                               f"{refused.group(1)}, which voxface does not unpickle (it could run code); save "
                               "the weights alone: torch.save(model.state_dict(), path)") from None
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise WeightsError(f"{path} is not a readable PyTorch weights file: {first}") from None


# Where training scripts keep the weights inside a larger dict, looked for in this order. insightface's
# arcface_torch (recognition/arcface_torch/train_v2.py) saves checkpoint_gpu_<rank>.pt as {"epoch", "global_step",
# "state_dict_backbone", "state_dict_softmax_fc", "state_optimizer", "state_lr_scheduler"}; "state_dict" is
# Lightning's and many scripts'; "model_state_dict" is PyTorch's saving tutorial's; "model" is common elsewhere.
STATE_DICT_KEYS = ("state_dict_backbone", "state_dict", "model_state_dict", "model")


def _is_state_dict(value: Any) -> bool:
    return (isinstance(value, dict) and bool(value) and all(isinstance(k, str) for k in value)
            and all(isinstance(v, torch.Tensor) for v in value.values()))


def strip_common_prefix(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], str]:
    """``state`` without the leading name parts every key shares (DistributedDataParallel's ``module.``, a
    wrapper's ``backbone.``, ``model.``, ``encoder.``, or several: ``module.backbone.``), and the prefix taken off.

    A part is taken off only while every key keeps a module name below it (``backbone.conv1.weight`` becomes
    ``conv1.weight``, never ``weight``): a model's own top level (IResNet's conv1, layer1..4, fc; ECAPA's blocks,
    mfa, asp, fc) always has several modules, so no name a model uses is lost.
    """
    prefix = ""
    while state and all(k.count(".") >= 2 for k in state):
        heads = {k.split(".", 1)[0] for k in state}
        if len(heads) != 1:
            break
        head = f"{heads.pop()}."
        state = {k[len(head):]: v for k, v in state.items()}
        prefix += head
    return state, prefix


def some_keys(state: dict[str, Any], count: int = 4) -> str:
    """A few of a state dict's keys, in its order, for an error message."""
    keys = list(state)
    return ", ".join(keys[:count]) + (f" ... ({len(keys)} keys)" if len(keys) > count else "")


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A plain state dict (parameter name -> tensor) from a file that holds one, wraps it in a training
    checkpoint (under one of ``STATE_DICT_KEYS``, e.g. arcface_torch's ``checkpoint_gpu_0.pt``) or prefixes
    every name with what every name shares (DistributedDataParallel's ``module.``, a wrapper's ``backbone.``,
    ``model.``, ``encoder.``: ``strip_common_prefix``).

    Raises ``WeightsError`` naming the file (and the top-level keys it saw) when none is found.
    """
    blob = read_weights(path)
    state = blob if _is_state_dict(blob) else None
    if state is None and isinstance(blob, dict):
        state = next((blob[key] for key in STATE_DICT_KEYS if _is_state_dict(blob.get(key))), None)
    if state is None:
        if isinstance(blob, dict):
            keys = [str(k) for k in blob]
            seen = f"its top-level keys are {', '.join(keys[:12])}{' ...' if len(keys) > 12 else ''}" if keys \
                else "it is an empty dict"
        else:
            seen = f"it holds a {type(blob).__name__}"
        raise WeightsError(f"{path} holds no state dict (parameter names -> tensors) at its top level or under "
                           f"{', '.join(STATE_DICT_KEYS)}; {seen}")
    return strip_common_prefix(state)[0]


def load_strict(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> nn.Module:
    """Load ``state`` into ``model`` if and only if every key and shape matches.

    BatchNorm ``num_batches_tracked`` counters may be absent (older releases do not save them).
    """
    own = model.state_dict()
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in own]
    misshaped = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in own
                 if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or misshaped:
        parts = [f"{len(v)} {label} (e.g. {', '.join(v[:3])})" for label, v in
                 (("missing", missing), ("unexpected", unexpected), ("mis-shaped, file vs model", misshaped)) if v]
        raise WeightsError(f"{source} does not fit {type(model).__name__}: " + "; ".join(parts))
    model.load_state_dict(state, strict=False)
    return model


def _blocks(state: dict[str, torch.Tensor], prefix: str) -> int:
    pattern = re.compile(rf"^{re.escape(prefix)}\.(\d+)\.")
    return len({int(m.group(1)) for k in state if (m := pattern.match(k))})


def iresnet_config(state: dict[str, torch.Tensor], source: str = "the state dict") -> dict[str, Any]:
    """Depth, width, input size and embedding size of an IResNet state dict (``source`` names it in errors)."""
    try:
        layers = tuple(_blocks(state, f"layer{i}") for i in range(1, 5))
        depth = next((d for d, spec in LAYERS.items() if spec == layers), None)
        if depth is None:
            nested = sorted({k.removesuffix("conv1.weight") for k in state if k.endswith(".conv1.weight")
                             and f"{k.removesuffix('conv1.weight')}layer1.0.conv1.weight" in state})
            others = [k for k in state if nested and not k.startswith(nested[0])]
            hint = (f"; an IResNet lies under {nested[0]} beside {len(others)} other weights (e.g. {others[0]}): "
                    f"save the keys under {nested[0]} alone, without that prefix" if others else "")
            raise WeightsError(f"{source} is not an arcface_torch IResNet state dict: blocks per stage {layers} "
                               f"match no known depth {sorted(LAYERS)}; its keys are {some_keys(state)}{hint}")
        last = state["layer4.0.conv2.weight"].shape[0]
        width = state["fc.weight"].shape[1]
        cells = width // last
        side = math.isqrt(cells)
        if width % last or side * side != cells or side == 0:
            # fc sees (last stage's channels) x side x side features, side = input size / 16
            raise WeightsError(f"{source}: the input size cannot be inferred: fc takes {width} features, which is "
                               f"not {last} channels times a square number of cells (input size / 16 squared)")
        # The width multiplier from the last stage's channels (512 x width): the first stages are floored at 8
        # channels (IResNet.__init__), so conv1's count misreads a width under 1/8, e.g. x0.0625's 8 as x0.125.
        return {"depth": depth, "width": last / 512,
                "input_size": 16 * math.isqrt(cells), "num_features": state["fc.weight"].shape[0]}
    except KeyError as err:
        raise WeightsError(f"{source} is not an arcface_torch IResNet state dict: no key {err}; its keys are "
                           f"{some_keys(state)}") from None


def load_insightface_backbone(path: str | Path) -> IResNet:
    """An insightface ``arcface_torch`` IResNet ``backbone.pth`` (or one ``voxface pretrain`` wrote)."""
    state = read_state_dict(path)
    config = iresnet_config(state, str(path))
    return load_strict(iresnet(**config), state, str(path))


def ecapa_config(state: dict[str, torch.Tensor], dilations: tuple[int, ...] | None = None,
                 source: str = "the state dict") -> dict[str, Any]:
    """Channels, kernels, attention, Res2Net scale, SE and embedding sizes of an ECAPA-TDNN state dict
    (``source`` names it in errors).

    Dilations leave no trace in the weights: SpeechBrain's (1, 2, 3, 4, 1) unless given.
    """
    try:
        first = state["blocks.0.conv.conv.weight"]
        blocks = _blocks(state, "blocks")
        channels = [first.shape[0]] + [state[f"blocks.{i}.tdnn1.conv.conv.weight"].shape[0] for i in range(1, blocks)]
        kernels = [first.shape[2]] + [state[f"blocks.{i}.res2net_block.blocks.0.conv.conv.weight"].shape[2]
                                      for i in range(1, blocks)]
        mfa = state["mfa.conv.conv.weight"]
        config = {
            "input_size": first.shape[1],
            "channels": tuple(channels + [mfa.shape[0]]),
            "kernel_sizes": tuple(kernels + [mfa.shape[2]]),
            "attention_channels": state["asp.tdnn.conv.conv.weight"].shape[0],
            "res2net_scale": _blocks(state, "blocks.1.res2net_block.blocks") + 1,
            "se_channels": state["blocks.1.se_block.conv1.conv.weight"].shape[0],
            "embedding_size": state["fc.conv.weight"].shape[0],
        }
    except KeyError as err:
        raise WeightsError(f"{source} is not a SpeechBrain ECAPA-TDNN state dict: no key {err}; its keys are "
                           f"{some_keys(state)}") from None
    default = (1, 2, 3, 4, 1) if len(config["channels"]) == 5 else (1,) * len(config["channels"])
    config["dilations"] = tuple(dilations or default)
    return config


def load_speechbrain_ecapa(path: str | Path, dilations: tuple[int, ...] | None = None) -> ECAPATDNN:
    """SpeechBrain's ``embedding_model.ckpt`` (e.g. ``spkrec-ecapa-voxceleb``) as an ECAPATDNN."""
    state = read_state_dict(path)
    return load_strict(ECAPATDNN(**ecapa_config(state, dilations, str(path))), state, str(path))
