import itertools
import os

import numpy as np
import ot
import pytest
import torch
import torch.nn.functional as F

from voxface.losses import (
    ContrastiveLoss,
    OptimalTransportLoss,
    RelationalDistillationLoss,
    discriminative_pairs,
)
from voxface.losses.distributed import gather_with_grad
from voxface.methods import SunSu2025, SunSu2025Args, Towers


def sun_su_on_features(face_dim, voice_dim, **args):
    """The paper's method in feature mode with a one-layer mapping: F = Linear(T), V as given."""
    torch.manual_seed(0)
    return SunSu2025(SunSu2025Args(mapping_hidden=[], **args), Towers(None, None, face_dim, voice_dim))


def total(terms):
    return sum(value for name, value in terms.items() if name.endswith("_loss"))


def reference_contrastive(face, voice, tau):
    """Eq. (4) with similarity logits, written out term by term."""
    n = len(face)
    sim = [[float(F.cosine_similarity(voice[i], face[j], dim=0)) / tau for j in range(n)] for i in range(n)]
    v2f = -np.mean([sim[i][i] - np.log(sum(np.exp(sim[i][j]) for j in range(n))) for i in range(n)])
    f2v = -np.mean([sim[i][i] - np.log(sum(np.exp(sim[j][i]) for j in range(n))) for i in range(n)])
    return v2f + f2v


def test_contrastive_matches_a_direct_computation():
    torch.manual_seed(0)
    face, voice = torch.randn(6, 8), torch.randn(6, 8)
    assert float(ContrastiveLoss(0.1)(face, voice)) == pytest.approx(reference_contrastive(face, voice, 0.1), rel=1e-5)
    learnable = ContrastiveLoss(0.1, learnable=True)
    learnable(face, voice).backward()
    assert learnable.log_scale.grad is not None and learnable.temperature == pytest.approx(0.1)
    # aligned pairs cost less than shuffled ones
    assert ContrastiveLoss(0.1)(face, face) < ContrastiveLoss(0.1)(face, face.roll(1, 0))


def test_discriminative_filter_matches_a_brute_force_loop():
    rng = np.random.default_rng(0)
    for _ in range(20):
        n = int(rng.integers(2, 9))
        sim = torch.tensor(rng.normal(size=(n, n)))
        sim += torch.eye(n) * float(rng.uniform(0, 2))
        expected = [all(sim[i, i] > sim[i, j] and sim[i, i] > sim[j, i] for j in range(n) if j != i) for i in range(n)]
        assert discriminative_pairs(sim).tolist() == expected


def test_ot_matches_pot_emd2_on_the_kept_rows():
    torch.manual_seed(1)
    base = torch.randn(10, 6)
    face = (base + 0.4 * torch.randn(10, 6)).requires_grad_()
    voice = (base + 0.4 * torch.randn(10, 6)).requires_grad_()
    loss_fn = OptimalTransportLoss()
    loss = loss_fn(face, voice)
    loss.backward()
    keep = discriminative_pairs(F.normalize(face.detach(), dim=-1) @ F.normalize(voice.detach(), dim=-1).T)
    assert 2 <= int(keep.sum()) < 10 and loss_fn.last_kept_fraction == pytest.approx(float(keep.float().mean()))
    # the reference: POT's differentiable exact EMD on the same rows and cost
    f2 = face.detach()[keep].clone().requires_grad_()
    v2 = voice.detach()[keep].clone().requires_grad_()
    cost = torch.cdist(F.normalize(f2, dim=-1), F.normalize(v2, dim=-1)).pow(2).double()
    uniform = torch.full((len(f2),), 1.0 / len(f2), dtype=torch.float64)
    reference = ot.emd2(uniform, uniform, cost)
    reference.backward()
    assert float(loss.detach()) == pytest.approx(float(reference.detach()), rel=1e-6)
    assert torch.allclose(face.grad[keep], f2.grad.float(), atol=1e-6)
    assert torch.allclose(voice.grad[keep], v2.grad.float(), atol=1e-6)
    assert face.grad[~keep].abs().max() == 0  # dropped rows get no transport gradient


