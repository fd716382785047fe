"""The metric-learning and clustering peers (VFMR, Self-Lifting, CMPC): each loss on a small fixed batch computed a
second time by hand in numpy (float64), and the clustering steps checked on toy memories whose answer is known."""

import math

import numpy as np
import pytest
import torch
from pytorch_metric_learning.losses import LiftedStructureLoss as LibraryLiftedStructure

from voxface.errors import ConfigError
from voxface.losses.lifted_structure import LiftedStructureLoss
from voxface.methods import LabelSpace, Towers, method_args
from voxface.methods.cmpc import Cmpc, CmpcArgs, agreement_weights
from voxface.methods.self_lifting import SelfLifting, SelfLiftingArgs
from voxface.methods.vfmr import Vfmr, VfmrArgs

FACE_DIM, VOICE_DIM = 6, 5


def _build(cls, args, videos=8):
    torch.manual_seed(0)
    towers = Towers(None, None, FACE_DIM, VOICE_DIM, labels=LabelSpace(identities=4, videos=videos, clips=2 * videos))
    return cls(args, towers).double().eval()  # eval: dropout off, so numpy can redo the heads


def _batch(extra):
    generator = torch.Generator().manual_seed(1)
    return {"face_features": torch.randn(6, FACE_DIM, generator=generator, dtype=torch.float64),
            "voice_features": torch.randn(6, VOICE_DIM, generator=generator, dtype=torch.float64), **extra}


def _heads(method, batch):
    """The shared-tail heads in numpy: front (Linear, ReLU) per modality, then the shared Linear, ReLU, Linear."""
    def linear(layer, x):
        return x @ layer.weight.detach().numpy().T + layer.bias.detach().numpy()

    def run(front, x):
        h = np.maximum(linear(front[1], x), 0)
        h = np.maximum(linear(method.heads.tail[0], h), 0)
        return linear(method.heads.tail[2], h)

    return (run(method.heads.voice_front, batch["voice_features"].numpy()),
            run(method.heads.face_front, batch["face_features"].numpy()))


def _unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _lifted_by_hand(x, labels, neg_margin=1.0, pos_margin=0.0):
    """Song et al. 2016 Eq. (4), loop by loop over the ordered positive pairs."""
    x = _unit(x)
    n = len(x)
    d = np.linalg.norm(x[:, None] - x[None], axis=2)
    terms = []
    for i in range(n):
        for j in range(n):
            if i == j or labels[i] != labels[j]:
                continue
            s = sum(math.exp(neg_margin - d[i, k]) for k in range(n) if labels[k] != labels[i])
            s += sum(math.exp(neg_margin - d[j, k]) for k in range(n) if labels[k] != labels[j])
            terms.append(max(0.0, math.log(s) + d[i, j] - pos_margin) ** 2 / 2)
    return float(np.mean(terms))


def test_lifted_structure_equals_song_et_al_by_hand_and_the_library():
    generator = torch.Generator().manual_seed(3)
    x = torch.randn(10, 4, generator=generator, dtype=torch.float64)
    labels = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 3, 4])  # classes of 3, 2, 3 and two singletons
    for margins in ((1.0, 0.0), (0.7, 0.2)):
        ours = LiftedStructureLoss(*margins)(x, labels).item()
        assert ours == pytest.approx(_lifted_by_hand(x.numpy(), labels.numpy(), *margins), abs=1e-10)
        assert ours == pytest.approx(float(LibraryLiftedStructure(*margins)(x, labels)), abs=1e-10)
    nothing = LiftedStructureLoss()(x[:3].requires_grad_(), torch.tensor([0, 1, 2]))
    assert nothing.item() == 0.0 and nothing.requires_grad  # no positive pair: 0, still on the graph


def test_vfmr_is_lifted_structure_over_voices_and_faces_together():
    method = _build(Vfmr, VfmrArgs())
    identity = torch.tensor([0, 0, 1, 1, 2, 2])
    batch = _batch({"identity": identity})
    terms = method.losses(batch, gather=lambda x: x)
    voice, face = _heads(method, batch)
    expected = _lifted_by_hand(np.concatenate([voice, face]), np.concatenate([identity, identity]))
    assert terms["lifted_structure_loss"].item() == pytest.approx(expected, abs=1e-5)
    assert Vfmr.sampler == "identity_classes" and 32 % Vfmr.pairs_per_identity == 0
    with pytest.raises(ConfigError, match="method.args.neg_margin / pos_margin"):
        method_args("vfmr", {"neg_margin": 0.1, "pos_margin": 0.2})


def _multi_similarity_by_hand(x, labels, alpha=2.0, beta=50.0, base=1.0):
    """Wang et al. 2019's multi-similarity loss, row by row, on cosine similarities."""
    x = _unit(x)
    s = x @ x.T
    rows = []
    for i in range(len(x)):
        positive = [s[i, j] for j in range(len(x)) if j != i and labels[j] == labels[i]]
        negative = [s[i, j] for j in range(len(x)) if labels[j] != labels[i]]
        rows.append(math.log(1 + sum(math.exp(-alpha * (v - base)) for v in positive)) / alpha
                    + math.log(1 + sum(math.exp(beta * (v - base)) for v in negative)) / beta)
    return float(np.mean(rows))


