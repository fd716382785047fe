"""``voxface app``: its API, and the page itself driven in a real headless Chromium (Debian's, with its driver)."""

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

from voxface.cli import main

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
# The browser test waits on what the server and the page do (started, an answer shown), never on how long that
# takes: a loaded machine only takes longer. This limit is a hang guard alone.
HANG_GUARD_S = 30 * 60


def _trial_files(root):
    from voxface.protocol import DataRoots, load_protocol

    roots = DataRoots.from_root(root / "voxsynth")
    trials = load_protocol(root / "voxsynth" / "protocol").verification("random", "unseenunheard")
    return roots.voice(trials.voice_files[0]), [roots.face(f) for f in trials.face_files[:3]]


def test_the_api_ranks_as_score_does_and_answers_bad_input_in_one_line(tiny_run, trained_checkpoint, tmp_path):
    from fastapi.testclient import TestClient

    from voxface.app import create_app
    from voxface.evaluation.api import VoiceFaceScorer

    root, _ = tiny_run
    client = TestClient(create_app(trained_checkpoint))
    info = client.get("/api/info").json()
    assert info["backend"] is False and len(info["faces"]) >= 3 and len(info["voices"]) >= 3  # the run's test ids
    voice, faces = _trial_files(root)
    files = [("voice", (voice.name, voice.read_bytes()))] + [("faces", (f.name, f.read_bytes())) for f in faces]
    ranking = client.post("/api/rank", files=files).json()["ranking"]
    expected = sorted(VoiceFaceScorer(trained_checkpoint).score(voice, faces), key=lambda m: -m.cosine)
    assert [item["face"] for item in ranking] == [Path(m.face).name for m in expected]
    picked = client.post("/api/rank", data={"voice_id": "0", "face_ids": "0,1,2"}).json()["ranking"]
    assert len(picked) == 3 and all(item["identity"] for item in picked)
    bad = tmp_path / "bad.jpg"
    bad.write_text("not an image")
    cases = {"cannot read image": [("voice", (voice.name, voice.read_bytes())), ("faces", ("bad.jpg", b"junk"))],
             "notes.txt: cannot read audio": [("voice", ("notes.txt", b"hello")),
                                              ("faces", (faces[0].name, faces[0].read_bytes()))],
             "the file is empty": [("voice", ("empty.wav", b"")), ("faces", (faces[0].name, faces[0].read_bytes()))],
             "no faces given": [("voice", (voice.name, voice.read_bytes()))]}
    for message, upload in cases.items():
        answer = client.post("/api/rank", files=upload)
        assert answer.status_code == 400 and message in answer.json()["error"], answer.text
        assert "voxface-app-" not in answer.json()["error"]  # the upload's own name, not where it was written
    unreadable = client.post("/api/rank", files=cases["cannot read image"]).json()["error"]
    assert unreadable.startswith("bad.jpg: cannot read image")
    for form, message in (({"voice_id": "x", "face_ids": "0"}, "no gallery voice 'x'"),
                          ({"voice_id": "0", "face_ids": "0,-1"}, "no gallery face '-1'")):
        answer = client.post("/api/rank", data=form)
        assert answer.status_code == 400 and answer.json()["error"] == message, answer.text
    same_name = [("voice", (voice.name, voice.read_bytes()))] + [("faces", ("face.jpg", f.read_bytes())) for f in faces]
    assert len(client.post("/api/rank", files=same_name).json()["ranking"]) == len(faces)  # no collision
    short = tmp_path / "short.wav"
    import numpy as np
    import soundfile as sf

    sf.write(short, np.zeros(800, dtype=np.float32), 16000)
    answer = client.post("/api/rank", files=[("voice", ("short.wav", short.read_bytes())),
                                             ("faces", (faces[0].name, faces[0].read_bytes()))])
    assert answer.status_code == 400 and "needs at least 0.25 s of audio" in answer.json()["error"]
    assert client.get("/api/info").status_code == 200  # still up


