"""voxface pretrain (training/pretrain.py): the face teacher and the voice prior, the command line, the
configuration's checks, and where the prior's weights say they come from."""

import json
import shutil

import numpy as np
import pytest
import torch

from voxface.cli import main
from voxface.encoders import load_insightface_backbone, load_speechbrain_ecapa
from voxface.errors import ConfigError
from voxface.synth.face import Scene, render_face
from voxface.synth.model import IdentityModel, draw_population
from voxface.training.pretrain import PretrainModule, build_pretrain_encoder, load_pretrain_config, pretrain

# ---------------------------------------------------------------- the face teacher


@pytest.fixture(scope="module")
def face_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("faces")
    rng = np.random.default_rng(0)
    people = draw_population(IdentityModel(), 10, rng)
    for i in range(10):
        scenes = [Scene.draw(rng) for _ in range(2)]
        folder = root / f"person{i:02d}"
        folder.mkdir()
        for k in range(6):
            render_face(people.face[i], scenes[k % 2], rng, size=64).save(folder / f"{k}.jpg")
    return root


TINY_FACE = ("encoder.depth=18", "encoder.width=0.125", "encoder.input_size=32", "encoder.num_features=16",
             "trainer.epochs=1", "optim.batch_size=16", "optim.lr=0.05", "head.margin=0.2", "head.scale=16",
             "data.heldout_fraction=0.2", "trainer.checkpoint_every=2", "data.workers=0", "trainer.progress=false")


def face_config(data, out, *overrides):
    return load_pretrain_config(None, [f"data.root={data}", f"trainer.out={out}", *TINY_FACE, *overrides])


def test_an_interrupted_teacher_run_says_so_and_saves_no_release(face_folder, tmp_path, monkeypatch, caplog, capsys):
    step = PretrainModule.training_step

    def interrupted_at_step_3(self, batch, batch_index):
        if self.global_step == 3:
            raise KeyboardInterrupt  # what Ctrl-C raises inside the step; Lightning catches it and exits 1
        return step(self, batch, batch_index)

    monkeypatch.setattr(PretrainModule, "training_step", interrupted_at_step_3)
    out = tmp_path / "run"
    args = ["pretrain", "--config", "voxsynth/pretrain_face", f"data.root={face_folder}", f"trainer.out={out}",
            *TINY_FACE, "trainer.epochs=2"]
    with caplog.at_level("WARNING", logger="voxface"):
        assert main(args) == 130
    assert "voxface: interrupted" in capsys.readouterr().err
    assert f"pretraining interrupted at epoch 2, step 3; continue from its last checkpoint with the same settings " \
           f"and --resume ({out / 'checkpoints' / 'last.ckpt'})" in caplog.text
    assert torch.load(out / "checkpoints" / "last.ckpt", weights_only=False)["global_step"] == 2
    assert not (out / "backbone.pth").exists()  # no release made of a cut-short run


def test_pretrain_face_teacher_checkpoints_resumes_and_saves_a_release(face_folder, tmp_path):
    config = face_config(face_folder, tmp_path / "run")
    first = pretrain(config)
    assert first["train_identities"] == 8 and first["heldout_identities"] == 2
    assert 0.0 <= first["heldout_verification_auc"] <= 1.0 and 0.0 <= first["heldout_eer"] <= 1.0
    ckpt = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=False)
    assert ckpt["epoch"] == 1
    with pytest.raises(ConfigError, match="--resume"):
        pretrain(config)
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    with pytest.raises(ConfigError, match=rf"^--resume: {last} was trained with encoder.num_features=16, not 32; "
                                          "only "):
        pretrain(face_config(face_folder, tmp_path / "run", "encoder.num_features=32"), resume=True)
    fewer = tmp_path / "fewer"
    shutil.copytree(face_folder, fewer)
    shutil.rmtree(next(p for p in sorted(fewer.iterdir()) if p.is_dir()))
    with pytest.raises(ConfigError, match=rf"^--resume: {last} was trained on 8 identities, data.root now gives 7; "):
        pretrain(face_config(fewer, tmp_path / "run"), resume=True)
    pretrain(face_config(face_folder, tmp_path / "run", "trainer.epochs=2"), resume=True)
    resumed = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=False)
    assert resumed["epoch"] == 2 and resumed["global_step"] == 2 * ckpt["global_step"]  # continued, not restarted
    backbone = load_insightface_backbone(tmp_path / "run" / "backbone.pth")  # the release loader reads it
    assert backbone.num_features == 16 and backbone.input_size == 32
    assert not json.loads((tmp_path / "run" / "voxface_provenance.json").read_text())["heard_voxceleb"]


