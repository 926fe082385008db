"""The same app on AWS Lambda behind API Gateway (Mangum), fed the events API Gateway sends."""

import base64
import importlib
import json
from urllib.parse import urlencode

import pytest
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from dialtone.devcreds import development_values
from dialtone.server.db import Database
from dialtone.server.models import SignInAttempts
from dialtone.server.registry import LineRegistry
from tests.conftest import SEED_CLIENT, SEED_NUMBER, SEED_PASSWORD
from tests.lambda_events import DOMAIN, http_api_event, rest_api_event

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


def _load(monkeypatch, tmp_path, db_url, *, public_url, base_path):
    """Import the handler module as a Lambda cold start would, with this environment."""
    monkeypatch.chdir(tmp_path)  # no developer's .env
    for name, value in development_values().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DIALTONE_DATABASE_URL", db_url)
    if public_url is None:
        monkeypatch.delenv("DIALTONE_PUBLIC_URL", raising=False)
    else:
        monkeypatch.setenv("DIALTONE_PUBLIC_URL", public_url)
    monkeypatch.setenv("DIALTONE_API_GATEWAY_BASE_PATH", base_path)
    monkeypatch.delenv("DIALTONE_SSM_PARAMETER_PATH", raising=False)
    import dialtone.server.aws_lambda as module

    return importlib.reload(module)


@pytest.fixture
def registered(db_url):
    db = Database(db_url)
    db.upgrade()
    LineRegistry(db).add(SEED_NUMBER, SEED_CLIENT, SEED_PASSWORD)
    db.dispose()
    return db_url


@pytest.fixture
def lambda_handler(registered, monkeypatch, tmp_path, request):
    """The handler for a configured public URL with a given stage ("" or "/prod")."""
    stage = getattr(request, "param", "")
    return _load(
        monkeypatch,
        tmp_path,
        registered,
        public_url=f"https://{DOMAIN}{stage}",
        base_path=stage or "/",
    ).handler


@pytest.fixture
def context_handler(registered, monkeypatch, tmp_path):
    """The handler as deploy/aws/template.yaml runs it: no DIALTONE_PUBLIC_URL, stage prod."""
    return _load(monkeypatch, tmp_path, registered, public_url=None, base_path="/prod").handler


def _signature(url, params):
    return RequestValidator(development_values()["TWILIO_AUTH_TOKEN"]).compute_signature(
        url, params
    )


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
        lambda_handler(
            http_api_event(INCOMING, urlencode(PARAMS), b64=b64, signature=signature), None
        )
    )


@pytest.mark.parametrize("lambda_handler", ["/prod"], indirect=True)
@pytest.mark.parametrize("b64", [True, False])
def test_http_api_named_stage(lambda_handler, b64):
    signature = _signature(f"https://{DOMAIN}/prod{INCOMING}", PARAMS)
    event = http_api_event(INCOMING, urlencode(PARAMS), b64=b64, signature=signature, stage="/prod")
    _assert_twiml(lambda_handler(event, None))


@pytest.mark.parametrize("lambda_handler", ["/prod"], indirect=True)
@pytest.mark.parametrize("b64", [True, False])
def test_rest_api_stage_as_in_the_seeds(lambda_handler, b64):
    signature = _signature(f"https://{DOMAIN}/prod{INCOMING}", PARAMS)
    _assert_twiml(
        lambda_handler(
            rest_api_event(INCOMING, urlencode(PARAMS), b64=b64, signature=signature), None
        )
    )


@pytest.mark.parametrize("lambda_handler", ["/prod"], indirect=True)
def test_a_signature_without_the_stage_is_refused(lambda_handler):
    signature = _signature(f"https://{DOMAIN}{INCOMING}", PARAMS)
    result = lambda_handler(
        rest_api_event(INCOMING, urlencode(PARAMS), b64=False, signature=signature), None
    )
    assert result["statusCode"] == 403
    assert "<Response" not in result["body"]


