"""IResNet face-recognition backbones in the ArcFace (insightface ``arcface_torch``) style.

The module names and shapes match ``arcface_torch/backbones/iresnet.py`` key for key, so a released
``backbone.pth`` (a plain state dict) loads strictly into ``iresnet34()``. A width multiplier and an
input size (the ``fc`` layer is sized from it) give small models for CPU experiments.

Example:
    >>> net = iresnet34(width=0.25, num_features=128, input_size=64).eval()
    >>> net(torch.randn(2, 3, 64, 64)).shape
    torch.Size([2, 128])
"""

from __future__ import annotations

import torch
from torch import nn

LAYERS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 14, 3), 100: (3, 13, 30, 3)}


def _conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding=1, bias=False)


class IBasicBlock(nn.Module):
    """BN -> conv3x3 -> BN -> PReLU -> conv3x3 (stride) -> BN, plus the (downsampled) input."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(inplanes, eps=1e-5)
        self.conv1 = _conv3x3(inplanes, planes)
        self.bn2 = nn.BatchNorm2d(planes, eps=1e-5)
        self.prelu = nn.PReLU(planes)
        self.conv2 = _conv3x3(planes, planes, stride)
        self.bn3 = nn.BatchNorm2d(planes, eps=1e-5)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
        return out + (self.downsample(x) if self.downsample is not None else x)


class IResNet(nn.Module):
    """(B, 3, S, S) RGB in (x/255 - 0.5)/0.5 scale -> (B, num_features) face embedding."""

    def __init__(self, layers: tuple[int, ...], num_features: int = 512, width: float = 1.0, input_size: int = 112,
                 dropout: float = 0.0) -> None:
        super().__init__()
        if input_size % 16:
            raise ValueError(f"input size must be a multiple of 16 (four stride-2 stages), got {input_size}")
        widths = [max(8, int(round(c * width))) for c in (64, 128, 256, 512)]
        self.input_size, self.num_features = input_size, num_features
        self.inplanes = widths[0]
        self.conv1 = nn.Conv2d(3, widths[0], kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0], eps=1e-5)
        self.prelu = nn.PReLU(widths[0])
        self.layer1 = self._make_layer(widths[0], layers[0])
        self.layer2 = self._make_layer(widths[1], layers[1])
        self.layer3 = self._make_layer(widths[2], layers[2])
        self.layer4 = self._make_layer(widths[3], layers[3])
        self.bn2 = nn.BatchNorm2d(widths[3], eps=1e-5)
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(widths[3] * (input_size // 16) ** 2, num_features)
        self.features = nn.BatchNorm1d(num_features, eps=1e-5)
        nn.init.constant_(self.features.weight, 1.0)
        self.features.weight.requires_grad = False  # as in arcface_torch: a fixed-scale BN on the embedding

    @property
    def embedding_size(self) -> int:  # the encoder interface's name for num_features (encoders/registry.py)
        return self.num_features

    def _make_layer(self, planes: int, blocks: int) -> nn.Sequential:
        downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes, kernel_size=1, stride=2, bias=False),
                                   nn.BatchNorm2d(planes, eps=1e-5))
        layers = [IBasicBlock(self.inplanes, planes, 2, downsample)]
        self.inplanes = planes
        layers += [IBasicBlock(planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (self.input_size, self.input_size):
            raise ValueError(f"face batch of size {tuple(x.shape[-2:])}, this model takes {self.input_size}x"
                             f"{self.input_size}")
        x = self.prelu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.dropout(torch.flatten(self.bn2(x), 1))
        return self.features(self.fc(x))


def iresnet(depth: int = 34, **kwargs) -> IResNet:
    """IResNet-18/34/50/100; keyword arguments as ``IResNet``."""
    if depth not in LAYERS:
        raise ValueError(f"IResNet depth must be one of {sorted(LAYERS)}, got {depth}")
    return IResNet(LAYERS[depth], **kwargs)


def iresnet18(**kwargs) -> IResNet:
    return iresnet(18, **kwargs)


def iresnet34(**kwargs) -> IResNet:
    return iresnet(34, **kwargs)


def iresnet50(**kwargs) -> IResNet:
    return iresnet(50, **kwargs)
