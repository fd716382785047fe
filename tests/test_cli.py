"""The ``voxface`` command line itself: what it says about itself."""

import subprocess
import sys

import pytest

import voxface
from voxface.cli import main


def test_version_prints_the_package_version(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["--version"])
    assert caught.value.code == 0
    assert capsys.readouterr().out == f"voxface {voxface.__version__}\n"
    # as a researcher types it: python -m voxface --version
    done = subprocess.run([sys.executable, "-m", "voxface", "--version"], capture_output=True, text=True, check=True)
    assert done.stdout == f"voxface {voxface.__version__}\n" and not done.stderr


def test_score_names_the_first_missing_input_before_importing_torch(tmp_path):
    """Arguments and paths are checked before torch is imported: a missing voice is named at once (the voice
    before the faces, as they are given), whatever the checkpoint holds."""
    checkpoint = tmp_path / "run.ckpt"
    checkpoint.write_bytes(b"")  # exists: its content is read only after the inputs are checked
    script = ("import sys\nfrom voxface.cli import main\n"
              f"code = main(['score', '--checkpoint', {str(checkpoint)!r}, '/nope.wav', '/nope.jpg'])\n"
              "print(code, 'torch' in sys.modules, 'numpy' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["2", "False", "False"]
    assert done.stderr == "voxface: error: voice /nope.wav does not exist\n"


def test_score_checks_its_values_and_inputs_in_argument_order(tmp_path, capsys):
    voice = tmp_path / "voice.wav"
    voice.write_bytes(b"")
    assert main(["score", "--checkpoint", str(tmp_path / "run.ckpt"), "/nope.wav", "/nope.jpg"]) == 2
    assert capsys.readouterr().err == f"voxface: error: --checkpoint {tmp_path / 'run.ckpt'} does not exist\n"
    assert main(["score", "--checkpoint", str(voice), "--backend", str(voice), str(voice), "/nope.jpg"]) == 2
    assert capsys.readouterr().err == f"voxface: error: --backend {voice} is a file, not a folder\n"
    assert main(["score", "--checkpoint", str(voice), str(voice), str(voice), "/nope.jpg"]) == 2
    assert capsys.readouterr().err == "voxface: error: face /nope.jpg does not exist\n"
    assert main(["score", "--checkpoint", str(voice), "--prior", "1", str(voice), str(voice)]) == 2
    assert capsys.readouterr().err == "voxface: error: --prior must lie strictly between 0 and 1, got 1.0\n"
    for crop in ("inf", "0.1"):
        assert main(["score", "--checkpoint", str(voice), "--crop", crop, str(voice), str(voice)]) == 2
        assert capsys.readouterr().err == (f"voxface: error: --crop must be a finite number of seconds, at least "
                                           f"0.25 (the shortest voice read), got {float(crop)}\n")


def test_a_data_root_with_its_own_protocol_is_its_default_list_set(tiny, capsys):
    """protocol check (as evaluate, backend fit and protocol manifest) reads ROOT/protocol when it exists, and says
    so in one line, instead of finding VoxCeleb1's files missing."""
    code = main(["protocol", "check", str(tiny.root)])
    captured = capsys.readouterr()
    assert captured.err == (f"lists: {tiny.root / 'protocol'}, the data root's own (--lists voxceleb1 for the "
                            "shipped VoxCeleb1 lists)\n")
    assert code == 0 and "all files the lists need are present and readable" in captured.out  # the tree's own


def test_lists_follow_the_data_root(tmp_path, capsys):
    from voxface.commands.common import lists_for

    assert lists_for(tmp_path, None) == "voxceleb1" and not capsys.readouterr().err
    (tmp_path / "protocol").mkdir()
    assert lists_for(tmp_path, None) == str(tmp_path / "protocol")
    assert capsys.readouterr().err.startswith(f"lists: {tmp_path / 'protocol'}, the data root's own")
    assert lists_for(tmp_path, "voxceleb1") == "voxceleb1" and not capsys.readouterr().err


def test_a_folder_that_is_no_demo_folder_is_named_in_one_line(tmp_path, capsys):
    for command in (["benchmark", "--demo", str(tmp_path)], ["train", "--demo", str(tmp_path)],
                    ["evaluate", "--demo", str(tmp_path), "--checkpoint", str(tmp_path), "--out", str(tmp_path)]):
        assert main(command) == 2
        err = capsys.readouterr().err
        assert err == (f"voxface: error: --demo {tmp_path} is not a demo folder: {tmp_path / 'demo.json'} is missing "
                       "(voxface demo writes it before its first training run; a demo made by an older voxface gets "
                       "it when run again with its own --size)\n"), command
    assert main(["benchmark", "--demo", str(tmp_path / "nope")]) == 2
    assert capsys.readouterr().err == (f"voxface: error: --demo {tmp_path / 'nope'} does not exist; make it with: "
                                       f"voxface demo --out {tmp_path / 'nope'}\n")
    assert main(["train", "--demo", str(tmp_path), "--resume"]) == 2
    assert "leave out --demo" in capsys.readouterr().err
    assert main(["evaluate", "--checkpoint", str(tmp_path), "--out", str(tmp_path)]) == 2
    assert "needs --data ROOT (the data set root), or --demo RUN" in capsys.readouterr().err


@pytest.mark.parametrize("argv, said", [
    (["demo", "--seed", "nan"], "voxface: error: demo --seed: invalid int value: 'nan'\n"),
    (["synth", "--out", "x", "--identities", "abc"], "voxface: error: synth --identities: invalid int value: 'abc'\n"),
    (["synth"], "voxface: error: synth: the following arguments are required: --out\n"),
    (["protocol", "check", "x", "--workers", "z"],
     "voxface: error: protocol check --workers: invalid int value: 'z'\n"),
])
def test_a_bad_flag_is_one_line_naming_the_command_and_flag(argv, said, capsys):
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2
    assert capsys.readouterr().err == said  # no usage block before it


def _parsers(parser, name="voxface"):
    """Every parser under ``parser`` (sub-commands recursively), with its command line."""
    import argparse

    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub, child in action.choices.items():
                yield from _parsers(child, f"{name} {sub}")


def test_every_argument_of_every_command_has_help_and_help_still_prints_usage(capsys):
    from voxface.cli import build_parser

    parser = build_parser()
    missing = [f"{name} {action.option_strings or action.dest}" for name, command in _parsers(parser)
               for action in command._actions if not action.help]
    assert missing == []
    with pytest.raises(SystemExit) as caught:
        main(["demo", "--help"])
    assert caught.value.code == 0
    shown = capsys.readouterr().out
    assert shown.startswith("usage: voxface demo") and "from scratch" in shown and "peers benchmark" in shown


def test_only_voxface_logs_at_info(tmp_path):
    """A library's INFO (torch logs its cache statistics at exit, e.g. after Ctrl-C in the middle of importing it)
    never reaches the user; voxface's own INFO does."""
    script = ("import logging\nfrom voxface.cli import configure_logging\nconfigure_logging(False)\n"
              "logging.getLogger('torch._subclasses.fake_tensor').info('FakeTensor cache stats:')\n"
              "logging.getLogger('lightning.pytorch').info('GPU available: False')\n"
              "logging.getLogger('voxface').info('train: 24 identities')\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stderr == "INFO train: 24 identities\n"


def test_a_file_given_as_data_root_is_named_as_a_file(tmp_path, capsys):
    """protocol check FILE (as every command whose data root is resolved by DataRoots.from_root) says that FILE is
    a file, not that FILE/wav does not exist."""
    afile = tmp_path / "afile"
    afile.write_text("ok\n")
    assert main(["protocol", "check", str(afile)]) == 2
    assert capsys.readouterr().err == (f"voxface: error: data root {afile} is a file, not a data folder (one holding "
                                       "wav/ and unzippedFaces/)\n")


def test_output_piped_into_a_reader_that_stops_ends_quietly():
    import os
    from pathlib import Path

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    # `true` exits without reading: every write meets a closed pipe, as `| head -1` does after its line
    done = subprocess.run(f"'{sys.executable}' -m voxface protocol stats | true; echo ${{PIPESTATUS[0]}}",
                          shell=True, executable="/bin/bash", env=env, capture_output=True, text=True, timeout=120)
    assert done.stderr == "" and done.stdout.strip() == "141"  # no BrokenPipeError traceback
