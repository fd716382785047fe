"""Gather embeddings from every rank with gradients, written once for every loss (as open_clip does).

With N ranks, each computes the loss on the global batch; ``all_gather``'s backward sums each rank's
gradient for a rank's own slice, and DDP then averages parameter gradients, which together equal the
gradient of the global-batch loss computed in one process.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_nn


def gather_with_grad(tensor: torch.Tensor) -> torch.Tensor:
    """(B, ...) on each rank -> (world * B, ...), rank order, differentiable. Identity without a process group."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return tensor
    return torch.cat(dist_nn.all_gather(tensor.contiguous()), dim=0)
