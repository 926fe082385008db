"""A simulated phone as a leg's transport, in real time (and on a scaled clock)."""

from __future__ import annotations

import asyncio
import time

import pytest

from dialtone.emulator.media import audio
from dialtone.emulator.media.leg_audio import LegAudio, bridge
from dialtone.emulator.media.phone_audio import PhoneAudio


def test_the_phone_hears_a_clip_in_real_time():
    async def main() -> None:
        leg = LegAudio("call")
        phone = PhoneAudio(leg)
        phone.start()
        started = time.monotonic()
        await leg.play(audio.tone(440, 0.5))
        elapsed = time.monotonic() - started
        # Wall time only loosely (a loaded machine); the frame count exactly-ish.
        assert 0.4 < elapsed < 2.0
        assert 25 <= leg.frames_out <= 27
        await phone.stop()
        heard = phone.heard()
        assert audio.voiced_seconds(heard) == pytest.approx(0.5, abs=0.001)
        assert audio.trim(heard) == audio.tone(440, 0.5)

    asyncio.run(main())


def test_what_the_phone_says_reaches_the_leg():
    async def main() -> None:
        leg = LegAudio("call")
        phone = PhoneAudio(leg)
        leg.start_recording()
        phone.start()
        said = audio.tone(300, 0.3)
        done = phone.say(said)
        assert phone.speaking
        await asyncio.wait_for(done, 2)
        await leg.wait_for_silence(0.1)
        await phone.stop()
        assert not phone.speaking
        assert audio.trim(leg.stop_recording()) == said

    asyncio.run(main())


def test_two_bridged_phones_talk():
    async def main() -> None:
        caller_leg, callee_leg = LegAudio("caller"), LegAudio("callee")
        caller, callee = PhoneAudio(caller_leg), PhoneAudio(callee_leg)
        bridge(caller_leg, callee_leg)
        caller.start()
        callee.start()
        await asyncio.gather(caller.say(audio.tone(300, 0.2)), callee.say(audio.tone(800, 0.2)))
        await asyncio.sleep(0.3)  # the last frames cross the bridge
        await asyncio.gather(caller.stop(), callee.stop())
        # Each hears the other's tone (a loaded machine may drop a frame at the bridge).
        for heard, said in (
            (callee.heard(), audio.tone(300, 0.2)),
            (caller.heard(), audio.tone(800, 0.2)),
        ):
            kept = audio.trim(heard)
            assert 0.14 <= audio.voiced_seconds(kept) <= 0.2
            assert kept[: audio.FRAME_BYTES] in said

    asyncio.run(main())


def test_a_scaled_clock_runs_faster():
    async def main() -> None:
        leg = LegAudio("call")
        phone = PhoneAudio(leg, frame_interval=0.02 * 0.05)
        phone.start()
        started = time.monotonic()
        await leg.play(audio.tone(440, 2.0))
        assert time.monotonic() - started < 1.0
        await phone.stop()
        assert audio.voiced_seconds(phone.heard()) == pytest.approx(2.0, abs=0.001)

    asyncio.run(main())


def test_stop_ends_pending_speech():
    async def main() -> None:
        phone = PhoneAudio(LegAudio("call"))
        phone.start()
        long = phone.say(audio.tone(300, 10.0))
        assert (await asyncio.wait_for(phone.say(b""), 1)) is None
        await phone.stop()
        await asyncio.wait_for(long, 1)
        assert not phone.running

    asyncio.run(main())
