"""Every REST response body the emulator produces validates against Twilio's own OpenAPI spec
(`shared/twilio-oai/twilio_api_v2010.json`) for its path, method and status.

The shared README: "Emulator responses must validate against it." The spec is OpenAPI 3.0.1:
`nullable` is honoured by openapi-schema-validator's OAS30Validator, `$ref`s resolve against the
spec document, and each format the covered schemas use has a checker, so formats are checked
rather than ignored. The spec defines no error bodies; those are checked against Twilio's error
shape from the reference (§6.1).
"""

from __future__ import annotations

import copy
import email.utils
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from jsonschema.exceptions import ValidationError
from openapi_schema_validator import OAS30Validator, oas30_format_checker, validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from tests.conftest import IN_CI
from tests.emulator.conftest import EXTERNAL_NUMBER, TWILIO_NUMBER

SPEC_PATH = (
    Path(__file__).resolve().parents[2].parent / "shared" / "twilio-oai" / "twilio_api_v2010.json"
)
SPEC_URI = SPEC_PATH.as_uri()

ACCOUNT = "/2010-04-01/Accounts/{AccountSid}"
CALLS = f"{ACCOUNT}/Calls.json"
CALL = f"{ACCOUNT}/Calls/{{Sid}}.json"
NUMBERS = f"{ACCOUNT}/IncomingPhoneNumbers.json"
NUMBER = f"{ACCOUNT}/IncomingPhoneNumbers/{{Sid}}.json"
APPLICATIONS = f"{ACCOUNT}/Applications.json"
APPLICATION = f"{ACCOUNT}/Applications/{{Sid}}.json"
KEYS = f"{ACCOUNT}/Keys.json"
KEY = f"{ACCOUNT}/Keys/{{Sid}}.json"
COVERED = {
    CALLS: ("post", "get"),
    CALL: ("get", "post", "delete"),
    NUMBERS: ("post", "get"),
    NUMBER: ("get", "post", "delete"),
    APPLICATIONS: ("post", "get"),
    APPLICATION: ("get", "post", "delete"),
    KEYS: ("post", "get"),
    KEY: ("get", "post", "delete"),
}

HELLO = "<Response><Say>Hello.</Say></Response>"
LONG = '<Response><Pause length="60"/></Response>'

# --------------------------------------------------------------------------------------------
# Format checkers for the formats Twilio's spec uses (unknown formats are otherwise ignored).

_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = "Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec"
_RFC2822 = re.compile(
    rf"^(?:{'|'.join(_WEEKDAYS)}), \d{{2}} (?:{_MONTHS}) \d{{4}} \d{{2}}:\d{{2}}:\d{{2}} \+0000$"
)
_URI_CHARACTERS = re.compile(r"^(?:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})+$")
_E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")


def is_rfc2822_utc(value: object) -> bool:
    """`date-time-rfc-2822`: "in UTC … specified in RFC 2822 format", as Twilio writes it
    (`Tue, 31 Aug 2010 20:36:28 +0000`). twilio-python reads it with `email.utils.parsedate`
    and drops the offset, so anything but +0000 would be misread."""
    if not isinstance(value, str):
        return True
    if not _RFC2822.match(value):
        return False
    when = email.utils.parsedate_to_datetime(value)  # ValueError for impossible dates
    return when.utcoffset() == timedelta(0) and _WEEKDAYS[when.weekday()] == value[:3]


def is_uri(value: object) -> bool:
    """`uri`: an absolute http(s) URL (webhook URLs such as `voice_url`), or an absolute path,
    which Twilio uses for its own resources ("relative to `https://api.twilio.com`"), e.g. the
    paging envelope's `first_page_uri`."""
    if not isinstance(value, str):
        return True
    if not _URI_CHARACTERS.match(value):
        return False
    parts = urlsplit(value)
    if parts.scheme:
        return parts.scheme in ("http", "https") and bool(parts.hostname)
    return value.startswith("/") and not value.startswith("//")


