"""`POST /twilio/retrieve_capability_token`: a line's number and password in, client tokens out."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

import anyio.to_thread
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from dialtone import logs, phone
from dialtone.server import tokens
from dialtone.server.auth import NotAuthenticated, identity_of
from dialtone.server.registry import LineInfo

if TYPE_CHECKING:
    from dialtone.server.app import Services

log = logging.getLogger("dialtone.server.token_api")

MAX_BODY = 16 * 1024
_NO_STORE = {"Cache-Control": "no-store"}


def _failure(status: int, error: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        {"success": False, "capabilityToken": None, "error": error},
        status_code=status,
        headers={**_NO_STORE, **(headers or {})},
    )


async def retrieve_capability_token(request: Request) -> JSONResponse:
    services: Services = request.app.state.services
    client = request.client.host if request.client else "unknown"

    body = await request.body()
    if len(body) > MAX_BODY:
        return _failure(413, "the request body is too large")
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
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

    try:
        number = phone.to_e164(data["twilioPhoneNumber"], services.settings.default_region)
    except phone.InvalidNumber as exc:
        return _failure(400, str(exc))

    keys = (f"number:{number}", f"address:{client}")
    wait = services.throttle.retry_after(*keys)
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
        logs.event(
            log,
            "token_failed",
            level=logging.ERROR,
            number=number,
            client=client,
            error=type(exc).__name__,
        )
        return _failure(503, "the service is temporarily unavailable; try again shortly")
    if line is None:
        services.throttle.fail(*keys)
        logs.event(log, "token_refused", level=logging.WARNING, number=number, client=client)
        # One answer for unknown number and wrong password: nothing reveals which numbers exist.
        return _failure(401, "unknown Twilio phone number or wrong password")

    services.throttle.succeed(keys[0])
    logs.event(
        log,
        "token_issued",
        number=number,
        identity=line.client_name,
        client=client,
        ttl=services.settings.token_ttl,
    )
    return _tokens(services, line)


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
