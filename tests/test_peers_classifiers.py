"""The classifier-based peers (issue 24): DIMNet, SSNet, SBNet, FOP. Each loss on a fixed batch is computed a second
way, by hand in float64 numpy (network included: Linear, BatchNorm with batch statistics, ReLU), to 1e-5; and what
their logic needs to be trusted: SSNet's centres really move (Eq. 4), DIMNet's gender term has its own classifier."""

import numpy as np
import pytest
import torch
from torch import nn

from voxface.errors import ConfigError
from voxface.losses.center import CenterLoss
from voxface.losses.orthogonal_projection import OrthogonalProjectionLoss
from voxface.methods import LabelSpace, Towers, method_args
from voxface.methods.dimnet import Dimnet, DimnetArgs
from voxface.methods.fop import Fop, FopArgs
from voxface.methods.sbnet import Sbnet, SbnetArgs
from voxface.methods.ssnet import Ssnet, SsnetArgs

FACE_DIM, VOICE_DIM = 12, 7


def towers(identities=4, genders=2, nationalities=3):
    labels = LabelSpace(identities=identities, genders=genders, nationalities=nationalities)
    return Towers(None, None, FACE_DIM, VOICE_DIM, labels=labels)


def fixed_batch(pairs=4, identities=None, seed=1):
    g = torch.Generator().manual_seed(seed)
    identity = torch.arange(pairs) if identities is None else torch.tensor(identities)
    return {"face_features": torch.randn(pairs, FACE_DIM, generator=g),
            "voice_features": torch.randn(pairs, VOICE_DIM, generator=g),
            "identity": identity, "gender": identity % 2, "nationality": identity % 3}


# ------------------------------------------------------------------ the numpy side

def np64(t):
    return t.detach().double().numpy()


def np_forward(x, module):
    """A Sequential of Linear / BatchNorm1d (training: batch mean and biased variance) / ReLU / Dropout(0) /
    Identity, in float64 numpy."""
    for layer in (module if isinstance(module, nn.Sequential) else [module]):
        if isinstance(layer, nn.Sequential):
            x = np_forward(x, layer)
        elif isinstance(layer, nn.Linear):
            x = x @ np64(layer.weight).T + np64(layer.bias)
        elif isinstance(layer, nn.BatchNorm1d):
            x = (x - x.mean(0)) / np.sqrt(x.var(0) + layer.eps) * np64(layer.weight) + np64(layer.bias)
        elif isinstance(layer, nn.ReLU):
            x = np.maximum(x, 0)
        elif isinstance(layer, nn.Dropout):
            assert layer.p == 0
        elif not isinstance(layer, nn.Identity):
            raise TypeError(layer)
    return x


def np_unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def np_cross_entropy(logits, labels):
    shifted = logits - logits.max(1, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(1, keepdims=True))
    return -np.mean(log_softmax[np.arange(len(labels)), labels])


def np_opl(x, labels, gamma):
    """OPL written pair by pair."""
    x = np_unit(x)
    pos, n_pos, neg, n_neg = 0.0, 0, 0.0, 0
    for i in range(len(x)):
        for j in range(len(x)):
            if labels[i] == labels[j] and i != j:
                pos, n_pos = pos + x[i] @ x[j], n_pos + 1
            elif labels[i] != labels[j]:
                neg, n_neg = neg + abs(x[i] @ x[j]), n_neg + 1
    return (1 - pos / (n_pos + 1e-6)) + gamma * neg / (n_neg + 1e-6)


def scalar(t):
    return t.detach().item()


def total(terms):
    return sum(value for name, value in terms.items() if name.endswith("_loss"))


# ------------------------------------------------------------------ DIMNet


def test_dimnet_loss_is_each_covariates_cross_entropy_through_one_shared_classifier():
    torch.manual_seed(0)
    method = Dimnet(DimnetArgs(covariates=["identity", "gender", "nationality"]), towers()).train()
    batch = fixed_batch()
    terms = method.losses(batch, gather=lambda x: x)
    voice = np_forward(np64(batch["voice_features"]), method.voice_mapping.net)
    face = np_forward(np64(batch["face_features"]), method.face_mapping.net)
    both = np.concatenate([voice, face])
    expected = 0.0
    for covariate in ("identity", "gender", "nationality"):
        labels = np.concatenate([batch[covariate].numpy()] * 2)
        value = np_cross_entropy(np_forward(both, method.classifiers[covariate]), labels)
        assert scalar(terms[f"{covariate}_loss"]) == pytest.approx(value, abs=1e-5)
        expected += value
    assert scalar(total(terms)) == pytest.approx(expected, abs=1e-5)