def is_uri_map(value: object) -> bool:
    """`uri-map` (`subresource_uris`): names to URIs "relative to `https://api.twilio.com`"."""
    if not isinstance(value, dict):
        return True
    return all(
        isinstance(name, str) and isinstance(uri, str) and uri.startswith("/2010-04-01/")
        for name, uri in value.items()
    ) and all(is_uri(uri) for uri in value.values())


def is_phone_number(value: object) -> bool:
    """`phone-number`: "E.164 format, which consists of a + followed by the country code and
    subscriber number" (at most 15 digits)."""
    return not isinstance(value, str) or bool(_E164.match(value))


def is_currency(value: object) -> bool:
    """`currency`: ISO 4217, e.g. `USD`, "Always capitalized for calls"."""
    return not isinstance(value, str) or bool(_CURRENCY.match(value))


def is_http_method(value: object) -> bool:
    """`http-method`: "Can be: `GET` or `POST`"."""
    return not isinstance(value, str) or value in ("GET", "POST")


def is_capabilities(value: object) -> bool:
    """`phone-number-capabilities`: "Boolean properties … `Voice`, `SMS`, and `MMS`"."""
    return not isinstance(value, dict) or all(isinstance(v, bool) for v in value.values())


FORMATS = copy.deepcopy(oas30_format_checker)
FORMATS.checks("date-time-rfc-2822", raises=(ValueError, TypeError))(is_rfc2822_utc)
FORMATS.checks("uri")(is_uri)
FORMATS.checks("uri-map")(is_uri_map)
FORMATS.checks("phone-number")(is_phone_number)
FORMATS.checks("currency")(is_currency)
FORMATS.checks("http-method")(is_http_method)
FORMATS.checks("phone-number-capabilities")(is_capabilities)

# Twilio's error body (reference §6.1: "Errors: {code, message, more_info, status}"); the spec
# has no schema for it. twilio-python's TwilioRestException reads these names.
ERROR_SCHEMA = {
    "type": "object",
    "required": ["code", "message", "more_info", "status"],
    "properties": {
        "code": {"type": "integer"},
        "message": {"type": "string", "minLength": 1},
        "more_info": {"type": "string", "format": "uri"},
        "status": {"type": "integer"},
    },
}


# --------------------------------------------------------------------------------------------


def _escape(segment: str) -> str:
    return segment.replace("~", "~0").replace("/", "~1")


JSON = _escape("application/json")


@dataclass
class Spec:
    document: dict
    registry: Registry

    def schema_ref(self, path: str, method: str, status: str) -> dict:
        pointer = "/".join(
            ("paths", _escape(path), method, "responses", status, "content", JSON, "schema")
        )
        return {"$ref": f"{SPEC_URI}#/{pointer}"}

    def errors(self, body: Any, schema: dict) -> list[ValidationError]:
        validator = OAS30Validator(schema, registry=self.registry, format_checker=FORMATS)
        return sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))

    def check(self, response: httpx.Response, path: str, method: str) -> Any:
        """Assert `response` is one the spec lists for `method path`, with a valid body."""
        responses = self.document["paths"][path][method]["responses"]
        status = str(response.status_code)
        where = f"{method.upper()} {path} -> {status}"
        assert status in responses, (
            f"{where}: the spec lists only {sorted(responses)}: {response.text}"
        )
        if not responses[status].get("content"):
            assert response.content == b"", f"{where} must have no body: {response.text}"
            return None
        assert response.headers["content-type"].split(";")[0] == "application/json", where
        body = response.json()
        schema = self.schema_ref(path, method, status)
        errors = self.errors(body, schema)
        assert not errors, f"{where} breaks the spec:\n" + "\n".join(
            f"  {'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in errors
        )
        # Twilio writes every field of a resource, null when empty (reference §6.1 lists them
        # all): a field the spec lists but the emulator leaves out is a parity gap.
        try:
            validate(
                body,
                schema,
                cls=OAS30Validator,
                registry=self.registry,
                format_checker=FORMATS,
                enforce_properties_required=True,
                check_schema=False,
            )
        except ValidationError as error:
            where_in_body = "/".join(map(str, error.absolute_path)) or "(root)"
            raise AssertionError(
                f"{where}: a field the spec lists is missing at {where_in_body}: {error.message}"
            ) from None
        return body


