"""Fetching and running documents: "on a fetch or execution failure, Twilio immediately requests
the fallback URL" with ErrorCode and ErrorUrl; without one "a recorded message plays, and the
call ends". Error codes: 11200 (HTTP), 11205 (connect/timeout), 12100 (parse), 12102 (root),
12200 (schema warning), 12300 (Content-Type)."""

import pytest

from dialtone.emulator.twiml.session import APPLICATION_ERROR
from tests.emulator.conftest import make_emulator

GOOD = "<Response><Say>from the fallback</Say></Response>"


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        ((500, "text/plain", "boom"), 11200),
        ((404, "text/html", "<html/>"), 11200),
        ((200, "application/json", '{"a": 1}'), 12300),
        ((200, "text/xml", "<Response><Say>unclosed</Response>"), 12100),
        ((200, "text/xml", " text before <Response/>"), 12100),
        ((200, "application/xml", "<Document><Say>x</Say></Document>"), 12102),
    ],
)
def test_failures_go_to_the_fallback_with_error_code_and_url(emulator, hooks, answer, code):
    voice_url = hooks.on("/voice", answer)
    emulator.add_number(VoiceUrl=voice_url, VoiceFallbackUrl=hooks.on("/fallback", GOOD))
    call = emulator.call_in()
    (fallback,) = hooks.wait("/fallback")
    assert fallback.form["ErrorCode"] == str(code)
    assert fallback.form["ErrorUrl"] == voice_url
    assert fallback.form["CallSid"] == call["sid"]
    emulator.wait_status(call["sid"])
    (error,) = emulator.events(call["sid"], "error")
    assert error["code"] == code
    assert [a["text"] for a in emulator.events(call["sid"], "audio")] == ["from the fallback"]


def test_without_a_fallback_the_caller_hears_the_application_error(emulator, hooks):
    emulator.add_number(VoiceUrl=hooks.on("/voice", (500, "text/plain", "boom")))
    call = emulator.call_in()
    assert emulator.wait_status(call["sid"])["status"] == "completed"
    (audio,) = emulator.events(call["sid"], "audio")
    assert audio["text"] == APPLICATION_ERROR
    assert emulator.events(call["sid"], "application_error")


def test_a_failing_fallback_also_ends_in_the_application_error(emulator, hooks):
    emulator.add_number(
        VoiceUrl=hooks.on("/voice", (500, "text/plain", "")),
        VoiceFallbackUrl=hooks.on("/fallback", (503, "text/plain", "")),
    )
    call = emulator.call_in()
    emulator.wait_status(call["sid"])
    assert [e["code"] for e in emulator.events(call["sid"], "error")] == [11200, 11200]
    assert emulator.events(call["sid"], "audio")[0]["text"] == APPLICATION_ERROR


def test_a_slow_application_times_out_with_11205(hooks):
    for emulator in make_emulator(webhook_timeout=0.5):
        emulator.add_number(
            VoiceUrl=hooks.on("/voice", GOOD, delay=2.0),
            VoiceFallbackUrl=hooks.on("/fallback", GOOD),
        )
        call = emulator.call_in()
        (fallback,) = hooks.wait("/fallback")
        assert fallback.form["ErrorCode"] == "11205"
        emulator.wait_status(call["sid"])
        webhook = emulator.events(call["sid"], "webhook")[0]
        assert webhook["error_code"] == 11205 and webhook["status"] is None


def test_an_unreachable_application_is_11205(emulator):
    emulator.add_number(VoiceUrl="http://127.0.0.1:1/voice")
    call = emulator.call_in()
    emulator.wait_status(call["sid"])
    assert emulator.events(call["sid"], "error")[0]["code"] == 11205


def test_unknown_verbs_and_attributes_are_warnings_and_execution_continues(emulator, hooks):
    emulator.add_number(
        VoiceUrl=hooks.on(
            "/voice", '<Response><Dance/><Say colour="red">still here</Say></Response>'
        )
    )
    call = emulator.call_in()
    emulator.wait_status(call["sid"])
    warnings = emulator.events(call["sid"], "warning")
    assert [w["code"] for w in warnings] == [12200, 12200]
    assert "Dance" in warnings[0]["message"] and "colour" in warnings[1]["message"]
    assert [a["text"] for a in emulator.events(call["sid"], "audio")] == ["still here"]


def test_plain_text_that_is_not_twiml_is_read_aloud_then_the_call_ends(emulator, hooks):
    emulator.add_number(VoiceUrl=hooks.on("/voice", (200, "text/plain", "Hello from plain text")))
    call = emulator.call_in()
    emulator.wait_status(call["sid"])
    assert [a["text"] for a in emulator.events(call["sid"], "audio")] == ["Hello from plain text"]


def test_an_empty_response_ends_the_call(emulator, hooks):
    emulator.add_number(VoiceUrl=hooks.on("/voice", "<Response/>"))
    call = emulator.call_in()
    # Nothing answered it: the caller hung up on ringing.
    assert emulator.wait_status(call["sid"])["status"] == "no-answer"


def test_every_webhook_is_in_the_event_log(emulator, hooks):
    emulator.add_number(VoiceUrl=hooks.on("/voice", "<Response><Say>x</Say></Response>"))
    call = emulator.call_in()
    emulator.wait_status(call["sid"])
    (webhook,) = emulator.events(call["sid"], "webhook")
    assert webhook["url"] == hooks.url("/voice") and webhook["method"] == "POST"
    assert webhook["status"] == 200 and webhook["latency_ms"] >= 0
    assert webhook["parameters"]["CallSid"] == call["sid"]
    assert webhook["signature"] and "<Say>x</Say>" in webhook["response_body"]


def test_rest_update_redirects_a_live_call(emulator, hooks):
    twiml = '<Response><Say>hello</Say><Pause length="600"/></Response>'
    emulator.add_number(VoiceUrl=hooks.on("/voice", twiml))
    call = emulator.call_in()
    emulator.wait_event(call["sid"], "verb", verb="Pause")
    response = emulator.post(
        f"Calls/{call['sid']}.json", {"Twiml": "<Response><Say>redirected</Say></Response>"}
    )
    assert response.status_code == 200
    emulator.wait_status(call["sid"])
    assert emulator.events(call["sid"], "audio")[-1]["text"] == "redirected"


def test_a_ringing_call_cannot_be_redirected(emulator, hooks):
    # A leading <Pause> has not answered the call yet.
    emulator.add_number(VoiceUrl=hooks.on("/voice", '<Response><Pause length="600"/></Response>'))
    call = emulator.call_in()
    emulator.wait_event(call["sid"], "verb", verb="Pause")
    response = emulator.post(f"Calls/{call['sid']}.json", {"Url": hooks.url("/other")})
    assert response.status_code == 400
    assert response.json()["code"] == 21220
    emulator.hang_up(call["sid"])
    assert emulator.wait_status(call["sid"])["status"] == "canceled"
