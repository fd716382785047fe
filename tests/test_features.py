"""Feature stores: extraction equals the encoder row for row, resumes after a kill, reads with numpy alone."""

from __future__ import annotations

import csv
import json
import logging
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch

from voxface.cli import main
from voxface.encoders.ecapa import ECAPATDNN
from voxface.encoders.iresnet import iresnet
from voxface.encoders.registry import build_face_encoder, build_voice_encoder
from voxface.errors import ConfigError, FeaturesError, MediaError, WeightsError
from voxface.features import FeatureStore, extract_features
from voxface.features import extract as extract_module
from voxface.features.store import Progress
from voxface.media.audio import read_voice
from voxface.media.faces import face_to_tensor, read_face
from voxface.testing import make_tiny_voxceleb
from voxface.training.config import load_config

TINY_ECAPA = dict(channels=(32, 32, 32, 32, 96), attention_channels=16, se_channels=16, embedding_size=24)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A tiny tree (one corrupt WAV, one corrupt JPG), and tiny encoders saved the way releases are."""
    root = tmp_path_factory.mktemp("features")
    tree = make_tiny_voxceleb(root / "data", train=3, val=1, test=1, videos=2, clips=2, frames=2)
    torch.manual_seed(0)
    torch.save(iresnet(depth=18, width=0.125, input_size=32, num_features=16).state_dict(), root / "backbone.pth")
    torch.save(ECAPATDNN(**TINY_ECAPA).state_dict(), root / "embedding_model.ckpt")  # SpeechBrain's layout
    return tree, root / "backbone.pth", root / "embedding_model.ckpt"


def _direct(modality, weights, path):
    """The encoder's own output for one file, without batching or padding: (views, D)."""
    with torch.no_grad():
        if modality == "voice":
            encoder = build_voice_encoder("ecapa", weights).eval()
            return encoder(torch.from_numpy(read_voice(path, None, None))[None]).numpy()
        encoder = build_face_encoder("iresnet", weights).eval()
        face = read_face(path, 32)
        return encoder(torch.stack([face_to_tensor(face), face_to_tensor(face, flip=True)])).numpy()


@pytest.mark.parametrize("modality", ["voice", "face"])
def test_extraction_equals_the_encoders_output_row_for_row(data, modality, tmp_path):
    tree, face_weights, voice_weights = data
    name, weights, folder = (("ecapa", voice_weights, "wav") if modality == "voice"
                             else ("iresnet", face_weights, "unzippedFaces"))
    store = extract_features(name, weights, tree.root, tmp_path / "store", batch_size=3, chunk_rows=5,
                             progress=False)
    expected = sorted(p.relative_to(tree.root).as_posix() for p in (tree.root / folder).rglob("*") if p.is_file())
    assert store.keys == expected and (tmp_path / "store" / "keys.txt").read_text().splitlines() == expected
    corrupt = f"{folder}/{tree.corrupt_voice if modality == 'voice' else tree.corrupt_face}"
    assert corrupt not in store and list(store.unreadable) == [corrupt] and not store.valid[store.index(corrupt)]
    views = 1 if modality == "voice" else 2
    assert store.embeddings.shape == (len(expected), views, 16 if modality == "face" else 24)
    for key in expected:
        if key != corrupt:
            np.testing.assert_allclose(store[key], _direct(modality, weights, tree.root / key), atol=1e-5)
    np.testing.assert_array_equal(store.vectors(expected[:2], view=views - 1), store.embeddings[:2, views - 1])
    meta = store.meta
    assert (meta["format"], meta["modality"], meta["encoder"], meta["views"], meta["count"], meta["complete"]) == (
        "voxface-features/1", modality, name, ["plain", "mirrored"][:views], len(expected), True)
    assert meta["record"]["front_end"]["input"] == ("fbank" if modality == "voice" else "image")
    assert meta["weights_sha256"] == __import__("hashlib").sha256(weights.read_bytes()).hexdigest()
    assert not list((tmp_path / "store").glob("progress-*"))