def check_error(response: httpx.Response, status: int, code: int) -> dict:
    """Twilio's error body: `{code, message, more_info, status}` with the HTTP status."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].split(";")[0] == "application/json"
    body = response.json()
    errors = list(OAS30Validator(ERROR_SCHEMA, format_checker=FORMATS).iter_errors(body))
    assert not errors, [e.message for e in errors]
    assert body["code"] == code, body
    assert body["status"] == status
    assert body["more_info"] == f"https://www.twilio.com/docs/errors/{code}"
    return body


@pytest.fixture(scope="module")
def spec() -> Spec:
    if not SPEC_PATH.is_file():
        message = (
            f"Twilio's OpenAPI spec is missing at {SPEC_PATH} (the shared directory next to the "
            "repository, ../shared/twilio-oai/): emulator responses are not checked against it"
        )
        if IN_CI:
            pytest.fail(f"CI=true: {message}")
        pytest.skip(message)
    document = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
    resource = Resource.from_contents(document, default_specification=DRAFT4)
    return Spec(document, Registry().with_resource(SPEC_URI, resource))


@pytest.fixture
def numbered(emulator):
    """The emulator with our Twilio number, so outbound calls have a valid From."""
    emulator.add_number(TWILIO_NUMBER)
    return emulator


def _url(emulator, template: str, sid: str = "") -> str:
    return template.replace("{AccountSid}", emulator.credentials.account_sid).replace("{Sid}", sid)


def _create_call(spec: Spec, emulator, **params: str) -> dict:
    data = {"To": EXTERNAL_NUMBER, "From": TWILIO_NUMBER, **params}
    return spec.check(emulator.http.post(_url(emulator, CALLS), data=data), CALLS, "post")


# --------------------------------------------------------------------------------------------
# Calls


def test_creating_a_call_answers_201_with_a_call_resource(spec, numbered, hooks):
    """Spec: `POST …/Calls.json` responses `201` → `#/components/schemas/api.v2010.account.call`;
    reference §6.1: "response **201** JSON"."""
    call = _create_call(spec, numbered, Url=hooks.on("/answer", HELLO))
    assert call["sid"].startswith("CA")
    assert call["status"] == "queued"
    assert call["direction"] == "outbound-api"
    assert call["to"] == EXTERNAL_NUMBER and call["from"] == TWILIO_NUMBER
    assert call["account_sid"] == numbered.credentials.account_sid
    assert call["uri"] == _url(numbered, CALL, call["sid"])
    twiml = _create_call(spec, numbered, Twiml=HELLO)
    assert twiml["sid"] != call["sid"]


def test_a_completed_call_is_fetched_with_its_duration_and_end_time(spec, numbered):
    """Spec: `GET …/Calls/{Sid}.json` `200` → `api.v2010.account.call`; `duration` "The length of
    the call in seconds", `end_time` "The time the call ended" (both set once completed);
    `DELETE` answers `204` with no body."""
    sid = _create_call(spec, numbered, Twiml='<Response><Pause length="2"/></Response>')["sid"]
    numbered.wait_status(sid)
    url = _url(numbered, CALL, sid)
    call = spec.check(numbered.http.get(url), CALL, "get")
    assert call["status"] == "completed"
    assert call["duration"] is not None and int(call["duration"]) >= 2
    assert call["start_time"] is not None and call["end_time"] is not None
    start = email.utils.parsedate_to_datetime(call["start_time"])
    end = email.utils.parsedate_to_datetime(call["end_time"])
    assert end >= start + timedelta(seconds=2)
    spec.check(numbered.http.delete(url), CALL, "delete")
    check_error(numbered.http.get(url), 404, 20404)


def test_listing_calls_pages_with_page_size_and_next_page_uri(spec, numbered):
    """Spec: `GET …/Calls.json` `200` → `ListCallResponse` {calls, end, first_page_uri,
    next_page_uri (nullable), page, page_size, previous_page_uri (nullable), start, uri};
    reference §6.1: list filters include `To` and `PageSize`."""
    sids = [_create_call(spec, numbered, Twiml=HELLO)["sid"] for _ in range(3)]
    listing = _url(numbered, CALLS)
    first = spec.check(
        numbered.http.get(listing, params={"To": EXTERNAL_NUMBER, "PageSize": 2}), CALLS, "get"
    )
    assert [c["sid"] for c in first["calls"]] == sids[::-1][:2]  # newest first
    assert (first["page"], first["page_size"], first["start"], first["end"]) == (0, 2, 0, 1)
    assert first["previous_page_uri"] is None
    assert first["next_page_uri"] is not None
    query = parse_qs(urlsplit(first["next_page_uri"]).query)
    assert query["To"] == [EXTERNAL_NUMBER] and query["PageSize"] == ["2"]  # filters kept

    second = spec.check(numbered.http.get(first["next_page_uri"]), CALLS, "get")
    assert [c["sid"] for c in second["calls"]] == sids[::-1][2:]
    assert (second["page"], second["start"], second["end"]) == (1, 2, 2)
    assert second["next_page_uri"] is None
    assert second["previous_page_uri"] is not None
    again = spec.check(numbered.http.get(second["previous_page_uri"]), CALLS, "get")
    assert [c["sid"] for c in again["calls"]] == sids[::-1][:2]

    none = spec.check(numbered.http.get(listing, params={"To": "+819000000000"}), CALLS, "get")
    assert none["calls"] == [] and none["next_page_uri"] is None


def test_updating_a_live_call_redirects_it_and_completes_it(spec, numbered, hooks):
    """Spec: `POST …/Calls/{Sid}.json` `200` → `api.v2010.account.call`; reference §6.1:
    "Update: `Url`, `Method`, `Twiml`, `Status` (`canceled`/`completed`)"."""
    sid = _create_call(spec, numbered, Twiml=LONG)["sid"]
    numbered.wait_status(sid, ("in-progress",))
    url = _url(numbered, CALL, sid)

    redirect = hooks.on("/redirected", LONG)
    redirected = spec.check(numbered.http.post(url, data={"Url": redirect}), CALL, "post")
    assert redirected["sid"] == sid and redirected["status"] == "in-progress"
    (request,) = hooks.wait("/redirected")
    assert request.form["CallSid"] == sid

    ended = spec.check(numbered.http.post(url, data={"Status": "completed"}), CALL, "post")
    assert ended["sid"] == sid
    assert ended["status"] in ("in-progress", "completed")  # ending takes effect at once after
    final = numbered.wait_status(sid)
    assert final["status"] == "completed"
    call = spec.check(numbered.http.get(url), CALL, "get")
    assert call["duration"] is not None and call["end_time"] is not None


# --------------------------------------------------------------------------------------------
# IncomingPhoneNumbers and Applications


def test_incoming_phone_numbers_create_list_fetch_update_delete(spec, emulator, hooks):
    """Spec: `IncomingPhoneNumbers.json` POST `201` / GET `200` (`ListIncomingPhoneNumber
    Response`), `IncomingPhoneNumbers/{Sid}.json` GET `200` / POST `200` /DELETE `204`,
    bodies `api.v2010.account.incoming_phone_number`."""
    voice = hooks.on("/voice", HELLO)
    number = spec.check(
        emulator.http.post(
            _url(emulator, NUMBERS),
            data={"PhoneNumber": TWILIO_NUMBER, "VoiceUrl": voice, "FriendlyName": "line 1"},
        ),
        NUMBERS,
        "post",
    )
    assert number["sid"].startswith("PN")
    assert number["phone_number"] == TWILIO_NUMBER
    assert number["voice_url"] == voice and number["voice_method"] == "POST"

    listed = spec.check(emulator.http.get(_url(emulator, NUMBERS)), NUMBERS, "get")
    assert [n["sid"] for n in listed["incoming_phone_numbers"]] == [number["sid"]]

    url = _url(emulator, NUMBER, number["sid"])
    assert spec.check(emulator.http.get(url), NUMBER, "get") == number

    other = hooks.on("/other", HELLO)
    updated = spec.check(
        emulator.http.post(url, data={"VoiceUrl": other, "VoiceMethod": "GET"}), NUMBER, "post"
    )
    assert updated["voice_url"] == other and updated["voice_method"] == "GET"

    spec.check(emulator.http.delete(url), NUMBER, "delete")
    check_error(emulator.http.get(url), 404, 20404)
    empty = spec.check(emulator.http.get(_url(emulator, NUMBERS)), NUMBERS, "get")
    assert empty["incoming_phone_numbers"] == []


def test_applications_create_list_fetch_update_delete(spec, emulator, hooks):
    """Spec: `Applications.json` POST `201` / GET `200` (`ListApplicationResponse`),
    `Applications/{Sid}.json` GET `200` / POST `200` / DELETE `204`, bodies
    `api.v2010.account.application`."""
    voice = hooks.on("/app", HELLO)
    app = spec.check(
        emulator.http.post(
            _url(emulator, APPLICATIONS),
            data={"VoiceUrl": voice, "FriendlyName": "dialtone", "StatusCallback": voice},
        ),
        APPLICATIONS,
        "post",
    )
    assert app["sid"].startswith("AP")
    assert app["friendly_name"] == "dialtone" and app["voice_url"] == voice

    listed = spec.check(emulator.http.get(_url(emulator, APPLICATIONS)), APPLICATIONS, "get")
    assert [a["sid"] for a in listed["applications"]] == [app["sid"]]

    url = _url(emulator, APPLICATION, app["sid"])
    assert spec.check(emulator.http.get(url), APPLICATION, "get") == app

    updated = spec.check(
        emulator.http.post(url, data={"FriendlyName": "renamed", "VoiceFallbackUrl": voice}),
        APPLICATION,
        "post",
    )
    assert updated["friendly_name"] == "renamed" and updated["voice_fallback_url"] == voice

    spec.check(emulator.http.delete(url), APPLICATION, "delete")
    check_error(emulator.http.get(url), 404, 20404)


def test_keys_create_list_fetch_update_delete(spec, emulator):
    """Spec: `Keys.json` POST `201` (`api.v2010.account.new_key`, with `secret`) / GET `200`,
    `Keys/{Sid}.json` GET / POST `200` (`api.v2010.account.key`, no secret) / DELETE `204`."""
    made = spec.check(
        emulator.http.post(_url(emulator, KEYS), data={"FriendlyName": "dialtone"}), KEYS, "post"
    )
    assert made["sid"].startswith("SK") and len(made["secret"]) == 32
    listed = spec.check(emulator.http.get(_url(emulator, KEYS)), KEYS, "get")
    assert made["sid"] in [k["sid"] for k in listed["keys"]]
    assert emulator.credentials.api_key in [k["sid"] for k in listed["keys"]]
    assert all("secret" not in k for k in listed["keys"])
    url = _url(emulator, KEY, made["sid"])
    fetched = spec.check(emulator.http.get(url), KEY, "get")
    assert "secret" not in fetched and fetched["friendly_name"] == "dialtone"
    renamed = spec.check(emulator.http.post(url, data={"FriendlyName": "other"}), KEY, "post")
    assert renamed["friendly_name"] == "other"
    spec.check(emulator.http.delete(url), KEY, "delete")
    check_error(emulator.http.get(url), 404, 20404)
    check_error(emulator.http.post(url, data={"FriendlyName": "x"}), 404, 20404)
    check_error(emulator.http.delete(url), 404, 20404)
    # Twilio's Key doc: Standard keys reach everything "except for API key and Account
    # resources"; a key that asks gets 401 with 20003.
    credentials = emulator.credentials
    with httpx.Client(
        base_url=emulator.base_url, auth=(credentials.api_key, credentials.api_secret)
    ) as with_key:
        check_error(with_key.get(_url(emulator, KEYS)), 401, 20003)
        check_error(with_key.post(_url(emulator, KEYS), data={"FriendlyName": "x"}), 401, 20003)
        check_error(with_key.get(_url(emulator, KEY, credentials.api_key)), 401, 20003)


def test_lists_filtered_by_phone_number_and_friendly_name(spec, emulator):
    """Spec: `IncomingPhoneNumbers.json` GET takes `PhoneNumber` ("partial numbers and … '*'
    as a wildcard for any digit") and `FriendlyName`, `Applications.json` GET `FriendlyName`;
    the paging URIs keep the filter."""
    for path, names in (
        (NUMBERS, {"PhoneNumber", "FriendlyName"}),
        (APPLICATIONS, {"FriendlyName"}),
    ):
        parameters = spec.document["paths"][path]["get"]["parameters"]
        assert names <= {p["name"] for p in parameters if p["in"] == "query"}
    emulator.add_number(TWILIO_NUMBER, FriendlyName="line 1")
    emulator.add_number("+815039876543", FriendlyName="line 2")
    emulator.add_number("+815031230000", FriendlyName="line 3")
    app = emulator.add_application(FriendlyName="dialtone")
    emulator.add_application(FriendlyName="dialtone 2")

    url = _url(emulator, NUMBERS)
    exact = spec.check(
        emulator.http.get(url, params={"PhoneNumber": TWILIO_NUMBER}), NUMBERS, "get"
    )
    assert [n["phone_number"] for n in exact["incoming_phone_numbers"]] == [TWILIO_NUMBER]
    paged = spec.check(
        emulator.http.get(url, params={"PhoneNumber": "+8150312*", "PageSize": 1}), NUMBERS, "get"
    )
    assert [n["phone_number"] for n in paged["incoming_phone_numbers"]] == [TWILIO_NUMBER]
    for uri in (paged["uri"], paged["first_page_uri"], paged["next_page_uri"]):
        assert parse_qs(urlsplit(uri).query)["PhoneNumber"] == ["+8150312*"]
    rest = spec.check(emulator.http.get(paged["next_page_uri"]), NUMBERS, "get")
    assert [n["phone_number"] for n in rest["incoming_phone_numbers"]] == ["+815031230000"]
    assert rest["next_page_uri"] is None
    named = spec.check(emulator.http.get(url, params={"FriendlyName": "line 2"}), NUMBERS, "get")
    assert [n["phone_number"] for n in named["incoming_phone_numbers"]] == ["+815039876543"]

    apps = spec.check(
        emulator.http.get(_url(emulator, APPLICATIONS), params={"FriendlyName": "dialtone"}),
        APPLICATIONS,
        "get",
    )
    assert [a["sid"] for a in apps["applications"]] == [app["sid"]]
    assert parse_qs(urlsplit(apps["uri"]).query)["FriendlyName"] == ["dialtone"]


@pytest.mark.parametrize(
    ("template", "data", "code"),
    [
        # 21502 "Invalid callback url": not "a fully qualified URL".
        pytest.param(NUMBER, {"VoiceUrl": "example.com/voice"}, 21502, id="number VoiceUrl"),
        pytest.param(NUMBER, {"StatusCallback": "http://"}, 21502, id="number StatusCallback"),
        pytest.param(APPLICATION, {"VoiceUrl": "/relative"}, 21502, id="app VoiceUrl"),
        # 21403 "Invalid Method": "Valid Method values are GET or POST".
        pytest.param(NUMBER, {"VoiceMethod": "PUT"}, 21403, id="number VoiceMethod"),
        pytest.param(APPLICATION, {"StatusCallbackMethod": "X"}, 21403, id="app method"),
        # 21420 "ApplicationSid is not accessible".
        pytest.param(NUMBER, {"VoiceApplicationSid": "AP" + "0" * 32}, 21420, id="app SID"),
    ],
)
def test_invalid_updates_answer_400_with_twilio_error_codes(emulator, template, data, code):
    number = emulator.add_number(TWILIO_NUMBER)
    app = emulator.add_application(FriendlyName="dialtone")
    sid = number["sid"] if template == NUMBER else app["sid"]
    check_error(emulator.http.post(_url(emulator, template, sid), data=data), 400, code)


# --------------------------------------------------------------------------------------------
# Authentication and errors


@pytest.mark.parametrize(
    "auth",
    [
        pytest.param("wrong-token", id="wrong auth token"),
        pytest.param("unknown-user", id="unknown account"),
        pytest.param(None, id="no credentials"),
    ],
)
def test_bad_credentials_answer_401_with_error_20003(emulator, auth):
    """Reference §6.1: "Auth: Basic `AC…:AuthToken` or `SK…:secret`"; "Errors: {code, message,
    more_info, status}, e.g. 20003 authentication"."""
    credentials = emulator.credentials
    basic = {
        "wrong-token": (credentials.account_sid, "0" * 32),
        "unknown-user": ("AC" + "0" * 32, credentials.auth_token),
        None: None,
    }[auth]
    with httpx.Client(base_url=emulator.base_url, auth=basic) as http:
        for response in (
            http.get(_url(emulator, CALLS)),
            http.post(_url(emulator, CALLS), data={"To": EXTERNAL_NUMBER, "Twiml": HELLO}),
            http.get(_url(emulator, NUMBERS)),
        ):
            check_error(response, 401, 20003)


