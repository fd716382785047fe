"""The full-size rehearsal's tree (benchmarks/rehearsal_tree.py), the presence-only check, and the fixes that keep
the protocol's cost in proportion to the data."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from voxface.cli import main
from voxface.protocol import DataRoots, load_protocol
from voxface.protocol.check import MISSING, OK, UNREADABLE, check_files, file_status, presence_status

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from rehearsal_tree import build_rehearsal_tree  # noqa: E402


@pytest.fixture(scope="module")
def tiny_tree(tmp_path_factory) -> dict:
    return build_rehearsal_tree(0.002, tmp_path_factory.mktemp("rehearsal"), pool_voices=3, pool_faces=3)


def test_tree_holds_the_listed_files_at_their_released_paths_as_links(tiny_tree):
    protocol = load_protocol(tiny_tree["lists"])
    assert tiny_tree["identities"] == {"train": 2, "val": 2, "test": 2}
    assert sorted(protocol.splits) == sorted(n for s in (1, 2, 4) for n in
                                             [i.name for i in protocol.identities_in_split(s)])
    roots = DataRoots.from_root(tiny_tree["root"])
    trials = protocol.verification("random", "unseenunheard")
    assert len(trials) > 0 and 0 < trials.labels.sum() < len(trials)
    voice = roots.voice(trials.voice_files[0])  # old list naming mapped to wav/<id>/<ytid>/<5 digits>.wav
    assert voice.parts[-3].startswith("id1") and len(voice.name) == len("00001.wav")
    face = roots.face(trials.face_files[0])
    assert face.parts[-3] == "1.6"
    pool = Path(tiny_tree["root"]).parent / "pool"
    assert voice.stat().st_nlink > 1 and any(voice.samefile(p) for p in pool.glob("*.wav"))
    assert face.stat().st_nlink > 1 and any(face.samefile(p) for p in pool.glob("*.jpg"))
    # every kept trial's probe is a chosen identity; its files are all there
    chosen = {protocol.identities[n].number for n in protocol.splits}
    assert set(trials.voice_speakers.tolist()) <= chosen
    assert all(r.missing == [] for r in check_files(protocol, roots, quick=True))
    # training identities have generated videos beyond the listed ones
    assert tiny_tree["generated_videos"] >= 4 * 4 and tiny_tree["voices"] > tiny_tree["listed_voices"]


def test_quick_check_passes_on_the_tree(tiny_tree, capsys):
    assert main(["protocol", "check", tiny_tree["root"], "--lists", tiny_tree["lists"], "--quick"]) == 0
    assert "present (not read" in capsys.readouterr().out


def test_quick_check_finds_missing_files_but_reads_none(tmp_path):
    good, broken = tmp_path / "a.wav", tmp_path / "b.jpg"
    good.write_bytes(b"RIFF")  # not a valid WAV: only the full check reads it
    broken.write_bytes(b"not a jpeg")
    assert presence_status(good) == OK and presence_status(broken) == OK
    assert presence_status(tmp_path / "gone.wav") == MISSING
    assert file_status(good) == UNREADABLE and file_status(broken) == UNREADABLE


def test_lists_share_one_string_per_file():
    # a list names each file in many trials: the mapped paths are computed once per file and shared
    trials = load_protocol().verification("random", "seenheard")
    first = {}
    for list_path, mapped in zip(trials.voice_paths, trials.voice_files, strict=True):
        assert first.setdefault(list_path, mapped) is mapped
    assert len(first) < len(trials) / 2
    assert trials.face_files[0] == trials.face_paths[0].replace("/", "/1.6/", 1)


def test_fraction_is_checked(tmp_path):
    with pytest.raises(ValueError, match="fraction"):
        build_rehearsal_tree(0, tmp_path)
    assert not os.listdir(tmp_path)


def test_check_counts_each_trial_a_bad_file_touches(tiny_tree, tmp_path):
    # files are looked up column by column on strings: the counts must equal a per-trial reading of the lists
    protocol = load_protocol(tiny_tree["lists"])
    roots = DataRoots.from_root(tiny_tree["root"])
    matching = protocol.matching("v2f", "U")
    gone = matching.positives[0]  # a face some trials take as the right candidate and others as the wrong one
    target = roots.face(gone)
    target.rename(tmp_path / "moved.jpg")
    try:
        results = {r.name: r for r in check_files(protocol, roots, quick=True)}
    finally:
        (tmp_path / "moved.jpg").rename(target)
    assert results["matching_v2f_U"].missing == [str(target)]
    assert results["matching_v2f_U"].trials_affected == sum(
        gone in (a, b) for a, b in zip(matching.positives, matching.negatives, strict=True))
    trials = protocol.verification("random", "unseenunheard")
    assert results["random_unseenunheard"].trials_affected == trials.face_files.count(gone)
    assert results["random_unseenunheard"].files == len(set(trials.voice_files) | set(trials.face_files))


def test_retrieval_in_blocks_equals_the_whole_matrix():
    # ranked a block of queries at a time (bounded memory); the figures are those of one whole ranking
    import numpy as np

    from voxface.metrics import retrieval

    rng = np.random.default_rng(0)
    queries, gallery = rng.standard_normal((37, 8)), rng.standard_normal((53, 8))
    query_ids, gallery_ids = rng.integers(5, size=37), np.arange(53) % 5
    whole = retrieval(queries, query_ids, gallery, gallery_ids, block=1000)
    for block in (1, 7, 36):
        assert retrieval(queries, query_ids, gallery, gallery_ids, block=block) == pytest.approx(whole)
    # the same by a direct reading of the definition
    scores = (queries / np.linalg.norm(queries, axis=1, keepdims=True)) @ (
        gallery / np.linalg.norm(gallery, axis=1, keepdims=True)).T
    aps, first = [], []
    for row, qid in zip(scores, query_ids, strict=True):
        ranked = gallery_ids[np.argsort(-row, kind="stable")] == qid
        ranks = np.flatnonzero(ranked) + 1
        aps.append(np.mean(np.arange(1, len(ranks) + 1) / ranks))
        first.append(ranks[0])
    assert whole["mAP"] == pytest.approx(np.mean(aps))
    assert whole["R@5"] == pytest.approx(np.mean(np.array(first) <= 5))


def test_retrieval_ranks_tied_scores_in_gallery_order():
    # ranks are read from the sorted scores, not an argsort: exact ties (one file linked under several names, the
    # same face twice) must still rank as a stable descending sort puts them, earlier gallery items first
    import numpy as np

    from voxface.metrics import retrieval

    rng = np.random.default_rng(1)
    queries, gallery = rng.standard_normal((9, 4)), rng.standard_normal((40, 4))
    gallery[::3] = gallery[0]  # a third of the gallery one vector, across identities
    query_ids, gallery_ids = np.arange(9) % 4, np.arange(40) % 4
    scores = (queries / np.linalg.norm(queries, axis=1, keepdims=True)) @ (
        gallery / np.linalg.norm(gallery, axis=1, keepdims=True)).T
    aps, first = [], []
    for row, qid in zip(scores, query_ids, strict=True):
        ranks = np.flatnonzero(gallery_ids[np.argsort(-row, kind="stable")] == qid) + 1
        aps.append(np.mean(np.arange(1, len(ranks) + 1) / ranks))
        first.append(ranks[0])
    result = retrieval(queries, query_ids, gallery, gallery_ids, ks=(1, 3), block=4)
    assert result["mAP"] == pytest.approx(np.mean(aps), abs=1e-12)
    assert result["R@1"] == np.mean(np.array(first) <= 1) and result["R@3"] == np.mean(np.array(first) <= 3)


def test_evaluation_orders_list_files_as_paths_sort():
    # files are made paths once each, from their list strings, in the order sorting the paths themselves gives
    from voxface.evaluation.evaluate import _paths

    root = Path("/data/wav")
    names = {"id10001/a-b/00001.wav", "id10001/a/00002.wav", "id10001/a/00001.wav", "id1000/z/00001.wav"}
    made = _paths(root, names)
    assert list(made.values()) == [str(p) for p in sorted(root / n for n in names)]
    assert all(made[n] == str(root / n) for n in names)


def test_bench_scale_refuses_bad_options_keeps_reused_trees_and_fails_on_a_failed_stage(tmp_path, monkeypatch, capsys):
    import json

    import bench_scale

    def run(*argv):
        monkeypatch.setattr(sys, "argv", ["bench_scale.py", *argv])
        try:
            bench_scale.main()
        except SystemExit as stop:
            return stop.code
        return 0

    for bad in ("0", "-1", "2", "nan", "inf", "abc"):
        assert run("--fraction", bad, "--out", str(tmp_path / "x")) == 2
        assert "--fraction" in capsys.readouterr().err
    (tmp_path / "file").write_text("")
    assert run("--out", str(tmp_path / "file")) == 2 and "is a file" in capsys.readouterr().err
    assert run("--out", str(tmp_path / "x"), "--methods", "pins,nosuch") == 2
    assert "'nosuch' is no registered method" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()  # refused before anything is made
    out = tmp_path / "scale"
    assert run("--fraction", "0.002", "--out", str(out), "--keep", "--stages", "check_quick") == 0
    # evaluate without a benchmark run fails: no rate, no growth, a line and a non-zero exit; the reused tree stays
    said = run("--fraction", "0.002", "--out", str(out), "--reuse", "--stages", "evaluate")
    assert said and "1 stage(s) failed, not timings: F=0.002 evaluate" in said
    assert "F=0.002 evaluate failed (exit 2)" in capsys.readouterr().err
    record = json.loads((out / "F0.002" / "scale.json").read_text())["stages"]
    assert record["check_quick"]["rc"] == 0 and "files_per_s" in record["check_quick"]
    assert record["evaluate"]["rc"] != 0 and "files_per_s" not in record["evaluate"]
    assert (out / "F0.002" / "data").is_dir()
