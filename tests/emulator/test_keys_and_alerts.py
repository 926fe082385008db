"""API keys made through the REST API work wherever the configured one does, and stop
working when deleted; Monitor Alerts list what the emulator recorded on its calls."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from openapi_schema_validator import OAS30Validator, validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.jwt.access_token import AccessToken
from twilio.jwt.access_token.grants import VoiceGrant
from twilio.rest import Client

from dialtone.emulator.client_tokens import TokenError, verify
from tests.emulator.conftest import EXTERNAL_NUMBER, FINAL, TWILIO_NUMBER
from tests.emulator.test_rest_spec import FORMATS, JSON, _escape

MONITOR_SPEC = (
    Path(__file__).resolve().parents[1] / "data" / "twilio-oai" / "twilio_monitor_v1.json"
)


def check_monitor(body: dict, path: str) -> None:
    """The body is what twilio-oai's Monitor v1 spec says `GET path` answers with 200, every
    field it lists present (Twilio writes them all, null when empty)."""
    document = json.loads(MONITOR_SPEC.read_text(encoding="utf-8"))
    uri = MONITOR_SPEC.as_uri()
    registry = Registry().with_resource(uri, Resource.from_contents(document, DRAFT4))
    pointer = "/".join(("paths", _escape(path), "get", "responses", "200", "content", JSON))
    validate(
        body,
        {"$ref": f"{uri}#/{pointer}/schema"},
        cls=OAS30Validator,
        registry=registry,
        format_checker=FORMATS,
        enforce_properties_required=True,
        check_schema=False,
    )


def client_for(emulator, *credentials: str) -> Client:
    client = Client(*credentials)
    client.api.base_url = client.monitor.base_url = emulator.base_url
    return client


@pytest.fixture
def account(emulator, monkeypatch):
    for name in ("TWILIO_REGION", "TWILIO_EDGE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    return client_for(emulator, emulator.credentials.account_sid, emulator.credentials.auth_token)


def _token(emulator, key: str, secret: str) -> str:
    token = AccessToken(emulator.credentials.account_sid, key, secret, identity="alice")
    token.add_grant(VoiceGrant(incoming_allow=True))
    return token.to_jwt()


def test_a_new_key_authenticates_and_signs_tokens_until_deleted(emulator, account):
    key = account.new_keys.create(friendly_name="dialtone")
    assert key.secret and key.sid.startswith("SK")
    assert account.keys(key.sid).fetch().friendly_name == "dialtone"

    with_key = client_for(emulator, key.sid, key.secret, emulator.credentials.account_sid)
    assert with_key.applications.list() == []
    token = _token(emulator, key.sid, key.secret)
    assert verify(token, emulator.credentials, api_secret_of=emulator.switch.api_secret_of)

    # Twilio: Standard keys cannot manage keys.
    with pytest.raises(TwilioRestException) as refused:
        with_key.new_keys.create(friendly_name="another")
    assert refused.value.code == 20003

    account.keys(key.sid).delete()
    with pytest.raises(TwilioException):
        with_key.applications.list()
    with pytest.raises(TokenError):
        verify(token, emulator.credentials, api_secret_of=emulator.switch.api_secret_of)
    with pytest.raises(TwilioRestException) as gone:
        account.keys(key.sid).fetch()
    assert gone.value.status == 404


def test_a_token_from_a_key_the_account_never_had_is_refused(emulator):
    token = _token(emulator, "SK" + "0" * 32, "x" * 32)
    with pytest.raises(TokenError):
        verify(token, emulator.credentials, api_secret_of=emulator.switch.api_secret_of)


def test_alerts_list_the_errors_recorded_on_calls(emulator, account, hooks):
    failing = hooks.on("/voice", (500, "text/plain", "boom"))
    emulator.add_number(TWILIO_NUMBER, VoiceUrl=failing)
    call = emulator.call_in(EXTERNAL_NUMBER, TWILIO_NUMBER)
    emulator.wait_status(call["sid"], FINAL)
    deadline = time.monotonic() + 10
    while not (alerts := account.monitor.v1.alerts.list()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [a.error_code for a in alerts] == ["11200"]
    (alert,) = alerts
    assert alert.resource_sid == call["sid"] and alert.log_level == "error"
    assert alert.request_url == failing and alert.sid.startswith("NO")
    assert account.monitor.v1.alerts(alert.sid).fetch().error_code == "11200"
    check_monitor(emulator.http.get("/v1/Alerts").json(), "/v1/Alerts")
    check_monitor(emulator.http.get(f"/v1/Alerts/{alert.sid}").json(), "/v1/Alerts/{Sid}")

    future = datetime.now(UTC) + timedelta(days=30)
    assert account.monitor.v1.alerts.list(start_date=future) == []
    assert account.monitor.v1.alerts.list(log_level="warning") == []
    assert len(account.monitor.v1.alerts.list(log_level="error")) == 1


def test_alerts_need_the_accounts_credentials(emulator):
    response = httpx.get(f"{emulator.base_url}/v1/Alerts", auth=("AC" + "0" * 32, "x"))
    assert response.status_code == 401 and response.json()["code"] == 20003
