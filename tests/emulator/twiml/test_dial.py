"""<Dial>: "action (none), method (POST), timeout (30), timeLimit (14400), callerId (the
caller's), answerOnBridge (false), hangupOnStar (false)"; up to 10 nouns "ring in parallel. The
first to answer wins and the others are cancelled"; `action` gets DialCallStatus, DialCallSid,
DialCallDuration; "Without action: if the caller is still connected, the next verb runs"."""

import time

import pytest

from tests.emulator.conftest import EXTERNAL_NUMBER, TWILIO_NUMBER

OTHER = "+819011112222"


def _dial(hooks, inner, attributes='action="/dialed"', after=""):
    return hooks.on("/voice", f"<Response><Dial {attributes}>{inner}</Dial>{after}</Response>")


@pytest.fixture
def dialed(hooks):
    hooks.on("/dialed", "<Response><Say>after the dial</Say></Response>")
    return hooks


def test_answered_then_callee_hangs_up_is_completed(emulator, dialed):
    emulator.set_phone(OTHER, answer_after=2, hangup_after=5)
    emulator.add_number(VoiceUrl=_dial(dialed, f"<Number>{OTHER}</Number>"))
    call = emulator.call_in()
    (action,) = dialed.wait("/dialed")
    form = action.form
    assert form["DialCallStatus"] == "completed"
    assert form["DialCallDuration"] == "5"
    assert form["CallSid"] == call["sid"]
    (child,) = emulator.children(call["sid"])
    assert form["DialCallSid"] == child["sid"]
    assert child["direction"] == "outbound-dial"
    assert child["parent_call_sid"] == call["sid"]
    assert child["from"] == EXTERNAL_NUMBER  # default callerId: the caller's number
    assert child["to"] == OTHER
    assert child["status"] == "completed" and child["duration"] == "5"
    assert emulator.wait_status(call["sid"])["status"] == "completed"


@pytest.mark.parametrize(
    ("behaviour", "status"),
    [
        ({"mode": "busy"}, "busy"),
        ({"mode": "no-answer"}, "no-answer"),
        ({"mode": "fail"}, "failed"),
        ({"mode": "reject"}, "busy"),
        ({"answer_after": 45}, "no-answer"),  # rings past the 30 s default timeout
    ],
)
def test_unanswered_outcomes(emulator, dialed, behaviour, status):
    emulator.set_phone(OTHER, **behaviour)
    emulator.add_number(VoiceUrl=_dial(dialed, f"<Number>{OTHER}</Number>"))
    call = emulator.call_in()
    (action,) = dialed.wait("/dialed")
    assert action.form["DialCallStatus"] == status
    (child,) = emulator.children(call["sid"])
    assert child["status"] == status
    assert action.form["DialCallSid"] == child["sid"]


def test_timeout_bounds_the_ringing(emulator, dialed):
    emulator.set_phone(OTHER, mode="no-answer")
    emulator.add_number(
        VoiceUrl=_dial(dialed, f"<Number>{OTHER}</Number>", 'action="/dialed" timeout="7"')
    )
    call = emulator.call_in()
    dialed.wait("/dialed")
    (child_sid,) = [c["sid"] for c in emulator.children(call["sid"])]
    states = {e["status"]: e["at"] for e in emulator.events(child_sid, "state")}
    assert 7 <= states["no-answer"] - states["ringing"] < 9


def test_an_invalid_number_fails(emulator, dialed):
    emulator.add_number(VoiceUrl=_dial(dialed, "<Number>+81 10 0000 0000</Number>"))
    emulator.call_in()
    (action,) = dialed.wait("/dialed")
    assert action.form["DialCallStatus"] == "failed"


def test_without_action_the_next_verb_runs(emulator, hooks):
    emulator.set_phone(OTHER, mode="busy")
    emulator.add_number(VoiceUrl=_dial(hooks, OTHER, attributes="", after="<Say>Goodbye</Say>"))
    call = emulator.call_in()
    emulator.wait_status(call["sid"])
    assert [a["text"] for a in emulator.events(call["sid"], "audio")] == ["Goodbye"]
    result = emulator.events(call["sid"], "dial_result")[0]
    assert result["DialCallStatus"] == "busy"


