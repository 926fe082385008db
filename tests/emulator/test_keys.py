"""API keys through twilio-python's Client, as `dialtone setup` makes one and `dialtone doctor`
checks it: the secret once, keys that authenticate REST requests and sign AccessTokens until
they are deleted, and only the account's own credentials managing them.

Response bodies are checked against Twilio's spec in test_rest_spec.py (`Keys.json`)."""

from __future__ import annotations

import json

import httpx
import pytest
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.jwt.access_token import AccessToken
from twilio.jwt.access_token.grants import VoiceGrant
from twilio.rest import Client

from dialtone.emulator.client_tokens import INVALID, TokenError, verify
from tests.emulator.conftest import Emulator, twilio_client


def _token(emulator: Emulator, key: str, secret: str) -> str:
    token = AccessToken(emulator.credentials.account_sid, key, secret, identity="alice")
    token.add_grant(VoiceGrant(incoming_allow=True))
    return token.to_jwt()


def _verify(emulator: Emulator, token: str):
    return verify(token, emulator.credentials, api_secret_of=emulator.switch.api_secret_of)


def _raw(emulator: Emulator, path: str) -> dict:
    return emulator.http.get(f"{emulator.api}/{path}").json()


def _refused(call, status: int, code: int) -> None:
    with pytest.raises(TwilioException) as refused:
        call()
    error = refused.value
    if isinstance(error, TwilioRestException):
        assert (error.status, error.code) == (status, code)
    else:  # a list page: TwilioException("Unable to fetch page", response)
        response = error.args[1]
        assert (response.status_code, json.loads(response.text)["code"]) == (status, code)


def test_the_secret_is_returned_once_and_never_listed_or_fetched(emulator, account):
    key = account.new_keys.create(friendly_name="dialtone")
    assert key.sid.startswith("SK") and len(key.sid) == 34
    assert len(key.secret) == 32 and key.friendly_name == "dialtone"
    assert key.date_created is not None and key.date_updated is not None

    listed = {k.sid: k.friendly_name for k in account.keys.list()}
    assert listed == {
        emulator.credentials.api_key: "dialtone development key",  # the configured key
        key.sid: "dialtone",
    }
    assert account.keys(key.sid).fetch().friendly_name == "dialtone"
    # The wire bodies, not only what twilio-python reads from them.
    assert all("secret" not in k for k in _raw(emulator, "Keys.json")["keys"])
    assert "secret" not in _raw(emulator, f"Keys/{key.sid}.json")
    assert "secret" not in _raw(emulator, f"Keys/{emulator.credentials.api_key}.json")


def test_a_key_is_renamed_then_deleted(account):
    key = account.new_keys.create(friendly_name="dialtone")
    renamed = account.keys(key.sid).update(friendly_name="dialtone (old)")
    assert renamed.sid == key.sid and renamed.friendly_name == "dialtone (old)"
    assert renamed.date_updated >= renamed.date_created
    assert account.keys(key.sid).fetch().friendly_name == "dialtone (old)"

    assert account.keys(key.sid).delete() is True
    _refused(account.keys(key.sid).fetch, 404, 20404)
    _refused(lambda: account.keys(key.sid).update(friendly_name="x"), 404, 20404)
    _refused(account.keys(key.sid).delete, 404, 20404)
    assert key.sid not in [k.sid for k in account.keys.list()]


def test_an_unknown_key_is_20404(account):
    _refused(account.keys("SK" + "0" * 32).fetch, 404, 20404)


def test_keys_are_listed_in_pages(account):
    made = {account.new_keys.create(friendly_name=f"key {i}").sid for i in range(3)}
    first = account.keys.page(page_size=2)
    assert len(list(first)) == 2 and first.next_page_url is not None
    assert "PageSize=2" in first.next_page_url and "Page=1" in first.next_page_url
    assert made < {k.sid for k in account.keys.list(page_size=2)}  # follows next_page_uri


def test_a_new_key_authenticates_and_signs_tokens_until_deleted(emulator, account):
    key = account.new_keys.create(friendly_name="dialtone")
    with_key = twilio_client(emulator, key.sid, key.secret, emulator.credentials.account_sid)
    assert with_key.applications.list() == []
    assert with_key.calls.list() == []
    token = _token(emulator, key.sid, key.secret)
    assert _verify(emulator, token).identity == "alice"
    # A key's secret is not interchangeable with another's.
    with pytest.raises(TokenError):
        _verify(emulator, _token(emulator, key.sid, emulator.credentials.api_secret))

    account.keys(key.sid).delete()
    _refused(with_key.applications.list, 401, 20003)
    with pytest.raises(TokenError) as refused:
        _verify(emulator, token)
    # An issuer the account no longer has: Twilio's 20103 lists "API Key is … deleted".
    assert refused.value.code == INVALID


@pytest.mark.parametrize("action", ["create", "list", "fetch", "update", "delete"])
def test_api_key_credentials_cannot_manage_keys(emulator, account, action):
    """Twilio: Standard keys reach "all Twilio API resources, except for API key and Account
    resources"; it answers 401 with 20003 "Authenticate"."""
    target = account.new_keys.create(friendly_name="target")
    credentials = emulator.credentials
    with_key = twilio_client(
        emulator, credentials.api_key, credentials.api_secret, credentials.account_sid
    )
    attempt = {
        "create": lambda: with_key.new_keys.create(friendly_name="another"),
        "list": with_key.keys.list,
        "fetch": with_key.keys(target.sid).fetch,
        "update": lambda: with_key.keys(target.sid).update(friendly_name="x"),
        "delete": with_key.keys(target.sid).delete,
    }[action]
    _refused(attempt, 401, 20003)
    assert account.keys(target.sid).fetch().friendly_name == "target"
    assert len(account.keys.list()) == 2  # nothing was made
    # The same key still reaches everything else.
    assert with_key.applications.list() == []


def test_deleting_the_configured_key_revokes_it_too(emulator, account):
    credentials = emulator.credentials
    token = _token(emulator, credentials.api_key, credentials.api_secret)
    assert _verify(emulator, token)
    account.keys(credentials.api_key).delete()
    response = httpx.get(
        f"{emulator.base_url}{emulator.api}/Calls.json",
        auth=(credentials.api_key, credentials.api_secret),
    )
    assert response.status_code == 401 and response.json()["code"] == 20003
    with pytest.raises(TokenError):
        _verify(emulator, token)


def test_the_account_sid_with_a_wrong_token_is_refused(emulator, account):
    client: Client = twilio_client(emulator, emulator.credentials.account_sid, "0" * 32)
    _refused(lambda: client.new_keys.create(friendly_name="x"), 401, 20003)
