"""Request plumbing shared by the resources: authentication, form bodies, paging."""

from __future__ import annotations

import base64
import hmac
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from starlette.datastructures import ImmutableMultiDict
from starlette.requests import Request
from starlette.responses import JSONResponse

from dialtone.emulator.rest.errors import TwilioApiError
from dialtone.emulator.switch import Switch

API = "/2010-04-01"
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


def switch_of(request: Request) -> Switch:
    return request.app.state.switch


def basic_credentials(header: str) -> tuple[str, str]:
    """(user, password) of an `Authorization: Basic` header; ("", "") when absent or garbled
    (not base64, not UTF-8)."""
    if not header.lower().startswith("basic "):
        return "", ""
    try:
        user, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
    except (ValueError, UnicodeDecodeError):  # binascii.Error and non-ASCII input included
        return "", ""
    return user, password


def _same(given: str, expected: str) -> bool:
    # compare_digest raises TypeError for str with non-ASCII characters: compare UTF-8 bytes.
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode())


def credentials_valid(switch: Switch, header: str, *, account_only: bool = False) -> bool:
    """HTTP Basic with Account SID + auth token, or (unless `account_only`) the SID + secret of
    one of the account's API keys."""
    user, password = basic_credentials(header)
    credentials = switch.credentials
    if _same(user, credentials.account_sid) & _same(password, credentials.auth_token):
        return True
    key_secret = switch.api_secret_of(user)
    return not account_only and key_secret is not None and _same(password, key_secret)


def authenticate(request: Request, *, account_only: bool = False) -> Switch:
    """HTTP Basic with Account SID + auth token, or the SID + secret of one of the account's
    API keys (the configured one and those made through `Keys.json`, until deleted); 401
    with 20003 otherwise. `account_only`: Standard API keys cannot manage keys (see
    `rest/keys.py`), so only the auth token passes."""
    switch = switch_of(request)
    header = request.headers.get("authorization", "")
    if not credentials_valid(switch, header, account_only=account_only):
        raise TwilioApiError(20003, "Authenticate", 401)
    if request.path_params.get("AccountSid") not in (None, switch.credentials.account_sid):
        raise TwilioApiError(20404, f"The requested resource {request.url.path} was not found", 404)
    return switch


async def form(request: Request) -> ImmutableMultiDict:
    body = (await request.body()).decode("utf-8", errors="replace")
    return ImmutableMultiDict(parse_qsl(body, keep_blank_values=True))


@dataclass(frozen=True)
class Paging:
    """A list request's page (PageSize, Page) and the filters its page links must keep."""

    size: int
    number: int
    filters: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, request: Request) -> Paging:
        try:
            size = int(request.query_params.get("PageSize", DEFAULT_PAGE_SIZE))
            number = int(request.query_params.get("Page", 0))
        except ValueError:
            raise TwilioApiError(20001, "PageSize and Page must be integers") from None
        filters = tuple(
            (k, v)
            for k, v in request.query_params.multi_items()
            if k not in ("Page", "PageSize", "PageToken")
        )
        return cls(max(1, min(size, MAX_PAGE_SIZE)), max(0, number), filters)

    @property
    def start(self) -> int:
        return self.number * self.size

    def chunk(self, items: Sequence[Any]) -> Sequence[Any]:
        return items[self.start : self.start + self.size]

    def has_next(self, total: int) -> bool:
        return self.start + self.size < total

    def link(self, base: str, number: int) -> str:
        return f"{base}?{urlencode([*self.filters, ('PageSize', self.size), ('Page', number)])}"


def page(
    request: Request, key: str, items: Sequence[Any], render: Callable[[Any], dict]
) -> JSONResponse:
    """Twilio's 2010 paging envelope (PageSize, Page), with links relative to the host."""
    paging = Paging.of(request)
    chunk = paging.chunk(items)
    path, number, start = request.url.path, paging.number, paging.start
    return JSONResponse(
        {
            key: [render(item) for item in chunk],
            "end": start + len(chunk) - 1 if chunk else start,
            "first_page_uri": paging.link(path, 0),
            "next_page_uri": paging.link(path, number + 1) if paging.has_next(len(items)) else None,
            "page": number,
            "page_size": paging.size,
            "previous_page_uri": paging.link(path, number - 1) if number > 0 else None,
            "start": start,
            "uri": paging.link(path, number),
        }
    )


def method_param(
    data: ImmutableMultiDict, name: str, default: str = "POST", code: int = 21207
) -> str:
    value = (data.get(name) or default).upper()
    if value not in ("GET", "POST"):
        raise TwilioApiError(code, f"{name} must be GET or POST")
    return value


def url_param(data: ImmutableMultiDict, name: str, code: int = 21205) -> str | None:
    """An absolute http(s) URL with a host, or None when absent or empty (which clears it).
    Twilio's 21502: "a fully qualified URL including protocol (http:// or https://),
    hostname, …"."""
    value = data.get(name)
    if value is None or value == "":
        return None
    try:
        parts = urlsplit(value)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        valid = False
    if not valid or any(c.isspace() for c in value):
        raise TwilioApiError(code, f"{name} is not a valid URL: {value[:100]}")
    return value


def rfc2822(switch: Switch, when: Any) -> str | None:
    return switch.clock.rfc2822(when) if when is not None else None
