"""GET /twilio/calls: the signed-in line's call history, authenticated with its accessToken."""

import time
from datetime import timedelta

import jwt

from tests.conftest import EXTERNAL_NUMBER, SEED_NUMBER, SEED_PASSWORD
from tests.server.test_call_incoming import SEED_001_PARAMS
from tests.server.test_call_outgoing import SEED_PARAMS

PATH = "/twilio/calls"
OUT_SID, IN_SID = "CA" + "a1" * 16, "CA" + "b2" * 16


def _token(server):
    body = server.http.post(
        "/twilio/retrieve_capability_token",
        json={"twilioPhoneNumber": SEED_NUMBER, "password": SEED_PASSWORD},
    ).json()
    return body["accessToken"]


def _status(server, sid, status, seq, duration=None, **extra):
    params = {"CallSid": sid, "CallStatus": status, "SequenceNumber": str(seq), **extra}
    if duration is not None:
        params["CallDuration"] = str(duration)
    assert server.webhook("/twilio/status_callback", params).status_code == 200


def test_history_shows_calls_both_ways_newest_first(server):
    server.webhook("/twilio/retrieve_twiml/call_outgoing", dict(SEED_PARAMS, CallSid=OUT_SID))
    _status(server, OUT_SID, "completed", 1, 42, From="client:DeviceId_0001", Direction="inbound")
    time.sleep(0.01)
    server.webhook("/twilio/retrieve_twiml/call_incoming", dict(SEED_001_PARAMS, CallSid=IN_SID))
    _status(
        server, IN_SID, "no-answer", 0, From=EXTERNAL_NUMBER, To=SEED_NUMBER, Direction="inbound"
    )
    response = server.http.get(PATH, headers={"Authorization": f"Bearer {_token(server)}"})
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    calls = response.json()["calls"]
    assert [(c["callSid"], c["direction"], c["number"], c["status"]) for c in calls] == [
        (IN_SID, "incoming", EXTERNAL_NUMBER, "no-answer"),
        (OUT_SID, "outgoing", "+819059876543", "completed"),
    ]
    assert calls[1]["duration"] == 42


def test_other_lines_calls_are_not_shown(server, registry):
    registry.add("+81-50-1111-2222", "DeviceId_0002", "another password")
    server.webhook(
        "/twilio/retrieve_twiml/call_incoming",
        dict(SEED_001_PARAMS, CallSid=IN_SID, To="+815011112222", Called="+815011112222"),
    )
    response = server.http.get(PATH, headers={"Authorization": f"Bearer {_token(server)}"})
    assert response.json()["calls"] == []


def test_without_a_valid_token_there_is_no_history(server):
    settings = server.settings
    assert server.http.get(PATH).status_code == 401
    assert server.http.get(PATH, headers={"Authorization": "Bearer nonsense"}).status_code == 401
    forged = jwt.encode(
        {
            "iss": settings.api_key,
            "sub": settings.account_sid,
            "exp": time.time() + 60,
            "grants": {"identity": "DeviceId_0001"},
        },
        "not-the-secret-but-long-enough-for-hs256",
        algorithm="HS256",
    )
    assert server.http.get(PATH, headers={"Authorization": f"Bearer {forged}"}).status_code == 401
    expired = jwt.encode(
        {
            "iss": settings.api_key,
            "sub": settings.account_sid,
            "exp": time.time() - 1,
            "grants": {"identity": "DeviceId_0001"},
        },
        settings.api_secret,
        algorithm="HS256",
    )
    response = server.http.get(PATH, headers={"Authorization": f"Bearer {expired}"})
    assert response.status_code == 401 and "expired" in response.json()["error"]
    capability = server.http.post(
        "/twilio/retrieve_capability_token",
        json={"twilioPhoneNumber": SEED_NUMBER, "password": SEED_PASSWORD},
    ).json()["capabilityToken"]
    assert (
        server.http.get(PATH, headers={"Authorization": f"Bearer {capability}"}).status_code == 401
    )


def test_a_call_whose_end_was_never_reported_is_not_ringing_forever(server, db):
    """A webhook notes a call as ringing; if its final status callback never arrives (lost, or
    not configured), the history shows it as ended in an unknown way once it cannot still be
    ringing, rather than ringing forever."""
    from datetime import UTC, datetime

    from sqlalchemy import update

    from dialtone.server.history import RINGING_FOR_AT_MOST
    from dialtone.server.models import Call

    fresh, stale = "CA" + "c3" * 16, "CA" + "d4" * 16
    for sid in (fresh, stale):
        server.webhook("/twilio/retrieve_twiml/call_incoming", dict(SEED_001_PARAMS, CallSid=sid))
    with db.session() as session:
        session.execute(
            update(Call)
            .where(Call.call_sid == stale)
            .values(updated_at=datetime.now(UTC) - RINGING_FOR_AT_MOST - timedelta(seconds=5))
        )
    response = server.http.get(PATH, headers={"Authorization": f"Bearer {_token(server)}"})
    statuses = {call["callSid"]: call["status"] for call in response.json()["calls"]}
    assert statuses == {fresh: "ringing", stale: "unknown"}
