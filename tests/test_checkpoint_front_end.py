"""A checkpoint says what it was trained with: the audio front end it records is the one it loads with."""

import shutil

import pytest
import torch

from voxface.cli import main
from voxface.errors import WeightsError
from voxface.evaluation.checkpoint import load_trained_model
from voxface.media.fbank import KaldiFbank, SpeechBrainFbank
from voxface.training.config import TrainConfig, audio_front_end


def _edited(checkpoint, out, edit):
    """A copy of ``checkpoint`` at ``out`` with ``edit(blob)`` applied."""
    blob = torch.load(checkpoint, map_location="cpu", weights_only=True)
    edit(blob)
    torch.save(blob, out)
    return out


def _voices(model):
    noise = torch.randn(1, 24000, generator=torch.Generator().manual_seed(0))
    wave = 0.1 * torch.sin(torch.linspace(0, 2000, 24000))[None] + 0.01 * noise + 0.02  # with an offset
    with torch.no_grad():
        return model.embed_voices(wave)


def test_a_checkpoint_loads_with_the_front_end_it_recorded(trained_checkpoint, tmp_path, caplog):
    blob = torch.load(trained_checkpoint, map_location="cpu", weights_only=True)
    record = blob["voxface_front_end"]
    assert record["input"] == "fbank" and record["fbank"] == "kaldi"  # audio.features=auto, no audio.weights
    assert record["settings"] == KaldiFbank(mean_norm=True).settings
    assert (record["crop_seconds"], record["val_crop_seconds"], record["face_size"]) == (1.0, 2.0, 32)
    original, _ = load_trained_model(trained_checkpoint)
    assert original.front_end() == {k: record[k] for k in ("input", "fbank", "settings")}

    # audio.weights now names a SpeechBrain checkpoint that is gone: the derivation would say speechbrain
    def moved(blob):
        blob["hyper_parameters"]["config"]["audio"]["weights"] = str(tmp_path / "gone" / "embedding_model.ckpt")

    path = _edited(trained_checkpoint, tmp_path / "moved.ckpt", moved)
    assert audio_front_end(TrainConfig.from_dict(torch.load(path, weights_only=True)["hyper_parameters"]["config"])) \
        == "speechbrain"
    model, _ = load_trained_model(path)
    assert isinstance(model.fbank, KaldiFbank) and model.front_end() == original.front_end()
    assert torch.equal(_voices(model), _voices(original))

    # the recorded settings are used, not the config's (mean_norm is true in the config)
    def no_mean_norm(blob):
        blob["voxface_front_end"]["settings"]["mean_norm"] = False

    model, config = load_trained_model(_edited(trained_checkpoint, tmp_path / "settings.ckpt", no_mean_norm))
    assert config.audio.mean_norm and not model.fbank.mean_norm

    # an older checkpoint records nothing: today's derivation, said in a warning naming the file
    def older(blob):
        moved(blob)
        del blob["voxface_front_end"]

    path = _edited(trained_checkpoint, tmp_path / "older.ckpt", older)
    with caplog.at_level("WARNING", logger="voxface"):
        model, _ = load_trained_model(path)
    assert f"{path} records no audio front end (written by an older voxface): using speechbrain fbank from " \
           "audio.features=auto" in caplog.text
    assert isinstance(model.fbank, SpeechBrainFbank)
    assert not torch.allclose(_voices(model), _voices(original), atol=1e-3)  # what the record now prevents


def test_an_ssl_run_from_a_float16_folder_records_its_waveform_normalisation(tiny_run, tiny_ssl, tmp_path, caplog):
    """A layer-norm Wav2vec 2.0 saved in float16 without a preprocessor_config.json (model.half().save_pretrained):
    it trains in float32, normalises waveforms (feat_extract_norm 'layer'), and its checkpoint says so."""
    from transformers import AutoModel

    from voxface.training.config import load_config
    from voxface.training.run import train

    _, base = tiny_run
    folder = tmp_path / "w2v-fp16"
    AutoModel.from_pretrained(tiny_ssl("wav2vec2", tmp_path, layer_norm=True), dtype=torch.float32).half() \
        .save_pretrained(folder)
    with caplog.at_level("INFO", logger="voxface"):
        train(load_config(base, [f"trainer.out={tmp_path / 'run'}", "trainer.max_steps=1", "audio.encoder=wav2vec2",
                                 f"audio.weights={folder}", "optim.schedule=tristage"]))
    assert f"{folder}: saved as float16 (config.json), loaded in float32" in caplog.text
    assert f"{folder}: waveform normalisation on (no preprocessor_config.json" in caplog.text
    checkpoint = tmp_path / "run" / "checkpoints" / "last.ckpt"
    blob = torch.load(checkpoint, map_location="cpu", weights_only=True)
    assert blob["voxface_front_end"]["input"] == "waveform" and blob["voxface_front_end"]["normalize_waveform"]
    model, _ = load_trained_model(checkpoint)
    assert model.audio.normalize_waveform and {p.dtype for p in model.parameters()} == {torch.float32}
    reference = _voices(model)

    # the folder is gone and the old key disagrees: the record decides
    def legacy_disagrees(blob):
        blob["voxface_audio_normalize_waveform"] = False

    shutil.rmtree(folder)
    model, _ = load_trained_model(_edited(checkpoint, tmp_path / "legacy.ckpt", legacy_disagrees))
    assert model.audio.normalize_waveform and torch.equal(_voices(model), reference)


def test_a_checkpoint_from_another_version_says_so(trained_checkpoint, tmp_path, capsys):
    def newer(blob):
        blob["hyper_parameters"]["config"]["audio"]["dither"] = 0.1
        blob["voxface_version"] = "9.9.0"

    path = _edited(trained_checkpoint, tmp_path / "newer.ckpt", newer)
    with pytest.raises(WeightsError, match=rf"^{path} comes from another voxface version: its config key "
                                           r"'audio.dither' is unknown to this voxface \(0\.1\.0\); it was written by "
                                           r"voxface 9\.9\.0$"):
        load_trained_model(path)
    assert main(["score", "--checkpoint", str(path), str(tmp_path / "voice.wav"), str(tmp_path / "face.jpg")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "comes from another voxface version: its config key 'audio.dither'" in err[0]

    def new_section(blob):
        blob["hyper_parameters"]["config"]["export"] = {"onnx": True}

    with pytest.raises(WeightsError, match=r"another voxface version: its config key 'export' is unknown"):
        load_trained_model(_edited(trained_checkpoint, tmp_path / "section.ckpt", new_section))

    def new_fbank(blob):
        blob["voxface_front_end"]["fbank"] = "whisper"

    with pytest.raises(WeightsError, match=r"another voxface version: its recorded audio front end .*'whisper'"):
        load_trained_model(_edited(trained_checkpoint, tmp_path / "fbank.ckpt", new_fbank))

    def new_setting(blob):
        blob["voxface_front_end"]["settings"]["dither"] = 1.0

    with pytest.raises(WeightsError, match=r"another voxface version: its recorded fbank settings \(.*dither"):
        load_trained_model(_edited(trained_checkpoint, tmp_path / "setting.ckpt", new_setting))
