"""POST /twilio/retrieve_twiml/dial_ended: every <Dial>'s action. Twilio requests it when the
dial ends, with DialCallStatus (reference §2.5, §8); it records how, for the phone's history,
and answers an empty <Response/> so the call ends as it would without `action`."""

import json
import logging
import xml.etree.ElementTree as ET
from urllib.parse import urljoin

import pytest
from sqlalchemy import func, select

from dialtone import logs
from dialtone.server.models import Call
from tests.conftest import EXTERNAL_NUMBER, SEED_CLIENT, SEED_NUMBER
from tests.server.test_call_incoming import SEED_001_PARAMS
from tests.twiml_helpers import structure

PATH = "/twilio/retrieve_twiml/dial_ended"
INCOMING = "/twilio/retrieve_twiml/call_incoming"
OUTGOING = "/twilio/retrieve_twiml/call_outgoing"
STATUS = "/twilio/status_callback"
CALL = "CA" + "4d" * 16
CHILD = "CA" + "5c" * 16
EMPTY = ("Response", {}, "", ())


def _action(status="busy", **extra):
    """An incoming call's action request: the call's own parameters and the dial's."""
    params = {
        "AccountSid": "AC" + "3e" * 16,
        "ApiVersion": "2010-04-01",
        "CallSid": CALL,
        "CallStatus": "in-progress",
        "Direction": "inbound",
        "From": EXTERNAL_NUMBER,
        "To": SEED_NUMBER,
        "Caller": EXTERNAL_NUMBER,
        "Called": SEED_NUMBER,
        "DialCallStatus": status,
        "DialCallSid": CHILD,
        "DialCallDuration": "0",
    }
    params.update(extra)
    return params


def _calls(db):
    with db.session() as session:
        return {c.call_sid: c for c in session.scalars(select(Call))}


def _count(db):
    with db.session() as session:
        return session.scalar(select(func.count()).select_from(Call))


def _is_empty(response):
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/xml")
    assert structure(response.text) == EMPTY
    return True


def test_the_action_of_the_servers_dial_reaches_this_route(server):
    # action="dial_ended" is relative: against the document's URL (stage prefix included) it
    # is this route, which answers a request Twilio signs for that URL.
    dial = ET.fromstring(server.webhook(INCOMING, dict(SEED_001_PARAMS, CallSid=CALL)).text)
    action = dial.find("Dial").get("action")
    public = server.settings.public_url
    assert public.endswith("/prod")
    assert urljoin(public + INCOMING, action) == public + PATH
    assert urljoin(public + OUTGOING, action) == public + PATH
    assert _is_empty(server.webhook(PATH, _action()))


def test_a_declined_incoming_call_is_recorded_after_its_twiml(server, db):
    server.webhook(INCOMING, dict(SEED_001_PARAMS, CallSid=CALL))
    assert _is_empty(server.webhook(PATH, _action("busy")))
    call = _calls(db)[CALL]
    assert (call.dial_status, call.dial_duration) == ("busy", 0)
    assert call.line_number == SEED_NUMBER
    assert (call.from_, call.to, call.direction) == (EXTERNAL_NUMBER, SEED_NUMBER, "inbound")


def test_it_creates_the_row_when_nothing_else_stored_the_call(server, db):
    # No TwiML webhook row (another server, a lost write) and no status callbacks configured:
    # the action's own parameters are enough, the line found from To.
    assert _is_empty(server.webhook(PATH, _action("completed", DialCallDuration="17")))
    call = _calls(db)[CALL]
    assert (call.dial_status, call.dial_duration) == ("completed", 17)
    assert call.line_number == SEED_NUMBER
    assert (call.from_, call.to, call.direction) == (EXTERNAL_NUMBER, SEED_NUMBER, "inbound")
    assert call.parent_call_sid is None


def test_an_outgoing_calls_line_is_its_client(server, db):
    params = _action(
        "no-answer",
        From=f"client:{SEED_CLIENT}",
        Caller=f"client:{SEED_CLIENT}",
        To="",
        Called="",
        CallStatus="ringing",  # answerOnBridge: never answered
    )
    assert _is_empty(server.webhook(PATH, params))
    call = _calls(db)[CALL]
    assert (call.line_number, call.dial_status, call.status) == (
        SEED_NUMBER,
        "no-answer",
        "ringing",
    )


