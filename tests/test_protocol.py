import re
import shutil

import numpy as np
import pytest
import soundfile as sf

from voxface.cli import main
from voxface.errors import ProtocolError
from voxface.protocol import (
    SPLIT_TRAIN,
    SPLIT_VAL,
    TEST_SETS,
    VERIFICATION_GROUPS,
    Manifest,
    build_manifest,
    load_protocol,
)
from voxface.protocol.check import check_files
from voxface.protocol.lists import face_file_from_list_path, voice_file_from_list_path
from voxface.protocol.manifest import seen_heard_videos

# Facts checked on the real files (../shared/data/voxceleb1/README.md).
REAL_COUNTS = {
    ("random", "unseenunheard"): 30496, ("G", "unseenunheard"): 30496, ("A", "unseenunheard"): 30496,
    ("N", "unseenunheard"): 28193, ("GNA", "unseenunheard"): 27280,
    ("random", "seenheard"): 18020, ("G", "seenheard"): 18020, ("A", "seenheard"): 18020,
    ("N", "seenheard"): 17840, ("GNA", "seenheard"): 17380,
}


@pytest.fixture(scope="module")
def real():
    return load_protocol("voxceleb1")


def test_shipped_metadata_and_splits(real):
    assert len(real.identities) == 1251
    splits = list(real.splits.values())
    assert (splits.count(1), splits.count(2), splits.count(4), splits.count(3)) == (901, 100, 250, 0)
    test_people = real.identities_in_split(4)
    assert sum(p.gender == "m" for p in test_people) == 151
    assert sum(p.set == "dev" for p in test_people) == 237
    assert real.identities["A.J._Buckley"].vox_id == "id10001"
    assert real.identities["A.J._Buckley"].number == 1


@pytest.mark.parametrize("group", VERIFICATION_GROUPS)
@pytest.mark.parametrize("test_set", TEST_SETS)
def test_shipped_verification_lists(real, group, test_set):
    trials = real.verification(group, test_set)
    assert len(trials) == REAL_COUNTS[(group, test_set)]
    # The label column agrees with the speaker ids on every row ...
    assert np.array_equal(trials.labels == 1, trials.voice_speakers == trials.face_speakers)
    # ... and about half of the trials are positive.
    assert abs(trials.labels.mean() - 0.5) < 0.001
    split = 4 if test_set == "unseenunheard" else 1
    names = {real.identity_of_number[n].name for n in np.unique(trials.voice_speakers)}
    assert all(real.splits[name] == split for name in names)


def test_label_column_not_row_parity(real):
    """In N unseen-unheard the rows stop alternating: parity-based labels would be wrong."""
    trials = real.verification("N", "unseenunheard")
    parity = (np.arange(len(trials)) % 2 == 0).astype(np.int8)
    assert (parity != trials.labels).sum() > 10_000


def test_shipped_matching_lists(real):
    counts = {m.name: len(m) for m in real.all_matching()}
    assert counts == {"v2f_U": 10000, "v2f_G": 10000, "v2f_N": 9360, "v2f_GN": 9120,
                      "f2v_U": 10000, "f2v_G": 10000, "f2v_N": 9360, "f2v_GN": 9120}
    v2f = real.matching("v2f", "U")
    assert v2f.probes[0].endswith(".wav") and v2f.positives[0].endswith(".jpg")
    # the correct candidate is the probe's identity
    vox_id = v2f.probes[0].split("/")[0]
    assert real.vox_id_of_name[v2f.positives[0].split("/")[0]] == vox_id


def test_path_mapping(real):
    ids = real.vox_id_of_name
    assert voice_file_from_list_path("A.R._Rahman/gaQqIoV_aLY_0000001.wav", ids) == "id10002/gaQqIoV_aLY/00001.wav"
    # YouTube ids may contain underscores: the clip number is split off at the last one
    assert voice_file_from_list_path("A.R._Rahman/0_laIeN-Q44_0000012.wav", ids) == "id10002/0_laIeN-Q44/00012.wav"
    assert face_file_from_list_path("A.R._Rahman/0_laIeN-Q44/0007400.jpg") == "A.R._Rahman/1.6/0_laIeN-Q44/0007400.jpg"
    trials = real.verification("random", "unseenunheard")
    assert trials.voice_files[0] == "id10002/gaQqIoV_aLY/00001.wav"
    with pytest.raises(ProtocolError, match="not of the form"):
        voice_file_from_list_path("A.R._Rahman/clip.wav", ids)
    with pytest.raises(ProtocolError, match="not in the metadata"):
        voice_file_from_list_path("Nobody/abc_0000001.wav", ids)


