"""Status callbacks: "Events are selected with StatusCallbackEvent: initiated, ringing, answered,
completed. The default is completed only"; SequenceNumber counts from 0; CallDuration on
completed; answered arrives with CallStatus=in-progress."""

from tests.emulator.conftest import TWILIO_NUMBER

ALL = ["initiated", "ringing", "answered", "completed"]


def _by_sequence(requests):
    return sorted(requests, key=lambda r: int(r.form["SequenceNumber"]))


def test_every_event_of_an_answered_call(emulator, hooks):
    emulator.add_number()
    emulator.set_phone("+819059876543", answer_after=2)
    hooks.on("/status", (204, "", ""))
    call = emulator.call_out(
        Twiml='<Response><Pause length="3"/></Response>',
        StatusCallback=hooks.url("/status"),
        StatusCallbackEvent=ALL,
    )
    callbacks = _by_sequence(hooks.wait("/status", 4))
    assert [c.form["CallStatus"] for c in callbacks] == [
        "initiated",
        "ringing",
        "in-progress",
        "completed",
    ]
    assert [c.form["SequenceNumber"] for c in callbacks] == ["0", "1", "2", "3"]
    for callback in callbacks:
        assert callback.form["CallSid"] == call["sid"]
        assert callback.form["CallbackSource"] == "call-progress-events"
        assert callback.form["Timestamp"].endswith("+0000")
        assert callback.form["Direction"] == "outbound-api"
    completed = callbacks[-1].form
    assert completed["CallDuration"] == "3" and completed["Duration"] == "1"
    assert "CallDuration" not in callbacks[2].form


def test_the_default_is_completed_only(emulator, hooks):
    emulator.add_number()
    hooks.on("/status", (204, "", ""))
    emulator.call_out(
        Twiml="<Response><Say>hi</Say></Response>", StatusCallback=hooks.url("/status")
    )
    emulator.idle()
    assert [c.form["CallStatus"] for c in hooks.requests("/status")] == ["completed"]


def test_final_statuses_are_reported_as_completed_events(emulator, hooks):
    emulator.add_number()
    emulator.set_phone("+819059876543", mode="busy")
    hooks.on("/status", (204, "", ""))
    call = emulator.call_out(Twiml="<Response/>", StatusCallback=hooks.url("/status"))
    (callback,) = hooks.wait("/status")
    assert callback.form["CallStatus"] == "busy"
    assert callback.form["CallDuration"] == "0"
    assert emulator.wait_status(call["sid"])["status"] == "busy"


def test_rest_cancel_of_a_ringing_call(emulator, hooks):
    emulator.add_number()
    emulator.set_phone("+819059876543", mode="no-answer")
    hooks.on("/status", (204, "", ""))
    call = emulator.call_out(Twiml="<Response/>", StatusCallback=hooks.url("/status"))
    emulator.wait_status(call["sid"], ("ringing",))
    assert emulator.post(f"Calls/{call['sid']}.json", {"Status": "canceled"}).status_code == 200
    assert emulator.wait_status(call["sid"])["status"] == "canceled"
    (callback,) = hooks.wait("/status")
    assert callback.form["CallStatus"] == "canceled"


def test_rest_completed_hangs_up_a_live_call(emulator, hooks):
    emulator.add_number()
    emulator.set_phone("+819059876543", answer_after=1)
    call = emulator.call_out(Twiml='<Response><Pause length="600"/></Response>')
    emulator.wait_status(call["sid"], ("in-progress",))
    emulator.post(f"Calls/{call['sid']}.json", {"Status": "completed"})
    assert emulator.wait_status(call["sid"])["status"] == "completed"


def test_a_failing_status_callback_is_only_a_warning(emulator, hooks):
    emulator.add_number(
        TWILIO_NUMBER,
        StatusCallback=hooks.on("/status", (500, "text/plain", "")),
        VoiceUrl=hooks.on("/voice", "<Response><Say>x</Say></Response>"),
    )
    call = emulator.call_in()
    assert emulator.wait_status(call["sid"])["status"] == "completed"
    emulator.idle()
    assert [w["code"] for w in emulator.events(call["sid"], "warning")] == [15003]


def test_no_answer_after_the_rest_timeout(emulator, hooks):
    emulator.add_number()
    emulator.set_phone("+819059876543", mode="no-answer")
    call = emulator.call_out(Twiml="<Response/>", Timeout="10")
    done = emulator.wait_status(call["sid"])
    assert done["status"] == "no-answer"
    states = {e["status"]: e["at"] for e in emulator.events(call["sid"], "state")}
    assert 10 <= states["no-answer"] - states["ringing"] < 12
