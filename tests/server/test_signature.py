"""X-Twilio-Signature: the public test vector, and every way a request can fail it."""

from dataclasses import replace

import pytest

from dialtone.server.signature import WebhookValidator, public_request_url
from tests.conftest import EXTERNAL_NUMBER, SEED_NUMBER

INCOMING = "/twilio/retrieve_twiml/call_incoming"

# twilio-python tests/unit/test_request_validator.py
VECTOR_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
VECTOR_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+14158675309",
    "Digits": "1234",
    "From": "+14158675309",
    "To": "+18005551212",
}


def test_public_test_vector():
    validator = WebhookValidator("12345")
    assert validator.is_valid(VECTOR_URL, VECTOR_PARAMS, "RSOYDt4T1cUTdK1PDd93/VVr8B8=")
    # "validate() accepts … the URL with the default port (:443/:80) added"
    assert validator.is_valid(
        "https://mycompany.com:443/myapp.php?foo=1&bar=2",
        VECTOR_PARAMS,
        "RSOYDt4T1cUTdK1PDd93/VVr8B8=",
    )
    assert not validator.is_valid(VECTOR_URL, VECTOR_PARAMS, "RSOYDt4T1cUTdK1PDd93/VVr8B8X")
    assert not validator.is_valid(VECTOR_URL, VECTOR_PARAMS, None)
    assert not validator.is_valid(
        VECTOR_URL.replace("https", "http"), VECTOR_PARAMS, "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    )


def test_public_url_keeps_the_stage_prefix_and_raw_query():
    assert (
        public_request_url("https://x.example/prod", "/twilio/status_callback", "a=1&b=%20")
        == "https://x.example/prod/twilio/status_callback?a=1&b=%20"
    )


def _incoming_params():
    return {
        "AccountSid": "AC" + "3e" * 16,
        "ApiVersion": "2010-04-01",
        "CallSid": "CA" + "86" * 16,
        "CallStatus": "ringing",
        "Direction": "inbound",
        "From": EXTERNAL_NUMBER,
        "To": SEED_NUMBER,
        "Caller": EXTERNAL_NUMBER,
        "Called": SEED_NUMBER,
        "FromCity": "",
        "CalledCity": "",
    }


def test_a_correctly_signed_request_is_answered(server):
    response = server.webhook(INCOMING, _incoming_params())
    assert response.status_code == 200
    assert "<Client>" in response.text


@pytest.mark.parametrize(
    "tamper",
    [
        "forged",
        "missing",
        "altered_param",
        "added_param",
        "altered_url",
        "other_token",
        "blank_dropped",
    ],
)
def test_a_bad_signature_gets_403_and_no_twiml(server, tamper):
    params = _incoming_params()
    signature = server.sign(INCOMING, params)
    if tamper == "forged":
        signature = "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    elif tamper == "missing":
        signature = ""
    elif tamper == "altered_param":
        params["To"] = "+815031234568"
    elif tamper == "added_param":
        params["Extra"] = "1"
    elif tamper == "altered_url":
        signature = server.sign("/twilio/retrieve_twiml/call_outgoing", params)
    elif tamper == "other_token":
        from twilio.request_validator import RequestValidator

        signature = RequestValidator(server.settings.api_secret).compute_signature(
            server.settings.public_url + INCOMING, params
        )
    elif tamper == "blank_dropped":
        # Signed without the blank geo fields that Twilio does send and sign.
        signature = server.sign(INCOMING, {k: v for k, v in params.items() if v})
    response = server.webhook(INCOMING, params, signature=signature)
    assert response.status_code == 403
    assert "<Response" not in response.text
    assert "Signature" in response.text


def test_signature_over_the_url_the_app_sees_is_refused(server):
    # Twilio signs the public URL (with the /prod stage), never the internal one.
    from twilio.request_validator import RequestValidator

    params = _incoming_params()
    internal = RequestValidator(server.settings.auth_token).compute_signature(
        server.base_url + INCOMING, params
    )
    assert server.webhook(INCOMING, params, signature=internal).status_code == 403


@pytest.mark.parametrize(
    "public_url",
    [
        "https://abc123.execute-api.ap-northeast-1.amazonaws.com/prod",
        "https://api.example.com",
        "https://api.example.com:8443/v1/phone",
        "http://127.0.0.1:8000",
    ],
)
def test_public_url_with_or_without_a_path_prefix_validates(
    make_server, settings, registry, public_url
):
    server = make_server(replace(settings, public_url=public_url))
    assert server.webhook(INCOMING, _incoming_params()).status_code == 200


def test_query_string_is_part_of_the_signed_url(server):
    params = _incoming_params()
    assert server.webhook(INCOMING, params, query="line=1&x=%20y").status_code == 200
    signature = server.sign(INCOMING, params, query="line=1")
    assert server.webhook(INCOMING, params, query="line=2", signature=signature).status_code == 403


def test_get_webhooks_sign_the_url_with_its_query(server):
    from urllib.parse import urlencode

    query = urlencode(_incoming_params())
    signature = server.sign(INCOMING, {}, query=query)
    ok = server.http.get(f"{INCOMING}?{query}", headers={"X-Twilio-Signature": signature})
    assert ok.status_code == 200
    assert "<Client>DeviceId_0001</Client>" in ok.text
    bad = server.http.get(f"{INCOMING}?{query}&To=%2B1", headers={"X-Twilio-Signature": signature})
    assert bad.status_code == 403
