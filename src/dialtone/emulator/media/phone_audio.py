"""The audio side of a simulated external phone. There is no RTP: every 20 ms the phone takes
the leg's outbound frame (what it hears) and pushes its own speech, or silence, as the leg's
inbound audio (what it says)."""

from __future__ import annotations

import asyncio
from collections import deque

from dialtone.emulator.media.audio import FRAME_SECONDS, SILENT_FRAME, frames
from dialtone.emulator.media.leg_audio import LegAudio
from dialtone.emulator.media.pacer import Pacer


class PhoneAudio:
    """Drives `leg` as its transport. `frame_interval` is the real time one 20 ms frame takes:
    20 ms normally, `0.02 * scale` to follow an emulator clock scaled down in tests."""

    def __init__(
        self,
        leg: LegAudio,
        *,
        frame_interval: float = FRAME_SECONDS,
        max_heard_seconds: float = 600.0,
    ) -> None:
        self.leg = leg
        self.frame_interval = frame_interval
        self._heard: deque[bytes] = deque(maxlen=max(1, round(max_heard_seconds / FRAME_SECONDS)))
        self._speech: deque[tuple[deque[bytes], asyncio.Future[None]]] = deque()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"phone audio {self.leg.name}")

    async def stop(self) -> None:
        """Stop the phone's clock; speech not yet said is dropped (its `say()` futures end)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        while self._speech:
            _, done = self._speech.popleft()
            if not done.done():
                done.set_result(None)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def say(self, pcm: bytes) -> asyncio.Future[None]:
        """Say `pcm` after whatever the phone is still saying. The future completes once the
        last frame reached the leg; awaiting it is optional."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if pcm:
            self._speech.append((deque(frames(pcm)), done))
        else:
            done.set_result(None)
        return done

    @property
    def speaking(self) -> bool:
        return bool(self._speech)

    def heard(self) -> bytes:
        """What the phone heard since it started (the latest `max_heard_seconds`)."""
        return b"".join(self._heard)

    def clear_heard(self) -> None:
        self._heard.clear()

    def _next_speech_frame(self) -> bytes:
        if not self._speech:
            return SILENT_FRAME
        pending, done = self._speech[0]
        frame = pending.popleft()
        if not pending:
            self._speech.popleft()
            if not done.done():
                done.set_result(None)
        return frame

    async def _run(self) -> None:
        pacer = Pacer(self.frame_interval)
        while True:
            # After a lag the pacer skipped, the missed frames are all exchanged at once, so
            # the phone's audio keeps in step with its clock.
            for _ in range(await pacer.tick()):
                self._heard.append(self.leg.next_outbound_frame())
                self.leg.push_inbound(self._next_speech_frame())