def test_dimnet_gender_has_its_own_classifier_not_the_identity_one():
    """The port reads gender 0/1 as identities 0/1 of the identity classifier: here the gender term changes with
    the gender classifier's weights and not with the identity classifier's."""
    torch.manual_seed(0)
    method = Dimnet(DimnetArgs(), towers(identities=5)).train()
    assert sorted(method.classifiers) == ["gender", "identity"]  # DIMNet-IG by default
    assert method.classifiers["gender"].out_features == 2 and method.classifiers["identity"].out_features == 5
    batch = fixed_batch()
    before = method.losses(batch, gather=lambda x: x)
    with torch.no_grad():
        method.classifiers["identity"].weight.mul_(3.0)
    after = method.losses(batch, gather=lambda x: x)
    assert scalar(after["gender_loss"]) == pytest.approx(scalar(before["gender_loss"]), abs=1e-6)
    assert scalar(after["identity_loss"]) != pytest.approx(scalar(before["identity_loss"]), abs=1e-3)


def test_dimnet_refuses_a_covariate_with_one_value_and_an_unknown_one():
    with pytest.raises(ConfigError, match="must leave out 'nationality'"):
        Dimnet(DimnetArgs(covariates=["identity", "nationality"]), towers(nationalities=1))
    with pytest.raises(ConfigError, match=r"method.args.covariates must be .*'age' is none of them"):
        method_args("dimnet", {"covariates": ["identity", "age"]})


# ------------------------------------------------------------------ SSNet and the center loss


def np_single_branch(branch, face, voice):
    joint = np.concatenate([np_forward(np64(face), branch.face_adapter), np_forward(np64(voice), branch.voice_adapter)])
    return np_unit(np_forward(joint, branch.branch))


def test_ssnet_loss_is_softmax_plus_center_loss_and_the_centres_move_by_eq4():
    torch.manual_seed(0)
    method = Ssnet(SsnetArgs(dropout=0.0, adapter_dim=10, hidden=[9, 8], center_weight=0.5, center_alpha=0.5),
                   towers(identities=5)).train()
    with torch.no_grad():  # centres away from zero, so the first loss checks c_{y_i} too
        method.center.centers.copy_(torch.randn(5, 8, generator=torch.Generator().manual_seed(3)))
    batch = fixed_batch(identities=[0, 2, 3, 4])
    centres = np64(method.center.centers)
    terms = method.losses(batch, gather=lambda x: x)
    e = np_single_branch(method.stream, batch["face_features"], batch["voice_features"])
    labels = np.concatenate([batch["identity"].numpy()] * 2)
    softmax = np_cross_entropy(np_forward(e, method.classifier), labels)
    center = np.sum((e - centres[labels]) ** 2) / (2 * len(e))
    assert scalar(terms["softmax_loss"]) == pytest.approx(softmax, abs=1e-5)
    assert scalar(terms["center_loss"]) == pytest.approx(0.5 * center, abs=1e-5)
    # Eq. 4, class by class: c_j - alpha * sum_i [y_i = j](c_j - e_i) / (1 + n_j); class 1 was absent
    expected = centres.copy()
    for j in range(5):
        members = e[labels == j]
        expected[j] -= 0.5 * (len(members) * centres[j] - members.sum(0)) / (1 + len(members))
    assert np.allclose(np64(method.center.centers), expected, atol=1e-6)
    assert np.array_equal(np64(method.center.centers)[1], centres[1])
    # each moved centre is nearer its class's mean than before
    for j in (0, 2, 3, 4):
        mean = e[labels == j].mean(0)
        assert np.linalg.norm(expected[j] - mean) < np.linalg.norm(centres[j] - mean)


def test_centres_move_in_training_only_and_the_loss_uses_them():
    loss = CenterLoss(num_classes=2, dim=2, alpha=1.0)
    x, labels = torch.tensor([[3.0, 0.0], [1.0, 0.0]]), torch.tensor([1, 1])
    assert scalar(loss(x, labels)) == pytest.approx((9 + 1) / 4)
    assert loss.centers.tolist() == [[0.0, 0.0], [pytest.approx(4 / 3), 0.0]]  # alpha (0 - 4) / (1 + 2) subtracted
    assert scalar(loss(x, labels)) == pytest.approx(((3 - 4 / 3) ** 2 + (1 - 4 / 3) ** 2) / 4)  # the moved centre
    moved = loss.centers.clone()
    loss.eval()(x, labels)
    with torch.no_grad():
        loss.train()(x, labels)
    assert torch.equal(loss.centers, moved)  # evaluation and no-grad calls leave them


def test_ssnet_centres_move_over_training_steps():
    torch.manual_seed(0)
    method = Ssnet(SsnetArgs(adapter_dim=16), towers(identities=4)).train()
    optimiser = torch.optim.Adam(method.parameters(), lr=1e-2)
    for step in range(5):
        loss = total(method.losses(fixed_batch(seed=step), gather=lambda x: x))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    centres = method.center.centers
    assert "center.centers" in method.state_dict() and not centres.requires_grad
    assert (centres.norm(dim=1) > 0.1).all()  # every identity's centre left zero


