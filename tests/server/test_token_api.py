"""POST /twilio/retrieve_capability_token over real HTTP on loopback."""

from dataclasses import replace
from urllib.parse import parse_qs

import jwt
import pytest

from dialtone.server.throttle import FailureThrottle
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
    ],
)
def test_malformed_requests_get_400_with_a_message(server, body, needle):
    response = server.http.post(PATH, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["success"] is False
    assert needle in response.json()["error"]


def test_seed_request_without_a_password_is_refused(server):
    # The seed authenticated by number alone; a number is not a secret.
    response = server.http.post(PATH, json={"twilioPhoneNumber": "+81-50-3123-4567"})
    assert response.status_code == 400
    assert "password" in response.json()["error"]


def test_repeated_failures_are_throttled_per_number(make_server, settings, registry):
    server = make_server(settings, FailureThrottle(limit=3, window=60))
    for _ in range(3):
        assert (
            server.http.post(
                PATH, json={"twilioPhoneNumber": SEED_NUMBER, "password": "wrong password"}
            ).status_code
            == 401
        )
    blocked = server.http.post(
        PATH, json={"twilioPhoneNumber": SEED_NUMBER, "password": SEED_PASSWORD}
    )
    assert blocked.status_code == 429
    assert 0 < int(blocked.headers["retry-after"]) <= 60
    assert "try again" in blocked.json()["error"]


def test_repeated_failures_are_throttled_per_client_address(make_server, settings, registry):
    server = make_server(settings, FailureThrottle(limit=3, window=60))
    for n in range(3):  # a different unknown number each time: only the address repeats
        server.http.post(
            PATH, json={"twilioPhoneNumber": f"+81-50-9999-000{n}", "password": "guess guess"}
        )
    response = server.http.post(
        PATH, json={"twilioPhoneNumber": SEED_NUMBER, "password": SEED_PASSWORD}
    )
    assert response.status_code == 429
    assert int(response.headers["retry-after"]) > 0


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
