"""The emulator as one ASGI app: Twilio's REST API, recordings and the /emulator/ control API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse

from dialtone.emulator import console, control
from dialtone.emulator.rest import alerts, calls, keys, recordings, voice_resources
from dialtone.emulator.rest.errors import TwilioApiError
from dialtone.emulator.switch import Switch


async def _twilio_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, TwilioApiError)
    return exc.response()


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
        ],
        exception_handlers={TwilioApiError: _twilio_error, Exception: _internal_error},
        lifespan=lifespan,
    )
    app.state.switch = switch
    return app
