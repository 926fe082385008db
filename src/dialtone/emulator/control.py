"""The emulator's own control API under /emulator/ (not Twilio's): simulated phones call in,
press keys and hang up; the event log and a live stream let tests and the UI follow calls."""

from __future__ import annotations

import asyncio
import json

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from dialtone import phone
from dialtone.emulator.phones import Behaviour, BehaviourError
from dialtone.emulator.rest.calls import call_json
from dialtone.emulator.switch import RoutingError, Switch

KEEPALIVE = 15.0


def _switch(request: Request) -> Switch:
    return request.app.state.switch


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _body(request: Request) -> dict:
    """JSON or form-encoded; both are accepted so curl stays simple."""
    raw = await request.body()
    if not raw:
        return {}
    if request.headers.get("content-type", "").startswith("application/json"):
        data = json.loads(raw)
        if not isinstance(data, dict):
            raise ValueError("the body must be a JSON object")
        return data
    from urllib.parse import parse_qsl

    return dict(parse_qsl(raw.decode(), keep_blank_values=True))


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
        from_ = _e164(str(data.get("From", "")), "From")
        to = _e164(str(data.get("To", "")), "To")
        hangup_after = data.get("HangupAfter")
        hangup_after = float(hangup_after) if hangup_after not in (None, "") else None
        call = switch.place_inbound_call(from_, to, data.get("ForwardedFrom") or None, hangup_after)
    except (ValueError, json.JSONDecodeError) as exc:
        return _error(400, str(exc))
    except RoutingError as exc:
        return _error(404, exc.message)
    return JSONResponse(call_json(switch, call), status_code=201)


def _call(request: Request):
    return _switch(request).calls.get(request.path_params["sid"])


async def events(request: Request) -> JSONResponse:
    call = _call(request)
    if call is None:
        return _error(404, "no such call")
    return JSONResponse({"call_sid": call.sid, "status": call.status, "events": call.events})


async def digits(request: Request) -> JSONResponse:
    """The far end of a call presses keys: {Digits: "12#"}."""
    call = _call(request)
    if call is None:
        return _error(404, "no such call")
    try:
        pressed = str((await _body(request)).get("Digits", ""))
    except (ValueError, json.JSONDecodeError) as exc:
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
    """The simulated phone on this leg says an audio file: {Url: "file:///…" | "https://…"}."""
    from dialtone.emulator.far_end import say_file

    call = _call(request)
    if call is None:
        return _error(404, "no such call")
    try:
        url = str((await _body(request)).get("Url", ""))
    except (ValueError, json.JSONDecodeError) as exc:
        return _error(400, str(exc))
    if not url.startswith(("http://", "https://", "file://")):
        return _error(400, "Url must be an http(s) or file:// URL")
    switch = _switch(request)
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
    return raw if raw.startswith("client:") else _e164(raw, "address")


async def put_phone(request: Request) -> JSONResponse:
    """How a number (or client:<identity>) behaves when called."""
    try:
        address = _address(request.path_params["address"])
        data = await _body(request)
        behaviour = Behaviour.from_json(data)
    except (ValueError, BehaviourError, json.JSONDecodeError) as exc:
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
                yield f"event: {event['kind']}\ndata: {json.dumps(event, default=str)}\n\n"

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