def test_with_action_later_verbs_are_unreachable(emulator, dialed):
    emulator.set_phone(OTHER, mode="busy")
    emulator.add_number(VoiceUrl=_dial(dialed, OTHER, after="<Say>unreachable</Say>"))
    call = emulator.call_in()
    emulator.wait_status(call["sid"])
    assert [a["text"] for a in emulator.events(call["sid"], "audio")] == ["after the dial"]


def test_first_to_answer_wins_and_the_others_are_canceled(emulator, dialed):
    numbers = ["+819011110001", "+819011110002", "+819011110003"]
    emulator.set_phone(numbers[0], answer_after=6, hangup_after=1)
    emulator.set_phone(numbers[1], answer_after=2, hangup_after=1)
    emulator.set_phone(numbers[2], mode="no-answer")
    emulator.add_number(VoiceUrl=_dial(dialed, "".join(f"<Number>{n}</Number>" for n in numbers)))
    call = emulator.call_in()
    (action,) = dialed.wait("/dialed")
    children = {c["to"]: c for c in emulator.children(call["sid"])}
    assert action.form["DialCallSid"] == children[numbers[1]]["sid"]
    assert children[numbers[1]]["status"] == "completed"
    assert children[numbers[0]]["status"] == "canceled"
    assert children[numbers[2]]["status"] == "canceled"


def test_at_most_ten_nouns_ring(emulator, dialed):
    numbers = [f"+8190111100{i:02d}" for i in range(12)]
    for number in numbers:
        emulator.set_phone(number, mode="busy")
    emulator.add_number(VoiceUrl=_dial(dialed, "".join(f"<Number>{n}</Number>" for n in numbers)))
    call = emulator.call_in()
    (action,) = dialed.wait("/dialed")
    assert action.form["DialCallStatus"] == "busy"
    assert len(emulator.children(call["sid"])) == 10


def test_caller_hangs_up_while_ringing_cancels_and_still_requests_the_action(emulator, dialed):
    emulator.set_phone(OTHER, mode="no-answer")
    emulator.add_number(VoiceUrl=_dial(dialed, f"<Number>{OTHER}</Number>"))
    call = emulator.call_in()
    emulator.wait_event(call["sid"], "verb", verb="Dial")
    time.sleep(0.1)
    emulator.hang_up(call["sid"])
    (action,) = dialed.wait("/dialed")
    assert action.form["DialCallStatus"] == "canceled"
    assert emulator.wait_status(call["sid"])["status"] == "completed"
    (child,) = emulator.children(call["sid"])
    assert child["status"] == "canceled"
    emulator.idle()
    assert emulator.events(call["sid"], "audio") == []  # the action's TwiML is not run


def test_the_canceled_action_carries_the_calls_own_parameters(emulator, dialed):
    # An action request is a voice request: CallSid, From, To, Direction, CallStatus too
    # (reference §2.1, §2.5), also when the caller hung up and its answer is not run.
    emulator.set_phone(OTHER, mode="no-answer")
    emulator.add_number(VoiceUrl=_dial(dialed, f"<Number>{OTHER}</Number>"))
    call = emulator.call_in()
    emulator.wait_event(call["sid"], "verb", verb="Dial")
    time.sleep(0.1)
    emulator.hang_up(call["sid"])
    (action,) = dialed.wait("/dialed")
    form = action.form
    assert form["DialCallStatus"] == "canceled"
    assert (form["CallSid"], form["From"], form["To"]) == (
        call["sid"],
        EXTERNAL_NUMBER,
        TWILIO_NUMBER,
    )
    assert form["Direction"] == "inbound"
    assert form["CallStatus"] == "completed"  # answered by the <Dial>, then hung up


