"""PCM helpers: decoding files to the internal format, WAV output, levels and silence."""

from __future__ import annotations

import io
import wave

import av
import pytest

from dialtone.emulator.media import audio


def _encode(pcm: bytes, container: str, codec: str, rate: int, layout: str = "mono") -> bytes:
    """Encode 8 kHz mono PCM into a file with PyAV, resampled to `rate`; in stereo, both
    channels carry it (as a real stereo file of a mono source would)."""
    if layout == "stereo":
        pcm = audio.from_samples(v for s in audio.samples(pcm) for v in (s, s))
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container) as out:
        stream = out.add_stream(codec, rate=rate, layout=layout)
        resampler = av.AudioResampler(format=stream.format.name, layout=layout, rate=rate)
        frame = av.AudioFrame(
            format="s16", layout=layout, samples=len(pcm) // (4 if layout == "stereo" else 2)
        )
        frame.planes[0].update(pcm)
        frame.sample_rate = audio.RATE
        for converted in [*resampler.resample(frame), *resampler.resample(None)]:
            for packet in stream.encode(converted):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buffer.getvalue()


def test_constants_describe_20ms_frames():
    assert audio.FRAME_SAMPLES == 160
    assert audio.FRAME_BYTES == 320
    assert len(audio.SILENT_FRAME) == 320
    assert audio.seconds(audio.silence(1.5)) == 1.5


def test_tone_level_and_length():
    pcm = audio.tone(440, 1.0, amplitude=0.5)
    assert len(pcm) == 16000
    assert audio.rms(pcm) == pytest.approx(0.5 / 2**0.5, rel=0.01)
    assert audio.rms(audio.silence(1)) == 0.0
    assert audio.rms(b"") == 0.0


def test_levels_and_voiced_seconds():
    pcm = audio.silence(0.5) + audio.tone(300, 0.3) + audio.silence(0.2)
    levels = audio.levels(pcm, window=0.1)
    assert len(levels) == 10
    assert [level > audio.SILENCE_THRESHOLD for level in levels] == [False] * 5 + [True] * 3 + [
        False
    ] * 2
    assert audio.voiced_seconds(pcm) == pytest.approx(0.3, abs=0.021)
    assert audio.seconds(audio.trim(pcm)) == pytest.approx(0.3, abs=0.021)
    assert audio.trim(audio.silence(1)) == b""


def test_frames_pad_the_last_one():
    split = list(audio.frames(audio.tone(300, 0.05)))  # 2.5 frames
    assert [len(frame) for frame in split] == [320, 320, 320]
    assert split[-1][160:] == bytes(160)


def test_mix_adds_and_clips():
    loud = audio.from_samples([30000, -30000, 100])
    assert audio.samples(audio.mix(loud, loud)).tolist() == [32767, -32768, 200]


def test_to_wav_round_trips_through_decode():
    pcm = audio.tone(500, 0.4)
    wav = audio.to_wav(pcm)
    with wave.open(io.BytesIO(wav)) as read:
        assert (read.getnchannels(), read.getsampwidth(), read.getframerate()) == (1, 2, 8000)
        assert read.getnframes() == 3200
    assert audio.decode(wav) == pcm


@pytest.mark.parametrize(
    ("rate", "layout"), [(44100, "stereo"), (16000, "mono"), (48000, "stereo")]
)
def test_decode_resamples_wav_of_any_rate_and_layout(rate, layout):
    source = audio.tone(500, 1.0)
    decoded = audio.decode(_encode(source, "wav", "pcm_s16le", rate, layout))
    assert audio.seconds(decoded) == pytest.approx(1.0, abs=0.02)
    assert audio.rms(decoded) == pytest.approx(audio.rms(source), rel=0.05)


def test_decode_mp3():
    mp3 = _encode(audio.tone(440, 1.0, amplitude=0.3), "mp3", "libmp3lame", 22050)
    assert mp3[:3] == b"ID3" or mp3[0] == 0xFF
    decoded = audio.decode(mp3)
    # MP3 adds encoder delay and padding: about a frame either way.
    assert audio.seconds(decoded) == pytest.approx(1.0, abs=0.12)
    assert audio.voiced_seconds(decoded) == pytest.approx(1.0, abs=0.12)
    assert audio.rms(decoded) > 0.15


def test_decode_rejects_what_is_not_audio():
    with pytest.raises(av.FFmpegError):
        audio.decode(b"this is not an audio file")
