"""Client tokens for the browser phone: the AccessToken of Voice SDK 2.x and the
legacy capability token of the seeds (Voice SDK 1.x)."""

from __future__ import annotations

from twilio.jwt.access_token import AccessToken
from twilio.jwt.access_token.grants import VoiceGrant
from twilio.jwt.client import ClientCapabilityToken

from dialtone.server.config import Settings


def access_token(settings: Settings, identity: str) -> str:
    """AccessToken signed with the API key secret: incoming to `identity`, outgoing via
    the TwiML App."""
    token = AccessToken(
        settings.account_sid,
        settings.api_key,
        settings.api_secret,
        identity=identity,
        ttl=settings.token_ttl,
    )
    token.add_grant(
        VoiceGrant(incoming_allow=True, outgoing_application_sid=settings.twiml_app_sid)
    )
    return token.to_jwt()


def capability_token(settings: Settings, client_name: str) -> str:
    """Legacy ClientCapabilityToken signed with the auth token (scopes client:incoming/outgoing)."""
    token = ClientCapabilityToken(settings.account_sid, settings.auth_token, ttl=settings.token_ttl)
    token.allow_client_incoming(client_name)
    token.allow_client_outgoing(settings.twiml_app_sid)
    return token.to_jwt()
