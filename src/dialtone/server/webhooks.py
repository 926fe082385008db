"""Twilio's webhooks: signed form requests in, TwiML out.

Every handler runs behind `twilio_webhook`, which checks `X-Twilio-Signature` against
the public URL (403, no TwiML, when it fails) and turns any failure inside the handler
(database down included) into safe TwiML: an apology and a hang-up. Two only record
(status callbacks, and `dial_ended`, every <Dial>'s action): what they cannot store is
logged for replay instead; `dial_ended` answers an empty <Response/> whatever happens.

A call's lookups and its first history row are one transaction, committed before the TwiML
is sent (Lambda may freeze the process right after): when the row cannot be written, the
caller hears the apology rather than a call the history would never show.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from functools import lru_cache, partial
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from starlette.datastructures import Headers, ImmutableMultiDict
from starlette.responses import PlainTextResponse, Response
from starlette.types import Receive, Scope, Send

from dialtone import logs, phone
from dialtone.server import twiml
from dialtone.server.call_routing import (
    LineAddress,
    line_by_client_name,
    line_by_number,
    note_call,
    route_incoming,
)
from dialtone.server.db import bounded
from dialtone.server.dbapi import Connection
from dialtone.server.signature import public_base_url, public_request_url

if TYPE_CHECKING:
    from dialtone.server.app import Services

log = logging.getLogger("dialtone.server.webhooks")

XML = "application/xml"
# Twilio's largest requests (a status callback with every optional parameter) are a few KiB;
# the route answers 413 past this without reading the rest (see app.py).
MAX_BODY = 64 * 1024

Params = ImmutableMultiDict
# A TwiML webhook's work, on the request's own database connection in one transaction
# (Database.run): the lookups and the history row, committed before the answer is sent.
Handler = Callable[["Services", Params, Connection], Awaitable[tuple[str, dict]]]

# The called number of an incoming call is one of a few lines: parse each spelling once.
_e164 = lru_cache(maxsize=4096)(phone.to_e164)


class BadWebhook(ValueError):
    """A signed request that still lacks what the handler needs: 400 with the message."""


class Refusal(Exception):
    """The call cannot go ahead; `spoken` is what the caller hears."""

    def __init__(self, reason: str, spoken: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.spoken = spoken


async def _body(receive: Receive) -> bytes:
    """The request's body. At most MAX_BODY bytes: the route's limit wraps `receive`, stops
    reading and answers 413 past it."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _params(scope: Scope, receive: Receive) -> Params:
    query = scope["query_string"].decode("latin-1")
    if scope["method"] == "GET":
        return ImmutableMultiDict(parse_qsl(query, keep_blank_values=True))
    body = (await _body(receive)).decode("utf-8", errors="replace")
    # Blank values (To=, FromCity=) are signed too: keep them.
    return ImmutableMultiDict(parse_qsl(body, keep_blank_values=True))


class TwilioWebhook:
    """A webhook as a plain ASGI app (Starlette's Route runs it as is): no Request object and
    no per-request exception wrapper, which are a good part of a webhook's cost. Every failure
    inside is answered here (safe TwiML, 400 or 403), so nothing escapes to Starlette but the
    route's own 413."""

    def __init__(
        self, name: str, handler: Handler | Callable[[Services, Params], tuple[str, dict]]
    ) -> None:
        self.name = name
        self.endpoint = _endpoint(name, handler)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.endpoint(scope, receive)
        await response(scope, receive, send)


def twilio_webhook(
    name: str, handler: Handler | Callable[[Services, Params], tuple[str, dict]]
) -> TwilioWebhook:
    return TwilioWebhook(name, handler)