def test_pretrain_face_cli(face_folder, tmp_path, capsys):
    """voxface pretrain of a face teacher: the shipped config, its keys overridden on the command line."""
    args = ["pretrain", "--config", "voxsynth/pretrain_face", f"data.root={face_folder}",
            f"trainer.out={tmp_path / 'cli'}", *TINY_FACE]
    assert main(args) == 0
    assert "held-out verification AUC" in capsys.readouterr().out
    summary = json.loads((tmp_path / "cli" / "pretrain.json").read_text())
    assert summary["config"]["encoder"] == {**summary["config"]["encoder"], "name": "iresnet", "depth": 18,
                                            "width": 0.125, "input_size": 32, "num_features": 16}
    assert summary["config"]["data"]["heldout_fraction"] == 0.2 and summary["config"]["optim"]["batch_size"] == 16
    assert main(["pretrain", "--config", "voxsynth/pretrain_face", f"data.root={tmp_path / 'missing'}",
                 f"trainer.out={tmp_path / 'x'}"]) == 2
    assert "missing is not a folder; give it with data.root=PATH" in capsys.readouterr().err


def test_pretrain_configs_are_read_strictly_and_checked_before_work(face_folder, tmp_path, capsys):
    shipped = load_pretrain_config("voxsynth/pretrain_voice", check_paths=False)
    assert shipped.encoder.name == "ecapa" and shipped.encoder.channels == [128, 128, 128, 128, 384]
    assert load_pretrain_config("voxsynth/pretrain_face", check_paths=False).encoder.input_size == 64
    with pytest.raises(ConfigError, match=r"unknown config key 'encoder.chanels' \(did you mean 'encoder.channels'"):
        load_pretrain_config("voxsynth/pretrain_voice", ["encoder.chanels=[8]"], check_paths=False)
    with pytest.raises(ConfigError, match=r"encoder.name must be one of \('iresnet', 'ecapa'\)"):
        load_pretrain_config(None, ["encoder.name=wav2vec2", "data.root=x"], check_paths=False)
    with pytest.raises(ConfigError, match="encoder.depth is a setting of another encoder, not of encoder.name ecapa"):
        load_pretrain_config("voxsynth/pretrain_voice", ["encoder.depth=50"], check_paths=False)
    with pytest.raises(ConfigError, match="encoder.input_size must be a multiple of 16"):
        load_pretrain_config(None, ["encoder.input_size=40", "data.root=x"], check_paths=False)
    with pytest.raises(ConfigError, match=r"data.root: .*missing is not a folder"):
        load_pretrain_config(None, [f"data.root={tmp_path / 'missing'}"])
    # the command line: one line, no work done
    assert main(["pretrain", "--config", "voxsynth/pretrain_voice", f"data.root={face_folder}",
                 f"trainer.out={tmp_path / 'v'}", "optim.optimizer=adamw"]) == 2
    assert "optim.optimizer must be sgd or adam" in capsys.readouterr().err and not (tmp_path / "v").exists()
    # a face folder given to a voice encoder has no audio
    assert main(["pretrain", "--config", "voxsynth/pretrain_voice", f"data.root={face_folder}",
                 f"trainer.out={tmp_path / 'v'}"]) == 2
    assert "0 identity folders with audio clips" in capsys.readouterr().err


# ---------------------------------------------------------------- the voice prior

TINY_VOICE = ("encoder.channels=[32,32,32,32,96]", "encoder.embedding_size=16", "optim.batch_size=16",
              "optim.lr=5e-3", "data.crop_seconds=1.0", "data.heldout_fraction=0.25", "data.workers=0",
              "trainer.epochs=2", "trainer.checkpoint_every=4", "trainer.progress=false")


