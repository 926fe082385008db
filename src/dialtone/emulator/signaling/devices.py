"""Registered Voice SDK devices by Client identity: every device of an identity rings."""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dialtone.emulator.signaling.pstream import SignalingSession


class DeviceRegistry:
    def __init__(self) -> None:
        self._by_identity: dict[str, set[SignalingSession]] = defaultdict(set)

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
