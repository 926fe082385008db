"""Verification of the tokens a Voice SDK device presents in `listen`, as Twilio does it.

The SDK never inspects its token (voice-sdk-signaling.md §10): identity, permissions and
lifetime all come from the server. So the emulator must do what Twilio does and reject a bad
token with the code the SDK maps to a specific error (§9): 31204 invalid, 31202 bad signature,
31205 expired, 31207 lifetime over 24 h. Two formats exist (twilio-voice.md §5): the
AccessToken with a VoiceGrant, signed with the API key secret, and the legacy capability token,
signed with the Auth Token.

Order of checks: shape, then issuer (a token naming another account or API key cannot be checked
against any secret the emulator knows, so it is invalid, 31204, not a bad signature), then the
signature, then time, then the grants. An AccessToken's issuer may be any of the account's API
keys — the configured one or one made through the REST API — and a deleted key's tokens are
refused as an unknown issuer: Twilio's error 20103 "Invalid Access Token issuer/subject" names
"API Key is incorrect or has been deleted" among its causes, and its 31204 page "generated with
an incorrect Account SID or API Key, making the issuer or subject invalid". Times are checked here
against `now` rather than by PyJWT, so callers and tests control the clock and each failure gets
its own code.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qsl

import jwt

from dialtone.emulator.config import Credentials

INVALID = 31204
BAD_SIGNATURE = 31202
EXPIRED = 31205
TOO_LONG = 31207

ACCESS_TOKEN_CTY = "twilio-fpa;v=1"
ALGORITHM = "HS256"
MAX_LIFETIME = 86400  # seconds, for both formats

Kind = Literal["access", "capability"]

# Claim checks PyJWT would otherwise make; each is done below, against our own clock.
_PYJWT_OPTIONS: Any = {
    "verify_signature": True,
    "verify_exp": False,
    "verify_nbf": False,
    "verify_iat": False,
    "verify_aud": False,
    "verify_iss": False,
    "verify_sub": False,
    "verify_jti": False,
}


class TokenError(Exception):
    """A token Twilio would refuse; `code` is the error the SDK receives."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ClientGrant:
    """What a verified token allows its device to do."""

    kind: Kind
    identity: str | None  # None only for an outgoing-only capability token
    incoming: bool
    outgoing_application_sid: str | None
    outgoing_params: dict[str, str]
    expires_at: int  # unix seconds, from `exp`

    def ttl(self, now: float | None = None) -> int:
        """Whole seconds left, never negative: the `connected.token.ttl` the SDK schedules on."""
        current = time.time() if now is None else now
        return max(0, int(self.expires_at - current))


def verify(
    token: str,
    credentials: Credentials,
    now: float | None = None,
    api_secret_of: Callable[[str], str | None] | None = None,
) -> ClientGrant:
    """The grant `token` carries, or TokenError with the code Twilio would send.
    `api_secret_of`: the secret of one of the account's API keys by SID, None for a key it
    does not have (default: the configured key only). The key is the one the AccessToken
    names as its `iss` (twilio-python's AccessToken writes no `kid` header)."""
    current = time.time() if now is None else now
    header, claims = _unverified(token)
    kind = _kind(header, claims)
    if kind == "access":
        _expect(claims, "sub", credentials.account_sid, "subject is not this emulator's account")
        issuer = str(claims.get("iss", ""))
        if api_secret_of is not None:
            found = api_secret_of(issuer)
        else:
            found = credentials.api_secret if issuer == credentials.api_key else None
        if found is None:
            raise TokenError(INVALID, "issuer is not one of this account's API keys")
        secret = found
    else:
        _expect(claims, "iss", credentials.account_sid, "issuer is not this emulator's account")
        secret = credentials.auth_token
    _check_signature(token, secret)
    expires_at = _check_time(claims, current)
    if kind == "access":
        return _access_grant(claims, expires_at)
    return _capability_grant(claims, expires_at)


def _unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    if not isinstance(token, str) or not token:
        raise TokenError(INVALID, "token is missing")
    try:
        decoded = jwt.decode_complete(token, options={"verify_signature": False})
    except jwt.InvalidTokenError as error:
        raise TokenError(INVALID, f"token is not a JWT: {error}") from None
    header, claims = decoded["header"], decoded["payload"]
    if header.get("alg") != ALGORITHM:
        raise TokenError(INVALID, f"algorithm must be {ALGORITHM}")
    return header, claims


def _kind(header: dict[str, Any], claims: dict[str, Any]) -> Kind:
    cty = header.get("cty")
    if cty == ACCESS_TOKEN_CTY:
        return "access"
    if cty is None and "scope" in claims:
        return "capability"
    raise TokenError(INVALID, "neither an AccessToken nor a capability token")


def _expect(claims: dict[str, Any], name: str, expected: str, message: str) -> None:
    if claims.get(name) != expected:
        raise TokenError(INVALID, message)


