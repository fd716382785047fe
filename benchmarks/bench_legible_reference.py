"""What the media themselves allow on a VoxSynth's lists (issue 22): the data reference scored on single-sample
*reader estimates* of the knobs instead of the true knobs.

Step ``voice`` / ``face`` (each in its own process; ``OMP_NUM_THREADS=1`` lets both run side by side): train the
legibility reader of that modality exactly as ``bench_legibility.py`` does (its default draw and settings: the same
R² per knob), then estimate the knobs of every clip or frame of the data set at DATA (the whole clip; the frame read
as the loader reads it) into OUT/<modality>.npz. Step ``score``: fit the data reference's Gaussian backend
(``scoring.backend``, knobs whole) on the training identities' estimates, sizes and calibration on the validation
identities', and print each unseen-unheard list's AUC with its 95% DeLong interval, beside the same backend on the
true knobs (the decomposition's "data reference").

    OMP_NUM_THREADS=1 python benchmarks/bench_legible_reference.py voice runs/demo/voxsynth runs/legible &
    OMP_NUM_THREADS=1 python benchmarks/bench_legible_reference.py face runs/demo/voxsynth runs/legible; wait
    python benchmarks/bench_legible_reference.py score runs/demo/voxsynth runs/legible
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import r2_score

from voxface.evaluation.decomposition import KNOBS_FILE
from voxface.media.audio import read_voice
from voxface.media.faces import face_to_tensor, read_face
from voxface.metrics import delong_interval, roc_auc
from voxface.protocol import DataRoots, load_protocol
from voxface.protocol.lists import SPLIT_TRAIN, SPLIT_VAL, Protocol
from voxface.scoring.backend import EmbeddingSet, fit_gaussian_backend
from voxface.synth.legibility import LegibilityConfig, read_modality
from voxface.synth.model import FACE_KNOBS, VOICE_KNOBS


def estimate(modality: str, data: Path, out: Path) -> None:
    config = LegibilityConfig()
    reader, mean, sd, scored = read_modality(config, modality, workers=1)
    print(f"{modality} reader, held-out R²: " + ", ".join(f"{k} {r:.3f}" for k, r in scored["r2"].items())
          + f" ({scored['render_seconds'] + scored['train_seconds']:.0f} s)", flush=True)
    knobs = VOICE_KNOBS if modality == "voice" else FACE_KNOBS
    stored = np.load(data / KNOBS_FILE, allow_pickle=False)
    paths, roots = stored[f"{modality}_paths"].tolist(), DataRoots.from_root(data)
    reader.eval()
    with torch.no_grad():
        rows = [reader(torch.from_numpy(read_voice(roots.voice(p), None))[None] if modality == "voice"
                       else face_to_tensor(read_face(roots.face(p), config.face_size))[None]).numpy()[0]
                for p in paths]
    estimates = np.array(rows) * sd + mean
    truth = stored[f"{modality}_knobs"]
    print(f"{modality} reader on the data set's own files, R²: " + ", ".join(
        f"{k} {r2_score(truth[:, j], estimates[:, j]):.3f}" for j, k in enumerate(knobs)), flush=True)
    np.savez(out / f"{modality}.npz", paths=np.array(paths), estimates=estimates)


def _split_set(protocol: Protocol, voices: dict, faces: dict, split: int) -> EmbeddingSet:
    members = {i.vox_id for i in protocol.identities_in_split(split)}
    v = [p for p in voices if p.split("/")[0] in members]  # <vox_id>/<ytid>/<clip>.wav
    f = [p for p in faces if protocol.vox_id_of_name.get(p.split("/")[0]) in members]  # <name>/1.6/<ytid>/<frame>
    face_ids = np.array([protocol.vox_id_of_name[p.split("/")[0]] for p in f])
    return EmbeddingSet(np.array([voices[p] for p in v]), np.array([p.split("/")[0] for p in v]),
                        np.array([faces[p] for p in f]), face_ids,
                        np.array([p.split("/")[1] for p in v]), np.array([p.split("/")[2] for p in f]))


def score(data: Path, out: Path) -> None:
    protocol = load_protocol(data / "protocol")
    stored = np.load(data / KNOBS_FILE, allow_pickle=False)
    voice, face = np.load(out / "voice.npz"), np.load(out / "face.npz")
    sources = {
        "reader estimates": (dict(zip(voice["paths"].tolist(), voice["estimates"], strict=True)),
                             dict(zip(face["paths"].tolist(), face["estimates"], strict=True))),
        "true knobs": (dict(zip(stored["voice_paths"].tolist(), stored["voice_knobs"], strict=True)),
                       dict(zip(stored["face_paths"].tolist(), stored["face_knobs"], strict=True))),
    }
    result = {}
    for name, (voices, faces) in sources.items():
        backend = fit_gaussian_backend(_split_set(protocol, voices, faces, SPLIT_TRAIN),
                                       _split_set(protocol, voices, faces, SPLIT_VAL), reduce="none", normalize=False)
        result[name] = {}
        for group in ("random", "G", "N", "A", "GNA"):
            trials = protocol.verification(group, "unseenunheard")
            scores = backend.llr(np.array([voices[p] for p in trials.voice_files]),
                                 np.array([faces[p] for p in trials.face_files]))
            result[name][group] = [roc_auc(trials.labels, scores), *delong_interval(trials.labels, scores)]
        print(f"{name}, Gaussian backend: " + ", ".join(f"{g} {a:.3f} ({lo:.3f}-{hi:.3f})"
                                                         for g, (a, lo, hi) in result[name].items()), flush=True)
    (out / "legible_reference.json").write_text(json.dumps(result, indent=1) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=["voice", "face", "score"])
    parser.add_argument("data", type=Path, help="a VoxSynth folder (with generative.npz and protocol/)")
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.step == "score":
        score(args.data, args.out)
    else:
        estimate(args.step, args.data, args.out)


if __name__ == "__main__":
    main()
