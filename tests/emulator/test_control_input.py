"""Bad input to the control API and the REST API is a Twilio-style 4xx, never a 500, and an
invalid value is refused before it is stored (a NaN once broke `GET /emulator/phones` until it
was deleted). Hand-picked cases first, then Hypothesis over real HTTP."""

import json
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.emulator.conftest import EXTERNAL_NUMBER, TWILIO_NUMBER

PHONE = f"/emulator/phones/{EXTERNAL_NUMBER}"
FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _json_error(response: httpx.Response) -> dict:
    assert response.status_code < 500, response.text
    if response.status_code in (307, 308):  # the router's trailing-slash redirect
        assert response.headers["location"]
        return {}
    assert response.headers["content-type"] == "application/json", response.text
    body = response.json()
    if response.status_code >= 400:
        assert set(body) == {"code", "message", "more_info", "status"}
        assert body["status"] == response.status_code
    return body


def _raw_json(emulator, method: str, path: str, text: str) -> httpx.Response:
    return emulator.http.request(
        method, path, content=text.encode(), headers={"Content-Type": "application/json"}
    )


@pytest.mark.parametrize(
    "value",
    ["NaN", "Infinity", "-Infinity", "-1", "1e308", "14401", "true", '"1"', "[1]", '{"a": 1}'],
)
@pytest.mark.parametrize("field", ["answer_after", "hangup_after", "speak_seconds"])
def test_behaviour_seconds_must_be_finite_sane_numbers(emulator, field, value):
    response = _raw_json(emulator, "PUT", PHONE, f'{{"{field}": {value}}}')
    assert response.status_code == 400
    assert field in _json_error(response)["message"]
    listed = emulator.http.get("/emulator/phones")
    assert listed.status_code == 200 and listed.json() == {"phones": []}


@pytest.mark.parametrize(
    "behaviour",
    [
        {"mode": ["answer"]},
        {"mode": {"x": 1}},
        {"digits": 123},
        {"digits": "1" * 1000},
        {"say_audio": 5},
        {"say_audio": "https://x.example/" + "a" * 5000},
        {"say_audio": "ftp://x.example/a.wav"},
        {"say": 5},
        {"say": "a" * 5000},
        {"say_language": "english please"},
        {"say_language": ["en-US"]},
    ],
)
def test_behaviour_fields_of_the_wrong_type_are_refused(emulator, behaviour):
    response = emulator.http.put(PHONE, json=behaviour)
    assert response.status_code == 400
    _json_error(response)
    assert emulator.http.get("/emulator/phones").json() == {"phones": []}


def test_a_valid_behaviour_is_stored_as_numbers(emulator):
    response = emulator.http.put(PHONE, json={"answer_after": 2, "hangup_after": 0.5})
    assert response.status_code == 200
    (phone,) = emulator.http.get("/emulator/phones").json()["phones"]
    assert phone["answer_after"] == 2.0 and phone["hangup_after"] == 0.5


