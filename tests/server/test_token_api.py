"""POST /twilio/retrieve_capability_token over real HTTP on loopback."""

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs

import jwt
import pytest

from dialtone.devcreds import development_values
from dialtone.server import web
from dialtone.server.config import ConfigError, Settings
from dialtone.server.throttle import Limits, SignInThrottle
from tests.conftest import SEED_CLIENT, SEED_NUMBER, SEED_PASSWORD

PATH = "/twilio/retrieve_capability_token"


def _claims(token, key):
    return jwt.decode(token, key, algorithms=["HS256"], options={"verify_aud": False})


def test_seed_curl_check_with_a_password_returns_both_tokens(server):
    # Seed 002 §2-8: curl -H "Content-type: application/json" -d '{"twilioPhoneNumber": …}'
    response = server.http.post(
        PATH, json={"twilioPhoneNumber": "+81-50-3123-4567", "password": SEED_PASSWORD}
    )
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["success"] is True
    assert body["identity"] == SEED_CLIENT
    assert body["ttl"] == 3600
    assert body["twilioPhoneNumber"] == SEED_NUMBER
    assert body["capabilityToken"].count(".") == 2
    assert body["accessToken"].count(".") == 2


def test_capability_token_claims_scopes_and_signing_key(server):
    s = server.settings
    body = server.http.post(
        PATH, json={"twilioPhoneNumber": SEED_NUMBER, "password": SEED_PASSWORD}
    ).json()
    token = body["capabilityToken"]
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT"}
    with pytest.raises(jwt.InvalidSignatureError):
        _claims(token, s.api_secret)
    claims = _claims(token, s.auth_token)
    assert claims["iss"] == s.account_sid
    assert "sub" not in claims
    assert claims["exp"] - claims["nbf"] == 3600
    scopes = sorted(claims["scope"].split(" "))
    assert scopes[0] == f"scope:client:incoming?clientName={SEED_CLIENT}"
    service, query = scopes[1].split("?")
    assert service == "scope:client:outgoing"
    assert parse_qs(query) == {"appSid": [s.twiml_app_sid], "clientName": [SEED_CLIENT]}


def test_access_token_claims_grants_and_signing_key(server):
    s = server.settings
    body = server.http.post(
        PATH, json={"twilioPhoneNumber": SEED_NUMBER, "password": SEED_PASSWORD}
    ).json()
    token = body["accessToken"]
    assert jwt.get_unverified_header(token)["cty"] == "twilio-fpa;v=1"
    with pytest.raises(jwt.InvalidSignatureError):
        _claims(token, s.auth_token)
    claims = _claims(token, s.api_secret)
    assert claims["iss"] == s.api_key
    assert claims["sub"] == s.account_sid
    assert claims["jti"].startswith(s.api_key + "-")
    assert claims["exp"] - claims["nbf"] == 3600
    assert claims["grants"]["identity"] == SEED_CLIENT
    assert claims["grants"]["voice"] == {
        "incoming": {"allow": True},
        "outgoing": {"application_sid": s.twiml_app_sid},
    }


def test_ttl_follows_the_configuration(make_server, settings, registry):
    server = make_server(replace(settings, token_ttl=600))
    body = server.http.post(
        PATH, json={"twilioPhoneNumber": SEED_NUMBER, "password": SEED_PASSWORD}
    ).json()
    assert body["ttl"] == 600
    for token, key in (
        (body["accessToken"], settings.api_secret),
        (body["capabilityToken"], settings.auth_token),
    ):
        claims = _claims(token, key)
        assert claims["exp"] - claims["nbf"] == 600


@pytest.mark.parametrize(
    "number", ["+81-50-3123-4567", "+815031234567", "+81 50 3123 4567", "050-3123-4567"]
)
def test_every_format_of_the_number_signs_in(server, number):
    response = server.http.post(PATH, json={"twilioPhoneNumber": number, "password": SEED_PASSWORD})
    assert response.status_code == 200, response.text


