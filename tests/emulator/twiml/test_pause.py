"""<Pause length="1">: silence; "as the first verb, delays the answer"."""


def test_pause_lasts_its_length(emulator, hooks):
    emulator.add_number(
        VoiceUrl=hooks.on("/voice", '<Response><Say>a</Say><Pause length="4"/></Response>')
    )
    call = emulator.call_in()
    emulator.wait_status(call["sid"])
    pause = [e for e in emulator.events(call["sid"], "audio") if e["source"] == "pause"]
    assert pause[0]["seconds"] == 4


def test_default_length_is_one_second(emulator, hooks):
    emulator.add_number(VoiceUrl=hooks.on("/voice", "<Response><Say>a</Say><Pause/></Response>"))
    call = emulator.call_in()
    emulator.wait_status(call["sid"])
    assert [
        e["seconds"] for e in emulator.events(call["sid"], "audio") if e["source"] == "pause"
    ] == [1]


def test_a_leading_pause_delays_the_answer(emulator, hooks):
    emulator.add_number(
        VoiceUrl=hooks.on("/voice", '<Response><Pause length="3"/><Say>hi</Say></Response>')
    )
    call = emulator.call_in()
    emulator.wait_status(call["sid"])
    events = emulator.events(call["sid"])
    pause_at = next(e["at"] for e in events if e["kind"] == "audio" and e["source"] == "pause")
    answered_at = next(
        e["at"] for e in events if e["kind"] == "state" and e["status"] == "in-progress"
    )
    assert answered_at - pause_at >= 3
