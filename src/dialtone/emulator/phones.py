"""Simulated external phones: how each number behaves when called, and what it does on a call."""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, fields
from typing import Any

ANSWER, BUSY, NO_ANSWER, FAIL, REJECT = "answer", "busy", "no-answer", "fail", "reject"
# A Client identity with no registered device (browser devices come with the signaling layer).
UNAVAILABLE = "unavailable"
MODES = (ANSWER, BUSY, NO_ANSWER, FAIL, REJECT, UNAVAILABLE)


# Twilio ends every call after four hours: no wait in a behaviour needs to be longer.
MAX_SECONDS = 4 * 3600.0
MAX_DIGITS = 256
MAX_URL = 4096
MAX_SAY = 4096  # <Say>'s own limit on Twilio
_LANGUAGE = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8}){0,3}")


class BehaviourError(ValueError):
    pass


def seconds(value: object, name: str) -> float:
    """A finite number of seconds in [0, MAX_SECONDS]; NaN, infinities, booleans, strings
    and the like are refused."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BehaviourError(f"{name} must be a number of seconds")
    if not math.isfinite(value) or not 0 <= value <= MAX_SECONDS:
        raise BehaviourError(f"{name} must be between 0 and {MAX_SECONDS:g} seconds")
    return float(value)


@dataclass(frozen=True)
class Behaviour:
    """What a simulated phone does when it rings, and once answered."""

    mode: str = ANSWER
    answer_after: float = 1.0  # seconds of ringing before it answers (or rejects)
    hangup_after: float | None = (
        None  # seconds after answer; None = stays until the other side ends
    )
    digits: str = ""  # pressed after answering; `w` waits half a second
    speak_seconds: float = 0.0  # talks this long when a <Record> starts on its call
    say_audio: str | None = None  # a WAV/MP3 URL (or file://) it says once answered
    say: str | None = None  # words it speaks once answered (espeak-ng, as <Say>)
    say_language: str = "en-US"

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Behaviour:
        """A behaviour from JSON (or a provisioning file), every field checked before it is
        kept: a value stored here must never break listing it later."""
        if not isinstance(data, dict):
            raise BehaviourError("a behaviour is a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = sorted(str(name)[:40] for name in set(data) - known)
        if unknown:
            raise BehaviourError(f"unknown behaviour field(s): {', '.join(unknown)}")
        mode = data.get("mode", ANSWER)
        if not isinstance(mode, str) or mode not in MODES:
            raise BehaviourError(f"mode must be one of {', '.join(MODES)}")
        say_audio = data.get("say_audio")
        if say_audio is not None and (
            not isinstance(say_audio, str)
            or len(say_audio) > MAX_URL
            or not say_audio.startswith(("http://", "https://", "file://"))
        ):
            raise BehaviourError(
                f"say_audio must be an http(s) or file:// URL of at most {MAX_URL} characters"
            )
        say = data.get("say")
        if say is not None and (not isinstance(say, str) or len(say) > MAX_SAY):
            raise BehaviourError(f"say must be text of at most {MAX_SAY} characters")
        say_language = data.get("say_language", "en-US")
        if not isinstance(say_language, str) or not _LANGUAGE.fullmatch(say_language):
            raise BehaviourError("say_language must be a language tag such as en-US or ja-JP")
        digits = data.get("digits", "")
        if (
            not isinstance(digits, str)
            or len(digits) > MAX_DIGITS
            or any(c not in "0123456789*#wW" for c in digits)
        ):
            raise BehaviourError(f"digits may hold at most {MAX_DIGITS} of 0-9, *, # and w")
        hangup_after = data.get("hangup_after")
        return cls(
            mode=mode,
            answer_after=seconds(data.get("answer_after", 1.0), "answer_after"),
            hangup_after=None if hangup_after is None else seconds(hangup_after, "hangup_after"),
            digits=digits,
            speak_seconds=seconds(data.get("speak_seconds", 0.0), "speak_seconds"),
            say_audio=say_audio,
            say=say or None,
            say_language=say_language,
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


DEFAULT_PHONE = Behaviour()
DEFAULT_CLIENT = Behaviour(mode=UNAVAILABLE)


class PhoneBook:
    """Behaviours by address: an E.164 number or `client:<identity>`."""

    def __init__(self) -> None:
        self._behaviours: dict[str, Behaviour] = {}

    def set(self, address: str, behaviour: Behaviour) -> None:
        self._behaviours[address] = behaviour

    def remove(self, address: str) -> bool:
        return self._behaviours.pop(address, None) is not None

    def get(self, address: str) -> Behaviour:
        if address in self._behaviours:
            return self._behaviours[address]
        return DEFAULT_CLIENT if address.startswith("client:") else DEFAULT_PHONE

    def items(self) -> list[tuple[str, Behaviour]]:
        return sorted(self._behaviours.items())
