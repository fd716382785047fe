import os

import pytest
import yaml

from voxface.synth.build import SynthConfig, generate
from voxface.testing import make_tiny_voxceleb
from voxface.training.pretrain import load_pretrain_config, pretrain

# Run by hand in a scratch SpeechBrain environment, never collected (SpeechBrain is not a dependency).
collect_ignore = ["fixtures/make_speechbrain_reference.py"]


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@pytest.hookimpl(optionalhook=True)  # pytest-xdist's hook: unknown where it is not installed
def pytest_xdist_auto_num_workers(config) -> int:
    """``-n auto`` (pyproject's addopts): one test process per core, at most four (each holds its own copy of the
    session fixtures and of torch)."""
    return max(1, min(4, _cores()))


def pytest_configure(config) -> None:
    """Under pytest-xdist, each test process gets its share of the cores, as do the processes its tests start (the
    demo in a subprocess, the benchmark's workers): several processes each running as many threads as there are
    cores spend their time waking each other."""
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if workers:
        threads = str(max(1, _cores() // int(workers)))
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(name, threads)
        import torch

        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """A tiny VoxCeleb1-layout tree (with one corrupt WAV and one corrupt JPG) and its protocol folder."""
    return make_tiny_voxceleb(tmp_path_factory.mktemp("tiny"))


# Enough val identities (16) for a validation AUC that means something.
TINY_SYNTH = dict(identities=64, videos=3, clips_per_video=2, frames_per_video=2, min_seconds=2.0, max_seconds=3.0,
                  teacher_identities=60, teacher_images=8, val_fraction=0.25, test_fraction=0.1, teacher_voices=16,
                  teacher_voice_clips=6)
# The tiny face teacher: voxsynth/pretrain_face made smaller
TINY_FACE_PRIOR = ("encoder.width=0.125", "encoder.input_size=32", "encoder.num_features=32", "trainer.epochs=12",
                   "optim.batch_size=32", "optim.lr=0.05", "head.margin=0.2", "head.scale=16", "data.workers=0",
                   "data.heldout_fraction=0.1", "trainer.progress=false")


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A tiny VoxSynth (with 16 voices-only identities), a face teacher pretrained on its faces-only set, and a base
    config for them."""
    root = tmp_path_factory.mktemp("train")
    generate(root / "voxsynth", SynthConfig(**TINY_SYNTH), workers=2, progress=False)
    pretrain(load_pretrain_config("voxsynth/pretrain_face", [
        f"data.root={root / 'voxsynth' / 'teacher_faces'}", f"trainer.out={root / 'teacher'}", *TINY_FACE_PRIOR]))
    config = {
        "data": {"root": str(root / "voxsynth"), "lists": str(root / "voxsynth" / "protocol"), "face_size": 32,
                 "workers": 0, "crop_seconds": 1.0, "val_crop_seconds": 2.0, "val_clips_per_identity": 6},
        "face": {"weights": str(root / "teacher" / "backbone.pth")},
        "method": {"name": "sun_su_2025", "args": {"mapping_hidden": [64], "temperature": 0.2}},
        "audio": {"channels": [32, 32, 32, 32, 96], "embedding_size": 32},
        "optim": {"batch_size": 8, "lr_audio": 2e-3, "lr_mapping": 2e-3},
        "trainer": {"epochs": 1, "checkpoint_every": 2, "progress": False, "accelerator": "cpu"},
    }
    path = root / "base.yaml"
    path.write_text(yaml.safe_dump(config))
    return root, path




@pytest.fixture(scope="session")
def trained_checkpoint(tiny_run, tmp_path_factory):
    """A few training steps on the tiny VoxSynth: a real checkpoint for evaluation tests."""
    from voxface.training.config import load_config
    from voxface.training.run import train

    _, base = tiny_run
    out = tmp_path_factory.mktemp("trained")
    train(load_config(base, [f"trainer.out={out}", "trainer.max_steps=4"]))
    return out / "checkpoints" / "last.ckpt"


@pytest.fixture
def tiny_ssl():
    """A factory: a tiny random Wav2vec 2.0 / HuBERT / WavLM saved the way HuggingFace releases are."""
    import torch
    from transformers import HubertConfig, HubertModel, Wav2Vec2Config, Wav2Vec2Model, WavLMConfig, WavLMModel

    def make(kind, tmp_path, layer_norm=False):
        config_class, model_class = {"wav2vec2": (Wav2Vec2Config, Wav2Vec2Model), "hubert": (HubertConfig, HubertModel),
                                     "wavlm": (WavLMConfig, WavLMModel)}[kind]
        extra = dict(feat_extract_norm="layer", do_stable_layer_norm=True) if layer_norm else {}
        config = config_class(hidden_size=32, num_hidden_layers=3, num_attention_heads=2, intermediate_size=64,
                              conv_dim=(16, 16, 16), conv_stride=(5, 4, 4), conv_kernel=(10, 4, 4), conv_bias=True,
                              num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4, layerdrop=0.3, **extra)
        torch.manual_seed(0)
        folder = tmp_path / f"{kind}{'-ln' if layer_norm else ''}"
        model_class(config).save_pretrained(folder)  # how HuggingFace releases are saved
        return folder

    return make


@pytest.fixture(scope="session")
def tiny_stores(tiny_run, tmp_path_factory):
    """A voice prior saved as a SpeechBrain release with its provenance, and both halves of the tiny VoxSynth
    extracted into feature stores by the tiny face teacher and that prior."""
    import torch

    from voxface.encoders.ecapa import ECAPATDNN
    from voxface.encoders.registry import write_provenance
    from voxface.features import extract_features
    from voxface.training.config import load_config

    root, base = tiny_run
    folder = tmp_path_factory.mktemp("features")
    prior = folder / "prior" / "embedding_model.ckpt"
    prior.parent.mkdir()
    torch.manual_seed(0)
    torch.save(ECAPATDNN(channels=(32, 32, 32, 32, 96), embedding_size=32).state_dict(), prior)
    write_provenance(prior, "a test", heard_voxceleb=False,
                     front_end={"input": "fbank", "fbank": "kaldi", "settings": {"mean_norm": True}})
    teacher = load_config(base, check_paths=False).face.weights
    extract_features("iresnet", teacher, root / "voxsynth", folder / "faces", progress=False)
    extract_features("ecapa", prior, root / "voxsynth", folder / "voices", progress=False)
    return [f"features.face={folder / 'faces'}", f"features.voice={folder / 'voices'}", f"audio.weights={prior}"]