@pytest.mark.parametrize(
    ("behaviour", "status"),
    [
        ({"mode": "busy"}, "busy"),
        ({"mode": "reject"}, "busy"),
        ({"mode": "no-answer"}, "no-answer"),
    ],
)
def test_answer_on_bridge_reports_how_the_callee_did_not_answer(
    emulator, dialed, behaviour, status
):
    # The caller was never answered, yet DialCallStatus says busy, not no-answer.
    emulator.set_phone(OTHER, **behaviour)
    emulator.add_number(
        VoiceUrl=_dial(
            dialed, f"<Number>{OTHER}</Number>", 'action="/dialed" answerOnBridge="true"'
        )
    )
    call = emulator.call_in()
    (action,) = dialed.wait("/dialed")
    assert action.form["DialCallStatus"] == status
    assert action.form["CallSid"] == call["sid"]


def test_a_relative_action_resolves_against_the_document_url(emulator, hooks):
    # "Relative URLs resolve against the current document URL" (reference §7): the server's
    # action="dial_ended" next to …/retrieve_twiml/call_incoming.
    hooks.on("/twiml/dial_ended", "<Response/>")
    emulator.set_phone(OTHER, mode="busy")
    emulator.add_number(
        VoiceUrl=hooks.on(
            "/twiml/incoming",
            f'<Response><Dial action="dial_ended"><Number>{OTHER}</Number></Dial></Response>',
        )
    )
    call = emulator.call_in()
    (action,) = hooks.wait("/twiml/dial_ended")
    assert action.method == "POST"
    assert action.form["DialCallStatus"] == "busy"
    assert emulator.wait_status(call["sid"])["status"] == "completed"


def test_caller_hangs_up_while_bridged(emulator, dialed):
    emulator.set_phone(OTHER, answer_after=1)
    emulator.add_number(VoiceUrl=_dial(dialed, f"<Number>{OTHER}</Number>"))
    call = emulator.call_in()
    emulator.wait_event(call["sid"], "bridge")
    emulator.hang_up(call["sid"])
    (action,) = dialed.wait("/dialed")
    assert action.form["DialCallStatus"] == "completed"
    (child,) = emulator.children(call["sid"])
    assert emulator.wait_status(child["sid"])["status"] == "completed"


def test_time_limit_ends_the_bridge(emulator, dialed):
    emulator.set_phone(OTHER, answer_after=1)
    emulator.add_number(
        VoiceUrl=_dial(dialed, f"<Number>{OTHER}</Number>", 'action="/dialed" timeLimit="4"')
    )
    emulator.call_in()
    (action,) = dialed.wait("/dialed")
    assert action.form["DialCallStatus"] == "completed"
    assert action.form["DialCallDuration"] == "4"


def test_hangup_on_star_ends_the_bridge(emulator, dialed):
    emulator.set_phone(OTHER, answer_after=1)
    emulator.add_number(
        VoiceUrl=_dial(dialed, f"<Number>{OTHER}</Number>", 'action="/dialed" hangupOnStar="true"')
    )
    call = emulator.call_in()
    emulator.wait_event(call["sid"], "bridge")
    emulator.press(call["sid"], "1*")
    (action,) = dialed.wait("/dialed")
    assert action.form["DialCallStatus"] == "completed"
    emulator.wait_event(call["sid"], "hangup_on_star")


def test_answer_on_bridge_keeps_the_caller_ringing(emulator, dialed):
    emulator.set_phone(OTHER, answer_after=5, hangup_after=1)
    emulator.add_number(
        VoiceUrl=_dial(
            dialed, f"<Number>{OTHER}</Number>", 'action="/dialed" answerOnBridge="true"'
        )
    )
    call = emulator.call_in()
    dialed.wait("/dialed")
    (child,) = emulator.children(call["sid"])
    parent_answer = emulator.wait_event(call["sid"], "state", status="in-progress")
    child_answer = emulator.wait_event(child["sid"], "state", status="in-progress")
    assert parent_answer["at"] >= child_answer["at"]


