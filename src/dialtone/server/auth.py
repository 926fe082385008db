"""The phone's own requests (call history) are authenticated with the AccessToken this server
issued: HS256 with the API key secret, issued by our API key for our account."""

from __future__ import annotations

import jwt

from dialtone.server.config import Settings


class NotAuthenticated(Exception):
    pass


def identity_of(settings: Settings, authorization: str | None) -> str:
    """The Client identity of a valid `Authorization: Bearer <accessToken>`."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise NotAuthenticated("an Authorization: Bearer <accessToken> header is required")
    try:
        claims = jwt.decode(
            token.strip(),
            settings.api_secret,
            algorithms=["HS256"],
            issuer=settings.api_key,
            options={"require": ["exp", "iss", "sub"]},
        )
    except jwt.ExpiredSignatureError:
        raise NotAuthenticated("the token has expired; sign in again") from None
    except jwt.PyJWTError:
        raise NotAuthenticated("the token is not valid") from None
    identity = (claims.get("grants") or {}).get("identity")
    if claims.get("sub") != settings.account_sid or not isinstance(identity, str):
        raise NotAuthenticated("the token is not valid")
    return identity
