"""Every route answers bad input with a clear 4xx (or, for Twilio, safe TwiML), never a 500
or 503: fuzzed bodies and headers over real HTTP on loopback."""

import json
import socket
from urllib.parse import urlencode, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import SEED_NUMBER

TOKEN = "/twilio/retrieve_capability_token"
WEBHOOKS = [
    "/twilio/retrieve_twiml/call_incoming",
    "/twilio/retrieve_twiml/call_outgoing",
    "/twilio/retrieve_twiml/dial_ended",
    "/twilio/status_callback",
]
ROUTES = [
    TOKEN,
    "/twilio/refresh_token",
    *WEBHOOKS,
    "/twilio/calls",
    "/healthz",
    "/",
    "/app.js",
    "/config.json",
    "/sounds/ring.wav",
    "/vendor/twilio.min.js",
]
FUZZ = settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=40)
    | st.just(SEED_NUMBER),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
sign_ins = st.fixed_dictionaries(
    {},
    optional={
        "twilioPhoneNumber": json_values | st.text(max_size=30),
        "password": json_values | st.text(max_size=30),
    },
)
content_types = st.sampled_from(
    [
        "application/json",
        "application/json; charset=utf-8",
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/json; charset=latin-1",
        "",
    ]
)


def _raw(base_url, request: bytes) -> str:
    """Send raw bytes (headers httpx would refuse to send) and return the status line."""
    url = urlsplit(base_url)
    with socket.create_connection((url.hostname, url.port), timeout=10) as connection:
        connection.sendall(request)
        answer = b""
        while b"\r\n" not in answer:
            data = connection.recv(4096)
            if not data:
                break
            answer += data
    return answer.split(b"\r\n", 1)[0].decode()


@FUZZ
@given(body=sign_ins, content_type=content_types)
def test_fuzzed_sign_ins_are_never_a_server_error(server, body, content_type):
    response = server.http.post(
        TOKEN, content=json.dumps(body).encode(), headers={"Content-Type": content_type}
    )
    assert response.status_code in (200, 400, 401, 415, 429), response.text
    assert response.json()["error" if response.status_code != 200 else "success"] is not None


@FUZZ
@given(body=st.binary(max_size=300), content_type=content_types)
def test_fuzzed_bytes_to_the_token_api_are_never_a_server_error(server, body, content_type):
    response = server.http.post(TOKEN, content=body, headers={"Content-Type": content_type})
    assert 400 <= response.status_code < 500
    assert response.json()["error"]


@FUZZ
@given(
    path=st.sampled_from(WEBHOOKS),
    params=st.dictionaries(
        st.sampled_from(
            ["CallSid", "From", "To", "CallStatus", "SequenceNumber", "Direction", "DialCallStatus"]
        )
        | st.text(max_size=8),
        st.text(max_size=60),
        max_size=6,
    ),
    signed=st.booleans(),
)
def test_fuzzed_webhooks_are_never_a_server_error(server, path, params, signed):
    # Signed ones reach the handlers: they must refuse or answer TwiML, never fail.
    response = server.webhook(path, params, signature=None if signed else "forged")
    assert response.status_code in (200, 400, 403), response.text


@FUZZ
@given(body=st.binary(max_size=300), path=st.sampled_from(WEBHOOKS))
def test_fuzzed_form_bytes_are_never_a_server_error(server, body, path):
    response = server.http.post(
        path, content=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 403


@pytest.mark.parametrize("path", WEBHOOKS)
def test_a_signed_call_sid_of_10_kb_is_handled(server, path):
    params = {
        "CallSid": "CA" + "a" * 10_000,
        "From": "+819059876543",
        "To": SEED_NUMBER,
        "CallStatus": "ringing",
        "Direction": "inbound",
    }
    response = server.webhook(path, params)
    assert response.status_code in (200, 400), response.text
    assert "a" * 100 not in response.text  # not echoed back


@pytest.mark.parametrize("path", WEBHOOKS)
def test_invalid_percent_encoding_and_nul_bytes_in_webhooks(server, path):
    for body in (b"CallSid=%zz%&To=%E3%81&From=%00\x00", b"%%%===&&&", b"\x00" * 100):
        response = server.http.post(
            path, content=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
        )
        assert response.status_code == 403
    response = server.http.get(path + "?CallSid=%zz&To=%E3%81%00")
    assert response.status_code == 403


@pytest.mark.parametrize("path", ["/twilio/calls", "/twilio/refresh_token"])
@pytest.mark.parametrize(
    "authorization",
    [
        b"Bearer \xff\xfe\xe9t\xc3\xa9",
        b"Bearer " + "\u00e9".encode("latin-1") * 10,
        b"Basic dXNlcjpwYXNz",
        b"Bearer",
        b"Bearer a.b.c",
        b"Bearer " + b"x" * 6000,
    ],
)
def test_odd_authorization_headers_are_401(server, path, authorization):
    method = "GET" if path == "/twilio/calls" else "POST"
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: test\r\nContent-Length: 0\r\n".encode()
        + b"Authorization: "
        + authorization
        + b"\r\nConnection: close\r\n\r\n"
    )
    assert _raw(server.base_url, head).startswith("HTTP/1.1 401")


@pytest.mark.parametrize("path", ROUTES)
@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"])
def test_odd_methods_get_a_json_405(server, path, method):
    response = server.http.request(method, path)
    assert response.status_code == 405
    assert response.json() == {"success": False, "error": "Method Not Allowed"}
    assert response.headers["allow"]


@pytest.mark.parametrize("path", ROUTES)
def test_a_method_http_does_not_know_is_refused(server, path):
    # uvicorn's httptools parser (uvicorn[standard]) answers 400 before the app sees it;
    # its pure-Python h11 parser lets the app answer 405.
    response = server.http.request("FOO", path)
    assert response.status_code in (400, 405)
    assert "Traceback" not in response.text


@pytest.mark.parametrize("target", ["/%zz", "/twilio/%00", "/" + "a" * 4000, "/sounds/%ff.wav"])
def test_odd_paths_get_a_json_404(server, target):
    response = server.http.get(target)
    assert response.status_code == 404
    assert response.json()["error"] in ("Not Found", "no such sound")


def test_a_form_body_to_the_token_api_is_415(server):
    response = server.http.post(
        TOKEN, content=urlencode({"twilioPhoneNumber": SEED_NUMBER, "password": "x" * 10})
    )
    assert response.status_code == 415
