"""twilio-python's own `Client`, unchanged but for `client.api.base_url`, against the emulator.

The emulator's banner promises it: "twilio-python: client.api.base_url = <emulator URL>". Seed 003
places calls with Twilio's helper libraries (`client.calls.create({twiml, to, from})`); the same
code must run against the emulator as against api.twilio.com.
"""

from __future__ import annotations

import time
from datetime import datetime

import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from tests.emulator.conftest import EXTERNAL_NUMBER, FINAL, TWILIO_NUMBER

HELLO = "<Response><Say>Hello.</Say></Response>"
LONG = '<Response><Pause length="60"/></Response>'
OTHER_NUMBER = "+815039876543"


@pytest.fixture(autouse=True)
def _no_region_or_proxy(monkeypatch):
    # The Client reads TWILIO_REGION / TWILIO_EDGE and would rewrite the host; requests honours
    # proxy variables. Neither belongs in a test against a loopback emulator.
    for name in ("TWILIO_REGION", "TWILIO_EDGE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


def emulator_client(emulator, *credentials: str) -> Client:
    client = Client(*credentials)
    client.api.base_url = emulator.base_url  # the one change (the emulator's banner)
    return client


@pytest.fixture
def client(emulator) -> Client:
    emulator.add_number(TWILIO_NUMBER)
    return emulator_client(
        emulator, emulator.credentials.account_sid, emulator.credentials.auth_token
    )


def wait_for(client: Client, sid: str, statuses: tuple[str, ...] = FINAL, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while True:
        call = client.calls(sid).fetch()
        if call.status in statuses:
            return call
        assert time.monotonic() < deadline, f"{sid} is {call.status}, expected one of {statuses}"
        time.sleep(0.02)


def test_calls_create_with_a_url_then_fetch(client, emulator, hooks):
    """Seed 003: "「どの番号から」(from)「どの番号へ」(to)電話をかけて、何をするのか(url or
    'Twiml`)を記載します" — from, to and a url; the answered call fetches the url."""
    call = client.calls.create(to=EXTERNAL_NUMBER, from_=TWILIO_NUMBER, url=hooks.on("/a", HELLO))
    assert call.sid.startswith("CA") and len(call.sid) == 34
    assert call.status == "queued"
    assert call.direction == "outbound-api"
    assert call.to == EXTERNAL_NUMBER and call._from == TWILIO_NUMBER
    assert call.account_sid == emulator.credentials.account_sid
    assert isinstance(call.date_created, datetime)
    (request,) = hooks.wait("/a")
    assert request.form["CallSid"] == call.sid

    done = wait_for(client, call.sid)
    assert done.status == "completed"
    assert done.duration is not None and done.duration.isdigit()
    assert isinstance(done.start_time, datetime) and isinstance(done.end_time, datetime)
    assert done.end_time >= done.start_time


def test_calls_create_with_inline_twiml(client, emulator):
    """Seed 003: `client.calls.create({twiml: '<Response><Say>Ahoy, World!</Say></Response>',
    to, from})`."""
    twiml = "<Response><Say>Ahoy, World!</Say></Response>"
    call = client.calls.create(twiml=twiml, to=EXTERNAL_NUMBER, from_=TWILIO_NUMBER)
    assert call.sid.startswith("CA") and call.status == "queued"
    assert wait_for(client, call.sid).status == "completed"
    (said,) = emulator.events(call.sid, "audio")
    assert said["source"] == "say" and said["text"] == "Ahoy, World!"


def test_calls_list_filters_by_to_and_status_and_follows_pages(client, emulator):
    """Reference §6.1: "List filters: `To`, `From`, `ParentCallSid`, `Status`, …, `PageSize`";
    twilio-python follows `next_page_uri` from page to page."""
    finished = client.calls.create(to=EXTERNAL_NUMBER, from_=TWILIO_NUMBER, twiml=HELLO)
    wait_for(client, finished.sid)
    live = client.calls.create(to=EXTERNAL_NUMBER, from_=TWILIO_NUMBER, twiml=LONG)
    wait_for(client, live.sid, ("in-progress",))
    elsewhere = client.calls.create(to="+819011112222", from_=TWILIO_NUMBER, twiml=LONG)

    completed = client.calls.list(to=EXTERNAL_NUMBER, status="completed")
    assert [c.sid for c in completed] == [finished.sid]
    in_progress = client.calls.list(to=EXTERNAL_NUMBER, status="in-progress")
    assert [c.sid for c in in_progress] == [live.sid]
    assert client.calls.list(to="+819000000000") == []
    every = client.calls.list(page_size=1)  # three pages of one
    assert [c.sid for c in every] == [elsewhere.sid, live.sid, finished.sid]  # newest first
    assert [c.sid for c in client.calls.list(page_size=2, limit=2)] == [elsewhere.sid, live.sid]


def test_calls_update_status_completed_ends_a_live_call(client):
    """Reference §6.1: "Update (`POST …/Calls/{Sid}.json`): … `Status` (`canceled`/
    `completed`)"."""
    call = client.calls.create(to=EXTERNAL_NUMBER, from_=TWILIO_NUMBER, twiml=LONG)
    wait_for(client, call.sid, ("in-progress",))
    updated = client.calls(call.sid).update(status="completed")
    assert updated.sid == call.sid
    done = wait_for(client, call.sid, timeout=5)
    assert done.status == "completed"
    assert done.duration is not None and int(done.duration) < 60  # ended well before the Pause


def test_calls_update_twiml_redirects_a_live_call(client, emulator):
    """Reference §6.1: "Update …: `Url`, `Method`, `Twiml`" — new instructions for a live
    call."""
    call = client.calls.create(to=EXTERNAL_NUMBER, from_=TWILIO_NUMBER, twiml=LONG)
    wait_for(client, call.sid, ("in-progress",))
    updated = client.calls(call.sid).update(twiml="<Response><Say>Moved.</Say></Response>")
    assert updated.sid == call.sid and updated.status == "in-progress"
    done = wait_for(client, call.sid, timeout=5)
    assert done.status == "completed"
    assert [(e["verb"], e["text"]) for e in emulator.events(call.sid, "verb")] == [
        ("Pause", ""),
        ("Say", "Moved."),
    ]


def test_incoming_phone_numbers_create_and_update(client, emulator, hooks):
    """Reference §6.2: "`VoiceUrl` answers calls", "`VoiceMethod` GET/POST, default POST"."""
    first = hooks.on("/first", HELLO)
    number = client.incoming_phone_numbers.create(phone_number=OTHER_NUMBER, voice_url=first)
    assert number.sid.startswith("PN") and len(number.sid) == 34
    assert number.phone_number == OTHER_NUMBER
    assert number.voice_url == first and number.voice_method == "POST"

    second = hooks.on("/second", HELLO)
    updated = client.incoming_phone_numbers(number.sid).update(voice_url=second)
    assert updated.sid == number.sid and updated.voice_url == second
    assert client.incoming_phone_numbers(number.sid).fetch().voice_url == second

    emulator.call_in(EXTERNAL_NUMBER, OTHER_NUMBER)  # a call now reaches the new URL
    (request,) = hooks.wait("/second")
    assert request.form["To"] == OTHER_NUMBER
    assert hooks.requests("/first") == []


def test_applications_create_and_place_a_call_through_one(client, hooks):
    """Reference §6.1: "`ApplicationSid` (`^AP[0-9a-fA-F]{32}$`)"; §6.2: an application's
    `VoiceUrl` "called for calls routed to the app"."""
    voice = hooks.on("/app", HELLO)
    app = client.applications.create(voice_url=voice, friendly_name="dialtone")
    assert app.sid.startswith("AP") and len(app.sid) == 34
    assert app.friendly_name == "dialtone" and app.voice_url == voice
    call = client.calls.create(to=EXTERNAL_NUMBER, from_=TWILIO_NUMBER, application_sid=app.sid)
    (request,) = hooks.wait("/app")
    assert request.form["CallSid"] == call.sid and request.form["ApplicationSid"] == app.sid


def test_an_invalid_to_raises_twilio_rest_exception_21211(client):
    """Twilio error 21211, "Invalid 'To' Phone Number", reaches the caller as
    TwilioRestException with its code and HTTP status."""
    with pytest.raises(TwilioRestException) as raised:
        client.calls.create(to="12", from_=TWILIO_NUMBER, twiml=HELLO)
    assert raised.value.code == 21211
    assert raised.value.status == 400
    assert "To" in raised.value.msg


def test_wrong_credentials_raise_twilio_rest_exception_20003(emulator):
    """Reference §6.1: "Errors: … e.g. 20003 authentication"."""
    client = emulator_client(emulator, emulator.credentials.account_sid, "0" * 32)
    with pytest.raises(TwilioRestException) as raised:
        client.calls.create(to=EXTERNAL_NUMBER, from_=TWILIO_NUMBER, twiml=HELLO)
    assert (raised.value.status, raised.value.code) == (401, 20003)
    with pytest.raises(TwilioRestException) as raised:
        client.calls("CA" + "0" * 32).fetch()
    assert (raised.value.status, raised.value.code) == (401, 20003)


def test_an_api_key_client_works_too(emulator, hooks):
    """Reference §6.1: "Auth: Basic `AC…:AuthToken` or `SK…:secret`" — twilio-python's
    `Client(api_key, api_secret, account_sid)`."""
    credentials = emulator.credentials
    client = emulator_client(
        emulator, credentials.api_key, credentials.api_secret, credentials.account_sid
    )
    number = client.incoming_phone_numbers.create(phone_number=TWILIO_NUMBER)
    assert number.account_sid == credentials.account_sid
    call = client.calls.create(to=EXTERNAL_NUMBER, from_=TWILIO_NUMBER, url=hooks.on("/k", HELLO))
    assert call.account_sid == credentials.account_sid
    hooks.wait("/k")
    assert wait_for(client, call.sid).status == "completed"
    assert [c.sid for c in client.calls.list()] == [call.sid]
