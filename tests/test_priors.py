"""The release priors: their own draw, the attribute-supervised pretraining, the shipped files and their loaders."""

import json

import numpy as np
import pytest
import torch

from voxface.encoders.registry import build_face_encoder, build_voice_encoder, weights_provenance
from voxface.errors import ConfigError
from voxface.synth.build import plan, plan_teacher_voices
from voxface.synth.model import FACE_KNOBS, VOICE_KNOBS
from voxface.synth.release import (
    PRIORS_DIR,
    WEIGHT_FILES,
    ReleaseDraw,
    check_release_bars,
    draw_release_population,
    make_release,
    release_prior,
    release_provenance,
)
from voxface.training.pretrain import PretrainModule, attribute_targets, load_pretrain_config


@pytest.mark.parametrize("size", ["default", "tiny"])
def test_the_release_draw_shares_no_identity_with_any_demo_set(size):
    from dataclasses import replace

    from voxface.demo import SIZES

    draw = ReleaseDraw()
    # the demo's data, with the teacher sets that `voxface synth` writes by default, for the seeds people use
    for seed in (0, 1, 23):
        config = replace(SIZES[size].synth, teacher_identities=50, teacher_voices=50, seed=seed)
        population, teachers, teacher_names, people, _, _ = plan(config)
        voices, voice_names = plan_teacher_voices(config, set())
        names = {p.identity.name for p in people} | set(teacher_names) | set(voice_names)
        faces = np.concatenate([population.face, teachers.face])
        voice_rows = np.concatenate([population.voice, voices.voice])
        for modality, theirs in (("face", faces), ("voice", voice_rows)):
            mine, my_names = draw_release_population(draw, modality)
            assert not names & set(my_names)
            mine = mine.face if modality == "face" else mine.voice
            closest = np.abs(mine[:, None, :] - theirs[None, :, :]).max(-1).min()
            assert closest > 1e-3, f"a release {modality} identity repeats one of the demo's (seed {seed})"
    # and the demo's own --train-priors sets are not the release's
    small, _ = draw_release_population(SIZES[size].priors, "face")
    big, _ = draw_release_population(draw, "face")
    assert np.abs(small.face[:, None, :] - big.face[None, :, :]).max(-1).min() > 1e-3


def _tiny_identity_folder(root, modality: str, identities: int = 12):
    """A release-style set of a few identities, rendered by the release's own renderer."""
    from voxface.synth.release import render_release_sets

    draw = ReleaseDraw(face_identities=identities if modality == "face" else 8, face_images=3,
                       voice_identities=identities if modality == "voice" else 8, voice_clips=2, min_seconds=1.0,
                       max_seconds=1.2)
    return render_release_sets(root, draw, workers=1, progress=False)[modality]