# ------------------------------------------------------------------ SBNet


def test_sbnet_loss_is_cross_entropy_plus_alpha_opl_over_both_modalities():
    torch.manual_seed(0)
    method = Sbnet(SbnetArgs(dropout=0.0, adapter_dim=10, hidden=[9, 8], opl_weight=0.7, opl_gamma=0.4),
                   towers(identities=5)).train()
    batch = fixed_batch(identities=[0, 2, 3, 4])
    terms = method.losses(batch, gather=lambda x: x)
    e = np_single_branch(method.branch, batch["face_features"], batch["voice_features"])
    labels = np.concatenate([batch["identity"].numpy()] * 2)
    assert scalar(terms["softmax_loss"]) == pytest.approx(np_cross_entropy(np_forward(e, method.classifier), labels),
                                                         abs=1e-5)
    assert scalar(terms["opl_loss"]) == pytest.approx(0.7 * np_opl(e, labels, 0.4), abs=1e-5)
    # test time: each modality alone through the same branch, unit vectors
    method.eval()
    face = method.embed_face(features=batch["face_features"])
    assert torch.allclose(face.norm(dim=1), torch.ones(4), atol=1e-6)


def test_sbnet_and_ssnet_without_adapters_need_one_input_size():
    with pytest.raises(ConfigError, match="method.args.adapter must be true"):
        Sbnet(SbnetArgs(adapter=False), towers())
    same = Towers(None, None, 8, 8, labels=LabelSpace(identities=3))
    assert isinstance(Ssnet(SsnetArgs(adapter=False), same).stream.face_adapter, nn.Identity)


def test_opl_constants_and_a_batch_without_positives():
    """The reference's gamma 0.7; no same-label pair leaves 1 + gamma * mean |cos| of the different ones."""
    x = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 2.0]])
    assert OrthogonalProjectionLoss().gamma == 0.7
    value = scalar(OrthogonalProjectionLoss(0.7)(x, torch.tensor([0, 1, 2])))
    assert value == pytest.approx(np_opl(x.double().numpy(), [0, 1, 2], 0.7), abs=1e-6)
    assert value == pytest.approx(1 + 0.7 * (2 * (2**-0.5) * 2 + 0) / 6, abs=1e-5)


# ------------------------------------------------------------------ FOP


def test_fop_loss_is_cross_entropy_plus_alpha_opl_on_the_gated_fusion():
    torch.manual_seed(0)
    method = Fop(FopArgs(embedding_size=8, gate_hidden=6, dropout=0.0, opl_weight=1.5, opl_gamma=0.7),
                 towers(identities=3)).train()
    batch = fixed_batch(pairs=6, identities=[0, 0, 1, 1, 2, 2])
    terms = method.losses(batch, gather=lambda x: x)
    f = np_unit(np_forward(np64(batch["face_features"]), method.face_branch))
    v = np_unit(np_forward(np64(batch["voice_features"]), method.voice_branch))
    gate = 1 / (1 + np.exp(-np_forward(np.concatenate([f, v], axis=1), method.gate)))
    fused = gate * np.tanh(f) + (1 - gate) * np.tanh(v)
    labels = batch["identity"].numpy()
    assert scalar(terms["softmax_loss"]) == pytest.approx(np_cross_entropy(np_forward(fused, method.classifier),
                                                                          labels), abs=1e-5)
    assert scalar(terms["opl_loss"]) == pytest.approx(1.5 * np_opl(fused, labels, 0.7), abs=1e-5)
    assert 0 < scalar(terms["opl_positive_mean"]) <= 1  # two pairs an identity: the pull term acts
    # test time: each modality's own branch, tanh of its unit output (what the reference compares)
    method.eval()
    with torch.no_grad():
        face = method.embed_face(features=batch["face_features"])
        expected = torch.tanh(torch.nn.functional.normalize(method.face_branch(batch["face_features"]), dim=1))
    assert torch.allclose(face, expected)
    assert Fop.sampler == "identity_classes" and 32 % Fop.pairs_per_identity == 0


def test_fop_initialisation_leaves_the_encoders_alone():
    """Xavier and bias 0.01 go to FOP's own layers only: an encoder handed in keeps its weights."""
    torch.manual_seed(0)
    face, voice = nn.Linear(5, FACE_DIM), nn.Linear(5, VOICE_DIM)
    face.embedding_size, voice.embedding_size = FACE_DIM, VOICE_DIM
    before = face.bias.clone()
    method = Fop(FopArgs(), Towers(face, voice, FACE_DIM, VOICE_DIM, labels=LabelSpace(identities=3)))
    assert torch.equal(method.face_encoder.bias, before)
    assert torch.all(method.classifier.bias == 0.01)