def test_unknown_number_and_wrong_password_get_the_same_401(server):
    unknown = server.http.post(
        PATH, json={"twilioPhoneNumber": "+81-50-9999-0000", "password": SEED_PASSWORD}
    )
    wrong = server.http.post(
        PATH, json={"twilioPhoneNumber": SEED_NUMBER, "password": "not the password"}
    )
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.json() == wrong.json()
    assert wrong.json()["success"] is False
    assert wrong.json()["capabilityToken"] is None
    assert wrong.json()["error"]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b"{not json", "JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"twilioPhoneNumber": "+815031234567"}', "password"),
        (b'{"password": "x"}', "twilioPhoneNumber"),
        (
            b'{"twilioPhoneNumber": 815031234567, "password": "correct horse battery"}',
            "twilioPhoneNumber",
        ),
        (b'{"twilioPhoneNumber": "call me", "password": "x"}', "not a valid phone number"),
        (b"\xff\xfe", "JSON"),
        (b'{"twilioPhoneNumber": ' + b"9" * 5000 + b', "password": "x"}', "JSON"),
        (b"[" * 8000 + b"]" * 8000, "JSON"),
        (b'{"a": ' * 2000 + b"1" + b"}" * 2000, "JSON"),
        (b'{"twilioPhoneNumber": ["+815031234567"], "password": {"p": 1}}', "password"),
        (b'{"twilioPhoneNumber": "+815031234567", "password": null}', "password"),
        (b'{"twilioPhoneNumber": "\\ud800", "password": "x"}', "twilioPhoneNumber"),
        (b'{"twilioPhoneNumber": "' + b"5" * 10_000 + b'", "password": "x"}', "phone number"),
        (b'{"twilioPhoneNumber": "+81\\u0000503", "password": "x"}', "phone number"),
        (b"", "JSON"),
        (b"NaN", "JSON object"),
    ],
)
def test_malformed_requests_get_400_with_a_message(server, body, needle):
    response = server.http.post(PATH, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["success"] is False
    assert needle in response.json()["error"]


def test_a_password_with_a_lone_surrogate_is_a_400_not_a_guess(server):
    # JSON can carry "\\ud800" but no password can hold it (it cannot be encoded, so it
    # could never have been set): a malformed request, refused before any password check.
    body = b'{"twilioPhoneNumber": "%s", "password": "abc\\ud800def"}' % SEED_NUMBER.encode()
    for _ in range(8):
        response = server.http.post(
            PATH, content=body, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 400
        assert "lone surrogate" in response.json()["error"]
        assert "password" in response.json()["error"]
    # Not counted as failed sign-ins: the owner is not slowed by them.
    ok = server.http.post(PATH, json={"twilioPhoneNumber": SEED_NUMBER, "password": SEED_PASSWORD})
    assert ok.status_code == 200


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/json; charset=iso-8859-1",
        "application/jsonp",
        None,
    ],
)
def test_a_body_that_is_not_declared_json_is_415(server, content_type):
    # text/plain, forms and multipart are "simple" requests: any web page could send them
    # cross-origin without a CORS preflight.
    headers = {"Content-Type": content_type} if content_type else {}
    body = json.dumps({"twilioPhoneNumber": SEED_NUMBER, "password": SEED_PASSWORD})
    response = server.http.post(PATH, content=body, headers=headers)
    assert response.status_code == 415
    assert "application/json" in response.json()["error"]


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "Application/JSON; charset=utf-8", 'application/json;charset="UTF-8"'],
)
def test_json_with_or_without_a_utf8_charset_is_accepted(server, content_type):
    body = json.dumps({"twilioPhoneNumber": SEED_NUMBER, "password": SEED_PASSWORD})
    response = server.http.post(PATH, content=body, headers={"Content-Type": content_type})
    assert response.status_code == 200


def test_the_phone_sends_json():
    app_js = (Path(web.__file__).parent.parent / "web" / "app.js").read_text()
    sign_in = app_js[app_js.index('api("/twilio/retrieve_capability_token"') :][:300]
    assert '"Content-Type": "application/json"' in sign_in
    assert "JSON.stringify" in sign_in


def test_seed_request_without_a_password_is_refused(server):
    # The seed authenticated by number alone; a number is not a secret.
    response = server.http.post(PATH, json={"twilioPhoneNumber": "+81-50-3123-4567"})
    assert response.status_code == 400
    assert "password" in response.json()["error"]


class Clock:
    """The throttle's clock, moved by the test instead of waited for."""

    def __init__(self):
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += timedelta(seconds=seconds)


def _sign_in(server, password, address=None, number=SEED_NUMBER):
    headers = {"X-Forwarded-For": address} if address else {}
    return server.http.post(
        PATH, json={"twilioPhoneNumber": number, "password": password}, headers=headers
    )


@pytest.fixture
def proxied(make_server, settings, registry, db):
    """A server behind a trusted proxy on loopback: each test request names its client
    address in X-Forwarded-For, as the proxy would. The throttle's clock is the test's."""
    clock = Clock()

    def start(**limits):
        throttle = SignInThrottle(db, Limits(**limits), clock=clock)
        server = make_server(replace(settings, trusted_proxies=("127.0.0.1/32",)), throttle)
        return server, clock

    return start


def test_an_address_waits_longer_after_each_failure(proxied):
    server, clock = proxied(free_failures=2, max_delay=4)
    stranger = "198.51.100.7"
    for _ in range(2):  # the free failures
        assert _sign_in(server, "wrong password", stranger).status_code == 401
    for delay in (1, 2, 4, 4):  # doubling, then capped
        blocked = _sign_in(server, SEED_PASSWORD, stranger)
        assert blocked.status_code == 429
        assert int(blocked.headers["retry-after"]) == delay
        assert "try again" in blocked.json()["error"]
        clock.advance(delay - 0.5)
        assert _sign_in(server, SEED_PASSWORD, stranger).status_code == 429
        clock.advance(0.5)
        assert _sign_in(server, "wrong password", stranger).status_code == 401


