"""twilio-python's REST Client for the configured account, on Twilio or on an emulator."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dialtone.devcreds import development_values


class AccountError(Exception):
    """The account cannot be reached or configured as asked; the message says why."""


def rest_client(env: Mapping[str, str], api_url: str | None = None) -> Any:
    """A Client authenticated with the auth token (or, failing that, the API key). With
    `api_url` (an emulator), every domain the commands use goes there, and unset
    credentials are the emulator's development values."""
    from twilio.rest import Client  # large: imported only by the commands that talk REST

    values = {name: value for name, value in env.items() if value}
    if api_url:
        values = {**development_values(), **values}
    account_sid = values.get("TWILIO_ACCOUNT_SID", "").strip()
    auth_token = values.get("TWILIO_AUTH_TOKEN", "").strip()
    api_key = values.get("TWILIO_API_KEY", "").strip()
    api_secret = values.get("TWILIO_API_SECRET", "").strip()
    if not account_sid:
        raise AccountError("TWILIO_ACCOUNT_SID is required (Console → Account → Account Info)")
    if auth_token:
        client = Client(account_sid, auth_token)
    elif api_key and api_secret:
        client = Client(api_key, api_secret, account_sid)
    else:
        raise AccountError(
            "TWILIO_AUTH_TOKEN (or TWILIO_API_KEY and TWILIO_API_SECRET) is required"
        )
    return _pointed(client, api_url)


def api_key_client(account_sid: str, api_key: str, api_secret: str, api_url: str | None) -> Any:
    """A Client that authenticates with the API key and its secret only."""
    from twilio.rest import Client

    return _pointed(Client(api_key, api_secret, account_sid), api_url)


def _pointed(client: Any, api_url: str | None) -> Any:
    if api_url:
        for domain in (client.api, client.monitor):
            domain.base_url = api_url.rstrip("/")
    return client


def twilio_error(exc: Exception) -> str:
    """One line for what Twilio answered: its code and message where it gave them (a list
    request that fails raises a bare TwilioException carrying the HTTP response)."""
    import json

    code, message = getattr(exc, "code", None), getattr(exc, "msg", None)
    response = exc.args[1] if len(exc.args) > 1 else None
    if code is None and response is not None:
        try:
            body = json.loads(getattr(response, "text", "") or "{}")
        except ValueError:
            body = {}
        code, message = body.get("code"), body.get("message")
        if code is None:
            return f"Twilio answered HTTP {getattr(response, 'status_code', '?')}"
    return f"Twilio error {code}: {message}" if code else str(exc)
