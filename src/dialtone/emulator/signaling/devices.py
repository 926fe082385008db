"""Registered Voice SDK devices by Client identity: every device of an identity rings; and
the reconnect tokens of their calls."""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

from dialtone.emulator.signaling.reconnect import Reconnects

if TYPE_CHECKING:
    from dialtone.emulator.signaling.pstream import SignalingSession


# A person can be an external phone from a browser: the emulator gives that page a token for
# this identity, and calls to the number ring it instead of a simulated phone.
PHONE_PREFIX = "phone."


def phone_identity(number: str) -> str | None:
    """`phone.819059876543` for `+819059876543`; None for anything but an E.164 number."""
    if number.startswith("+") and number[1:].isdigit():
        return PHONE_PREFIX + number[1:]
    return None


def phone_number(identity: str | None) -> str | None:
    if identity and identity.startswith(PHONE_PREFIX) and identity[len(PHONE_PREFIX) :].isdigit():
        return "+" + identity[len(PHONE_PREFIX) :]
    return None


class DeviceRegistry:
    def __init__(self) -> None:
        self._by_identity: dict[str, set[SignalingSession]] = defaultdict(set)
        self.reconnects = Reconnects()  # calls a device may resume after its socket drops

    def register(self, identity: str, session: SignalingSession) -> None:
        self._by_identity[identity].add(session)

    def unregister(self, identity: str, session: SignalingSession) -> None:
        sessions = self._by_identity.get(identity)
        if sessions is not None:
            sessions.discard(session)
            if not sessions:
                del self._by_identity[identity]

    def devices(self, identity: str) -> list[SignalingSession]:
        return list(self._by_identity.get(identity, ()))

    def identities(self) -> dict[str, int]:
        return {identity: len(sessions) for identity, sessions in self._by_identity.items()}