def _endpoint(
    name: str, handler: Handler | Callable[[Services, Params], tuple[str, dict]]
) -> Callable[[Scope, Receive], Awaitable[Response]]:
    async def endpoint(scope: Scope, receive: Receive) -> Response:
        started = time.perf_counter()
        services: Services = scope["app"].state.services
        params = await _params(scope, receive)
        call_sid = params.get("CallSid", "")[:34]
        # POST signs URL + params; GET signs the URL (whose query holds the params) alone.
        base = public_base_url(services.settings.public_url, scope)
        url = public_request_url(base or "", scope["path"], scope["query_string"].decode())
        signed = {} if scope["method"] == "GET" else params
        signature = Headers(scope=scope).get("x-twilio-signature")
        if base is None or not services.validator.is_valid(url, signed, signature):
            logs.event(
                log,
                "webhook_signature_invalid",
                level=logging.WARNING,
                webhook=name,
                call_sid=call_sid,
                url=url,
                reason="signature mismatch"
                if base
                else "no public URL known for this request: set DIALTONE_PUBLIC_URL",
                client=scope["client"][0] if scope.get("client") else None,
            )
            return PlainTextResponse("invalid or missing X-Twilio-Signature\n", status_code=403)
        try:
            # Bounded: Twilio waits 15 s in all, and the apology must reach it before.
            if handler is status_callback or handler is dial_ended:
                body, fields = await bounded(handler, services, params)
            else:
                # An incoming call's work is one statement on PostgreSQL (route_incoming).
                body, fields = await services.db.run(
                    partial(handler, services, params), one_statement=handler is call_incoming
                )
        except BadWebhook as exc:
            logs.event(
                log,
                "webhook_rejected",
                level=logging.WARNING,
                webhook=name,
                call_sid=call_sid,
                reason=str(exc),
            )
            if handler is dial_ended:
                # The caller may still be on the line: no error for them to hear (a 4xx would
                # make Twilio play its application error); the call ends as without `action`.
                return Response(twiml.empty(), media_type=XML)
            return PlainTextResponse(f"{exc}\n", status_code=400)
        except Exception as exc:
            ms = round((time.perf_counter() - started) * 1000, 1)
            if handler is status_callback:
                return _not_stored(params, exc, ms)
            if handler is dial_ended:
                return _dial_not_stored(params, exc, ms)
            logs.event(
                log,
                "webhook_failed",
                level=logging.ERROR,
                webhook=name,
                call_sid=call_sid,
                error=type(exc).__name__,
                ms=ms,
            )
            return Response(twiml.apology(), media_type=XML)
        logs.event(
            log,
            f"webhook_{name}",
            webhook=name,
            call_sid=call_sid,
            **fields,
            ms=round((time.perf_counter() - started) * 1000, 1),
        )
        return Response(body, media_type=XML)

    return endpoint


async def _note(
    connection: Connection,
    params: Params,
    line_number: str,
    to: str,
    refusal: str | None = None,
) -> None:
    await note_call(
        connection,
        params.get("CallSid", ""),
        line_number,
        params.get("From", ""),
        to,
        params.get("Direction", "inbound"),
        refusal,
    )


def _refused(exc: Refusal, **fields: object) -> tuple[str, dict]:
    return twiml.refuse(exc.spoken), {"outcome": "refused", "reason": exc.reason, **fields}


async def call_incoming(
    services: Services, params: Params, connection: Connection
) -> tuple[str, dict]:
    """A phone called one of our numbers: ring the browser phone of that line."""
    called = params.get("To") or params.get("Called") or ""
    try:
        e164 = _e164(called)
    except phone.InvalidNumber:
        line = None
    else:
        line = await route_incoming(
            connection,
            e164,
            params.get("CallSid", ""),
            params.get("From", ""),
            params.get("Direction", "inbound"),
        )
    if line is None:
        return _refused(
            Refusal(
                "number not registered",
                "An error occurred. The number you called is not connected to a phone. Goodbye.",
            ),
            to=called[:32],
        )
    return twiml.dial_client(line.client_name), {
        "outcome": "dial_client",
        "to": line.phone_number,
        "client": line.client_name,
    }


async def _caller_line(connection: Connection, params: Params) -> LineAddress:
    sender = params.get("From", "")
    if not sender.startswith("client:"):
        raise Refusal(
            "caller is not a client",
            "This application places calls only for registered phones. Goodbye.",
        )
    line = await line_by_client_name(connection, sender.removeprefix("client:"))
    if line is None:
        raise Refusal("client not registered", "Your phone is not registered. Goodbye.")
    return line


def _check_caller_id(line: LineAddress, claimed: str, region: str | None) -> None:
    """A `callerPhoneNumber` parameter may only repeat the line's own number."""
    if not claimed:
        return
    try:
        same = phone.to_e164(claimed, region) == line.phone_number
    except phone.InvalidNumber:
        same = False
    if not same:
        raise Refusal(
            "caller id does not belong to the line",
            "The caller number does not belong to this phone. Goodbye.",
        )