def test_a_store_reads_with_numpy_alone(data, tmp_path):
    tree, _, voice_weights = data
    extract_features("ecapa", voice_weights, tree.root, tmp_path / "store", crop_seconds=1.0, progress=False)
    script = (
        "import json, sys, numpy as np; f = sys.argv[1]\n"
        "e = np.load(f + '/embeddings.npy', mmap_mode='r', allow_pickle=False)\n"
        "v = np.load(f + '/valid.npy', mmap_mode='r', allow_pickle=False)\n"
        "keys = open(f + '/keys.txt', encoding='utf-8').read().splitlines()\n"
        "meta = json.load(open(f + '/meta.json'))\n"
        "assert 'torch' not in sys.modules and 'voxface' not in sys.modules\n"
        "print(json.dumps([e.shape, e.dtype.str, int(v.sum()), len(keys), meta['crop_seconds'], float(e[1, 0, 0])]))")
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path / "store")], capture_output=True, text=True,
                         check=True).stdout
    shape, dtype, readable, count, crop, value = json.loads(out)
    store = FeatureStore.open(tmp_path / "store")
    assert (tuple(shape), dtype, readable, count, crop) == (store.embeddings.shape, "<f4", len(store), len(store.keys),
                                                            1.0)
    assert value == float(store.embeddings[1, 0, 0])


