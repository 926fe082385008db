"""Calls with real audio, in real time, between simulated phones: what a phone hears of <Say>
is speech (energy over time, a duration close to the text's), <Play> is the file, <Record>
keeps what the phone said, and <Dial> carries audio both ways."""

import asyncio
import io
import wave

import httpx
import pytest

from dialtone.emulator.media import audio, tts
from tests.conftest import IN_CI
from tests.emulator.conftest import make_emulator

TEXT = "Thank you for calling. Please hold while we connect you."


@pytest.fixture
def realtime(tmp_path):
    if not tts.available():
        if IN_CI:
            pytest.fail("CI=true but espeak-ng is missing: <Say> audio must be tested")
        pytest.skip("AUDIO TESTS SKIPPED: espeak-ng is not installed (apt-get install espeak-ng)")
    yield from make_emulator(scale=1.0, media_folder=tmp_path)


def _pcm(wav: bytes) -> bytes:
    with wave.open(io.BytesIO(wav)) as source:
        assert source.getframerate() == audio.RATE
        return source.readframes(source.getnframes())


def test_say_heard_by_a_phone_is_speech(realtime, hooks):
    realtime.add_number(VoiceUrl=hooks.on("/voice", f"<Response><Say>{TEXT}</Say></Response>"))
    call = realtime.call_in()
    realtime.wait_status(call["sid"], timeout=30)
    heard = _pcm(realtime.http.get(f"/emulator/calls/{call['sid']}/heard.wav").content)
    spoken = audio.voiced_seconds(heard)
    (say,) = realtime.events(call["sid"], "audio")
    # The phone heard about as much voice as the synthesized text lasts …
    assert 0.6 * say["seconds"] <= spoken <= say["seconds"] + 0.1
    assert say["seconds"] > 2.5
    # … and it varies like speech, not a steady tone or silence.
    levels = [level for level in audio.levels(heard, 0.1) if level > audio.SILENCE_THRESHOLD]
    assert max(levels) > 3 * min(levels)


def test_record_keeps_what_the_phone_said(realtime, hooks, tmp_path):
    speech = tmp_path / "speech.wav"
    speech.write_bytes(audio.to_wav(asyncio.run(tts.synthesize("Hello, this is my message."))))
    hooks.on("/recorded", "<Response/>")
    realtime.add_number(
        VoiceUrl=hooks.on(
            "/voice",
            '<Response><Record action="/recorded" timeout="2" playBeep="false"/></Response>',
        )
    )
    call = realtime.call_in()
    realtime.wait_event(call["sid"], "record_start", timeout=10)
    assert (
        realtime.http.post(
            f"/emulator/calls/{call['sid']}/play", json={"Url": f"file://{speech}"}
        ).status_code
        == 200
    )
    (action,) = hooks.wait("/recorded", timeout=20)
    recording = _pcm(httpx.get(action.form["RecordingUrl"]).content)
    assert audio.voiced_seconds(recording) > 1.0
    assert 1 <= int(action.form["RecordingDuration"]) <= 4


def test_dial_bridges_audio_both_ways(realtime, hooks, tmp_path):
    callee_says = tmp_path / "callee.wav"
    callee_says.write_bytes(audio.to_wav(audio.tone(600, 2.0)))
    realtime.set_phone(
        "+819011112222", answer_after=0.5, hangup_after=4, say_audio=f"file://{callee_says}"
    )
    realtime.add_number(
        VoiceUrl=hooks.on("/voice", "<Response><Dial>+819011112222</Dial></Response>")
    )
    call = realtime.call_in()
    caller_says = tmp_path / "caller.wav"
    caller_says.write_bytes(audio.to_wav(audio.tone(300, 2.0)))
    realtime.wait_event(call["sid"], "bridge", timeout=10)
    realtime.http.post(f"/emulator/calls/{call['sid']}/play", json={"Url": f"file://{caller_says}"})
    realtime.wait_status(call["sid"], timeout=30)
    (child,) = realtime.children(call["sid"])
    caller_heard = _pcm(realtime.http.get(f"/emulator/calls/{call['sid']}/heard.wav").content)
    callee_heard = _pcm(realtime.http.get(f"/emulator/calls/{child['sid']}/heard.wav").content)
    assert audio.voiced_seconds(caller_heard) > 1.0  # the callee's tone reached the caller
    assert audio.voiced_seconds(callee_heard) > 1.0  # and the caller's reached the callee


def test_a_phone_that_says_hello_greets_whoever_it_reaches(realtime, hooks):
    """`say` (dialtone dev's external phone): spoken once answered, and by a caller once its
    call is answered, so a first call proves the audio comes through."""
    realtime.set_phone("+819011112222", answer_after=0.5, hangup_after=5, say="Hello, I answered.")
    realtime.set_phone("+819059876543", say="Hello, I am calling you.", say_language="en-GB")
    realtime.add_number(
        VoiceUrl=hooks.on("/voice", "<Response><Dial>+819011112222</Dial></Response>")
    )
    call = realtime.call_in(from_="+819059876543")
    realtime.wait_status(call["sid"], timeout=30)
    (child,) = realtime.children(call["sid"])
    (callee_spoke,) = realtime.events(child["sid"], "far_end_audio")
    (caller_spoke,) = realtime.events(call["sid"], "far_end_audio")
    assert callee_spoke["text"] == "Hello, I answered." and callee_spoke["seconds"] > 0.8
    assert caller_spoke["text"] == "Hello, I am calling you." and caller_spoke["seconds"] > 0.8
    caller_heard = _pcm(realtime.http.get(f"/emulator/calls/{call['sid']}/heard.wav").content)
    callee_heard = _pcm(realtime.http.get(f"/emulator/calls/{child['sid']}/heard.wav").content)
    assert audio.voiced_seconds(caller_heard) > 0.6  # the callee's hello reached the caller
    assert audio.voiced_seconds(callee_heard) > 0.6  # and the caller's reached the callee
