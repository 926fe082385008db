"""Simulated external phones: how each number behaves when called, and what it does on a call."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

ANSWER, BUSY, NO_ANSWER, FAIL, REJECT = "answer", "busy", "no-answer", "fail", "reject"
# A Client identity with no registered device (browser devices come with the signaling layer).
UNAVAILABLE = "unavailable"
MODES = (ANSWER, BUSY, NO_ANSWER, FAIL, REJECT, UNAVAILABLE)


class BehaviourError(ValueError):
    pass


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

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Behaviour:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise BehaviourError(f"unknown behaviour field(s): {', '.join(unknown)}")
        try:
            behaviour = cls(**data)
        except TypeError as exc:
            raise BehaviourError(str(exc)) from None
        if behaviour.mode not in MODES:
            raise BehaviourError(f"mode must be one of {', '.join(MODES)}")
        for name in ("answer_after", "speak_seconds"):
            value = getattr(behaviour, name)
            if not isinstance(value, int | float) or value < 0:
                raise BehaviourError(f"{name} must be a number of seconds ≥ 0")
        if behaviour.hangup_after is not None and (
            not isinstance(behaviour.hangup_after, int | float) or behaviour.hangup_after < 0
        ):
            raise BehaviourError("hangup_after must be a number of seconds ≥ 0, or null")
        if behaviour.say_audio is not None and not str(behaviour.say_audio).startswith(
            ("http://", "https://", "file://")
        ):
            raise BehaviourError("say_audio must be an http(s) or file:// URL")
        if not isinstance(behaviour.digits, str) or any(
            c not in "0123456789*#wW" for c in behaviour.digits
        ):
            raise BehaviourError("digits may contain only 0-9, *, # and w")
        return behaviour

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
