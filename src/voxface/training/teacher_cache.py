"""Embeddings of every face by a frozen teacher, and of its mirror image, computed once and kept on disk.

A frozen teacher gives the same embedding for the same image every epoch, so decoding and encoding
faces each step is wasted work. The cache is keyed by the teacher (a digest of its weights and input
size) and by each file (path, size, modification time): a changed file is embedded again.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from voxface.encoders.iresnet import IResNet
from voxface.errors import MediaError
from voxface.media.cache import file_stamp, save_npz_atomic
from voxface.media.faces import face_to_tensor, read_face
from voxface.protocol.layout import DataRoots

log = logging.getLogger("voxface")


def teacher_digest(teacher: IResNet) -> str:
    digest = hashlib.sha256(f"{teacher.input_size}".encode())
    for name, tensor in sorted(teacher.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


class _Faces(Dataset):
    def __init__(self, paths: list[Path], size: int) -> None:
        self.paths, self.size = paths, size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        try:
            face = read_face(self.paths[index], self.size)
        except MediaError as err:
            return {"ok": False, "error": str(err), "faces": torch.zeros(2, 3, self.size, self.size)}
        return {"ok": True, "error": "", "faces": torch.stack([face_to_tensor(face), face_to_tensor(face, True)])}


@torch.no_grad()
def build_teacher_cache(teacher: IResNet, roots: DataRoots, faces: list[str], cache_dir: str | Path,
                        batch_size: int = 128, workers: int = 2, progress: bool = True) -> dict[str, np.ndarray]:
    """``{face path: (2, D) float16 [plain, mirrored]}`` for every readable face; unreadable ones are left out
    (and logged). Entries already on disk for this teacher and unchanged files are reused."""
    from tqdm import tqdm

    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    cache_file = cache_dir / f"teacher_{teacher_digest(teacher)}.npz"
    cached: dict[str, np.ndarray] = {}
    stamps: dict[str, str] = {}
    if cache_file.is_file():
        stored = np.load(cache_file)
        for path, stamp, embedding in zip(stored["paths"], stored["stamps"], stored["embeddings"], strict=True):
            cached[str(path)], stamps[str(path)] = embedding, str(stamp)
    wanted = sorted(set(faces))
    todo = [f for f in wanted if f not in cached or stamps[f] != file_stamp(roots.face(f))]
    if todo:
        device = next(teacher.parameters()).device
        teacher.eval()
        loader = DataLoader(_Faces([roots.face(f) for f in todo], teacher.input_size), batch_size=batch_size,
                            num_workers=workers)
        done = 0
        for batch in tqdm(loader, desc="teacher embeddings", unit="batch", disable=not progress):
            pairs = batch["faces"].to(device)
            embeddings = teacher(pairs.flatten(0, 1)).view(len(pairs), 2, -1).cpu().numpy().astype(np.float16)
            for ok, error, embedding, name in zip(batch["ok"], batch["error"], embeddings,
                                                  todo[done:done + len(pairs)], strict=True):
                if ok:
                    cached[name], stamps[name] = embedding, file_stamp(roots.face(name))
                else:
                    cached.pop(name, None)
                    log.warning("skipping bad file: %s", error)
            done += len(pairs)
        names = sorted(cached)
        save_npz_atomic(cache_file, paths=np.array(names), stamps=np.array([stamps[n] for n in names]),
                        embeddings=np.stack([cached[n] for n in names]))
    return {f: cached[f] for f in wanted if f in cached}
