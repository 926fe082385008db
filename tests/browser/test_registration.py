"""Device registration with the unmodified Voice SDK against the emulator's signaling."""

import time

from twilio.jwt.access_token import AccessToken
from twilio.jwt.access_token.grants import VoiceGrant
from twilio.jwt.client import ClientCapabilityToken

from tests.browser.conftest import sent_errors, start, wait_event


def _setup(page, emulator, token, **options):
    page.evaluate(
        "([token, chunderw, options]) => window.setup(token, chunderw, options)",
        [token, emulator.signal, options],
    )


PRECISE = {"enableImprovedSignalingErrorPrecision": True}


def test_register_and_unregister(page, live_emulator):
    _setup(page, live_emulator, live_emulator.access_token("alice"))
    start(page, "window.device.register()")
    wait_event(page, "registered")
    assert page.evaluate("window.device.state") == "registered"
    assert page.evaluate("window.device.identity") == "alice"
    assert live_emulator.switch.devices.identities() == {"alice": 1}
    start(page, "window.device.unregister()")
    wait_event(page, "unregistered")
    assert live_emulator.switch.devices.identities() == {}


def _expired(emulator):
    creds = emulator.credentials
    now = int(time.time())
    token = AccessToken(
        creds.account_sid,
        creds.api_key,
        creds.api_secret,
        identity="alice",
        nbf=now - 3600,
        valid_until=now - 60,
    )
    token.add_grant(VoiceGrant(incoming_allow=True))
    return token.to_jwt()


def test_an_expired_token_is_31205(page, live_emulator):
    _setup(page, live_emulator, _expired(live_emulator))
    start(page, "window.device.register()")
    (error,) = wait_event(page, "error")
    assert sent_errors(page) == [31205]
    # SDK 2.18 surfaces the gateway's 31205 as AccessTokenExpired (20104).
    assert error["code"] == 20104
    assert page.evaluate("window.device.state") != "registered"


def test_a_token_signed_with_another_secret_is_refused(page, live_emulator):
    creds = live_emulator.credentials
    token = AccessToken(
        creds.account_sid, creds.api_key, "not-the-secret-" + "x" * 32, identity="alice"
    )
    token.add_grant(VoiceGrant(incoming_allow=True))
    _setup(page, live_emulator, token.to_jwt(), **PRECISE)
    start(page, "window.device.register()")
    (error,) = wait_event(page, "error")
    assert sent_errors(page) == [31202]
    assert error["code"] == 31202
    assert live_emulator.switch.devices.identities() == {}


def test_a_lifetime_over_24_hours_is_31207(page, live_emulator):
    creds = live_emulator.credentials
    token = AccessToken(
        creds.account_sid, creds.api_key, creds.api_secret, identity="alice", ttl=86401
    )
    token.add_grant(VoiceGrant(incoming_allow=True))
    _setup(page, live_emulator, token.to_jwt(), **PRECISE)
    start(page, "window.device.register()")
    (error,) = wait_event(page, "error")
    assert sent_errors(page) == [31207]
    assert error["code"] == 31207


def test_the_legacy_capability_token_registers(page, live_emulator):
    creds = live_emulator.credentials
    capability = ClientCapabilityToken(creds.account_sid, creds.auth_token)
    capability.allow_client_incoming("legacy_bob")
    _setup(page, live_emulator, capability.to_jwt())
    start(page, "window.device.register()")
    wait_event(page, "registered")
    assert live_emulator.switch.devices.identities() == {"legacy_bob": 1}


def test_update_token_extends_the_session(page, live_emulator):
    _setup(page, live_emulator, live_emulator.access_token("alice", ttl=8))
    start(page, "window.device.register()")
    wait_event(page, "registered")
    wait_event(page, "tokenWillExpire", timeout=10)  # tokenRefreshMs is 5 s in the page
    fresh = live_emulator.access_token("alice", ttl=3600)
    page.evaluate("(token) => window.device.updateToken(token)", fresh)
    time.sleep(6)  # past the first token's expiry
    assert page.evaluate("window.seen('error')") == []
    assert page.evaluate("window.device.state") == "registered"
    assert live_emulator.switch.devices.identities() == {"alice": 1}


def test_a_token_without_incoming_cannot_register(page, live_emulator):
    token = live_emulator.access_token("carol", incoming=False, application_sid="AP" + "0" * 32)
    _setup(page, live_emulator, token)
    start(page, "window.device.register()")
    (error,) = wait_event(page, "error")
    # We send 31201 (authorization); the SDK reports it as AuthenticationFailed, 20151.
    assert error["code"] in (31201, 20151)
    assert live_emulator.switch.devices.identities() == {}


def test_a_malformed_token_is_31204(page, live_emulator):
    _setup(page, live_emulator, "not.a.jwt")
    start(page, "window.device.register()")
    (error,) = wait_event(page, "error")
    assert sent_errors(page) == [31204]
    assert error["code"] == 20101  # the SDK's AccessTokenInvalid
