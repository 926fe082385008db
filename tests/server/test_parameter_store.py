"""Secrets from SSM Parameter Store (moto), read once per Lambda cold start, never logged."""

from __future__ import annotations

import importlib
import json
import logging
from urllib.parse import urlencode

import boto3
import pytest
from twilio.request_validator import RequestValidator

from dialtone import logs
from dialtone.server.config import ConfigError
from dialtone.server.db import Database
from dialtone.server.parameter_store import read_parameters
from dialtone.server.registry import LineRegistry
from tests.conftest import SEED_CLIENT, SEED_NUMBER, SEED_PASSWORD
from tests.lambda_events import DOMAIN, http_api_event

PATH = "/dialtone/prod"
AUTH_TOKEN = "f" * 32  # not the development value: only Parameter Store knows it
API_SECRET = "e" * 32
PLAIN = {
    "TWILIO_ACCOUNT_SID": "AC" + "3e" * 16,
    "TWILIO_API_KEY": "SK" + "5a" * 16,
    "TWILIO_TWIML_APP_SID": "AP" + "75" * 16,
    "DIALTONE_DEFAULT_REGION": "JP",
}
INCOMING = "/twilio/retrieve_twiml/call_incoming"
PARAMS = {"CallSid": "CA" + "1a" * 16, "From": "+819059876543", "To": SEED_NUMBER, "Called": ""}


@pytest.fixture
def ssm(mocked_aws, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    return boto3.client("ssm")


def _put(ssm, name: str, value: str, kind: str = "SecureString") -> None:
    ssm.put_parameter(Name=f"{PATH}/{name}", Value=value, Type=kind, Overwrite=True)


def _provision(ssm, db_url: str) -> None:
    _put(ssm, "TWILIO_AUTH_TOKEN", AUTH_TOKEN)
    _put(ssm, "TWILIO_API_SECRET", API_SECRET)
    _put(ssm, "DIALTONE_DATABASE_URL", db_url)
    for name, value in PLAIN.items():
        _put(ssm, name, value, "String")


def _cold_start(monkeypatch):
    """The function's environment holds no secret, only where to find them."""
    import os

    for name in [n for n in os.environ if n.startswith(("TWILIO_", "DIALTONE_"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("DIALTONE_SSM_PARAMETER_PATH", PATH)
    monkeypatch.setenv("DIALTONE_API_GATEWAY_BASE_PATH", "/prod")
    import dialtone.server.aws_lambda as module

    return importlib.reload(module)


@pytest.fixture
def log_lines(monkeypatch):
    """Every log line as the JSON formatter writes it."""
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(logs.JsonFormatter().format(record))

    keep = Keep()
    original = logs.configure

    def configure(level: str = "INFO") -> None:
        original(level)
        logging.getLogger().addHandler(keep)

    monkeypatch.setattr(logs, "configure", configure)
    yield lines
    logging.getLogger().removeHandler(keep)


def _incoming(handler):
    signature = RequestValidator(AUTH_TOKEN).compute_signature(
        f"https://{DOMAIN}/prod{INCOMING}", PARAMS
    )
    event = http_api_event(
        INCOMING, urlencode(PARAMS), b64=True, signature=signature, stage="/prod"
    )
    return handler(event, None)


def test_the_handler_takes_its_secrets_from_parameter_store_at_cold_start(
    ssm, db_url, monkeypatch, log_lines
):
    db = Database(db_url)
    db.upgrade()
    LineRegistry(db, "JP").add(SEED_NUMBER, SEED_CLIENT, SEED_PASSWORD)
    db.dispose()
    _provision(ssm, db_url)

    module = _cold_start(monkeypatch)
    # Read once: what Parameter Store says later does not matter to this instance.
    ssm.delete_parameters(Names=[f"{PATH}/TWILIO_AUTH_TOKEN", f"{PATH}/DIALTONE_DATABASE_URL"])

    result = _incoming(module.handler)
    assert result["statusCode"] == 200
    assert f"<Client>{SEED_CLIENT}</Client>" in result["body"]  # the database from SSM

    body = json.dumps({"twilioPhoneNumber": "050-3123-4567", "password": SEED_PASSWORD})
    token = module.handler(
        http_api_event(
            "/twilio/retrieve_capability_token",
            body,
            b64=False,
            stage="/prod",
            content_type="application/json",
        ),
        None,
    )
    assert token["statusCode"] == 200
    import jwt

    access = jwt.decode(json.loads(token["body"])["accessToken"], API_SECRET, ["HS256"])
    assert access["iss"] == PLAIN["TWILIO_API_KEY"]

    written = "\n".join(log_lines)
    assert '"lambda_parameters_read"' in written and "TWILIO_AUTH_TOKEN" in written
    for secret in (AUTH_TOKEN, API_SECRET, db_url, SEED_PASSWORD):
        assert secret not in written


def test_a_secret_stored_as_plain_string_is_refused_without_showing_it(
    ssm, db_url, monkeypatch, log_lines
):
    _provision(ssm, db_url)
    _put(ssm, "TWILIO_AUTH_TOKEN", AUTH_TOKEN, "String")
    with pytest.raises(ConfigError, match="TWILIO_AUTH_TOKEN is a String; store it as a Secure"):
        _cold_start(monkeypatch)
    written = "\n".join(log_lines)
    assert '"lambda_config_invalid"' in written
    assert AUTH_TOKEN not in written


def test_missing_and_unknown_parameters_are_named(ssm):
    _put(ssm, "TWILIO_AUTH_TOKEN", AUTH_TOKEN)
    _put(ssm, "TWILIO_AUTH_TOKN", AUTH_TOKEN)
    with pytest.raises(ConfigError) as refused:
        read_parameters(PATH)
    message = str(refused.value)
    assert f"{PATH}/TWILIO_AUTH_TOKN is not a dialtone setting" in message
    assert f"put-parameter --type SecureString --name {PATH}/TWILIO_API_SECRET" in message
    assert f"{PATH}/DIALTONE_DATABASE_URL is missing" in message
    assert AUTH_TOKEN not in message


def test_only_parameters_directly_under_the_path_are_read(ssm, db_url):
    _provision(ssm, db_url)
    ssm.put_parameter(Name=f"{PATH}-staging/TWILIO_AUTH_TOKEN", Value="x" * 32, Type="SecureString")
    ssm.put_parameter(Name=f"{PATH}/old/TWILIO_AUTH_TOKEN", Value="y" * 32, Type="SecureString")
    values = read_parameters(PATH + "/")
    assert values["TWILIO_AUTH_TOKEN"] == AUTH_TOKEN
    assert values["DIALTONE_DATABASE_URL"] == db_url
    assert set(values) == {"TWILIO_AUTH_TOKEN", "TWILIO_API_SECRET", "DIALTONE_DATABASE_URL"} | set(
        PLAIN
    )


def test_a_value_set_in_both_places_is_refused(ssm, db_url, monkeypatch):
    _provision(ssm, db_url)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", AUTH_TOKEN)
    monkeypatch.setenv("DIALTONE_SSM_PARAMETER_PATH", PATH)
    from dialtone.server.aws_lambda import lambda_environment

    with pytest.raises(ConfigError, match="both in the environment and in Parameter Store"):
        lambda_environment()