def test_a_missing_checkpoint_stops_the_app_at_start_up(capsys):
    assert main(["app", "--checkpoint", "/nonexistent/best.ckpt"]) == 2
    assert capsys.readouterr().err.strip().startswith("voxface: error: --checkpoint /nonexistent/best.ckpt does not")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                    reason="Debian's chromium and chromium-driver are not installed (.ci/run installs them; here: "
                           "apt-get install -y chromium chromium-driver)")
def test_the_page_in_a_real_browser(tiny_run, trained_checkpoint, tmp_path, capsys):
    import uvicorn
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from voxface.app import create_app

    root, _ = tiny_run
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(trained_checkpoint), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    started = time.monotonic()
    while not server.started:
        if not thread.is_alive():
            pytest.fail("the app's server stopped before it started (its error is in the captured log)")
        if time.monotonic() - started > HANG_GUARD_S:
            pytest.fail(f"hang guard: the app's server has not started after {HANG_GUARD_S // 60} min")
        time.sleep(0.05)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={tmp_path / 'chromium'}", "--window-size=1100,1000"):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        browser.get(f"http://127.0.0.1:{port}/")
        wait = WebDriverWait(browser, HANG_GUARD_S)
        wait.until(lambda b: b.find_element(By.ID, "model").text)  # the page has the server's info
        assert browser.find_elements(By.CSS_SELECTOR, "#gallery-faces img")
        voice, faces = _trial_files(root)
        browser.find_element(By.ID, "voice").send_keys(str(voice))
        browser.find_element(By.ID, "faces").send_keys("\n".join(map(str, faces)))
        browser.find_element(By.ID, "rank").click()
        # the page's answer, whichever it is: a ranking or an error
        wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "#ranking li") or b.find_element(By.ID, "error").text)
        assert browser.find_element(By.ID, "error").text == ""
        assert len(browser.find_elements(By.CSS_SELECTOR, "#ranking li")) == 3
        shown = [li.get_attribute("data-face") for li in browser.find_elements(By.CSS_SELECTOR, "#ranking li")]
        capsys.readouterr()
        assert main(["score", "--checkpoint", str(trained_checkpoint), str(voice), *map(str, faces)]) == 0
        printed = capsys.readouterr().out.strip().splitlines()[1:]
        assert shown == [Path(line.split()[-1]).name for line in printed]  # the order voxface score gives
        browser.save_screenshot(str(tmp_path / "app.png"))
        if os.environ.get("VOXFACE_APP_SCREENSHOT"):  # how README's picture is made: this code path
            browser.save_screenshot(os.environ["VOXFACE_APP_SCREENSHOT"])
        bad = tmp_path / "corrupt.jpg"
        bad.write_bytes(b"\xff\xd8 not really a jpeg")
        browser.find_element(By.ID, "faces").clear()
        browser.find_element(By.ID, "faces").send_keys(str(bad))
        browser.find_element(By.ID, "rank").click()
        wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "#ranking li") or b.find_element(By.ID, "error").text)
        assert "corrupt.jpg: cannot read image" in browser.find_element(By.ID, "error").text
        assert (tmp_path / "app.png").stat().st_size > 10_000
    finally:
        browser.quit()
        server.should_exit = True
        thread.join(timeout=10)


def test_gallery_folders_take_every_format_the_readers_take(tmp_path):
    """One list of extensions: a gallery of MP3/Ogg voices and WebP/TIFF faces is shown, a text file is not."""
    pytest.importorskip("fastapi")
    from voxface.app import Gallery

    for name in ("ada/voice.mp3", "ada/face.webp", "bo/voice.ogg", "bo/face.tif", "bo/notes.txt", "cy/voice.wav",
                 "cy/face.JPG"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    gallery = Gallery.from_folder(tmp_path)
    assert [(p.name, who) for p, who in gallery.voices] == [("voice.mp3", "ada"), ("voice.ogg", "bo"),
                                                            ("voice.wav", "cy")]
    assert [(p.name, who) for p, who in gallery.faces] == [("face.webp", "ada"), ("face.tif", "bo"),
                                                           ("face.JPG", "cy")]
