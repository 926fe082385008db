"""`X-Twilio-Signature` validation against the public URL Twilio was configured with."""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from starlette.datastructures import ImmutableMultiDict
from twilio.request_validator import RequestValidator

# Set by a front end that knows this request's public base URL from a source no client
# controls (API Gateway's request context, see aws_lambda); never from request headers.
PUBLIC_URL_SCOPE_KEY = "dialtone.public_url"


def public_base_url(configured: str | None, scope: Mapping) -> str | None:
    """The base URL Twilio was given: DIALTONE_PUBLIC_URL when set, else what the front end
    established for this request; None when neither is known (the request is refused)."""
    return configured or scope.get(PUBLIC_URL_SCOPE_KEY)


def public_request_url(public_url: str, path: str, query: str) -> str:
    """The URL Twilio requested: the configured base (which may carry a stage prefix such
    as API Gateway's `/prod`) + the route path + the raw query string, byte for byte."""
    return public_url + path + (f"?{query}" if query else "")


class SignedParams(dict[str, list[str]]):
    """Every value of each form parameter, as Twilio signs them. RequestValidator reads
    them through `getall` first: Starlette's ImmutableMultiDict has none, so it would pay an
    exception and then a scan of all the parameters for each name."""

    getall = dict.__getitem__

    @classmethod
    def of(cls, params: ImmutableMultiDict | Mapping[str, str]) -> SignedParams:
        signed = cls()
        items = params.multi_items() if isinstance(params, ImmutableMultiDict) else params.items()
        for name, value in items:
            signed.setdefault(name, []).append(value)
        return signed


class WebhookValidator:
    def __init__(self, auth_token: str) -> None:
        self._validator = RequestValidator(auth_token)

    def is_valid(
        self, url: str, params: ImmutableMultiDict | Mapping[str, str], signature: str | None
    ) -> bool:
        if not signature:
            return False
        # Twilio signs the URL as it was given: one HMAC of exactly that URL usually settles
        # it. Only a mismatch pays for `validate`, which also tries the URL with and without
        # its port (Twilio's signing of those is inconsistent) — two more HMACs.
        params = SignedParams.of(params)
        exact = self._validator.compute_signature(url, params)
        if hmac.compare_digest(exact.encode(), signature.encode()):
            return True
        return self._validator.validate(url, params, signature)