def test_ot_on_discriminative_pairs_is_a_pull_on_the_kept_positives():
    """The docstring's proof, checked: on the filtered pairs the exact plan is the identity."""
    generator = torch.Generator().manual_seed(3)
    loss_fn = OptimalTransportLoss()
    for _ in range(50):
        base = torch.randn(16, 8, generator=generator)
        face = base + 0.7 * torch.randn(16, 8, generator=generator)
        voice = base + 0.7 * torch.randn(16, 8, generator=generator)
        keep = discriminative_pairs(F.normalize(face, dim=-1) @ F.normalize(voice, dim=-1).T)
        if int(keep.sum()) < 2:
            continue
        pull = (2 - 2 * F.cosine_similarity(face[keep], voice[keep])).mean()
        assert float(loss_fn(face, voice)) == pytest.approx(float(pull), abs=1e-6)


def test_ot_over_all_pairs_transports_between_identities():
    torch.manual_seed(4)
    face, voice = torch.randn(12, 6), torch.randn(12, 6)  # unrelated: the identity plan is far from optimal
    all_pairs = OptimalTransportLoss(pairs="all")
    loss = all_pairs(face, voice)
    diagonal = (2 - 2 * F.cosine_similarity(face, voice)).mean()
    assert all_pairs.last_kept_fraction == 1.0 and float(loss) < float(diagonal) - 0.1
    with pytest.raises(ValueError, match="OT pairs must be one of"):
        OptimalTransportLoss(pairs="some")


def test_ot_is_exactly_zero_with_fewer_than_two_kept_pairs():
    face = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]], requires_grad=True)
    voice = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]], requires_grad=True)  # all ties: nothing kept
    loss = OptimalTransportLoss()(face, voice)
    assert float(loss.detach()) == 0.0 and torch.isfinite(loss)
    loss.backward()
    assert face.grad.abs().max() == 0


def test_sinkhorn_option_is_close_to_the_exact_plan():
    torch.manual_seed(2)
    base = torch.randn(16, 8)
    face, voice = base + 0.2 * torch.randn(16, 8), base + 0.2 * torch.randn(16, 8)
    exact = OptimalTransportLoss("emd")(face, voice)
    smooth = OptimalTransportLoss("sinkhorn", sinkhorn_reg=0.01)(face, voice)
    assert float(smooth) == pytest.approx(float(exact), abs=0.02)
    with pytest.raises(ValueError, match="solver"):
        OptimalTransportLoss("greedy")


def test_rkd_matches_direct_computations_and_detaches_the_teacher():
    torch.manual_seed(3)
    mapped = torch.randn(5, 12, requires_grad=True)
    teacher = torch.randn(5, 7, requires_grad=True)
    loss = RelationalDistillationLoss("cosine")(mapped, teacher)
    m, t = mapped.detach(), teacher.detach()  # the expected values: plain numbers
    expected = np.mean([(float(F.cosine_similarity(m[i], m[j], dim=0))
                         - float(F.cosine_similarity(t[i], t[j], dim=0))) ** 2
                        for i, j in itertools.product(range(5), range(5))])
    assert float(loss.detach()) == pytest.approx(expected, rel=1e-5)
    loss.backward()
    assert mapped.grad is not None and teacher.grad is None
    distance = RelationalDistillationLoss("distance")(mapped, teacher)
    md, td = torch.cdist(m, m), torch.cdist(t, t)
    off = ~torch.eye(5, dtype=torch.bool)
    expected_d = F.smooth_l1_loss(md[off] / md[off].mean(), td[off] / td[off].mean())
    assert float(distance.detach()) == pytest.approx(float(expected_d), rel=1e-5)


