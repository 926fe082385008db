"""WebRTC legs: two aiortc peers in one process, on the machine's non-loopback address, carry
a tone each way. One peer can hide its candidates, as the Voice SDK's browser does."""

from __future__ import annotations

import asyncio
import itertools
import re

import pytest

from dialtone.emulator.media import audio, g711, rtc
from dialtone.emulator.media.leg_audio import LegAudio
from dialtone.emulator.media.rtc import NoMediaAddress, RtcLeg, clean_remote_sdp

BROWSER_LIKE_OFFER = (
    "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 0\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:0 PCMU/8000\r\n"
)


def _candidates(sdp: str) -> list[str]:
    return [line for line in sdp.splitlines() if line.startswith("a=candidate:")]


def _hide_candidates(sdp: str) -> str:
    """What the Voice SDK sends: no candidates (aiortc's end-of-candidates kept, to be cleaned)."""
    return "".join(
        line for line in sdp.splitlines(keepends=True) if not line.startswith("a=candidate:")
    )


def _frequency(pcm: bytes) -> float:
    """A tone's frequency from its zero crossings, over the voiced part."""
    values = audio.samples(audio.trim(pcm))
    crossings = sum(1 for x, y in itertools.pairwise(values) if (x < 0) != (y < 0))
    return crossings / 2 / (len(values) / audio.RATE)


def test_clean_remote_sdp_drops_end_of_candidates_only_without_candidates():
    bare = BROWSER_LIKE_OFFER + "a=end-of-candidates\r\n"
    assert clean_remote_sdp(bare) == BROWSER_LIKE_OFFER
    with_candidate = (
        BROWSER_LIKE_OFFER
        + "a=candidate:1 1 udp 1 192.0.2.9 5000 typ host\r\na=end-of-candidates\r\n"
    )
    assert clean_remote_sdp(with_candidate) == with_candidate
    assert clean_remote_sdp("a=end-of-candidates\n") == ""


def test_host_candidates_are_restricted_to_the_leg_address():
    # aioice never gathers 127.0.0.1 on its own: a loopback candidate, and only that, shows
    # the restriction replaced its interface list.
    async def main() -> None:
        leg = RtcLeg(LegAudio("a"), "127.0.0.1")
        try:
            offer = await leg.create_offer()
        finally:
            await leg.close()
        assert len(_candidates(offer)) == 1
        assert " 127.0.0.1 " in _candidates(offer)[0]
        assert "typ host" in _candidates(offer)[0]
        assert "stun" not in offer.lower()

    asyncio.run(main())


def test_default_address_is_the_first_non_loopback_one(media_address):
    async def main() -> None:
        leg = RtcLeg(LegAudio("a"))
        try:
            assert leg.address == media_address
            offer = await leg.create_offer()
        finally:
            await leg.close()
        assert [line.split()[4] for line in _candidates(offer)] == [media_address]
        assert re.search(r"^m=audio \d+ UDP/TLS/RTP/SAVPF 0 \d+\r?$", offer, re.MULTILINE)
        assert "PCMU/8000" in offer and "opus/48000/2" in offer

    asyncio.run(main())


def test_an_address_not_on_this_machine_is_refused():
    with pytest.raises(NoMediaAddress):
        RtcLeg(LegAudio("a"), "203.0.113.77")
    with pytest.raises(ValueError):
        RtcLeg(LegAudio("a"), "127.0.0.1", codecs=["audio/AMR"])


async def _call(
    address: str, hide: str, codecs: tuple[str, ...] = ("audio/PCMU", "audio/opus")
) -> None:
    """`server` offers (an incoming call) to `client`; with `hide`, that side's SDP carries no
    candidates, so the other learns it as peer-reflexive from its checks, as with a browser."""
    server_audio, client_audio = LegAudio("server"), LegAudio("client")
    states: list[str] = []
    server = RtcLeg(server_audio, address, on_state=states.append)
    client = RtcLeg(client_audio, address, codecs=codecs)
    try:
        offer = await server.create_offer()
        answer = await client.accept_offer(_hide_candidates(offer) if hide == "offer" else offer)
        await server.accept_answer(_hide_candidates(answer) if hide == "answer" else answer)
        assert await server.wait_connected(5)
        assert await client.wait_connected(5)
        assert states[-1] == "connected"

        server_audio.start_recording()
        client_audio.start_recording()
        await asyncio.wait_for(
            asyncio.gather(
                server_audio.play(audio.tone(440, 0.6)), client_audio.play(audio.tone(880, 0.6))
            ),
            5,
        )
        await asyncio.sleep(0.3)  # the last packets arrive (jitter buffer)
        heard_by_client = client_audio.stop_recording()
        heard_by_server = server_audio.stop_recording()

        for heard, hz in ((heard_by_client, 440), (heard_by_server, 880)):
            assert audio.voiced_seconds(heard) == pytest.approx(0.6, abs=0.1)
            assert audio.rms(audio.trim(heard)) > 0.2
            assert _frequency(heard) == pytest.approx(hz, rel=0.05)
        for stats in (await server.stats(), await client.stats()):
            assert stats.codec == codecs[0]
            assert stats.packets_sent > 30 and stats.packets_received > 30
            assert stats.bytes_sent > 0 and stats.transport_bytes_received > 0
            assert stats.frames_sent > 30 and stats.frames_received > 30
    finally:
        await asyncio.gather(server.close(), client.close())
    assert server.state == "closed"