def test_status_callbacks_before_and_after_keep_the_dial_status(server, db):
    # The parent's `completed` status callback comes after the action; it sets the status and
    # duration, and the dial's outcome stays.
    server.webhook(STATUS, _action(CallStatus="ringing", SequenceNumber="0"))
    assert _is_empty(server.webhook(PATH, _action("busy")))
    completed = _action(CallStatus="completed", SequenceNumber="2", CallDuration="9")
    assert server.webhook(STATUS, completed).status_code == 200
    call = _calls(db)[CALL]
    assert (call.status, call.duration, call.dial_status) == ("completed", 9, "busy")
    assert _count(db) == 1


def test_redelivery_is_idempotent(server, db, caplog):
    caplog.set_level(logging.INFO, logger="dialtone")
    for _ in range(3):
        assert _is_empty(server.webhook(PATH, _action("canceled")))
    assert _count(db) == 1
    assert _calls(db)[CALL].dial_status == "canceled"
    outcomes = [
        r.fields["outcome"]
        for r in caplog.records
        if getattr(r, "event", None) == "webhook_dial_ended"
    ]
    assert outcomes == ["recorded", "duplicate", "duplicate"]


def test_unsigned_requests_are_refused_and_store_nothing(server, db):
    response = server.webhook(PATH, _action(), signature="bogus")
    assert response.status_code == 403
    assert "<Response" not in response.text
    signed_elsewhere = server.sign(STATUS, _action())
    assert server.webhook(PATH, _action(), signature=signed_elsewhere).status_code == 403
    assert _count(db) == 0


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"CallSid": "not-a-sid"}, "CallSid"),
        ({"CallSid": ""}, "CallSid"),
        ({"DialCallStatus": "answered"}, "DialCallStatus"),  # the unverified conference case
        ({"DialCallStatus": ""}, "DialCallStatus"),
        ({"DialCallStatus": "BUSY"}, "DialCallStatus"),
        ({"CallStatus": "exploded"}, "CallStatus"),
        ({"DialCallDuration": "-1"}, "DialCallDuration"),
        ({"ParentCallSid": "CA1"}, "ParentCallSid"),
    ],
)
def test_bad_input_ends_the_call_quietly_and_stores_nothing(server, db, caplog, change, needle):
    # Signed, so from Twilio: the caller may still be on the line, and an error status would
    # make Twilio play its application error. The empty TwiML ends the call; a warning says why.
    caplog.set_level(logging.INFO, logger="dialtone")
    assert _is_empty(server.webhook(PATH, _action(**change)))
    assert _count(db) == 0
    (rejected,) = [
        json.loads(logs.JsonFormatter().format(r))
        for r in caplog.records
        if r.levelno == logging.WARNING
    ]
    assert rejected["event"] == "webhook_rejected"
    assert rejected["webhook"] == "dial_ended"
    assert needle in rejected["reason"]


def test_get_is_accepted_as_for_the_other_webhooks(server, db):
    from urllib.parse import urlencode

    query = urlencode(_action("no-answer"))
    signature = server.sign(PATH, {}, query=query)
    response = server.http.get(f"{PATH}?{query}", headers={"X-Twilio-Signature": signature})
    assert _is_empty(response)
    assert _calls(db)[CALL].dial_status == "no-answer"


def test_a_dial_end_that_cannot_be_stored_is_logged_once_for_replay(
    make_server, settings, registry, unavailable_db, db, caplog
):
    down = make_server(settings, database=unavailable_db)
    caplog.set_level(logging.INFO, logger="dialtone")
    sent = _action("busy", CallToken="eyJsecret.call.token", myCustomParam="not for the log")
    signature = down.sign(PATH, sent)
    # Still the empty TwiML: the caller hears no application error for our bookkeeping.
    assert _is_empty(down.webhook(PATH, sent, signature=signature))

    lines = [logs.JsonFormatter().format(r) for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert entry["event"] == "dial_ended_not_stored"
    assert entry["replay"] is True
    assert entry["call_sid"] == CALL
    replay = entry["params"]
    assert replay == {k: v for k, v in sent.items() if k not in ("CallToken", "myCustomParam")}
    for secret in (signature, settings.auth_token, "eyJsecret", "not for the log"):
        assert secret not in lines[0]

    # The line is enough: replayed to a server whose database answers, it is stored.
    up = make_server(settings)
    assert _is_empty(up.webhook(PATH, replay))
    assert _calls(db)[CALL].dial_status == "busy"
