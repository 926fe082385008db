"""<Record>: "action (current document), method (POST), timeout (5; 0 = off), finishOnKey
(1234567890*#), maxLength (3600), playBeep (true), trim (trim-silence)"; the action gets
RecordingUrl, RecordingDuration, RecordingSid and Digits."""

import io
import time
import wave

import httpx


def test_a_message_is_recorded_and_posted_to_the_action(emulator, hooks):
    emulator.set_phone("+819059876543", speak_seconds=3)
    hooks.on("/recorded", "<Response><Say>Thanks</Say></Response>")
    emulator.add_number(
        VoiceUrl=hooks.on(
            "/voice", '<Response><Record action="/recorded" maxLength="30"/></Response>'
        )
    )
    call = emulator.call_in()
    (request,) = hooks.wait("/recorded")
    form = request.form
    assert form["RecordingDuration"] == "3"
    assert form["RecordingSid"].startswith("RE")
    assert form["Digits"] == ""  # ended by silence, not by a key
    audio = httpx.get(form["RecordingUrl"])
    assert audio.status_code == 200 and audio.headers["content-type"] == "audio/x-wav"
    with wave.open(io.BytesIO(audio.content)) as recording:
        assert round(recording.getnframes() / recording.getframerate()) == 3
    emulator.wait_status(call["sid"])
    beep = emulator.events(call["sid"], "audio")[0]
    assert beep["source"] == "beep"


def test_a_silent_recording_continues_with_the_next_verb(emulator, hooks):
    emulator.add_number(
        VoiceUrl=hooks.on(
            "/voice",
            '<Response><Record action="/recorded" timeout="2" playBeep="false"/><Say>I did not receive a recording</Say></Response>',
        )
    )
    call = emulator.call_in()
    emulator.wait_status(call["sid"])
    assert hooks.requests("/recorded") == []
    assert [a["source"] for a in emulator.events(call["sid"], "audio")] == ["say"]


def test_a_finish_key_ends_the_recording(emulator, hooks):
    emulator.set_phone("+819059876543", speak_seconds=60)
    hooks.on("/recorded", "<Response/>")
    emulator.add_number(
        VoiceUrl=hooks.on(
            "/voice", '<Response><Record action="/recorded" finishOnKey="*"/></Response>'
        )
    )
    call = emulator.call_in()
    emulator.wait_event(call["sid"], "record_start")
    time.sleep(0.1)  # about 5 emulated seconds of speech
    emulator.press(call["sid"], "1*")  # 1 is not a finish key here
    (request,) = hooks.wait("/recorded")
    assert request.form["Digits"] == "*"
    assert int(request.form["RecordingDuration"]) < 60


def test_max_length_caps_the_recording(emulator, hooks):
    emulator.set_phone("+819059876543", speak_seconds=60)
    hooks.on("/recorded", "<Response/>")
    emulator.add_number(
        VoiceUrl=hooks.on(
            "/voice", '<Response><Record action="/recorded" maxLength="4"/></Response>'
        )
    )
    emulator.call_in()
    (request,) = hooks.wait("/recorded")
    assert request.form["RecordingDuration"] == "4"


def test_hanging_up_during_a_recording_still_posts_it(emulator, hooks):
    emulator.set_phone("+819059876543", speak_seconds=60)
    hooks.on("/recorded", "<Response><Say>never run</Say></Response>")
    emulator.add_number(
        VoiceUrl=hooks.on("/voice", '<Response><Record action="/recorded"/></Response>')
    )
    call = emulator.call_in()
    emulator.wait_event(call["sid"], "record_start")
    time.sleep(0.1)  # about 5 emulated seconds of speech
    emulator.hang_up(call["sid"])
    (request,) = hooks.wait("/recorded")
    assert request.form["Digits"] == "hangup"
    assert int(request.form["RecordingDuration"]) >= 1
    emulator.wait_status(call["sid"])
    emulator.idle()
    assert all(a.get("text") != "never run" for a in emulator.events(call["sid"], "audio"))


def test_recording_status_callback(emulator, hooks):
    emulator.set_phone("+819059876543", speak_seconds=2)
    hooks.on("/recorded", "<Response/>")
    hooks.on("/rsc", (204, "", ""))
    emulator.add_number(
        VoiceUrl=hooks.on(
            "/voice",
            '<Response><Record action="/recorded" recordingStatusCallback="/rsc"/></Response>',
        )
    )
    call = emulator.call_in()
    (callback,) = hooks.wait("/rsc")
    assert callback.form["RecordingStatus"] == "completed"
    assert callback.form["CallSid"] == call["sid"]
    assert callback.form["RecordingDuration"] == "2"
