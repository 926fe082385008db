"""<Play loop="1" digits="">: an audio file for as long as it lasts; `digits` plays DTMF
(`w` = half a second); a file that cannot be fetched is skipped with a warning."""

import wave


def _wav(path, seconds, rate=8000):
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"\x01\x00" * int(seconds * rate))
    return f"file://{path}"


def test_play_lasts_as_long_as_the_file(emulator, hooks, tmp_path):
    url = _wav(tmp_path / "tone.wav", 2.5)
    emulator.add_number(
        VoiceUrl=hooks.on("/voice", f'<Response><Play loop="2">{url}</Play></Response>')
    )
    call = emulator.call_in()
    emulator.wait_status(call["sid"])
    audio = emulator.events(call["sid"], "audio")
    assert [round(a["seconds"], 2) for a in audio] == [2.5, 2.5]


def test_play_fetches_over_http_without_twilio_parameters(emulator, hooks, tmp_path):
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    from tests.conftest import running

    (tmp_path / "a.wav").write_bytes(b"")
    _wav(tmp_path / "a.wav", 1.0, rate=16000)
    data = (tmp_path / "a.wav").read_bytes()
    seen = []

    async def serve(request):
        seen.append((request.method, request.url.query))
        return Response(data, media_type="audio/wav")

    with running(Starlette(routes=[Route("/a.wav", serve)])) as base:
        emulator.add_number(
            VoiceUrl=hooks.on("/voice", f"<Response><Play>{base}/a.wav</Play></Response>")
        )
        call = emulator.call_in()
        emulator.wait_status(call["sid"])
    assert seen == [("GET", "")]
    assert [round(a["seconds"], 2) for a in emulator.events(call["sid"], "audio")] == [1.0]


def test_digits_play_dtmf_tones(emulator, hooks):
    emulator.add_number(VoiceUrl=hooks.on("/voice", '<Response><Play digits="12w#"/></Response>'))
    call = emulator.call_in()
    emulator.wait_status(call["sid"])
    assert "".join(e["digit"] for e in emulator.events(call["sid"], "dtmf_sent")) == "12#"


def test_unfetchable_audio_is_skipped_with_a_warning(emulator, hooks):
    emulator.add_number(
        VoiceUrl=hooks.on(
            "/voice",
            f"<Response><Play>{hooks.url('/missing.mp3')}</Play><Say>after</Say></Response>",
        )
    )
    call = emulator.call_in()
    emulator.wait_status(call["sid"])
    warnings = emulator.events(call["sid"], "warning")
    assert warnings and warnings[0]["code"] == 11200
    assert [a["source"] for a in emulator.events(call["sid"], "audio")] == ["say"]