def test_malformed_protocol_files_name_the_file_and_line(tiny, tmp_path):
    folder = tmp_path / "protocol"
    shutil.copytree(tiny.protocol_dir, folder)
    path = folder / "veriflist" / "veriflist_test_G_seenheard.txt"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:2] + [lines[2].replace(",0,", ",7,")] + lines[3:]) + "\n")
    with pytest.raises(ProtocolError, match=r"veriflist_test_G_seenheard.txt:3: label '7'"):
        load_protocol(folder).verification("G", "seenheard")
    # a path the layout refuses is named with its file and line (its first trial)
    for column, bad, said in ((4, "Nobody_Here/abc_0000001.wav", "names 'Nobody_Here', who is not in the metadata"),
                              (5, "/etc/passwd", "is not of the form <Name>/<ytid>/<frame>.jpg"),
                              (5, "", "is not of the form")):
        edited = lines[2].split(",")
        edited[column] = bad
        path.write_text("\n".join(lines[:3] + [",".join(edited)] + lines[4:]) + "\n")
        with pytest.raises(ProtocolError, match=rf"veriflist_test_G_seenheard.txt:4: .*{re.escape(said)}"):
            load_protocol(folder).verification("G", "seenheard")
    # identity_splits.txt: a split that is not 1, 2 or 4, and one identity given two splits
    splits = folder / "identity_splits.txt"
    kept = splits.read_text()
    first = kept.splitlines()[0].split()[0]
    for text, said in ((f"{first} 5\n", ":1: split 5 of"), (f"{first} 1\n{first} 4\n", ":2: .* is given split 4 here")):
        splits.write_text(text)
        with pytest.raises(ProtocolError, match=rf"identity_splits.txt{said}"):
            load_protocol(folder)
    splits.write_text(kept)
    path.write_text("")
    with pytest.raises(ProtocolError, match=r"veriflist_test_G_seenheard.txt is empty; expected the header id,"):
        load_protocol(folder).verification("G", "seenheard")
    path.write_text("voice,face\n")
    with pytest.raises(ProtocolError, match="header"):
        load_protocol(folder).verification("G", "seenheard")
    path.unlink()
    with pytest.raises(ProtocolError, match="veriflist/veriflist_test_G_seenheard.txt is missing"):
        load_protocol(folder).verification("G", "seenheard")
    with pytest.raises(ProtocolError, match="no verification list"):
        load_protocol(folder).verification("X", "seenheard")
    (folder / "vox1_meta.csv").write_text("a,b,c\n1,2,3\n")
    with pytest.raises(ProtocolError, match="tab-separated"):
        load_protocol(folder)


def test_lists_as_editors_save_them(tiny, tmp_path):
    """A byte-order mark, CRLF, spaces around values and trailing separators read as the plain list; UTF-16 (Excel's
    "Unicode text") too; bytes that are no UTF-8 are named with their file and line."""
    expected = load_protocol(tiny.protocol_dir)
    folder = tmp_path / "protocol"
    shutil.copytree(tiny.protocol_dir, folder)

    def edit(relative, change, encoding="utf-8-sig"):
        path = folder / relative
        lines = path.read_text().splitlines()
        path.write_bytes("".join(change(line) + "\r\n" for line in lines).encode(encoding))

    edit("vox1_meta.csv", lambda line: line.replace("\t", " \t") + " \t")
    edit("identity_splits.txt", lambda line: line + "  ")
    for group in VERIFICATION_GROUPS:
        for test_set in TEST_SETS:
            edit(f"veriflist/veriflist_test_{group}_{test_set}.txt", lambda line: line.replace(",", ", ") + " ")
    edit("matching/matching_v2f_U.csv", lambda line: "  " + line + " ", encoding="utf-16")
    edited = load_protocol(folder)
    assert edited.identities == expected.identities and edited.splits == expected.splits
    for group in VERIFICATION_GROUPS:
        for test_set in TEST_SETS:
            ours, theirs = edited.verification(group, test_set), expected.verification(group, test_set)
            assert ours.voice_files == theirs.voice_files and ours.face_files == theirs.face_files
            assert np.array_equal(ours.labels, theirs.labels)
    assert edited.matching("v2f", "U") == expected.matching("v2f", "U")
    # the trial lists' files are all found: no "files missing" from a trailing space
    assert all(not r.missing and not r.unreadable for r in check_files(edited, tiny.roots))
    train = build_manifest(edited, tiny.roots)
    train.save(tmp_path / "train.json")
    path = tmp_path / "train.json"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert Manifest.load(path) == train
    meta = folder / "vox1_meta.csv"
    meta.write_bytes(meta.read_bytes().replace(b"UK", b"\xe9", 1))  # Latin-1, not UTF-8
    with pytest.raises(ProtocolError, match=r"vox1_meta.csv:3: not UTF-8 text \(byte 0xe9\); save the file as UTF-8"):
        load_protocol(folder)


