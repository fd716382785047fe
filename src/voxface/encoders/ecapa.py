"""ECAPA-TDNN speaker encoder (Desplanques et al. 2020) in SpeechBrain's module layout.

SpeechBrain cannot be installed here (it needs torchaudio, DESIGN.md §4), so this is written anew
with the same module names: a state dict from SpeechBrain's ``spkrec-ecapa-voxceleb``
``embedding_model.ckpt`` loads key for key (``blocks.0.conv.conv.weight``, ``blocks.1.res2net_block.
blocks.0.conv.conv.weight``, ``asp_bn.norm.running_mean``, ``fc.conv.weight``, ...). Convolutions use
"same" reflect padding, as SpeechBrain's ``Conv1d`` does.

Variable-length batches: with ``lengths`` (valid frames per sample) every convolution reflects at
each sample's own end, and the SE and attentive-pooling statistics use only valid frames, so in
eval mode an embedding does not depend on how much padding its batch added.

Example:
    >>> model = ECAPATDNN(input_size=80, channels=(64, 64, 64, 64, 192), embedding_size=96).eval()
    >>> model(torch.randn(3, 200, 80), lengths=torch.tensor([200, 150, 120])).shape
    torch.Size([3, 96])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _reflect_index(lengths: torch.Tensor, total: int, pad: int) -> torch.Tensor:
    """(B, total + 2 pad) frame indices: reflect padding at the start and at each sample's own end."""
    positions = torch.arange(-pad, total + pad, device=lengths.device)[None, :]
    last = (lengths[:, None] - 1).clamp(min=0)
    index = positions.abs()
    index = torch.where(index > last, 2 * last - index, index)
    return index.clamp(min=0, max=total - 1)


