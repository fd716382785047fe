import csv
import json
import shutil

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import roc_auc_score, roc_curve

from voxface.cli import main
from voxface.errors import ProtocolError
from voxface.evaluation.checkpoint import load_trained_model
from voxface.evaluation.evaluate import evaluate
from voxface.evaluation.report import compare_runs, write_reports
from voxface.evaluation.result import Evaluation
from voxface.metrics import (
    bootstrap_interval,
    delong_difference,
    delong_interval,
    equal_error_rate,
    matching_accuracy,
    retrieval,
    roc_auc,
)


def test_auc_and_eer_against_scikit_learn():
    rng = np.random.default_rng(0)
    for _ in range(10):
        labels = rng.integers(0, 2, 300)
        scores = np.round(rng.normal(size=300) + labels * rng.uniform(0, 2), 1)  # with ties
        assert roc_auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
        fpr, tpr, _ = roc_curve(labels, scores)
        gap = np.abs(fpr - (1 - tpr))
        # the EER lies between the FPR and FNR at the ROC point closest to the crossing
        i = int(np.argmin(gap))
        assert min(fpr[i], 1 - tpr[i]) - 0.02 <= equal_error_rate(labels, scores) <= max(fpr[i], 1 - tpr[i]) + 0.02
    assert equal_error_rate([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == 0.0
    with pytest.raises(ValueError, match="both positive and negative"):
        roc_auc([1, 1], [0.2, 0.3])


def test_bootstrap_interval_covers_the_true_auc():
    rng = np.random.default_rng(1)
    separation = 1.0
    true_auc = norm.cdf(separation / np.sqrt(2))  # two unit-variance normals
    covered = 0
    for trial in range(20):
        labels = np.repeat([0, 1], 400)
        scores = rng.normal(size=800) + separation * labels
        low, high = bootstrap_interval(labels, scores, resamples=300, seed=trial)
        covered += low <= true_auc <= high
        assert high - low < 0.1
    assert covered >= 16  # about 95% expected


def test_delong_interval_covers_the_true_auc_and_agrees_with_the_bootstrap():
    rng = np.random.default_rng(2)
    true_auc = norm.cdf(1.0 / np.sqrt(2))
    covered = 0
    for trial in range(40):
        labels = np.repeat([0, 1], [500, 300])
        scores = np.round(rng.normal(size=800) + labels, 2)  # with ties
        low, high = delong_interval(labels, scores)
        covered += low <= true_auc <= high
        if trial < 3:
            b_low, b_high = bootstrap_interval(labels, scores, resamples=2000, seed=trial)
            assert abs(low - b_low) < 0.01 and abs(high - b_high) < 0.01
            assert low < roc_auc(labels, scores) < high
    assert covered >= 34  # about 95% of 40 expected
    assert delong_interval([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == (1.0, 1.0)


def test_delong_difference_of_two_scorings_of_the_same_trials_agrees_with_a_paired_bootstrap():
    rng = np.random.default_rng(3)
    labels = np.repeat([0, 1], [600, 400])
    shared = rng.normal(size=1000) + labels  # what both scorings read of each trial
    a = shared + 0.5 * rng.normal(size=1000) + 0.3 * labels
    b = shared + 0.5 * rng.normal(size=1000)
    difference, low, high = delong_difference(labels, a, b)
    assert difference == pytest.approx(roc_auc(labels, a) - roc_auc(labels, b), abs=1e-12)
    resampled = []
    for _ in range(1000):  # the same trials resampled for both scorings
        i = rng.integers(0, 1000, 1000)
        resampled.append(roc_auc(labels[i], a[i]) - roc_auc(labels[i], b[i]))
    b_low, b_high = np.percentile(resampled, [2.5, 97.5])
    assert abs(low - b_low) < 0.01 and abs(high - b_high) < 0.01
    assert low > 0  # a told apart from b: their shared noise cancels in the pairing
    a_low, a_high = delong_interval(labels, a)
    assert high - low < a_high - a_low  # narrower than an AUC's own interval, let alone two unpaired ones
    assert delong_difference(labels, a, a) == (0.0, 0.0, 0.0)
    assert delong_difference(labels, b, a)[0] == pytest.approx(-difference)


def test_matching_and_retrieval():
    assert matching_accuracy([0.9, 0.1, 0.5], [0.1, 0.9, 0.5]) == pytest.approx(0.5)
    queries = np.array([[1.0, 0.0], [0.0, 1.0]])
    gallery = np.array([[0.9, 0.1], [0.1, 0.9], [1.0, 0.05]])
    result = retrieval(queries, np.array([1, 2]), gallery, np.array([1, 2, 1]), ks=(1, 2))
    assert result == {"mAP": pytest.approx(1.0), "R@1": 1.0, "R@2": 1.0}
    swapped = retrieval(queries, np.array([2, 1]), gallery, np.array([1, 2, 1]), ks=(1,))
    assert swapped["R@1"] == 0.0 and swapped["mAP"] < 0.6


def test_checkpoint_rebuilds_the_model(trained_checkpoint):
    model, config = load_trained_model(trained_checkpoint)
    assert not model.training and model.face_size == config.data.face_size


def test_evaluate_embeds_each_file_once_caches_and_reports(tiny_run, trained_checkpoint, tmp_path):
    root, _ = tiny_run
    data, lists = root / "voxsynth", root / "voxsynth" / "protocol"
    first = evaluate(trained_checkpoint, data, lists, out=tmp_path, bootstrap=50, workers=0)
    from voxface.protocol import load_protocol

    protocol = load_protocol(lists)
    voices = {v for t in protocol.all_verification() for v in t.voice_files}
    for m in protocol.all_matching():
        voices |= set(m.probes if m.direction == "v2f" else m.positives + m.negatives)
    faces = {f for t in protocol.all_verification() for f in t.face_files}
    for m in protocol.all_matching():
        faces |= set(m.probes if m.direction == "f2v" else m.positives + m.negatives)
    assert first.encoded == {"voice": len(voices), "face": len(faces), "teacher": 0}  # each file exactly once
    assert len(first.verification) == 10 and len(first.matching) == 8
    for value in first.verification.values():
        assert 0 <= value["auc"] <= 1 and value["auc_ci95"][0] <= value["auc_ci95"][1]
    again = evaluate(trained_checkpoint, data, lists, out=tmp_path, bootstrap=50, workers=0)
    assert again.encoded == {"voice": 0, "face": 0, "teacher": 0}  # all from the cache
    name = "random_unseenunheard"
    assert again.verification[name]["auc"] == pytest.approx(first.verification[name]["auc"])
    oracle = json.loads((data / "oracle.json").read_text())
    paths = write_reports(first, tmp_path / "report", name="tiny", oracle=oracle)
    report = json.loads(paths[0].read_text())
    assert "oracle ceiling" in report["table2_auc_percent"] and "tiny" in report["table2_auc_percent"]
    rows = list(csv.DictReader(paths[1].open()))
    assert len(rows) == 18 and rows[0]["list"] == "random_unseenunheard"
    assert "| tiny |" in paths[2].read_text()
    from PIL import Image

    plots = [tmp_path / "plots" / name for name in ("roc_unseenunheard.png", "scores_seenheard.png",
                                                    "fig4_voice_pca.png", "fig5_similarity.png")]
    for plot in plots:
        pixels = np.asarray(Image.open(plot).convert("L"), dtype=float)
        assert pixels.std() > 5  # not blank


def test_missing_files_stop_or_are_skipped(tiny_run, trained_checkpoint, tmp_path):
    root, _ = tiny_run
    copy = tmp_path / "data"
    shutil.copytree(root / "voxsynth" / "wav", copy / "wav")
    shutil.copytree(root / "voxsynth" / "unzippedFaces", copy / "unzippedFaces")
    lists = root / "voxsynth" / "protocol"
    from voxface.protocol import load_protocol

    victim = load_protocol(lists).verification("G", "unseenunheard").voice_files[0]
    (copy / "wav" / victim).unlink()
    with pytest.raises(ProtocolError, match=r"1 files the lists need are missing.*--skip-missing"):
        evaluate(trained_checkpoint, copy, lists, bootstrap=0, workers=0)
    result = evaluate(trained_checkpoint, copy, lists, skip_missing=True, bootstrap=0, workers=0)
    assert result.lost_trials["G_unseenunheard"] >= 1
    assert sum(result.lost_trials.values()) >= 2


def test_evaluate_cli(tiny_run, trained_checkpoint, tmp_path, capsys):
    root, _ = tiny_run
    code = main(["evaluate", "--checkpoint", str(trained_checkpoint), "--data", str(root / "voxsynth"), "--lists",
                 str(root / "voxsynth" / "protocol"), "--out", str(tmp_path), "--bootstrap", "20", "--workers", "0"])
    assert code == 0
    out = capsys.readouterr().out
    assert "oracle ceiling" in out and (tmp_path / "report.md").is_file()


def test_score_and_embed(tiny_run, trained_checkpoint, tmp_path, capsys):
    from voxface.evaluation.api import VoiceFaceScorer
    from voxface.protocol import DataRoots, load_protocol

    root, _ = tiny_run
    roots = DataRoots.from_root(root / "voxsynth")
    trials = load_protocol(root / "voxsynth" / "protocol").verification("random", "unseenunheard")
    voice = roots.voice(trials.voice_files[0])
    faces = [roots.face(f) for f in trials.face_files[:3]]
    scores = [m.cosine for m in VoiceFaceScorer(trained_checkpoint).score(voice, faces)]
    assert len(scores) == 3 and all(-1 <= s <= 1 for s in scores)
    assert main(["score", "--checkpoint", str(trained_checkpoint), str(voice), *map(str, faces)]) == 0
    out = capsys.readouterr()
    lines = out.out.strip().splitlines()[1:]  # under the header, best first
    assert len(lines) == 3 and float(lines[0].split()[1]) == pytest.approx(max(scores), abs=1e-3)
    assert "no probability: pass --backend" in out.err
    listing = tmp_path / "faces.txt"
    listing.write_text("\n".join(map(str, faces)))
    assert main(["embed", "--checkpoint", str(trained_checkpoint), "--kind", "face", "--files", str(listing),
                 "--out", str(tmp_path / "emb")]) == 0
    assert np.load(tmp_path / "emb.npy").shape[0] == 3 and (tmp_path / "emb.csv").is_file()
    (tmp_path / "mine").mkdir()
    shutil.copyfile(faces[0], tmp_path / "mine" / "a.jpg")
    (tmp_path / "mine" / "list.txt").write_text("a.jpg\n")  # relative to the list file, not the working folder
    assert main(["embed", "--checkpoint", str(trained_checkpoint), "--kind", "face", "--files",
                 str(tmp_path / "mine" / "list.txt"), "--out", str(tmp_path / "rel")]) == 0
    assert np.allclose(np.load(tmp_path / "rel.npy")[0], np.load(tmp_path / "emb.npy")[0], atol=1e-5)
    assert main(["score", "--checkpoint", str(trained_checkpoint), str(voice), str(tmp_path / "none.jpg")]) == 2


def test_embed_names_the_line_of_an_unreadable_file_and_can_skip_it(tiny_run, trained_checkpoint, tmp_path, capsys):
    from voxface.protocol import DataRoots, load_protocol

    root, _ = tiny_run
    roots = DataRoots.from_root(root / "voxsynth")
    faces = [roots.face(f) for f in load_protocol(root / "voxsynth" / "protocol").verification(
        "random", "unseenunheard").face_files[:2]]
    (tmp_path / "notes.jpg").write_text("not a picture")
    listing = tmp_path / "faces.txt"  # line 3 is blank; the bad file is on line 2, a missing one on line 5
    listing.write_text(f"{faces[0]}\nnotes.jpg\n\n{faces[1]}\nmissing.jpg\n")
    command = ["embed", "--checkpoint", str(trained_checkpoint), "--kind", "face", "--files", str(listing),
               "--out", str(tmp_path / "emb")]
    assert main(command) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"voxface: error: {listing} line 2: {tmp_path / 'notes.jpg'}: cannot read image") and (
        err.endswith(" (and 1 more unreadable line); correct or remove it, or pass --skip-unreadable to embed the "
                     "other lines\n") and err.count("\n") == 1), err
    assert not (tmp_path / "emb.npy").exists()
    assert main([*command, "--skip-unreadable"]) == 0
    out = capsys.readouterr()
    skipped = out.err.strip().splitlines()
    assert len(skipped) == 2 and skipped[0].startswith(f"skipped {listing} line 2: {tmp_path / 'notes.jpg'}: cannot")
    assert skipped[1] == f"skipped {listing} line 5: {tmp_path / 'missing.jpg'}: image file does not exist"
    assert out.out.strip().endswith("; 2 unreadable lines skipped (listed above)")
    assert np.load(tmp_path / "emb.npy").shape[0] == 2
    with (tmp_path / "emb.csv").open() as handle:
        assert [row["path"] for row in csv.DictReader(handle)] == [str(f) for f in faces]
    listing.write_text("notes.jpg\n")
    assert main([*command, "--skip-unreadable"]) == 2
    assert capsys.readouterr().err.endswith(f"voxface: error: {listing}: no line names a readable file (1 line "
                                            "tried); nothing to write\n")


def test_an_ssl_run_trains_and_evaluates_from_its_checkpoint(tiny_run, tiny_ssl, tmp_path):
    """Wav2vec 2.0 path end to end: train a few steps, rebuild from the checkpoint alone, score a list."""
    from voxface.training.config import load_config
    from voxface.training.run import train

    root, base = tiny_run
    folder = tiny_ssl("wav2vec2", tmp_path)
    config = load_config(base, [f"trainer.out={tmp_path / 'ssl'}", "trainer.max_steps=2", "audio.encoder=wav2vec2",
                                f"audio.weights={folder}", "optim.schedule=tristage", "audio.layer_weighting=true"])
    train(config)
    model, loaded = load_trained_model(tmp_path / "ssl" / "checkpoints" / "last.ckpt")
    assert loaded.audio.encoder == "wav2vec2"
    assert not any(p.requires_grad for p in model.voice_encoder.model.feature_extractor.parameters())
    result = evaluate(tmp_path / "ssl" / "checkpoints" / "last.ckpt", root / "voxsynth", root / "voxsynth" / "protocol",
                      bootstrap=0, workers=0)
    assert 0 <= result.verification["random_unseenunheard"]["auc"] <= 1


def test_report_puts_runs_side_by_side(tiny_run, trained_checkpoint, tmp_path, capsys):
    root, _ = tiny_run
    args = ["evaluate", "--checkpoint", str(trained_checkpoint), "--data", str(root / "voxsynth"), "--lists",
            str(root / "voxsynth" / "protocol"), "--bootstrap", "0", "--workers", "0"]
    for name in ("contrastive", "full"):
        assert main([*args, "--out", str(tmp_path / name), "--name", name]) == 0
    assert main(["report", str(tmp_path / "contrastive"), str(tmp_path / "full"), "--out", str(tmp_path / "cmp")]) == 0
    table = json.loads((tmp_path / "cmp" / "comparison.json").read_text())
    assert set(table["runs"]) == {"contrastive", "full"} and table["oracle_ceiling"]
    assert "| contrastive |" in (tmp_path / "cmp" / "comparison.md").read_text()
    assert (tmp_path / "cmp" / "fig5_similarity.png").is_file()
    assert (tmp_path / "cmp" / "decomposition.png").is_file()  # both runs' breakdowns, stacked
    stored = np.load(tmp_path / "full" / "plots" / "fig5_similarity.npz")
    order = list(zip(stored["gender"].tolist(), stored["nationality"].tolist(), strict=True))
    assert order == sorted(order) and len(set(stored["gender"].tolist())) == 2  # grouped, both genders shown
    capsys.readouterr()
    assert main(["report", str(tmp_path / "nothing"), "--out", str(tmp_path / "x")]) == 2
    assert "report.json does not exist" in capsys.readouterr().err


def test_voxceleb_trained_audio_weights_are_flagged_in_training_evaluation_and_the_report(tiny_run, tmp_path, caplog):
    """SpeechBrain's ECAPA has heard the VoxCeleb1 unseen-unheard identities: the tool says so, not only README."""
    import torch

    from voxface.encoders.ecapa import ECAPATDNN
    from voxface.training.config import load_config
    from voxface.training.run import train

    root, base = tiny_run
    weights = tmp_path / "embedding_model.ckpt"
    torch.save(ECAPATDNN(channels=(32, 32, 32, 32, 96), attention_channels=16, res2net_scale=4, se_channels=16,
                         embedding_size=32).state_dict(), weights)  # saved the way SpeechBrain saves it
    config = load_config(base, [f"trainer.out={tmp_path / 'run'}", "trainer.max_steps=2", f"audio.weights={weights}"])
    with caplog.at_level("INFO", logger="voxface"):
        train(config)
    assert "237 of the 250" in caplog.text
    assert "audio front end: speechbrain fbank" in caplog.text  # chosen for SpeechBrain weights, and said
    result = evaluate(tmp_path / "run" / "checkpoints" / "last.ckpt", root / "voxsynth", root / "voxsynth" / "protocol",
                      workers=0, decomposition=False, ci="none")
    assert result.warnings and "SpeechBrain spkrec-ecapa-voxceleb" in result.warnings[0]
    weights.unlink()  # the checkpoint's own record decides, not what lies beside audio.weights now
    result = evaluate(tmp_path / "run" / "checkpoints" / "last.ckpt", root / "voxsynth", root / "voxsynth" / "protocol",
                      workers=0, decomposition=False, ci="none")
    assert result.warnings and "237 of the 250" in result.warnings[0]
    write_reports(result, tmp_path / "report", name="sb")
    header = (tmp_path / "report" / "report.md").read_text().splitlines()[:8]  # the title, then the caveats
    assert any(line.startswith("> **Warning (unseen-unheard):**") and "237 of the 250" in line for line in header)


def test_messages_name_the_right_problem(tiny_run, trained_checkpoint, tmp_path, capsys):
    """Issue 16 items 4 and 9: a folder where a file belongs, a single face path, a root with its own lists."""
    from voxface.encoders.loading import read_weights
    from voxface.errors import MediaError, WeightsError
    from voxface.evaluation.api import VoiceFaceScorer
    from voxface.media.audio import read_voice
    from voxface.media.faces import read_face

    root, _ = tiny_run
    with pytest.raises(MediaError, match="is a folder, not an audio file"):
        read_voice(tmp_path, None, None)
    with pytest.raises(MediaError, match="is a folder, not an image file"):
        read_face(tmp_path)
    run = trained_checkpoint.parent.parent
    (run / "checkpoints" / "best.ckpt").write_bytes(trained_checkpoint.read_bytes())
    with pytest.raises(WeightsError, match=f"is a folder, not a weights file; did you mean {run}/checkpoints/best"):
        read_weights(run)
    voice, face = _one_trial(root)
    assert len(VoiceFaceScorer(trained_checkpoint).score(voice, face)) == 1  # a single path is one face
    # a data root with its own protocol/ is checked against it, and says so (not 228,620 VoxCeleb1 files missing)
    assert main(["protocol", "check", str(root / "voxsynth"), "--workers", "2"]) == 0
    assert f"lists: {root / 'voxsynth' / 'protocol'}, the data root's own" in capsys.readouterr().err


def _one_trial(root):
    from voxface.protocol import DataRoots, load_protocol

    roots = DataRoots.from_root(root / "voxsynth")
    trials = load_protocol(root / "voxsynth" / "protocol").verification("random", "unseenunheard")
    return roots.voice(trials.voice_files[0]), roots.face(trials.face_files[0])


def test_skip_missing_reports_lists_that_lost_every_file(tiny_run, trained_checkpoint, tmp_path, capsys):
    """Issue 16 item 1: a VoxSynth root scored against the VoxCeleb1 lists loses every file of every list."""
    root, _ = tiny_run
    code = main(["evaluate", "--checkpoint", str(trained_checkpoint), "--data", str(root / "voxsynth"), "--out",
                 str(tmp_path), "--skip-missing", "--workers", "0", "--lists", "voxceleb1"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["verification"] == {} and report["lost_trials"]["random_unseenunheard"] == 30496
    assert "| lost | lost |" in (tmp_path / "report.md").read_text()


def test_table2_bolds_the_best_method_per_column_only(tmp_path):
    """A weaker run is not bold; the ceiling and the shares never are."""
    from voxface.evaluation.report import COLUMNS, TEST_SETS
    from voxface.evaluation.result import Evaluation

    groups = ("random", "G", "N", "A", "GNA")
    weak = Evaluation(verification={f"{g}_{t}": {"auc": 0.572, "auc_ci95": [None, None], "eer": 0.45, "trials": 10,
                                                 "positives": 5} for t in TEST_SETS for g in groups})
    table = write_reports(weak, tmp_path, name="mine")[2].read_text()
    assert "| mine | 57.2 | 57.2 |" in table and "| ADSM | **88.4** |" in table
    assert len(COLUMNS) == 5
    alone = write_reports(weak, tmp_path / "alone", name="mine", literature=False,
                          oracle={"verification_auc": {k: 0.9 for k in weak.verification}})[2].read_text()
    assert "**" not in alone.split("| list |")[0]  # one method and the oracle: nothing to bold


def _scored(cosine: tuple[float, float, float], backend: tuple[float, float, float], keys) -> Evaluation:
    def metrics(auc, low, high):
        return {"auc": auc, "auc_ci95": [low, high], "eer": 0.4, "trials": 40, "positives": 20}

    return Evaluation(verification={k: {**metrics(*cosine), "backend": metrics(*backend)} for k in keys},
                      backend={"folder": "b", "dims": 8, "canonical_pairs": 4, "train_identities": 24,
                               "val_auc": 0.6})


def test_no_winner_is_bolded_whose_interval_overlaps_the_runner_ups(tmp_path):
    """The tiny demo's Table 2 bolded 55.5 over 48.7 with intervals wide enough to hold both: now neither is bold,
    and the rule is printed; intervals apart, the better one is bold."""
    from voxface.evaluation.report import BOLD_RULE, TEST_SETS, clear_winner

    keys = [f"{g}_{t}" for t in TEST_SETS for g in ("random", "G", "N", "A", "GNA")]
    close = write_reports(_scored((0.555, 0.46, 0.65), (0.487, 0.40, 0.57), keys), tmp_path / "close", name="mine",
                          literature=False)[2].read_text()
    table = close.split("| list |")[0]
    assert "| mine | 55.5 |" in table and "| mine + backend | 48.7 |" in table and "**" not in table
    assert BOLD_RULE in close
    apart = write_reports(_scored((0.80, 0.78, 0.82), (0.70, 0.68, 0.72), keys), tmp_path / "apart", name="mine",
                          literature=False)[2].read_text()
    assert "| mine | **80.0** |" in apart and "| mine + backend | 70.0 |" in apart
    # a published figure is a point: bold where it lies above the run's interval, not where inside it
    assert clear_winner([(88.4, None, None), (80.0, 78.0, 82.0)]) == 0
    assert clear_winner([(80.5, None, None), (80.0, 78.0, 82.0)]) is None
    assert clear_winner([(80.0, 78.0, 82.0), None]) is None  # one value: nothing to beat


def test_a_report_on_few_test_identities_says_so_in_one_line_atop(tmp_path):
    from voxface.evaluation.report import ENOUGH_TEST_IDENTITIES, TEST_SETS

    keys = [f"{g}_{t}" for t in TEST_SETS for g in ("random", "G", "N", "A", "GNA")]
    run = _scored((0.7, 0.6, 0.8), (0.7, 0.6, 0.8), keys)
    run.test_identities = 12
    few = write_reports(run, tmp_path / "few", name="mine", literature=False)[2].read_text().splitlines()
    assert few[2].startswith(f"> **Only 12 unseen-unheard test identities (fewer than {ENOUGH_TEST_IDENTITIES}): "
                             "a check that the pipeline runs, not a measurement.**")
    assert sum(line.startswith("> **Only") for line in few) == 1
    assert json.loads((tmp_path / "few" / "report.json").read_text())["test_identities"] == 12
    run.test_identities = ENOUGH_TEST_IDENTITIES
    enough = write_reports(run, tmp_path / "enough", name="mine", literature=False)[2].read_text()
    assert "> **Only" not in enough and "pipeline" not in enough


def test_a_ceiling_too_noisy_to_be_one_gets_no_share_and_is_marked(tmp_path):
    """Each ceiling has its 95% CI; no share of chance-to-ceiling where it is wider than CEILING_WIDTH or includes
    0.5, and the table marks that ceiling. A seen-heard list's oracle is no ceiling at all (its identities are the
    training identities, which a scorer can memorise): marked so, never "too noisy", never shared to. The decision
    is the list's own, the same in Table 2, the decomposition and the runs side by side, whatever scores them."""
    from voxface.evaluation.decomposition import format_decomposition
    from voxface.evaluation.report import TEST_SETS
    from voxface.evaluation.result import Evaluation
    from voxface.synth.oracle import CEILING_WIDTH

    keys = [f"{g}_{t}" for t in TEST_SETS for g in ("random", "G", "N", "A", "GNA")]
    run = Evaluation(verification={k: {"auc": 0.7, "auc_ci95": [0.6, 0.8], "eer": 0.3, "trials": 40, "positives": 20}
                                   for k in keys})
    run.verification["GNA_seenheard"]["auc"] = 1.0  # a memorising scorer, far above the seen list's oracle value
    oracle = {"verification_auc": {k: 0.9 for k in keys}, "verification_auc_ci95": {k: [0.87, 0.93] for k in keys}}
    oracle["verification_auc"]["GNA_unseenunheard"] = 0.461
    oracle["verification_auc_ci95"]["GNA_unseenunheard"] = [0.31, 0.61]
    # above chance, but wider than the width a share needs
    oracle["verification_auc"]["G_unseenunheard"] = 0.78
    oracle["verification_auc_ci95"]["G_unseenunheard"] = [0.66, 0.9]
    oracle["verification_auc"]["GNA_seenheard"], oracle["verification_auc_ci95"]["GNA_seenheard"] = 0.629, [0.42, 0.84]
    assert 0.90 - 0.66 > CEILING_WIDTH >= 0.93 - 0.87
    table = write_reports(run, tmp_path, name="mine", literature=False, oracle=oracle)[2].read_text()
    assert ("| oracle ceiling | 90.0 | 78.0 (too noisy) | 90.0 | 90.0 | 46.1 (too noisy) | 90.0 (seen: no bound) | "
            "90.0 (seen: no bound) | 90.0 (seen: no bound) | 90.0 (seen: no bound) | 62.9 (seen: no bound) |") in table
    assert "| ceiling 95% CI | 87.0-93.0 |" in table and table.count("31.0-61.0") == 1
    assert "| share of chance-to-ceiling | 50.0 | n/a | 50.0 | 50.0 | n/a | n/a | n/a | n/a | n/a | n/a |" in table
    assert "-59.9" not in table and "Too noisy" not in table
    assert (f"n/a: No share of chance-to-ceiling: too noisy: 95% CI wider than {CEILING_WIDTH:.2f} (too few test "
            "trials to measure it) on G_unseenunheard (0.660-0.900), GNA_unseenunheard (0.310-0.610); not a ceiling "
            "on seen-heard lists: their test identities are the training identities, which a scorer fitted on them "
            "can memorise (the oracle bounds scorers of unseen identities only) on random_seenheard, G_seenheard, "
            "N_seenheard, A_seenheard, GNA_seenheard.") in table
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["table2_auc_percent"]["share of chance-to-ceiling"]["unseenunheard_GNA"] is None
    assert report["table2_auc_percent"]["share of chance-to-ceiling"]["seenheard_U"] is None
    assert report["oracle_ceiling"]["unseenunheard_GNA"] == {"auc": 0.461, "ci95": [0.31, 0.61], "usable": False,
                                                             "not_a_ceiling": ["wide", "0.310-0.610"]}
    assert report["oracle_ceiling"]["seenheard_GNA"]["not_a_ceiling"] == ["seen", ""]
    assert report["oracle_ceiling"]["unseenunheard_U"]["usable"]
    rows = list(csv.DictReader((tmp_path / "report.csv").open()))
    assert rows[0]["oracle_ceiling_ci95_low"] == "0.8700"
    # an oracle.json without intervals (and nothing to recompute them from): no shares at all, and why
    bare = write_reports(run, tmp_path / "bare", name="mine", literature=False,
                         oracle={"verification_auc": oracle["verification_auc"]})[2].read_text()
    assert "| share of chance-to-ceiling | n/a | n/a |" in bare and "| ceiling 95% CI | - | - |" in bare
    assert "no 95% CI recorded" in bare
    # the decomposition's table decides each list as Table 2 does: a precise unseen-unheard ceiling keeps its shares
    # whatever scores above it (a share above 100%), a seen-heard list's reference above its oracle value is no sign
    # of noise (the demo's data reference at 1.000 on seen-heard lists) and gets no share
    text = format_decomposition({"lists": {"random_unseenunheard": {"ceiling": 0.9, "data_cosine": 0.92,
                                                                    "achieved_cosine": 0.7},
                                           "GNA_unseenunheard": {"ceiling": 0.461, "achieved_cosine": 0.55},
                                           "random_seenheard": {"ceiling": 0.938, "data_backend": 1.0,
                                                                "achieved_cosine": 0.92}},
                                 "ceiling_ci95": {"random_unseenunheard": [0.87, 0.93],
                                                  "GNA_unseenunheard": [0.31, 0.61],
                                                  "random_seenheard": [0.893, 0.983]},
                                 "train_identities": 8, "probes": {}})
    assert "| random_unseenunheard | 0.900 (95% CI 0.870-0.930) | 0.920 (105%) | - | 0.700 (50%) |" in text
    assert "| GNA_unseenunheard | 0.461 (95% CI 0.310-0.610; too noisy) | - | - | 0.550 |" in text
    assert "| random_seenheard | 0.938 (95% CI 0.893-0.983; seen: no bound) | - | 1.000 | 0.920 |" in text
    assert "not a ceiling on seen-heard lists" in text and "on random_seenheard." in text
    assert "Too noisy" not in text and "lands above" not in text
    # the runs side by side: the same marks, the lists named as everywhere else (not by their columns)
    old = json.loads((tmp_path / "report.json").read_text())
    del old["oracle_ceiling"]  # a report written before intervals existed still puts runs side by side
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "report.json").write_text(json.dumps(old))
    compare_runs([tmp_path / "old", tmp_path], tmp_path / "side")
    side = (tmp_path / "side" / "comparison.md").read_text()
    assert "46.1 (too noisy)" in side and "78.0 (too noisy)" in side and "62.9 (seen: no bound)" in side
    assert "| ceiling 95% CI | 87.0-93.0 |" in side and "| oracle ceiling | 90.0 |" in side
    assert "on G_unseenunheard (0.660-0.900), GNA_unseenunheard (0.310-0.610)" in side
    assert "unseenunheard_G" not in side and "seenheard_U" not in side.split("|---")[-1]


def test_the_runs_side_by_side_bold_only_a_clear_winner(tmp_path):
    from voxface.evaluation.report import TEST_SETS

    keys = [f"{g}_{t}" for t in TEST_SETS for g in ("random", "G", "N", "A", "GNA")]
    folders = []
    for name, (auc, half) in {"full": (0.75, 0.02), "contrastive": (0.70, 0.02), "ot_only": (0.73, 0.02)}.items():
        run = _scored((auc, auc - half, auc + half), (auc, auc - half, auc + half), keys)
        run.matching = {"v2f_U": {"accuracy": auc, "trials": 30},
                        "f2v_U": {"accuracy": 0.85 if name == "full" else auc, "trials": 3000}}
        write_reports(run, tmp_path / name, name=name, literature=False)
        folders.append(tmp_path / name)
    compare_runs(folders, tmp_path / "side")
    side = (tmp_path / "side" / "comparison.md").read_text()
    # AUC: 75.0 (73-77) overlaps the runner-up's 73.0 (71-75): no bold; 1:2 v2f on 30 trials (Wilson's interval
    # about +-15 points): no bold; f2v on 3000 trials: 85.0 lies clear of 73.0
    assert "| full | " + " | ".join(["75.0"] * 11 + ["**85.0**"]) + " |" in side.splitlines()
    assert "best in its column only where its 95% CI lies wholly above the runner-up's" in side


def test_silent_clips_and_oversized_images_are_unreadable_files(tiny_run, trained_checkpoint, tmp_path):
    """A clip with no voice and an image over Pillow's safety limit are counted as unreadable files: the run stops
    before scoring and says so, or with --skip-missing scores the rest, plots included."""
    import struct
    import zlib

    import soundfile as sf

    from voxface.errors import MediaError
    from voxface.protocol import load_protocol

    root, _ = tiny_run
    copy = tmp_path / "data"
    shutil.copytree(root / "voxsynth" / "wav", copy / "wav")
    shutil.copytree(root / "voxsynth" / "unzippedFaces", copy / "unzippedFaces")
    lists = root / "voxsynth" / "protocol"
    trials = load_protocol(lists).verification("random", "unseenunheard")
    silent, huge = copy / "wav" / trials.voice_files[0], copy / "unzippedFaces" / trials.face_files[-1]
    sf.write(silent, np.zeros(sf.info(silent).frames, np.float32), sf.info(silent).samplerate)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 10_000, 10_000, 8, 0, 0, 0, 0)  # 10^8 pixels: over Pillow's limit
    huge.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 16))
                     + chunk(b"IEND", b""))
    with pytest.raises(MediaError, match=r"2 files the lists need cannot be read.*--skip-missing"):
        evaluate(trained_checkpoint, copy, lists, out=tmp_path / "eval", bootstrap=0, workers=0)
    result = evaluate(trained_checkpoint, copy, lists, out=tmp_path / "eval", skip_missing=True, bootstrap=0,
                      workers=0)  # the embeddings of the readable files come from the first run's cache
    assert result.lost_trials["random_unseenunheard"] >= 2 and result.plots
