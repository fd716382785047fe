"""The pair-based peers (issue 24): Learnable PINs, FV-CME and LAFV. Each loss is computed a second way, by hand in
numpy (float64) from the heads' weights, and compared to 1e-5; PINs' mined negatives and curriculum, and LAFV's
choice of other-identity faces, are checked for what they must be."""

import numpy as np
import pytest
import torch

from voxface.errors import ConfigError
from voxface.methods import LabelSpace, Towers, method_args, method_class
from voxface.methods.fv_cme import FvCme, FvCmeArgs
from voxface.methods.lafv import Lafv, LafvArgs, other_faces
from voxface.methods.pins import Pins, PinsArgs, curriculum_tau, mine_negatives
from voxface.training.config import load_config

FACE_DIM, VOICE_DIM, PAIRS = 12, 10, 7


def _towers():
    return Towers(None, None, FACE_DIM, VOICE_DIM, labels=LabelSpace(identities=PAIRS))


def _batch(seed=1):
    g = torch.Generator().manual_seed(seed)
    return {"face_features": torch.randn(PAIRS, FACE_DIM, generator=g),
            "voice_features": torch.randn(PAIRS, VOICE_DIM, generator=g)}


def _mlp(mapping, x):
    """A FeatureMapping without norm or dropout (Linear -> ReLU -> Linear), in numpy float64."""
    first, last = mapping.net[0], mapping.net[-1]
    w1, b1 = first.weight.detach().double().numpy(), first.bias.detach().double().numpy()
    w2, b2 = last.weight.detach().double().numpy(), last.bias.detach().double().numpy()
    return np.maximum(x @ w1.T + b1, 0.0) @ w2.T + b2


def _embed(method, batch):
    face = _mlp(method.face_mlp, batch["face_features"].double().numpy())
    voice = _mlp(method.voice_mlp, batch["voice_features"].double().numpy())
    return face, voice


def _unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


# ---------------------------------------------------------------- Learnable PINs


def test_pins_loss_equals_a_numpy_computation_with_its_mined_negatives():
    torch.manual_seed(0)
    args = PinsArgs(margin=1.8, embedding_size=6, hidden=[16], tau_start=0.5, tau_every=1000)
    method, batch = Pins(args, _towers()), _batch()
    terms = method.losses(batch, gather=lambda x: x)
    face, voice = (_unit(x) for x in _embed(method, batch))
    distance = np.linalg.norm(face[:, None] - voice[None], axis=2)
    position = round(0.5 * (PAIRS - 2))  # tau 0.5 of the 6 other voices, farthest first
    negative = []
    for i in range(PAIRS):
        others = [j for j in np.argsort(-distance[i], kind="stable") if j != i]
        negative.append(others[position])
    positive = np.sum((face - voice) ** 2, axis=1)
    hinge = np.maximum(1.8 - distance[np.arange(PAIRS), negative], 0.0) ** 2
    expected = 0.5 * np.mean(positive + hinge)
    assert hinge.sum() > 0  # the margin is active, so the negative term is tested too
    assert terms["contrastive_loss"].item() == pytest.approx(expected, abs=1e-5)
    assert terms["negative_distance"].item() == pytest.approx(distance[np.arange(PAIRS), negative].mean(), abs=1e-5)


def test_pins_mines_a_real_other_index_never_the_anchors_own_pair_nor_a_loop_counter():
    # Faces and voices on a line: face i at i, voice i at 10 - i, so face i's own voice is its farthest for small i
    # (the port ranks it first and then stores the loop counter 0..k-1, i.e. the batch's first voices).
    face = torch.arange(6.0)[:, None]
    voice = (10.0 - torch.arange(6.0))[:, None]
    for tau in (0.0, 0.3, 0.5, 0.8, 1.0):
        mined = mine_negatives(face, voice, tau)
        assert mined.dtype == torch.long and mined.shape == (6,)
        assert ((mined >= 0) & (mined < 6)).all()
        assert (mined != torch.arange(6)).all(), tau
    distance = (face - voice.T).abs()
    for i in range(6):
        others = sorted((j for j in range(6) if j != i), key=lambda j: -float(distance[i, j]))
        assert int(mine_negatives(face, voice, 0.0)[i]) == others[0]  # tau 0: the farthest other voice
        assert int(mine_negatives(face, voice, 1.0)[i]) == others[-1]  # tau 1: the nearest other voice
    # face 0 (at 0): the other voices sit at 9, 8, 7, 6, 5 (indices 1..5); tau 1 takes index 5, not position 0 or 1
    assert int(mine_negatives(face, voice, 1.0)[0]) == 5
    # random batches: never the own pair, whatever tau
    g = torch.Generator().manual_seed(3)
    for _ in range(20):
        a, b = torch.randn(9, 4, generator=g), torch.randn(9, 4, generator=g)
        assert (mine_negatives(a, b, float(torch.rand(1, generator=g))) != torch.arange(9)).all()


