"""Real audio for emulated calls: PCM helpers (`audio`), speech (`tts`), one leg's audio and
bridging (`leg_audio`), and its transports: WebRTC to a browser (`rtc`), a simulated phone
(`phone_audio`).

The main names are re-exported here lazily, so importing `media.audio` alone does not load
aiortc.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dialtone.emulator.media.addresses import first_non_loopback_ipv4
    from dialtone.emulator.media.leg_audio import LegAudio, bridge, unbridge
    from dialtone.emulator.media.phone_audio import PhoneAudio
    from dialtone.emulator.media.rtc import NoMediaAddress, RtcLeg, RtcStats
    from dialtone.emulator.media.tts import TtsError, TtsUnavailable, synthesize

_EXPORTS = {
    "first_non_loopback_ipv4": "addresses",
    "LegAudio": "leg_audio",
    "bridge": "leg_audio",
    "unbridge": "leg_audio",
    "PhoneAudio": "phone_audio",
    "NoMediaAddress": "rtc",
    "RtcLeg": "rtc",
    "RtcStats": "rtc",
    "TtsError": "tts",
    "TtsUnavailable": "tts",
    "synthesize": "tts",
}
__all__ = [
    "LegAudio",
    "NoMediaAddress",
    "PhoneAudio",
    "RtcLeg",
    "RtcStats",
    "TtsError",
    "TtsUnavailable",
    "bridge",
    "first_non_loopback_ipv4",
    "synthesize",
    "unbridge",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
