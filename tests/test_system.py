"""The seed's incoming flow end to end: an external phone calls our Twilio number on the emulator,
the emulator asks `dialtone`'s API server for TwiML over HTTP (signed), the server answers
<Dial><Client>, and its status callback records the call. Server and emulator meet only on
the wire, each in its own ASGI app on loopback."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import select

from dialtone.server.app import create_app as create_server
from dialtone.server.config import Settings
from dialtone.server.db import Database
from dialtone.server.models import Call as CallRecord
from dialtone.server.registry import LineRegistry
from tests.conftest import running
from tests.emulator.conftest import EXTERNAL_NUMBER, TWILIO_NUMBER, make_emulator

CLIENT = "DeviceId_0001"


@dataclass
class System:
    emulator: object
    server_url: str
    db: Database


@pytest.fixture
def system(tmp_path):
    for emulator in make_emulator():
        credentials = emulator.credentials
        app = emulator.add_application(FriendlyName="dialtone")
        db = Database(f"sqlite:///{tmp_path / 'server.db'}")
        db.upgrade()
        LineRegistry(db).add(TWILIO_NUMBER, CLIENT, "a line password")
        from tests.conftest import _free_port

        port = _free_port()
        server_url = f"http://127.0.0.1:{port}"
        settings = Settings(
            account_sid=credentials.account_sid,
            auth_token=credentials.auth_token,
            api_key=credentials.api_key,
            api_secret=credentials.api_secret,
            twiml_app_sid=app["sid"],
            public_url=server_url,
            database_url=db.url,
        )
        with running(create_server(settings, db), port=port):
            emulator.add_number(
                TWILIO_NUMBER,
                VoiceUrl=f"{server_url}/twilio/retrieve_twiml/call_incoming",
                StatusCallback=f"{server_url}/twilio/status_callback",
            )
            yield System(emulator, server_url, db)
        db.dispose()


def _history(db: Database) -> dict[str, CallRecord]:
    with db.session() as session:
        return {c.call_sid: c for c in session.scalars(select(CallRecord))}


def test_incoming_call_with_no_browser_registered(system):
    emulator = system.emulator
    call = emulator.call_in(EXTERNAL_NUMBER, TWILIO_NUMBER)
    done = emulator.wait_status(call["sid"])
    (webhook,) = [w for w in emulator.events(call["sid"], "webhook") if w["purpose"] == "voice_url"]
    assert webhook["status"] == 200  # the server validated the emulator's signature
    assert f"<Client>{CLIENT}</Client>" in webhook["response_body"]
    (child,) = emulator.children(call["sid"])
    assert child["to"] == f"client:{CLIENT}"
    # An identity with no registered device does not answer; the document then ends.
    assert child["status"] == "no-answer"
    assert done["status"] == "completed"
    emulator.idle()
    # The <Dial>'s action reached the server (relative to the document: …/dial_ended).
    (action,) = [
        w for w in emulator.events(call["sid"], "webhook") if w["purpose"] == "dial_action"
    ]
    assert action["url"] == f"{system.server_url}/twilio/retrieve_twiml/dial_ended"
    assert action["status"] == 200
    record = _history(system.db)[call["sid"]]
    assert record.status == "completed"
    assert record.dial_status == "no-answer"  # the phone's history: missed
    assert record.line_number == TWILIO_NUMBER
    assert record.from_ == EXTERNAL_NUMBER


def test_incoming_call_answered_by_a_simulated_client(system):
    emulator = system.emulator
    emulator.set_phone(f"client:{CLIENT}", answer_after=2, hangup_after=4)
    call = emulator.call_in(EXTERNAL_NUMBER, TWILIO_NUMBER)
    emulator.wait_status(call["sid"])
    (child,) = emulator.children(call["sid"])
    assert child["status"] == "completed" and child["duration"] == "4"
    dial = emulator.events(call["sid"], "verb")[0]
    assert dial["verb"] == "Dial"
    assert dial["attributes"] == {"action": "dial_ended", "timeout": "60"}
    emulator.idle()
    record = _history(system.db)[call["sid"]]
    assert (record.dial_status, record.dial_duration) == ("completed", 4)


def test_a_number_the_server_does_not_know_hears_the_error_once(system):
    emulator = system.emulator
    emulator.add_number(
        "+815099990000", VoiceUrl=f"{system.server_url}/twilio/retrieve_twiml/call_incoming"
    )
    call = emulator.call_in(EXTERNAL_NUMBER, "+815099990000")
    assert emulator.wait_status(call["sid"])["status"] == "completed"
    (audio,) = emulator.events(call["sid"], "audio")
    assert "not connected" in audio["text"]


def test_a_wrong_auth_token_is_refused_by_the_server(system):
    # The emulator signs with its auth token; a server configured with another one refuses.
    emulator = system.emulator
    response = httpx.post(
        f"{system.server_url}/twilio/retrieve_twiml/call_incoming",
        data={"To": TWILIO_NUMBER},
        headers={"X-Twilio-Signature": "forged"},
    )
    assert response.status_code == 403
    assert emulator.switch.credentials.auth_token not in response.text
