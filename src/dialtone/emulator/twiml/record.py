"""<Record>: record the far end (reference §7, §2.5).

action (current document), method POST, timeout 5 s of silence ends it (0 = off),
finishOnKey `1234567890*#`, maxLength 3600 s, playBeep true, trim trim-silence,
recordingStatusCallback (+Method, +Event, default completed). The action gets RecordingUrl,
RecordingDuration, RecordingSid and Digits. A silent recording is not stored and execution
continues with the next verb, as the docs' own example (<Say>I did not receive a
recording</Say> after <Record>) implies. If the caller hangs up, the action is still
requested, and what it returns is not run.
"""

from __future__ import annotations

import asyncio
import io
import wave
import xml.etree.ElementTree as ET

from dialtone.emulator.resources import Recording
from dialtone.emulator.sids import new_sid
from dialtone.emulator.twiml import attributes
from dialtone.emulator.twiml.session import Goto, Session

ATTRIBUTES = {
    "action",
    "method",
    "timeout",
    "finishOnKey",
    "maxLength",
    "playBeep",
    "trim",
    "recordingStatusCallback",
    "recordingStatusCallbackMethod",
    "recordingStatusCallbackEvent",
    "recordingChannels",
    "recordingTrack",
    "transcribe",
    "transcribeCallback",
    "storageUrl",
    "storageUrlMethod",
}
BEEP_SECONDS = 0.25
SAMPLE_RATE = 8000


