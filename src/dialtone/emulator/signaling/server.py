"""The signaling endpoint `wss://HOST:S/signal`, a small ASGI app served over TLS.

Its page `/` is where a browser accepts the self-signed certificate: whoever sees it has
accepted it, so it says so and links back to the phone — the URL in `?phone=` (only one of
the emulator's own hosts over http or https: never a way off this machine), else the one
configured."""

from __future__ import annotations

import html
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from dialtone.emulator.access import served_hosts
from dialtone.emulator.signaling.pstream import SignalingSession
from dialtone.emulator.switch import Switch

PHONE_PARAM = "phone"
MAX_URL = 2048
_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


def local_phone_url(url: str | None, hosts: frozenset[str]) -> str | None:
    """`url` when it is an http(s) URL on one of `hosts` (no credentials in it), else None."""
    if not url or len(url) > MAX_URL:
        return None
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a port that is not one
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or parts.username or parts.password:
        return None
    if host is None or host.rstrip(".") not in hosts:
        return None
    return parts.geturl()


def _page(phone_url: str | None) -> str:
    if phone_url:
        back = (
            f'<p><a id="back" href="{html.escape(phone_url, quote=True)}">Back to the phone</a>'
            " — or close this tab if the phone is open in another one.</p>"
        )
    else:
        back = "<p>Go back to the phone and sign in again.</p>"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Accepted — dialtone emulator</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>:root{{color-scheme:light dark}}
body{{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem}}
a{{font-weight:600}}</style></head><body>
<h1>Accepted — back to the phone</h1>
<p>This browser now trusts the emulator's certificate, so the phone can reach its
signaling (<code>/signal</code>). This stays true until the certificate is renewed.</p>
{back}
</body></html>
"""


def create_signaling_app(switch: Switch, phone_url: str | None = None) -> Starlette:
    hosts = served_hosts(switch.config)

    async def signal(websocket: WebSocket) -> None:
        await SignalingSession(websocket, switch).run()

    async def index(request: Request) -> HTMLResponse:
        back = local_phone_url(request.query_params.get(PHONE_PARAM), hosts)
        return HTMLResponse(_page(back or phone_url), headers=_HEADERS)

    return Starlette(routes=[WebSocketRoute("/signal", signal), Route("/", index)])
