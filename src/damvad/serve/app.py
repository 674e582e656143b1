"""The web side of ``damvad serve`` (FastAPI on uvicorn): the page and the REST API under ``/api/``.

Access: with a token set (required when bound beyond loopback) every request needs it, as
``Authorization: Bearer TOKEN``, the ``damvad_token`` cookie (set by opening ``/?token=TOKEN`` once), or
``?token=TOKEN``. Without one (loopback only), requests must name a loopback ``Host`` (a web page
elsewhere cannot reach the API through DNS rebinding). POSTs need ``X-Requested-With: damvad`` or a video
body (no cross-site form can send either). Files are served only from the package's static folder and from
event folders named by integer ids; uploads are size-limited, streamed to a private temporary folder,
checked as video by decoding them, and deleted after scoring.
"""

from __future__ import annotations

import secrets
import shutil
from importlib.resources import files
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.middleware.trustedhost import TrustedHostMiddleware

from damvad import __version__
from damvad.serve.media import CLIP_FRAMES
from damvad.serve.monitor import Monitor

COOKIE = "damvad_token"
STATIC = {"app.js": "text/javascript", "style.css": "text/css", "index.html": "text/html",
          "favicon.svg": "image/svg+xml"}
LOOPBACK_HOSTS = ["127.0.0.1", "localhost", "::1", "[::1]"]
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def _supplied_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.cookies.get(COOKIE) or request.query_params.get("token")


def build_app(monitor: Monitor, token: str | None, loopback_only: bool = True) -> FastAPI:
    """The app over ``monitor``; ``token`` None: open, for loopback Host names only."""

    def authorized(request: Request) -> None:
        if token is None:
            return
        supplied = _supplied_token(request)
        if supplied is None or not secrets.compare_digest(supplied.encode(), token.encode()):
            raise HTTPException(401, "a valid token is needed", headers={"WWW-Authenticate": "Bearer"})

    app = FastAPI(title="damvad", version=__version__, docs_url=None, redoc_url=None, openapi_url=None,
                  dependencies=[Depends(authorized)])
    if token is None and loopback_only:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=LOOPBACK_HOSTS)

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Response:
        response = await call_next(request)
        response.headers.update(HEADERS)
        return response

    static = {name: (files("damvad.serve") / "static" / name).read_bytes() for name in STATIC}

    @app.get("/", include_in_schema=False)
    def index(request: Request) -> Response:
        if token is not None and request.query_params.get("token"):  # log in once, keep the token out of the URL
            response = RedirectResponse("/", status_code=303)
            response.set_cookie(COOKIE, token, httponly=True, samesite="strict")
            return response
        return Response(static["index.html"], media_type=STATIC["index.html"], headers={"Cache-Control": "no-store"})

    @app.get("/static/{name}", include_in_schema=False)
    def asset(name: str) -> Response:
        if name not in STATIC or name == "index.html":
            raise HTTPException(404)
        return Response(static[name], media_type=STATIC[name])

    _api(app, monitor)
    return app


def _api(app: FastAPI, monitor: Monitor) -> None:
    def find_camera(name: str) -> Any:
        cam = monitor.cameras.get(name)
        if cam is None:
            raise HTTPException(404, f"no camera {name!r}")
        return cam

    @app.get("/api/health")
    def health() -> dict[str, Any]:
        return {**monitor.health(), "version": __version__}

    @app.get("/api/cameras")
    def cameras() -> list[dict[str, Any]]:
        return [cam.snapshot() for cam in monitor.cameras.values()]

    @app.get("/api/cameras/{name}/thumbnail.jpg")
    def camera_thumbnail(name: str) -> Response:
        data = find_camera(name).thumbnail()
        if data is None:
            raise HTTPException(404, "no frame yet")
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    @app.get("/api/scores")
    def scores(since: float = 0.0, camera: str | None = None) -> dict[str, Any]:
        """Each camera's clips scored after ``since`` (unix seconds); ``now`` is the next ``since``."""
        import time

        chosen = [find_camera(camera)] if camera else list(monitor.cameras.values())
        return {"now": time.time(), "cameras": {c.spec.name: c.scores_since(since) for c in chosen}}

    @app.get("/api/events")
    def events(camera: str | None = None, since: float | None = None, before_id: int | None = None,
               limit: int = 50) -> list[dict[str, Any]]:
        rows = monitor.store.events(camera, since, before_id, max(1, min(limit, 500)))
        return [e.to_dict() for e in rows]

    @app.get("/api/events/{event_id}")
    def event(event_id: int) -> dict[str, Any]:
        found = monitor.store.get(event_id)
        if found is None:
            raise HTTPException(404, f"no event {event_id}")
        return found.to_dict()

    @app.post("/api/events/{event_id}/ack")
    def acknowledge(event_id: int, request: Request) -> dict[str, Any]:
        if request.headers.get("x-requested-with") != "damvad":
            raise HTTPException(403, "send the header X-Requested-With: damvad")
        found = monitor.acknowledge(event_id)
        if found is None:
            raise HTTPException(404, f"no event {event_id}")
        return found.to_dict()

    @app.get("/api/events/{event_id}/thumbnail.jpg")
    def event_thumbnail(event_id: int) -> FileResponse:
        return _picture(monitor, event_id, "thumb.jpg")

    @app.get("/api/events/{event_id}/frames/{index}.jpg")
    def event_frame(event_id: int, index: int) -> FileResponse:
        if not 0 <= index < CLIP_FRAMES:
            raise HTTPException(404)
        return _picture(monitor, event_id, f"{index:03d}.jpg")

    @app.post("/api/score")
    async def score(request: Request) -> JSONResponse:
        return await _score_upload(monitor, request)


def _picture(monitor: Monitor, event_id: int, name: str) -> FileResponse:
    path = monitor.media.folder(event_id) / name  # an int and a fixed name: never outside media/
    if not path.is_file():
        raise HTTPException(404, "no such picture (not written yet, or removed by retention)")
    return FileResponse(path, media_type="image/jpeg")


async def _score_upload(monitor: Monitor, request: Request) -> JSONResponse:
    """Score a clip sent as the request body (``Content-Type: video/*`` or ``application/octet-stream``)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if not (kind.startswith("video/") or kind == "application/octet-stream"):
        raise HTTPException(415, "send the clip as the body, Content-Type video/* or application/octet-stream")
    limit = int(monitor.cfg.upload_mb * 1e6)
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise HTTPException(413, f"uploads are limited to {monitor.cfg.upload_mb:g} MB")
    folder = monitor.upload_folder()
    try:
        path, size = folder / "upload", 0
        with open(path, "wb") as fh:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise HTTPException(413, f"uploads are limited to {monitor.cfg.upload_mb:g} MB")
                fh.write(chunk)
        if size == 0:
            raise HTTPException(400, "empty upload")
        try:
            result = await run_in_threadpool(monitor.score_file, path)
        except ValueError as exc:  # not a video, or not decodable: said without the server's paths
            raise HTTPException(400, str(exc).replace(str(path), "upload")) from None
        return JSONResponse({"bytes": size, **result})
    finally:
        shutil.rmtree(folder, ignore_errors=True)
