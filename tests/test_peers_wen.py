"""Wen et al. 2021 (methods/wen_2021.py): the loss computed a second way in numpy, and the identity curriculum
(weights indexed by identity, the code's schedule, renormalised, state kept per identity)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from voxface.errors import ConfigError
from voxface.losses.npair import NPairLoss
from voxface.methods import LabelSpace, Towers, method_args
from voxface.methods.wen_2021 import Wen2021, Wen2021Args


def _method(identities, face_dim=6, voice_dim=5, seed=0, **args):
    torch.manual_seed(seed)
    towers = Towers(None, None, face_dim, voice_dim, labels=LabelSpace(identities=identities))
    return Wen2021(Wen2021Args(**args), towers)


def _numpy_head(sequential, x):
    """BatchNorm (training: the batch's biased variance) -> ReLU -> Linear without bias; dropout 0."""
    bn, linear = sequential[0], sequential[2]
    gamma, beta = bn.weight.detach().double().numpy(), bn.bias.detach().double().numpy()
    normed = (x - x.mean(0)) / np.sqrt(x.var(0) + bn.eps) * gamma + beta
    return np.maximum(normed, 0) @ linear.weight.detach().double().numpy().T


def _numpy_ce(logits, labels):
    shifted = logits - logits.max(1, keepdims=True)
    return -(shifted[np.arange(len(labels)), labels] - np.log(np.exp(shifted).sum(1)))


def _numpy_cross(anchor, candidate, constant):
    unit = candidate / np.maximum(np.linalg.norm(candidate, axis=1, keepdims=True), 1e-12)  # F.normalize's eps
    scores = anchor @ unit.T
    out = []
    for i in range(len(anchor)):
        others = sum(np.exp(scores[i, j] - scores[i, i]) for j in range(len(anchor)) if j != i)
        out.append(np.log(1 + constant + others))
    return np.array(out)


def test_loss_equals_a_numpy_computation_with_given_identity_weights():
    method = _method(7, embedding_size=6, dropout=0.0, cross_weight=0.7)
    given = torch.tensor([1.0, 0.0, 0.99, 1.0, 0.5, 0.0, 0.9801])
    method.weight.copy_(given)
    method.loss_average.copy_(torch.arange(7.0))
    torch.manual_seed(1)
    face, voice = torch.randn(5, 6), torch.randn(5, 5)
    identity = torch.tensor([5, 2, 0, 3, 6])
    terms = method.losses({"face_features": face, "voice_features": voice, "identity": identity}, gather=lambda x: x)

    f = _numpy_head(method.face_fc, face.double().numpy())
    v = _numpy_head(method.voice_fc, voice.double().numpy())
    classifier, ids = method.classifier.detach().double().numpy(), identity.numpy()
    u = given.double().numpy() * 7 / given.double().numpy().sum()
    w = u[ids]  # each pair's weight is its identity's: identity 5 (weight 0) counts for nothing
    face_ce, voice_ce = _numpy_ce(f @ classifier.T, ids), _numpy_ce(v @ classifier.T, ids)
    cross = 0.5 * (_numpy_cross(v, f, 4.4) + _numpy_cross(f, v, 4.4))
    assert terms["face_ce_loss"].item() == pytest.approx(np.mean(w * face_ce), abs=1e-5)
    assert terms["voice_ce_loss"].item() == pytest.approx(np.mean(w * voice_ce), abs=1e-5)
    assert terms["cross_loss"].item() == pytest.approx(0.7 * np.mean(w * cross), abs=1e-5)
    assert float(terms["kept_identities"]) == pytest.approx(5 / 7)
    # the batch's identities' moving averages moved (0.9 old + 0.1 unweighted loss), the others did not
    expected = np.arange(7.0)
    expected[ids] = 0.9 * expected[ids] + 0.1 * (face_ce + voice_ce)
    assert np.allclose(method.loss_average.double().numpy(), expected, atol=1e-5)
    assert int(method.steps) == 1 and torch.equal(method.weight, given)  # still warming up: weights untouched


def test_the_cross_constant_zero_is_the_n_pair_loss():
    method = _method(4, embedding_size=3, dropout=0.0, cross_constant=0.0, reweight=False)
    torch.manual_seed(2)
    batch = {"face_features": torch.randn(4, 6), "voice_features": torch.randn(4, 5), "identity": torch.arange(4)}
    terms = method.losses(batch, gather=lambda x: x)
    f = _numpy_head(method.face_fc, batch["face_features"].double().numpy())
    v = _numpy_head(method.voice_fc, batch["voice_features"].double().numpy())
    cross = 0.5 * (_numpy_cross(v, f, 0.0) + _numpy_cross(f, v, 0.0))
    assert terms["cross_loss"].item() == pytest.approx(cross.mean(), abs=1e-5)
    # the same as the shared N-pair loss (no norm penalty) on unit-length candidates, both ways
    face, voice = method.face_head(batch["face_features"]), method.voice_head(batch["voice_features"])
    npair = NPairLoss(norm_weight=0.0)
    both = 0.5 * (npair(voice, F.normalize(face, dim=-1)) + npair(face, F.normalize(voice, dim=-1)))
    assert terms["cross_loss"].item() == pytest.approx(both.item(), abs=1e-5)


def test_a_weight_belongs_to_its_identity_permuting_identities_permutes_the_weights():
    count = 10
    losses = torch.tensor([3.0, 9.0, 1.0, 7.0, 5.0, 2.0, 8.0, 0.5, 6.0, 4.0])
    method = _method(count)
    method.loss_average.copy_(losses)
    method.advance_curriculum()
    kept = set(torch.nonzero(method.weight > 0).flatten().tolist())
    # the five easiest identities by their own loss; a rank-position index (the public port's bug) would keep
    # identities 5..9 whatever their losses
    assert kept == {7, 2, 5, 0, 9}
    for _ in range(2):
        method.advance_curriculum()

    permutation = torch.tensor([4, 7, 0, 9, 2, 8, 1, 5, 3, 6])  # identity k is called permutation[k]
    renamed = _method(count)
    renamed.loss_average[permutation] = losses
    for _ in range(3):
        renamed.advance_curriculum()
    assert torch.equal(renamed.weight[permutation], method.weight)
    assert torch.allclose(renamed.identity_weights()[permutation], method.identity_weights())
    # a pair's weight is its identity's, wherever it sits in the batch
    batch = torch.tensor([3, 7, 1, 0])
    assert torch.allclose(renamed.sample_weights(permutation[batch]), method.sample_weights(batch))
    assert torch.equal(method.sample_weights(batch), method.identity_weights()[batch])


def test_the_curriculum_keeps_half_then_admits_the_next_easiest_with_decay_until_ninety_percent():
    count = 50
    method = _method(count)
    losses = torch.randperm(count, generator=torch.Generator().manual_seed(3)).float()
    method.loss_average.copy_(losses)
    order = torch.argsort(losses).tolist()  # easiest first
    method.advance_curriculum()
    assert torch.equal(method.weight[order[:25]], torch.ones(25)) and method.weight[order[25:]].sum() == 0
    assert torch.allclose(method.identity_weights()[order[:25]], torch.full((25,), 2.0))
    for update in range(1, 21):  # 2.4% of 50 is 1.2: one identity per update
        method.advance_curriculum()
        assert method.weight[order[24 + update]] == 1.0  # the next easiest not yet kept
        assert method.weight[order[0]] == pytest.approx(0.99 ** update)  # the earliest decay
        assert method.identity_weights().mean() == pytest.approx(1.0)  # renormalised
        assert method.weight[order[25 + update:]].sum() == 0
    assert method.kept_fraction() == pytest.approx(0.9)
    before = method.weight.clone()
    method.advance_curriculum()  # 90% kept: the hardest 10% stay filtered out, nothing changes
    assert torch.equal(method.weight, before) and method.weight[order[45:]].sum() == 0


def test_training_steps_warm_up_then_update_on_schedule_and_evaluation_changes_nothing():
    method = _method(8, warmup_steps=2, update_every=3)
    batch = {"face_features": torch.randn(4, 6), "voice_features": torch.randn(4, 5),
             "identity": torch.tensor([1, 4, 6, 2])}
    kept = []
    for _ in range(6):
        kept.append(float(method.losses(batch, gather=lambda x: x)["kept_identities"]))
    # steps 0, 1 warm up; the update before step 2 keeps 4 of 8; the next comes before step 5 (one more)
    assert kept == [1.0, 1.0, 0.5, 0.5, 0.5, 0.625]
    # the identities never in a batch kept their starting average, so they were the hardest
    assert set(torch.nonzero(method.weight > 0).flatten().tolist()) >= {1, 4, 6, 2}
    state = {k: v.clone() for k, v in method.state_dict().items()}
    method.eval().losses(batch, gather=lambda x: x)
    assert all(torch.equal(state[k], v) for k, v in method.state_dict().items())
    assert {"loss_average", "weight", "steps", "updates"} <= set(state) and state["loss_average"].shape == (8,)


def test_a_batch_of_filtered_identities_falls_back_to_unit_weights_as_the_code_does():
    method = _method(6)
    method.weight.copy_(torch.tensor([1.0, 1.0, 0.0, 0.0, 1.0, 1.0]))
    assert torch.equal(method.sample_weights(torch.tensor([2, 3])), torch.ones(2))
    assert torch.allclose(method.sample_weights(torch.tensor([0, 2])), torch.tensor([1.5, 0.0]))


def test_the_classifier_is_shared_and_sized_by_the_label_space():
    method = _method(9, embedding_size=7)
    assert method.classifier.shape == (9, 7)
    assert sum(p is method.classifier for p in method.parameters()) == 1
    with pytest.raises(ConfigError, match="label sizes"):
        Wen2021(Wen2021Args(), Towers(None, None, 6, 5))


@pytest.mark.parametrize(("key", "value"), [("first_fraction", 0.95), ("add_fraction", 0.0), ("decay", 0.0),
                                            ("update_every", 0), ("dropout", 1.0), ("momentum", 1.0)])
def test_bad_arguments_are_one_line_naming_the_key(key, value):
    with pytest.raises(ConfigError, match=rf"method\.args\..*{key}"):
        method_args("wen_2021", {key: value})
