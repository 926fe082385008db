"""G.711 by table lookup must give exactly what FFmpeg's codecs give (aiortc uses those)."""

from __future__ import annotations

import av
import pytest
from av.audio.frame import AudioFrame

from dialtone.emulator.media import audio, g711


def _ffmpeg_encode(pcm: bytes, codec: str) -> bytes:
    context = av.CodecContext.create(g711.CODECS[codec], "w")
    context.format, context.layout, context.sample_rate = "s16", "mono", 8000
    frame = AudioFrame(format="s16", layout="mono", samples=len(pcm) // 2)
    frame.planes[0].update(pcm)
    frame.sample_rate = 8000
    return b"".join(bytes(packet) for packet in context.encode(frame))


def _ffmpeg_decode(payload: bytes, codec: str) -> bytes:
    context = av.CodecContext.create(g711.CODECS[codec], "r")
    context.format, context.layout, context.sample_rate = "s16", "mono", 8000
    frames = context.decode(av.Packet(payload))
    return b"".join(bytes(f.planes[0])[: f.samples * 2] for f in frames)


@pytest.mark.parametrize("codec", ["PCMU", "PCMA"])
def test_encoding_matches_ffmpeg(codec):
    pcm = audio.tone(440, 0.1, amplitude=0.9) + audio.from_samples([-32768, -1, 0, 1, 32767])
    encoded = g711.encode(pcm, codec)
    assert len(encoded) == len(pcm) // 2
    assert encoded == _ffmpeg_encode(pcm, codec)


@pytest.mark.parametrize("codec", ["PCMU", "PCMA"])
def test_decoding_every_byte_matches_ffmpeg(codec):
    payload = bytes(range(256))
    assert g711.decode(payload, codec) == _ffmpeg_decode(payload, codec)


def test_a_tone_survives_a_round_trip():
    pcm = audio.tone(440, 0.2, amplitude=0.5)
    back = g711.decode(g711.encode(pcm, "audio/PCMU"), "audio/PCMU")
    assert len(back) == len(pcm)
    assert audio.rms(back) == pytest.approx(audio.rms(pcm), rel=0.02)


def test_supported_codecs():
    assert g711.supported("PCMU") and g711.supported("audio/pcma")
    assert not g711.supported("opus") and not g711.supported(None)