def test_an_api_key_and_secret_authenticate_too(spec, numbered):
    """Reference §6.1: "Auth: Basic `AC…:AuthToken` or `SK…:secret`"."""
    credentials = numbered.credentials
    assert credentials.api_key.startswith("SK")
    with httpx.Client(
        base_url=numbered.base_url, auth=(credentials.api_key, credentials.api_secret)
    ) as http:
        spec.check(http.get(_url(numbered, CALLS)), CALLS, "get")
        call = spec.check(
            http.post(
                _url(numbered, CALLS),
                data={"To": EXTERNAL_NUMBER, "From": TWILIO_NUMBER, "Twiml": HELLO},
            ),
            CALLS,
            "post",
        )
        assert call["account_sid"] == credentials.account_sid
        spec.check(http.get(_url(numbered, NUMBERS)), NUMBERS, "get")
    with httpx.Client(base_url=numbered.base_url, auth=(credentials.api_key, "0" * 32)) as http:
        check_error(http.get(_url(numbered, CALLS)), 401, 20003)


@pytest.mark.parametrize(
    ("params", "code"),
    [
        # "Required: `To` and `From`" — no To: 21201 ("No 'To' number is specified").
        pytest.param({"From": TWILIO_NUMBER, "Twiml": HELLO}, 21201, id="missing To"),
        # 21211: "Invalid 'To' Phone Number".
        pytest.param({"To": "12", "From": TWILIO_NUMBER, "Twiml": HELLO}, 21211, id="invalid To"),
        # 21212: "Invalid 'From' Phone Number".
        pytest.param(
            {"To": EXTERNAL_NUMBER, "From": "not-a-number", "Twiml": HELLO}, 21212, id="bad From"
        ),
        # "plus one of … Url … Twiml … ApplicationSid. Leaving out all three gives error 21205".
        pytest.param({"To": EXTERNAL_NUMBER, "From": TWILIO_NUMBER}, 21205, id="no Url/Twiml"),
        # "`From` is a Twilio or verified number …; other numbers give 21210".
        pytest.param(
            {"To": EXTERNAL_NUMBER, "From": "+819012345678", "Twiml": HELLO}, 21210, id="foreign"
        ),
    ],
)
def test_invalid_call_parameters_answer_400_with_twilio_error_codes(numbered, params, code):
    """Reference §6.1, `POST …/Calls.json`: the rule quoted with each case."""
    body = check_error(numbered.post("Calls.json", params), 400, code)
    assert body["message"]
    assert numbered.switch.calls == {}  # nothing was placed


