"""Who may talk to the emulator. It listens on this machine and holds the account's
credentials, so a web page must not be able to drive it:

- `Host` must be one of the names it serves (loopback, its public URL's host, configured
  extras): a DNS-rebound name is refused;
- a state-changing request from a browser must come from the emulator's own origin (`Origin`,
  or `Sec-Fetch-Site` when there is none): cross-site form posts and fetches are refused;
- the control API (`/emulator/`, but its health check) and the console need the account's
  credentials (HTTP Basic, as the REST API) or the per-run console key: the `X-Emulator-Key`
  header, or the cookie set by opening the console URL printed in the banner (`?key=`);
- request bodies are bounded (413 past `MAX_BODY`, without reading the rest).
"""

from __future__ import annotations

import hmac
from http.cookies import CookieError, SimpleCookie
from typing import TYPE_CHECKING
from urllib.parse import urlencode, urlsplit

from starlette.datastructures import URL, Headers, QueryParams
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dialtone.emulator.config import EmulatorConfig
from dialtone.emulator.rest.errors import TwilioApiError
from dialtone.emulator.rest.request import credentials_valid

if TYPE_CHECKING:
    from dialtone.emulator.switch import Switch

KEY_HEADER = "x-emulator-key"
KEY_PARAM = "key"
CONSOLE = "/console"
# Far above any REST or control request (Twiml is limited to 4,000 characters).
MAX_BODY = 64 * 1024
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})
PUBLIC_PATHS = frozenset({"/emulator/health"})  # a liveness probe: no state, no secrets


# A person who opens the console (or `/`) without this run's key: where to find it.
_ASK_FOR_KEY = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>dialtone emulator</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>:root{{color-scheme:light dark}}
body{{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem}}
input{{font:inherit;width:100%;box-sizing:border-box;padding:.4rem}}button{{font:inherit;margin-top:.5rem}}
</style></head><body>
<h1>dialtone emulator</h1>
<p>The dev console needs this run's key. Open the <strong>dev console</strong> link that
<code>dialtone dev</code> (or <code>./run</code>) printed, or paste the key here.</p>
<form method="get" action="{CONSOLE}">
<label for="key">Console key</label>
<input id="key" name="{KEY_PARAM}" autocomplete="off" required>
<button type="submit">Open the console</button>
</form></body></html>
"""


def host_name(value: str | None) -> str | None:
    """The lower-case host of a `Host` header or a URL's netloc, brackets and port removed."""
    if not value:
        return None
    try:
        parts = urlsplit(f"//{value.strip()}")
        name = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a port that is not one
    except ValueError:
        return None
    return name.rstrip(".") if name else None


def served_hosts(config: EmulatorConfig) -> frozenset[str]:
    names = set(LOOPBACK)
    for extra in (urlsplit(config.public_url).netloc, config.signal_host, *config.allowed_hosts):
        name = host_name(extra)
        if name:
            names.add(name)
    return frozenset(names)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def protected(path: str) -> bool:
    """Paths that need credentials or the console key."""
    if path in PUBLIC_PATHS:
        return False
    return path.startswith(("/emulator/", f"{CONSOLE}/")) or path in (CONSOLE, "/console.js")


def cookie_name(host: str) -> str:
    # Cookies ignore ports: two emulators on one host must not overwrite each other's key.
    try:
        port = urlsplit(f"//{host}").port
    except ValueError:  # the Host check refuses these first
        port = None
    return f"dialtone_emulator_{port or 80}"


class BodyTooLarge(TwilioApiError):
    def __init__(self) -> None:
        super().__init__(20413, f"Request body larger than {MAX_BODY // 1024} KiB", 413)


class AccessGuard:
    """ASGI middleware applying the rules above to every HTTP request."""

    def __init__(self, app: ASGIApp, config: EmulatorConfig, switch: Switch) -> None:
        self.app = app
        self.config = config
        self.switch = switch
        self.hosts = served_hosts(config)
        self.public_origin = _origin(config.public_url)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self.app(scope, _bounded(receive), send)

    def _refusal(self, scope: Scope, headers: Headers) -> Response | None:
        host = headers.get("host", "")
        if host_name(host) not in self.hosts:
            return TwilioApiError(
                20403, f"Forbidden: this emulator does not serve the host {host[:100]!r}", 403
            ).response()
        if scope["method"] not in SAFE_METHODS and not self._same_origin(headers, host):
            return TwilioApiError(
                20403, "Forbidden: cross-origin requests cannot change the emulator", 403
            ).response()
        length = headers.get("content-length", "0")
        if not length.isdigit() or int(length) > MAX_BODY:
            return BodyTooLarge().response()
        path = scope["path"]
        if not protected(path):
            return None
        query = QueryParams(scope.get("query_string", b"").decode("latin-1"))
        if path == CONSOLE and KEY_PARAM in query:
            return self._console_login(scope, host, query)
        if self._authorized(headers, host):
            return None
        if path == CONSOLE and "text/html" in headers.get("accept", ""):
            return HTMLResponse(
                _ASK_FOR_KEY, status_code=401, headers={"Cache-Control": "no-store"}
            )
        return TwilioApiError(
            20003,
            "Authenticate: send the Account SID and auth token (HTTP Basic), the X-Emulator-Key "
            "header, or open the console URL printed when the emulator started",
            401,
        ).response()

    def _same_origin(self, headers: Headers, host: str) -> bool:
        origin = headers.get("origin")
        if origin is None:
            # Browsers that send no Origin still say where a request comes from; curl says
            # neither and is not a web page.
            return headers.get("sec-fetch-site", "same-origin") in ("same-origin", "none")
        own = {f"http://{host}".lower(), f"https://{host}".lower(), self.public_origin}
        return origin.lower() in own

    def _key_matches(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(
            given.encode("utf-8", "surrogatepass"), self.config.console_key.encode()
        )

    def _authorized(self, headers: Headers, host: str) -> bool:
        if self._key_matches(headers.get(KEY_HEADER)):
            return True
        cookie = SimpleCookie()
        try:
            cookie.load(headers.get("cookie", ""))
        except CookieError:
            return False
        morsel = cookie.get(cookie_name(host))
        if morsel is not None and self._key_matches(morsel.value):
            return True
        return credentials_valid(self.switch, headers.get("authorization", ""))

    def _console_login(self, scope: Scope, host: str, query: QueryParams) -> Response:
        """`/console?key=…`: the key becomes an HttpOnly, SameSite=Strict cookie and the
        browser is sent on to the clean URL (the key leaves the address bar and history)."""
        if not self._key_matches(query[KEY_PARAM]):
            return TwilioApiError(
                20003, "Authenticate: this console key is not this run's", 401
            ).response()
        rest = [(k, v) for k, v in query.multi_items() if k != KEY_PARAM]
        target = URL(CONSOLE + (f"?{urlencode(rest)}" if rest else ""))
        response = RedirectResponse(str(target), status_code=303)
        response.set_cookie(
            cookie_name(host),
            self.config.console_key,
            httponly=True,
            samesite="strict",
            path="/",
        )
        response.headers["Cache-Control"] = "no-store"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response


def _bounded(receive: Receive) -> Receive:
    """Stop a body that turns out larger than its Content-Length said (or chunked)."""
    seen = 0

    async def receive_bounded() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > MAX_BODY:
                raise BodyTooLarge()
        return message

    return receive_bounded
