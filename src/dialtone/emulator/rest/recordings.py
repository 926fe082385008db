"""Recording media at RecordingUrl (public, as Twilio serves it unless HTTP auth is enabled)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dialtone.emulator.rest.errors import not_found
from dialtone.emulator.rest.request import API, switch_of


async def media(request: Request) -> Response:
    switch = switch_of(request)
    sid = request.path_params["Sid"].removesuffix(".wav")
    recording = switch.recordings.get(sid)
    if recording is None or request.path_params["AccountSid"] != switch.credentials.account_sid:
        raise not_found("Recordings", sid)
    return Response(recording.wav, media_type="audio/x-wav")


def routes() -> list[Route]:
    return [Route(f"{API}/Accounts/{{AccountSid}}/Recordings/{{Sid}}", media, methods=["GET"])]
