"""``voxface app``: a local web page to try a trained model and browse its results (FastAPI, one small page).

Two tabs:

- **Try it**: upload a voice clip (or pick one from the gallery) and faces (uploads, or picked from the
  gallery); the page ranks the faces with the same ``VoiceFaceScorer`` (and order) as ``voxface score``: by the
  calibrated probability of a match when the run has a fitted backend, else by the cosine. The gallery is, by
  default, one voice and one face of each unseen-unheard test identity of the run's own data (the demo's
  VoxSynth), shown without names; "reveal" shows whose they are.
- **Results**: an evaluation folder's reports (``report.md``, the demo's ``summary.md``) and its plots.

The model is loaded once, at start-up; bad input gets a message on the page and the server stays up.
"""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, File, Form, HTTPException, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse

from voxface.errors import ConfigError, MediaError, VoxfaceError
from voxface.formats import AUDIO_SUFFIXES, IMAGE_SUFFIXES
from voxface.media.cache import file_size

log = logging.getLogger("voxface")
GALLERY_SIZE = 24  # identities shown from the run's own test data


@dataclass
class Gallery:
    """Voices and faces a visitor can pick, each with the identity the page hides until "reveal"."""

    voices: list[tuple[Path, str]] = field(default_factory=list)
    faces: list[tuple[Path, str]] = field(default_factory=list)
    note: str = ""  # why the gallery is empty, when it is

    @classmethod
    def from_folder(cls, folder: Path) -> Gallery:
        """``folder/<identity>/<file>`` or ``folder/<file>`` (the file's stem is then its identity)."""
        files = sorted(p for p in folder.rglob("*") if p.is_file())
        if not files:
            raise ConfigError(f"--gallery {folder} holds no images or audio files")

        def identity(path: Path) -> str:
            return path.parent.name if path.parent != folder else path.stem

        return cls([(p, identity(p)) for p in files if p.suffix.lower() in AUDIO_SUFFIXES],
                   [(p, identity(p)) for p in files if p.suffix.lower() in IMAGE_SUFFIXES])

    @classmethod
    def from_run(cls, data_root: str, lists: str, size: int = GALLERY_SIZE) -> Gallery:
        """One voice and one face (from another video) of each of the first ``size`` unseen-unheard identities."""
        from voxface.protocol import DataRoots, load_protocol

        if not Path(data_root).is_dir():
            raise ConfigError(f"the run's data.root {data_root} does not exist")
        protocol, roots = load_protocol(lists), DataRoots.from_root(data_root)
        trials = protocol.verification("random", "unseenunheard")
        voices, faces = {}, {}
        for v, f, vs, fs in zip(trials.voice_files, trials.face_files, trials.voice_speakers, trials.face_speakers,
                                strict=True):
            voices.setdefault(int(vs), roots.voice(v))
            faces.setdefault(int(fs), roots.face(f))
        shared = [i for i in sorted(voices) if i in faces and voices[i].is_file() and faces[i].is_file()][:size]
        if not shared:
            raise ConfigError(f"the run's data.root {data_root} holds no voice and face of a test identity in "
                              f"{lists}")
        name = {i: protocol.identity_of_number[i].name for i in shared}
        return cls([(voices[i], name[i]) for i in shared], [(faces[i], name[i]) for i in shared])


