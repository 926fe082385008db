"""The audio of one call leg, whatever carries it (WebRTC to a browser, a simulated phone).

Outbound is what Twilio sends to the leg's far party: clips queued by `play()` (<Say>, <Play>,
a beep) mixed with what a bridged leg's far party says. Inbound is what the far party says:
kept in a short history (levels, silence detection) and, while recording, in full.

A transport (an `RtcLeg`, a `PhoneAudio`) drives time: it pulls one outbound frame and pushes
one inbound frame every 20 ms. Nothing advances without one, so `play()` waits until a
transport has taken the clip's audio. Not thread-safe: use it on the event loop's thread.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from dataclasses import dataclass, field

from dialtone.emulator.media.audio import (
    FRAME_BYTES,
    FRAME_SECONDS,
    SILENCE_THRESHOLD,
    SILENT_FRAME,
    chunks,
    frames,
    mix,
    rms,
)

# Frames a bridged leg may queue for the other before the oldest are dropped: bounds the delay
# when the two transports' pacing drifts apart.
BRIDGE_BUFFER_FRAMES = 10


@dataclass(eq=False)
class _Clip:
    frames: deque[bytes]
    done: asyncio.Future[None]


@dataclass(eq=False)
class _SilenceWaiter:
    threshold: float
    needed: int  # consecutive quiet frames
    done: asyncio.Future[None]
    quiet: int = field(default=0)

    def feed(self, level: float) -> None:
        self.quiet = self.quiet + 1 if level < self.threshold else 0
        if self.quiet >= self.needed:
            _finish(self.done)


def _finish(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class LegAudio:
    def __init__(
        self,
        name: str = "",
        *,
        history_seconds: float = 10.0,
        max_recording_seconds: float = 4 * 3600,
    ) -> None:
        self.name = name
        self._clips: deque[_Clip] = deque()
        self._from_peer: deque[bytes] = deque(maxlen=BRIDGE_BUFFER_FRAMES)
        self._peer: LegAudio | None = None
        self._history: deque[bytes] = deque(maxlen=max(1, round(history_seconds / FRAME_SECONDS)))
        self._partial = b""
        self._recording: bytearray | None = None
        self._max_recording_bytes = round(max_recording_seconds / FRAME_SECONDS) * FRAME_BYTES
        self._waiters: list[_SilenceWaiter] = []
        self._closed = False
        self.frames_out = 0  # frames pulled by the transport
        self.frames_in = 0  # frames pushed by the transport

    def __repr__(self) -> str:
        return f"<LegAudio {self.name!r}>"

    @property
    def closed(self) -> bool:
        return self._closed

    # -- outbound -------------------------------------------------------------------------------

    @property
    def playing(self) -> bool:
        return any(not clip.done.done() for clip in self._clips)

    async def play(self, pcm: bytes) -> None:
        """Queue `pcm` after any clip already playing; return once the transport has taken its
        last frame (real time). Cancelled, the rest of the clip is dropped at once. Returns at
        once on a closed leg, and when the leg closes mid-clip."""
        if self._closed or not pcm:
            return
        clip = _Clip(deque(frames(pcm)), asyncio.get_running_loop().create_future())
        self._clips.append(clip)
        try:
            await clip.done
        finally:
            if clip in self._clips:
                self._clips.remove(clip)

    def next_outbound_frame(self) -> bytes:
        """The next 20 ms to send: clip audio mixed with bridged audio, else silence."""
        self.frames_out += 1
        spoken = self._next_clip_frame()
        bridged = self._from_peer.popleft() if self._from_peer else None
        if spoken is None:
            return bridged or SILENT_FRAME
        return spoken if bridged is None else mix(spoken, bridged)

    def _next_clip_frame(self) -> bytes | None:
        while self._clips:
            clip = self._clips[0]
            # A clip whose play() was cancelled is skipped even before its task runs again.
            if clip.done.done() or not clip.frames:
                self._clips.popleft()
                _finish(clip.done)
                continue
            frame = clip.frames.popleft()
            if not clip.frames:
                self._clips.popleft()
                _finish(clip.done)
            return frame
        return None

    # -- inbound --------------------------------------------------------------------------------

    def push_inbound(self, pcm: bytes) -> None:
        """What the far party said: any amount of PCM, split into 20 ms frames here."""
        if self._closed:
            return
        data = self._partial + pcm
        whole = len(data) - len(data) % FRAME_BYTES
        self._partial = data[whole:]
        for frame in chunks(data[:whole], FRAME_BYTES):
            self._inbound_frame(frame)

    def _inbound_frame(self, frame: bytes) -> None:
        self.frames_in += 1
        self._history.append(frame)
        if self._recording is not None and len(self._recording) < self._max_recording_bytes:
            self._recording += frame
        if self._peer is not None:
            self._peer._from_peer.append(frame)
        if self._waiters:
            level = rms(frame)
            for waiter in self._waiters:
                waiter.feed(level)

    def recent_inbound(self, seconds: float) -> bytes:
        """The last `seconds` of inbound audio (at most the history's length)."""
        count = min(len(self._history), math.ceil(seconds / FRAME_SECONDS - 1e-9))
        if count <= 0:
            return b""
        return b"".join(list(self._history)[-count:])

    def inbound_level(self, window_seconds: float = 0.3) -> float:
        """RMS (full scale 1.0) of the last `window_seconds` of inbound audio."""
        return rms(self.recent_inbound(window_seconds))

    @property
    def recording(self) -> bool:
        return self._recording is not None

    def start_recording(self) -> None:
        """Record inbound audio from now on (a recording already running starts over)."""
        self._recording = bytearray()

    def stop_recording(self) -> bytes:
        """The inbound audio since `start_recording()` (empty if none was running)."""
        recorded, self._recording = self._recording, None
        return bytes(recorded or b"")

    async def wait_for_silence(self, seconds: float, threshold: float = SILENCE_THRESHOLD) -> None:
        """Return once `seconds` of consecutive inbound frames, counted from now, were all below
        `threshold` (<Record timeout>). Time is counted in frames the transport pushes, so it
        follows the transport's pace. Returns at once when the leg is or becomes closed."""
        needed = math.ceil(seconds / FRAME_SECONDS - 1e-9)
        if needed <= 0 or self._closed:
            return
        waiter = _SilenceWaiter(threshold, needed, asyncio.get_running_loop().create_future())
        self._waiters.append(waiter)
        try:
            await waiter.done
        finally:
            self._waiters.remove(waiter)

    # -- bridging and lifecycle -----------------------------------------------------------------

    @property
    def bridged_to(self) -> LegAudio | None:
        return self._peer

    def close(self) -> None:
        """The leg is gone: pending `play()` and `wait_for_silence()` return, bridging ends,
        and later calls do nothing. A recording in progress can still be stopped."""
        self._closed = True
        unbridge(self)
        while self._clips:
            _finish(self._clips.popleft().done)
        for waiter in self._waiters:
            _finish(waiter.done)


def bridge(a: LegAudio, b: LegAudio) -> None:
    """Connect two legs both ways: from now on each one's inbound audio is also the other's
    outbound audio, mixed with any clip the other plays. A leg is bridged to at most one other
    leg; an existing bridge of either leg is ended first."""
    if a is b:
        raise ValueError("cannot bridge a leg to itself")
    if a.closed or b.closed:
        raise ValueError("cannot bridge a closed leg")
    unbridge(a)
    unbridge(b)
    a._peer, b._peer = b, a


def unbridge(leg: LegAudio) -> None:
    """End `leg`'s bridge, if any, in both directions; audio already queued is dropped."""
    peer = leg._peer
    if peer is None:
        return
    leg._peer = peer._peer = None
    leg._from_peer.clear()
    peer._from_peer.clear()
