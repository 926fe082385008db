"""Failures inside a webhook: safe TwiML for the caller, one structured log line for us."""

import json
import logging

import pytest

from dialtone import logs
from tests.server.test_call_incoming import SEED_001_PARAMS
from tests.server.test_call_outgoing import SEED_PARAMS
from tests.twiml_helpers import structure

APOLOGY = (
    "Response",
    {},
    "",
    (
        (
            "Say",
            {"language": "en-US"},
            "We are sorry, this call cannot be completed right now. Please try again later.",
            (),
        ),
        ("Hangup", {}, "", ()),
    ),
)


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/twilio/retrieve_twiml/call_incoming", SEED_001_PARAMS),
        ("/twilio/retrieve_twiml/call_outgoing", SEED_PARAMS),
    ],
)
def test_database_down_still_answers_200_with_an_apology(
    make_server, settings, unavailable_db, caplog, path, params
):
    server = make_server(settings, database=unavailable_db)
    caplog.set_level(logging.INFO, logger="dialtone")
    response = server.webhook(path, params)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    assert structure(response.text) == APOLOGY
    assert "Traceback" not in response.text and "Error" not in response.text

    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    line = logs.JsonFormatter().format(errors[0])
    entry = json.loads(line)
    assert entry["event"] == "webhook_failed"
    assert entry["call_sid"] == params["CallSid"]
    assert entry["error"] == "OperationalError"
    assert server.settings.auth_token not in line


def test_healthz_reports_the_database(server):
    response = server.http.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


def test_healthz_is_503_when_the_database_is_down(make_server, settings, unavailable_db):
    server = make_server(settings, database=unavailable_db)
    response = server.http.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable" and body["database"] == "unreachable"
    assert "does not answer" in body["reason"]
    assert "127.0.0.1" not in body["reason"] and "nonexistent" not in body["reason"]


def test_logs_never_carry_secrets(server, caplog):
    caplog.set_level(logging.DEBUG)
    body = server.http.post(
        "/twilio/retrieve_capability_token",
        json={"twilioPhoneNumber": "+815031234567", "password": "correct horse battery"},
    ).json()
    server.http.post(
        "/twilio/retrieve_capability_token",
        json={"twilioPhoneNumber": "+815031234567", "password": "wrong password here"},
    )
    params = dict(SEED_PARAMS)
    signature = server.sign("/twilio/retrieve_twiml/call_outgoing", params)
    server.webhook("/twilio/retrieve_twiml/call_outgoing", params, signature=signature)
    server.webhook("/twilio/retrieve_twiml/call_outgoing", params, signature="forged+sig=")
    text = "\n".join(logs.JsonFormatter().format(r) for r in caplog.records)
    assert "token_issued" in text and "webhook_signature_invalid" in text
    for secret in (
        body["accessToken"],
        body["capabilityToken"],
        "correct horse battery",
        "wrong password here",
        signature,
        "forged+sig=",
        server.settings.auth_token,
        server.settings.api_secret,
    ):
        assert secret not in text


def test_unknown_routes_and_methods_are_plain_errors(server):
    assert server.http.get("/twilio/retrieve_capability_token").status_code == 405
    assert server.http.get("/nope").status_code == 404