def _check_signature(token: str, secret: str) -> None:
    try:
        jwt.decode(token, secret, algorithms=[ALGORITHM], options=_PYJWT_OPTIONS)
    except jwt.InvalidSignatureError:
        raise TokenError(BAD_SIGNATURE, "signature validation failed") from None
    except jwt.InvalidTokenError as error:
        raise TokenError(INVALID, f"token is not a valid JWT: {error}") from None


def _number(claims: dict[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TokenError(INVALID, f"{name} is not a number")
    return float(value)


def _check_time(claims: dict[str, Any], now: float) -> int:
    """`exp` as int after the time rules: not yet valid, expired, then too long a lifetime."""
    expires = _number(claims, "exp")
    not_before = _number(claims, "nbf")
    if expires is None:
        raise TokenError(INVALID, "exp is missing")
    if not_before is not None and not_before > now:
        raise TokenError(INVALID, "token is not valid yet (nbf)")
    if expires <= now:
        raise TokenError(EXPIRED, "token has expired")
    lifetime = expires - (now if not_before is None else not_before)
    if lifetime > MAX_LIFETIME:
        raise TokenError(TOO_LONG, f"token lifetime exceeds {MAX_LIFETIME} seconds")
    return int(expires)


def _text(value: Any) -> str:
    """A custom parameter as the application will receive it: strings as they are, else JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def _access_grant(claims: dict[str, Any], expires_at: int) -> ClientGrant:
    grants = claims.get("grants")
    if not isinstance(grants, dict):
        raise TokenError(INVALID, "grants are missing")
    identity = grants.get("identity")
    if not isinstance(identity, str) or not identity:
        raise TokenError(INVALID, "identity is missing")
    voice = grants.get("voice")
    if not isinstance(voice, dict):
        raise TokenError(INVALID, "voice grant is missing")
    incoming = voice.get("incoming") or {}
    outgoing = voice.get("outgoing")
    if not isinstance(incoming, dict) or not isinstance(outgoing, dict | None):
        raise TokenError(INVALID, "voice grant is malformed")
    app_sid: str | None = None
    params: dict[str, str] = {}
    if outgoing is not None:
        app_sid = outgoing.get("application_sid")
        raw_params = outgoing.get("params") or {}
        if not isinstance(app_sid, str) or not app_sid or not isinstance(raw_params, dict):
            raise TokenError(INVALID, "outgoing voice grant is malformed")
        params = {str(key): _text(value) for key, value in raw_params.items()}
    allow_incoming = incoming.get("allow") is True
    if not allow_incoming and app_sid is None:
        raise TokenError(INVALID, "voice grant allows neither incoming nor outgoing calls")
    return ClientGrant(
        kind="access",
        identity=identity,
        incoming=allow_incoming,
        outgoing_application_sid=app_sid,
        outgoing_params=params,
        expires_at=expires_at,
    )


def _scopes(scope: Any) -> dict[str, dict[str, str]]:
    """`scope:client:<privilege>?<query>` items → privilege → query parameters.

    Other services (`scope:stream:subscribe`) are not about calls and are skipped.
    """
    if not isinstance(scope, str):
        raise TokenError(INVALID, "scope is not a string")
    found: dict[str, dict[str, str]] = {}
    for item in scope.split():
        uri, _, query = item.partition("?")
        parts = uri.split(":")
        if len(parts) != 3 or parts[0] != "scope":
            raise TokenError(INVALID, f"malformed scope {item!r}")
        if parts[1] == "client":
            found[parts[2]] = dict(parse_qsl(query, keep_blank_values=True))
    return found


def _capability_grant(claims: dict[str, Any], expires_at: int) -> ClientGrant:
    scopes = _scopes(claims.get("scope"))
    incoming = scopes.get("incoming")
    outgoing = scopes.get("outgoing")
    identity: str | None = None
    if incoming is not None:
        identity = incoming.get("clientName") or None
        if identity is None:
            raise TokenError(INVALID, "incoming scope has no clientName")
    app_sid: str | None = None
    params: dict[str, str] = {}
    if outgoing is not None:
        app_sid = outgoing.get("appSid") or None
        if app_sid is None:
            raise TokenError(INVALID, "outgoing scope has no appSid")
        # appParams is a query string inside a query parameter, so it was encoded twice.
        params = dict(parse_qsl(outgoing.get("appParams", ""), keep_blank_values=True))
        identity = identity or outgoing.get("clientName") or None
    if incoming is None and outgoing is None:
        raise TokenError(INVALID, "scope grants no client capability")
    return ClientGrant(
        kind="capability",
        identity=identity,
        incoming=incoming is not None,
        outgoing_application_sid=app_sid,
        outgoing_params=params,
        expires_at=expires_at,
    )
