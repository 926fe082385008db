"""`X-Twilio-Signature` validation against the public URL Twilio was configured with."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.datastructures import ImmutableMultiDict
from twilio.request_validator import RequestValidator


def public_request_url(public_url: str, path: str, query: str) -> str:
    """The URL Twilio requested: the configured base (which may carry a stage prefix such
    as API Gateway's `/prod`) + the route path + the raw query string, byte for byte."""
    return public_url + path + (f"?{query}" if query else "")


class WebhookValidator:
    def __init__(self, auth_token: str) -> None:
        self._validator = RequestValidator(auth_token)

    def is_valid(
        self, url: str, params: ImmutableMultiDict | Mapping[str, str], signature: str | None
    ) -> bool:
        if not signature:
            return False
        return self._validator.validate(url, params, signature)