def test_token_endpoint_through_lambda(lambda_handler):
    body = json.dumps({"twilioPhoneNumber": "+81-50-3123-4567", "password": SEED_PASSWORD})
    event = http_api_event("/twilio/retrieve_capability_token", body, b64=False, signature="")
    event["headers"]["content-type"] = "application/json"
    result = lambda_handler(event, None)
    assert result["statusCode"] == 200
    assert json.loads(result["body"])["identity"] == SEED_CLIENT


@pytest.mark.parametrize("b64", [True, False])
def test_without_a_public_url_the_request_context_gives_it(context_handler, b64):
    # API Gateway records the domain and stage it served; the signature covers both.
    signature = _signature(f"https://{DOMAIN}/prod{INCOMING}", PARAMS)
    body = urlencode(PARAMS)
    _assert_twiml(
        context_handler(
            http_api_event(INCOMING, body, b64=b64, signature=signature, stage="/prod"), None
        )
    )
    _assert_twiml(
        context_handler(rest_api_event(INCOMING, body, b64=b64, signature=signature), None)
    )


def test_a_host_header_cannot_choose_the_signed_url(context_handler):
    # A forger who captured a webhook signed for another URL of the same account must not
    # make us check against that URL by sending its host.
    other = "https://other.example.com/prod"
    signature = _signature(other + INCOMING, PARAMS)
    event = http_api_event(
        INCOMING,
        urlencode(PARAMS),
        b64=True,
        signature=signature,
        stage="/prod",
        host="other.example.com",
    )
    event["headers"]["x-forwarded-host"] = "other.example.com"
    assert context_handler(event, None)["statusCode"] == 403


def test_a_custom_domain_is_refused_until_the_public_url_is_configured(context_handler, caplog):
    # The event does not carry a custom domain's API mapping, so the URL Twilio used is
    # unknown: refuse (403) and say what to set, rather than guess.
    domain = "phone-api.example.com"
    signature = _signature(f"https://{domain}/prod{INCOMING}", PARAMS)
    event = http_api_event(
        INCOMING, urlencode(PARAMS), b64=True, signature=signature, stage="/prod", domain=domain
    )
    assert context_handler(event, None)["statusCode"] == 403
    (refusal,) = [r for r in caplog.records if r.getMessage() == "webhook_signature_invalid"]
    assert "set DIALTONE_PUBLIC_URL" in refusal.fields["reason"]


@pytest.mark.parametrize(
    ("context", "expected"),
    [
        ({"domainName": DOMAIN, "stage": "prod"}, f"https://{DOMAIN}/prod"),
        ({"domainName": DOMAIN, "stage": "$default"}, f"https://{DOMAIN}"),
        (
            {"domainName": "abc.lambda-url.us-east-1.on.aws", "stage": "$default"},
            "https://abc.lambda-url.us-east-1.on.aws",
        ),
        (
            {"domainName": "abc.execute-api.cn-north-1.amazonaws.com.cn", "stage": "v1"},
            "https://abc.execute-api.cn-north-1.amazonaws.com.cn/v1",
        ),
        ({"domainName": "api.example.com", "stage": "prod"}, None),
        ({"domainName": f"evil.com/{DOMAIN}", "stage": "prod"}, None),
        ({}, None),
    ],
)
def test_request_context_base_url(context, expected):
    from dialtone.server.aws_lambda import request_context_base_url

    assert request_context_base_url({"requestContext": context}) == expected


def _head_revision() -> str:
    from alembic.script import ScriptDirectory

    from dialtone.server.db import alembic_config

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def test_the_migrate_handler_brings_a_new_database_to_the_newest_schema(
    db_url, monkeypatch, tmp_path
):
    from sqlalchemy import inspect

    module = _load(monkeypatch, tmp_path, db_url, public_url=None, base_path="/prod")
    result = module.migrate({}, None)
    assert result["status"] == "ok"
    assert result["revision"] == _head_revision()
    db = Database(db_url)
    assert {"lines", "calls", "call_events", "sign_in_attempts"} <= set(
        inspect(db.engine).get_table_names()
    )
    db.dispose()
    assert module.migrate({}, None) == result  # idempotent