def test_attribute_targets_are_each_identitys_own_standardised_attributes(tmp_path):
    faces = _tiny_identity_folder(tmp_path, "face")
    names = sorted(p.name for p in faces.iterdir() if p.is_dir())
    targets = attribute_targets(faces, names)
    assert targets.shape == (len(names), 2 + len(FACE_KNOBS))  # gender, age, every knob
    np.testing.assert_allclose(targets.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(targets.std(0, unbiased=False), 1, atol=1e-4)
    rows = (faces / "identities.csv").read_text().splitlines()
    header, first = rows[0].split(","), dict(zip(rows[0].split(","), rows[1].split(","), strict=True))
    assert header[4] == FACE_KNOBS[0]
    column = np.array([float(r.split(",")[4]) for r in rows[1:]])
    expected = (float(first[FACE_KNOBS[0]]) - column.mean()) / column.std()
    assert targets[names.index(first["name"]), 2].item() == pytest.approx(expected, abs=1e-4)
    (faces / "identities.csv").unlink()
    with pytest.raises(ConfigError, match="head.attribute_weight > 0 needs .*identities.csv"):
        attribute_targets(faces, names)


def test_the_attribute_term_is_added_to_the_margin_loss_with_its_weight(tmp_path):
    small = [f"data.root={tmp_path}", "encoder.channels=[16,16,16,16,48]", "encoder.embedding_size=8"]
    config = load_pretrain_config("voxsynth/release_voice", small, check_paths=False)
    torch.manual_seed(0)
    module = PretrainModule(config.to_dict(), num_classes=3, attributes=2 + len(VOICE_KNOBS))
    module.attribute_targets.copy_(torch.randn(3, 2 + len(VOICE_KNOBS)))
    module.log = lambda *args, **kwargs: None
    waves, labels = torch.randn(4, 8000), torch.tensor([0, 1, 2, 1])
    module.eval()  # no dropout / batch-norm updates: the same embeddings in each call
    with torch.no_grad():
        total = module.training_step((waves, labels), 0)
        embeddings = module.encoder(waves)
        margin = module.head(embeddings, labels)
        unit = torch.nn.functional.normalize(embeddings) * embeddings.shape[1] ** 0.5
        regression = ((module.attribute_head(unit) - module.attribute_targets[labels]) ** 2).mean()
    assert config.head.attribute_weight == 2.0
    assert total.item() == pytest.approx((margin + 2.0 * regression).item(), rel=1e-5)


def test_make_release_renders_trains_and_writes_loadable_priors_with_provenance(tmp_path):
    draw = ReleaseDraw(face_identities=24, face_images=3, voice_identities=24, voice_clips=3, min_seconds=1.0,
                       max_seconds=1.5)
    small = {"face": ["trainer.epochs=1", "data.heldout_fraction=0.25", "data.workers=0", "encoder.width=0.125",
                      "encoder.input_size=32", "encoder.num_features=16"],
             "voice": ["trainer.epochs=1", "data.heldout_fraction=0.25", "data.workers=0",
                       "encoder.channels=[16,16,16,16,48]", "encoder.embedding_size=8"]}
    records = make_release(tmp_path / "work", draw, install=False, workers=1, overrides=small, progress=False)
    for modality, record in records.items():
        folder = tmp_path / "work" / "release" / modality
        saved = json.loads((folder / "voxface_provenance.json").read_text())
        assert saved == json.loads(json.dumps(record))
        assert saved["draw"]["seed"] == 0 and saved["cpu_seconds"] > 0 and saved["code_version"].startswith("0.")
        assert saved["heard_voxceleb"] is False and set(saved["probes"]["knob_r2"]) == set(
            FACE_KNOBS if modality == "face" else VOICE_KNOBS)
        assert saved["bars"] == check_release_bars(saved, modality)
        assert weights_provenance("iresnet" if modality == "face" else "ecapa",
                                  folder / WEIGHT_FILES[modality])["trained_on"].startswith("VoxSynth release draw")
    face = build_face_encoder("iresnet", tmp_path / "work" / "release" / "face" / "backbone.pth")
    assert face(torch.zeros(2, 3, 32, 32)).shape == (2, 16)
    voice = build_voice_encoder("ecapa", tmp_path / "work" / "release" / "voice" / "embedding_model.ckpt")
    assert voice(torch.zeros(2, 16000)).shape == (2, 8)


def test_check_release_bars_holds_the_shared_knobs_to_the_higher_bar():
    summary = {"heldout_eer": 0.025, "probes": {"knob_r2": {"pitch": 0.79, "accent1": 0.61}}}
    bars = check_release_bars(summary, "voice")
    assert bars["heldout_eer"]["met"] and not bars["pitch_r2"]["met"] and bars["accent1_r2"]["met"]
    assert not check_release_bars(summary, "face")["heldout_eer"]["met"]  # face: EER <= 2%


def test_the_shipped_priors_load_as_the_releases_they_stand_in_for_and_fit_the_size_limit():
    total = sum(release_prior(m).stat().st_size for m in WEIGHT_FILES)
    assert total <= 20 * 2**20
    face = build_face_encoder("iresnet", release_prior("face")).eval()
    assert face(torch.zeros(1, 3, 64, 64)).shape == (1, face.embedding_size)
    voice = build_voice_encoder("ecapa", release_prior("voice")).eval()
    assert voice(torch.zeros(1, 16000)).shape == (1, voice.embedding_size)
    assert weights_provenance("ecapa", release_prior("voice"))["front_end"]["fbank"] == "kaldi"
    for modality in WEIGHT_FILES:
        record = release_provenance(modality)
        assert record["heard_voxceleb"] is False and record["bars"] == check_release_bars(record, modality)
        assert {"draw", "config", "code_version", "cpu_seconds", "heldout_eer", "probes"} <= set(record)
        # the release bars: held-out EER (face 2%, voice 3%), probe R2 0.8 on the shared latent's knobs, 0.6 others
        assert record["all_bars_met"], {k: v for k, v in record["bars"].items() if not v["met"]}
        assert record["draw"]["face_identities" if modality == "face" else "voice_identities"] >= 1000
    assert PRIORS_DIR.name == "priors"


def test_the_shipped_configs_name_the_release_priors_so_commands_work_after_the_demo():
    from voxface.training.config import load_config

    peers = load_config("voxsynth/peers/fop", check_paths=False)
    assert peers.face.weights == str(release_prior("face")) and peers.audio.weights == str(release_prior("voice"))
    assert load_config("voxsynth/full", check_paths=False).face.weights == str(release_prior("face"))
    mine = load_config("voxsynth/full", ["face.weights=/elsewhere/backbone.pth"], check_paths=False)
    assert mine.face.weights == "/elsewhere/backbone.pth"
