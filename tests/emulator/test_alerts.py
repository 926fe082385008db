"""Monitor Alerts through twilio-python's `client.monitor.v1.alerts`, as `dialtone doctor` reads
them: the errors and warnings the emulator recorded on calls, filtered by date and log level,
paged, and validated against twilio-oai's `twilio_monitor_v1.json` (kept in tests/data, so these
checks never skip)."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from openapi_schema_validator import OAS30Validator, validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from tests.conftest import _free_port
from tests.emulator.conftest import EXTERNAL_NUMBER, FINAL, TWILIO_NUMBER, Emulator
from tests.emulator.test_rest_spec import FORMATS, JSON, _escape, _formats_in

MONITOR_SPEC = (
    Path(__file__).resolve().parents[1] / "data" / "twilio-oai" / "twilio_monitor_v1.json"
)
HELLO = "<Response><Say>Hello.</Say></Response>"


def _document() -> dict:
    return json.loads(MONITOR_SPEC.read_text(encoding="utf-8"))


def check_monitor(response: httpx.Response, path: str) -> dict:
    """`response` is what twilio-oai's Monitor v1 spec says `GET path` answers with 200, every
    field it lists present (Twilio writes them all, null when empty)."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].split(";")[0] == "application/json"
    document = _document()
    uri = MONITOR_SPEC.as_uri()
    registry = Registry().with_resource(uri, Resource.from_contents(document, DRAFT4))
    pointer = "/".join(("paths", _escape(path), "get", "responses", "200", "content", JSON))
    body = response.json()
    validate(
        body,
        {"$ref": f"{uri}#/{pointer}/schema"},
        cls=OAS30Validator,
        registry=registry,
        format_checker=FORMATS,
        enforce_properties_required=True,
        check_schema=False,
    )
    return body


def _failing_number(emulator: Emulator, hooks, failure: str) -> str:
    """Our number with a voice URL that fails as `failure` says; returns that URL."""
    if failure == "500":
        url = hooks.on("/voice", (500, "text/plain", "boom"))
    else:  # nothing listens there: the connection is refused
        url = f"http://127.0.0.1:{_free_port()}/voice"
    emulator.add_number(TWILIO_NUMBER, VoiceUrl=url)
    return url


def _failed_call(emulator: Emulator) -> str:
    call = emulator.call_in(EXTERNAL_NUMBER, TWILIO_NUMBER)
    emulator.wait_status(call["sid"], FINAL)
    return call["sid"]


def _wait_alerts(client: Client, count: int, **filters: Any) -> list:
    deadline = time.monotonic() + 10
    while len(alerts := client.monitor.v1.alerts.list(**filters)) < count:
        assert time.monotonic() < deadline, f"{len(alerts)} alerts, expected {count}"
        time.sleep(0.05)
    return alerts


@pytest.mark.parametrize(("failure", "code"), [("500", "11200"), ("closed port", "11205")])
def test_a_failed_voice_url_is_an_error_alert_on_its_call(emulator, account, hooks, failure, code):
    url = _failing_number(emulator, hooks, failure)
    call_sid = _failed_call(emulator)

    (alert,) = _wait_alerts(account, 1)
    assert alert.error_code == code and alert.log_level == "error"
    assert alert.resource_sid == call_sid and alert.account_sid == emulator.credentials.account_sid
    assert alert.sid.startswith("NO") and len(alert.sid) == 34
    assert alert.request_url == url and alert.request_method == "POST"
    assert alert.more_info == f"https://www.twilio.com/docs/errors/{code}"
    assert alert.api_version == "2010-04-01" and alert.service_sid is None
    assert isinstance(alert.date_created, datetime) and alert.date_generated == alert.date_created
    assert alert.url == f"{emulator.base_url}/v1/Alerts/{alert.sid}"
    # Twilio's alert_text is form-encoded: Msg, ErrorCode, LogLevel, url, httpResponse.
    text = parse_qs(alert.alert_text)
    assert text["ErrorCode"] == [code] and text["LogLevel"] == ["ERROR"] and text["url"] == [url]
    assert text.get("httpResponse") == (["500"] if failure == "500" else None)
    # The list leaves out the request and response; a fetch has them.
    assert alert.request_variables is None and alert.response_body is None

    fetched = account.monitor.v1.alerts(alert.sid).fetch()
    assert fetched.sid == alert.sid and fetched.error_code == code
    variables = parse_qs(fetched.request_variables)
    assert variables["CallSid"] == [call_sid] and variables["To"] == [TWILIO_NUMBER]
    assert fetched.request_headers is None
    if failure == "500":
        assert fetched.response_body == "boom"
        assert "text/plain" in parse_qs(fetched.response_headers)["content-type"][0]
    else:
        assert fetched.response_body is None and fetched.response_headers is None

    listed = check_monitor(emulator.http.get("/v1/Alerts"), "/v1/Alerts")
    assert [a["sid"] for a in listed["alerts"]] == [alert.sid]
    assert set(listed["alerts"][0]) == set(
        _document()["components"]["schemas"]["monitor.v1.alert"]["properties"]
    )
    one = check_monitor(emulator.http.get(f"/v1/Alerts/{alert.sid}"), "/v1/Alerts/{Sid}")
    assert set(one) == set(
        _document()["components"]["schemas"]["monitor.v1.alert-instance"]["properties"]
    )


