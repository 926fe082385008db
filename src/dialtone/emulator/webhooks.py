"""Twilio's HTTP requests to applications: signed, form-encoded, with Twilio's timeouts and
error codes (reference §2, §4, §9). Every request is written into the call's event log."""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

import httpx
from twilio.request_validator import RequestValidator

from dialtone.emulator.call import Call
from dialtone.emulator.sids import new_sid

USER_AGENT = "TwilioProxy/1.1"
MAX_BODY = 64 * 1024  # 11750
MAX_REDIRECTS = 10  # 11215
LOGGED_BODY = 4000

TWIML_TYPES = ("text/xml", "application/xml", "text/html")
# An XML declaration, comments and a <Response> root: enough to tell TwiML from other pages.
_TWIML_START = re.compile(
    rb"\A(?:\xef\xbb\xbf)?\s*(?:<\?xml[^>]*\?>\s*)?(?:<!--.*?-->\s*)*<Response[\s/>]", re.S
)


def looks_like_twiml(content_type: str, body: bytes) -> bool:
    """Whether an answer is TwiML, which the event log may show; the body of any other page
    (an error page, whatever a URL pointed at) is kept out of what the console and the event
    stream show, only its status, content type and size are."""
    return content_type in TWIML_TYPES and _TWIML_START.match(body[:LOGGED_BODY]) is not None


class FetchError(Exception):
    """A request Twilio would count as failed; `code` is Twilio's error code."""

    def __init__(self, code: int, message: str, url: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.url = url


@dataclass
class Fetched:
    url: str
    status: int
    content_type: str
    body: bytes


def strip_override_fragment(url: str) -> str:
    """`#ct=…&rt=…` connection overrides are never sent; Twilio signs without them (unverified)."""
    return url.split("#", 1)[0]


class WebhookClient:
    def __init__(self, auth_token: str, timeout: float, connect_timeout: float) -> None:
        self._validator = RequestValidator(auth_token)
        self.timeout = timeout
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            follow_redirects=True,
            max_redirects=MAX_REDIRECTS,
            # Few idle connections: httpcore 1.0's pool rescans every connection for each idle
            # one on every request (encode/httpcore#1035), so 200 kept alive made a burst of
            # 1,000 status callbacks ~6x slower (bench/concurrent_calls.py). Idle ones expire
            # before common servers' keep-alive (uvicorn 5 s, gunicorn 2 s) would close them
            # under a request.
            limits=httpx.Limits(
                max_connections=2000, max_keepalive_connections=8, keepalive_expiry=1.0
            ),
            headers={"User-Agent": USER_AGENT, "X-Home-Region": "us1"},
        )

    async def close(self) -> None:
        await self._http.aclose()

    def sign(self, url: str, params: dict[str, str]) -> str:
        return self._validator.compute_signature(url, params)

    async def request(
        self, call: Call, url: str, method: str, params: dict[str, str], purpose: str
    ) -> Fetched:
        """Send one request as Twilio does and log it on the call; raise FetchError on failure."""
        url = strip_override_fragment(url)
        method = (method or "POST").upper()
        if method not in ("GET", "POST"):
            method = "POST"
        headers = {"I-Twilio-Idempotency-Token": new_sid("")}
        if method == "GET":
            query = urlencode(params)
            target = url + (("&" if urlsplit(url).query else "?") + query if query else "")
            signature = self.sign(target, {})
            content = None
        else:
            target = url
            signature = self.sign(url, params)
            content = urlencode(params).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded; charset=UTF-8"
        headers["X-Twilio-Signature"] = signature
        entry = {
            "purpose": purpose,
            "url": url,
            "method": method,
            "parameters": params,
            "signature": signature,
        }
        started = time.perf_counter()
        try:
            if urlsplit(url).scheme not in ("http", "https"):
                raise FetchError(11100, "invalid URL (only http and https are fetched)", url)
            async with asyncio.timeout(self.timeout):  # the whole response, not per read
                response = await self._http.request(
                    method, target, content=content, headers=headers
                )
            body = response.content
        except FetchError as exc:
            self._log_failure(call, entry, started, exc)
            raise
        except httpx.TooManyRedirects:
            error = FetchError(11215, "too many redirects", url)
            self._log_failure(call, entry, started, error)
            raise error from None
        except (httpx.TimeoutException, TimeoutError):
            error = FetchError(11205, f"no complete response within {self.timeout:g} s", url)
            self._log_failure(call, entry, started, error)
            raise error from None
        except httpx.HTTPError as exc:
            error = FetchError(11205, f"connection failed: {type(exc).__name__}", url)
            self._log_failure(call, entry, started, error)
            raise error from None
        latency = round((time.perf_counter() - started) * 1000, 1)
        content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
        call.log(
            "webhook",
            **entry,
            status=response.status_code,
            latency_ms=latency,
            content_type=content_type,
            response_size=len(body),
            twiml=looks_like_twiml(content_type, body),
            # For Monitor Alerts (behind the account's credentials, as Twilio's); the control
            # API shows it only when `twiml` (see `control.public_event`).
            response_body=body[:LOGGED_BODY].decode("utf-8", "replace"),
            response_headers=dict(response.headers.items()),  # for Monitor Alerts
        )
        if response.status_code >= 400 or response.status_code < 200:
            raise FetchError(11200, f"HTTP {response.status_code} from the application", url)
        if len(body) > MAX_BODY:
            raise FetchError(11750, "response body larger than 64 kB", url)
        return Fetched(str(response.url), response.status_code, content_type, body)

    @staticmethod
    def _log_failure(call: Call, entry: dict, started: float, error: FetchError) -> None:
        latency = round((time.perf_counter() - started) * 1000, 1)
        call.log(
            "webhook",
            **entry,
            status=None,
            latency_ms=latency,
            error_code=error.code,
            error=error.message,
        )
