"""Audio for the far end of a leg that is a simulated phone: in real time, the phone hears
everything Twilio sends (kept for tests and the inspector) and can say a recording into the
call. On a scaled clock (tests of call flow) legs carry no audio and verbs just take time."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from dialtone import logs
from dialtone.emulator.call import Call

if TYPE_CHECKING:
    from dialtone.emulator.switch import Switch

log = logging.getLogger("dialtone.emulator.media")


def attach_phone_audio(switch: Switch, call: Call) -> None:
    """Give a simulated phone's leg real audio, when the emulator runs in real time."""
    if switch.clock.scale != 1.0 or call.media is not None:
        return
    from dialtone.emulator.media.leg_audio import LegAudio
    from dialtone.emulator.media.phone_audio import PhoneAudio

    audio = LegAudio(call.sid)
    phone = PhoneAudio(audio)
    phone.start()
    call.media, call.transport = audio, phone


def release(switch: Switch, call: Call) -> None:
    """The leg ended: stop its audio (RTC legs close through their own `on_end`)."""
    from dialtone.emulator.media.phone_audio import PhoneAudio

    if call.media is not None:
        call.media.close()
    if isinstance(call.transport, PhoneAudio):
        switch.spawn(call.transport.stop(), f"phone audio stop {call.sid}")


async def say_file(switch: Switch, call: Call, url: str) -> bool:
    """The simulated phone says an audio file (WAV, MP3) into the call."""
    from dialtone.emulator.media import audio
    from dialtone.emulator.media.phone_audio import PhoneAudio
    from dialtone.emulator.twiml.play import fetch_audio

    if not isinstance(call.transport, PhoneAudio):
        return False
    try:
        data = await fetch_audio(url, switch.config.media_folder)
        pcm = await audio.decode_async(data)
    except Exception as exc:
        logs.event(
            log,
            "phone_audio_unreadable",
            level=logging.WARNING,
            call_sid=call.sid,
            error=type(exc).__name__,
        )
        call.log("warning", code=11200, message=f"the phone cannot play {url}")
        return False
    call.log("far_end_audio", url=url, seconds=round(audio.seconds(pcm), 3))
    await call.transport.say(pcm)
    return True


async def say_text(switch: Switch, call: Call, text: str, language: str) -> bool:
    """The simulated phone speaks `text` into the call (espeak-ng, as <Say> does)."""
    from dialtone.emulator.media import audio, tts
    from dialtone.emulator.media.phone_audio import PhoneAudio

    if not isinstance(call.transport, PhoneAudio):
        return False
    try:
        pcm = await tts.synthesize(text, language, "woman")
    except tts.TtsError as exc:
        call.log("warning", code=13511, message=f"the phone cannot speak: {exc}")
        return False
    call.log("far_end_audio", text=text[:200], seconds=round(audio.seconds(pcm), 3))
    await call.transport.say(pcm)
    return True


def heard(call: Call) -> bytes | None:
    """What the simulated phone heard so far, as WAV."""
    from dialtone.emulator.media import audio
    from dialtone.emulator.media.phone_audio import PhoneAudio

    if not isinstance(call.transport, PhoneAudio):
        return None
    return audio.to_wav(call.transport.heard())
