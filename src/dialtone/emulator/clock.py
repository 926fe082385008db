"""Call time. Verbs take their real time (Say ≈ speech length, Pause = length); tests run
the same code on a scaled clock, where one emulated second lasts `scale` real seconds."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime


class Clock:
    def __init__(self, scale: float = 1.0) -> None:
        if scale <= 0:
            raise ValueError("clock scale must be positive")
        self.scale = scale
        self._real_start = time.monotonic()
        self._wall_start = datetime.now(UTC)

    def now(self) -> float:
        """Emulated seconds since the clock started."""
        return (time.monotonic() - self._real_start) / self.scale

    def utcnow(self) -> datetime:
        return self._wall_start + timedelta(seconds=self.now())

    def rfc2822(self, when: datetime | None = None) -> str:
        """Twilio's date format: `Sat, 21 Nov 2026 10:00:00 +0000`."""
        return format_datetime(when or self.utcnow()).replace("-0000", "+0000")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) * self.scale)

    def real(self, seconds: float) -> float:
        """Real seconds for `seconds` of emulated time (for asyncio timeouts)."""
        return max(0.0, seconds) * self.scale
