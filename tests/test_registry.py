"""Tests that follow the registries (issue 23 item 7): every registered method and encoder is built, trained two
steps, embeds, and survives a checkpoint round trip; a method without a runnable docstring example is refused."""

import doctest
import importlib

import pytest
import torch
import yaml

from voxface.encoders.registry import ENCODERS, build_voice_encoder, encoder_names, load_encoder, save_encoder
from voxface.evaluation.checkpoint import load_trained_model
from voxface.methods import METHODS, Method, method_class, register_method
from voxface.training.config import load_config
from voxface.training.run import train

method_class("sun_su_2025")  # imports the shipped methods, so that METHODS lists them all


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_method_has_a_docstring_example_that_runs(name):
    module = importlib.import_module(METHODS[name].__module__)
    finder, runner = doctest.DocTestFinder(), doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    examples = [test for test in finder.find(METHODS[name], name, module=module, globs=vars(module)) if test.examples]
    assert examples, f"method {name} has no docstring example"
    for test in examples:
        runner.run(test)
    assert runner.failures == 0, f"method {name}'s docstring example fails"


def test_a_method_without_a_runnable_example_is_refused():
    class Undocumented(Method):
        """A method that says nothing runnable."""

        name = "undocumented"

    with pytest.raises(TypeError, match="no runnable docstring example"):
        register_method(Undocumented)
    assert "undocumented" not in METHODS

    class UnknownBatches(Method):
        """Asks for batches nothing makes.

        >>> 1
        1
        """

        name, sampler, citation = "unknown_batches", "triplets", "Nobody (nowhere, 2026)"

    with pytest.raises(TypeError, match="asks for sampler .triplets."):
        register_method(UnknownBatches)

    class Uncited(Method):
        """A report could not name it.

        >>> 1
        1
        """

        name = "uncited"

    with pytest.raises(TypeError, match="has no citation"):
        register_method(Uncited)


def _base_for(method, base, folder):
    """The tiny base configuration with ``method`` at its own default arguments (the base carries the paper's)."""
    config = yaml.safe_load(base.read_text())
    if method != config["method"]["name"]:
        config["method"] = {"name": method, "args": {}}
    path = folder / "base.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _voice_weights(name, tmp_path, tiny_ssl):
    if name == "ecapa":
        return None  # random initialisation
    return tiny_ssl(name, tmp_path)


@pytest.mark.parametrize("encoder", encoder_names("voice"))
def test_every_voice_encoder_builds_saves_and_rebuilds(encoder, tmp_path, tiny_ssl):
    voice = build_voice_encoder(encoder, _voice_weights(encoder, tmp_path, tiny_ssl), channels=[16, 16, 16, 16, 48],
                                embedding_size=12).eval()
    assert voice.input == ENCODERS[encoder].takes and voice.front_end()["input"] == voice.input
    wave, lengths = torch.randn(2, 16000), torch.tensor([16000, 12000])
    save_encoder(tmp_path / "encoder.pt", voice, encoder)
    again = load_encoder(tmp_path / "encoder.pt")
    with torch.no_grad():
        assert voice(wave, lengths).shape == (2, 12)
        assert torch.allclose(again(wave, lengths), voice(wave, lengths), atol=1e-5)


# Every method on the ECAPA, and every voice encoder under the paper's method: a method sees only encoder outputs,
# so the whole cross product would test nothing more, at a dozen times the cost.
METHOD_ENCODER = sorted({(m, "ecapa") for m in METHODS} | {("sun_su_2025", e) for e in encoder_names("voice")})


@pytest.mark.parametrize(("method", "encoder"), METHOD_ENCODER)
def test_every_method_trains_on_media_and_every_voice_encoder_round_trips_its_checkpoint(method, encoder, tiny_run,
                                                                                         tiny_ssl, tmp_path):
    root, base = tiny_run
    base = _base_for(method, base, tmp_path)
    weights = _voice_weights(encoder, tmp_path, tiny_ssl)
    out = tmp_path / "run"
    summary = train(load_config(base, [f"trainer.out={out}", "trainer.max_steps=2",
                                       f"audio.encoder={encoder}", f"audio.weights={weights or ''}",
                                       "audio.embedding_size=32"]))
    assert summary["steps"] == 2
    trained, config = load_trained_model(out / "checkpoints" / "last.ckpt")
    assert type(trained) is METHODS[method] and config.method.name == method
    state = torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    for key, value in trained.state_dict().items():  # the checkpoint's weights, nothing re-initialised
        assert torch.equal(value, state[f"method.{key}"]), key
    with torch.no_grad():
        faces, wave = torch.randn(3, 3, 32, 32), torch.randn(3, 16000)
        shape = trained.embed_face(faces).shape  # one shared space, whatever its size
        assert shape == trained.embed_voice(wave).shape and shape[0] == 3


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_trains_on_stored_features_and_evaluates_on_them_or_on_media(method, tiny_run, tiny_stores,
                                                                                  tmp_path):
    from voxface.evaluation.evaluate import evaluate

    root, base = tiny_run
    out = tmp_path / "run"
    train(load_config(_base_for(method, base, tmp_path), [f"trainer.out={out}", "trainer.max_steps=2", *tiny_stores]))
    checkpoint = out / "checkpoints" / "last.ckpt"
    trained, config = load_trained_model(checkpoint)
    assert config.feature_mode and trained.voice_encoder is not None  # the frozen encoders travel in the checkpoint
    first = torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    prior = build_voice_encoder("ecapa", config.audio.weights).state_dict()
    for key, value in prior.items():  # frozen: the voice encoder did not move in training
        assert torch.equal(first[f"method.voice_encoder.{key}"], value), key
    lists = root / "voxsynth" / "protocol"
    stored = evaluate(checkpoint, root / "voxsynth", lists, bootstrap=0, ci="none", decomposition=False)
    media = evaluate(checkpoint, root / "voxsynth", lists, bootstrap=0, ci="none", decomposition=False,
                     from_features=False, workers=0)
    assert stored.encoded["voice"] > 0 and media.encoded["voice"] == stored.encoded["voice"]
    for key, value in stored.verification.items():  # the same encoders on the same files: the same scores
        assert value["auc"] == pytest.approx(media.verification[key]["auc"], abs=1e-6), key