class Conv1d(nn.Module):
    """SpeechBrain's ``Conv1d`` wrapper (module ``conv``) with "same" reflect padding, stride 1."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dilation: int = 1, groups: int = 1):
        super().__init__()
        self.pad = dilation * (kernel_size - 1) // 2
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, dilation=dilation, groups=groups)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        if self.pad:
            if lengths is None or bool((lengths == x.shape[-1]).all()):
                x = F.pad(x, (self.pad, self.pad), mode="reflect")
            else:
                index = _reflect_index(lengths, x.shape[-1], self.pad)
                x = x.gather(2, index[:, None, :].expand(-1, x.shape[1], -1))
        return self.conv(x)


class BatchNorm1d(nn.Module):
    """SpeechBrain's ``BatchNorm1d`` wrapper (module ``norm``)."""

    def __init__(self, input_size: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(input_size, eps=1e-5, momentum=0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x)


class TDNNBlock(nn.Module):
    """conv -> ReLU -> BatchNorm, SpeechBrain's order."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dilation: int, groups: int = 1):
        super().__init__()
        self.conv = Conv1d(in_channels, out_channels, kernel_size, dilation, groups)
        self.activation = nn.ReLU()
        self.norm = BatchNorm1d(out_channels)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.norm(self.activation(self.conv(x, lengths)))


class Res2NetBlock(nn.Module):
    def __init__(self, channels: int, scale: int, kernel_size: int, dilation: int) -> None:
        super().__init__()
        self.scale = scale
        self.blocks = nn.ModuleList(
            TDNNBlock(channels // scale, channels // scale, kernel_size, dilation) for _ in range(scale - 1))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        outputs = []
        for i, chunk in enumerate(torch.chunk(x, self.scale, dim=1)):
            if i == 0:
                y = chunk
            elif i == 1:
                y = self.blocks[0](chunk, lengths)
            else:
                y = self.blocks[i - 1](chunk + y, lengths)
            outputs.append(y)
        return torch.cat(outputs, dim=1)


def _valid_mask(lengths: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor:
    """(B, 1, T) float mask of valid frames."""
    if lengths is None:
        return torch.ones(x.shape[0], 1, x.shape[-1], device=x.device, dtype=x.dtype)
    return (torch.arange(x.shape[-1], device=x.device)[None, :] < lengths[:, None]).to(x.dtype)[:, None, :]


class SEBlock(nn.Module):
    def __init__(self, channels: int, se_channels: int) -> None:
        super().__init__()
        self.conv1 = Conv1d(channels, se_channels, 1)
        self.relu = nn.ReLU()
        self.conv2 = Conv1d(se_channels, channels, 1)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        mask = _valid_mask(lengths, x)
        s = (x * mask).sum(dim=2, keepdim=True) / mask.sum(dim=2, keepdim=True)
        return self.sigmoid(self.conv2(self.relu(self.conv1(s)))) * x


class SERes2NetBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, scale: int, se_channels: int, kernel_size: int,
                 dilation: int) -> None:
        super().__init__()
        self.tdnn1 = TDNNBlock(in_channels, out_channels, 1, 1)
        self.res2net_block = Res2NetBlock(out_channels, scale, kernel_size, dilation)
        self.tdnn2 = TDNNBlock(out_channels, out_channels, 1, 1)
        self.se_block = SEBlock(out_channels, se_channels)
        self.shortcut = Conv1d(in_channels, out_channels, 1) if in_channels != out_channels else None

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        residual = self.shortcut(x) if self.shortcut is not None else x
        x = self.tdnn2(self.res2net_block(self.tdnn1(x), lengths))
        return self.se_block(x, lengths) + residual


class AttentiveStatisticsPooling(nn.Module):
    """Channel- and context-dependent attentive mean and standard deviation (with global context)."""

    def __init__(self, channels: int, attention_channels: int) -> None:
        super().__init__()
        self.eps = 1e-12
        self.tdnn = TDNNBlock(channels * 3, attention_channels, 1, 1)
        self.tanh = nn.Tanh()
        self.conv = Conv1d(attention_channels, channels, 1)

    def _statistics(self, x: torch.Tensor, weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean = (weights * x).sum(dim=2)
        std = torch.sqrt((weights * (x - mean[:, :, None]).pow(2)).sum(dim=2).clamp(self.eps))
        return mean, std

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        frames = x.shape[-1]
        mask = _valid_mask(lengths, x)
        mean, std = self._statistics(x, mask / mask.sum(dim=2, keepdim=True))
        context = torch.cat([x, mean[:, :, None].expand(-1, -1, frames), std[:, :, None].expand(-1, -1, frames)], 1)
        attention = self.conv(self.tanh(self.tdnn(context)))
        attention = F.softmax(attention.masked_fill(mask == 0, float("-inf")), dim=2)
        mean, std = self._statistics(x, attention)
        return torch.cat([mean, std], dim=1)[:, :, None]


class ECAPATDNN(nn.Module):
    """(B, frames, input_size) fbank features (+ valid frame counts) -> (B, embedding_size).

    The defaults are SpeechBrain's ``spkrec-ecapa-voxceleb`` (C = 1024, 20.77M parameters).
    """

    def __init__(self, input_size: int = 80, channels: tuple[int, ...] = (1024, 1024, 1024, 1024, 3072),
                 kernel_sizes: tuple[int, ...] = (5, 3, 3, 3, 1), dilations: tuple[int, ...] = (1, 2, 3, 4, 1),
                 attention_channels: int = 128, res2net_scale: int = 8, se_channels: int = 128,
                 embedding_size: int = 192) -> None:
        super().__init__()
        if not len(channels) == len(kernel_sizes) == len(dilations):
            raise ValueError("channels, kernel_sizes and dilations must have the same length")
        if any(c % res2net_scale for c in channels[1:-1]):
            raise ValueError(f"the SE-Res2Net channels {channels[1:-1]} must divide by res2net_scale {res2net_scale}")
        self.input_size, self.embedding_size = input_size, embedding_size
        self.blocks = nn.ModuleList([TDNNBlock(input_size, channels[0], kernel_sizes[0], dilations[0])])
        for i in range(1, len(channels) - 1):
            self.blocks.append(SERes2NetBlock(channels[i - 1], channels[i], res2net_scale, se_channels,
                                              kernel_sizes[i], dilations[i]))
        self.mfa = TDNNBlock(sum(channels[1:-1]), channels[-1], kernel_sizes[-1], dilations[-1])
        self.asp = AttentiveStatisticsPooling(channels[-1], attention_channels)
        self.asp_bn = BatchNorm1d(channels[-1] * 2)
        self.fc = nn.Module()
        self.fc.conv = nn.Conv1d(channels[-1] * 2, embedding_size, kernel_size=1)  # key "fc.conv.weight"

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        if feats.dim() != 3 or feats.shape[-1] != self.input_size:
            raise ValueError(f"ECAPA-TDNN takes (batch, frames, {self.input_size}) features, got {tuple(feats.shape)}")
        if lengths is not None:
            lengths = lengths.to(feats.device)
            if bool((lengths < 1).any()) or bool((lengths > feats.shape[1]).any()):
                raise ValueError(f"frame lengths must lie in 1..{feats.shape[1]}, got {lengths.tolist()}")
        x = feats.transpose(1, 2)
        outputs = []
        for block in self.blocks:
            x = block(x, lengths)
            outputs.append(x)
        x = self.mfa(torch.cat(outputs[1:], dim=1), lengths)
        x = self.asp_bn(self.asp(x, lengths))
        return self.fc.conv(x)[:, :, 0]
