"""Server configuration from environment variables (and an optional `.env` file)."""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import phonenumbers

MAX_TOKEN_TTL = 86400  # Twilio rejects tokens valid for longer than 24 h (31207).
DEFAULT_TOKEN_TTL = 3600

_SID_PATTERNS = {
    "TWILIO_ACCOUNT_SID": re.compile(r"^AC[0-9a-fA-F]{32}$"),
    "TWILIO_API_KEY": re.compile(r"^SK[0-9a-fA-F]{32}$"),
    "TWILIO_TWIML_APP_SID": re.compile(r"^AP[0-9a-fA-F]{32}$"),
}
_REQUIRED = (
    "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN",
    "TWILIO_API_KEY",
    "TWILIO_API_SECRET",
    "TWILIO_TWIML_APP_SID",
    "DIALTONE_PUBLIC_URL",
)


class ConfigError(Exception):
    """One or more configuration values are missing or wrong; the message names them."""


def load_environment(environ: Mapping[str, str] | None = None, dotenv: Path | None = None) -> dict:
    """The process environment over the values of `.env` in the working directory."""
    path = dotenv if dotenv is not None else Path.cwd() / ".env"
    merged = {}
    if path.is_file():
        from dotenv import dotenv_values  # only then: a Lambda cold start has no .env

        merged = {k: v for k, v in dotenv_values(path).items() if v is not None}
    merged.update(os.environ if environ is None else environ)
    return merged


def database_url(env: Mapping[str, str]) -> str:
    url = env.get("DIALTONE_DATABASE_URL", "").strip()
    if url:
        return url
    return f"sqlite:///{Path.cwd() / 'dialtone.db'}"


@dataclass(frozen=True)
class Settings:
    account_sid: str
    auth_token: str = field(repr=False)
    api_key: str
    api_secret: str = field(repr=False)
    twiml_app_sid: str
    # None: taken per request from a front end that knows it (API Gateway, see aws_lambda).
    public_url: str | None
    database_url: str = field(repr=False)
    token_ttl: int = DEFAULT_TOKEN_TTL
    default_region: str | None = None
    allowed_countries: frozenset[int] | None = None
    cors_origins: tuple[str, ...] = ()
    voice_signaling: str | None = None  # host:port of a local emulator's signaling (dev)
    # Reverse proxies (addresses, networks) whose X-Forwarded-For names the client; none by
    # default, so the client is the socket's peer and no header can pose as another address.
    trusted_proxies: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, env: Mapping[str, str], *, public_url_from_request: bool = False) -> Settings:
        """`public_url_from_request`: DIALTONE_PUBLIC_URL may be unset because the front end
        (API Gateway's request context) supplies each request's public URL."""
        problems: list[str] = []
        values = {name: env.get(name, "").strip() for name in _REQUIRED}
        for name, value in values.items():
            if not value and name == "DIALTONE_PUBLIC_URL" and public_url_from_request:
                continue
            if not value:
                problems.append(f"{name} is required but not set")
            elif name in _SID_PATTERNS and not _SID_PATTERNS[name].match(value):
                prefix = _SID_PATTERNS[name].pattern[1:3]
                problems.append(f"{name} must be {prefix} followed by 32 hex digits")

        public_url = values["DIALTONE_PUBLIC_URL"].rstrip("/")
        if public_url:
            parts = urlsplit(public_url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                problems.append(
                    "DIALTONE_PUBLIC_URL must be an absolute http(s) URL, "
                    "exactly the base URL entered in the Twilio console"
                )
            elif parts.query or parts.fragment:
                problems.append("DIALTONE_PUBLIC_URL must not have a query or fragment")

        ttl = DEFAULT_TOKEN_TTL
        raw_ttl = env.get("DIALTONE_TOKEN_TTL", "").strip()
        if raw_ttl:
            try:
                ttl = int(raw_ttl)
            except ValueError:
                problems.append(
                    f"DIALTONE_TOKEN_TTL must be a whole number of seconds, not {raw_ttl!r}"
                )
            else:
                if not 60 <= ttl <= MAX_TOKEN_TTL:
                    problems.append(
                        f"DIALTONE_TOKEN_TTL must be between 60 and {MAX_TOKEN_TTL} seconds "
                        f"(Twilio refuses tokens valid for more than 24 hours), not {ttl}"
                    )

        region = env.get("DIALTONE_DEFAULT_REGION", "").strip().upper() or None
        if region and region not in phonenumbers.SUPPORTED_REGIONS:
            problems.append(
                f"DIALTONE_DEFAULT_REGION must be an ISO 3166 region code such as JP or US, "
                f"not {region!r}"
            )

        allowed: frozenset[int] | None = None
        raw_allowed = env.get("DIALTONE_ALLOWED_COUNTRIES", "").strip()
        if raw_allowed:
            codes = set()
            for item in raw_allowed.replace(" ", "").split(","):
                code = item.removeprefix("+")
                if not code.isdigit() or not phonenumbers.region_codes_for_country_code(int(code)):
                    problems.append(
                        f"DIALTONE_ALLOWED_COUNTRIES must list country calling codes "
                        f"such as 81,1; {item!r} is not one"
                    )
                else:
                    codes.add(int(code))
            allowed = frozenset(codes)

        origins = tuple(
            o.strip().rstrip("/")
            for o in env.get("DIALTONE_CORS_ORIGINS", "").split(",")
            if o.strip()
        )
        for origin in origins:
            parts = urlsplit(origin)
            if origin != "*" and (
                parts.scheme not in ("http", "https") or not parts.netloc or parts.path
            ):
                problems.append(
                    "DIALTONE_CORS_ORIGINS entries must be origins like "
                    f"https://phone.example.com, not {origin!r}"
                )

        proxies: list[str] = []
        for item in env.get("DIALTONE_TRUSTED_PROXIES", "").split(","):
            if not item.strip():
                continue
            try:
                proxies.append(str(ipaddress.ip_network(item.strip(), strict=False)))
            except ValueError:
                problems.append(
                    "DIALTONE_TRUSTED_PROXIES must list IP addresses or networks such as "
                    f"127.0.0.1,10.0.0.0/8; {item.strip()!r} is not one"
                )

        if problems:
            raise ConfigError("invalid configuration:\n  - " + "\n  - ".join(problems))
        return cls(
            account_sid=values["TWILIO_ACCOUNT_SID"],
            auth_token=values["TWILIO_AUTH_TOKEN"],
            api_key=values["TWILIO_API_KEY"],
            api_secret=values["TWILIO_API_SECRET"],
            twiml_app_sid=values["TWILIO_TWIML_APP_SID"],
            public_url=public_url or None,
            database_url=database_url(env),
            token_ttl=ttl,
            default_region=region,
            allowed_countries=allowed,
            cors_origins=origins,
            voice_signaling=env.get("DIALTONE_VOICE_SIGNALING", "").strip() or None,
            trusted_proxies=tuple(proxies),
        )
