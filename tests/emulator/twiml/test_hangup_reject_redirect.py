"""<Hangup/>, <Reject reason>, <Redirect method>."""


def test_hangup_ends_the_call_and_later_verbs_never_run(emulator, hooks):
    emulator.add_number(
        VoiceUrl=hooks.on("/voice", "<Response><Hangup/><Say>never</Say></Response>")
    )
    call = emulator.call_in()
    done = emulator.wait_status(call["sid"])
    # "answers if it is the first verb"
    assert done["status"] == "completed"
    assert emulator.events(call["sid"], "audio") == []
    assert [e["status"] for e in emulator.events(call["sid"], "state")][-2:] == [
        "in-progress",
        "completed",
    ]


def test_reject_leaves_the_call_unanswered(emulator, hooks):
    # "only as the first verb … The status becomes no-answer/busy"
    emulator.add_number(VoiceUrl=hooks.on("/voice", "<Response><Reject/></Response>"))
    call = emulator.call_in()
    assert emulator.wait_status(call["sid"])["status"] == "no-answer"
    assert all(e["status"] != "in-progress" for e in emulator.events(call["sid"], "state"))


def test_reject_busy(emulator, hooks):
    emulator.add_number(VoiceUrl=hooks.on("/voice", '<Response><Reject reason="busy"/></Response>'))
    call = emulator.call_in()
    assert emulator.wait_status(call["sid"])["status"] == "busy"


def test_redirect_fetches_the_target_with_call_parameters(emulator, hooks):
    hooks.on("/next", "<Response><Say>second</Say></Response>")
    emulator.add_number(
        VoiceUrl=hooks.on(
            "/voice",
            '<Response><Redirect method="GET">/next?step=2</Redirect><Say>never</Say></Response>',
        )
    )
    call = emulator.call_in()
    emulator.wait_status(call["sid"])
    (request,) = hooks.wait("/next")
    assert request.method == "GET"
    assert request.form["step"] == "2"  # relative URL resolved against the document
    assert request.form["CallSid"] == call["sid"]
    assert request.form["CallStatus"] == "ringing"  # nothing answered the call yet
    assert [a["text"] for a in emulator.events(call["sid"], "audio")] == ["second"]
