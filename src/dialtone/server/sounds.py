"""The phone's ringtone and tones, made here as WAV: the SDK must never fetch Twilio's CDN."""

from __future__ import annotations

import io
import math
import wave
from functools import lru_cache

RATE = 8000
# DTMF: a low and a high frequency per key (ITU-T Q.23).
_DTMF = {
    "1": (697, 1209),
    "2": (697, 1336),
    "3": (697, 1477),
    "4": (770, 1209),
    "5": (770, 1336),
    "6": (770, 1477),
    "7": (852, 1209),
    "8": (852, 1336),
    "9": (852, 1477),
    "s": (941, 1209),
    "0": (941, 1336),
    "h": (941, 1477),
}
NAMES = ("incoming", "outgoing", "disconnect", *(f"dtmf{k}" for k in "0123456789sh"))


def _samples(parts: list[tuple[tuple[float, ...], float]], volume: float = 0.3) -> bytes:
    """Concatenated (frequencies, seconds) segments; no frequencies = silence."""
    out = bytearray()
    for frequencies, seconds in parts:
        for n in range(int(seconds * RATE)):
            value = sum(math.sin(2 * math.pi * f * n / RATE) for f in frequencies)
            value = value / max(1, len(frequencies)) * volume
            out += int(value * 32767).to_bytes(2, "little", signed=True)
    return bytes(out)


@lru_cache(maxsize=len(NAMES))
def wav(name: str) -> bytes:
    if name == "incoming":  # a ring: 2 s of 440+480 Hz, 4 s of quiet
        pcm = _samples([((440, 480), 2.0), ((), 4.0)])
    elif name == "outgoing":
        pcm = _samples([((480, 620), 0.15)])
    elif name == "disconnect":
        pcm = _samples([((480,), 0.2), ((), 0.05), ((400,), 0.3)])
    elif name.startswith("dtmf") and name[4:] in _DTMF:
        pcm = _samples([(_DTMF[name[4:]], 0.15)])
    else:
        raise KeyError(name)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(pcm)
    return buffer.getvalue()