TOKEN = "/twilio/retrieve_capability_token"


def _token_event(kind, body, *, b64=False):
    if kind == "http":
        event = http_api_event(TOKEN, body, b64=b64, content_type="application/json")
    else:
        event = rest_api_event(TOKEN, body, b64=b64, content_type="application/json")
    return event


@pytest.mark.parametrize("b64", [True, False])
def test_a_body_past_every_limit_is_refused_without_being_decoded(lambda_handler, monkeypatch, b64):
    decoded = []
    real = base64.b64decode
    monkeypatch.setattr(base64, "b64decode", lambda s, *a, **k: decoded.append(len(s)) or real(s))
    event = http_api_event(INCOMING, "x" * (1024 * 1024), b64=b64, signature="forged")
    result = lambda_handler(event, None)
    assert result["statusCode"] == 413
    assert decoded == []


@pytest.mark.parametrize("b64", [True, False])
@pytest.mark.parametrize("kind", ["http", "rest"])
def test_a_sign_in_past_its_limit_is_refused(lambda_handler, kind, b64):
    body = json.dumps({"twilioPhoneNumber": SEED_NUMBER, "password": SEED_PASSWORD})
    at_limit = _token_event(kind, body.ljust(16 * 1024), b64=b64)
    assert lambda_handler(at_limit, None)["statusCode"] == 200
    past = _token_event(kind, body.ljust(16 * 1024 + 1), b64=b64)
    result = lambda_handler(past, None)
    assert result["statusCode"] == 413
    assert "too large" in json.loads(result["body"])["error"]


@pytest.mark.parametrize("kind", ["http", "rest"])
def test_the_throttle_counts_api_gateways_source_ip_not_x_forwarded_for(
    lambda_handler, registered, kind
):
    body = json.dumps({"twilioPhoneNumber": SEED_NUMBER, "password": "wrong password"})
    event = _token_event(kind, body)
    for name in ("headers", "multiValueHeaders"):
        if name in event:  # anyone can send this header; API Gateway's sourceIp it sets itself
            spoofed = "192.0.2.99"
            event[name]["X-Forwarded-For"] = [spoofed] if name == "multiValueHeaders" else spoofed
    assert lambda_handler(event, None)["statusCode"] == 401
    db = Database(registered)
    with db.session() as session:
        addresses = set(session.scalars(select(SignInAttempts.client_address)))
    db.dispose()
    assert addresses == {"203.0.113.10", "*"}


# A fresh interpreter: the Lambda handler imported and one signed incoming call answered.
COLD_START = """
import json, sys
from dialtone.server import aws_lambda
result = aws_lambda.handler(json.loads(sys.stdin.read()), None)
assert "<Client>" in result["body"], result
heavy = ("sqlalchemy", "jwt", "alembic", "argon2", "uvicorn", "twilio.rest", "dotenv")
print(json.dumps(sorted(name for name in heavy if name in sys.modules)))
"""


def test_a_cold_start_answering_a_webhook_imports_only_what_it_needs(registered, tmp_path):
    """SQLAlchemy, JWT, Alembic, Argon2 and uvicorn are for other requests (or none on
    Lambda): importing them would lengthen every cold start (issue 11, P2)."""
    import os
    import subprocess
    import sys

    url = f"https://{DOMAIN}{INCOMING}"
    event = http_api_event(
        INCOMING, urlencode(PARAMS), b64=False, signature=_signature(url, PARAMS)
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "DIALTONE_"))}
    env.update(development_values(), DIALTONE_DATABASE_URL=registered)
    env["DIALTONE_PUBLIC_URL"] = f"https://{DOMAIN}"
    result = subprocess.run(
        [sys.executable, "-c", COLD_START],
        input=json.dumps(event),
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,  # no developer's .env
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout) == []


def test_the_token_routes_limit_is_the_token_apis():
    from dialtone.server import app, token_api

    assert app.TOKEN_MAX_BODY == token_api.MAX_BODY
