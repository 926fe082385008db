"""The TwiML App and the numbers as `dialtone setup` finds and configures them through
twilio-python's Client: `applications.list(friendly_name=)` and
`incoming_phone_numbers.list(phone_number=)` return exactly what matches, and updates of the
voice fields round-trip (and route calls) or fail with Twilio's error codes, changing nothing.

Response bodies are checked against Twilio's spec in test_rest_spec.py."""

from __future__ import annotations

import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from tests.emulator.conftest import EXTERNAL_NUMBER, FINAL, TWILIO_NUMBER, Emulator

HELLO = "<Response><Say>Hello.</Say></Response>"
OTHER_NUMBER = "+815039876543"
TOKYO_NUMBER = "+81312345678"


@pytest.fixture
def numbers(emulator: Emulator) -> dict[str, str]:
    """Three numbers of the account: E.164 → SID."""
    return {
        number: emulator.add_number(number, FriendlyName=name)["sid"]
        for number, name in (
            (TWILIO_NUMBER, "line 1"),
            (OTHER_NUMBER, "line 2"),
            (TOKYO_NUMBER, "office"),
        )
    }


def _numbers(client: Client, **filters: str) -> list[str]:
    return sorted(n.phone_number for n in client.incoming_phone_numbers.list(**filters))


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        pytest.param(TWILIO_NUMBER, [TWILIO_NUMBER], id="E.164"),
        pytest.param("815031234567", [TWILIO_NUMBER], id="digits without +"),
        pytest.param("+81 50-3123-4567", [TWILIO_NUMBER], id="formatted"),
        pytest.param("5031234567", [TWILIO_NUMBER], id="partial"),
        pytest.param("+8150*", [TWILIO_NUMBER, OTHER_NUMBER], id="prefix and wildcard"),
        pytest.param("50312*4567", [TWILIO_NUMBER], id="wildcard digit"),
        pytest.param("9876", [OTHER_NUMBER], id="digits anywhere"),
        pytest.param("+5031234567", [], id="+ anchors at the country code"),
        pytest.param("+819059876543", [], id="a number of another account"),
    ],
)
def test_numbers_are_found_by_phone_number(account, numbers, pattern, expected):
    """The spec: "You can specify partial numbers and use '*' as a wildcard for any digit"."""
    assert _numbers(account, phone_number=pattern) == sorted(expected)


def test_an_unencoded_plus_in_the_query_still_means_plus(emulator, numbers):
    # curl 'PhoneNumber=+815031234567': the + arrives as a space.
    def found(query: str) -> list[str]:
        response = emulator.http.get(f"{emulator.api}/IncomingPhoneNumbers.json?{query}")
        return sorted(n["phone_number"] for n in response.json()["incoming_phone_numbers"])

    assert found("PhoneNumber=+815031234567") == [TWILIO_NUMBER]
    assert found("PhoneNumber=+81503*") == sorted([TWILIO_NUMBER, OTHER_NUMBER])
    assert found("PhoneNumber=+5031234567") == []


def test_numbers_are_found_by_friendly_name_exactly(account, numbers):
    assert _numbers(account, friendly_name="line 1") == [TWILIO_NUMBER]
    assert _numbers(account, friendly_name="line") == []
    assert _numbers(account, friendly_name="office", phone_number="+8150*") == []


def test_applications_are_found_by_friendly_name_exactly(emulator, account):
    """`setup` finds its TwiML App "dialtone" by name; near names are other apps."""
    made = {
        name: account.applications.create(friendly_name=name).sid
        for name in ("dialtone", "dialtone 2", "Dialtone", "other")
    }
    found = account.applications.list(friendly_name="dialtone")
    assert [a.sid for a in found] == [made["dialtone"]]
    assert account.applications.list(friendly_name="nothing") == []
    assert len(account.applications.list()) == 4


def test_filtered_pages_carry_their_filter(emulator, account):
    twins = [account.applications.create(friendly_name="dialtone").sid for _ in range(3)]
    account.applications.create(friendly_name="other")
    page = account.applications.page(friendly_name="dialtone", page_size=2)
    assert len(list(page)) == 2
    assert "FriendlyName=dialtone" in page.next_page_url and "Page=1" in page.next_page_url
    listed = account.applications.list(friendly_name="dialtone", page_size=2)
    assert sorted(a.sid for a in listed) == sorted(twins)  # followed next_page_uri


