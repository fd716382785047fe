import json

import numpy as np
import pytest
import torch

from voxface.encoders import (
    ECAPATDNN,
    SSLEncoder,
    iresnet18,
    iresnet34,
    load_encoder,
    load_insightface_backbone,
    load_speechbrain_ecapa,
    save_encoder,
)
from voxface.errors import WeightsError
from voxface.methods.heads import FeatureMapping
from voxface.training.pretrain import PretrainConfig

TINY_ECAPA = dict(channels=(32, 32, 32, 32, 96), attention_channels=16, se_channels=16, embedding_size=24)


def count(model):
    return sum(p.numel() for p in model.parameters())


# ---------------------------------------------------------------- face


def test_full_size_parameter_counts():
    assert round(count(iresnet34()) / 1e6, 1) == 34.1
    assert round(count(ECAPATDNN()) / 1e6, 2) == 20.77


def test_insightface_backbone_round_trip(tmp_path):
    torch.manual_seed(0)
    net = iresnet34(width=0.25, num_features=64, input_size=64).eval()
    for module in net.modules():  # non-trivial BN statistics, as a trained release has
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    torch.save(net.state_dict(), tmp_path / "backbone.pth")  # how arcface_torch releases are saved
    loaded = load_insightface_backbone(tmp_path / "backbone.pth").eval()
    assert (loaded.input_size, loaded.num_features) == (64, 64)
    faces = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(loaded(faces), net(faces))
    # wrapped, DDP-prefixed and counter-less variants load too
    state = {f"module.{k}": v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save({"state_dict": state}, tmp_path / "wrapped.pth")
    load_insightface_backbone(tmp_path / "wrapped.pth")
    with pytest.raises(ValueError, match="takes 64x64"):
        loaded(torch.randn(1, 3, 112, 112))


@pytest.mark.parametrize("width", [0.0625, 0.125, 0.25, 1.0])
def test_an_iresnet_release_of_any_width_loads_as_saved(tmp_path, width):
    """The width is read from the last stage: the first stages are floored at 8 channels, so at x0.0625 conv1 has
    8 channels, as x0.125's does."""
    torch.manual_seed(0)
    net = iresnet18(width=width, num_features=16, input_size=32).eval()
    torch.save(net.state_dict(), tmp_path / "backbone.pth")
    loaded = load_insightface_backbone(tmp_path / "backbone.pth").eval()
    faces = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded(faces), net(faces))


def test_weights_whose_keys_share_a_prefix_load_and_keys_that_still_do_not_fit_are_named(tmp_path):
    torch.manual_seed(0)
    net = iresnet18(width=0.125, num_features=16, input_size=32).eval()
    faces = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        reference = net(faces)
    for prefix in ("backbone.", "model.", "encoder.", "module.backbone."):
        torch.save({f"{prefix}{k}": v for k, v in net.state_dict().items()}, tmp_path / "prefixed.pth")
        loaded = load_insightface_backbone(tmp_path / "prefixed.pth").eval()
        with torch.no_grad():
            assert torch.equal(loaded(faces), reference), prefix
    # the backbone beside a head: not one prefix for every key, so nothing is guessed; the keys are named
    mixed = {**{f"backbone.{k}": v for k, v in net.state_dict().items()}, "head.weight": torch.zeros(10, 16)}
    torch.save(mixed, tmp_path / "mixed.pth")
    with pytest.raises(WeightsError) as caught:
        load_insightface_backbone(tmp_path / "mixed.pth")
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 'mixed.pth'} is not an arcface_torch IResNet state dict: blocks per "
                              "stage (0, 0, 0, 0) match no known depth [18, 34, 50, 100]; its keys are "
                              "backbone.conv1.weight, backbone.bn1.weight")
    assert message.endswith("an IResNet lies under backbone. beside 1 other weights (e.g. head.weight): save the "
                            "keys under backbone. alone, without that prefix") and "\n" not in message
    # the voice weights go through the same reader
    torch.manual_seed(0)
    ecapa = ECAPATDNN(**TINY_ECAPA).eval()
    torch.save({f"model.{k}": v for k, v in ecapa.state_dict().items()}, tmp_path / "embedding_model.ckpt")
    feats = torch.randn(2, 120, 80)
    with torch.no_grad():
        assert torch.equal(load_speechbrain_ecapa(tmp_path / "embedding_model.ckpt").eval()(feats), ecapa(feats))
    torch.save({"model.weight": torch.zeros(3), "model.bias": torch.zeros(3)}, tmp_path / "linear.ckpt")
    with pytest.raises(WeightsError, match=r"linear.ckpt is not a SpeechBrain ECAPA-TDNN state dict: no key "
                                           r"'blocks.0.conv.conv.weight'; its keys are model.weight, model.bias$"):
        load_speechbrain_ecapa(tmp_path / "linear.ckpt")


