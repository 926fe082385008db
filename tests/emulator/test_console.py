"""The dev console's emulator side: events as sentences, the TwiML answer pretty-printed, each
webhook as a curl command that really reproduces the signed request, a call's diagram."""

import ast
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from twilio.request_validator import RequestValidator

from dialtone.emulator import console
from tests.emulator.conftest import EXTERNAL_NUMBER, TWILIO_NUMBER

EMULATOR = Path(console.__file__).resolve().parent
CALLEE = "+819012345678"


def _emitted_kinds() -> set[str]:
    """Every event kind the emulator writes: `<x>.log("kind", …)` calls, and the one marker
    the call log writes itself."""
    kinds = set()
    for path in EMULATOR.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "log"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                kinds.add(node.args[0].value)
            if isinstance(node, ast.Dict):
                for key, value in zip(node.keys, node.values, strict=True):
                    if (
                        isinstance(key, ast.Constant)
                        and key.value == "kind"
                        and isinstance(value, ast.Constant)
                    ):
                        kinds.add(value.value)
    return kinds


def test_every_event_kind_the_emulator_emits_has_a_sentence():
    kinds = _emitted_kinds()
    # The scan finds what it should (a scan that finds nothing would pass anything).
    assert {"device_invited", "bridge", "dial_result", "webhook", "events_truncated"} <= kinds
    assert kinds - set(console.SENTENCES) == set()


def test_pretty_twiml_indents_without_the_xml_declaration_and_keeps_escapes():
    body = (
        '<?xml version="1.0" encoding="UTF-8"?><Response><!-- hi -->'
        '<Say language="ja-JP">Tom &amp; Jerry &lt;3</Say>'
        '<Dial answerOnBridge="true"><Client>DeviceId_0001</Client></Dial></Response>'
    )
    pretty = console.pretty_twiml(body)
    assert pretty == (
        "<Response>\n"
        "  <!-- hi -->\n"
        '  <Say language="ja-JP">Tom &amp; Jerry &lt;3</Say>\n'
        '  <Dial answerOnBridge="true">\n'
        "    <Client>DeviceId_0001</Client>\n"
        "  </Dial>\n"
        "</Response>"
    )
    assert ET.fromstring(pretty).find("Say").text == "Tom & Jerry <3"
    assert console.pretty_twiml("<Response><Say>cut") is None


@pytest.fixture
def dialled_call(emulator, hooks):
    """A phone calls our number; the application answers <Dial answerOnBridge> to a phone
    that picks up, says something and hangs up. Status callbacks go by GET, to a URL with
    characters a shell would mangle."""
    emulator.set_phone(CALLEE, answer_after=1, hangup_after=2)
    twiml = (
        '<?xml version="1.0" encoding="UTF-8"?><Response><Say>Connecting &amp; ringing</Say>'
        f'<Dial answerOnBridge="true" callerId="{TWILIO_NUMBER}"><Number>{CALLEE}</Number></Dial>'
        "</Response>"
    )
    emulator.add_number(
        VoiceUrl=hooks.on("/voice", twiml),
        StatusCallback=hooks.url("/status?who=O'Brien&cost=$5%20%22x%22"),
        StatusCallbackMethod="GET",
    )
    hooks.on("/status", "")
    call = emulator.call_in()
    emulator.wait_status(call["sid"])
    emulator.idle()
    return call


def test_a_dialled_call_as_a_diagram(emulator, dialled_call):
    data = emulator.http.get(f"/console/calls/{dialled_call['sid']}/diagram.json").json()
    assert data["call_sid"] == dialled_call["sid"] and data["status"] == "completed"
    texts = [s["text"] for s in data["steps"]]
    assert f"{EXTERNAL_NUMBER} calls {TWILIO_NUMBER}" in texts
    assert f"Bridged to {CALLEE}" in texts
    assert texts.count(f"Bridged to {CALLEE}") == 1  # told once, not once per leg
    assert any(t.startswith("Dial ended: completed after ") for t in texts)
    assert f"{CALLEE} hangs up" in texts
    assert "The call is answered" in texts and f"The leg to {CALLEE} is ringing" in texts
    # No raw names: every step is a sentence from the table.
    for step in data["steps"]:
        assert step["text"] and "_" not in step["text"].split(":")[0], step
        assert step["from"] in range(4) and step["to"] in (*range(4), None)
    (answer,) = [s for s in data["steps"] if s.get("twiml")]
    assert answer["twiml"].startswith("<Response>\n  <Say>Connecting &amp; ringing</Say>")
    assert "<?xml" not in answer["twiml"]
    assert f"    <Number>{CALLEE}</Number>\n" in answer["twiml"]
    assert data["lanes"][3]["parties"] == [EXTERNAL_NUMBER, CALLEE]
    # A leg's sid leads to the whole call.
    child = emulator.children(dialled_call["sid"])[0]["sid"]
    assert emulator.http.get(f"/console/calls/{child}/diagram.json").json() == data


def test_an_unknown_call_is_a_clear_404(emulator):
    response = emulator.http.get("/console/calls/CAnothere/diagram.json")
    assert response.status_code == 404 and "no such call" in response.json()["message"]


def test_each_webhook_copied_as_curl_reproduces_the_signed_request(emulator, hooks, dialled_call):
    """Run each command with the real curl; the application receives what Twilio sent and the
    signature validates, for a POST with a body and a GET to a URL full of shell characters."""
    data = emulator.http.get(f"/console/calls/{dialled_call['sid']}/diagram.json").json()
    webhooks = [s["webhook"] for s in data["steps"] if s.get("webhook")]
    methods = {w["method"] for w in webhooks}
    assert methods == {"GET", "POST"}
    validator = RequestValidator(emulator.credentials.auth_token)
    sent = {r.headers["x-twilio-signature"]: r for r in hooks.requests()}  # Twilio's own
    for webhook in webhooks:
        before = len(hooks.requests())
        run = subprocess.run(
            ["bash", "-c", webhook["curl"]], capture_output=True, text=True, timeout=30
        )
        assert run.returncode == 0, run.stderr
        replayed = hooks.requests()[before]
        original = sent[webhook["signature"]]
        assert (replayed.method, replayed.url, replayed.params) == (
            original.method,
            original.url,
            original.params,
        )
        for header in ("user-agent", "content-type", "x-twilio-signature"):
            assert replayed.headers.get(header) == original.headers.get(header), header
        signature = replayed.headers["x-twilio-signature"]
        params = {} if replayed.method == "GET" else replayed.form
        assert validator.validate(replayed.url, params, signature), webhook["curl"]
        assert not validator.validate(replayed.url, {**params, "x": "1"}, signature)
    assert any("O'Brien" in r.url for r in hooks.requests("/status"))


def test_the_console_follows_every_kind_on_the_event_stream(emulator):
    config = emulator.http.get("/console/config.json").json()
    assert set(config["event_kinds"]) == set(console.SENTENCES)