def test_self_lifting_is_multi_similarity_on_the_videos_pseudo_labels():
    method = _build(SelfLifting, SelfLiftingArgs(clusters=3))
    video = torch.tensor([0, 1, 2, 3, 4, 5])
    method.pseudo[:] = torch.tensor([0, 0, 1, 1, -1, 2, 2, -1])  # video 4: no cluster, a class of its own
    batch = _batch({"video": video})
    terms = method.losses(batch, gather=lambda x: x)
    voice, face = _heads(method, batch)
    labels = np.array([0, 0, 1, 1, 3 + 4, 2])
    expected = _multi_similarity_by_hand(np.concatenate([voice, face]), np.concatenate([labels, labels]))
    assert terms["multi_similarity_loss"].item() == pytest.approx(expected, abs=1e-5)
    assert terms["clustered_fraction"].item() == pytest.approx(5 / 6)
    # the bank now holds these videos' [voice; face] and knows which it has
    assert np.allclose(method.bank[:6].numpy(), np.concatenate([voice, face], axis=1))
    assert method.seen.tolist() == [True] * 6 + [False] * 2


def test_self_lifting_epoch_zero_classes_are_the_videos():
    method = _build(SelfLifting, SelfLiftingArgs(clusters=3))
    video = torch.tensor([0, 0, 1, 2, 3, 3])  # two clips of video 0 and of video 3: each a class
    method.start_epoch(0)  # empty bank: nothing to cluster
    batch = _batch({"video": video})
    terms = method.losses(batch, gather=lambda x: x)
    voice, face = _heads(method, batch)
    labels = np.concatenate([video.numpy(), video.numpy()])
    assert terms["multi_similarity_loss"].item() == pytest.approx(
        _multi_similarity_by_hand(np.concatenate([voice, face]), labels), abs=1e-5)
    assert terms["clustered_fraction"].item() == 0.0


def test_self_lifting_clusters_the_filled_bank_and_leaves_the_rest_alone():
    method = _build(SelfLifting, SelfLiftingArgs(clusters=3), videos=10)
    rng = np.random.default_rng(0)
    centres = np.eye(3, 256) * 10  # three far-apart groups in the [voice; face] space
    groups = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
    method.bank[:] = torch.from_numpy(centres[groups] + rng.normal(0, 0.1, (10, 256)))
    method.seen[:] = True
    method.seen[9] = False  # not seen: no cluster, whatever its (stale) row says
    method.start_epoch(1)
    pseudo = method.pseudo.numpy()
    assert pseudo[9] == -1
    for g in range(3):  # one cluster per group, different across groups
        assert len(set(pseudo[:9][groups[:9] == g])) == 1
    assert len(set(pseudo[:9])) == 3
    method.seen[2:] = False  # fewer filled rows (2) than clusters (3): no clustering this epoch
    method.start_epoch(2)
    assert (method.pseudo == -1).all()


def _cross_entropy_rows(logits):
    """Cross-entropy of each row against its own column (the diagonal)."""
    top = logits.max(axis=1, keepdims=True)
    log_softmax = logits - top - np.log(np.exp(logits - top).sum(axis=1, keepdims=True))
    return -np.diag(log_softmax)


def _weights_by_hand(rho, delta, kappa):
    std = rho.std()
    mu, sigma = rho.mean() + delta * std, std * math.sqrt(kappa)
    ordered = np.sort(rho)
    density = np.exp(-0.5 * ((ordered - mu) / sigma) ** 2) / (math.sqrt(2 * math.pi) * sigma)
    cumulative = np.cumsum(density) / density.sum()
    return cumulative[np.argsort(np.argsort(rho))]


