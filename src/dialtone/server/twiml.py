"""The TwiML the server answers with, always built by `VoiceResponse` (escaping included).

Each answer depends only on its arguments (a line's client name, numbers, a fixed message),
of which there are few: built once and kept (bounded caches), not per webhook."""

from __future__ import annotations

from functools import lru_cache

from twilio.twiml.voice_response import Dial, VoiceResponse

DIAL_TIMEOUT = 60  # seconds, as in the seeds
# Every <Dial>'s `action`: Twilio requests it when the dial ends, with DialCallStatus (how it
# ended, which the parent leg's own status cannot tell). Relative, so it resolves against the
# document's URL (`…/retrieve_twiml/call_incoming` → `…/retrieve_twiml/dial_ended`), behind an
# API Gateway stage prefix too. Its answer is an empty <Response/>: the call ends as it would
# without `action`.
DIAL_ACTION = "dial_ended"

APOLOGY = "We are sorry, this call cannot be completed right now. Please try again later."


@lru_cache(maxsize=4096)
def dial_client(client_name: str, caller_id: str | None = None) -> str:
    """Ring a browser phone: the seed's `<Dial timeout="60"><Client>…</Client></Dial>`, with
    `action` (DIAL_ACTION).
    With `caller_id` (a line calling another line) it is an outgoing call: see `dial_number`."""
    response = VoiceResponse()
    dial = Dial(
        action=DIAL_ACTION,
        timeout=DIAL_TIMEOUT,
        caller_id=caller_id,
        answer_on_bridge=True if caller_id else None,
    )
    dial.client(client_name)
    response.append(dial)
    return response.to_xml()


@lru_cache(maxsize=4096)
def dial_number(number: str, caller_id: str) -> str:
    """Ring an external phone from a line's own number. answerOnBridge: the calling browser's
    call is answered only when the callee picks up ("the inbound leg keeps ringing until the
    callee answers"), so the phone shows Ringing… until then and starts its timer on answer."""
    response = VoiceResponse()
    dial = Dial(
        action=DIAL_ACTION, timeout=DIAL_TIMEOUT, caller_id=caller_id, answer_on_bridge=True
    )
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
