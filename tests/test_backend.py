"""The cross-modal Gaussian backend: its likelihood ratio, its calibration, Cllr, and the guard on test data."""

import json
import shutil

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from voxface.cli import main
from voxface.evaluation.backend import fit_backend
from voxface.metrics import cllr, min_cllr, roc_auc
from voxface.scoring.backend import BackendError, EmbeddingSet, GaussianBackend, fit_gaussian_backend, probability


def _population(identities: int, per_identity: int, rho: tuple[float, ...], seed: int, extra: int = 0):
    """Voices and faces whose i-th coordinates correlate by rho[i] through the identity (unit total variance)."""
    rng = np.random.default_rng(seed)
    rho = np.array(rho)
    ids = np.repeat(np.arange(identities), per_identity)
    latent = rng.standard_normal((identities, len(rho)))[ids]
    share = np.sqrt(rho)  # identity part of each side; its product across sides is rho
    voices = share * latent + np.sqrt(1 - rho) * rng.standard_normal(latent.shape)
    faces = share * latent + np.sqrt(1 - rho) * rng.standard_normal(latent.shape)
    if extra:  # dimensions that carry no identity
        voices = np.c_[voices, rng.standard_normal((len(ids), extra))]
        faces = np.c_[faces, rng.standard_normal((len(ids), extra))]
    return EmbeddingSet(voices, ids, faces, ids)


def test_backend_llr_is_the_joint_gaussian_log_ratio():
    """The canonical-pair sum equals log N([v; f]; same) - log N(v) - log N(f) with the fitted covariances."""
    train = _population(400, 6, (0.8, 0.6, 0.4), seed=0)
    val = _population(150, 6, (0.8, 0.6, 0.4), seed=1)
    backend = fit_gaussian_backend(train, val, reduce="none", normalize=False)
    assert backend.info["canonical_pairs"] == 3  # every correlated direction helps here
    v, f = train.voices - train.voices.mean(0), train.faces - train.faces.mean(0)
    t_v, t_f = np.cov(v, rowvar=False), np.cov(f, rowvar=False)
    labels = np.unique(train.voice_ids)
    means_v = np.stack([v[train.voice_ids == i].mean(0) for i in labels])
    means_f = np.stack([f[train.face_ids == i].mean(0) for i in labels])
    cross = means_v.T @ means_f / len(labels)
    same = np.block([[t_v, cross], [cross.T, t_f]])
    x = val.voices[:50] - train.voices.mean(0)
    y = val.faces[50:100] - train.faces.mean(0)
    expected = (multivariate_normal(cov=same).logpdf(np.c_[x, y]) - multivariate_normal(cov=t_v).logpdf(x)
                - multivariate_normal(cov=t_f).logpdf(y))
    got = backend.llr(val.voices[:50], val.faces[50:100], calibrated=False)
    assert got == pytest.approx(expected, abs=1e-8)
    assert backend.info["canonical_correlations"] == pytest.approx([0.8, 0.6, 0.4], abs=0.06)


def test_backend_ignores_noise_dimensions_and_beats_cosine_on_correlated_data():
    train = _population(300, 4, (0.7, 0.5), seed=2, extra=30)
    val, test = _population(60, 4, (0.7, 0.5), seed=3, extra=30), _population(200, 4, (0.7, 0.5), seed=4, extra=30)
    backend = fit_gaussian_backend(train, val)
    assert backend.info["canonical_pairs"] <= 4
    rng = np.random.default_rng(5)
    v, f = rng.integers(0, len(test.voices), 4000), rng.integers(0, len(test.faces), 4000)
    same = rng.random(4000) < 0.5
    f[same] = [rng.choice(np.flatnonzero(test.face_ids == test.voice_ids[i])) for i in v[same]]
    labels = test.voice_ids[v] == test.face_ids[f]
    llr = backend.llr(test.voices[v], test.faces[f])
    cos = (test.voices[v] * test.faces[f]).sum(1) / np.linalg.norm(test.voices[v], axis=1) / np.linalg.norm(
        test.faces[f], axis=1)
    assert roc_auc(labels, llr) > roc_auc(labels, cos) + 0.02
    # calibrated on validation identities, it stays calibrated on new ones: little is lost to calibration
    assert cllr(labels, llr) < min_cllr(labels, llr) + 0.05 < 1
    p = probability(llr)
    for low in (0.1, 0.3, 0.5, 0.7):  # predicted probabilities match the observed rate of matches
        chosen = (p >= low) & (p < low + 0.2)
        assert abs(labels[chosen].mean() - p[chosen].mean()) < 0.1
    assert probability(np.array([0.0]), 0.9)[0] == pytest.approx(0.9)  # an uninformative trial keeps the prior
    with pytest.raises(BackendError, match="strictly between 0 and 1"):
        probability(llr, 1.0)