def silent_wav(seconds: float) -> bytes:
    """Without audio (a scaled test clock) a recording holds silence of its length."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(b"\x00\x00" * int(seconds * SAMPLE_RATE))
    return buffer.getvalue()


def recording_url(session: Session, sid: str) -> str:
    switch = session.switch
    account = switch.credentials.account_sid
    return f"{switch.config.public_url}/2010-04-01/Accounts/{account}/Recordings/{sid}"


async def _finish_key(session: Session, keys: str) -> str:
    while True:
        digit = await session.call.dtmf.get()
        if digit in keys:
            return digit


async def _record_audio(
    session: Session, timeout: float, max_length: float, keys: str, trim: bool
) -> tuple[int, bytes, str]:
    """Record the far end's real audio until a finish key, `timeout` s of silence or
    maxLength: (seconds, WAV, key)."""
    from dialtone.emulator.media import audio
    from dialtone.emulator.media.phone_audio import PhoneAudio

    call = session.call
    media = call.media
    behaviour = session.switch.phones.get(call.from_ if call.direction == "inbound" else call.to)
    if isinstance(call.transport, PhoneAudio) and behaviour.speak_seconds > 0:
        # A simulated phone "speaks" a voice-band tone for as long as its behaviour says.
        call.transport.say(audio.tone(440, behaviour.speak_seconds, 0.3))
    media.start_recording()
    waits = {asyncio.ensure_future(_finish_key(session, keys))}
    if timeout > 0:
        waits.add(asyncio.ensure_future(media.wait_for_silence(timeout)))
    try:
        done, _ = await asyncio.wait(
            waits, timeout=session.clock.real(max_length), return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        for wait in waits:
            wait.cancel()
        recorded = media.stop_recording()
    key = next((w.result() for w in done if isinstance(w.result(), str)), "")
    kept = audio.trim(recorded) if trim else recorded
    if audio.voiced_seconds(recorded) <= 0:
        kept = b""
    return round(audio.seconds(kept)), audio.to_wav(kept), key


async def execute(session: Session, element: ET.Element) -> Goto | None:
    call, clock = session.call, session.clock
    await session.answer()
    timeout = attributes.number(session, element, "timeout", 5)
    max_length = attributes.number(session, element, "maxLength", 3600, minimum=1)
    finish_keys = element.get("finishOnKey", "1234567890*#")
    trim = element.get("trim", "trim-silence") != "do-not-trim"
    if attributes.boolean(element, "playBeep", True):
        await session.speak(BEEP_SECONDS, "beep", pcm=_beep(call))
    session.drain_digits()
    call.log("record_start", max_length=max_length, timeout=timeout)
    action = session.resolve(element.get("action") or session.document_url or "")
    method = attributes.method(session, element)
    if call.media is not None:
        recording = asyncio.ensure_future(
            _record_audio(session, timeout, max_length, finish_keys, trim)
        )
        try:
            duration, wav, pressed = await asyncio.shield(recording)
        except asyncio.CancelledError:
            # The caller hung up: Twilio still posts the recording; the answer is not run.
            call.media.close()
            duration, wav, _ = await recording
            result = _store(session, element, duration, "hangup", wav)
            if result is not None:
                session.switch.spawn(
                    session.switch.fire(call, action, method, result, "record_action"),
                    f"record action {call.sid}",
                )
            raise
        result = _store(session, element, duration, pressed, wav)
        return Goto(action, method, result, purpose="record_action") if result else None

    # Without audio, the far end talks for `speak_seconds` (a simulated phone's behaviour).
    far_end = call.from_ if call.direction == "inbound" else call.to
    speech = session.switch.phones.get(far_end).speak_seconds
    started = clock.now()
    limit = min(max_length, speech + timeout) if timeout > 0 else max_length
    pressed = ""
    hung_up = False
    try:
        digit = await session.next_digit(limit)
        while digit is not None and digit not in finish_keys:
            digit = await session.next_digit(max(0.0, limit - (clock.now() - started)))
        pressed = digit or ""
    except asyncio.CancelledError:
        hung_up = True
        raise
    finally:
        elapsed = min(clock.now() - started, max_length)
        duration = round(min(elapsed, speech) if trim else elapsed)
        result = _store(
            session, element, duration, "hangup" if hung_up else pressed, silent_wav(duration)
        )
        if hung_up and result is not None:
            session.switch.spawn(
                session.switch.fire(call, action, method, result, "record_action"),
                f"record action {call.sid}",
            )
    if result is None:
        return None
    return Goto(action, method, result, purpose="record_action")


def _beep(call: object) -> bytes | None:
    if getattr(call, "media", None) is None:
        return None
    from dialtone.emulator.media import audio

    return audio.tone(1000, BEEP_SECONDS, 0.4)


def _store(
    session: Session, element: ET.Element, duration: int, digits: str, wav: bytes
) -> dict[str, str] | None:
    call = session.call
    if duration <= 0:
        call.log("record_result", duration=0, stored=False)
        return None
    sid = new_sid("RE")
    url = recording_url(session, sid)
    session.switch.recordings[sid] = Recording(
        sid=sid,
        call_sid=call.sid,
        duration=duration,
        start_time=session.clock.utcnow(),
        wav=wav,
    )
    call.log("record_result", duration=duration, stored=True, recording_sid=sid, digits=digits)
    callback = element.get("recordingStatusCallback")
    events = set((element.get("recordingStatusCallbackEvent") or "completed").split())
    if callback and "completed" in events:
        params = {
            "AccountSid": call.account_sid,
            "CallSid": call.sid,
            "RecordingSid": sid,
            "RecordingUrl": url,
            "RecordingStatus": "completed",
            "RecordingDuration": str(duration),
            "RecordingChannels": "1",
            "RecordingStartTime": session.clock.rfc2822(),
            "RecordingSource": "RecordVerb",
            "RecordingTrack": "inbound",
        }
        session.switch.spawn(
            session.switch.fire(
                call,
                session.resolve(callback),
                attributes.method(session, element, "recordingStatusCallbackMethod"),
                params,
                "recording_status_callback",
            ),
            f"recording callback {sid}",
        )
    return {
        "RecordingUrl": url,
        "RecordingDuration": str(duration),
        "RecordingSid": sid,
        "Digits": digits,
    }
