"""The single branch SSNet (Nawaz et al., DICTA 2019) and SBNet (Saeed et al., ICASSP 2023) share: one stack of
fully connected blocks that embeds faces and voices alike (msaadsaeed/SBNet ``ssnet_cent_git/retrieval_model.py``,
``ssnet_fop/retrieval_model.py``), behind per-modality linear adapters where the two inputs differ in size."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SingleBranch(nn.Module):
    """``e = normalize(branch(adapter_m(x)))``: ``branch`` is (Linear -> BatchNorm -> ReLU -> Dropout) per hidden
    width, the same weights for both modalities; ``adapter_m`` a Linear per modality into ``adapter_dim`` (the
    reference's inputs were both 512-d and had none: ``adapter=False`` needs equal sizes).

    ``pair`` embeds a batch's faces and voices in ONE pass, so BatchNorm's batch statistics mix the modalities
    as the reference's mixed batches do. Linear weights: Xavier-uniform, biases ``bias_init`` (the PyTorch
    reference fills 0.01; the TF1 reference zeros).

    Example:
        >>> _ = torch.manual_seed(0)
        >>> branch = SingleBranch(face_dim=24, voice_dim=16, adapter_dim=32, hidden=(8, 8))
        >>> face, voice = branch.pair(torch.randn(4, 24), torch.randn(4, 16))
        >>> face.shape, voice.shape, bool((face.norm(dim=1) <= 1 + 1e-6).all())  # unit length, or 0 if all ReLU'd
        (torch.Size([4, 8]), torch.Size([4, 8]), True)
    """

    def __init__(self, face_dim: int, voice_dim: int, adapter_dim: int = 512, hidden: tuple[int, ...] = (128, 128),
                 dropout: float = 0.5, adapter: bool = True, bias_init: float = 0.0) -> None:
        super().__init__()
        if not adapter and face_dim != voice_dim:
            raise ValueError(f"without adapters the face and voice inputs must have one size, got {face_dim} and "
                             f"{voice_dim}")
        size = adapter_dim if adapter else face_dim
        self.face_adapter = nn.Linear(face_dim, size) if adapter else nn.Identity()
        self.voice_adapter = nn.Linear(voice_dim, size) if adapter else nn.Identity()
        layers: list[nn.Module] = []
        for width in hidden:
            layers += [nn.Linear(size, width), nn.BatchNorm1d(width), nn.ReLU(), nn.Dropout(dropout)]
            size = width
        self.branch = nn.Sequential(*layers)
        self.embedding_size = size
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.constant_(module.bias, bias_init)

    def face(self, encoded: torch.Tensor) -> torch.Tensor:
        """(B, face_dim) -> (B, hidden[-1]) unit vectors."""
        return F.normalize(self.branch(self.face_adapter(encoded)), dim=1)

    def voice(self, encoded: torch.Tensor) -> torch.Tensor:
        """(B, voice_dim) -> (B, hidden[-1]) unit vectors."""
        return F.normalize(self.branch(self.voice_adapter(encoded)), dim=1)

    def pair(self, face: torch.Tensor, voice: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Both modalities through the branch together: (B_f, D) face and (B_v, D) voice unit vectors."""
        joint = self.branch(torch.cat([self.face_adapter(face), self.voice_adapter(voice)]))
        joint = F.normalize(joint, dim=1)
        return joint[: len(face)], joint[len(face):]
