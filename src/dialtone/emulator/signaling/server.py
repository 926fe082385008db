"""The signaling endpoint `wss://HOST:S/signal`, a small ASGI app served over TLS."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from dialtone.emulator.signaling.pstream import SignalingSession
from dialtone.emulator.switch import Switch


def create_signaling_app(switch: Switch) -> Starlette:
    async def signal(websocket: WebSocket) -> None:
        await SignalingSession(websocket, switch).run()

    async def index(request: Request) -> PlainTextResponse:
        # Opening this page once is one way to accept the self-signed certificate.
        return PlainTextResponse("dialtone emulator: Voice SDK signaling at /signal\n")

    return Starlette(routes=[WebSocketRoute("/signal", signal), Route("/", index)])
