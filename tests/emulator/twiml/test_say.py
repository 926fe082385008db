"""<Say>: "voice (man), language (en-US), loop (1; 0 means up to 1000)"; it takes about as long
as the speech."""

from dialtone.emulator.twiml.say import speech_seconds


def test_speech_length_follows_the_text():
    short, long = speech_seconds("Hello.", "en-US"), speech_seconds("Hello. " * 20, "en-US")
    assert 0.3 <= short < 1.0
    assert 8 < long < 12
    assert speech_seconds("お電話ありがとうございます", "ja-JP") > speech_seconds(
        "Thank you", "en-US"
    )


def test_say_runs_for_its_speech_length_with_defaults(emulator, hooks):
    text = "Thanks for trying our documentation. Enjoy!"
    emulator.add_number(VoiceUrl=hooks.on("/voice", f"<Response><Say>{text}</Say></Response>"))
    call = emulator.call_in()
    emulator.wait_status(call["sid"])
    (audio,) = emulator.events(call["sid"], "audio")
    assert audio["source"] == "say" and audio["text"] == text
    assert audio["voice"] == "man" and audio["language"] == "en-US"
    assert abs(audio["seconds"] - speech_seconds(text, "en-US")) < 0.01
    state = {e["status"]: e["at"] for e in emulator.events(call["sid"], "state")}
    assert state["completed"] - state["in-progress"] >= audio["seconds"]


def test_loop_repeats_and_zero_is_bounded(emulator, hooks):
    emulator.add_number(
        VoiceUrl=hooks.on(
            "/voice", '<Response><Say loop="3" language="ja-JP">もしもし</Say></Response>'
        )
    )
    call = emulator.call_in()
    emulator.wait_status(call["sid"])
    audio = emulator.events(call["sid"], "audio")
    assert len(audio) == 3 and {a["language"] for a in audio} == {"ja-JP"}


def test_say_answers_an_inbound_call(emulator, hooks):
    emulator.add_number(VoiceUrl=hooks.on("/voice", "<Response><Say>Hi</Say></Response>"))
    call = emulator.call_in()
    done = emulator.wait_status(call["sid"])
    assert done["status"] == "completed"
    assert [e["status"] for e in emulator.events(call["sid"], "state")] == [
        "ringing",
        "in-progress",
        "completed",
    ]