@pytest.mark.parametrize("hide", ["none", "offer", "answer"])
def test_two_peers_carry_audio_both_ways(media_address, hide):
    asyncio.run(_call(media_address, hide))


def test_opus_is_resampled_to_the_internal_format(media_address):
    asyncio.run(_call(media_address, "none", codecs=("audio/opus",)))


async def _hops(address: str, codec: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """A one-second call with `codec` both ways, counting frames handed to an executor thread
    (aiortc encodes raw frames there), frames resampled from a decoded track (what aiortc's
    decoding thread produced) and payloads decoded by table on the loop."""
    counts = {"executor": 0, "resampled": 0, "g711_decoded": 0}
    loop = asyncio.get_running_loop()
    run_in_executor = loop.run_in_executor

    def counting_executor(*args):
        counts["executor"] += 1
        return run_in_executor(*args)

    class CountingResampler(rtc.Resampler):
        def convert(self, frame):
            counts["resampled"] += 1
            return super().convert(frame)

    def counting_decode(payload, name):
        counts["g711_decoded"] += 1
        return decode(payload, name)

    decode = g711.decode
    monkeypatch.setattr(loop, "run_in_executor", counting_executor)
    monkeypatch.setattr(rtc, "Resampler", CountingResampler)
    monkeypatch.setattr(g711, "decode", counting_decode)
    server = RtcLeg(LegAudio("server"), address, codecs=(codec,))
    client = RtcLeg(LegAudio("client"), address, codecs=(codec,))
    try:
        await server.accept_answer(await client.accept_offer(await server.create_offer()))
        assert await server.wait_connected(5) and await client.wait_connected(5)
        await asyncio.sleep(1)
        assert server.track.codec == client.track.codec == codec.split("/")[1]
        for stats in (await server.stats(), await client.stats()):
            assert stats.packets_received > 20 and stats.frames_received > 20
    finally:
        await asyncio.gather(server.close(), client.close())
    return counts


def test_g711_is_encoded_and_decoded_on_the_loop_without_thread_hops(media_address, monkeypatch):
    counts = asyncio.run(_hops(media_address, "audio/PCMU", monkeypatch))
    assert counts["executor"] == 0
    assert counts["resampled"] == 0
    assert counts["g711_decoded"] > 40  # both legs' inbound frames


def test_opus_still_goes_through_aiortcs_codec_threads(media_address, monkeypatch):
    # The counters above do see thread hops when there are some.
    counts = asyncio.run(_hops(media_address, "audio/opus", monkeypatch))
    assert counts["executor"] > 40 and counts["resampled"] > 40
    assert counts["g711_decoded"] == 0


def test_inbound_time_runs_on_as_silence_when_the_peer_stops_sending(media_address):
    async def scenario() -> None:
        server_audio = LegAudio("server")
        server = RtcLeg(server_audio, media_address)
        client = RtcLeg(LegAudio("client"), media_address)
        try:
            await server.accept_answer(await client.accept_offer(await server.create_offer()))
            assert await server.wait_connected(5)
            await client.close()  # no more audio from the far end
            await asyncio.sleep(0.2)
            before = server_audio.frames_in
            await asyncio.sleep(1)
            # 50 frames a second of time, as silence (generous bounds: a busy machine).
            assert 20 <= server_audio.frames_in - before <= 80
            assert audio.rms(server_audio.recent_inbound(0.5)) == 0.0
        finally:
            await asyncio.gather(server.close(), client.close())

    asyncio.run(scenario())