def test_identity_knobs_as_editors_save_them(tmp_path):
    from voxface.training.pretrain import read_identity_knobs

    path = tmp_path / "identities.csv"
    path.write_text("name,gender,nationality,age,jaw\nAda,f,UK,36,0.5\nBo,m,USA,41,-1.25\n")
    plain = read_identity_knobs(path)
    assert plain == {"Ada": {"gender": 1.0, "age": 36.0, "jaw": 0.5}, "Bo": {"gender": 0.0, "age": 41.0, "jaw": -1.25}}
    edited = "\ufeffname, gender ,nationality,age,jaw\r\nAda ,f,UK, 36,0.5 \r\n\r\nBo,m ,USA,41,-1.25\r\n"
    path.write_bytes(edited.encode())
    assert read_identity_knobs(path) == plain


def test_a_tree_of_unreadable_audio_says_what_to_convert(tiny, tmp_path):
    shutil.copytree(tiny.root, tmp_path / "copy")
    roots = type(tiny.roots)(tmp_path / "copy" / "wav", tmp_path / "copy" / "unzippedFaces")
    for clip in list(roots.audio.rglob("*.wav")):  # a VoxCeleb2-style tree: AAC in .m4a
        clip.rename(clip.with_suffix(".m4a"))
    with pytest.raises(ProtocolError, match=r"no train identity has both voice clips .*found \d+ \.m4a files .*"
                                            r"ffmpeg -i clip\.m4a -ac 1 -ar 16000 clip\.wav.*find .* -name '\*\.m4a'"):
        build_manifest(load_protocol(tiny.protocol_dir), roots)


def test_a_half_converted_tree_says_which_clips_it_leaves_out(tiny, tmp_path, caplog):
    shutil.copytree(tiny.root, tmp_path / "copy")
    roots = type(tiny.roots)(tmp_path / "copy" / "wav", tmp_path / "copy" / "unzippedFaces")
    protocol = load_protocol(tiny.protocol_dir)
    whole = build_manifest(protocol, roots)
    clip = roots.voice(whole.identities[0].voices[0])
    clip.rename(clip.with_suffix(".m4a"))  # one clip of an identity that keeps others
    with caplog.at_level("WARNING", logger="voxface"):
        half = build_manifest(protocol, roots)
    assert sum(len(i.voices) for i in half.identities) == sum(len(i.voices) for i in whole.identities) - 1
    assert "some clips are in files voxface does not read, left out; found 1 .m4a files" in caplog.text


def test_training_manifest_excludes_seen_heard_videos(tiny):
    protocol = load_protocol(tiny.protocol_dir)
    used = seen_heard_videos(protocol)
    train = build_manifest(protocol, tiny.roots, SPLIT_TRAIN)
    assert train.excluded_videos == len(used) == 4
    assert {i.name for i in train.identities} == {i.name for i in protocol.identities_in_split(SPLIT_TRAIN)}
    for ident in train.identities:
        assert not any((ident.name, ytid) in used for ytid in ident.videos)
        for clip in ident.voices:
            assert clip.split("/")[1] not in {ytid for name, ytid in used if name == ident.name}
    val = build_manifest(protocol, tiny.roots, SPLIT_VAL)
    assert val.excluded_videos == 0 and len(val.identities) == 2
    assert "excluded 4 videos" in train.summary()


def test_manifest_round_trip_and_errors(tiny, tmp_path):
    protocol = load_protocol(tiny.protocol_dir)
    train = build_manifest(protocol, tiny.roots)
    train.save(tmp_path / "train.json")
    loaded = Manifest.load(tmp_path / "train.json")
    assert loaded == train
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ProtocolError, match="bad.json is not valid JSON"):
        Manifest.load(tmp_path / "bad.json")
    with pytest.raises(ProtocolError, match="does not exist"):
        Manifest.load(tmp_path / "missing.json")
    with pytest.raises(ProtocolError, match="audio root"):
        build_manifest(protocol, type(tiny.roots)(tmp_path / "no", tmp_path / "no"))


