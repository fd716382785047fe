"""``voxface synth --preview``: look at the data: a contact sheet of faces and log-Mel spectrograms of voices,
each row labelled with its identity, gender, nationality and age."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from voxface.media.audio import read_voice
from voxface.media.faces import read_face
from voxface.protocol.layout import DataRoots
from voxface.protocol.lists import Identity, load_protocol
from voxface.synth.voice import SAMPLE_RATE

if TYPE_CHECKING:
    from matplotlib.figure import Figure

PREVIEW_SECONDS = 3.0
GENDER_WORDS = {"m": "male", "f": "female"}


def identity_label(person: Identity) -> str:
    """``id10003 · female · USA · age 41``: a preview row's label."""
    age = f"age {person.age}" if person.age is not None else "age unknown"
    return f"{person.vox_id} · {GENDER_WORDS.get(person.gender, person.gender)} · {person.nationality} · {age}"


def faces_figure(roots: DataRoots, people: list[Identity], per_identity: int = 6, face_size: int = 112,
                 title: str = "VoxSynth") -> Figure:
    """One row of face frames per identity, labelled with ``identity_label``."""
    from voxface.evaluation.plots import pyplot

    plt = pyplot()
    fig, axes = plt.subplots(len(people), 1, figsize=(1.0 * per_identity + 2.6, 1.05 * len(people) + 0.5),
                             squeeze=False)
    for ax, person in zip(axes[:, 0], people, strict=True):
        faces = [f for frames in roots.face_videos(person.name).values() for f in frames][:per_identity]
        strip = np.full((face_size, face_size * per_identity, 3), 255, dtype=np.uint8)
        for col, face in enumerate(faces):
            strip[:, col * face_size:(col + 1) * face_size] = read_face(roots.face(face), face_size)
        ax.imshow(strip)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(identity_label(person).replace(" · ", "\n", 1), rotation=0, ha="right", va="center",
                      fontsize=7)
    fig.suptitle(f"{title}: {per_identity} face frames per identity (rows: identity, gender, nationality, age)",
                 fontsize=9)
    fig.tight_layout()
    return fig


def voices_figure(roots: DataRoots, people: list[Identity], title: str = "VoxSynth") -> Figure:
    """Two clips per identity (from two videos where it has them) as the encoder's log-Mel filterbanks, with
    time and frequency axes; one colour bar."""
    import torch

    from voxface.evaluation.plots import pyplot
    from voxface.media.fbank import KaldiFbank

    plt = pyplot()
    fbank = KaldiFbank()
    centres = fbank.mel_banks.argmax(1).numpy() * SAMPLE_RATE / fbank.padded_window  # Hz of each band's peak
    bands = np.linspace(0, len(centres) - 1, 5).round().astype(int)
    fig, axes = plt.subplots(len(people), 2, figsize=(10, 1.5 * len(people) + 1.0), squeeze=False)
    image = None
    for row, person in enumerate(people):
        clips = [c for clips in roots.voice_videos(person.vox_id).values() for c in clips]
        for col in range(2):
            ax = axes[row, col]
            clip = clips[col * (len(clips) // 2)]
            wave = read_voice(roots.voice(clip), PREVIEW_SECONDS, None)
            feats, _ = fbank(torch.from_numpy(wave))
            seconds = len(wave) / SAMPLE_RATE
            image = ax.imshow(feats[0].T.numpy(), origin="lower", aspect="auto", cmap="magma",
                              extent=(0, seconds, -0.5, len(centres) - 0.5))
            ax.set_yticks(bands, [f"{centres[b]:.0f}" for b in bands], fontsize=6)
            ax.tick_params(axis="x", labelsize=6)
            ax.set_title(f"{identity_label(person)}, clip {col + 1} ({clip.split('/')[1]})", fontsize=7)
            if col == 0:
                ax.set_ylabel("frequency (Hz)", fontsize=7)
            if row == len(people) - 1:
                ax.set_xlabel("time (s)", fontsize=7)
    fig.suptitle(f"{title}: log-Mel filterbanks ({len(centres)} bands, Mel scale), first {PREVIEW_SECONDS:g} s "
                 "of two clips per identity", fontsize=9)
    fig.tight_layout(rect=(0, 0, 0.92, 0.97))
    if image is not None:
        fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.6, label="log Mel energy (natural log)")
    return fig


def write_preview(root: str | Path, identities: int = 6, per_identity: int = 6, face_size: int = 112) -> list[Path]:
    """Write ``preview_faces.png`` and ``preview_voices.png`` into ``root``; returns their paths."""
    from voxface.evaluation.plots import save_figure

    root = Path(root)
    protocol = load_protocol(root / "protocol")
    roots = DataRoots.from_root(root)
    people = sorted(protocol.identities.values(), key=lambda p: p.vox_id)[:identities]
    title = f"VoxSynth ({root.name})"
    return [save_figure(faces_figure(roots, people, per_identity, face_size, title), root / "preview_faces.png"),
            save_figure(voices_figure(roots, people, title), root / "preview_voices.png", dpi=80)]
