"""The dev console, served by the emulator at /console: be an external phone in the browser
(real microphone and speaker through the emulator), and inspect calls as a live sequence
diagram of Twilio Client ↔ Twilio ↔ API server ↔ external phone, drawn from the event log."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

WEB = Path(__file__).resolve().parent / "web"
# The same npm bundle the phone uses (a shared static file, not server code).
SDK = (
    Path(__file__).resolve().parents[1]
    / "web"
    / "node_modules"
    / "@twilio"
    / "voice-sdk"
    / "dist"
    / "twilio.min.js"
)
_FILES = {
    "/console": ("console.html", "text/html"),
    "/console.js": ("console.js", "application/javascript"),
}


async def static(request: Request) -> Response:
    name, media_type = _FILES[request.url.path]
    return FileResponse(WEB / name, media_type=media_type, headers={"Cache-Control": "no-cache"})


async def sdk(request: Request) -> Response:
    if not SDK.exists():
        return PlainTextResponse(
            "the Voice SDK is not installed: npm ci in src/dialtone/web\n", 503
        )
    return FileResponse(SDK, media_type="application/javascript")


async def sound(request: Request) -> Response:
    """Short local tones for the SDK (it must never fetch Twilio's CDN)."""
    from dialtone.emulator.media import audio

    name = request.path_params["name"]
    pcm = (
        audio.tone(440, 1.0, 0.2) + audio.silence(2.0)
        if name == "incoming"
        else audio.tone(600, 0.1, 0.2)
    )
    return Response(audio.to_wav(pcm), media_type="audio/wav")


async def config(request: Request) -> JSONResponse:
    switch = request.app.state.switch
    return JSONResponse(
        {
            "chunderw": switch.config.signal_host,
            "numbers": [n.phone_number for n in switch.numbers.values()],
        }
    )


async def calls(request: Request) -> JSONResponse:
    """Recent calls for the inspector's picker, newest first (parents with their legs)."""
    switch = request.app.state.switch
    listed = [
        {
            "sid": c.sid,
            "parent": c.parent_sid,
            "from": c.from_,
            "to": c.to,
            "status": c.status,
            "direction": c.direction,
            "created": c.date_created.isoformat(),
        }
        for c in list(switch.calls.values())[-100:]
    ]
    return JSONResponse({"calls": listed[::-1]})


def routes() -> list[Route]:
    return [
        *(Route(path, static, methods=["GET"]) for path in _FILES),
        Route("/console/vendor/twilio.min.js", sdk, methods=["GET"]),
        Route("/console/sounds/{name}.wav", sound, methods=["GET"]),
        Route("/console/config.json", config, methods=["GET"]),
        Route("/console/calls.json", calls, methods=["GET"]),
    ]
