"""A checkpoint says what it was trained with: the audio front end it records is the one it loads with."""

import shutil

import pytest
import torch

from voxface.cli import main
from voxface.errors import WeightsError
from voxface.evaluation.checkpoint import load_trained_model
from voxface.media.fbank import KaldiFbank, SpeechBrainFbank


def _edited(checkpoint, out, edit):
    """A copy of ``checkpoint`` at ``out`` with ``edit(blob)`` applied."""
    blob = torch.load(checkpoint, map_location="cpu", weights_only=True)
    edit(blob)
    torch.save(blob, out)
    return out


def _voices(method):
    noise = torch.randn(1, 24000, generator=torch.Generator().manual_seed(0))
    wave = 0.1 * torch.sin(torch.linspace(0, 2000, 24000))[None] + 0.01 * noise + 0.02  # with an offset
    with torch.no_grad():
        return method.embed_voice(wave)


def test_a_checkpoint_loads_with_the_front_end_it_recorded(trained_checkpoint, tmp_path):
    blob = torch.load(trained_checkpoint, map_location="cpu", weights_only=True)
    records = blob["voxface_encoders"]
    voice = records["voice"]
    assert voice["name"] == "ecapa" and voice["front_end"]["fbank"] == "kaldi"  # features=auto, no audio.weights
    assert voice["front_end"]["settings"] == KaldiFbank(mean_norm=True).settings
    assert voice["provenance"]["source"] == "random initialisation" and not voice["provenance"]["heard_voxceleb"]
    assert records["face"]["name"] == "iresnet" and records["face"]["front_end"] == {"input": "image", "size": 32}
    assert (records["crop_seconds"], records["val_crop_seconds"]) == (1.0, 2.0)
    original, _ = load_trained_model(trained_checkpoint)
    assert original.voice_encoder.front_end() == voice["front_end"]

    # audio.weights now names a SpeechBrain checkpoint that is gone: its front end would be SpeechBrain's
    def moved(blob):
        blob["hyper_parameters"]["config"]["audio"]["weights"] = str(tmp_path / "gone" / "embedding_model.ckpt")

    method, _ = load_trained_model(_edited(trained_checkpoint, tmp_path / "moved.ckpt", moved))
    assert isinstance(method.voice_encoder.fbank, KaldiFbank)
    assert torch.equal(_voices(method), _voices(original))

    # the recorded settings are used, not the config's (mean_norm is true in the config)
    def no_mean_norm(blob):
        blob["voxface_encoders"]["voice"]["front_end"]["settings"]["mean_norm"] = False

    method, config = load_trained_model(_edited(trained_checkpoint, tmp_path / "settings.ckpt", no_mean_norm))
    assert config.audio.mean_norm and not method.voice_encoder.fbank.mean_norm

    # a SpeechBrain front end recorded: SpeechBrain's fbank, whatever the config says
    def speechbrain(blob):
        blob["voxface_encoders"]["voice"]["front_end"] = {"input": "fbank", "fbank": "speechbrain", "settings": None}

    method, _ = load_trained_model(_edited(trained_checkpoint, tmp_path / "sb.ckpt", speechbrain))
    assert isinstance(method.voice_encoder.fbank, SpeechBrainFbank)
    assert not torch.allclose(_voices(method), _voices(original), atol=1e-3)


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
    front = blob["voxface_encoders"]["voice"]["front_end"]
    assert front == {"input": "waveform", "normalize_waveform": True}
    method, _ = load_trained_model(checkpoint)
    assert method.voice_encoder.normalize_waveform and {p.dtype for p in method.parameters()} == {torch.float32}
    reference = _voices(method)

    # the folder is gone: the checkpoint alone rebuilds the encoder, normalisation included
    shutil.rmtree(folder)
    method, _ = load_trained_model(checkpoint)
    assert method.voice_encoder.normalize_waveform and torch.equal(_voices(method), reference)


def test_a_checkpoint_from_another_version_says_so(trained_checkpoint, tmp_path, capsys):
    def newer(blob):
        blob["hyper_parameters"]["config"]["audio"]["dither"] = 0.1
        blob["voxface_version"] = "9.9.0"

    path = _edited(trained_checkpoint, tmp_path / "newer.ckpt", newer)
    with pytest.raises(WeightsError, match=rf"^{path} comes from another voxface version: its config key "
                                           r"'audio.dither' is unknown to this voxface \(0\.2\.0\); it was written by "
                                           r"voxface 9\.9\.0$"):
        load_trained_model(path)
    for name in ("voice.wav", "face.jpg"):  # present: score checks its inputs exist before it loads the checkpoint
        (tmp_path / name).write_bytes(b"")
    assert main(["score", "--checkpoint", str(path), str(tmp_path / "voice.wav"), str(tmp_path / "face.jpg")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "comes from another voxface version: its config key 'audio.dither'" in err[0]

    def new_section(blob):
        blob["hyper_parameters"]["config"]["export"] = {"onnx": True}

    with pytest.raises(WeightsError, match=r"another voxface version: its config key 'export' is unknown"):
        load_trained_model(_edited(trained_checkpoint, tmp_path / "section.ckpt", new_section))

    def new_fbank(blob):
        blob["voxface_encoders"]["voice"]["front_end"]["fbank"] = "whisper"

    with pytest.raises(WeightsError, match=r"the ECAPA encoder's recorded front end .*'whisper'.* is unknown to this"):
        load_trained_model(_edited(trained_checkpoint, tmp_path / "fbank.ckpt", new_fbank))

    def new_setting(blob):
        blob["voxface_encoders"]["voice"]["front_end"]["settings"]["dither"] = 1.0

    with pytest.raises(WeightsError, match=r"voice encoder\): the recorded ecapa encoder settings do not fit this "
                                           r"voxface \(.*dither"):
        load_trained_model(_edited(trained_checkpoint, tmp_path / "setting.ckpt", new_setting))

    def older(blob):  # a checkpoint from before encoders were recorded (voxface 0.1)
        del blob["voxface_encoders"]
        blob["voxface_version"] = "0.1.0"

    with pytest.raises(WeightsError, match=r"another voxface version: its layout \(no encoder records\) is unknown"):
        load_trained_model(_edited(trained_checkpoint, tmp_path / "older.ckpt", older))
