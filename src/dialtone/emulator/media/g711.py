"""G.711 (PCMU, PCMA) on the event loop: table lookups that give FFmpeg's own results.

aiortc encodes every outbound frame on a thread of the loop's default executor and decodes
every inbound one on a thread per receiver, each frame crossing threads twice. For G.711 (one
byte per sample) a lookup is cheaper than either hop, so WebRTC legs use these instead (see
`rtc.py`). The tables are built once, lazily, by FFmpeg's codecs through PyAV: the lookups are
exact, not a second implementation of the companding law.
"""

from __future__ import annotations

import functools
import sys
from array import array

import av
from av.audio.frame import AudioFrame

# RTP codec names (as in aiortc's RTCRtpCodecParameters.name) → FFmpeg's.
CODECS = {"PCMU": "pcm_mulaw", "PCMA": "pcm_alaw"}


def supported(codec: str | None) -> bool:
    """True for "PCMU", "PCMA" and their MIME types ("audio/PCMU")."""
    return _name(codec) in CODECS


def _name(codec: str | None) -> str:
    return (codec or "").rsplit("/", 1)[-1].upper()


@functools.cache
def _encoding_table(codec: str) -> bytes:
    """The encoded byte of every 16-bit sample, indexed by the sample as unsigned."""
    values = array("h", range(-32768, 32768))
    values = values[32768:] + values[:32768]  # index i holds the sample whose bits are i
    frame = AudioFrame(format="s16", layout="mono", samples=len(values))
    frame.planes[0].update(values.tobytes())
    frame.sample_rate = 8000
    context = av.CodecContext.create(CODECS[codec], "w")
    context.format, context.layout, context.sample_rate = "s16", "mono", 8000
    table = b"".join(bytes(packet) for packet in context.encode(frame))
    if len(table) != 65536:
        raise RuntimeError(f"FFmpeg's {CODECS[codec]} gave {len(table)} bytes for 65536 samples")
    return table


@functools.cache
def _decoding_tables(codec: str) -> tuple[bytes, bytes]:
    """Low and high bytes (little-endian PCM) of the sample each encoded byte stands for."""
    context = av.CodecContext.create(CODECS[codec], "r")
    context.format, context.layout, context.sample_rate = "s16", "mono", 8000
    samples = array("h")
    for frame in context.decode(av.Packet(bytes(range(256)))):
        samples.frombytes(bytes(frame.planes[0])[: frame.samples * 2])
    if len(samples) != 256:
        raise RuntimeError(f"FFmpeg's {CODECS[codec]} gave {len(samples)} samples for 256 bytes")
    return bytes(s & 0xFF for s in samples), bytes((s >> 8) & 0xFF for s in samples)


def encode(pcm: bytes, codec: str) -> bytes:
    """Internal PCM (16-bit little-endian) as `codec` ("PCMU"/"PCMA") payload."""
    table = _encoding_table(_name(codec))
    values = array("H")
    values.frombytes(pcm[: len(pcm) - len(pcm) % 2])
    if sys.byteorder == "big":
        values.byteswap()
    return bytes(map(table.__getitem__, values))


def decode(payload: bytes, codec: str) -> bytes:
    """A `codec` payload as internal PCM (16-bit little-endian)."""
    low, high = _decoding_tables(_name(codec))
    pcm = bytearray(2 * len(payload))
    pcm[0::2] = payload.translate(low)
    pcm[1::2] = payload.translate(high)
    return bytes(pcm)
