"""MSM (Moscati et al., arXiv 2026): its fixed class vectors are a regular simplex (C unit vectors in C - 1
dimensions, every pairwise cosine -1/(C - 1)) and equal Kasarla et al.'s recursion as written; its loss on a seeded
batch is computed a second way, by hand in float64 numpy with explicit loops; a few steps on a separable toy batch
lower it, and the class vectors never move."""

import math

import numpy as np
import pytest
import torch

from voxface.errors import ConfigError
from voxface.methods import METHODS, LabelSpace, Towers, method_args
from voxface.methods.msm import Msm, MsmArgs, max_separation_vectors

FACE_DIM, VOICE_DIM = 10, 6


def towers(identities):
    return Towers(None, None, FACE_DIM, VOICE_DIM, labels=LabelSpace(identities=identities))


def kasarla_recursion(order):
    """V_order built literally from V_1 = [1, -1] and V_k = [[1, -1/k ...], [0, sqrt(1 - 1/k^2) V_{k-1}]]: a
    k x (k + 1) numpy array whose columns are the class vectors."""
    if order == 1:
        return np.array([[1.0, -1.0]])
    below = math.sqrt(1 - 1 / order**2) * kasarla_recursion(order - 1)
    first = np.concatenate([[1.0], np.full(order, -1 / order)])
    rest = np.concatenate([np.zeros((order - 1, 1)), below], axis=1)
    return np.concatenate([first[None, :], rest], axis=0)


# ------------------------------------------------------------------ the class vectors


@pytest.mark.parametrize("classes", [2, 3, 4, 7, 64, 901])
def test_class_vectors_are_c_unit_vectors_in_c_minus_1_dimensions_at_cosine_minus_1_over_c_minus_1(classes):
    vectors = max_separation_vectors(classes).numpy()
    assert vectors.shape == (classes, classes - 1)
    for built in (vectors, Msm(MsmArgs(), towers(classes)).class_vectors.double().numpy()):  # float64 and the buffer
        gram = built @ built.T
        assert np.abs(np.diag(gram) - 1).max() < 1e-6
        off = gram[~np.eye(classes, dtype=bool)]
        assert np.abs(off - (-1 / (classes - 1))).max() < 1e-6
        assert np.abs(built.sum(axis=0)).max() < 1e-5  # zero mean: the simplex is centred
        assert (built[-1] < 0).all()  # the last class has no positive coordinate (the docstring's note)
    assert torch.equal(max_separation_vectors(classes), max_separation_vectors(classes))  # no random draw


@pytest.mark.parametrize("classes", [2, 3, 5, 12, 40])
def test_class_vectors_are_kasarla_recursion_unrolled(classes):
    assert np.allclose(max_separation_vectors(classes).numpy(), kasarla_recursion(classes - 1).T, atol=1e-12)


def test_class_vectors_cases_small_enough_to_write_down():
    assert max_separation_vectors(2).tolist() == [[1.0], [-1.0]]
    three = max_separation_vectors(3).numpy()  # an equilateral triangle, its first vertex on the first axis
    assert np.allclose(three, [[1, 0], [-0.5, math.sqrt(3) / 2], [-0.5, -math.sqrt(3) / 2]])
    with pytest.raises(ValueError, match="at least 2 classes"):
        max_separation_vectors(1)
    with pytest.raises(ConfigError, match="at least 2 training identities"):
        Msm(MsmArgs(), towers(1))


# ------------------------------------------------------------------ the loss, a second way


def np_layers(x, sequential):
    """Linear -> BatchNorm1d (training: batch mean, biased variance) -> ReLU -> Dropout(0), in float64 numpy."""
    linear, norm, _, dropout = sequential
    assert dropout.p == 0
    w, b = linear.weight.detach().double().numpy(), linear.bias.detach().double().numpy()
    h = np.array([[sum(w[o, k] * row[k] for k in range(len(row))) + b[o] for o in range(len(b))] for row in x])
    mean, var = h.mean(axis=0), ((h - h.mean(axis=0)) ** 2).mean(axis=0)
    scale, shift = norm.weight.detach().double().numpy(), norm.bias.detach().double().numpy()
    h = (h - mean) / np.sqrt(var + norm.eps) * scale + shift
    return np.where(h > 0, h, 0.0)