def test_weight_errors_are_one_line_and_name_the_keys(tmp_path):
    from voxface.encoders.loading import load_strict

    small = iresnet18(width=0.25, input_size=64)
    with pytest.raises(WeightsError, match=r"mis-shaped, file vs model \(e\.g\. conv1\.weight \(16, 3, 3, 3\) vs "):
        load_strict(iresnet18(width=0.5, input_size=64), small.state_dict(), "file.pth")
    state = small.state_dict()
    state["extra.weight"] = torch.zeros(1)
    del state["fc.bias"]
    with pytest.raises(WeightsError, match=r"1 missing \(e\.g\. fc\.bias\); 1 unexpected \(e\.g\. extra\.weight\)"):
        load_strict(iresnet18(width=0.25, input_size=64), state, "file.pth")
    with pytest.raises(WeightsError, match="does not exist"):
        load_insightface_backbone(tmp_path / "none.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a torch file")
    with pytest.raises(WeightsError, match=r"junk.pth is not a PyTorch weights file: it is neither a torch.save zip "
                                          r"archive nor a pickle \(it starts with b'not '\)"):
        load_insightface_backbone(tmp_path / "junk.pth")
    torch.save({"evil": object.__new__(PretrainConfig)}, tmp_path / "pickled.pth")
    with pytest.raises(WeightsError, match="not a readable"):  # weights_only refuses arbitrary objects
        load_insightface_backbone(tmp_path / "pickled.pth")
    torch.save(ECAPATDNN(**TINY_ECAPA).state_dict(), tmp_path / "ecapa.ckpt")
    with pytest.raises(WeightsError, match="not an arcface_torch IResNet state dict"):
        load_insightface_backbone(tmp_path / "ecapa.ckpt")


def test_feature_mapping():
    assert FeatureMapping(512, 192, hidden=(256, 128), norm="layer", dropout=0.1)(torch.randn(5, 512)).shape == (5, 192)
    assert FeatureMapping(64, 24, hidden=())(torch.randn(2, 64)).shape == (2, 24)
    with pytest.raises(ValueError, match="norm"):
        FeatureMapping(8, 4, norm="group")


# ---------------------------------------------------------------- ECAPA-TDNN


def test_speechbrain_ecapa_round_trip(tmp_path):
    torch.manual_seed(0)
    model = ECAPATDNN(**TINY_ECAPA).eval()
    keys = set(model.state_dict())
    for key in ("blocks.0.conv.conv.weight", "blocks.0.norm.norm.weight",
                "blocks.1.res2net_block.blocks.0.conv.conv.weight", "blocks.1.se_block.conv1.conv.weight",
                "mfa.conv.conv.weight", "asp.tdnn.conv.conv.weight", "asp.conv.conv.weight",
                "asp_bn.norm.running_mean", "fc.conv.weight"):
        assert key in keys
    torch.save(model.state_dict(), tmp_path / "embedding_model.ckpt")  # how SpeechBrain saves it
    loaded = load_speechbrain_ecapa(tmp_path / "embedding_model.ckpt").eval()
    feats = torch.randn(2, 150, 80)
    with torch.no_grad():
        assert torch.allclose(loaded(feats), model(feats), atol=1e-6)
    assert loaded(feats).shape == (2, 24)


