"""GET /twilio/calls as the phone shows it: numbers in the line's national format, how each
call ended, and why the server refused a call (the caller only hears it)."""

import pytest

from tests.conftest import EXTERNAL_NUMBER, SEED_NUMBER, SEED_PASSWORD
from tests.server.test_call_incoming import SEED_001_PARAMS
from tests.server.test_call_outgoing import SEED_PARAMS

PATH = "/twilio/calls"


def _calls(server) -> dict:
    token = server.http.post(
        "/twilio/retrieve_capability_token",
        json={"twilioPhoneNumber": SEED_NUMBER, "password": SEED_PASSWORD},
    ).json()["accessToken"]
    response = server.http.get(PATH, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    return response.json()


def _ended(server, sid, status, duration=None, **extra) -> None:
    params = {"CallSid": sid, "CallStatus": status, "SequenceNumber": "5", **extra}
    if duration is not None:
        params["CallDuration"] = str(duration)
    assert server.webhook("/twilio/status_callback", params).status_code == 200


def _dial(server, sid: str, number: str) -> str:
    params = dict(SEED_PARAMS, CallSid=sid, callOutgoingPhoneNumber=number)
    return server.webhook("/twilio/retrieve_twiml/call_outgoing", params).text


def test_numbers_are_shown_as_people_at_home_write_them(server):
    body = _calls(server)
    assert body["line"] == {"number": SEED_NUMBER, "display": "050-3123-4567"}
    sid = "CA" + "e5" * 16
    _dial(server, sid, "+1 415 555 0100")  # abroad: refused (country), shown internationally
    server.webhook("/twilio/retrieve_twiml/call_incoming", dict(SEED_001_PARAMS))
    numbers = {(c["number"], c["display"]) for c in _calls(server)["calls"]}
    assert (EXTERNAL_NUMBER, "090-5987-6543") in numbers


def test_outcomes_of_outgoing_calls(server):
    outcomes = {}
    for n, (status, duration) in enumerate(
        [("completed", 12), ("busy", 0), ("no-answer", 0), ("failed", 0), ("canceled", 0)]
    ):
        sid = f"CA{n:032x}"
        _dial(server, sid, "090-5987-6543")
        _ended(server, sid, status, duration, From="client:DeviceId_0001", Direction="inbound")
        outcomes[sid] = status
    seen = {c["callSid"]: (c["outcome"], c["refusal"]) for c in _calls(server)["calls"]}
    assert seen == {
        sid: ("answered" if status == "completed" else status, None)
        for sid, status in outcomes.items()
    }


def test_a_refused_call_carries_its_reason(server):
    premium, abroad, itself = "CA" + "a7" * 16, "CA" + "b8" * 16, "CA" + "c9" * 16
    assert "premium-rate" in _dial(server, premium, "0990-123-456")
    assert "country code 1" in _dial(server, abroad, "+1 415 555 0100")
    assert "cannot call itself" in _dial(server, itself, SEED_NUMBER)
    for sid in (premium, abroad, itself):
        _ended(server, sid, "completed", 4, From="client:DeviceId_0001", Direction="inbound")
    seen = {c["callSid"]: c for c in _calls(server)["calls"]}
    assert {sid: seen[sid]["outcome"] for sid in seen} == dict.fromkeys(seen, "refused")
    assert seen[premium]["refusal"]["kind"] == "costly"
    assert seen[abroad]["refusal"] == {
        "kind": "country",
        "countryCode": 1,
        "reason": "country code +1 not allowed",
    }
    assert seen[itself]["refusal"]["kind"] == "self"
    assert seen[abroad]["display"] == "+1 415-555-0100"


def test_an_incoming_call_that_nobody_answered_is_missed(server):
    sid = "CA" + "d0" * 16
    server.webhook("/twilio/retrieve_twiml/call_incoming", dict(SEED_001_PARAMS, CallSid=sid))
    (entry,) = _calls(server)["calls"]
    assert entry["outcome"] == "ongoing"
    _ended(server, sid, "no-answer", From=EXTERNAL_NUMBER, To=SEED_NUMBER, Direction="inbound")
    (entry,) = _calls(server)["calls"]
    assert (entry["direction"], entry["outcome"]) == ("incoming", "missed")


DIAL_ENDED = "/twilio/retrieve_twiml/dial_ended"


def _dial_ended(server, sid, dial_status, **call) -> None:
    """The <Dial>'s action request: the call's own parameters plus how the dial ended."""
    params = {"CallSid": sid, "CallStatus": "in-progress", "DialCallStatus": dial_status, **call}
    assert server.webhook(DIAL_ENDED, params).text.endswith("<Response />")


@pytest.mark.parametrize(
    ("dial_status", "outcome"),
    [
        ("completed", "answered"),
        ("busy", "declined"),  # the browser rejected it (Voice SDK call.reject())
        ("no-answer", "missed"),
        ("canceled", "missed"),  # the caller gave up first
        ("failed", "missed"),
    ],
)
def test_an_incoming_calls_dial_tells_how_it_ended(server, dial_status, outcome):
    # Its parent leg ends `completed` whatever the browser did: only the dial tells.
    sid = "CA" + "e1" * 16
    server.webhook("/twilio/retrieve_twiml/call_incoming", dict(SEED_001_PARAMS, CallSid=sid))
    _dial_ended(server, sid, dial_status, From=EXTERNAL_NUMBER, To=SEED_NUMBER, Direction="inbound")
    _ended(server, sid, "completed", 30, From=EXTERNAL_NUMBER, Direction="inbound")
    (entry,) = _calls(server)["calls"]
    assert entry["direction"] == "incoming"
    assert (entry["status"], entry["outcome"], entry["dialStatus"]) == (
        "completed",
        outcome,
        dial_status,
    )


@pytest.mark.parametrize(
    ("dial_status", "parent_status", "outcome"),
    [
        ("completed", "completed", "answered"),
        ("busy", "no-answer", "busy"),  # answerOnBridge: the parent alone would say no-answer
        ("no-answer", "no-answer", "no-answer"),
        ("failed", "failed", "failed"),
        ("canceled", "canceled", "canceled"),
    ],
)
def test_an_outgoing_calls_dial_tells_how_it_ended(server, dial_status, parent_status, outcome):
    sid = "CA" + "f2" * 16
    _dial(server, sid, "090-5987-6543")
    client = {"From": "client:DeviceId_0001", "Direction": "inbound"}
    _dial_ended(server, sid, dial_status, DialCallDuration="12", **client)
    _ended(server, sid, parent_status, 14, **client)
    (entry,) = _calls(server)["calls"]
    assert entry["direction"] == "outgoing"
    assert (entry["outcome"], entry["dialStatus"], entry["dialDuration"]) == (
        outcome,
        dial_status,
        12,
    )
    assert (entry["status"], entry["duration"]) == (parent_status, 14)


def test_the_dial_tells_how_a_call_ended_without_status_callbacks(server):
    # No status callbacks configured: the TwiML webhook's row, then the action; the call is
    # over (the action answers no further verb), not ringing until it reads "unknown".
    incoming, outgoing = "CA" + "a3" * 16, "CA" + "b4" * 16
    server.webhook("/twilio/retrieve_twiml/call_incoming", dict(SEED_001_PARAMS, CallSid=incoming))
    _dial(server, outgoing, "090-5987-6543")
    _dial_ended(server, incoming, "busy", From=EXTERNAL_NUMBER, To=SEED_NUMBER)
    _dial_ended(server, outgoing, "busy", From="client:DeviceId_0001", CallStatus="ringing")
    seen = {c["callSid"]: c for c in _calls(server)["calls"]}
    assert {sid: (c["status"], c["outcome"]) for sid, c in seen.items()} == {
        incoming: ("completed", "declined"),
        outgoing: ("completed", "busy"),
    }
    assert seen[outgoing]["number"] == EXTERNAL_NUMBER


def test_the_dial_comes_before_any_other_news_of_the_call(server):
    # Nothing stored the call before its action (no TwiML webhook row, no status callback).
    sid = "CA" + "c5" * 16
    _dial_ended(server, sid, "no-answer", From=EXTERNAL_NUMBER, To=SEED_NUMBER, Direction="inbound")
    (entry,) = _calls(server)["calls"]
    assert (entry["callSid"], entry["number"], entry["outcome"]) == (sid, EXTERNAL_NUMBER, "missed")


def test_a_refusal_wins_over_the_dial(server):
    sid = "CA" + "d6" * 16
    assert "premium-rate" in _dial(server, sid, "0990-123-456")
    _dial_ended(server, sid, "completed", From="client:DeviceId_0001")
    (entry,) = _calls(server)["calls"]
    assert entry["outcome"] == "refused"


def test_calls_without_a_dial_status_keep_the_old_outcomes(server):
    # Rows from before the action (or a lost action request): as before, from the parent leg.
    sid = "CA" + "e7" * 16
    server.webhook("/twilio/retrieve_twiml/call_incoming", dict(SEED_001_PARAMS, CallSid=sid))
    _ended(server, sid, "completed", 8, From=EXTERNAL_NUMBER, To=SEED_NUMBER, Direction="inbound")
    (entry,) = _calls(server)["calls"]
    assert (entry["outcome"], entry["dialStatus"], entry["dialDuration"]) == (None, None, None)
