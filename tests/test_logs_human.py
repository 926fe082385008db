"""The human formatter `dialtone dev` prints with (logs.py): one short sentence per event a
person follows, numbers as people write them, nothing for bookkeeping, secrets still hidden."""

import io
import logging
import re

import pytest

from dialtone import logs

CLOCK = r"\d\d:\d\d:\d\d  "


def _record(name, level=logging.INFO, **fields):
    record = logging.LogRecord("dialtone.test", level, "", 0, name, None, None)
    record.event, record.fields = name, fields
    return record


@pytest.fixture
def human():
    return logs.HumanFormatter("JP")


def test_a_call_reads_as_sentences_with_national_numbers(human):
    sid, child = "CA" + "1" * 32, "CA" + "2" * 32
    lines = [
        human.format(r)
        for r in (
            _record(
                "call_created",
                call_sid=sid,
                direction="inbound",
                to="+815031234567",
                **{"from": "+819059876543"},
            ),
            _record("webhook_call_incoming", call_sid=sid, outcome="dial_client"),
            _record("call_created", call_sid=child, parent_call_sid=sid, direction="outbound-dial"),
            _record(
                "call_ringing",
                call_sid=child,
                parent_call_sid=sid,
                to="client:DeviceId_0001",
                devices=1,
            ),
            _record(
                "call_answered", call_sid=child, parent_call_sid=sid, to="client:DeviceId_0001"
            ),
            _record("call_ended", call_sid=child, parent_call_sid=sid, status="completed"),
            _record("call_ended", call_sid=sid, status="completed", duration=12),
            _record("webhook_status_callback", call_sid=sid, outcome="recorded"),
            _record("webhook_dial_ended", call_sid=sid, outcome="recorded", dial_status="busy"),
        )
    ]
    shown = [line for line in lines if line]
    assert [re.sub(CLOCK, "", line, count=1) for line in shown] == [
        "call CA11111111 from 090-5987-6543 to 050-3123-4567",
        "call CA11111111 → ringing DeviceId_0001 (1 browser)",
        "call CA11111111 answered by DeviceId_0001",
        "call CA11111111 ended (completed, 12 s)",
    ]
    assert all(re.match(CLOCK, line) for line in shown)


def test_a_line_without_a_signed_in_phone_says_so_once(human):
    sid, child = "CA" + "1" * 32, "CA" + "2" * 32
    unavailable = human.format(
        _record(
            "client_unavailable",
            logging.WARNING,
            call_sid=child,
            parent_call_sid=sid,
            to="client:DeviceId_0001",
        )
    )
    assert "warning: call CA11111111: no phone is signed in as DeviceId_0001" in unavailable
    assert "sign in" in unavailable
    # Its leg's "no-answer" would only repeat it.
    assert (
        human.format(
            _record(
                "call_ended",
                call_sid=child,
                parent_call_sid=sid,
                status="no-answer",
                to="client:DeviceId_0001",
            )
        )
        == ""
    )
    refused = human.format(
        _record(
            "webhook_call_incoming",
            call_sid=sid,
            outcome="refused",
            reason="number not registered",
            to="+815031234599",
        )
    )
    assert "050-3123-4599 is not a registered line" in refused


def test_numbers_abroad_stay_international_and_identities_stay_themselves(human):
    assert human.number("+12025550100") == "+1 202-555-0100"
    assert human.number("+819059876543") == "090-5987-6543"
    assert human.number("client:DeviceId_0001") == "DeviceId_0001"
    assert human.number("phone.819059876543") == "090-5987-6543 (dev console)"
    assert human.number("not a number") == "not a number"
    assert logs.HumanFormatter().number("+819059876543") == "+81 90-5987-6543"


def test_other_events_show_their_fields_with_secrets_hidden(human):
    line = human.format(
        _record("webhook_failed", logging.ERROR, call_sid="CA1", error="Boom", auth_token="x")
    )
    assert re.fullmatch(
        CLOCK + "error: webhook failed  call_sid=CA1 error=Boom auth_token=\\[redacted\\]", line
    )


def test_libraries_info_lines_are_dropped_but_their_warnings_kept(human):
    info = logging.LogRecord("httpx", logging.INFO, "", 0, "HTTP Request: POST …", None, None)
    assert human.format(info) == ""
    warning = logging.LogRecord("aioice", logging.WARNING, "", 0, "lost %s", ("pair",), None)
    assert human.format(warning).endswith("warning: aioice: lost pair")


def test_configure_human_writes_lines_and_each_uvicorn_start_up_line_once(monkeypatch):
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        logs.configure(human=True, region="JP")
        uvicorn = logging.getLogger("uvicorn.error")
        for _server in range(3):
            uvicorn.info("Started server process [%d]", 42)
            uvicorn.warning("Application startup complete.")
        logging.getLogger("aioice.ice").info("Connection(0) Check CandidatePair … -> SUCCEEDED")
        logs.event(
            logging.getLogger("dialtone.server"),
            "token_issued",
            number="+815031234567",
            identity="DeviceId_0001",
            client="127.0.0.1",
            password="hunter22",
        )
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
    lines = stream.getvalue().splitlines()
    assert [re.sub(CLOCK, "", line) for line in lines] == [
        "warning: uvicorn.error: Application startup complete.",
        "050-3123-4567 signed in as DeviceId_0001 (from 127.0.0.1)",
    ]
    assert "hunter22" not in stream.getvalue()


def test_configure_json_still_writes_json_with_uvicorn_lines_once(monkeypatch):
    import json

    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        logs.configure()
        for _server in range(2):
            logging.getLogger("uvicorn.error").info("Application startup complete.")
        logging.getLogger("uvicorn.error").info("Uvicorn running on %s", "http://a")
        logging.getLogger("uvicorn.error").info("Uvicorn running on %s", "http://b")
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
    events = [json.loads(line)["event"] for line in stream.getvalue().splitlines()]
    assert events == [
        "Application startup complete.",
        "Uvicorn running on http://a",
        "Uvicorn running on http://b",
    ]


def test_a_dropped_browser_connection_reads_as_what_happens_to_the_call(human):
    held = human.format(
        _record("signal_call_held", call_sid="CA" + "3" * 32, identity="DeviceId_0001", hold=30)
    )
    assert held.endswith(
        "call CA33333333: DeviceId_0001's connection dropped; the call waits 30 s for it to "
        "come back"
    )
