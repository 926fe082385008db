"""Real-time pacing for 20 ms frames. Every transport paces itself on the event loop's
monotonic clock (`loop.time()`), so all legs of the process share one clock source."""

from __future__ import annotations

import asyncio

from dialtone.emulator.media.audio import FRAME_SECONDS

# If the loop falls further behind than this (a blocked loop, a suspended process), the pacer
# skips ahead instead of sending a burst of frames to catch up.
MAX_LAG_SECONDS = 0.2


class Pacer:
    """Ticks every `interval` seconds without drift (`interval` below 20 ms runs faster than
    real time, e.g. for an emulator clock scaled down in tests)."""

    def __init__(self, interval: float = FRAME_SECONDS) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.interval = interval
        self._next: float | None = None

    async def tick(self) -> int:
        """Wait for the next tick. Returns how many intervals it stands for: 1, or more
        after a lag the pacer skipped (timestamps should advance by that many frames)."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        if self._next is None:
            self._next = now  # the first frame goes out at once
        elif self._next > now:
            await asyncio.sleep(self._next - now)
        elif now - self._next > MAX_LAG_SECONDS:
            skipped = int((now - self._next) / self.interval)
            self._next += skipped * self.interval
            self._next += self.interval
            return 1 + skipped
        self._next += self.interval
        return 1