def test_the_owner_signs_in_from_another_address_while_a_stranger_is_held(proxied):
    server, _clock = proxied(free_failures=1)
    for _ in range(3):
        _sign_in(server, "wrong password", "198.51.100.7")
    assert _sign_in(server, SEED_PASSWORD, "198.51.100.7").status_code == 429
    assert _sign_in(server, SEED_PASSWORD, "203.0.113.5").status_code == 200


def test_a_success_clears_the_address_failures(proxied):
    server, clock = proxied(free_failures=2)
    for _ in range(2):
        _sign_in(server, "typo typo", "203.0.113.5")
    assert _sign_in(server, SEED_PASSWORD, "203.0.113.5").status_code == 429
    clock.advance(1)
    assert _sign_in(server, SEED_PASSWORD, "203.0.113.5").status_code == 200
    assert _sign_in(server, "typo typo", "203.0.113.5").status_code == 401
    assert _sign_in(server, SEED_PASSWORD, "203.0.113.5").status_code == 200


def test_the_number_ceiling_holds_many_addresses_but_not_its_recent_owner(proxied):
    server, clock = proxied(ceiling=3)
    assert _sign_in(server, SEED_PASSWORD, "203.0.113.5").status_code == 200  # the owner
    for n in range(3):  # three addresses, one guess each: no address is held by itself
        assert _sign_in(server, "wrong password", f"198.51.100.{n}").status_code == 401
    held = _sign_in(server, SEED_PASSWORD, "192.0.2.44")
    assert held.status_code == 429
    assert 3500 < int(held.headers["retry-after"]) <= 3600
    # The owner's address signed in to this number recently: the ceiling does not apply.
    assert _sign_in(server, SEED_PASSWORD, "203.0.113.5").status_code == 200
    clock.advance(3600)  # the window ends
    assert _sign_in(server, SEED_PASSWORD, "192.0.2.44").status_code == 200


def test_the_address_ceiling_holds_a_spray_of_numbers(proxied):
    server, _clock = proxied(ceiling=3)
    for n in range(3):  # a different unknown number each time: only the address repeats
        _sign_in(server, "guess guess", "198.51.100.7", number=f"+81-50-9999-000{n}")
    assert _sign_in(server, SEED_PASSWORD, "198.51.100.7").status_code == 429
    assert _sign_in(server, SEED_PASSWORD, "203.0.113.5").status_code == 200


def test_x_forwarded_for_is_ignored_unless_the_proxy_is_trusted(
    make_server, settings, registry, db
):
    throttle = SignInThrottle(db, Limits(free_failures=2))
    server = make_server(settings, throttle)
    for n in range(2):  # each claims another address; all come from 127.0.0.1
        _sign_in(server, "wrong password", f"198.51.100.{n}")
    blocked = _sign_in(server, SEED_PASSWORD, "203.0.113.5")
    assert blocked.status_code == 429


def test_cors_is_off_unless_configured(server):
    preflight = server.http.options(
        PATH, headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    )
    assert "access-control-allow-origin" not in preflight.headers
    response = server.http.post(
        PATH,
        json={"twilioPhoneNumber": SEED_NUMBER, "password": SEED_PASSWORD},
        headers={"Origin": "https://evil.example"},
    )
    assert "access-control-allow-origin" not in response.headers


def test_cors_allows_only_the_configured_origins(make_server, settings, registry):
    server = make_server(replace(settings, cors_origins=("https://phone.example.com",)))
    preflight = server.http.options(
        PATH,
        headers={
            "Origin": "https://phone.example.com",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://phone.example.com"
    assert "POST" in preflight.headers["access-control-allow-methods"]
    other = server.http.options(
        PATH, headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    )
    assert other.status_code == 400
    assert "access-control-allow-origin" not in other.headers
    assert other.headers["content-type"] == "application/json"
    assert other.json() == {"success": False, "error": "Disallowed CORS origin"}


def test_database_unavailable_is_a_503_without_details(make_server, settings, unavailable_db):
    server = make_server(settings, database=unavailable_db)
    response = server.http.post(
        PATH, json={"twilioPhoneNumber": SEED_NUMBER, "password": SEED_PASSWORD}
    )
    assert response.status_code == 503
    assert response.json() == {
        "success": False,
        "capabilityToken": None,
        "error": "the service is temporarily unavailable; try again shortly",
    }


def test_trusted_proxies_are_addresses_or_networks():
    env = {**_required_env(), "DIALTONE_TRUSTED_PROXIES": "127.0.0.1, 10.0.0.0/8,::1,10.1.2.3/16"}
    assert Settings.from_env(env).trusted_proxies == (
        "127.0.0.1/32",
        "10.0.0.0/8",
        "::1/128",
        "10.1.0.0/16",
    )
    assert Settings.from_env(_required_env()).trusted_proxies == ()
    with pytest.raises(ConfigError, match=r"DIALTONE_TRUSTED_PROXIES.*'proxy\.example'"):
        Settings.from_env({**_required_env(), "DIALTONE_TRUSTED_PROXIES": "proxy.example"})


def _required_env():
    return {**development_values(), "DIALTONE_PUBLIC_URL": "https://api.example.com"}