@pytest.mark.parametrize(
    "text",
    [
        "[" * 30000 + "]" * 30000,  # deeper than Python's recursion limit
        '{"a":' * 10000 + "1" + "}" * 10000,
        '{"HangupAfter": ' + "9" * 5000 + "}",  # past int parsing's 4,300 digits
        "{",
        "[]",
        '"From"',
        "\udcff",
    ],
)
def test_malformed_json_bodies_are_400(emulator, text):
    emulator.add_number()
    body = text.encode("utf-8", "surrogateescape")
    for path in ("/emulator/calls", PHONE):
        method = "PUT" if path == PHONE else "POST"
        response = emulator.http.request(
            method, path, content=body, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 400, response.text
        _json_error(response)


@pytest.mark.parametrize(
    "data",
    [
        {"From": ["+819059876543"], "To": TWILIO_NUMBER},
        {"From": 819059876543, "To": TWILIO_NUMBER},
        {"From": EXTERNAL_NUMBER, "To": TWILIO_NUMBER, "HangupAfter": "nan"},
        {"From": EXTERNAL_NUMBER, "To": TWILIO_NUMBER, "HangupAfter": "1e999"},
        {"From": EXTERNAL_NUMBER, "To": TWILIO_NUMBER, "HangupAfter": [1]},
        {"From": EXTERNAL_NUMBER, "To": TWILIO_NUMBER, "HangupAfter": True},
        {"From": EXTERNAL_NUMBER, "To": TWILIO_NUMBER, "ForwardedFrom": {"a": 1}},
        {"From": EXTERNAL_NUMBER, "To": TWILIO_NUMBER, "ForwardedFrom": "1" * 100},
    ],
)
def test_placing_a_call_refuses_wrong_types_and_values(emulator, data):
    emulator.add_number()
    response = emulator.http.post("/emulator/calls", json=json.loads(json.dumps(data)))
    assert response.status_code == 400, response.text
    _json_error(response)
    assert not emulator.switch.calls


def test_form_values_are_checked_too(emulator):
    emulator.add_number()
    for form in ("From=%FF%FE&To=x", "HangupAfter=nan&From=+819059876543&To=+815031234567"):
        response = emulator.http.post(
            "/emulator/calls",
            content=form.encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert response.status_code == 400, response.text
        _json_error(response)


def test_digits_and_play_refuse_wrong_types(emulator, hooks):
    emulator.add_number(VoiceUrl=hooks.on("/voice", '<Response><Pause length="60"/></Response>'))
    call = emulator.call_in()
    for path, body in (
        ("digits", {"Digits": [1, 2]}),
        ("digits", {"Digits": 12}),
        ("digits", {"Digits": "1" * 1000}),
        ("play", {"Url": {"x": "https://a"}}),
        ("play", {"Url": "javascript:alert(1)"}),
    ):
        response = emulator.http.post(f"/emulator/calls/{call['sid']}/{path}", json=body)
        assert response.status_code == 400, (path, body, response.text)
        _json_error(response)
    emulator.hang_up(call["sid"])


# -- Hypothesis --------------------------------------------------------------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)
BEHAVIOUR_FIELDS = [
    "mode",
    "answer_after",
    "hangup_after",
    "digits",
    "speak_seconds",
    "say_audio",
    "say",
    "say_language",
    "other",
]
CALL_FIELDS = ["From", "To", "HangupAfter", "ForwardedFrom", "Digits", "Url"]
addresses = st.one_of(
    st.text(max_size=30),
    st.just(EXTERNAL_NUMBER),
    st.text(max_size=20).map(lambda t: f"client:{t}"),
)


def _json_body(data: object) -> bytes:
    # NaN and Infinity as Python's json writes them: what a careless client sends.
    return json.dumps(data).encode()


@FUZZ
@given(
    address=addresses,
    behaviour=st.dictionaries(st.sampled_from(BEHAVIOUR_FIELDS), values, max_size=4) | values,
)
def test_fuzz_phone_behaviours(emulator, address, behaviour):
    path = f"/emulator/phones/{quote(address, safe='')}"
    response = emulator.http.put(
        path, content=_json_body(behaviour), headers={"Content-Type": "application/json"}
    )
    if response.status_code != 404:  # a path the router does not match is still Twilio's 404
        _json_error(response)
    # Whatever was stored can always be listed, as JSON.
    listed = emulator.http.get("/emulator/phones")
    assert listed.status_code == 200
    for phone in listed.json()["phones"]:
        assert isinstance(phone["answer_after"], float)
    token = emulator.http.post(f"{path}/token")
    _json_error(token)
    deleted = emulator.http.delete(path)
    assert deleted.status_code < 500


@FUZZ
@given(
    data=st.dictionaries(st.sampled_from(CALL_FIELDS), values, max_size=5),
    form=st.dictionaries(st.sampled_from(CALL_FIELDS), st.text(max_size=30), max_size=5),
    action=st.sampled_from(["calls", "digits", "play", "hangup"]),
)
def test_fuzz_calls(emulator, data, form, action):
    if not emulator.switch.numbers:
        emulator.add_number()
    path = "/emulator/calls" if action == "calls" else f"/emulator/calls/CA00/{action}"
    as_json = emulator.http.post(
        path, content=_json_body(data), headers={"Content-Type": "application/json"}
    )
    _json_error(as_json)
    _json_error(emulator.http.post(path, data=form))
    health = emulator.http.get("/emulator/health")
    assert health.status_code == 200
    for call in list(emulator.switch.calls.values()):
        if not call.ended:
            emulator.switch.far_end_hangup(call)


rest_fields = st.dictionaries(
    st.sampled_from(
        [
            "To",
            "From",
            "Url",
            "Twiml",
            "Method",
            "Timeout",
            "StatusCallback",
            "StatusCallbackEvent",
            "SendDigits",
            "ApplicationSid",
            "PhoneNumber",
            "VoiceUrl",
            "FriendlyName",
            "Status",
            "PageSize",
            "Page",
        ]
    ),
    st.text(max_size=40) | st.sampled_from([EXTERNAL_NUMBER, TWILIO_NUMBER, "-1", "1e9", "NaN"]),
    max_size=6,
)
REST_RESOURCES = [
    "Calls.json",
    "Calls/CA00000000000000000000000000000000.json",
    "IncomingPhoneNumbers.json",
    "Applications.json",
    "Keys.json",
    "Recordings.json",
]


@FUZZ
@given(
    resource=st.sampled_from(REST_RESOURCES),
    method=st.sampled_from(["GET", "POST", "DELETE"]),
    fields=rest_fields,
    suffix=st.text(max_size=10),
)
def test_fuzz_the_rest_api(emulator, resource, method, fields, suffix):
    path = f"{emulator.api}/{resource}"
    if method == "GET":
        response = emulator.http.get(path, params=fields)
    else:
        response = emulator.http.request(method, path, data=fields)
    _json_error(response)
    odd = emulator.http.get(f"{emulator.api}/{quote(suffix, safe='')}{resource}")
    _json_error(odd)
    emulator.idle(timeout=30)


@FUZZ
@given(path=st.text(max_size=40), method=st.sampled_from(["GET", "POST", "PUT", "DELETE"]))
def test_fuzz_paths(emulator, path, method):
    for prefix in ("/emulator/", "/2010-04-01/Accounts/", "/console/", "/"):
        response = emulator.http.request(method, prefix + quote(path, safe="/%"))
        assert response.status_code < 500, response.text
        if response.url.path == "/" and response.is_redirect:
            assert response.headers["location"] == "/console"  # the root leads to the console
        elif response.headers.get("content-type", "").startswith("application/json") or (
            response.is_redirect
        ):
            _json_error(response)
        else:  # the console's own files and event stream, and a call's WAV
            assert response.status_code == 200


header_values = st.text(
    alphabet=st.characters(min_codepoint=32, max_codepoint=255, exclude_characters="\x7f"),
    max_size=60,
).map(lambda text: text.strip().encode("latin-1"))


@FUZZ
@given(
    headers=st.dictionaries(
        st.sampled_from(
            ["Host", "Origin", "Cookie", "Authorization", "X-Emulator-Key", "Sec-Fetch-Site"]
        ),
        header_values,
        max_size=4,
    ),
    method=st.sampled_from(["GET", "POST"]),
    key=st.none() | st.text(max_size=30),
)
def test_fuzz_access_headers(emulator, headers, method, key):
    """Whatever a client sends as Host, Origin, cookies or credentials: a decision, not a 500."""
    params = {} if key is None else {"key": key}
    for path in ("/emulator/phones", "/console", "/emulator/health"):
        response = emulator.http.request(method, path, headers=headers, params=params)
        assert response.status_code < 500, response.text
        if response.status_code >= 300 and not response.is_redirect:
            _json_error(response)
