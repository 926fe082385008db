"""One leg's audio, driven frame by frame as a transport would: playback, cancellation,
recording, silence detection and bridging."""

from __future__ import annotations

import asyncio

import pytest

from dialtone.emulator.media import audio
from dialtone.emulator.media.leg_audio import LegAudio, bridge, unbridge

TONE = audio.tone(440, 1.0)  # 50 frames


async def _settle() -> None:
    for _ in range(3):
        await asyncio.sleep(0)


def _pull(leg: LegAudio, count: int) -> bytes:
    return b"".join(leg.next_outbound_frame() for _ in range(count))


def test_an_idle_leg_sends_silence():
    leg = LegAudio("idle")
    assert leg.next_outbound_frame() == audio.SILENT_FRAME
    assert not leg.playing


def test_play_returns_when_its_last_frame_was_taken():
    async def main() -> None:
        leg = LegAudio("a")
        play = asyncio.create_task(leg.play(TONE))
        await _settle()
        assert leg.playing
        sent = _pull(leg, 49)
        await _settle()
        assert not play.done()
        sent += _pull(leg, 1)
        await _settle()
        assert play.done()
        assert sent == TONE
        assert leg.next_outbound_frame() == audio.SILENT_FRAME

    asyncio.run(main())


def test_clips_play_one_after_another():
    async def main() -> None:
        leg = LegAudio("a")
        first, second = audio.tone(300, 0.1), audio.tone(600, 0.1)
        plays = [asyncio.create_task(leg.play(clip)) for clip in (first, second)]
        await _settle()
        assert _pull(leg, 5) == first
        await _settle()
        assert plays[0].done() and not plays[1].done()
        assert _pull(leg, 5) == second
        await asyncio.gather(*plays)

    asyncio.run(main())


def test_a_clip_is_padded_to_whole_frames():
    async def main() -> None:
        leg = LegAudio("a")
        play = asyncio.create_task(leg.play(audio.tone(300, 0.03)))
        await _settle()
        assert len(_pull(leg, 2)) == 640
        await play

    asyncio.run(main())


def test_cancelling_play_stops_the_clip_at_once():
    async def main() -> None:
        leg = LegAudio("a")
        play = asyncio.create_task(leg.play(TONE))
        after = asyncio.create_task(leg.play(audio.tone(900, 0.1)))
        await _settle()
        _pull(leg, 10)
        play.cancel()
        # The very next frame is the next clip's, even before the cancelled task runs again.
        assert leg.next_outbound_frame() == audio.tone(900, 0.1)[:320]
        with pytest.raises(asyncio.CancelledError):
            await play
        assert _pull(leg, 4) == audio.tone(900, 0.1)[320:]
        await after
        assert leg.next_outbound_frame() == audio.SILENT_FRAME

    asyncio.run(main())


def test_cancelling_a_queued_clip_drops_it():
    async def main() -> None:
        leg = LegAudio("a")
        first = asyncio.create_task(leg.play(audio.tone(300, 0.1)))
        second = asyncio.create_task(leg.play(TONE))
        await _settle()
        second.cancel()
        await asyncio.gather(second, return_exceptions=True)
        _pull(leg, 5)
        await first
        assert leg.next_outbound_frame() == audio.SILENT_FRAME

    asyncio.run(main())


def test_close_ends_pending_plays_and_later_ones():
    async def main() -> None:
        leg = LegAudio("a")
        play = asyncio.create_task(leg.play(TONE))
        await _settle()
        leg.close()
        await asyncio.wait_for(play, 1)
        await asyncio.wait_for(leg.play(TONE), 1)
        assert leg.closed

    asyncio.run(main())


def test_inbound_is_split_into_frames_whatever_its_chunking():
    leg = LegAudio("a")
    speech = audio.tone(300, 0.5)
    leg.start_recording()
    for start in range(0, len(speech), 250):  # odd chunks, not 320 bytes
        leg.push_inbound(speech[start : start + 250])
    assert leg.frames_in == 25
    assert leg.stop_recording() == speech
    assert leg.stop_recording() == b""


def test_recording_holds_only_what_was_said_while_recording():
    leg = LegAudio("a")
    leg.push_inbound(audio.tone(200, 0.2))
    leg.start_recording()
    said = audio.silence(0.1) + audio.tone(500, 0.3)
    leg.push_inbound(said)
    recorded = leg.stop_recording()
    leg.push_inbound(audio.tone(200, 0.2))
    assert recorded == said
    assert not leg.recording