def test_pins_curriculum_raises_tau_on_training_steps_and_keeps_its_place_in_a_checkpoint():
    assert [curriculum_tau(s, 0.3, 0.8, 0.1, 500) for s in (0, 499, 500, 1000, 2499, 2500, 10_000)] == [
        0.3, 0.3, 0.4, 0.5, 0.7, 0.8, 0.8]  # capped at 0.8 (the port's float sum reaches 0.9)
    method, batch = Pins(PinsArgs(embedding_size=4, hidden=[8], tau_every=2), _towers()), _batch()
    seen = [method.losses(batch, gather=lambda x: x)["tau"].item() for _ in range(5)]
    assert seen == pytest.approx([0.3, 0.3, 0.4, 0.4, 0.5])
    method.eval()
    method.losses(batch, gather=lambda x: x)  # evaluation does not advance the curriculum
    assert int(method.steps) == 5
    again = Pins(PinsArgs(embedding_size=4, hidden=[8], tau_every=2), _towers())
    again.load_state_dict(method.state_dict())
    assert again.tau == pytest.approx(0.5)


# ---------------------------------------------------------------- FV-CME


def test_fv_cme_npair_loss_equals_a_numpy_computation():
    torch.manual_seed(1)
    method, batch = FvCme(FvCmeArgs(embedding_size=6, hidden=[16], norm_weight=0.01), _towers()), _batch(2)
    terms = method.losses(batch, gather=lambda x: x)
    face, voice = _embed(method, batch)
    logits = face @ voice.T
    npair = np.mean([np.log1p(np.sum(np.exp(logits[i] - logits[i, i])) - 1.0) for i in range(PAIRS)])
    penalty = 0.25 * 0.01 * (np.mean(np.sum(face**2, 1)) + np.mean(np.sum(voice**2, 1)))
    assert terms["npair_loss"].item() == pytest.approx(npair + penalty, abs=1e-5)
    assert terms["pair_accuracy"].item() == pytest.approx(np.mean(logits.argmax(1) == np.arange(PAIRS)))


def test_fv_cme_trains_on_identity_unique_batches_without_labels():
    assert FvCme.sampler == "identity_unique" and FvCme.batch_keys == ()
    method, batch = FvCme(FvCmeArgs(embedding_size=4, hidden=[8]), _towers()), _batch()
    method.losses(batch, gather=lambda x: x)["npair_loss"].backward()
    assert all(p.grad is not None for p in method.parameters())  # both heads learn from the one direction


# ---------------------------------------------------------------- LAFV


def test_lafv_ratio_loss_equals_a_numpy_computation():
    torch.manual_seed(2)
    method, batch = Lafv(LafvArgs(embedding_size=6, hidden=[16]), _towers()), _batch(3)
    terms = method.losses(batch, gather=lambda x: x, generator=torch.Generator().manual_seed(5))
    negative = other_faces(PAIRS, torch.Generator().manual_seed(5)).numpy()
    face, voice = _embed(method, batch)
    near = np.linalg.norm(voice - face, axis=1)
    far = np.linalg.norm(voice - face[negative], axis=1)
    soft_near = np.exp(near) / (np.exp(near) + np.exp(far))
    expected = np.mean(soft_near**2 + (1.0 - soft_near - 1.0) ** 2)  # |(s+, s- - 1)|^2 with s- = 1 - s+
    assert terms["ratio_loss"].item() == pytest.approx(expected, abs=1e-5)
    assert terms["triplet_accuracy"].item() == pytest.approx(np.mean(near < far))


def test_lafv_takes_another_pairs_face_as_the_negative_one_cycle_drawn_with_the_steps_generator():
    for batch in (2, 3, 8, 32):
        for seed in range(5):
            negative = other_faces(batch, torch.Generator().manual_seed(seed))
            assert sorted(negative.tolist()) == list(range(batch))  # every face is a negative once
            assert (negative != torch.arange(batch)).all()  # never the voice's own face
            seen, i = set(), 0
            while i not in seen:  # one cycle through all pairs
                seen.add(i)
                i = int(negative[i])
            assert len(seen) == batch
    same = other_faces(16, torch.Generator().manual_seed(7))
    assert torch.equal(same, other_faces(16, torch.Generator().manual_seed(7)))  # a resumed step draws the same
    assert not torch.equal(same, other_faces(16, torch.Generator().manual_seed(8)))
    assert other_faces(4, None).tolist() == [1, 2, 3, 0]


# ---------------------------------------------------------------- configs and arguments


@pytest.mark.parametrize("name", ["pins", "fv_cme", "lafv"])
@pytest.mark.parametrize("dataset", ["voxsynth", "voxceleb1"])
def test_each_pair_peer_has_a_config_per_dataset_that_builds_its_method(name, dataset):
    config = load_config(f"{dataset}/peers/{name}", check_paths=False)
    assert config.method.name == name
    args = method_args(name, config.method.args)
    method = method_class(name)(args, _towers())
    assert method.embed_face(features=torch.randn(3, FACE_DIM)).shape == (3, args.embedding_size)
    assert method.embed_voice(features=torch.randn(3, VOICE_DIM)).shape == (3, args.embedding_size)


def test_bad_arguments_name_the_key():
    with pytest.raises(ConfigError, match="method.args.margin"):
        method_args("pins", {"margin": 0})
    with pytest.raises(ConfigError, match="method.args.tau_start / tau_end"):
        method_args("pins", {"tau_start": 0.9, "tau_end": 0.8})
    with pytest.raises(ConfigError, match="method.args.norm_weight"):
        method_args("fv_cme", {"norm_weight": -1})
    with pytest.raises(ConfigError, match="method.args.embedding_size"):
        method_args("lafv", {"embedding_size": 0})
