"""The same app on AWS Lambda behind API Gateway (Mangum), fed the events API Gateway sends."""

import base64
import importlib
import json
from urllib.parse import urlencode

import pytest
from twilio.request_validator import RequestValidator

from dialtone.devcreds import development_values
from dialtone.server.db import Database
from dialtone.server.registry import LineRegistry
from tests.conftest import SEED_CLIENT, SEED_NUMBER, SEED_PASSWORD

DOMAIN = "abc123.execute-api.ap-northeast-1.amazonaws.com"
INCOMING = "/twilio/retrieve_twiml/call_incoming"
PARAMS = {
    "AccountSid": "AC" + "3e" * 16,
    "CallSid": "CA" + "1a" * 16,
    "CallStatus": "ringing",
    "Direction": "inbound",
    "From": "+819059876543",
    "To": SEED_NUMBER,
    "Called": SEED_NUMBER,
    "FromCity": "",
    "Caller": "+819059876543",
}


@pytest.fixture
def lambda_handler(db_url, monkeypatch, request):
    """Import the handler module as Lambda would, for a given public URL and base path."""
    stage = getattr(request, "param", "")
    Database(db_url).upgrade()
    LineRegistry(Database(db_url)).add(SEED_NUMBER, SEED_CLIENT, SEED_PASSWORD)
    for name, value in development_values().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DIALTONE_DATABASE_URL", db_url)
    monkeypatch.setenv("DIALTONE_PUBLIC_URL", f"https://{DOMAIN}{stage}")
    monkeypatch.setenv("DIALTONE_API_GATEWAY_BASE_PATH", stage or "/")
    import dialtone.server.aws_lambda as module

    return importlib.reload(module).handler


def _signature(url, params):
    return RequestValidator(development_values()["TWILIO_AUTH_TOKEN"]).compute_signature(
        url, params
    )


def _v2_event(path, body, *, b64, signature, stage=""):
    raw = base64.b64encode(body.encode()).decode() if b64 else body
    return {
        "version": "2.0",
        "routeKey": f"POST {path}",
        "rawPath": stage + path,
        "rawQueryString": "",
        "headers": {
            "host": DOMAIN,
            "content-type": "application/x-www-form-urlencoded; charset=UTF-8",
            "x-forwarded-proto": "https",
            "x-forwarded-port": "443",
            "user-agent": "TwilioProxy/1.1",
            "x-twilio-signature": signature,
        },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": DOMAIN,
            "domainPrefix": "abc123",
            "http": {
                "method": "POST",
                "path": stage + path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.10",
                "userAgent": "TwilioProxy/1.1",
            },
            "requestId": "id",
            "routeKey": f"POST {path}",
            "stage": stage.strip("/") or "$default",
            "time": "21/Nov/2026:00:00:00 +0000",
            "timeEpoch": 1795219200000,
        },
        "body": raw,
        "isBase64Encoded": b64,
    }


def _v1_event(path, body, *, b64, signature, stage="/prod"):
    headers = {
        "Host": DOMAIN,
        "Content-Type": "application/x-www-form-urlencoded; charset=UTF-8",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Port": "443",
        "X-Twilio-Signature": signature,
    }
    return {
        "resource": path,
        "path": path,
        "httpMethod": "POST",
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "stage": stage.strip("/"),
            "domainName": DOMAIN,
            "path": stage + path,
            "resourcePath": path,
            "httpMethod": "POST",
            "protocol": "HTTP/1.1",
            "requestId": "id",
            "identity": {"sourceIp": "203.0.113.10"},
        },
        "body": base64.b64encode(body.encode()).decode() if b64 else body,
        "isBase64Encoded": b64,
    }


def _assert_twiml(result):
    assert result["statusCode"] == 200
    headers = {k.lower(): v for k, v in result["headers"].items()}
    assert headers["content-type"].startswith("application/xml")
    assert result["isBase64Encoded"] is False
    assert result["body"].startswith("<?xml")
    assert f"<Client>{SEED_CLIENT}</Client>" in result["body"]


@pytest.mark.parametrize("b64", [True, False])
def test_http_api_default_stage(lambda_handler, b64):
    signature = _signature(f"https://{DOMAIN}{INCOMING}", PARAMS)
    _assert_twiml(
        lambda_handler(_v2_event(INCOMING, urlencode(PARAMS), b64=b64, signature=signature), None)
    )


@pytest.mark.parametrize("lambda_handler", ["/prod"], indirect=True)
@pytest.mark.parametrize("b64", [True, False])
def test_http_api_named_stage(lambda_handler, b64):
    signature = _signature(f"https://{DOMAIN}/prod{INCOMING}", PARAMS)
    event = _v2_event(INCOMING, urlencode(PARAMS), b64=b64, signature=signature, stage="/prod")
    _assert_twiml(lambda_handler(event, None))


@pytest.mark.parametrize("lambda_handler", ["/prod"], indirect=True)
@pytest.mark.parametrize("b64", [True, False])
def test_rest_api_stage_as_in_the_seeds(lambda_handler, b64):
    signature = _signature(f"https://{DOMAIN}/prod{INCOMING}", PARAMS)
    _assert_twiml(
        lambda_handler(_v1_event(INCOMING, urlencode(PARAMS), b64=b64, signature=signature), None)
    )


@pytest.mark.parametrize("lambda_handler", ["/prod"], indirect=True)
def test_a_signature_without_the_stage_is_refused(lambda_handler):
    signature = _signature(f"https://{DOMAIN}{INCOMING}", PARAMS)
    result = lambda_handler(
        _v1_event(INCOMING, urlencode(PARAMS), b64=False, signature=signature), None
    )
    assert result["statusCode"] == 403
    assert "<Response" not in result["body"]


def test_token_endpoint_through_lambda(lambda_handler):
    body = json.dumps({"twilioPhoneNumber": "+81-50-3123-4567", "password": SEED_PASSWORD})
    event = _v2_event("/twilio/retrieve_capability_token", body, b64=False, signature="")
    event["headers"]["content-type"] = "application/json"
    result = lambda_handler(event, None)
    assert result["statusCode"] == 200
    assert json.loads(result["body"])["identity"] == SEED_CLIENT
