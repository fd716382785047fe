"""``voxface synth --preview``: look at the data: a contact sheet of faces, log-Mel spectrograms of voices."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from voxface.media.audio import read_voice
from voxface.media.faces import read_face
from voxface.protocol.layout import DataRoots
from voxface.protocol.lists import load_protocol


def write_preview(root: str | Path, identities: int = 6, per_identity: int = 6, face_size: int = 112) -> list[Path]:
    """Write ``preview_faces.png`` and ``preview_voices.png`` into ``root``; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from voxface.media.fbank import KaldiFbank

    root = Path(root)
    protocol = load_protocol(root / "protocol")
    roots = DataRoots.from_root(root)
    people = sorted(protocol.identities.values(), key=lambda p: p.vox_id)[:identities]
    sheet = Image.new("RGB", (face_size * per_identity, face_size * len(people)), "white")
    for row, person in enumerate(people):
        faces = [f for frames in roots.face_videos(person.name).values() for f in frames][:per_identity]
        for col, face in enumerate(faces):
            sheet.paste(Image.fromarray(read_face(roots.face(face), face_size)), (col * face_size, row * face_size))
    faces_png = root / "preview_faces.png"
    sheet.save(faces_png)

    fbank = KaldiFbank()
    fig, axes = plt.subplots(len(people), 2, figsize=(10, 1.6 * len(people)), squeeze=False)
    for row, person in enumerate(people):
        clips = [c for clips in roots.voice_videos(person.vox_id).values() for c in clips]
        for col in range(2):
            ax = axes[row, col]
            wave = read_voice(roots.voice(clips[col * (len(clips) // 2)]), 3.0, None)
            feats, _ = fbank(torch.from_numpy(wave))
            ax.imshow(feats[0].T.numpy(), origin="lower", aspect="auto", cmap="magma")
            ax.set_xticks([])
            ax.set_yticks([])
            if col == 0:
                ax.set_ylabel(f"{person.gender} {person.age}\n{person.nationality}", fontsize=8)
    axes[0, 0].set_title("log-Mel fbank, 3 s, two videos per identity (rows: the face sheet's identities)", fontsize=9)
    fig.tight_layout()
    voices_png = root / "preview_voices.png"
    fig.savefig(voices_png, dpi=80)
    plt.close(fig)
    return [faces_png, voices_png]