async def call_outgoing(
    services: Services, params: Params, connection: Connection
) -> tuple[str, dict]:
    """A browser phone dialled out through the TwiML App: route it from the line's own number."""
    line = None
    try:
        line = await _caller_line(connection, params)
        region = phone.region_of(line.phone_number) or services.settings.default_region
        _check_caller_id(line, params.get("callerPhoneNumber", ""), region)
        dialled = params.get("callOutgoingPhoneNumber") or params.get("To") or ""
        if not dialled.strip():
            raise Refusal("no destination", "No number was dialled. Goodbye.")
        try:
            number = phone.parse(dialled, region)
        except phone.InvalidNumber as exc:
            raise Refusal(
                f"invalid destination: {exc.reason}",
                "The number you dialled is not a valid phone number. Goodbye.",
            ) from None
        destination = phone.format_e164(number)
        if destination == line.phone_number:
            raise Refusal("destination is the line itself", "A phone cannot call itself. Goodbye.")
        other = await line_by_number(connection, destination)
        if other is not None:
            # Another of our lines: ring its browser directly, no phone network involved.
            await _note(connection, params, line.phone_number, destination)
            return twiml.dial_client(other.client_name, caller_id=line.phone_number), {
                "outcome": "dial_client",
                "from": line.phone_number,
                "client": other.client_name,
            }
        if phone.is_costly(number):
            raise Refusal(
                f"{phone.number_type(number)} destination",
                "Calls to premium-rate and shared-cost numbers are not allowed. Goodbye.",
            )
        allowed = services.settings.allowed_countries or {phone.country_code_of(line.phone_number)}
        if number.country_code not in allowed:
            raise Refusal(
                f"country code +{number.country_code} not allowed",
                f"Calls to country code {number.country_code} are not allowed from "
                "this phone. Goodbye.",
            )
    except Refusal as exc:
        if line is not None:  # the phone shows the reason in its history, not only spoken
            dialled = params.get("callOutgoingPhoneNumber") or params.get("To") or ""
            await _note(connection, params, line.phone_number, dialled, exc.reason)
        return _refused(exc, client=params.get("From", "")[:300])
    await _note(connection, params, line.phone_number, destination)
    return twiml.dial_number(destination, caller_id=line.phone_number), {
        "outcome": "dial_number",
        "from": line.phone_number,
        "to": destination,
    }


def status_callback(services: Services, params: Params) -> tuple[str, dict]:
    """Record a call progress event; Twilio ignores the body of our answer. When it cannot
    be stored (the database is down or too slow), `_not_stored` answers instead."""
    from dialtone.server.history import BadStatusCallback  # the ORM: not on the call path

    try:
        new = services.history.record(params)
    except BadStatusCallback as exc:
        raise BadWebhook(str(exc)) from None
    return twiml.empty(), {
        "outcome": "recorded" if new else "duplicate",
        "status": params.get("CallStatus"),
        "sequence": params.get("SequenceNumber"),
    }


def dial_ended(services: Services, params: Params) -> tuple[str, dict]:
    """A <Dial> of ours ended (its `action`, twiml.DIAL_ACTION): record how (DialCallStatus)
    for the phone's history, and answer no further verb, so the call ends as it would without
    `action`. It may come before any status callback of the call, or with none configured."""
    from dialtone.server.history import BadStatusCallback  # the ORM: not on the call path

    try:
        new = services.history.record_dial(params)
    except BadStatusCallback as exc:
        raise BadWebhook(str(exc)) from None
    return twiml.empty(), {
        "outcome": "recorded" if new else "duplicate",
        "dial_status": params.get("DialCallStatus"),
        "dial_call_sid": params.get("DialCallSid", "")[:34] or None,
    }


def _dial_not_stored(params: Params, exc: Exception, ms: float) -> Response:
    """A dial's end we could not store: logged for replay as a status callback is
    (`_not_stored`), but answered with the empty TwiML all the same. The caller may still be on
    the line, and an error status would make Twilio play its application error to them."""
    _log_for_replay("dial_ended", params, exc, ms)
    return Response(twiml.empty(), media_type=XML)


def _log_for_replay(webhook: str, params: Params, exc: Exception, ms: float) -> None:
    """One `<webhook>_not_stored` line with everything needed to replay the request."""
    from dialtone.server.history import replayable

    logs.event(
        log,
        f"{webhook}_not_stored",
        level=logging.ERROR,
        webhook=webhook,
        call_sid=params.get("CallSid", "")[:34],
        error=type(exc).__name__,
        ms=ms,
        replay=True,
        params=replayable(params),
    )


def _not_stored(params: Params, exc: Exception, ms: float) -> Response:
    """A status callback we could not store. Twilio does not redeliver it (unless its URL
    asks for retries on 5xx with `#rp=5xx`), so this log line is its only record: one line
    with everything needed to replay it. 503, not 200: Twilio then shows the failure in
    the console's debugger (warning 15003) instead of it passing unnoticed."""
    _log_for_replay("status_callback", params, exc, ms)
    return PlainTextResponse(
        "the status callback was not stored; it was logged for replay\n", status_code=503
    )
