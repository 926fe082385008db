"""Verification of Voice SDK tokens, built with twilio-python's own classes as applications do.

twilio-python stamps `nbf`/`exp` from `time.time()`; the `now` fixture freezes that clock inside
`twilio.jwt` so every token's times are exact and `verify(..., now=...)` can step around them.

Tokens naming another account or API key are 31204, not 31202: the emulator has no secret for
that issuer, so the signature cannot even be checked (the same token with the right issuer but
the wrong secret is 31202).
"""

import dataclasses
import json
import time
from types import SimpleNamespace

import jwt
import pytest
import twilio.jwt
import twilio.jwt.access_token
from jwt.utils import base64url_decode, base64url_encode
from twilio.jwt.access_token import AccessToken
from twilio.jwt.access_token.grants import VoiceGrant
from twilio.jwt.client import ClientCapabilityToken

from dialtone.emulator.client_tokens import ClientGrant, TokenError, verify
from dialtone.emulator.config import Credentials

CREDS = Credentials.from_env({})
APP = "AP" + "0" * 32
OTHER_ACCOUNT = "AC" + "1" * 32
OTHER_KEY = "SK" + "2" * 32
DAY = 86400


@pytest.fixture
def now(monkeypatch) -> int:
    """Freeze twilio-python's token clock at the current whole second."""
    frozen = int(time.time())
    clock = SimpleNamespace(time=lambda: frozen)
    monkeypatch.setattr(twilio.jwt, "time", clock)
    monkeypatch.setattr(twilio.jwt.access_token, "time", clock)
    return frozen


def access_token(
    *grants,
    identity="alice",
    account=CREDS.account_sid,
    key=CREDS.api_key,
    secret=CREDS.api_secret,
    **kwargs,
) -> str:
    token = AccessToken(account, key, secret, identity=identity, grants=list(grants), **kwargs)
    return token.to_jwt()


def capability_token(incoming=None, outgoing=None, account=CREDS.account_sid, **kwargs) -> str:
    token = ClientCapabilityToken(account, kwargs.pop("auth_token", CREDS.auth_token), **kwargs)
    if incoming:
        token.allow_client_incoming(incoming)
    if outgoing is not None:
        token.allow_client_outgoing(**outgoing)
    return token.to_jwt()


def code_of(token: str, now: float | None = None, creds: Credentials = CREDS) -> int:
    with pytest.raises(TokenError) as caught:
        verify(token, creds, now=now)
    assert str(caught.value.code) in str(caught.value)
    assert caught.value.message
    return caught.value.code


# --- AccessToken -----------------------------------------------------------------------------


def test_access_token_with_both_directions(now):
    grant = VoiceGrant(
        incoming_allow=True,
        outgoing_application_sid=APP,
        outgoing_application_params={"foo": "bar", "n": 3, "flag": True},
    )
    result = verify(access_token(grant), CREDS, now=now)
    assert result == ClientGrant(
        kind="access",
        identity="alice",
        incoming=True,
        outgoing_application_sid=APP,
        outgoing_params={"foo": "bar", "n": "3", "flag": "true"},
        expires_at=now + 3600,
    )
    assert result.ttl(now + 600) == 3000
    assert result.ttl(now + 7200) == 0
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.identity = "mallory"  # type: ignore[misc]


def test_access_token_incoming_only(now):
    result = verify(access_token(VoiceGrant(incoming_allow=True)), CREDS, now=now)
    assert result.incoming is True
    assert result.outgoing_application_sid is None
    assert result.outgoing_params == {}


def test_access_token_outgoing_only(now):
    result = verify(access_token(VoiceGrant(outgoing_application_sid=APP)), CREDS, now=now)
    assert result.identity == "alice"
    assert result.incoming is False
    assert result.outgoing_application_sid == APP
    assert result.outgoing_params == {}


def test_access_token_with_region_header_is_accepted(now):
    token = access_token(VoiceGrant(incoming_allow=True), region="ie1")
    assert jwt.get_unverified_header(token)["twr"] == "ie1"
    assert verify(token, CREDS, now=now).identity == "alice"


def test_default_clock_is_wall_time(now):
    token = access_token(VoiceGrant(incoming_allow=True))
    result = verify(token, CREDS)  # real time.time(), at or just after the frozen second
    assert 3590 <= result.ttl() <= 3600


@pytest.mark.parametrize(
    "token_kwargs",
    [
        pytest.param({"identity": None}, id="no-identity"),
        pytest.param({"grants_override": []}, id="no-voice-grant"),
        pytest.param({"grants_override": [VoiceGrant()]}, id="empty-voice-grant"),
    ],
)
def test_access_token_without_identity_or_grants_is_invalid(now, token_kwargs):
    grants = token_kwargs.pop("grants_override", [VoiceGrant(incoming_allow=True)])
    assert code_of(access_token(*grants, **token_kwargs), now) == 31204


# --- Capability token ------------------------------------------------------------------------


def test_capability_token_with_both_scopes(now):
    token = capability_token(
        incoming="alice", outgoing={"application_sid": APP, "foo": "bar baz", "q": "a=b&c"}
    )
    scope = jwt.decode(token, options={"verify_signature": False})["scope"]
    assert "appParams=" in scope and "clientName=alice" in scope
    result = verify(token, CREDS, now=now)
    assert result == ClientGrant(
        kind="capability",
        identity="alice",
        incoming=True,
        outgoing_application_sid=APP,
        outgoing_params={"foo": "bar baz", "q": "a=b&c"},
        expires_at=now + 3600,
    )


def test_capability_token_incoming_only(now):
    result = verify(capability_token(incoming="bob"), CREDS, now=now)
    assert (result.identity, result.incoming, result.outgoing_application_sid) == (
        "bob",
        True,
        None,
    )