def create_app(checkpoint: str | Path, gallery: str | Path | None = None, eval_dir: str | Path | None = None,
               backend: str | Path | None = None, prior: float = 0.5, use_backend: bool = True):
    """The FastAPI application; loads the model once. ``backend`` defaults to ``RUN/backend`` when that exists;
    ``use_backend=False`` (``--no-backend``) ranks by the cosine alone."""
    from voxface.evaluation.api import VoiceFaceScorer, default_backend
    from voxface.evaluation.backend import NO_BACKEND

    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise ConfigError(f"--checkpoint {checkpoint} does not exist (a 'voxface train' .ckpt, e.g. "
                          "RUN/checkpoints/best.ckpt)")
    backend = None if not use_backend else backend if backend is not None else default_backend(checkpoint)
    scorer = VoiceFaceScorer(checkpoint, backend=backend, prior=prior, without_backend=NO_BACKEND,
                             crop_option=None)  # the app scores whole clips
    if gallery is not None:
        if not Path(gallery).is_dir():
            raise ConfigError(f"--gallery {gallery} is not a folder")
        pictures = Gallery.from_folder(Path(gallery))
    else:
        try:
            pictures = Gallery.from_run(scorer.config.data.root, scorer.config.data.lists)
        except VoxfaceError as err:  # the run's data are not here: uploads only, and the page and log say why
            pictures = Gallery(note=f"no gallery: {err}; pass --gallery FOLDER (faces and voices to pick from) "
                                    "or upload files")
            log.warning("%s", pictures.note)
    results = Path(eval_dir) if eval_dir else None
    if results is not None and not results.is_dir():
        raise ConfigError(f"--eval {results} is not a folder (an 'evaluate --out' or demo folder)")
    page = resources.files("voxface").joinpath("app_page.html").read_text()
    app = FastAPI(title="voxface")

    @app.get("/", response_class=HTMLResponse)
    def index() -> str:
        return page

    @app.get("/api/info")
    def info() -> dict:
        return {"checkpoint": str(checkpoint), "backend": scorer.backend is not None, "prior": prior,
                "voices": [{"id": i, "url": f"/gallery/voice/{i}", "identity": who}
                           for i, (_, who) in enumerate(pictures.voices)],
                "faces": [{"id": i, "url": f"/gallery/face/{i}", "identity": who}
                          for i, (_, who) in enumerate(pictures.faces)],
                "results": results is not None, "gallery_note": pictures.note}

    @app.get("/gallery/{kind}/{index}")
    def gallery_file(kind: str, index: int) -> FileResponse:
        items = {"voice": pictures.voices, "face": pictures.faces}.get(kind)
        if items is None or not 0 <= index < len(items):
            raise HTTPException(404, "no such gallery item")
        return FileResponse(items[index][0])

    @app.post("/api/rank")
    async def rank(voice: Annotated[UploadFile | None, File()] = None,
                   faces: Annotated[list[UploadFile] | None, File()] = None,
                   voice_id: Annotated[str, Form()] = "", face_ids: Annotated[str, Form()] = "") -> JSONResponse:
        with tempfile.TemporaryDirectory(prefix="voxface-app-") as folder:
            try:
                voice_path, voice_label = await _voice(voice, voice_id, pictures, Path(folder))
                chosen = await _faces(faces or [], face_ids, pictures, Path(folder))
                matches = scorer.score(voice_path, [item[0] for item in chosen])
            except VoxfaceError as err:  # a message on the page; the server stays up
                return JSONResponse({"error": _plain(str(err), folder)}, status_code=400)
        order = sorted(range(len(matches)), key=lambda i: -matches[i].rank_score)  # as 'voxface score' ranks
        return JSONResponse({"voice": voice_label, "ranking": [
            {"face": chosen[i][1], "identity": chosen[i][2], "cosine": matches[i].cosine,
             "probability": matches[i].probability, "url": chosen[i][3]} for i in order]})

    @app.get("/api/results")
    def results_index() -> dict:
        if results is None:
            return {"reports": [], "plots": []}
        reports = [{"name": str(p.relative_to(results)), "text": p.read_text()}
                   for name in ("summary.md", "report.md", "comparison.md")
                   for p in sorted(results.rglob(name))]
        plots = [str(p.relative_to(results)) for p in sorted(results.rglob("*.png"))]
        return {"reports": reports, "plots": [{"name": p, "url": f"/results/{p}"} for p in plots]}

    @app.get("/results/{relative:path}")
    def results_file(relative: str) -> FileResponse:
        target = (results / relative).resolve() if results else None
        if target is None or results.resolve() not in target.parents or not target.is_file():
            raise HTTPException(404, "no such results file")
        return FileResponse(target)

    return app


async def _save(upload, folder: Path) -> Path:
    """An upload written under its own name (its suffix tells the readers what it is), in a subfolder of its own
    in ``folder`` so that two uploads of one name do not collide."""
    name = Path(upload.filename or "upload").name
    target = folder / str(len(list(folder.iterdir()))) / name
    target.parent.mkdir()
    with target.open("wb") as handle:
        shutil.copyfileobj(upload.file, handle)
    if file_size(target) == 0:
        raise MediaError(f"{name}: the file is empty")
    return target


async def _voice(upload, voice_id: str, gallery: Gallery, folder: Path) -> tuple[Path, str]:
    if upload is not None and upload.filename:
        return await _save(upload, folder), upload.filename  # read_voice says what it cannot read, and why
    if voice_id.strip():
        index = _gallery_index(voice_id, len(gallery.voices), "voice")
        return gallery.voices[index][0], f"gallery voice {index + 1}"
    raise MediaError(f"no voice given: upload a clip ({' '.join(AUDIO_SUFFIXES)}) or pick one from the gallery")


async def _faces(uploads: list, face_ids: str, gallery: Gallery, folder: Path) -> list[tuple[Path, str, str, str]]:
    """(path, label, identity, url) of every face to rank."""
    chosen = []
    for upload in uploads:
        if upload.filename:
            path = await _save(upload, folder)
            chosen.append((path, upload.filename, "", ""))
    for token in filter(None, (t.strip() for t in face_ids.split(","))):
        index = _gallery_index(token, len(gallery.faces), "face")
        chosen.append((gallery.faces[index][0], f"gallery face {index + 1}", gallery.faces[index][1],
                       f"/gallery/face/{index}"))
    if not chosen:
        raise MediaError("no faces given: upload images or pick faces from the gallery")
    return chosen


def _gallery_index(token: str, size: int, kind: str) -> int:
    """A gallery item's index from the form, or one line saying there is no such item."""
    index = int(token.strip()) if token.strip().isdigit() else -1
    if not 0 <= index < size:
        raise MediaError(f"no gallery {kind} {token.strip()!r}")
    return index


def _plain(message: str, folder: str) -> str:
    """A reader's message with the uploads' own names, not the temporary subfolders they were written to."""
    return re.sub(re.escape(folder) + r"/\d+/", "", message)


def serve(checkpoint: str | Path, gallery: str | Path | None, eval_dir: str | Path | None,
          backend: str | Path | None, host: str, port: int, use_backend: bool = True) -> None:
    """``voxface app``: build the application (the model loads now) and serve it until Ctrl-C."""
    import uvicorn

    app = create_app(checkpoint, gallery, eval_dir, backend, use_backend=use_backend)
    print(f"voxface app on http://{host}:{port} (Ctrl-C stops it)", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