def test_without_answer_on_bridge_the_caller_is_answered_at_once(emulator, dialed):
    emulator.set_phone(OTHER, answer_after=5, hangup_after=1)
    emulator.add_number(VoiceUrl=_dial(dialed, f"<Number>{OTHER}</Number>"))
    call = emulator.call_in()
    dialed.wait("/dialed")
    (child,) = emulator.children(call["sid"])
    parent_answer = emulator.wait_event(call["sid"], "state", status="in-progress")
    child_answer = emulator.wait_event(child["sid"], "state", status="in-progress")
    assert child_answer["at"] - parent_answer["at"] >= 4


def test_caller_id_and_send_digits_and_whisper(emulator, dialed):
    emulator.set_phone(OTHER, answer_after=1, hangup_after=3)
    dialed.on("/whisper", "<Response><Say>You have a call</Say></Response>")
    emulator.add_number(
        VoiceUrl=_dial(
            dialed,
            f'<Number sendDigits="12" url="/whisper">{OTHER}</Number>',
            f'action="/dialed" callerId="{TWILIO_NUMBER}"',
        )
    )
    call = emulator.call_in()
    dialed.wait("/dialed")
    (child,) = emulator.children(call["sid"])
    assert child["from"] == TWILIO_NUMBER
    assert "".join(e["digit"] for e in emulator.events(child["sid"], "dtmf_sent")) == "12"
    (whisper,) = dialed.wait("/whisper")
    assert whisper.form["CallSid"] == child["sid"]
    assert whisper.form["ParentCallSid"] == call["sid"]
    assert whisper.form["Direction"] == "outbound-dial"


def test_number_status_callbacks(emulator, dialed):
    emulator.set_phone(OTHER, answer_after=1, hangup_after=1)
    dialed.on("/child-status", (204, "", ""))
    emulator.add_number(
        VoiceUrl=_dial(
            dialed,
            f'<Number statusCallback="/child-status" statusCallbackEvent="initiated ringing answered completed">{OTHER}</Number>',
        )
    )
    call = emulator.call_in()
    callbacks = dialed.wait("/child-status", 4)
    assert [
        c.form["CallStatus"] for c in sorted(callbacks, key=lambda c: int(c.form["SequenceNumber"]))
    ] == [
        "initiated",
        "ringing",
        "in-progress",
        "completed",
    ]
    assert {c.form["ParentCallSid"] for c in callbacks} == {call["sid"]}


def test_client_without_a_registered_device_gets_no_answer(emulator, dialed):
    emulator.add_number(VoiceUrl=_dial(dialed, "<Client>DeviceId_0001</Client>"))
    call = emulator.call_in()
    (action,) = dialed.wait("/dialed")
    assert action.form["DialCallStatus"] == "no-answer"
    (child,) = emulator.children(call["sid"])
    assert child["to"] == "client:DeviceId_0001"


def test_client_with_identity_and_parameters(emulator, dialed):
    emulator.set_phone("client:alice", answer_after=1, hangup_after=1)
    emulator.add_number(
        VoiceUrl=_dial(
            dialed,
            '<Client><Identity>alice</Identity><Parameter name="ticket" value="42"/></Client>',
        )
    )
    call = emulator.call_in()
    (action,) = dialed.wait("/dialed")
    assert action.form["DialCallStatus"] == "completed"
    (child,) = emulator.children(call["sid"])
    assert child["to"] == "client:alice"
    assert emulator.switch.calls[child["sid"]].custom_params == {"ticket": "42"}


def test_record_from_answer_adds_a_recording(emulator, dialed):
    emulator.set_phone(OTHER, answer_after=1, hangup_after=3)
    emulator.add_number(
        VoiceUrl=_dial(dialed, OTHER, 'action="/dialed" record="record-from-answer"')
    )
    emulator.call_in()
    (action,) = dialed.wait("/dialed")
    assert action.form["RecordingSid"].startswith("RE")
    assert action.form["RecordingDuration"] == "3"
    assert action.form["RecordingUrl"].endswith(action.form["RecordingSid"])