def test_capability_token_outgoing_only_has_no_identity(now):
    result = verify(capability_token(outgoing={"application_sid": APP}), CREDS, now=now)
    assert result.identity is None
    assert result.incoming is False
    assert result.outgoing_application_sid == APP
    assert result.outgoing_params == {}


def test_capability_identity_falls_back_to_outgoing_client_name(now):
    # twilio-python only adds clientName to the outgoing scope when incoming is granted too;
    # other libraries may send it alone.
    claims = {
        "iss": CREDS.account_sid,
        "nbf": now,
        "exp": now + 60,
        "scope": f"scope:client:outgoing?appSid={APP}&clientName=carol "
        "scope:stream:subscribe?path=%2F2010-04-01%2FEvents",
    }
    token = jwt.encode(claims, CREDS.auth_token, algorithm="HS256")
    result = verify(token, CREDS, now=now)
    assert (result.identity, result.incoming) == ("carol", False)


def test_capability_token_without_client_scope_is_invalid(now):
    token = ClientCapabilityToken(CREDS.account_sid, CREDS.auth_token)
    token.allow_event_stream()
    assert code_of(token.to_jwt(), now) == 31204


# --- Signature and issuer --------------------------------------------------------------------


def test_wrong_secret_is_a_signature_failure(now):
    assert code_of(access_token(VoiceGrant(incoming_allow=True), secret="x" * 32), now) == 31202
    assert code_of(capability_token(incoming="alice", auth_token="y" * 32), now) == 31202


def test_access_token_secret_does_not_sign_capability_tokens(now):
    # The two formats use different keys; mixing them up is a signature failure.
    assert code_of(capability_token(incoming="alice", auth_token=CREDS.api_secret), now) == 31202


def tamper(token: str, **changes) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64url_decode(payload))
    for name, value in changes.items():
        target = claims["grants"] if name == "identity" else claims
        target[name] = value
    forged = base64url_encode(json.dumps(claims).encode()).decode()
    return f"{header}.{forged}.{signature}"


def test_tampered_payload_is_a_signature_failure(now):
    token = access_token(VoiceGrant(incoming_allow=True))
    assert code_of(tamper(token, identity="mallory"), now) == 31202
    assert code_of(tamper(token, exp=now + 60), now) == 31202


def test_other_account_or_api_key_is_invalid(now):
    grant = VoiceGrant(incoming_allow=True)
    assert code_of(access_token(grant, account=OTHER_ACCOUNT), now) == 31204
    assert code_of(access_token(grant, key=OTHER_KEY), now) == 31204
    assert code_of(capability_token(incoming="alice", account=OTHER_ACCOUNT), now) == 31204
    # A forged issuer is caught before the signature.
    assert code_of(tamper(access_token(grant), iss=OTHER_KEY), now) == 31204


@pytest.mark.parametrize(
    "token",
    [
        "",
        "garbage",
        "a.b.c",
        "eyJhbGciOiJIUzI1NiJ9.bm90IGpzb24.c2ln",  # payload is not JSON
        jwt.encode({"iss": CREDS.account_sid, "scope": "x"}, None, algorithm="none"),
        jwt.encode({"iss": CREDS.account_sid, "exp": 1}, CREDS.auth_token),  # neither kind
        jwt.encode(
            {"iss": CREDS.api_key, "sub": CREDS.account_sid, "exp": 1},
            CREDS.api_secret,
            headers={"cty": "twilio-other;v=9"},
        ),
    ],
    ids=["empty", "garbage", "segments", "not-json", "alg-none", "no-kind", "unknown-cty"],
)
def test_malformed_tokens_are_invalid(now, token):
    assert code_of(token, now) == 31204


def test_malformed_scope_is_invalid(now):
    claims = {"iss": CREDS.account_sid, "nbf": now, "exp": now + 60, "scope": "client:incoming"}
    assert code_of(jwt.encode(claims, CREDS.auth_token), now) == 31204


# --- Time ------------------------------------------------------------------------------------


def test_expired_tokens(now):
    access = access_token(VoiceGrant(incoming_allow=True), nbf=now - 100, ttl=10)
    capability = capability_token(incoming="alice", nbf=now - 100, ttl=10)
    for token in (access, capability):
        assert verify(token, CREDS, now=now + 9).ttl(now + 9) == 1
        assert code_of(token, now + 10) == 31205  # exp itself is already too late
        assert code_of(token, now + 3600) == 31205


def test_not_yet_valid_is_invalid(now):
    token = access_token(VoiceGrant(incoming_allow=True), nbf=now + 60)
    assert code_of(token, now) == 31204
    assert verify(token, CREDS, now=now + 60).identity == "alice"


def test_lifetime_limit_is_one_day(now):
    grant = VoiceGrant(incoming_allow=True)
    for make in (
        lambda ttl: access_token(grant, ttl=ttl),
        lambda ttl: capability_token(incoming="alice", ttl=ttl),
    ):
        assert verify(make(DAY), CREDS, now=now).expires_at == now + DAY
        assert code_of(make(DAY + 1), now) == 31207


def test_lifetime_counts_from_nbf(now):
    # Valid for less than a day from now, but issued for more than a day.
    token = access_token(VoiceGrant(incoming_allow=True), nbf=now - 1000, ttl=DAY - 500)
    assert code_of(token, now) == 31207


def test_lifetime_without_nbf_counts_from_now(now):
    token = access_token(VoiceGrant(incoming_allow=True), nbf=None, ttl=DAY + 1)
    assert "nbf" not in jwt.decode(token, options={"verify_signature": False})
    assert code_of(token, now) == 31207
    assert verify(token, CREDS, now=now + 1).ttl(now + 1) == DAY