def test_alerts_are_filtered_by_date_and_log_level(emulator, account, hooks):
    """`StartDate`/`EndDate`: "on or after" / "on or before", `YYYY-MM-DD` or
    `YYYY-MM-DDThh:mm:ssZ` in GMT; `LogLevel`: error, warning, notice or debug (the spec)."""
    before = emulator.switch.clock.utcnow() - timedelta(seconds=1)
    callback = hooks.on("/status", (500, "text/plain", "no"))
    emulator.add_number(
        TWILIO_NUMBER,
        VoiceUrl=hooks.on("/voice", (500, "text/plain", "boom")),
        StatusCallback=callback,
    )
    call_sid = _failed_call(emulator)
    # The voice URL's 11200 is an error; the status callback's 15003 only a warning.
    alerts = _wait_alerts(account, 2)
    assert [(a.error_code, a.log_level) for a in alerts] == [
        ("15003", "warning"),
        ("11200", "error"),
    ]
    assert {a.resource_sid for a in alerts} == {call_sid}
    assert alerts[0].date_created >= alerts[1].date_created  # newest first
    assert alerts[0].request_url == callback

    alerts_ = account.monitor.v1.alerts
    assert [a.error_code for a in alerts_.list(log_level="error")] == ["11200"]
    assert [a.error_code for a in alerts_.list(log_level="warning")] == ["15003"]
    assert alerts_.list(log_level="notice") == []

    first, last = alerts[-1].date_created, alerts[0].date_created
    assert len(alerts_.list(start_date=before)) == 2
    assert len(alerts_.list(start_date=first, end_date=last)) == 2  # both ends included
    assert alerts_.list(start_date=last + timedelta(seconds=1)) == []
    assert alerts_.list(end_date=first - timedelta(seconds=1)) == []
    assert [a.error_code for a in alerts_.list(start_date=before, log_level="error")] == ["11200"]
    # A bare date: the whole day, at either end.
    day = first.strftime("%Y-%m-%d")
    assert len(alerts_.list(start_date=day, end_date=last.strftime("%Y-%m-%d"))) == 2
    assert alerts_.list(end_date=(first - timedelta(days=1)).strftime("%Y-%m-%d")) == []


def test_alerts_are_paged_with_their_filters(emulator, account, hooks):
    _failing_number(emulator, hooks, "500")
    calls = [_failed_call(emulator) for _ in range(3)]
    _wait_alerts(account, 3)

    page = account.monitor.v1.alerts.page(log_level="error", page_size=2)
    assert [a.resource_sid for a in page] == calls[::-1][:2]  # newest first
    query = parse_qs(urlsplit(page.next_page_url).query)
    assert query == {"LogLevel": ["error"], "PageSize": ["2"], "Page": ["1"]}
    assert page.next_page_url.startswith(f"{emulator.base_url}/v1/Alerts?")
    body = check_monitor(
        emulator.http.get("/v1/Alerts", params={"LogLevel": "error", "PageSize": 2, "Page": 1}),
        "/v1/Alerts",
    )
    assert len(body["alerts"]) == 1 and body["meta"]["next_page_url"] is None
    assert body["meta"]["page"] == 1 and body["meta"]["page_size"] == 2
    assert body["meta"]["previous_page_url"] is not None and body["meta"]["key"] == "alerts"
    # twilio-python follows meta.next_page_url to the end.
    listed = account.monitor.v1.alerts.list(log_level="error", page_size=2)
    assert [a.resource_sid for a in listed] == calls[::-1]
    assert len(account.monitor.v1.alerts.list(limit=2)) == 2


def test_alerts_outlive_their_call(emulator, account, hooks):
    _failing_number(emulator, hooks, "500")
    call_sid = _failed_call(emulator)
    (alert,) = _wait_alerts(account, 1)
    emulator.idle()
    assert account.calls(call_sid).delete() is True
    assert [a.sid for a in account.monitor.v1.alerts.list()] == [alert.sid]
    assert account.monitor.v1.alerts(alert.sid).fetch().resource_sid == call_sid


def test_no_alerts_is_an_empty_page(emulator, account):
    assert account.monitor.v1.alerts.list() == []
    body = check_monitor(emulator.http.get("/v1/Alerts"), "/v1/Alerts")
    assert body["alerts"] == [] and body["meta"]["next_page_url"] is None


def test_an_unknown_alert_is_20404(account):
    with pytest.raises(TwilioRestException) as missing:
        account.monitor.v1.alerts("NO" + "0" * 32).fetch()
    assert (missing.value.status, missing.value.code) == (404, 20404)


def test_a_malformed_date_is_400(emulator):
    response = emulator.http.get("/v1/Alerts", params={"StartDate": "yesterday"})
    assert response.status_code == 400 and response.json()["code"] == 20001


def test_alerts_need_the_accounts_credentials_or_one_of_its_keys(emulator, account):
    response = httpx.get(f"{emulator.base_url}/v1/Alerts", auth=("AC" + "0" * 32, "x"))
    assert response.status_code == 401 and response.json()["code"] == 20003
    key = account.new_keys.create(friendly_name="doctor")
    response = httpx.get(f"{emulator.base_url}/v1/Alerts", auth=(key.sid, key.secret))
    assert response.status_code == 200 and response.json()["alerts"] == []


def test_every_format_the_alert_schemas_use_has_a_checker():
    """jsonschema ignores formats it has no checker for: each one the Alerts responses use
    must be registered, or its values would go unchecked."""
    document = _document()
    used: set[str] = set()
    for path in ("/v1/Alerts", "/v1/Alerts/{Sid}"):
        schema = document["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]
        used |= set(_formats_in(SimpleNamespace(document=document), schema["schema"]))
    assert {"date-time", "uri", "http-method"} <= used
    assert used <= set(FORMATS.checkers), f"unchecked formats: {used - set(FORMATS.checkers)}"
    assert not FORMATS.conforms("Thu, 30 Jul 2015 20:00:00 +0000", "date-time")