def test_each_side_is_reduced_to_at_most_its_own_width():
    """Three knobs against a 40-d embedding: the knobs stay whole while the embedding is reduced to the size tried
    (reducing both to the narrower width threw away most of the embedding)."""
    wide = _population(200, 4, (0.7, 0.5, 0.3), seed=6, extra=37)
    narrow = lambda data: EmbeddingSet(data.voices[:, :3], data.voice_ids, data.faces, data.face_ids)  # noqa: E731
    val = _population(60, 4, (0.7, 0.5, 0.3), seed=7, extra=37)
    backend = fit_gaussian_backend(narrow(wide), narrow(val), reduce="pca", dims=(16,), normalize=False)
    assert backend.info["side_dims"] == {"voice": 3, "face": 16} and backend.info["dims"] == 16
    assert backend.voice_projection.shape[0] == 3 and backend.face_projection.shape[0] == 40
    same = fit_gaussian_backend(wide, val, reduce="lda", dims=(8,), normalize=False)  # equal widths: as before
    assert same.info["side_dims"] == {"voice": 8, "face": 8}


def test_cllr_and_min_cllr():
    labels = np.repeat([True, False], 500)
    assert cllr(labels, np.zeros(1000)) == pytest.approx(1.0)  # "no idea" costs one bit
    assert cllr(labels, np.where(labels, 30.0, -30.0)) < 1e-9
    assert cllr(labels, np.where(labels, -3.0, 3.0)) > 4  # confidently wrong costs more than knowing nothing
    rng = np.random.default_rng(0)
    scores = rng.normal(size=1000) + labels
    assert min_cllr(labels, scores) <= cllr(labels, scores) + 1e-12
    assert min_cllr(labels, scores) == pytest.approx(min_cllr(labels, np.exp(3 * scores)))  # only the order counts
    assert 0.95 < min_cllr(labels, rng.normal(size=1000)) <= 1.0
    assert min_cllr(labels, labels.astype(float)) == 0.0


def test_fitting_refuses_test_identities_and_test_files(tiny_run, trained_checkpoint, tmp_path):
    from voxface.protocol import SPLIT_TEST, SPLIT_TRAIN, SPLIT_VAL, DataRoots, build_manifest, load_protocol

    root, _ = tiny_run
    data, lists = root / "voxsynth", root / "voxsynth" / "protocol"
    protocol, roots = load_protocol(lists), DataRoots.from_root(data)
    train, val = build_manifest(protocol, roots, SPLIT_TRAIN), build_manifest(protocol, roots, SPLIT_VAL)
    test = build_manifest(protocol, roots, SPLIT_TEST)
    train.identities.append(test.identities[0])  # planted
    with pytest.raises(BackendError, match=f"1 test .*identities, e.g. {test.identities[0].name}"):
        fit_backend(trained_checkpoint, data, lists, out=tmp_path / "a", manifests=(train, val))
    assert not (tmp_path / "a").exists()  # refused before any work
    # seen-heard trials score held-out videos of training identities: those files are refused too
    whole = build_manifest(protocol, roots, SPLIT_TRAIN, exclude_seen_heard=False)
    with pytest.raises(BackendError, match="files that the test lists score"):
        fit_backend(trained_checkpoint, data, lists, manifests=(whole, val))