def test_an_unknown_call_answers_404_with_error_20404(numbered):
    """Reference §6.1: "Errors: {code, message, more_info, status}, e.g. … 20404 not found"."""
    url = _url(numbered, CALL, "CA" + "0" * 32)
    check_error(numbered.http.get(url), 404, 20404)
    check_error(numbered.http.post(url, data={"Status": "completed"}), 404, 20404)
    check_error(numbered.http.delete(url), 404, 20404)


# --------------------------------------------------------------------------------------------
# The checks themselves: the validator must be able to fail.


def _formats_in(spec: Spec, schema: Any, seen: set[str] | None = None) -> Iterator[str]:
    seen = set() if seen is None else seen
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/"):
            if ref in seen:
                return
            seen.add(ref)
            target: Any = spec.document
            for segment in ref[2:].split("/"):
                target = target[segment.replace("~1", "/").replace("~0", "~")]
            yield from _formats_in(spec, target, seen)
        if isinstance(schema.get("format"), str):
            yield schema["format"]
        for key, value in schema.items():
            if key not in ("$ref", "description", "x-twilio"):
                yield from _formats_in(spec, value, seen)
    elif isinstance(schema, list):
        for value in schema:
            yield from _formats_in(spec, value, seen)


def test_every_format_in_the_covered_schemas_has_a_checker(spec):
    """jsonschema ignores formats it has no checker for: each one the covered responses use
    must be registered, or its values would go unchecked."""
    used = set()
    for path, methods in COVERED.items():
        for method in methods:
            for response in spec.document["paths"][path][method]["responses"].values():
                for content in (response.get("content") or {}).values():
                    used |= set(_formats_in(spec, content["schema"]))
    assert {"date-time-rfc-2822", "uri", "uri-map", "phone-number", "currency"} <= used
    assert used <= set(FORMATS.checkers), f"unchecked formats: {used - set(FORMATS.checkers)}"