def test_padding_does_not_change_an_ecapa_embedding():
    torch.manual_seed(1)
    model = ECAPATDNN(**TINY_ECAPA).eval()
    clips = [torch.randn(length, 80) for length in (200, 137, 61)]
    padded = torch.zeros(3, 200, 80)
    for i, clip in enumerate(clips):
        padded[i, : len(clip)] = clip
        padded[i, len(clip):] = torch.randn(200 - len(clip), 80) * 5  # garbage, not zeros
    with torch.no_grad():
        batch = model(padded, torch.tensor([200, 137, 61]))
        for i, clip in enumerate(clips):
            assert torch.allclose(batch[i], model(clip[None])[0], atol=1e-5)
    with pytest.raises(ValueError, match="frame lengths"):
        model(padded, torch.tensor([200, 0, 3]))
    with pytest.raises(ValueError, match=r"\(batch, frames, 80\)"):
        model(torch.randn(2, 80, 100)[:, :, :40])


# ---------------------------------------------------------------- SSL encoders


@pytest.mark.parametrize("kind", ["wav2vec2", "hubert", "wavlm"])
def test_ssl_encoders_load_encode_and_keep_freezing(kind, tmp_path, tiny_ssl):
    folder = tiny_ssl(kind, tmp_path)
    encoder = SSLEncoder.from_pretrained(folder, embedding_size=24, layer_weighting=True, finetune_top_layers=1)
    assert encoder.config.layerdrop == 0.0
    assert not any(p.requires_grad for p in encoder.model.feature_extractor.parameters())
    assert all(p.requires_grad for p in encoder.model.encoder.layers[-1].parameters())
    assert not any(p.requires_grad for p in encoder.model.encoder.layers[0].parameters())
    encoder.eval()
    wave = torch.randn(3, 16000)
    lengths = torch.tensor([16000, 12000, 8000])
    with torch.no_grad():
        batch = encoder(wave, lengths)
        assert batch.shape == (3, 24)
        # a group-norm model encodes clips of different lengths one by one: padding changes nothing
        assert torch.allclose(batch[2], encoder(wave[2:, :8000])[0], atol=1e-5)
    save_encoder(tmp_path / "ours.pt", encoder)
    again = load_encoder(tmp_path / "ours.pt").eval()
    assert not any(p.requires_grad for p in again.model.feature_extractor.parameters())  # re-applied on load
    assert not any(p.requires_grad for p in again.model.encoder.layers[0].parameters())
    with torch.no_grad():
        assert torch.allclose(again(wave, lengths), batch, atol=1e-5)


def test_layer_norm_ssl_uses_attention_mask(tmp_path, tiny_ssl):
    encoder = SSLEncoder.from_pretrained(tiny_ssl("wav2vec2", tmp_path, layer_norm=True), embedding_size=None).eval()
    assert not encoder.group_norm and encoder.embedding_size == 32
    wave = torch.randn(2, 16000)
    with torch.no_grad():
        batch = encoder(wave, torch.tensor([16000, 9600]))
        alone = encoder(wave[1:, :9600])
    assert torch.allclose(batch[1], alone[0], atol=1e-4)


def test_ssl_folder_errors(tmp_path):
    with pytest.raises(WeightsError, match="no config.json"):
        SSLEncoder.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(WeightsError, match="supported"):
        SSLEncoder.from_pretrained(tmp_path)


def test_own_encoder_checkpoints(tmp_path):
    from voxface.encoders import FbankEncoder

    speechbrain = FbankEncoder(ECAPATDNN(**TINY_ECAPA), "speechbrain", {"mean_norm": False})
    for model in (iresnet18(width=0.25, input_size=32, num_features=16), speechbrain):
        save_encoder(tmp_path / "m.pt", model)
        loaded = load_encoder(tmp_path / "m.pt")
        assert type(loaded) is type(model)
        for a, b in zip(loaded.state_dict().values(), model.state_dict().values(), strict=True):
            assert torch.equal(a, b)
    assert loaded.front_end() == speechbrain.front_end()  # the front end travels with the weights
    # a file an older voxface wrote (format /1: a bare ECAPA, which voxface ran on Kaldi fbank) still loads
    bare = ECAPATDNN(**TINY_ECAPA)
    torch.save({"format": "voxface-encoder/1", "kind": "ecapa", "config": {**TINY_ECAPA, "dilations": (1, 2, 3, 4, 1)},
                "state_dict": bare.state_dict()}, tmp_path / "old.pt")
    old = load_encoder(tmp_path / "old.pt")
    assert old.front_end()["fbank"] == "kaldi" and torch.equal(old.network.fc.conv.weight, bare.fc.conv.weight)
    torch.save(iresnet18(width=0.25).state_dict(), tmp_path / "plain.pth")
    with pytest.raises(WeightsError, match="not a voxface encoder checkpoint"):
        load_encoder(tmp_path / "plain.pth")