def voice_config(tiny_run, out, *overrides):
    root, _ = tiny_run
    return load_pretrain_config("voxsynth/pretrain_voice", [
        f"data.root={root / 'voxsynth' / 'teacher_voices'}", f"trainer.out={out}", *TINY_VOICE, *overrides])


def test_voice_prior_learns_resumes_and_loads_as_a_speechbrain_release(tiny_run, tmp_path):
    from voxface.encoders.registry import build_voice_encoder, weights_provenance
    from voxface.media.audio import read_voice

    config = voice_config(tiny_run, tmp_path / "prior", "trainer.epochs=1")
    first = pretrain(config)
    assert first["train_identities"] == 12 and first["heldout_identities"] == 4 and first["heldout_files"] == 24
    ckpt = torch.load(tmp_path / "prior" / "checkpoints" / "last.ckpt", weights_only=False)
    summary = pretrain(voice_config(tiny_run, tmp_path / "prior"), resume=True)  # a second epoch, continued
    resumed = torch.load(tmp_path / "prior" / "checkpoints" / "last.ckpt", weights_only=False)
    assert resumed["epoch"] == 2 and resumed["global_step"] == 2 * ckpt["global_step"]
    # two epochs over 12 voices: the 4 unseen voices are told apart better than chance
    assert summary["heldout_verification_auc"] > 0.6 and summary["heldout_eer"] < 0.45, summary
    assert set(summary["probes"]["knob_r2"]) == {"pitch", "tract", "jitter", "breath", "accent1", "accent2", "tilt",
                                                 "nasal"}
    # SpeechBrain's layout: a plain ECAPA_TDNN state dict that its own loader reads
    weights = tmp_path / "prior" / "embedding_model.ckpt"
    network = load_speechbrain_ecapa(weights)
    assert network.embedding_size == 16
    provenance = weights_provenance("ecapa", weights)
    assert provenance["heard_voxceleb"] is False and provenance["front_end"]["fbank"] == "kaldi"
    # loaded the way a release is, it takes its recorded front end and embeds as the trained encoder did
    released = build_voice_encoder("ecapa", weights).eval()
    trained = build_pretrain_encoder(config.encoder)
    state = resumed["state_dict"]
    trained.load_state_dict({k.removeprefix("encoder."): v for k, v in state.items() if k.startswith("encoder.")})
    trained.eval()
    assert released.front_end() == trained.front_end()
    clip = next((tiny_run[0] / "voxsynth" / "teacher_voices").rglob("*.wav"))
    wave = torch.from_numpy(read_voice(clip, None))[None]
    with torch.no_grad():
        assert torch.equal(released(wave), trained(wave))


def test_the_voxceleb_warning_fires_for_speechbrain_weights_only(tiny_run, tmp_path):
    from voxface.encoders.registry import write_provenance
    from voxface.training.config import TrainConfig, voxceleb_leakage

    pretrain(voice_config(tiny_run, tmp_path / "prior", "trainer.epochs=1", "data.heldout_fraction=0.5"))
    config = TrainConfig()
    config.audio.weights = str(tmp_path / "prior" / "embedding_model.ckpt")
    assert voxceleb_leakage(config) is None  # the voice prior never heard VoxCeleb
    release = tmp_path / "speechbrain" / "embedding_model.ckpt"  # the same tensors without a provenance record
    release.parent.mkdir()
    shutil.copyfile(config.audio.weights, release)
    config.audio.weights = str(release)
    said = voxceleb_leakage(config)  # taken for SpeechBrain's release, and said to be taken for it
    assert "has no provenance record" in said and "heard 237 of the 250 VoxCeleb1 unseen-unheard test" in said
    write_provenance(release, "VoxCeleb1+2 (SpeechBrain spkrec-ecapa-voxceleb)", heard_voxceleb=True)
    assert voxceleb_leakage(config).startswith(f"audio.weights {release} was trained on VoxCeleb1+2")