def test_a_killed_run_resumes_where_it_stopped_and_gives_the_same_store(data, tmp_path, monkeypatch, caplog):
    tree, _, voice_weights = data
    kwargs = dict(batch_size=2, chunk_rows=4, progress=False)
    whole = extract_features("ecapa", voice_weights, tree.root, tmp_path / "whole", **kwargs)
    chunks = -(-len(whole.keys) // 4)
    assert chunks >= 4
    record, encoded = Progress.record, []

    def stop_after_two(self, chunk, rows, unreadable):
        if len(self.done) == 2:
            raise KeyboardInterrupt  # killed while the third chunk was being written
        record(self, chunk, rows, unreadable)

    def counting(encoder, item, device):
        encoded.append(len(item["rows"]))
        return encode(encoder, item, device)

    encode = extract_module.encode
    monkeypatch.setattr(Progress, "record", stop_after_two)
    with pytest.raises(KeyboardInterrupt):
        extract_features("ecapa", voice_weights, tree.root, tmp_path / "cut", **kwargs)
    with pytest.raises(FeaturesError, match=r"unfinished .*resume with voxface extract --encoder ecapa --weights "):
        FeatureStore.open(tmp_path / "cut")
    monkeypatch.setattr(Progress, "record", record)
    monkeypatch.setattr(extract_module, "encode", counting)
    with caplog.at_level(logging.INFO, logger="voxface"):
        resumed = extract_features("ecapa", voice_weights, tree.root, tmp_path / "cut", **kwargs)
    assert "resuming feature store" in caplog.text and "2 of" in caplog.text
    assert sum(encoded) == int(resumed.valid[8:].sum())  # only the rows after the two finished chunks
    for name in ("embeddings.npy", "valid.npy", "keys.txt", "unreadable.txt"):
        assert (tmp_path / "cut" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes(), name
    encoded.clear()
    with caplog.at_level(logging.INFO, logger="voxface"):
        again = extract_features("ecapa", voice_weights, tree.root, tmp_path / "cut", **kwargs)
    assert "reusing the finished feature store" in caplog.text and not encoded and again.keys == whole.keys


def test_lists_take_only_the_files_of_the_protocols_identities(data, tmp_path):
    tree, face_weights, _ = data
    stray = tree.root / "unzippedFaces" / "Nobody" / "1.6" / "abc" / "0000025.jpg"
    stray.parent.mkdir(parents=True)
    stray.write_bytes((tree.root / "unzippedFaces").rglob("*.jpg").__next__().read_bytes())
    try:
        listed = extract_features("iresnet", face_weights, tree.root, tmp_path / "listed", lists=tree.protocol_dir,
                                  progress=False)
        everything = extract_module.data_files("face", tree.root)
    finally:
        stray.unlink()
    assert "unzippedFaces/Nobody/1.6/abc/0000025.jpg" in everything
    assert listed.keys == [k for k in everything if "/Nobody/" not in k]


def test_the_files_of_a_data_root_given_as_dot_or_relative_are_keyed_alike(data, monkeypatch):
    tree, _, _ = data
    absolute = extract_module.data_files("voice", tree.root)
    assert absolute and all(k.startswith("wav/") for k in absolute)
    monkeypatch.chdir(tree.root)  # "." makes the folder plain "wav": the keys must not be cut by the root's length
    assert extract_module.data_files("voice", ".") == absolute
    monkeypatch.chdir(tree.root.parent)
    assert extract_module.data_files("voice", tree.root.name) == absolute


def test_several_processes_share_the_rows_and_make_the_same_store(data, tmp_path):
    """What each rank of a multi-GPU run does (``_Extractor``), done here one rank after the other."""
    tree, face_weights, _ = data
    single = extract_features("iresnet", face_weights, tree.root, tmp_path / "one", batch_size=2, chunk_rows=3,
                              progress=False)
    from voxface.features.store import create_store

    job = extract_module._Job(tmp_path / "two", tree.root, single.keys, "face", 32, None, 2, 3, 0)
    create_store(job.folder, {k: v for k, v in single.meta.items() if k not in ("complete", "readable")}, single.keys)
    encoder = build_face_encoder("iresnet", face_weights).eval()
    shares = [job.batches(rank, 2) for rank in (0, 1)]  # both read the progress before either writes
    assert {b.chunk for b in shares[0]}.isdisjoint({b.chunk for b in shares[1]})
    for rank, batches in enumerate(shares):
        writer = extract_module._Writer(job.folder, rank)
        with torch.no_grad():
            for item in job.loader(batches):
                writer.write(item, extract_module.encode(encoder, item, torch.device("cpu")))
        assert extract_module._finish_if_done(job) == (rank == 1)
    two = FeatureStore.open(job.folder)
    np.testing.assert_array_equal(two.embeddings, single.embeddings)
    assert two.unreadable == single.unreadable and two.meta["readable"] == single.meta["readable"]


def test_a_store_made_otherwise_is_refused(data, tmp_path):
    tree, _, voice_weights = data
    store = extract_features("ecapa", voice_weights, tree.root, tmp_path / "store", progress=False)
    with pytest.raises(FeaturesError, match=r"made otherwise \(crop seconds: stored None, expected 2.0\); choose "):
        extract_features("ecapa", voice_weights, tree.root, tmp_path / "store", crop_seconds=2.0, progress=False)
    with pytest.raises(FeaturesError, match=r"made otherwise \(encoder: stored 'ecapa', expected 'wavlm'; weights "):
        FeatureStore.open(tmp_path / "store", {"encoder": "wavlm", "weights_sha256": "0" * 64})
    with pytest.raises(KeyError, match="not in feature store"):
        store.index("wav/nowhere.wav")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(FeaturesError, match="exists and is not a feature store; choose another --out"):
        extract_features("ecapa", voice_weights, tree.root, tmp_path / "other", progress=False)
    with pytest.raises(FeaturesError, match="is not a feature store: it has no meta.json"):
        FeatureStore.open(tmp_path / "other")
    with pytest.raises(FeaturesError, match="does not exist"):
        FeatureStore.open(tmp_path / "nowhere")


def test_bad_input_gives_one_line_errors(data, tmp_path, capsys):
    tree, face_weights, voice_weights = data
    with pytest.raises(ConfigError, match=r"unknown encoder 'resnet'; registered: iresnet, ecapa, wav2vec2"):
        extract_features("resnet", face_weights, tree.root, tmp_path / "x")
    with pytest.raises(MediaError, match=r"has no wav/ folder"):
        extract_features("ecapa", voice_weights, tmp_path / "missing", tmp_path / "x")
    (tmp_path / "junk.pth").write_bytes(b"not torch")
    with pytest.raises(WeightsError, match="junk.pth"):
        extract_features("iresnet", tmp_path / "junk.pth", tree.root, tmp_path / "x")
    with pytest.raises(WeightsError, match="does not exist"):
        extract_features("iresnet", tmp_path / "none.pth", tree.root, tmp_path / "x")
    (tmp_path / "a_file").write_text("")
    with pytest.raises(FeaturesError, match=r"a_file is a file, not a folder; choose another --out"):
        extract_features("iresnet", face_weights, tree.root, tmp_path / "a_file")
    cases = [(["--encoder", "resnet"], "unknown encoder 'resnet'; registered: iresnet"),
             (["--encoder", "ecapa", "--data", str(tmp_path / "missing")], "has no wav/ folder"),
             (["--weights", str(tmp_path / "junk.pth")], "junk.pth"),
             (["--crop", "0"], "crop must be a finite number of seconds, at least 0.25")]
    for change, message in cases:
        args = dict(zip(["--encoder", "--weights", "--data", "--out"],
                        ["iresnet", str(face_weights), str(tree.root), str(tmp_path / "x")], strict=True))
        extra = []
        for flag, value in zip(change[::2], change[1::2], strict=True):
            if flag in args:
                args[flag] = value
            else:
                extra += [flag, value]
        assert main(["extract", *[x for kv in args.items() for x in kv], *extra, "--quiet"]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err


def test_extract_cli_writes_a_store_and_says_so(data, tmp_path, capsys):
    tree, face_weights, _ = data
    out = tmp_path / "faces"
    args = ["extract", "--encoder", "iresnet", "--weights", str(face_weights), "--data", str(tree.root), "--out",
            str(out), "--batch-size", "4", "--quiet"]
    assert main(args) == 0
    said = capsys.readouterr().out
    store = FeatureStore.open(out)
    assert f"{len(store.keys)} face files" in said and "1 unreadable" in said and str(out) in said
    assert main(args) == 0 and "reused" in capsys.readouterr().out


def test_the_teacher_cache_is_a_face_store_reused_until_the_faces_change(data, tmp_path, caplog):
    from voxface.training.teacher_cache import build_teacher_cache

    tree, face_weights, _ = data
    teacher = build_face_encoder("iresnet", face_weights).eval()
    faces = [k.removeprefix("unzippedFaces/") for k in extract_module.data_files("face", tree.root)
             if not k.endswith(tree.corrupt_face)][:6] + [tree.corrupt_face]
    kwargs = dict(batch_size=4, workers=0, progress=False)
    cache = build_teacher_cache(teacher, face_weights, tree.roots, faces, tmp_path, **kwargs)
    assert sorted(cache) == sorted(faces[:6]) and tree.corrupt_face not in cache
    for face in faces[:6]:
        # at the cache's float16 precision (it always held the teacher's T so: the runs' numbers depend on it)
        np.testing.assert_allclose(cache[face], _direct("face", face_weights, tree.roots.face(face)), rtol=1e-3,
                                   atol=1e-5)
        assert np.array_equal(cache[face], cache[face].astype(np.float16).astype(np.float32))
    assert np.array_equal(pickle.loads(pickle.dumps(cache))[faces[0]], cache[faces[0]])
    (folder,) = tmp_path.iterdir()
    assert folder.name.startswith("teacher_") and FeatureStore.open(folder).meta["views"] == ["plain", "mirrored"]
    with caplog.at_level(logging.INFO, logger="voxface"):
        build_teacher_cache(teacher, face_weights, tree.roots, faces, tmp_path, **kwargs)
        assert "reusing the finished feature store" in caplog.text
        fewer = build_teacher_cache(teacher, face_weights, tree.roots, faces[:3], tmp_path, **kwargs)
        # a store of more faces serves a cache of fewer (the demo embeds every face once, before its runs)
        assert "it holds the 3 files asked for" in caplog.text and set(faces[:3]) <= set(fewer)
        assert "made otherwise" not in caplog.text
        stamp = tree.roots.face(faces[5]).stat()  # a face it holds changed since: made again, for those asked
        os.utime(tree.roots.face(faces[5]), ns=(stamp.st_atime_ns, stamp.st_mtime_ns + 10**9))
        again = build_teacher_cache(teacher, face_weights, tree.roots, faces[:3], tmp_path, **kwargs)
    assert "made otherwise (files" in caplog.text and sorted(again) == sorted(faces[:3])


def test_a_media_run_reads_its_frozen_teachers_T_from_its_teacher_store(tiny_run, tmp_path):
    """Evaluating a run trained on media: faces its teacher store holds are not encoded again, the scores the same."""
    import shutil

    from voxface.evaluation.evaluate import evaluate
    from voxface.features import weights_sha256
    from voxface.training.config import load_config
    from voxface.training.run import train

    root, base = tiny_run
    out = tmp_path / "run"
    config = load_config(base, [f"trainer.out={out}", "trainer.max_steps=2"])
    store = out / "teacher_cache" / f"teacher_{weights_sha256(config.face.weights)[:16]}"
    extract_features("iresnet", config.face.weights, root / "voxsynth", store, progress=False)  # every face
    train(config)
    checkpoint, lists = out / "checkpoints" / "last.ckpt", root / "voxsynth" / "protocol"
    stored = evaluate(checkpoint, root / "voxsynth", lists, bootstrap=0, ci="none", decomposition=False, workers=0)
    shutil.rmtree(store)
    media = evaluate(checkpoint, root / "voxsynth", lists, bootstrap=0, ci="none", decomposition=False, workers=0)
    assert stored.encoded["face"] == 0 and media.encoded["face"] > 0 and stored.encoded["voice"] > 0
    for key, value in media.verification.items():
        assert stored.verification[key]["auc"] == pytest.approx(value["auc"], abs=1e-4), key


def test_the_lightning_path_makes_the_same_store(data, tmp_path):
    """``Trainer.predict`` over ``_Extractor`` (what each GPU runs), here on one CPU device."""
    import lightning as L

    from voxface.features.store import create_store

    tree, face_weights, _ = data
    single = extract_features("iresnet", face_weights, tree.root, tmp_path / "one", batch_size=2, chunk_rows=3,
                              progress=False)
    job = extract_module._Job(tmp_path / "lit", tree.root, single.keys, "face", 32, None, 2, 3, 0)
    create_store(job.folder, {k: v for k, v in single.meta.items() if k not in ("complete", "readable")}, single.keys)
    trainer = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                        enable_model_summary=False)
    trainer.predict(extract_module._extractor(build_face_encoder("iresnet", face_weights), job),
                    return_predictions=False)
    lit = FeatureStore.open(job.folder)
    np.testing.assert_array_equal(lit.embeddings, single.embeddings)
    assert lit.unreadable == single.unreadable


def test_two_cpu_processes_make_the_one_process_store_row_for_row(data, tmp_path):
    """``devices=2`` without a GPU: Lightning starts two processes (gloo), each writing its own chunks."""
    tree, face_weights, _ = data
    single = extract_features("iresnet", face_weights, tree.root, tmp_path / "one", batch_size=2, chunk_rows=3,
                              progress=False)
    two = extract_features("iresnet", face_weights, tree.root, tmp_path / "two", batch_size=2, chunk_rows=3,
                           devices=2, progress=False)
    assert two.meta["complete"] and two.keys == single.keys and len(single.keys) > 2 * 3  # both ranks had chunks
    np.testing.assert_array_equal(two.valid, single.valid)
    np.testing.assert_allclose(two.embeddings, single.embeddings, rtol=1e-5, atol=1e-6)  # 1 thread each, not 2
    assert two.unreadable == single.unreadable and not list((tmp_path / "two").glob("progress-*"))
    with pytest.raises(ConfigError, match="at least 1"):
        extract_features("iresnet", face_weights, tree.root, tmp_path / "none", devices=0, progress=False)
    # fewer chunks left than processes asked for (a small folder, or a resumed store): as many processes as chunks
    few = extract_features("iresnet", face_weights, tree.root, tmp_path / "few", batch_size=2,
                           chunk_rows=len(single.keys), devices=2, progress=False)
    assert few.meta["complete"] and few.keys == single.keys
    np.testing.assert_allclose(few.embeddings, single.embeddings, rtol=1e-5, atol=1e-6)
    with pytest.raises(ConfigError, match="crop applies to voices; iresnet is a face encoder"):
        extract_features("iresnet", face_weights, tree.root, tmp_path / "crop", crop_seconds=2.0, progress=False)
    for crop in (float("inf"), float("nan"), 0.0, 0.1):
        with pytest.raises(ConfigError, match=r"crop must be a finite number of seconds, at least 0.25 \(the shortest"):
            extract_features("ecapa", "unused.ckpt", tree.root, tmp_path / "crop", crop_seconds=crop, progress=False)


def _with_unreadable(store, rows):
    """The same store with ``rows`` marked unreadable (as if those files had failed at extraction)."""
    valid = np.array(store.valid)
    valid[rows] = False
    return FeatureStore(store.path, store.meta, store.keys, store.embeddings, valid)


def test_feature_mode_batches_are_their_items_read_whole(tiny_run, tiny_stores):
    """A feature-mode batch read at once (``PairDataset.batch``, ``ValidationTrials.batch``) holds what collating
    its items one by one gives, to the bit: the same draws, bad files replaced the same way, the same rows."""
    from voxface.features import StoreView, feature_stores
    from voxface.media.dataset import IdentityBatchSampler, PairConfig, PairDataset, collate_pairs
    from voxface.training.data import ValidationTrials, collate_trials
    from voxface.training.run import training_manifests

    _, base = tiny_run
    config = load_config(base, ["trainer.out=unused", *tiny_stores])
    stores = feature_stores(config)
    faces = _with_unreadable(stores["face"], [0, 5, 9])  # some training and validation files unreadable
    voices = _with_unreadable(stores["voice"], [1, 6, 30])
    face_view, voice_view = StoreView(faces, "unzippedFaces/"), StoreView(voices, "wav/")
    manifests = training_manifests(config)
    for same_video in (False, True):  # faces from the identity's, or from the voice's own video
        dataset = PairDataset(manifests["train"], PairConfig(face_from_same_video=same_video),
                              teacher_cache=face_view, voice_cache=voice_view)
        assert dataset.stored
        skipped = 0
        for keys in IdentityBatchSampler(dataset.clips_per_identity, 8, seed=3):
            whole, items = dataset.batch(keys), collate_pairs([dataset[key] for key in keys])
            assert whole.keys() == items.keys()
            for key, value in items.items():
                assert torch.equal(whole[key], value) if torch.is_tensor(value) else whole[key] == value, key
            skipped += whole["skipped"]
        assert skipped > 0  # the unreadable rows were met and replaced
    trials = ValidationTrials(manifests["val"], 6, 2.0, 32, face_view, 0, voice_view)
    for start in range(0, len(trials), 8):
        indices = list(range(start, min(start + 8, len(trials))))
        whole, items = trials.batch(indices), collate_trials([trials[i] for i in indices])
        assert whole.keys() == items.keys()
        assert all(torch.equal(whole[key], items[key]) for key in items)
    with pytest.raises(ValueError, match="reads feature stores"):
        PairDataset(manifests["train"], teacher_cache=face_view).batch([(0, 0, 1)])


def test_seeded_feature_mode_runs_are_bit_identical_and_resume_exactly(tiny_run, tiny_stores, tmp_path):
    """Two feature-mode runs with one seed end with the same weights and validation AUCs to the bit, and so does one
    stopped inside an epoch and resumed; run.json times the start-up and the steps of each call."""
    from voxface.training.run import train

    _, base = tiny_run
    settings = [*tiny_stores, "trainer.epochs=2", "trainer.checkpoint_every=1000", "method.args.mapping_dropout=0.3"]
    first = train(load_config(base, [f"trainer.out={tmp_path / 'a'}", *settings]))
    second = train(load_config(base, [f"trainer.out={tmp_path / 'b'}", *settings]))
    per_epoch = first["steps_per_epoch"]
    inside = per_epoch + per_epoch // 2
    train(load_config(base, [f"trainer.out={tmp_path / 'c'}", *settings, f"trainer.max_steps={inside}"]))
    resumed = train(load_config(tmp_path / "c" / "config.yaml", ["trainer.max_steps=-1"]), resume=True)
    for run, summary in (("b", second), ("c", resumed)):
        assert (summary["steps"], summary["val_auc"], summary["best_val_auc"]) == (
            first["steps"], first["val_auc"], first["best_val_auc"]), run
        a, b = (torch.load(tmp_path / name / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
                for name in ("a", run))
        assert a.keys() == b.keys() and all(torch.equal(a[key], b[key]) for key in a), run
    timing = first["timing"]
    assert timing["steps"] == first["steps"] == 2 * per_epoch and resumed["timing"]["steps"] == 2 * per_epoch - inside
    assert 0 < timing["start_up_seconds"] < timing["call_seconds"] and timing["training_seconds"] > 0
    logged = list(csv.DictReader(next((tmp_path / "a" / "logs").rglob("metrics.csv")).open()))
    steps = [int(row["step"]) for row in logged if row.get("train/loss")]
    assert steps == list(range(2 * per_epoch))  # every step's terms, at its step
    assert [row["train/skipped_files"] for row in logged if row.get("train/skipped_files")] == ["0.0", "0.0"]



def test_evaluating_from_stores_needs_only_the_stores(tiny_run, tiny_stores, tmp_path):
    """From feature stores the media need not be present (the stores hold what the lists need: the same figures
    without a listed file's media), and nothing is cached beside the stores a second time."""
    import shutil

    from voxface.evaluation.evaluate import evaluate
    from voxface.protocol import load_protocol
    from voxface.training.run import train

    root, base = tiny_run
    out = tmp_path / "run"
    train(load_config(base, [f"trainer.out={out}", "trainer.max_steps=2", *tiny_stores]))
    checkpoint, lists = out / "checkpoints" / "last.ckpt", root / "voxsynth" / "protocol"
    whole = evaluate(checkpoint, root / "voxsynth", lists, bootstrap=0, ci="none", decomposition=False,
                     out=tmp_path / "eval")
    assert whole.verification and not list((tmp_path / "eval" / "embeddings").rglob("*.npz"))  # stores: the cache
    copy = tmp_path / "copy"
    shutil.copytree(root / "voxsynth", copy)
    listed = load_protocol(lists).verification("random", "unseenunheard").voice_files[0]
    (copy / "wav" / listed).unlink()  # a listed voice gone from the media, still in the store
    without = evaluate(checkpoint, copy, lists, bootstrap=0, ci="none", decomposition=False)
    assert without.verification == whole.verification and without.retrieval == whole.retrieval