def test_an_insightface_file_whose_fc_fits_no_input_size_says_so():
    from voxface.encoders.iresnet import iresnet
    from voxface.encoders.loading import iresnet_config
    from voxface.errors import WeightsError

    state = iresnet(depth=18, width=0.125, input_size=32, num_features=16).state_dict()
    state["fc.weight"] = torch.zeros(16, 100)  # 100 features: not 64 channels times a square number of cells
    with pytest.raises(WeightsError, match="input size cannot be inferred: fc takes 100 features"):
        iresnet_config(state)


def test_ecapa_equals_speechbrains_ecapa_tdnn_for_the_same_weights():
    """The fixture's tiny ECAPA_TDNN was built, run and saved by SpeechBrain 1.1.2 itself
    (tests/fixtures/make_speechbrain_reference.py)."""
    from pathlib import Path

    fixtures = Path(__file__).parent / "fixtures"
    reference = np.load(fixtures / "speechbrain_reference.npz")
    model = load_speechbrain_ecapa(fixtures / "speechbrain_ecapa_tiny.ckpt").eval()
    with torch.no_grad():
        output = model(torch.from_numpy(reference["ecapa_input"]))
    assert np.abs(output.numpy() - reference["ecapa_output"]).max() < 1e-5


def test_speechbrain_weights_get_speechbrains_front_end_and_a_provenance_record_its_own(tmp_path):
    from voxface.encoders.registry import build_voice_encoder, weights_provenance, write_provenance

    def kind(weights=None, **settings):
        return build_voice_encoder("ecapa", weights, channels=[16, 16, 16, 16, 48], embedding_size=8,
                                   **settings).front_end()["fbank"]

    assert kind() == "kaldi"  # voxface's own runs
    path = tmp_path / "release" / "embedding_model.ckpt"
    path.parent.mkdir()
    torch.save(ECAPATDNN(channels=(16, 16, 16, 16, 48), embedding_size=8).state_dict(), path)
    assert kind(path) == "speechbrain"  # a SpeechBrain checkpoint fits only its own features
    assert weights_provenance("ecapa", path)["heard_voxceleb"]  # taken for spkrec-ecapa-voxceleb
    assert kind(path, features="kaldi") == "kaldi"  # unless the user says otherwise
    # weights that record where they come from (voxface pretrain): their front end, and no VoxCeleb
    write_provenance(path, "VoxSynth teacher_voices", heard_voxceleb=False,
                     front_end={"input": "fbank", "fbank": "kaldi", "settings": {"mean_norm": True}})
    assert kind(path) == "kaldi" and not weights_provenance("ecapa", path)["heard_voxceleb"]
    write_provenance(path, "a face set", heard_voxceleb=False, front_end={"input": "image", "size": 32})
    with pytest.raises(WeightsError, match=r"records a 'image' front end .*not ECAPA-TDNN voice weights"):
        kind(path)  # a face teacher's weights given as a voice encoder's: one line, not a KeyError
    (path.parent / "voxface_provenance.json").write_text("{not json")
    with pytest.raises(WeightsError, match="is not a voxface provenance record"):
        weights_provenance("ecapa", path)


# ---------------------------------------------------------------- weights as they are saved


def _half_copy(folder, tmp_path):
    """The tiny model in ``folder`` saved again in float16, as ``model.half().save_pretrained(...)`` does."""
    from transformers import AutoModel

    half = tmp_path / f"{folder.name}-fp16"
    AutoModel.from_pretrained(folder, dtype=torch.float32).half().save_pretrained(half)
    assert json.loads((half / "config.json").read_text())["dtype"] == "float16"
    return half