def test_cmpc_loss_by_hand_with_fixed_prototypes():
    tau = 0.03
    method = _build(Cmpc, CmpcArgs(clusters=[2, 3], temperature=tau))
    generator = torch.Generator().manual_seed(5)
    video = torch.tensor([0, 1, 2, 3, 4, 5])
    clusterings = {}
    for modality in ("voice", "face"):  # fixed clusterings of the 8 videos at 2 and 3 clusters
        clusterings[modality] = [
            (torch.randint(0, k, (8,), generator=generator), torch.randn(k, 128, generator=generator,
                                                                       dtype=torch.float64) * 0.3,
             torch.rand(k, generator=generator, dtype=torch.float64) * 0.2 + 0.1) for k in (2, 3)]
    method.clusterings = clusterings
    batch = _batch({"video": video})
    terms = method.losses(batch, gather=lambda x: x)
    voice, face = _heads(method, batch)
    v, f = _unit(voice), _unit(face)
    s = v @ f.T
    instance = _cross_entropy_rows(s / tau) + _cross_entropy_rows(s.T / tau)

    def prototype(anchor, other):
        total = np.zeros(6)
        for assign, centroids, phi in clusterings[other]:
            cluster = assign.numpy()[video.numpy()]
            protos = _unit(centroids.numpy())[cluster]
            total += _cross_entropy_rows(anchor @ protos.T / phi.numpy()[cluster][None, :])
        return total / 2

    proto = prototype(v, "face") + prototype(f, "voice")
    agreement = np.zeros(6)
    for (av, cv, _), (af, cf, _) in zip(clusterings["voice"], clusterings["face"], strict=True):
        agreement += (cv.numpy()[av.numpy()[video]] * cf.numpy()[af.numpy()[video]]).sum(1)
    w = _weights_by_hand(np.diag(s) - agreement, delta=-1.0, kappa=0.1)
    assert terms["instance_loss"].item() == pytest.approx((w * instance).sum() / w.sum(), abs=1e-5)
    assert terms["prototype_loss"].item() == pytest.approx((w * proto).sum() / w.sum(), abs=1e-5)
    assert terms["min_weight"].item() == pytest.approx(w.min(), abs=1e-8) and w.max() == pytest.approx(1.0)


def test_cmpc_warm_up_is_symmetric_instance_infonce_and_fills_the_memory():
    method = _build(Cmpc, CmpcArgs(clusters=[2], warmup_epochs=1, memory_momentum=0.5))
    before = method.voice_memory.clone(), method.face_memory.clone()
    method.start_epoch(0)
    video = torch.tensor([0, 1, 2, 3, 4, 5])
    batch = _batch({"video": video})
    terms = method.losses(batch, gather=lambda x: x)
    voice, face = _heads(method, batch)
    v, f = _unit(voice), _unit(face)
    s = v @ f.T / 0.03
    assert terms["instance_loss"].item() == pytest.approx(
        (_cross_entropy_rows(s) + _cross_entropy_rows(s.T)).mean(), abs=1e-5)
    assert terms["prototype_loss"].item() == 0.0 and terms["min_weight"].item() == 1.0
    for memory, old, new in ((method.voice_memory, before[0], v), (method.face_memory, before[1], f)):
        expected = _unit(0.5 * old.numpy()[:6] + 0.5 * new)
        assert np.allclose(memory.numpy()[:6], expected) and torch.equal(memory[6:], old[6:])


def test_cmpc_clusters_a_toy_memory_into_its_groups_with_concentrations_of_mean_point_two():
    method = _build(Cmpc, CmpcArgs(clusters=[3], warmup_epochs=1), videos=12)
    rng = np.random.default_rng(0)
    groups = np.arange(12) % 3
    spread = np.array([0.01, 0.05, 0.2])[groups][:, None]  # group 0 tight, group 2 loose
    for memory in (method.voice_memory, method.face_memory):
        memory[:] = torch.from_numpy(_unit(np.eye(3, 128)[groups] + rng.normal(0, 1, (12, 128)) * spread / 10))
    method.start_epoch(1)
    for modality in ("voice", "face"):
        (assign, centroids, phi), = method.clusterings[modality]
        assign = assign.numpy()
        assert len(set(assign)) == 3 and all(len(set(assign[groups == g])) == 1 for g in range(3))
        memory = (method.voice_memory if modality == "voice" else method.face_memory).numpy()
        for g in range(3):
            assert np.allclose(centroids.numpy()[assign[groups == g][0]], memory[groups == g].mean(0))
        assert float(phi.mean()) == pytest.approx(0.2)
        tight, loose = phi[assign[groups == 0][0]], phi[assign[groups == 2][0]]
        assert tight < loose  # a looser cluster gets a higher temperature


def test_agreement_weights_grow_with_agreement_and_fall_back_to_one():
    rho = torch.tensor([0.3, -0.2, 0.9, 0.1, 0.5], dtype=torch.float64)
    w = agreement_weights(rho, delta=-1.0, kappa=0.1)
    assert torch.equal(torch.argsort(w), torch.argsort(rho)) and float(w.max()) == pytest.approx(1.0)
    assert np.allclose(w.numpy(), _weights_by_hand(rho.numpy(), -1.0, 0.1))
    assert torch.equal(agreement_weights(torch.ones(4), -1.0, 0.1), torch.ones(4))


def test_cmpc_concentrations_stay_finite_when_every_cluster_is_one_row():
    """As many clusters as memory rows (a small training set): no spread to estimate, every cluster takes the base
    temperature instead of 0/0 (which made the prototype loss NaN)."""
    from voxface.methods.cmpc import cluster_memory

    memory = np.random.default_rng(0).normal(size=(6, 4))
    assign, centroids, phi = cluster_memory(memory, clusters=6, iterations=5, seed=0, temperature=0.2)
    assert sorted(assign.tolist()) == list(range(6)) and np.allclose(phi, 0.2)