def test_the_methods_terms_are_eq8s_weighted_terms_and_table3_rows_compute_only_theirs():
    torch.manual_seed(4)
    teacher, voice = torch.randn(8, 10), torch.randn(8, 6)
    method = sun_su_on_features(10, 6, ot_weight=0.5, rkd_weight=2.0)
    terms = method.losses({"face_features": teacher, "voice_features": voice}, gather=lambda x: x)
    face = method.mapping(teacher)
    expected = (ContrastiveLoss()(face, voice) + 0.5 * OptimalTransportLoss()(face, voice)
                + 2.0 * RelationalDistillationLoss()(face, teacher))
    assert float(total(terms).detach()) == pytest.approx(float(expected.detach()), rel=1e-6)
    assert set(terms) == {"contrastive_loss", "ot_loss", "rkd_loss", "ot_kept_fraction", "temperature"}
    ot_only = sun_su_on_features(10, 6, terms=["ot", "rkd"])  # Table 3's "OT only": no contrastive term at all
    assert {k for k in ot_only.losses({"face_features": teacher, "voice_features": voice}, gather=lambda x: x)
            if k.endswith("_loss")} == {"ot_loss", "rkd_loss"}
    with pytest.raises(ValueError, match="at least 2 pairs"):
        method.losses({"face_features": teacher[:1], "voice_features": voice[:1]}, gather=lambda x: x)


# ---------------------------------------------------------------- distributed: 2 processes (gloo) vs 1


def _rank_worker(rank, world, init_file, out_dir):
    torch.distributed.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    method = sun_su_on_features(10, 6)
    voice_net = torch.nn.Linear(12, 6)
    data = torch.load(os.path.join(out_dir, "data.pt"))
    half = slice(rank * 4, (rank + 1) * 4)
    batch = {"face_features": data["teacher"][half], "voice_features": voice_net(data["voice"][half])}
    loss = total(method.losses(batch, gather=gather_with_grad))
    loss.backward()
    grads = []
    for p in list(method.mapping.parameters()) + list(voice_net.parameters()):  # what DDP does: average over ranks
        torch.distributed.all_reduce(p.grad)
        grads.append(p.grad / world)
    torch.save({"loss": loss.detach(), "grads": grads}, os.path.join(out_dir, f"rank{rank}.pt"))
    torch.distributed.destroy_process_group()


def test_two_process_gloo_equals_one_process_on_the_concatenated_batch(tmp_path):
    torch.manual_seed(5)
    base = torch.randn(8, 10)
    data = {"teacher": base, "voice": torch.cat([base, torch.randn(8, 2)], 1) + 0.3 * torch.randn(8, 12)}
    torch.save(data, tmp_path / "data.pt")
    torch.multiprocessing.spawn(_rank_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2)
    method = sun_su_on_features(10, 6)
    voice_net = torch.nn.Linear(12, 6)
    loss = total(method.losses({"face_features": data["teacher"], "voice_features": voice_net(data["voice"])},
                               gather=lambda x: x))
    loss.backward()
    single = [p.grad for p in list(method.mapping.parameters()) + list(voice_net.parameters())]
    for rank in (0, 1):
        result = torch.load(tmp_path / f"rank{rank}.pt")
        assert float(result["loss"]) == pytest.approx(float(loss.detach()), rel=1e-5)
        for a, b in zip(result["grads"], single, strict=True):
            assert torch.allclose(a, b, atol=1e-6)


def test_sinkhorn_that_does_not_converge_says_so_once(caplog):
    loss_fn = OptimalTransportLoss(solver="sinkhorn", sinkhorn_reg=0.001, sinkhorn_iterations=3, pairs="all")
    with caplog.at_level("WARNING", logger="voxface"):
        for _ in range(3):
            loss_fn(torch.randn(8, 4), torch.randn(8, 4))
    assert caplog.text.count("Sinkhorn did not converge in 3 iterations") == 1