def test_a_number_update_round_trips_and_routes_calls(emulator, account, numbers, hooks):
    app = account.applications.create(
        friendly_name="dialtone", voice_url=hooks.on("/app", HELLO), voice_method="POST"
    )
    sid = numbers[TWILIO_NUMBER]
    voice, status = hooks.on("/incoming", HELLO), hooks.on("/status", "")
    updated = account.incoming_phone_numbers(sid).update(
        voice_url=voice,
        voice_method="GET",
        status_callback=status,
        status_callback_method="GET",
        voice_application_sid=app.sid,
        friendly_name="dialtone line",
    )
    fetched = account.incoming_phone_numbers(sid).fetch()
    for number in (updated, fetched):
        assert (number.voice_url, number.voice_method) == (voice, "GET")
        assert (number.status_callback, number.status_callback_method) == (status, "GET")
        assert number.voice_application_sid == app.sid
        assert number.friendly_name == "dialtone line"
    assert fetched.date_updated >= fetched.date_created

    # Bound to the app, the number's calls run the app's URL.
    call = emulator.call_in(EXTERNAL_NUMBER, TWILIO_NUMBER)
    hooks.wait("/app")
    emulator.wait_status(call["sid"], FINAL)
    assert hooks.requests("/incoming") == []

    # Unbound ("" clears it), they run the number's own voice URL, with its method.
    unbound = account.incoming_phone_numbers(sid).update(voice_application_sid="")
    assert unbound.voice_application_sid is None and unbound.voice_url == voice
    call = emulator.call_in(EXTERNAL_NUMBER, TWILIO_NUMBER)
    (request,) = hooks.wait("/incoming")
    assert request.method == "GET"
    emulator.wait_status(call["sid"], FINAL)

    cleared = account.incoming_phone_numbers(sid).update(status_callback="")
    assert cleared.status_callback is None and cleared.voice_url == voice


def test_an_application_update_round_trips(account, hooks):
    app = account.applications.create(friendly_name="dialtone")
    voice, status = hooks.on("/outgoing", HELLO), hooks.on("/status", "")
    updated = account.applications(app.sid).update(
        voice_url=voice,
        voice_method="GET",
        status_callback=status,
        status_callback_method="GET",
        friendly_name="dialtone (renamed)",
    )
    fetched = account.applications(app.sid).fetch()
    for application in (updated, fetched):
        assert (application.voice_url, application.voice_method) == (voice, "GET")
        assert (application.status_callback, application.status_callback_method) == (
            status,
            "GET",
        )
        assert application.friendly_name == "dialtone (renamed)"


def _refused(call, code: int) -> None:
    with pytest.raises(TwilioRestException) as refused:
        call()
    assert (refused.value.status, refused.value.code) == (400, code)


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        # 21502 "Invalid callback url": "a fully qualified URL including protocol
        # (http:// or https://), hostname, …".
        pytest.param({"voice_url": "example.com/voice"}, 21502, id="no scheme"),
        pytest.param({"voice_url": "http://"}, 21502, id="no host"),
        pytest.param({"status_callback": "ftp://example.com/s"}, 21502, id="not http"),
        pytest.param({"voice_url": "https://exa mple.com/"}, 21502, id="space"),
        # 21403 "Invalid Method": "Valid Method values are GET or POST".
        pytest.param({"voice_method": "PUT"}, 21403, id="voice method"),
        pytest.param({"status_callback_method": "DELETE"}, 21403, id="callback method"),
    ],
)
def test_invalid_fields_are_refused_and_change_nothing(account, numbers, hooks, fields, code):
    sid = numbers[TWILIO_NUMBER]
    voice = hooks.on("/voice", HELLO)
    account.incoming_phone_numbers(sid).update(voice_url=voice)
    app = account.applications.create(friendly_name="dialtone", voice_url=voice)
    # Valid fields sent with the invalid one are not applied either.
    _refused(
        lambda: account.incoming_phone_numbers(sid).update(friendly_name="changed", **fields),
        code,
    )
    _refused(lambda: account.applications(app.sid).update(friendly_name="changed", **fields), code)
    number = account.incoming_phone_numbers(sid).fetch()
    assert (number.voice_url, number.voice_method, number.friendly_name) == (
        voice,
        "POST",
        "line 1",
    )
    assert account.applications(app.sid).fetch().friendly_name == "dialtone"


def test_an_application_the_account_does_not_have_is_21420(account, numbers):
    """21420 "ApplicationSid is not accessible": "a VoiceApplicationSid … that is not
    controlled by your account, or is invalid"."""
    sid = numbers[TWILIO_NUMBER]
    _refused(
        lambda: account.incoming_phone_numbers(sid).update(
            voice_application_sid="AP" + "0" * 32, friendly_name="changed"
        ),
        21420,
    )
    number = account.incoming_phone_numbers(sid).fetch()
    assert number.voice_application_sid is None and number.friendly_name == "line 1"