def test_a_float16_folder_loads_in_float32_and_trains(tmp_path, tiny_ssl, caplog):
    from transformers import AutoModel

    folder = tiny_ssl("wav2vec2", tmp_path)
    half = _half_copy(folder, tmp_path)
    with caplog.at_level("INFO", logger="voxface"):
        encoder = SSLEncoder.from_pretrained(half, embedding_size=8)
    assert f"{half}: saved as float16 (config.json), loaded in float32" in caplog.text
    assert {p.dtype for p in encoder.parameters()} == {torch.float32}
    saved = AutoModel.from_pretrained(half, dtype="auto").state_dict()  # what the file holds, in float16
    assert next(iter(saved.values())).dtype == torch.float16
    for name, value in encoder.model.state_dict().items():
        assert torch.equal(value, saved[name].float()), name
    # one training step in float32 (before, the first forward failed: "Input type (float) and bias type (Half)")
    optimizer = torch.optim.Adam([p for p in encoder.parameters() if p.requires_grad], lr=1e-3)
    before = encoder.projection.weight.detach().clone()
    loss = encoder(torch.randn(2, 8000), torch.tensor([8000, 6000])).pow(2).mean()
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss.detach()) and not torch.equal(before, encoder.projection.weight)


def test_waveform_normalisation_follows_the_preprocessor_else_the_config(tmp_path, tiny_ssl, caplog):
    from transformers import Wav2Vec2FeatureExtractor

    group, layer = tiny_ssl("wav2vec2", tmp_path), tiny_ssl("wav2vec2", tmp_path, layer_norm=True)
    assert not (group / "preprocessor_config.json").exists()  # save_pretrained on the model alone writes none
    with caplog.at_level("INFO", logger="voxface"):
        assert SSLEncoder.from_pretrained(group).normalize_waveform is False
        assert SSLEncoder.from_pretrained(layer).normalize_waveform is True
    assert f"{layer}: waveform normalisation on (no preprocessor_config.json; config.json has " \
           "feat_extract_norm='layer'" in caplog.text
    assert f"{group}: waveform normalisation off (no preprocessor_config.json; " in caplog.text
    # a saved feature extractor wins, both ways
    Wav2Vec2FeatureExtractor(do_normalize=False).save_pretrained(layer)
    Wav2Vec2FeatureExtractor(do_normalize=True).save_pretrained(group)
    caplog.clear()
    with caplog.at_level("INFO", logger="voxface"):
        assert SSLEncoder.from_pretrained(layer).normalize_waveform is False
        assert SSLEncoder.from_pretrained(group).normalize_waveform is True
    assert "waveform normalisation on (do_normalize=true in preprocessor_config.json)" in caplog.text
    # a preprocessor_config.json without the key means transformers' default, True; an unreadable one is named
    (layer / "preprocessor_config.json").write_text(json.dumps({"feature_size": 1}))
    assert SSLEncoder.from_pretrained(layer).normalize_waveform is True
    (layer / "preprocessor_config.json").write_text("{not json")
    with pytest.raises(WeightsError, match=rf"^{layer / 'preprocessor_config.json'} cannot be read: "):
        SSLEncoder.from_pretrained(layer)


def test_normalisation_matters_to_a_layer_norm_model_only(tmp_path, tiny_ssl):
    """Why deriving it from feat_extract_norm is safe: a group-norm feature encoder normalises each channel over
    time right after its first (linear) convolution, which removes the waveform's offset and scale anyway."""
    wave = 0.05 * torch.randn(2, 16000) + 0.01
    cosines = {}
    for name, layer_norm in (("group", False), ("layer", True)):
        folder = tiny_ssl("wav2vec2", tmp_path, layer_norm=layer_norm)
        raw, normalised = (SSLEncoder.from_pretrained(folder, embedding_size=None, normalize_waveform=flag).eval()
                           for flag in (False, True))
        with torch.no_grad():
            cosines[name] = float(torch.nn.functional.cosine_similarity(raw(wave), normalised(wave)).min())
    assert cosines["group"] > 0.99999 and cosines["layer"] < 0.9  # measured: 0.9999999 and 0.45


