import json
import logging

from dialtone import logs


def _formatted(record_logger, caplog, **fields):
    caplog.set_level(logging.INFO)
    logs.event(record_logger, "token_issued", **fields)
    return json.loads(logs.JsonFormatter().format(caplog.records[-1]))


def test_an_event_is_one_json_line_with_its_fields(caplog):
    entry = _formatted(logging.getLogger("t"), caplog, number="+815031234567", ttl=3600)
    assert entry["event"] == "token_issued"
    assert entry["number"] == "+815031234567"
    assert entry["ttl"] == 3600
    assert entry["level"] == "info"
    assert "\n" not in logs.JsonFormatter().format(caplog.records[-1])


def test_fields_named_like_secrets_are_redacted(caplog):
    entry = _formatted(
        logging.getLogger("t"),
        caplog,
        password="hunter22",
        access_token="eyJ",
        auth_token="x",
        signature="abc=",
        identity="DeviceId_0001",
    )
    for key in ("password", "access_token", "auth_token", "signature"):
        assert entry[key] == "[redacted]"
    assert entry["identity"] == "DeviceId_0001"


def test_exceptions_are_logged_by_type_without_a_traceback(caplog):
    logger = logging.getLogger("t")
    try:
        raise RuntimeError("secret detail in message")
    except RuntimeError:
        logger.exception("boom")
    line = logs.JsonFormatter().format(caplog.records[-1])
    assert json.loads(line)["exception"] == "RuntimeError"
    assert "Traceback" not in line
