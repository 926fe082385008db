"""`POST /twilio/retrieve_capability_token`: a line's number and password in, client tokens out."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import anyio.to_thread
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from dialtone import logs, phone
from dialtone.server import tokens
from dialtone.server.auth import NotAuthenticated, identity_of
from dialtone.server.db import bounded
from dialtone.server.registry import LineInfo
from dialtone.server.throttle import client_key

if TYPE_CHECKING:
    from dialtone.server.app import Services

log = logging.getLogger("dialtone.server.token_api")

MAX_BODY = 16 * 1024  # bytes; a sign-in is under 2 KiB
_NO_STORE = {"Cache-Control": "no-store"}


def _failure(status: int, error: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        {"success": False, "capabilityToken": None, "error": error},
        status_code=status,
        headers={**_NO_STORE, **(headers or {})},
    )


def _is_json(content_type: str | None) -> bool:
    """`application/json`, with no charset or UTF-8 (JSON's only encoding, RFC 8259)."""
    media_type, *parameters = (content_type or "").split(";")
    if media_type.strip().lower() != "application/json":
        return False
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in (
            "utf-8",
            "utf8",
        ):
            return False
    return True


def _unicode(text: str) -> bool:
    """False for a string JSON can carry but no password or number can hold: a lone
    surrogate ("\\ud800") cannot be encoded, so it could never have been set."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


async def retrieve_capability_token(request: Request) -> JSONResponse:
    services: Services = request.app.state.services
    client = client_key(request.client.host if request.client else None)

    # Only JSON: a form or text/plain body is a "simple" request that any web page can send
    # cross-origin without a CORS preflight.
    if not _is_json(request.headers.get("content-type")):
        return _failure(415, "the body must be JSON, sent with Content-Type: application/json")
    body = await request.body()  # at most MAX_BODY: the route's limit answers 413 past it
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # not JSON, not UTF-8, huge integers, deep nesting
        return _failure(
            400, 'the body must be JSON: {"twilioPhoneNumber": "...", "password": "..."}'
        )
    if not isinstance(data, dict):
        return _failure(
            400, 'the body must be a JSON object: {"twilioPhoneNumber": "...", "password": "..."}'
        )
    missing = [
        k
        for k in ("twilioPhoneNumber", "password")
        if not isinstance(data.get(k), str) or not data[k]
    ]
    if missing:
        return _failure(400, "missing or non-string field(s): " + ", ".join(missing))
    invalid = [k for k in ("twilioPhoneNumber", "password") if not _unicode(data[k])]
    if invalid:
        # Malformed, not a guess: it can match no password, and no password check runs.
        return _failure(400, "invalid Unicode (a lone surrogate) in: " + ", ".join(invalid))

    try:
        number = phone.to_e164(data["twilioPhoneNumber"], services.settings.default_region)
    except phone.InvalidNumber as exc:
        return _failure(400, str(exc))

    try:
        wait = await bounded(services.throttle.retry_after, number, client)
    except Exception as exc:
        return _unavailable(number, client, exc)
    if wait:
        logs.event(
            log,
            "token_throttled",
            level=logging.WARNING,
            number=number,
            client=client,
            retry_after=wait,
        )
        return _failure(
            429,
            f"too many failed sign-ins; try again in {wait} seconds",
            {"Retry-After": str(wait)},
        )

    try:
        line = await anyio.to_thread.run_sync(
            services.registry.authenticate,
            number,
            data["password"],
            limiter=services.password_limiter,
        )
    except Exception as exc:
        return _unavailable(number, client, exc)
    if line is None:
        await _record(services.throttle.failed, number, client)
        logs.event(log, "token_refused", level=logging.WARNING, number=number, client=client)
        # One answer for unknown number and wrong password: nothing reveals which numbers exist.
        return _failure(401, "unknown Twilio phone number or wrong password")

    await _record(services.throttle.succeeded, number, client)
    logs.event(
        log,
        "token_issued",
        number=number,
        identity=line.client_name,
        client=client,
        ttl=services.settings.token_ttl,
    )
    return _tokens(services, line)


def _unavailable(number: str, client: str, exc: Exception) -> JSONResponse:
    logs.event(
        log,
        "token_failed",
        level=logging.ERROR,
        number=number,
        client=client,
        error=type(exc).__name__,
    )
    return _failure(503, "the service is temporarily unavailable; try again shortly")


async def _record(outcome: Callable[[str, str], None], number: str, client: str) -> None:
    """Count the outcome; the answer stands even if the count cannot be written."""
    try:
        await bounded(outcome, number, client)
    except Exception as exc:
        logs.event(
            log,
            "sign_in_not_counted",
            level=logging.ERROR,
            number=number,
            client=client,
            error=type(exc).__name__,
        )


def _tokens(services: Services, line: LineInfo) -> JSONResponse:
    settings = services.settings
    return JSONResponse(
        {
            "success": True,
            "capabilityToken": tokens.capability_token(settings, line.client_name),
            "accessToken": tokens.access_token(settings, line.client_name),
            "identity": line.client_name,
            "twilioPhoneNumber": line.phone_number,
            "ttl": settings.token_ttl,
        },
        headers=_NO_STORE,
    )


async def refresh_token(request: Request) -> JSONResponse:
    """`POST /twilio/refresh_token`: fresh tokens for a phone holding a still-valid
    accessToken (Bearer), so the page never keeps a password for `tokenWillExpire`."""
    services: Services = request.app.state.services
    try:
        identity = identity_of(services.settings, request.headers.get("authorization"))
        line = await run_in_threadpool(services.registry.by_client_name, identity)
    except NotAuthenticated as exc:
        return _failure(401, str(exc))
    except Exception:
        return _failure(503, "the service is temporarily unavailable; try again shortly")
    if line is None:
        return _failure(401, "this line no longer exists")
    logs.event(log, "token_refreshed", identity=identity)
    return _tokens(services, line)
