"""The TwiML the server answers with, always built by `VoiceResponse` (escaping included).

Each answer depends only on its arguments (a line's client name, numbers, a fixed message),
of which there are few: built once and kept (bounded caches), not per webhook."""

from __future__ import annotations

from functools import lru_cache

from twilio.twiml.voice_response import Dial, VoiceResponse

DIAL_TIMEOUT = 60  # seconds, as in the seeds

APOLOGY = "We are sorry, this call cannot be completed right now. Please try again later."


@lru_cache(maxsize=4096)
def dial_client(client_name: str, caller_id: str | None = None) -> str:
    """Ring a browser phone: the seed's `<Dial timeout="60"><Client>…</Client></Dial>`."""
    response = VoiceResponse()
    dial = Dial(timeout=DIAL_TIMEOUT, caller_id=caller_id)
    dial.client(client_name)
    response.append(dial)
    return response.to_xml()


@lru_cache(maxsize=4096)
def dial_number(number: str, caller_id: str) -> str:
    """Ring an external phone from a line's own number."""
    response = VoiceResponse()
    dial = Dial(timeout=DIAL_TIMEOUT, caller_id=caller_id)
    dial.number(number)
    response.append(dial)
    return response.to_xml()


@lru_cache(maxsize=4096)
def refuse(message: str) -> str:
    """Say why, once, and hang up (the seed's `loop="0"` would repeat it forever)."""
    response = VoiceResponse()
    response.say(message, language="en-US")
    response.hangup()
    return response.to_xml()


@lru_cache(maxsize=4096)
def apology() -> str:
    return refuse(APOLOGY)


@lru_cache(maxsize=4096)
def empty() -> str:
    return VoiceResponse().to_xml()
