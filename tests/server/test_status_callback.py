"""POST /twilio/status_callback: call progress events become call history, exactly once."""

import json
import logging
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from dialtone import logs
from dialtone.server.models import Call, CallEvent
from tests.conftest import EXTERNAL_NUMBER, SEED_NUMBER

PATH = "/twilio/status_callback"
CALL = "CA" + "1f" * 16
CHILD = "CA" + "2e" * 16


def _event(status, seq, **extra):
    params = {
        "AccountSid": "AC" + "3e" * 16,
        "ApiVersion": "2010-04-01",
        "CallSid": CALL,
        "CallStatus": status,
        "Direction": "inbound",
        "From": EXTERNAL_NUMBER,
        "To": SEED_NUMBER,
        "Caller": EXTERNAL_NUMBER,
        "Called": SEED_NUMBER,
        "SequenceNumber": str(seq),
        "Timestamp": f"Sat, 21 Nov 2026 10:00:{seq * 10:02d} +0000",
        "CallbackSource": "call-progress-events",
    }
    params.update(extra)
    return params


def _calls(db):
    with db.session() as session:
        return {c.call_sid: c for c in session.scalars(select(Call))}


def _event_count(db):
    with db.session() as session:
        return session.scalar(select(func.count()).select_from(CallEvent))


def test_a_call_progress_sequence_is_recorded(server, db):
    for seq, status in enumerate(["initiated", "ringing", "in-progress"]):
        assert server.webhook(PATH, _event(status, seq)).status_code == 200
    response = server.webhook(PATH, _event("completed", 3, CallDuration="42", Duration="1"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    call = _calls(db)[CALL]
    assert call.status == "completed"
    assert call.duration == 42
    assert call.direction == "inbound"
    assert (call.from_, call.to) == (EXTERNAL_NUMBER, SEED_NUMBER)
    assert call.line_number == SEED_NUMBER
    assert call.started_at == datetime(2026, 11, 21, 10, 0, 0, tzinfo=UTC)
    assert call.updated_at == datetime(2026, 11, 21, 10, 0, 30, tzinfo=UTC)
    assert _event_count(db) == 4


def test_repeated_deliveries_are_recorded_once(server, db):
    for _ in range(3):
        assert server.webhook(PATH, _event("ringing", 1)).status_code == 200
    assert _event_count(db) == 1


def test_out_of_order_delivery_keeps_the_latest_status(server, db):
    # "SequenceNumber, counting from 0. Delivery order is not guaranteed."
    server.webhook(PATH, _event("completed", 3, CallDuration="7"))
    server.webhook(PATH, _event("ringing", 1))
    server.webhook(PATH, _event("initiated", 0))
    call = _calls(db)[CALL]
    assert call.status == "completed"
    assert call.duration == 7
    assert call.started_at == datetime(2026, 11, 21, 10, 0, 0, tzinfo=UTC)
    assert _event_count(db) == 3


def test_child_legs_keep_their_parent_and_line(server, db):
    outgoing = _event(
        "completed",
        0,
        CallSid=CALL,
        From="client:DeviceId_0001",
        Caller="client:DeviceId_0001",
        To="",
        Called="",
        CallDuration="5",
    )
    child = _event(
        "completed",
        0,
        CallSid=CHILD,
        ParentCallSid=CALL,
        Direction="outbound-dial",
        From=SEED_NUMBER,
        To=EXTERNAL_NUMBER,
        CallDuration="4",
    )
    server.webhook(PATH, outgoing)
    server.webhook(PATH, child)
    calls = _calls(db)
    assert calls[CALL].line_number == SEED_NUMBER
    assert calls[CHILD].parent_call_sid == CALL
    assert calls[CHILD].line_number == SEED_NUMBER
    assert calls[CHILD].direction == "outbound-dial"


def test_calls_of_unknown_numbers_are_kept_without_a_line(server, db):
    server.webhook(PATH, _event("completed", 0, To="+815099990000", Called="+815099990000"))
    assert _calls(db)[CALL].line_number is None


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"CallSid": "not-a-sid"}, "CallSid"),
        ({"CallStatus": "exploded"}, "CallStatus"),
        ({"SequenceNumber": "one"}, "SequenceNumber"),
        ({"ParentCallSid": "CA1"}, "ParentCallSid"),
    ],
)
def test_malformed_events_get_400_and_store_nothing(server, db, change, needle):
    response = server.webhook(PATH, _event("ringing", 1, **change))
    assert response.status_code == 400
    assert needle in response.text
    assert _event_count(db) == 0


def test_unsigned_events_are_refused(server, db):
    assert server.webhook(PATH, _event("ringing", 1), signature="bogus").status_code == 403
    assert _event_count(db) == 0


def test_an_event_that_cannot_be_stored_is_logged_once_for_replay(
    make_server, settings, registry, unavailable_db, db, caplog
):
    down = make_server(settings, database=unavailable_db)
    caplog.set_level(logging.INFO, logger="dialtone")
    sent = _event("completed", 3, CallDuration="42", Duration="1", CallToken="eyJsecret.call.token")
    sent["myCustomParam"] = "not for the log"
    signature = down.sign(PATH, sent)
    response = down.webhook(PATH, sent, signature=signature)
    # 503 so that Twilio's debugger shows it (15003); the body says what happened.
    assert response.status_code == 503
    assert "logged for replay" in response.text

    lines = [logs.JsonFormatter().format(r) for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert entry["event"] == "status_callback_not_stored"
    assert entry["replay"] is True
    assert entry["call_sid"] == CALL
    assert entry["error"] == "OperationalError"
    replay = entry["params"]
    assert replay == {k: v for k, v in sent.items() if k not in ("CallToken", "myCustomParam")}
    for secret in (signature, settings.auth_token, "eyJsecret", "not for the log"):
        assert secret not in lines[0]

    # The line is enough: replayed to a server whose database answers, the event is stored.
    up = make_server(settings)
    assert up.webhook(PATH, replay).status_code == 200
    call = _calls(db)[CALL]
    assert (call.status, call.duration) == ("completed", 42)