def test_check_reports_missing_and_unreadable(tiny, tmp_path):
    protocol = load_protocol(tiny.protocol_dir)
    assert all(not r.missing and not r.unreadable for r in check_files(protocol, tiny.roots))
    # Break one file each way in a copy of the tree.
    shutil.copytree(tiny.root, tmp_path / "copy")
    roots = type(tiny.roots)(tmp_path / "copy" / "wav", tmp_path / "copy" / "unzippedFaces")
    trials = protocol.verification("random", "unseenunheard")
    roots.voice(trials.voice_files[0]).unlink()
    roots.face(trials.face_files[0]).write_bytes(b"not an image")
    silent = roots.voice(protocol.verification("random", "seenheard").voice_files[0])  # read by the one reader:
    sf.write(silent, np.zeros(sf.info(silent).frames), sf.info(silent).samplerate)  # a clip with no voice is bad
    results = {r.name: r for r in check_files(protocol, roots)}
    assert len(results["random_unseenunheard"].missing) == 1
    assert len(results["random_unseenunheard"].unreadable) == 1
    assert results["random_unseenunheard"].trials_affected >= 2
    assert not results["random_seenheard"].missing and results["random_seenheard"].unreadable == [str(silent)]
    # every bad file with its reason, through the command
    report = tmp_path / "bad.tsv"
    assert main(["protocol", "check", str(tmp_path / "copy"), "--lists", str(tiny.protocol_dir), "--report",
                 str(report)]) == 1
    rows = [line.split("\t") for line in report.read_text().splitlines()]
    assert [row[:2] for row in rows if row[0] == "missing"] == [["missing", str(roots.voice(trials.voice_files[0]))]]
    reasons = {row[1]: row[2] for row in rows if row[0] == "unreadable"}
    assert reasons.keys() == {str(roots.face(trials.face_files[0])), str(silent)}
    assert all(reasons.values()) and "dBFS" in reasons[str(silent)]  # the reader's own one-line reason
    assert main(["protocol", "check", str(tmp_path / "copy"), "--lists", str(tiny.protocol_dir), "--report",
                 str(tmp_path)]) == 2


def test_cli_protocol_commands(tiny, tmp_path, capsys):
    assert main(["protocol", "stats"]) == 0
    out = capsys.readouterr().out
    assert "random_unseenunheard" in out and "30496" in out and "15248" in out
    assert main(["protocol", "stats", "--lists", str(tiny.protocol_dir)]) == 0
    assert "20-29" in capsys.readouterr().out  # the tiny metadata has ages
    assert main(["protocol", "check", str(tiny.root), "--lists", str(tiny.protocol_dir)]) == 0
    assert "present and readable" in capsys.readouterr().out
    assert main(["protocol", "manifest", str(tiny.root), "--lists", str(tiny.protocol_dir),
                 "--out", str(tmp_path)]) == 0
    assert (tmp_path / "train.json").is_file() and (tmp_path / "val.json").is_file()
    capsys.readouterr()
    assert main(["protocol", "manifest", str(tiny.root), "--lists", str(tiny.protocol_dir),
                 "--out", str(tmp_path / "train.json")]) == 2  # a file where the folder should be
    assert capsys.readouterr().err == (f"voxface: error: --out {tmp_path / 'train.json'} is a file; give a folder for "
                                       "train.json and val.json\n")
    with pytest.raises(ProtocolError, match=r"^cannot write the manifest .*train.json/val.json: File exists$"):
        Manifest.load(tmp_path / "train.json").save(tmp_path / "train.json" / "val.json")
    assert main(["protocol", "check", str(tiny.root), "--lists", str(tiny.protocol_dir), "--workers", "0"]) == 2
    assert capsys.readouterr().err == "voxface: error: --workers must be at least 1, got 0\n"
    assert main(["protocol", "check", str(tmp_path / "nowhere")]) == 2  # the root itself is named
    assert capsys.readouterr().err == (f"voxface: error: data root {tmp_path / 'nowhere'} does not exist: is the data "
                                       "set unpacked there?\n")
    (tmp_path / "empty").mkdir()
    assert main(["protocol", "check", str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("voxface: error: audio root") and err.count("\n") == 1
