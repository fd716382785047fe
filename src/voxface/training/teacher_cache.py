"""The frozen face teacher's embeddings of the faces training uses, and of their mirror images: a feature store.

A frozen teacher gives the same embedding for the same image every epoch, so decoding and encoding faces each step
is wasted work. This is ``voxface extract``'s face half (``features/``) for the train and val faces: a store in
``<cache dir>/teacher_<weights digest>/``, reused while the teacher's weights and the faces (paths, sizes, times)
are the same, made again when either changed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from voxface.encoders.iresnet import IResNet
from voxface.encoders.registry import encoder_record, weights_provenance
from voxface.features import StoreView, extract_with, weights_sha256
from voxface.protocol.layout import DataRoots


def build_teacher_cache(teacher: IResNet, weights: str | Path, roots: DataRoots, faces: list[str],
                        cache_dir: str | Path, batch_size: int = 128, workers: int = 2,
                        progress: bool = True, encoder: str = "iresnet") -> StoreView:
    """The teacher's features of ``faces`` (paths relative to ``roots.faces``), from ``weights`` (the file the
    teacher was loaded from: its digest names the store); ``encoder``: its registered name (``face.encoder``).
    Unreadable faces are left out (and logged)."""
    digest = weights_sha256(weights)
    root, prefix = roots.faces.parent, f"{roots.faces.name}/"
    record = encoder_record(encoder, teacher, weights_provenance(encoder, weights))
    keys = sorted({f"{prefix}{face}" for face in faces})
    store = extract_with(teacher, record, digest, root, keys, Path(cache_dir) / f"teacher_{digest[:16]}",
                         weights=weights, batch_size=batch_size, workers=workers, progress=progress, replace=True)
    # float16 precision, as this cache always held it: training from it reproduces the runs (and the demo's figures)
    # made before the cache became a feature store, to the last digit; feature mode reads the stores at float32
    return StoreView(store, prefix, precision=np.float16)