@pytest.mark.parametrize(
    ("checker", "good", "bad"),
    [
        (
            is_rfc2822_utc,
            ["Tue, 31 Aug 2010 20:36:28 +0000", "Sat, 21 Nov 2026 10:00:00 +0000"],
            [
                "2010-08-31T20:36:28Z",
                "Tue, 31 Aug 2010 20:36:28 GMT",
                "Tue, 31 Aug 2010 20:36:28 +0900",
                "Mon, 31 Aug 2010 20:36:28 +0000",  # 31 Aug 2010 was a Tuesday
                "Tue, 31 Feb 2010 20:36:28 +0000",
            ],
        ),
        (
            is_uri,
            ["https://example.com/voice?x=1", "/2010-04-01/Accounts/AC1/Calls.json?Page=0"],
            ["example.com/voice", "ftp://example.com/x", "/a b", "//example.com/x", "https://"],
        ),
        (
            is_uri_map,
            [{"recordings": "/2010-04-01/Accounts/AC1/Calls/CA1/Recordings.json"}],
            [{"recordings": "https://example.com/r"}, {"recordings": None}],
        ),
        (is_phone_number, ["+815031234567", "+14155551212"], ["05031234567", "+0123", "+1 415"]),
        (is_currency, ["USD", "JPY"], ["usd", "US", "$"]),
        (is_http_method, ["GET", "POST"], ["PUT", "post"]),
    ],
)
def test_the_format_checkers_reject_what_their_formats_forbid(checker, good, bad):
    for value in good:
        assert checker(value), value
    for value in bad:
        try:
            accepted = checker(value)
        except (ValueError, TypeError):
            accepted = False
        assert not accepted, value


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("sid", "XX" + "0" * 32),
        ("status", "dialing"),
        ("status", None),  # the status enum is not nullable
        ("date_created", "2026-11-21T10:00:00Z"),
        ("price_unit", "usd"),
        ("direction", 1),
        ("subresource_uris", {"recordings": "Recordings.json"}),
    ],
)
def test_the_spec_check_rejects_a_call_that_breaks_it(spec, numbered, field, value):
    """The validator resolves the spec's `$ref`s and checks its formats: a bad field fails."""
    call = _create_call(spec, numbered, Twiml=HELLO)
    schema = spec.schema_ref(CALLS, "post", "201")
    broken = {**call, field: value}
    assert spec.errors(broken, schema), f"{field}={value!r} passed"
    assert not spec.errors({**call, "to": None, "date_created": None}, schema)  # nullable
