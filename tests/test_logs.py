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


def test_timestamps_are_utc_to_the_millisecond_across_seconds():
    formatter = logs.JsonFormatter()  # it reuses the formatted second while it lasts
    stamps = []
    for created in (86399.5, 86399.875, 86400.0, 86400.25, 0.125):
        record = logging.LogRecord("t", logging.INFO, "", 0, "x", None, None)
        record.created, record.msecs = created, (created - int(created)) * 1000
        stamps.append(json.loads(formatter.format(record))["ts"])
    assert stamps == [
        "1970-01-01T23:59:59.500Z",
        "1970-01-01T23:59:59.875Z",
        "1970-01-02T00:00:00.000Z",
        "1970-01-02T00:00:00.250Z",
        "1970-01-01T00:00:00.125Z",
    ]