def test_training_checkpoints_and_wrapped_state_dicts_load(tmp_path):
    torch.manual_seed(0)
    net = iresnet18(width=0.25, num_features=16, input_size=32)
    faces = torch.randn(2, 3, 32, 32)
    # insightface arcface_torch's checkpoint_gpu_0.pt (train_v2.py with save_all_states): the backbone beside the
    # softmax head, optimizer and scheduler states, after a training step
    head = torch.nn.Linear(16, 10, bias=False)
    optimizer = torch.optim.SGD(list(net.parameters()) + list(head.parameters()), lr=0.1, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.PolynomialLR(optimizer, total_iters=100, power=2)
    head(net(faces)).sum().backward()
    optimizer.step()
    scheduler.step()
    net.eval()
    with torch.no_grad():
        reference = net(faces)
    checkpoint = {"epoch": 3, "global_step": 1200, "state_dict_backbone": net.state_dict(),
                  "state_dict_softmax_fc": head.state_dict(), "state_optimizer": optimizer.state_dict(),
                  "state_lr_scheduler": scheduler.state_dict()}
    torch.save(checkpoint, tmp_path / "checkpoint_gpu_0.pt")
    ddp = {f"module.{k}": v for k, v in net.state_dict().items()}
    torch.save({"model": ddp, "epoch": 3}, tmp_path / "model_key.pt")
    torch.save({"model_state_dict": net.state_dict(), "optimizer_state_dict": optimizer.state_dict()},
               tmp_path / "tutorial.pt")
    for name in ("checkpoint_gpu_0.pt", "model_key.pt", "tutorial.pt"):
        loaded = load_insightface_backbone(tmp_path / name).eval()
        with torch.no_grad():
            assert torch.equal(loaded(faces), reference), name
    # nothing to find: one line with the top-level keys it saw
    torch.save({"optimizer": optimizer.state_dict(), "epoch": 3}, tmp_path / "optimizer_only.pt")
    with pytest.raises(WeightsError, match=rf"^{tmp_path / 'optimizer_only.pt'} holds no state dict .* under "
                                           r"state_dict_backbone, state_dict, model_state_dict, model; its top-level "
                                           r"keys are optimizer, epoch$"):
        load_insightface_backbone(tmp_path / "optimizer_only.pt")
    torch.save(net, tmp_path / "whole.pth")  # a whole model, not its weights
    with pytest.raises(WeightsError, match=r"whole.pth is not a readable PyTorch weights file: it holds a pickled "
                                           r"voxface.encoders.iresnet.IResNet, .*state_dict\(\), path\)$"):
        load_insightface_backbone(tmp_path / "whole.pth")
    torch.save([net.state_dict()], tmp_path / "list.pt")
    with pytest.raises(WeightsError, match=r"list.pt holds no state dict .*; it holds a list$"):
        load_insightface_backbone(tmp_path / "list.pt")


def test_every_loading_error_names_the_file(tmp_path, tiny_ssl):
    torch.save(ECAPATDNN(**TINY_ECAPA).state_dict(), tmp_path / "ecapa.ckpt")
    with pytest.raises(WeightsError, match=rf"^{tmp_path / 'ecapa.ckpt'} is not an arcface_torch IResNet state dict"):
        load_insightface_backbone(tmp_path / "ecapa.ckpt")
    torch.save(iresnet18(width=0.25).state_dict(), tmp_path / "iresnet.pth")
    with pytest.raises(WeightsError, match=rf"^{tmp_path / 'iresnet.pth'} is not a SpeechBrain ECAPA-TDNN state dict"):
        load_speechbrain_ecapa(tmp_path / "iresnet.pth")
    torch.save({"format": "voxface-encoder/1", "kind": "ecapa", "config": {}}, tmp_path / "empty.pt")
    with pytest.raises(WeightsError, match=rf"^{tmp_path / 'empty.pt'} is a voxface encoder checkpoint without"):
        load_encoder(tmp_path / "empty.pt")
    folder = tiny_ssl("wav2vec2", tmp_path)
    (folder / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{broken}")
    with pytest.raises(WeightsError, match=rf"^{folder}: the weights do not load: [^\n]*$"):
        SSLEncoder.from_pretrained(folder)
