"""The emulator as one ASGI app: Twilio's REST API, recordings and the /emulator/ control API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse

from dialtone.emulator import console, control, demo
from dialtone.emulator.access import AccessGuard
from dialtone.emulator.rest import alerts, calls, keys, recordings, voice_resources
from dialtone.emulator.rest.errors import TwilioApiError
from dialtone.emulator.switch import Switch


async def _twilio_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, TwilioApiError)
    return exc.response()


# Twilio's codes for what the router itself refuses; anything else keeps the HTTP status.
_ROUTER_CODES = {404: 20404, 405: 20004}


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    """No route (an encoded slash included) or a wrong method: Twilio's JSON, not plain text."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        message = f"The requested resource {request.url.path[:200]} was not found"
    elif exc.status_code == 405:
        message = f"Method {request.method[:20]} not allowed"
    else:
        message = str(exc.detail)
    response = TwilioApiError(
        _ROUTER_CODES.get(exc.status_code, 20000 + exc.status_code), message, exc.status_code
    ).response()
    response.headers.update(exc.headers or {})
    return response


async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    return TwilioApiError(20500, "Internal Server Error", 500).response()


def create_app(switch: Switch) -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await switch.close()

    app = Starlette(
        routes=[
            *calls.routes(),
            *voice_resources.routes(),
            *recordings.routes(),
            *keys.routes(),
            *alerts.routes(),
            *control.routes(),
            *console.routes(),
            *demo.routes(),
        ],
        middleware=[Middleware(AccessGuard, config=switch.config, switch=switch)],
        exception_handlers={
            TwilioApiError: _twilio_error,
            HTTPException: _http_error,
            Exception: _internal_error,
        },
        lifespan=lifespan,
    )
    app.state.switch = switch
    return app
