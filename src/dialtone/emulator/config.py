"""Emulator configuration: the same Twilio variables the API server reads."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dialtone.devcreds import development_values

WEBHOOK_TIMEOUT = 15.0  # seconds for the whole response, as Twilio (error 11205)
WEBHOOK_CONNECT_TIMEOUT = 5.0
# Ended calls kept (with their event logs, recordings and alerts), and for how long.
HISTORY_CALLS = 1000
HISTORY_SECONDS = 24 * 3600.0


@dataclass(frozen=True)
class Credentials:
    account_sid: str
    auth_token: str = field(repr=False)
    api_key: str
    api_secret: str = field(repr=False)
    generated: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Credentials:
        """Values from the environment; deterministic development values for what is unset."""
        env = os.environ if env is None else env
        dev = development_values()
        names = ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_API_KEY", "TWILIO_API_SECRET")
        values = {name: env.get(name) or dev[name] for name in names}
        return cls(
            account_sid=values["TWILIO_ACCOUNT_SID"],
            auth_token=values["TWILIO_AUTH_TOKEN"],
            api_key=values["TWILIO_API_KEY"],
            api_secret=values["TWILIO_API_SECRET"],
            generated=tuple(name for name in names if not env.get(name)),
        )


@dataclass(frozen=True)
class EmulatorConfig:
    credentials: Credentials
    # Base URL of this emulator as webhook targets and REST clients see it.
    public_url: str = "http://127.0.0.1:3000"
    clock_scale: float = 1.0
    webhook_timeout: float = WEBHOOK_TIMEOUT
    webhook_connect_timeout: float = WEBHOOK_CONNECT_TIMEOUT
    # Local address for WebRTC media: browsers gather no loopback candidates, so it must be
    # a real interface; None picks the first non-loopback one.
    media_address: str | None = None
    # host:port of the signaling endpoint as browsers reach it (the console's `chunderw`).
    signal_host: str | None = None
    # Per-run key for the control API and the console (besides the account's credentials).
    console_key: str = field(default_factory=lambda: secrets.token_urlsafe(18), repr=False)
    # Host names it answers besides loopback and public_url's (DNS rebinding is refused).
    allowed_hosts: tuple[str, ...] = ()
    # The only folder `file://` media (<Play>, say_audio) may come from; None refuses them.
    media_folder: Path | None = None
    # Ended calls kept for the REST API and the console: the newest `history_calls` legs, none
    # older than `history_seconds` (emulated time); live calls and their legs are always kept.
    history_calls: int = HISTORY_CALLS
    history_seconds: float = HISTORY_SECONDS