def np_msm_loss(method, batch, classes, alpha, gamma):
    """Cross-entropy on <p_c, z> plus alpha * OPL(z), sample by sample and pair by pair; the class vectors from
    the literal recursion above, not from the method."""
    f = np_layers(batch["face_features"].double().numpy(), method.face_branch)
    v = np_layers(batch["voice_features"].double().numpy(), method.voice_branch)
    f = f / np.maximum(np.sqrt((f**2).sum(axis=1, keepdims=True)), 1e-12)  # F.normalize's guard
    v = v / np.maximum(np.sqrt((v**2).sum(axis=1, keepdims=True)), 1e-12)
    w_f, w_v = method.fusion_weights.detach().double().tolist()
    z = w_f * f + w_v * v
    prototypes = kasarla_recursion(classes - 1)  # (C - 1, C): one class a column
    labels = batch["identity"].tolist()
    cross_entropy = 0.0
    for i, y in enumerate(labels):
        logits = [sum(z[i, d] * prototypes[d, c] for d in range(classes - 1)) for c in range(classes)]
        top = max(logits)
        cross_entropy += top + math.log(sum(math.exp(s - top) for s in logits)) - logits[y]
    cross_entropy /= len(labels)
    unit = [row / math.sqrt(sum(x * x for x in row)) for row in z]
    same, n_same, other, n_other = 0.0, 0, 0.0, 0
    for i in range(len(labels)):
        for j in range(len(labels)):
            cosine = float(np.dot(unit[i], unit[j]))
            if i != j and labels[i] == labels[j]:
                same, n_same = same + cosine, n_same + 1
            elif labels[i] != labels[j]:
                other, n_other = other + abs(cosine), n_other + 1
    opl = (1 - same / (n_same + 1e-6)) + gamma * other / (n_other + 1e-6)
    return cross_entropy, alpha * opl


def seeded_batch(identities, seed=3):
    g = torch.Generator().manual_seed(seed)
    return {"face_features": torch.randn(len(identities), FACE_DIM, generator=g),
            "voice_features": torch.randn(len(identities), VOICE_DIM, generator=g),
            "identity": torch.tensor(identities)}


def test_msm_loss_is_cross_entropy_on_the_fixed_class_vectors_plus_alpha_opl_on_the_linear_fusion():
    torch.manual_seed(0)
    classes = 9
    method = Msm(MsmArgs(dropout=0.0, opl_weight=2.0, opl_gamma=0.6), towers(classes)).train()
    batch = seeded_batch([0, 0, 3, 3, 8, 8, 1, 1])
    terms = method.losses(batch, gather=lambda x: x)
    cross_entropy, opl = np_msm_loss(method, batch, classes, alpha=2.0, gamma=0.6)
    assert terms["softmax_loss"].item() == pytest.approx(cross_entropy, abs=1e-5)
    assert terms["opl_loss"].item() == pytest.approx(opl, abs=1e-5)
    assert 0 < terms["opl_positive_mean"].item() <= 1  # two pairs an identity: the pull term acts
    assert Msm.sampler == "identity_classes" and Msm.pairs_per_identity == 2
    # test time: each modality's unit branch output, C - 1 wide
    method.eval()
    with torch.no_grad():
        face = method.embed_face(features=batch["face_features"])
        voice = method.embed_voice(features=batch["voice_features"])
    assert face.shape == voice.shape == (8, classes - 1)
    assert torch.allclose(face.norm(dim=1), torch.ones(8), atol=1e-6)


# ------------------------------------------------------------------ it trains


def test_a_few_steps_lower_the_loss_on_a_separable_batch_and_the_class_vectors_stay_fixed():
    torch.manual_seed(0)
    classes = 12
    method = Msm(MsmArgs(dropout=0.0), towers(classes)).train()
    identity = torch.arange(classes).repeat_interleave(2)  # two pairs of each identity, as its batches come
    g = torch.Generator().manual_seed(7)
    face_means, voice_means = 3 * torch.randn(classes, FACE_DIM, generator=g), 3 * torch.randn(classes, VOICE_DIM,
                                                                                              generator=g)
    batch = {"face_features": face_means[identity] + 0.1 * torch.randn(len(identity), FACE_DIM, generator=g),
             "voice_features": voice_means[identity] + 0.1 * torch.randn(len(identity), VOICE_DIM, generator=g),
             "identity": identity}
    heads = method.parameter_groups()["heads"]
    assert all(p is not method.class_vectors for p in heads) and not method.class_vectors.requires_grad
    assert "class_vectors" in method.state_dict()  # saved with a checkpoint
    before = method.class_vectors.clone()
    optimizer = torch.optim.Adam(heads, lr=3e-2)
    losses = []
    for _ in range(40):
        terms = method.losses(batch, gather=lambda x: x)
        loss = terms["softmax_loss"] + terms["opl_loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0]
    assert torch.equal(method.class_vectors, before)


def test_msm_is_registered_and_its_settings_are_checked():
    assert METHODS["msm"] is Msm and Msm.citation
    assert method_args("msm", {}).dropout == 0.91  # the reference's
    with pytest.raises(ConfigError, match="method.args.dropout"):
        method_args("msm", {"dropout": 1.0})
    with pytest.raises(ConfigError, match="method.args.opl_weight"):
        method_args("msm", {"opl_weight": -1})
