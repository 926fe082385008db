"""PCM helpers. The media layer's one internal format is mono signed 16-bit little-endian at
8000 Hz (PCMU's native rate), moved in 20 ms frames of 160 samples (320 bytes)."""

from __future__ import annotations

import asyncio
import io
import math
import sys
import wave
from array import array
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor

import av
from av.audio.frame import AudioFrame

RATE = 8000
SAMPLE_BYTES = 2
FRAME_SECONDS = 0.02
FRAME_SAMPLES = 160
FRAME_BYTES = FRAME_SAMPLES * SAMPLE_BYTES
SILENT_FRAME = bytes(FRAME_BYTES)
FULL_SCALE = 32768.0
# RMS (full scale = 1.0) below which audio counts as silence: about -40 dBFS, above line noise
# and comfort noise, well below speech (espeak-ng speech averages about 0.08).
SILENCE_THRESHOLD = 0.01
# Decoding is CPU-bound: a couple of threads keep it off the event loop without a thread per
# call when many calls need audio at once (threads start lazily, only when something decodes).
DECODE_WORKERS = 2
_decoder = ThreadPoolExecutor(DECODE_WORKERS, thread_name_prefix="dialtone-decode")


class Resampler:
    """Any PyAV audio frame (any rate, layout or sample format) to internal PCM."""

    def __init__(self) -> None:
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)

    def convert(self, frame: AudioFrame | None) -> bytes:
        """PCM for `frame`; `None` flushes what the resampler still holds."""
        return b"".join(_pcm(out) for out in self._resampler.resample(frame))


def _pcm(frame: AudioFrame) -> bytes:
    # Planes can be padded past the last sample.
    return bytes(frame.planes[0])[: frame.samples * SAMPLE_BYTES]


def decode(data: bytes) -> bytes:
    """Internal PCM from an audio file PyAV can read (WAV, MP3 and the rest of FFmpeg).
    CPU-bound: from the event loop, use `decode_async`."""
    resampler = Resampler()
    chunks = []
    with av.open(io.BytesIO(data)) as container:
        for frame in container.decode(audio=0):
            frame.pts = None  # ignore timestamps: files with odd ones still decode in order
            chunks.append(resampler.convert(frame))
    chunks.append(resampler.convert(None))
    return b"".join(chunks)


async def decode_async(data: bytes) -> bytes:
    """`decode` on the small shared decoding pool, off the event loop."""
    return await asyncio.get_running_loop().run_in_executor(_decoder, decode, data)


def to_wav(pcm: bytes, rate: int = RATE) -> bytes:
    """A mono 16-bit WAV file holding `pcm`."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(SAMPLE_BYTES)
        out.setframerate(rate)
        out.writeframes(pcm)
    return buffer.getvalue()


def samples(pcm: bytes) -> array:
    """The signed 16-bit samples of `pcm` (a trailing odd byte is ignored)."""
    values = array("h")
    values.frombytes(pcm[: len(pcm) - len(pcm) % SAMPLE_BYTES])
    if sys.byteorder == "big":
        values.byteswap()
    return values


def from_samples(values: Iterable[int]) -> bytes:
    out = array("h", values)
    if sys.byteorder == "big":
        out.byteswap()
    return out.tobytes()


def silence(seconds: float) -> bytes:
    return bytes(round(max(0.0, seconds) * RATE) * SAMPLE_BYTES)


def tone(hz: float, seconds: float, amplitude: float = 0.5) -> bytes:
    """A sine wave; `amplitude` is a fraction of full scale."""
    count = round(max(0.0, seconds) * RATE)
    peak = max(0.0, min(1.0, amplitude)) * (FULL_SCALE - 1)
    step = 2 * math.pi * hz / RATE
    return from_samples(int(peak * math.sin(step * n)) for n in range(count))


def seconds(pcm: bytes) -> float:
    return len(pcm) / (RATE * SAMPLE_BYTES)


def rms(pcm: bytes) -> float:
    """Root mean square level, 0.0 (silence) to 1.0 (full scale)."""
    values = samples(pcm)
    if not values:
        return 0.0
    return math.sqrt(sum(v * v for v in values) / len(values)) / FULL_SCALE


def chunks(pcm: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(pcm), size):
        yield pcm[start : start + size]


def frames(pcm: bytes) -> Iterator[bytes]:
    """20 ms frames; the last one is padded with silence."""
    for chunk in chunks(pcm, FRAME_BYTES):
        yield chunk.ljust(FRAME_BYTES, b"\x00")


def levels(pcm: bytes, window: float = FRAME_SECONDS) -> list[float]:
    """RMS of each `window` seconds of `pcm` (the last window may be shorter)."""
    size = max(1, round(window * RATE)) * SAMPLE_BYTES
    return [rms(chunk) for chunk in chunks(pcm, size)]


def voiced_seconds(pcm: bytes, threshold: float = SILENCE_THRESHOLD) -> float:
    """How much of `pcm` is above the silence threshold, in 20 ms windows."""
    size = FRAME_BYTES
    return sum(len(c) for c in chunks(pcm, size) if rms(c) >= threshold) / (RATE * SAMPLE_BYTES)


def trim(pcm: bytes, threshold: float = SILENCE_THRESHOLD) -> bytes:
    """`pcm` without its leading and trailing silence (whole 20 ms frames; <Record trim>)."""
    windows = list(chunks(pcm, FRAME_BYTES))
    voiced = [i for i, chunk in enumerate(windows) if rms(chunk) >= threshold]
    if not voiced:
        return b""
    return b"".join(windows[voiced[0] : voiced[-1] + 1])


def mix(a: bytes, b: bytes) -> bytes:
    """The sum of two equally long PCM chunks, clipped to full scale."""
    top, bottom = int(FULL_SCALE - 1), -int(FULL_SCALE)
    return from_samples(
        max(bottom, min(top, x + y)) for x, y in zip(samples(a), samples(b), strict=True)
    )
