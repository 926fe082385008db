"""POST /twilio/retrieve_twiml/call_incoming: a phone calls one of our numbers."""

import signal
import uuid
from dataclasses import replace

import httpx
import pytest
from sqlalchemy import text

from dialtone.devcreds import development_values
from dialtone.server.db import Database
from tests.conftest import EXTERNAL_NUMBER, SEED_CLIENT, SEED_NUMBER, TEST_SETTINGS, LiveServer
from tests.serve_process import dialtone_serve
from tests.twiml_helpers import structure

PATH = "/twilio/retrieve_twiml/call_incoming"

# Seed 001: the parameters Twilio posted for 090-5987-6543 calling 050-3123-4567.
SEED_001_PARAMS = {
    "AccountSid": "AC3e" + "0" * 30,
    "ApiVersion": "2010-04-01",
    "Called": "+815031234567",
    "CalledCity": "",
    "CalledCountry": "JP",
    "CalledState": "",
    "CalledVia": "05031234567",
    "CalledZip": "",
    "Caller": "+819059876543",
    "CallerCity": "",
    "CallerCountry": "JP",
    "CallerState": "",
    "CallerZip": "",
    "CallSid": "CA86" + "0" * 30,
    "CallStatus": "ringing",
    "Direction": "inbound",
    "ForwardedFrom": "05031234567",
    "From": "+819059876543",
    "FromCity": "",
    "FromCountry": "JP",
    "FromState": "",
    "FromZip": "",
    "To": "+815031234567",
    "ToCity": "",
    "ToCountry": "JP",
    "ToState": "",
    "ToZip": "",
}

SEED_TWIML = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Response><Dial action="dial_ended" timeout="60"><Client>DeviceId_0001</Client></Dial>'
    "</Response>"
)


def test_seed_curl_check_2_rings_the_client(server):
    # Seed 002 §2-8, "TwiML Return API for Incoming Call", now signed as Twilio signs it.
    params = {
        "ApplicationSid": "AP75" + "0" * 30,
        "ApiVersion": "2010-04-01",
        "Called": "",
        "Caller": "+819059876543",
        "CallStatus": "ringing",
        "CallSid": "CA86" + "0" * 30,
        "To": "+815031234567",
        "From": "+819059876543",
        "Direction": "inbound",
        "AccountSid": "AC3e" + "0" * 30,
    }
    response = server.webhook(PATH, params)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    assert structure(response.text) == structure(SEED_TWIML)


def test_the_packet_captured_parameters_of_seed_001_ring_the_client(server):
    response = server.webhook(PATH, SEED_001_PARAMS)
    assert structure(response.text) == structure(SEED_TWIML)


def test_unregistered_number_speaks_once_and_hangs_up(server):
    params = dict(SEED_001_PARAMS, To="+815099990000", Called="+815099990000")
    response = server.webhook(PATH, params)
    assert response.status_code == 200
    tag, _, _, children = structure(response.text)
    assert tag == "Response"
    assert [child[0] for child in children] == ["Say", "Hangup"]
    say = children[0]
    # "loop: 0 means up to 1000" — the seed's loop="0" repeated the error forever.
    assert say[1].get("loop", "1") == "1"
    assert "not connected" in say[2]


@pytest.mark.parametrize("to", ["", "client:DeviceId_0001", "anonymous", "sip:x@example.com"])
def test_odd_called_values_are_refused_safely(server, to):
    response = server.webhook(PATH, dict(SEED_001_PARAMS, To=to, Called=to))
    assert response.status_code == 200
    assert [c[0] for c in structure(response.text)[3]] == ["Say", "Hangup"]


def test_called_is_used_when_to_is_absent(server):
    params = {k: v for k, v in SEED_001_PARAMS.items() if k != "To"}
    response = server.webhook(PATH, params)
    assert structure(response.text) == structure(SEED_TWIML)


def test_each_line_rings_its_own_client(server, registry):
    registry.add("+81-50-1111-2222", "DeviceId_0002", "another password")
    response = server.webhook(PATH, dict(SEED_001_PARAMS, To="+815011112222"))
    assert "<Client>DeviceId_0002</Client>" in response.text
    assert SEED_CLIENT not in response.text
    assert EXTERNAL_NUMBER not in response.text and SEED_NUMBER not in response.text


def test_the_history_row_is_durable_once_the_answer_is_sent(registry, db_url, tmp_path):
    """Lambda may freeze or end the process right after the answer: the call's row must be
    committed by then. `dialtone serve` is killed (SIGKILL, no shutdown) as soon as it has
    answered, and a new connection from this process finds the row."""
    call_sid = "CA" + uuid.uuid4().hex
    with dialtone_serve(tmp_path, db_url) as (process, base), httpx.Client(base_url=base) as http:
        # Signed as `dialtone_serve` is configured: the development credentials.
        settings = replace(TEST_SETTINGS, auth_token=development_values()["TWILIO_AUTH_TOKEN"])
        server = LiveServer(base, settings, None, http)  # type: ignore[arg-type]
        response = server.webhook(PATH, dict(SEED_001_PARAMS, CallSid=call_sid))
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert response.status_code == 200, response.text
    assert structure(response.text) == structure(SEED_TWIML)
    db = Database(db_url)
    try:
        with db.connection() as connection:
            row = connection.execute(
                text("SELECT line_number, status FROM calls WHERE call_sid = :sid"),
                {"sid": call_sid},
            ).one()
            if db.engine.dialect.name == "sqlite":
                # The durability above rests on WAL (synchronous=NORMAL survives a crash of
                # the process, which is what a freeze can become).
                assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    finally:
        db.dispose()
    assert tuple(row) == (SEED_NUMBER, "ringing")
