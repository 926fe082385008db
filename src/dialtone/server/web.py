"""The browser phone (`dialtone/web`) served by the API server: same origin, no CORS."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from dialtone.server import sounds

WEB = Path(__file__).resolve().parent.parent / "web"
SDK = WEB / "node_modules" / "@twilio" / "voice-sdk" / "dist" / "twilio.min.js"
# The page's npm libraries, by the path it loads them from: the Voice SDK, and Google's
# numbering plans (libphonenumber-js, "max" metadata: it tells valid numbers, not only lengths).
VENDOR = {
    "vendor/twilio.min.js": SDK,
    "vendor/libphonenumber.js": WEB
    / "node_modules"
    / "libphonenumber-js"
    / "bundle"
    / "libphonenumber-max.js",
}
_FILES = {
    "/": ("index.html", "text/html"),
    "/app.js": ("app.js", "application/javascript"),
    "/style.css": ("style.css", "text/css"),
}
_HEADERS = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}


async def static(request: Request) -> Response:
    name, media_type = _FILES[request.url.path]
    return FileResponse(WEB / name, media_type=media_type, headers=_HEADERS)


async def vendor(request: Request) -> Response:
    path = VENDOR[request.url.path.removeprefix("/")]
    if not path.exists():
        return PlainTextResponse(
            "the phone's npm packages are not installed: run `npm ci` in src/dialtone/web\n",
            status_code=503,
        )
    return FileResponse(path, media_type="application/javascript", headers=_HEADERS)


async def sound(request: Request) -> Response:
    try:
        data = sounds.wav(request.path_params["name"])
    except KeyError:
        return JSONResponse({"success": False, "error": "no such sound"}, status_code=404)
    return Response(data, media_type="audio/wav", headers={"Cache-Control": "max-age=86400"})


async def config(request: Request) -> JSONResponse:
    """What the page needs to know: where the API is (here), and, against a local emulator,
    where its Voice SDK signaling is (`chunderw`); null means the real Twilio."""
    settings = request.app.state.services.settings
    return JSONResponse(
        {"apiBase": "", "chunderw": settings.voice_signaling},
        headers={"Cache-Control": "no-store"},
    )


def routes() -> list[Route]:
    return [
        *(Route(path, static, methods=["GET"]) for path in _FILES),
        *(Route(f"/{name}", vendor, methods=["GET"]) for name in VENDOR),
        Route("/sounds/{name}.wav", sound, methods=["GET"]),
        Route("/config.json", config, methods=["GET"]),
    ]
