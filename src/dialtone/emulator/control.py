"""The emulator's own control API under /emulator/ (not Twilio's): simulated phones call in,
press keys and hang up; the event log and a live stream let tests and the UI follow calls."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from dialtone import phone
from dialtone.emulator.phones import MAX_DIGITS, MAX_URL, Behaviour, BehaviourError, seconds
from dialtone.emulator.rest.calls import call_json
from dialtone.emulator.rest.errors import TwilioApiError
from dialtone.emulator.switch import RoutingError, Switch
from dialtone.emulator.twiml.play import local_media

KEEPALIVE = 15.0
MAX_IDENTITY = 121  # Twilio's limit for a Client identity


def _switch(request: Request) -> Switch:
    return request.app.state.switch


# Twilio's codes where it has one; the control API is the emulator's own otherwise.
_CODES = {400: 20001, 404: 20404, 409: 20409}


def _error(status: int, message: str) -> JSONResponse:
    return TwilioApiError(_CODES.get(status, 20000 + status), message, status).response()


async def _body(request: Request) -> dict[str, Any]:
    """JSON or form-encoded; both are accepted so curl stays simple. Raises ValueError with a
    message for anything that is not one flat object (the access guard bounds the size)."""
    raw = await request.body()
    if not raw:
        return {}
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            data = json.loads(raw)
        except RecursionError:
            raise ValueError("the JSON body is nested too deeply") from None
        except ValueError as exc:  # JSONDecodeError, bad UTF-8, integers past 4,300 digits
            raise ValueError(f"the body is not valid JSON: {str(exc)[:100]}") from None
        if not isinstance(data, dict):
            raise ValueError("the body must be a JSON object")
        return data
    try:
        return dict(parse_qsl(raw.decode(), keep_blank_values=True))
    except UnicodeDecodeError:
        raise ValueError("the form body is not UTF-8") from None


def _text(data: dict[str, Any], name: str, limit: int = 256) -> str:
    """A string parameter ("" when absent); other JSON types are refused, not str()-ed."""
    value = data.get(name, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string")
    if len(value) > limit:
        raise ValueError(f"{name} may be at most {limit} characters")
    return value


def _seconds(data: dict[str, Any], name: str) -> float | None:
    """Optional seconds, as a JSON number or a form string."""
    value = data.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise ValueError(f"{name} must be a number of seconds") from None
    return seconds(value, name)


def _e164(value: str, name: str) -> str:
    try:
        return phone.to_e164(value)
    except phone.InvalidNumber as exc:
        raise ValueError(f"{name}: {exc}") from None


async def place_call(request: Request) -> JSONResponse:
    """An external phone calls a Twilio number: {From, To[, ForwardedFrom, HangupAfter]}."""
    switch = _switch(request)
    try:
        data = await _body(request)
        from_ = _e164(_text(data, "From"), "From")
        to = _e164(_text(data, "To"), "To")
        hangup_after = _seconds(data, "HangupAfter")
        forwarded_from = _text(data, "ForwardedFrom", limit=64) or None
        call = switch.place_inbound_call(from_, to, forwarded_from, hangup_after)
    except ValueError as exc:
        return _error(400, str(exc))
    except RoutingError as exc:
        return _error(404, exc.message)
    return JSONResponse(call_json(switch, call), status_code=201)


def _call(request: Request):
    return _switch(request).calls.get(request.path_params["sid"])


def public_event(event: dict[str, Any]) -> dict[str, Any]:
    """An event as the control API and the console show it: a webhook's answer only when it
    is TwiML (other pages keep their status, content type and size), never the response
    headers (those are for Monitor Alerts, behind the account's credentials)."""
    if event.get("kind") != "webhook" or "response_headers" not in event:
        return event
    hidden = {"response_headers"} if event.get("twiml") else {"response_headers", "response_body"}
    return {k: v for k, v in event.items() if k not in hidden}


async def events(request: Request) -> JSONResponse:
    call = _call(request)
    if call is None:
        return _error(404, "no such call")
    shown = [public_event(e) for e in list(call.events)]
    return JSONResponse({"call_sid": call.sid, "status": call.status, "events": shown})


async def digits(request: Request) -> JSONResponse:
    """The far end of a call presses keys: {Digits: "12#"}."""
    call = _call(request)
    if call is None:
        return _error(404, "no such call")
    try:
        pressed = _text(await _body(request), "Digits", limit=MAX_DIGITS)
    except ValueError as exc:
        return _error(400, str(exc))
    if not pressed or any(c not in "0123456789*#wW" for c in pressed):
        return _error(400, "Digits must be 0-9, *, # (w waits half a second)")
    if call.ended:
        return _error(409, f"the call is {call.status}")
    switch = _switch(request)
    switch.spawn(switch.press(call, pressed), f"press {call.sid}")
    return JSONResponse({"call_sid": call.sid, "digits": pressed})


async def hangup(request: Request) -> JSONResponse:
    """The far end of a call hangs up."""
    call = _call(request)
    if call is None:
        return _error(404, "no such call")
    switch = _switch(request)
    switch.far_end_hangup(call)
    return JSONResponse({"call_sid": call.sid, "status": call.status})


async def heard(request: Request) -> Response:
    """What the simulated phone on this leg heard, as WAV (legs with audio only)."""
    from dialtone.emulator.far_end import heard as heard_wav

    call = _call(request)
    if call is None:
        return _error(404, "no such call")
    wav = heard_wav(call)
    if wav is None:
        return _error(409, "this leg has no simulated phone with audio (real-time emulator only)")
    return Response(wav, media_type="audio/x-wav")


async def play(request: Request) -> JSONResponse:
    """The simulated phone on this leg says an audio file: {Url: "file:///…" | "https://…"}
    (`file://` only inside the configured media folder)."""
    from dialtone.emulator.far_end import say_file

    call = _call(request)
    if call is None:
        return _error(404, "no such call")
    switch = _switch(request)
    try:
        url = _text(await _body(request), "Url", limit=MAX_URL)
        if not url.startswith(("http://", "https://", "file://")):
            raise ValueError("Url must be an http(s) or file:// URL")
        _check_media(switch, url)
    except ValueError as exc:
        return _error(400, str(exc))
    switch.spawn(say_file(switch, call, url), f"phone says {call.sid}")
    return JSONResponse({"call_sid": call.sid, "url": url})


async def phone_token(request: Request) -> JSONResponse:
    """A token for a browser page to be this external phone: calls to the number ring that
    page, and calls it places come from the number."""
    from twilio.jwt.access_token import AccessToken
    from twilio.jwt.access_token.grants import VoiceGrant

    from dialtone.emulator.signaling.devices import phone_identity

    try:
        number = _e164(request.path_params["address"], "number")
    except ValueError as exc:
        return _error(400, str(exc))
    switch = _switch(request)
    if switch.number_for(number) is not None:
        return _error(
            409, f"{number} is one of the account's Twilio numbers, not an external phone"
        )
    credentials = switch.credentials
    identity = phone_identity(number)
    token = AccessToken(
        credentials.account_sid,
        credentials.api_key,
        credentials.api_secret,
        identity=identity,
        ttl=3600,
    )
    token.add_grant(VoiceGrant(incoming_allow=True))
    return JSONResponse(
        {"number": number, "identity": identity, "token": token.to_jwt(), "ttl": 3600}
    )


async def list_phones(request: Request) -> JSONResponse:
    return JSONResponse(
        {"phones": [{"address": a, **b.to_json()} for a, b in _switch(request).phones.items()]}
    )


def _address(raw: str) -> str:
    if raw.startswith("client:"):
        identity = raw.removeprefix("client:")
        if not identity or len(identity) > MAX_IDENTITY or not identity.isprintable():
            raise ValueError(f"a client identity is 1 to {MAX_IDENTITY} printable characters")
        return raw
    return _e164(raw, "address")


def _check_media(switch: Switch, url: str) -> None:
    """Refuse a `file://` URL outside the media folder now, with the reason, rather than
    when the phone tries to say it."""
    if url.startswith("file://"):
        local_media(url, switch.config.media_folder)


async def put_phone(request: Request) -> JSONResponse:
    """How a number (or client:<identity>) behaves when called."""
    try:
        address = _address(request.path_params["address"])
        data = await _body(request)
        behaviour = Behaviour.from_json(data)
        if behaviour.say_audio:
            _check_media(_switch(request), behaviour.say_audio)
    except (ValueError, BehaviourError) as exc:
        return _error(400, str(exc))
    _switch(request).phones.set(address, behaviour)
    return JSONResponse({"address": address, **behaviour.to_json()})


async def delete_phone(request: Request) -> Response:
    try:
        address = _address(request.path_params["address"])
    except ValueError as exc:
        return _error(400, str(exc))
    if not _switch(request).phones.remove(address):
        return _error(404, "no behaviour set for that address")
    return Response(status_code=204)


async def stream(request: Request) -> StreamingResponse:
    """Server-sent events: every call event as it happens (optionally ?call=CA…)."""
    switch = _switch(request)
    only = request.query_params.get("call")

    async def feed():
        async with switch.bus.subscribe() as queue:
            yield ": connected\n\n"
            while True:
                try:
                    event = await asyncio.wait_for(queue.get(), KEEPALIVE)
                except TimeoutError:
                    yield ": keepalive\n\n"
                    continue
                if event is None:
                    return
                if only and event["call_sid"] != only:
                    continue
                data = json.dumps(public_event(event), default=str)
                yield f"event: {event['kind']}\ndata: {data}\n\n"

    return StreamingResponse(
        feed(), media_type="text/event-stream", headers={"Cache-Control": "no-store"}
    )


async def health(request: Request) -> JSONResponse:
    switch = _switch(request)
    live = sum(1 for call in switch.calls.values() if not call.ended)
    return JSONResponse({"status": "ok", "calls": len(switch.calls), "live_calls": live})


def routes() -> list[Route]:
    return [
        Route("/emulator/health", health, methods=["GET"]),
        Route("/emulator/calls", place_call, methods=["POST"]),
        Route("/emulator/calls/{sid}/events", events, methods=["GET"]),
        Route("/emulator/calls/{sid}/digits", digits, methods=["POST"]),
        Route("/emulator/calls/{sid}/hangup", hangup, methods=["POST"]),
        Route("/emulator/calls/{sid}/heard.wav", heard, methods=["GET"]),
        Route("/emulator/calls/{sid}/play", play, methods=["POST"]),
        Route("/emulator/phones", list_phones, methods=["GET"]),
        Route("/emulator/phones/{address}", put_phone, methods=["PUT"]),
        Route("/emulator/phones/{address}/token", phone_token, methods=["POST"]),
        Route("/emulator/phones/{address}", delete_phone, methods=["DELETE"]),
        Route("/emulator/events", stream, methods=["GET"]),
    ]