def test_backend_fit_evaluate_and_score_end_to_end(tiny_run, trained_checkpoint, tmp_path, capsys):
    from voxface.evaluation.api import VoiceFaceScorer
    from voxface.protocol import DataRoots, load_protocol

    root, _ = tiny_run
    data, lists, folder = root / "voxsynth", root / "voxsynth" / "protocol", tmp_path / "backend"
    assert main(["backend", "fit", "--checkpoint", str(trained_checkpoint), "--data", str(data), "--lists",
                 str(lists), "--out", str(folder), "--workers", "0"]) == 0
    printed = capsys.readouterr().out
    assert "Gaussian backend on" in printed and (folder / "backend.npz").is_file()
    info = json.loads((folder / "backend.json").read_text())
    protocol = load_protocol(lists)
    assert info["train_identities"] == len(protocol.identities_in_split(1))
    assert info["fit_seconds"] >= 0  # recorded; how long it takes is the machine's business, not a bar (issue 21)

    assert main(["evaluate", "--checkpoint", str(trained_checkpoint), "--data", str(data), "--lists", str(lists),
                 "--out", str(tmp_path / "eval"), "--bootstrap", "20", "--workers", "0", "--backend",
                 str(folder)]) == 0
    capsys.readouterr()
    report = json.loads((tmp_path / "eval" / "report.json").read_text())
    for value in report["verification"].values():
        assert value["cllr"] >= 0 and 0 <= value["min_cllr"] <= 1
        assert 0 <= value["backend"]["auc"] <= 1 and value["backend"]["min_cllr"] <= value["backend"]["cllr"] + 1e-9
    assert "oracle ceiling" in report["table2_auc_percent"]
    assert any(k.endswith(" + backend") for k in report["table2_auc_percent"])
    markdown = (tmp_path / "eval" / "report.md").read_text()
    assert "| random_unseenunheard | backend |" in markdown and "minCllr" in markdown

    roots = DataRoots.from_root(data)
    trials = protocol.verification("random", "unseenunheard")
    voice, faces = roots.voice(trials.voice_files[0]), [roots.face(f) for f in trials.face_files[:3]]
    matches = VoiceFaceScorer(trained_checkpoint, backend=folder).score(voice, faces)
    assert all(0 < m.probability < 1 and m.prior == 0.5 for m in matches)
    sure = VoiceFaceScorer(trained_checkpoint, backend=folder, prior=0.9).score(voice, faces)
    assert all(s.probability > m.probability for s, m in zip(sure, matches, strict=True))
    assert main(["score", "--checkpoint", str(trained_checkpoint), "--backend", str(folder), str(voice),
                 *map(str, faces)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "rank  cosine  P(same)  face" and "prior of 0.5" in lines[-1]
    best = max(matches, key=lambda m: m.probability)  # ranked by the probability when there is one
    assert float(lines[1].split()[2]) == pytest.approx(best.probability, abs=1e-3) and lines[1].endswith(best.face)

    # A backend belongs to its checkpoint: another one (or a damaged folder) is refused in one line.
    other = tmp_path / "other.ckpt"
    shutil.copyfile(trained_checkpoint, other)
    with other.open("ab") as handle:
        handle.write(b"\0")
    assert main(["score", "--checkpoint", str(other), "--backend", str(folder), str(voice), str(faces[0])]) == 2
    assert "the backend was fitted for" in capsys.readouterr().err
    assert main(["score", "--checkpoint", str(trained_checkpoint), "--backend", str(tmp_path), str(voice),
                 str(faces[0])]) == 2
    assert "is not a backend folder" in capsys.readouterr().err
    (folder / "backend.npz").write_bytes(b"not a numpy file")
    with pytest.raises(BackendError, match="damaged backend"):
        GaussianBackend.load(folder)


def test_score_no_backend_is_the_way_out_of_a_run_backend_that_does_not_fit(tiny_run, trained_checkpoint, tmp_path,
                                                                            capsys):
    """A run's own RUN/backend is picked up by score and the app; fitted on 3 s crops, it refuses --crop 2 and says
    how to score anyway: --no-backend, cosine scores only."""
    from fastapi.testclient import TestClient

    from voxface.app import create_app
    from voxface.evaluation.backend import check_backend_fits
    from voxface.evaluation.checkpoint import checkpoint_sha256
    from voxface.protocol import DataRoots, load_protocol

    root, _ = tiny_run
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    checkpoint = run / "checkpoints" / "last.ckpt"
    shutil.copyfile(trained_checkpoint, checkpoint)
    backend = fit_gaussian_backend(_population(60, 4, (0.8, 0.5), seed=0), _population(30, 4, (0.8, 0.5), seed=1),
                                   reduce="none", normalize=False)
    backend.info.update({"checkpoint": str(checkpoint), "checkpoint_sha256": checkpoint_sha256(checkpoint),
                         "crop_seconds": 3.0})
    backend.save(run / "backend")
    trials = load_protocol(root / "voxsynth" / "protocol").verification("random", "unseenunheard")
    roots = DataRoots.from_root(root / "voxsynth")
    voice, faces = str(roots.voice(trials.voice_files[0])), [str(roots.face(f)) for f in trials.face_files[:2]]

    assert main(["score", "--checkpoint", str(checkpoint), "--crop", "2", voice, *faces]) == 2
    err = capsys.readouterr().err
    assert err.endswith("voxface: error: the backend was fitted on 3 s crops, not 2 s crops: score with the same "
                        "--crop 3, refit it on 2 s crops, or pass --no-backend (cosine scores only)\n"), err
    assert main(["score", "--checkpoint", str(checkpoint), "--crop", "2", "--no-backend", voice, *faces]) == 0
    out = capsys.readouterr()
    lines = out.out.strip().splitlines()
    assert lines[0] == "rank  cosine  face" and len(lines) == 3 and "P(same)" not in out.out
    assert "no probability" not in out.err and "probabilities from" not in out.err
    with pytest.raises(SystemExit):  # one or the other
        main(["score", "--checkpoint", str(checkpoint), "--backend", str(run / "backend"), "--no-backend", voice,
              faces[0]])
    capsys.readouterr()
    with pytest.raises(BackendError, match=r"^the backend was fitted on 3 s crops, not whole clips: refit it on "
                                           r"whole clips, or pass --no-backend \(cosine scores only\)$"):
        create_app(checkpoint)  # the app scores whole clips: no --crop to offer
    assert TestClient(create_app(checkpoint, use_backend=False)).get("/api/info").json()["backend"] is False
    # evaluate takes a backend only when given one: its way out is to leave it out
    with pytest.raises(BackendError, match=r"^the backend was fitted on 3 s crops, not whole clips: score with the "
                                           r"same --crop 3, refit it on whole clips, or leave out --backend$"):
        check_backend_fits(backend, checkpoint, None)
    (tmp_path / "other.ckpt").write_bytes(b"another checkpoint")
    with pytest.raises(BackendError, match=r"^the backend was fitted for .*, not .*other.ckpt: refit it with "
                                           r"'voxface backend fit --checkpoint .*other.ckpt', or leave out --backend$"):
        check_backend_fits(backend, tmp_path / "other.ckpt", 3.0)
