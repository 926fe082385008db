"""Closed peer connections give their memory back: aiortc's objects are reference cycles that
only the cyclic collector frees, so `RtcLeg` runs it after every `COLLECT_AFTER` closed legs
instead of leaving them to Python's rare full collections."""

from __future__ import annotations

import asyncio
import gc
import weakref

import pytest

from dialtone.emulator.media import rtc
from dialtone.emulator.media.leg_audio import LegAudio
from dialtone.emulator.media.rtc import COLLECT_AFTER, RtcLeg


async def _closed_leg() -> weakref.ref:
    """A leg that negotiated (its transports exist), closed and dropped: a weak reference to
    its peer connection."""
    leg = RtcLeg(LegAudio("a"), "127.0.0.1")
    await leg.create_offer()
    await leg.close()
    return weakref.ref(leg.pc)


def test_closed_legs_are_freed_after_every_batch(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(rtc._Collector, "closed", 0)

    async def main() -> None:
        first = [await _closed_leg() for _ in range(COLLECT_AFTER - 1)]
        await asyncio.sleep(0)
        # The premise: reference counting alone frees none of them.
        assert all(pc() is not None for pc in first)
        await _closed_leg()  # the batch's last close: a collection runs soon after
        await asyncio.sleep(0)
        assert [pc() for pc in first] == [None] * len(first)

    gc.disable()  # only the legs' own collection may free them
    try:
        asyncio.run(main())
    finally:
        gc.enable()


def test_closing_twice_counts_once(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(rtc._Collector, "closed", 0)

    async def main() -> None:
        leg = RtcLeg(LegAudio("a"), "127.0.0.1")
        await leg.close()
        await leg.close()

    asyncio.run(main())
    assert rtc._Collector.closed == 1
