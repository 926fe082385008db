"""What the emulator serves for a first call without any app of one's own: seed 003's demo
TwiML (`demo.twilio.com/docs/voice.xml` on Twilio) at `/demo/voice.xml`, with its music as a
short built-in chime, so the banner's `curl` works as printed. And the root page: the way to
the dev console instead of a 404."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from dialtone.emulator.access import CONSOLE

VOICE_XML = "/demo/voice.xml"
CHIME = "/demo/classic.wav"
# What Twilio's demo document says, word for word (seed 003).
GREETING = "Thanks for trying our documentation. Enjoy!"
XML = "application/xml"


def voice_xml_url(base_url: str) -> str:
    return base_url.rstrip("/") + VOICE_XML


async def voice_xml(request: Request) -> Response:
    """Seed 003's document; Twilio fetches it with POST (or GET), so both are answered."""
    from twilio.twiml.voice_response import VoiceResponse

    response = VoiceResponse()
    response.say(GREETING, voice="alice")
    response.play(str(request.url_for("demo_chime")))
    return Response(str(response), media_type=XML)


async def chime(request: Request) -> Response:
    """A second of C-E-G, standing in for the demo's classic.mp3."""
    from dialtone.emulator.media import audio

    notes = (261.63, 329.63, 392.0)
    pcm = b"".join(audio.tone(hz, 0.3, 0.3) + audio.silence(0.03) for hz in notes)
    return Response(audio.to_wav(pcm), media_type="audio/wav")


async def root(request: Request) -> Response:
    """`/` leads to the console; a `?key=` goes along, so the banner's key flow still works
    (the console turns it into a cookie, or asks for it)."""
    query = urlencode(list(request.query_params.multi_items()))
    return RedirectResponse(CONSOLE + (f"?{query}" if query else ""), status_code=303)


def routes() -> list[Route]:
    return [
        Route("/", root, methods=["GET", "HEAD"]),
        Route(VOICE_XML, voice_xml, methods=["GET", "POST"]),
        Route(CHIME, chime, methods=["GET", "HEAD"], name="demo_chime"),
    ]