def test_recording_is_bounded():
    leg = LegAudio("a", max_recording_seconds=0.1)
    leg.start_recording()
    leg.push_inbound(audio.tone(300, 1.0))
    assert audio.seconds(leg.stop_recording()) == pytest.approx(0.1)


def test_inbound_level_and_history():
    leg = LegAudio("a", history_seconds=1.0)
    assert leg.inbound_level() == 0.0
    leg.push_inbound(audio.tone(300, 0.5, amplitude=0.5))
    assert leg.inbound_level(0.3) == pytest.approx(0.354, abs=0.01)
    leg.push_inbound(audio.silence(0.3))
    assert leg.inbound_level(0.3) == 0.0
    assert audio.seconds(leg.recent_inbound(5.0)) == pytest.approx(0.8)
    leg.push_inbound(audio.silence(2.0))
    assert audio.seconds(leg.recent_inbound(5.0)) == pytest.approx(1.0)  # the history's length


def test_wait_for_silence_counts_quiet_frames_from_now():
    async def main() -> None:
        leg = LegAudio("a")
        leg.push_inbound(audio.silence(2.0))  # silence before the wait does not count
        wait = asyncio.create_task(leg.wait_for_silence(0.5))
        await _settle()
        leg.push_inbound(audio.silence(0.3) + audio.tone(400, 0.2))  # talking resets it
        leg.push_inbound(audio.silence(0.48))
        await _settle()
        assert not wait.done()
        leg.push_inbound(audio.silence(0.02))
        await _settle()
        assert wait.done()

    asyncio.run(main())


def test_wait_for_silence_threshold_and_close():
    async def main() -> None:
        leg = LegAudio("a")
        await leg.wait_for_silence(0)
        quiet_hum = audio.tone(50, 0.2, amplitude=0.005)
        loud_wait = asyncio.create_task(leg.wait_for_silence(0.2, threshold=0.001))
        soft_wait = asyncio.create_task(leg.wait_for_silence(0.2, threshold=0.01))
        await _settle()
        leg.push_inbound(quiet_hum)
        await _settle()
        assert soft_wait.done() and not loud_wait.done()
        leg.close()
        await asyncio.wait_for(loud_wait, 1)

    asyncio.run(main())


def test_bridged_legs_hear_each_other():
    a, b = LegAudio("a"), LegAudio("b")
    bridge(a, b)
    assert a.bridged_to is b and b.bridged_to is a
    hello, hi = audio.tone(300, 0.1), audio.tone(700, 0.1)
    a.push_inbound(hello)
    b.push_inbound(hi)
    assert _pull(b, 5) == hello
    assert _pull(a, 5) == hi
    assert b.next_outbound_frame() == audio.SILENT_FRAME  # nothing more said
    unbridge(b)
    assert a.bridged_to is None and b.bridged_to is None
    a.push_inbound(hello)
    assert _pull(b, 5) == audio.silence(0.1)


def test_bridged_audio_is_mixed_with_a_clip():
    async def main() -> None:
        a, b = LegAudio("a"), LegAudio("b")
        bridge(a, b)
        announcement, talk = audio.tone(300, 0.1, 0.2), audio.tone(700, 0.1, 0.2)
        play = asyncio.create_task(b.play(announcement))
        await _settle()
        a.push_inbound(talk)
        assert _pull(b, 5) == audio.mix(announcement, talk)
        await play

    asyncio.run(main())


def test_bridge_delay_is_bounded():
    a, b = LegAudio("a"), LegAudio("b")
    bridge(a, b)
    a.push_inbound(audio.tone(300, 1.0))  # 50 frames nobody took yet
    assert _pull(b, 10) == audio.tone(300, 1.0)[-3200:]
    assert b.next_outbound_frame() == audio.SILENT_FRAME


def test_bridging_replaces_an_earlier_bridge_and_close_ends_it():
    a, b, c = LegAudio("a"), LegAudio("b"), LegAudio("c")
    bridge(a, b)
    bridge(a, c)
    assert b.bridged_to is None and c.bridged_to is a
    c.close()
    assert a.bridged_to is None
    with pytest.raises(ValueError):
        bridge(a, c)
    with pytest.raises(ValueError):
        bridge(a, a)
