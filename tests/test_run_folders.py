"""Issue 21 item 7: a run folder works from any folder, and after being moved or copied."""

import json
import os
import shutil
from pathlib import Path

import torch
import yaml

from voxface.cli import main
from voxface.training.config import TrainConfig, relocate
from voxface.training.run import RunCheckpoint


def _trial_files(data: Path) -> tuple[Path, list[Path]]:
    from voxface.protocol import DataRoots, load_protocol

    roots = DataRoots.from_root(data)
    trials = load_protocol(data / "protocol").verification("random", "unseenunheard")
    return roots.voice(trials.voice_files[0]), [roots.face(f) for f in trials.face_files[:3]]


def _recorded(run: Path) -> dict:
    return yaml.safe_load((run / "config.yaml").read_text())


def test_a_run_started_with_relative_paths_resumes_and_shows_its_gallery_after_its_folder_moved(
        tiny_run, tmp_path, monkeypatch, capsys):
    from fastapi.testclient import TestClient

    from voxface.app import create_app

    root, base = tiny_run
    project = tmp_path / "project"  # a user's project folder: the data and teacher beside the runs
    project.mkdir()
    (project / "data").symlink_to(root / "voxsynth")
    (project / "teacher.pth").symlink_to(root / "teacher" / "backbone.pth")
    monkeypatch.chdir(project)
    assert main(["train", "--config", str(base), "data.root=data", "data.lists=data/protocol",
                 "face.weights=teacher.pth", "trainer.out=runs/r", "trainer.epochs=1"]) == 0
    first = json.loads((project / "runs" / "r" / "run.json").read_text())
    recorded = _recorded(project / "runs" / "r")  # absolute, as the folder it was started from meant them
    assert recorded["data"]["root"] == str(project / "data")
    assert recorded["data"]["lists"] == str(project / "data" / "protocol")
    assert recorded["face"]["weights"] == str(project / "teacher.pth")
    assert recorded["trainer"]["out"] == str(project / "runs" / "r")

    moved = tmp_path / "moved"
    project.rename(moved)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    capsys.readouterr()
    # What a resumed run's callback gets back from the moved checkpoint: the best score and where best.ckpt is now.
    best = RunCheckpoint(dirpath=moved / "runs" / "r" / "checkpoints", filename="best", monitor="val_auc",
                         mode="max", save_top_k=1, auto_insert_metric_name=False)
    best.load_state_dict(torch.load(moved / "runs" / "r" / "checkpoints" / "last.ckpt",
                                    weights_only=False)["callbacks"][best.state_key])
    assert float(best.best_model_score) == first["best_val_auc"]
    assert best.best_model_path == os.path.realpath(moved / "runs" / "r" / "checkpoints" / "best.ckpt")
    assert list(best.best_k_models) == [best.best_model_path]
    # Resumed from another folder, by the moved run's config.yaml: its data moved along, found beside it.
    assert main(["train", "--config", "../moved/runs/r/config.yaml", "--resume", "trainer.epochs=2"]) == 0
    run = moved / "runs" / "r"
    summary = json.loads((run / "run.json").read_text())
    assert (summary["steps"], summary["resumed"], summary["out"]) == (2 * first["steps"], True, str(run))
    assert not project.exists()  # nothing was written where the run used to be
    recorded = _recorded(run)
    assert (recorded["data"]["root"], recorded["face"]["weights"], recorded["trainer"]["out"]) == (
        str(moved / "data"), str(moved / "teacher.pth"), str(run))
    # The checkpoints carry on in the moved folder: last.ckpt itself, not a last-v1.ckpt beside a stale one.
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)["global_step"] == summary["steps"]
    assert summary["best_val_auc"] == max(first["best_val_auc"], summary["val_auc"])

    # The app, started elsewhere, shows the run's own test identities from where the data are now.
    client = TestClient(create_app(Path("../moved/runs/r/checkpoints/last.ckpt")))
    info = client.get("/api/info").json()
    assert info["gallery_note"] == "" and len(info["faces"]) >= 3 and len(info["voices"]) >= 3
    images = {p.read_bytes() for p in (moved / "data" / "unzippedFaces").rglob("*") if p.is_file()}
    assert client.get(info["faces"][0]["url"]).content in images

    # Data gone: the app says which path is missing and what to do, in one line; resuming names both keys.
    (moved / "data").unlink()
    info = TestClient(create_app(run / "checkpoints" / "last.ckpt")).get("/api/info").json()
    assert info["faces"] == [] and info["gallery_note"] == (
        f"no gallery: the run's data.root {moved / 'data'} does not exist; pass --gallery FOLDER (faces and voices "
        "to pick from) or upload files")
    capsys.readouterr()
    assert main(["train", "--config", "../moved/runs/r", "--resume", "trainer.epochs=3"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"voxface: error: config values data.root: {moved / 'data'}, data.lists: {moved / 'data' / 'protocol'} do "
        "not exist; give their places with data.root=PATH data.lists=PATH")
    (tmp_path / "vox").symlink_to(root / "voxsynth")
    assert main(["train", "--config", "../moved/runs/r", "--resume", "trainer.epochs=3", "data.root=../vox",
                 "data.lists=../vox/protocol"]) == 0
    assert json.loads((run / "run.json").read_text())["steps"] == 3 * first["steps"]
    assert _recorded(run)["data"]["root"] == str(tmp_path / "vox")


def test_a_copied_checkpoint_scores_and_evaluates_as_the_original_from_another_folder(
        tiny_run, trained_checkpoint, tmp_path, monkeypatch, capsys):
    root, _ = tiny_run
    data, lists = root / "voxsynth", root / "voxsynth" / "protocol"
    voice, faces = _trial_files(data)
    shutil.copytree(trained_checkpoint.parent.parent, tmp_path / "copies" / "mine")
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    copied = "../copies/mine/checkpoints/last.ckpt"
    printed = []
    for checkpoint in (str(trained_checkpoint), copied):
        assert main(["score", "--checkpoint", checkpoint, str(voice), *map(str, faces)]) == 0
        printed.append(capsys.readouterr().out)
    assert printed[0] == printed[1] and len(printed[0].splitlines()) == 1 + len(faces)
    aucs = []
    for checkpoint, out in ((str(trained_checkpoint), "original"), (copied, "copy")):
        assert main(["evaluate", "--checkpoint", checkpoint, "--data", str(data), "--lists", str(lists), "--out", out,
                     "--workers", "0", "--ci", "none", "--no-decomposition"]) == 0
        report = json.loads((tmp_path / "work" / out / "report.json").read_text())
        aucs.append({key: value["auc"] for key, value in report["verification"].items()})
    assert aucs[0] == aucs[1] and len(aucs[0]) == 10
    assert "# Cross-modal verification" in capsys.readouterr().out
    # A backend fitted in the copy travels with it: a second copy scores with it, by default, as the first did.
    assert main(["backend", "fit", "--checkpoint", copied, "--data", str(data), "--lists", str(lists), "--out",
                 "../copies/mine/backend", "--workers", "0"]) == 0
    shutil.copytree(tmp_path / "copies" / "mine", tmp_path / "copies" / "again")
    capsys.readouterr()
    scored = []
    for checkpoint in (copied, "../copies/again/checkpoints/last.ckpt"):
        assert main(["score", "--checkpoint", checkpoint, str(voice), *map(str, faces)]) == 0
        scored.append(capsys.readouterr())
    assert scored[0].out == scored[1].out and "P(same)" in scored[0].out
    assert "(probabilities from ../copies/again/backend, the run's fitted backend; --no-backend for cosine scores " \
           "only)" in scored[1].err


def test_relocate_finds_what_moved_with_the_run_folder_and_leaves_what_did_not(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # relative paths below must not find a checkout's own runs/ (after make demo)
    # A run recorded before paths were stored absolute: relative to the folder it was started from.
    config = TrainConfig.from_dict({
        "data": {"root": "runs/demo/voxsynth", "lists": "runs/demo/voxsynth/protocol"},
        "face": {"weights": "/nowhere/backbone.pth", "cache_dir": "runs/demo/teacher_cache"},
        "trainer": {"out": "runs/demo/train/full"}})
    (tmp_path / "kept" / "demo" / "voxsynth" / "protocol").mkdir(parents=True)
    (tmp_path / "kept" / "demo" / "train" / "full").mkdir(parents=True)
    moved = relocate(config, tmp_path / "kept" / "demo" / "train" / "full")
    assert moved.trainer.out == str(tmp_path / "kept" / "demo" / "train" / "full")
    assert moved.data.root == str(tmp_path / "kept" / "demo" / "voxsynth")
    assert moved.data.lists == str(tmp_path / "kept" / "demo" / "voxsynth" / "protocol")
    assert moved.face.weights == "/nowhere/backbone.pth"  # found nowhere: left for validate() to name
    assert moved.face.cache_dir == ""  # a cache found nowhere is rebuilt in the run folder
    # A copy under another name (train/full -> train/full_copy) beside its data: the same place relative to the run.
    recorded = TrainConfig.from_dict({"data": {"root": str(tmp_path / "gone" / "voxsynth")},
                                      "trainer": {"out": str(tmp_path / "gone" / "train" / "full")}})
    (tmp_path / "copy" / "voxsynth").mkdir(parents=True)
    copied = relocate(recorded, tmp_path / "copy" / "train" / "full_copy")
    assert copied.data.root == str(tmp_path / "copy" / "voxsynth")
    shipped = relocate(TrainConfig.from_dict({"trainer": {"out": "/old/run"}}), tmp_path / "new")
    assert shipped.data.lists == "voxceleb1" and shipped.data.root == ""  # names and empty values stay
