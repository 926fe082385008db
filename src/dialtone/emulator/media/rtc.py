"""WebRTC to a browser's Voice SDK with aiortc: the emulator is the far end of the peer
connection and carries one `LegAudio` (reference voice-sdk-signaling.md §12).

Outgoing calls: the browser offers, `accept_offer()` answers. Incoming calls: `create_offer()`,
then `accept_answer()`. No trickle ICE: the SDP returned holds every candidate. Everything
runs on the event loop that created the `RtcLeg`; `close()` it to release its sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import re
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpCodecCapability,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc import sdp as aiortc_sdp
from aiortc.mediastreams import MediaStreamError
from av.audio.frame import AudioFrame
from av.packet import Packet

from dialtone.emulator.media import g711
from dialtone.emulator.media.addresses import first_non_loopback_ipv4
from dialtone.emulator.media.audio import FRAME_SAMPLES, RATE, SILENT_FRAME, Resampler, silence
from dialtone.emulator.media.leg_audio import LegAudio
from dialtone.emulator.media.pacer import Pacer

log = logging.getLogger("dialtone.emulator.media")

TIME_BASE = Fraction(1, RATE)
# PCMU first: the SDK's own preference, and no resampling here. Opus for browsers that drop it.
PREFERRED_CODECS = ("audio/PCMU", "audio/opus")
# No inbound audio for this long (not yet connected, a stalled peer) counts as that much silence,
# so inbound time keeps running for silence detection and recordings.
INBOUND_GAP_SECONDS = 0.1
_END_OF_CANDIDATES = re.compile(r"^a=end-of-candidates\r?\n", re.MULTILINE)
# A closed aiortc peer connection is a web of reference cycles (event-emitter callbacks, tasks
# whose exceptions hold their frames), so reference counting never frees it, and it holds
# about 170 KB of native memory (DTLS and SRTP sessions, codec and resampler state). Python's
# full collection runs rarely on a large heap (after a hundred legs or more in `dialtone dev`,
# 15-20 MB), so run it after every COLLECT_AFTER closed legs instead: a few MB at most, for one
# full collection (tens of ms) per batch.
COLLECT_AFTER = 16


class NoMediaAddress(RuntimeError):
    """No non-loopback IPv4 address to carry WebRTC media on."""


@dataclass(frozen=True)
class RtcStats:
    packets_sent: int  # RTP packets (outbound-rtp)
    bytes_sent: int  # RTP payload bytes (outbound-rtp)
    packets_received: int  # RTP packets (inbound-rtp)
    transport_bytes_sent: int  # all bytes on the ICE transport: RTP, RTCP, DTLS, STUN
    transport_bytes_received: int
    frames_sent: int  # 20 ms frames taken from the LegAudio
    frames_received: int  # decoded frames from the remote track
    codec: str | None  # negotiated, e.g. "audio/PCMU"


def clean_remote_sdp(sdp: str) -> str:
    """The browser's SDP has no candidates (no trickle ICE): drop `a=end-of-candidates`, which
    would make aioice give up before the browser's checks reveal it as a peer-reflexive
    candidate. SDP with candidates keeps it, so a real failure is still reported."""
    if "a=candidate:" in sdp:
        return sdp
    return _END_OF_CANDIDATES.sub("", sdp)


class LegAudioTrack(MediaStreamTrack):
    """The audio sent to the browser: one `LegAudio` outbound frame every 20 ms, real time.

    With G.711 negotiated (`codec`), frames leave already encoded, as packets: aiortc then only
    packs them, where a raw frame would be encoded on an executor thread (a thread hop per
    frame) and measured for its audio level in Python. Other codecs get raw frames."""

    kind = "audio"

    def __init__(self, audio: LegAudio) -> None:
        super().__init__()
        self._audio = audio
        self._pacer = Pacer()
        self._pts = 0
        self.frames_sent = 0
        self.codec: str | None = None  # the codec the sender sends with, once negotiated
        self._silent_payload: tuple[str, bytes] | None = None

    async def recv(self) -> AudioFrame | Packet:
        if self.readyState != "live":
            raise MediaStreamError
        ticks = await self._pacer.tick()
        # After a skipped lag, timestamps jump with real time so the receiver sees a gap.
        self._pts += (ticks - 1) * FRAME_SAMPLES
        pcm = self._audio.next_outbound_frame()
        data: AudioFrame | Packet
        if g711.supported(self.codec):
            data = Packet(self._encode(pcm, str(self.codec)))
        else:
            data = AudioFrame(format="s16", layout="mono", samples=FRAME_SAMPLES)
            data.planes[0].update(pcm)
            data.sample_rate = RATE
        data.time_base = TIME_BASE
        data.pts = self._pts
        self._pts += FRAME_SAMPLES
        self.frames_sent += 1
        return data

    def _encode(self, pcm: bytes, codec: str) -> bytes:
        if pcm is not SILENT_FRAME and pcm != SILENT_FRAME:
            return g711.encode(pcm, codec)
        # Most frames of most calls are silence: encoded once per leg.
        if self._silent_payload is None or self._silent_payload[0] != codec:
            self._silent_payload = (codec, g711.encode(SILENT_FRAME, codec))
        return self._silent_payload[1]


class _LoopDecoder:
    """Stands in for an aiortc receiver's decoder queue (aiortc 1.16.0). aiortc hands every
    encoded frame to a decoding thread of the receiver's own and back to the loop, two thread
    hops per 20 ms frame per leg; G.711 frames are decoded here instead, on the loop, and go
    straight to `deliver`. Anything else (Opus, the stop signal) still goes to the thread,
    which reads the original queue through `get()`."""

    def __init__(self, queue: Any, deliver: Callable[[bytes], None]) -> None:
        self._queue = queue
        self._deliver = deliver

    def put(self, item: Any) -> None:
        if item is not None:
            codec, encoded = item
            if g711.supported(codec.name):
                self._deliver(g711.decode(encoded.data, codec.name))
                return
        self._queue.put(item)

    def get(self, *args: Any, **kwargs: Any) -> Any:
        return self._queue.get(*args, **kwargs)


_DECODER_QUEUE = "_RTCRtpReceiver__decoder_queue"


def _decode_on_loop(receiver: Any, deliver: Callable[[bytes], None]) -> None:
    """Decode `receiver`'s G.711 on the loop (`_LoopDecoder`); must run before it starts."""
    queue = getattr(receiver, _DECODER_QUEUE, None)
    if queue is None:
        raise RuntimeError("aiortc internals changed: no receiver decoder queue to replace")
    setattr(receiver, _DECODER_QUEUE, _LoopDecoder(queue, deliver))


def _usable(address: str) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((address, 0))
        except OSError:
            return False
    return True


def _restrict_host_candidates(transceiver: RTCRtpTransceiver, address: str) -> None:
    """Gather ICE host candidates on `address` only.

    aioice's `Connection.gather_candidates()` lists every interface (`get_host_addresses()`, a
    module function with no parameter for this) and hands the list to the connection's own
    `get_component_candidates(component=, addresses=)`. Replacing that method on this one
    connection object narrows the list without touching aioice globally; it is reached
    through the gatherer's private `_connection` (aiortc 1.16.0 / aioice 0.13.0). Must run
    before `setLocalDescription()`, which gathers.
    """
    gatherer = transceiver.sender.transport.transport.iceGatherer
    connection = getattr(gatherer, "_connection", None)
    original = getattr(connection, "get_component_candidates", None)
    if original is None:
        raise RuntimeError("aiortc/aioice internals changed: cannot restrict ICE candidates")
    if getattr(original, "dialtone_address", None) == address:
        return

    async def gather_on_address(**kwargs: Any) -> Any:
        return await original(**{**kwargs, "addresses": [address]})

    gather_on_address.dialtone_address = address  # type: ignore[attr-defined]
    connection.get_component_candidates = gather_on_address  # type: ignore[union-attr]


def _codec_preferences(codecs: Sequence[str]) -> list[RTCRtpCodecCapability]:
    capabilities = RTCRtpSender.getCapabilities("audio").codecs
    preferred = [c for name in codecs for c in capabilities if c.mimeType.lower() == name.lower()]
    if not preferred:
        raise ValueError(f"no codec aiortc supports among {list(codecs)}")
    return preferred


def _first_codec(answer_sdp: str) -> str | None:
    """The codec both sides send with: the first one in the answer."""
    description = aiortc_sdp.SessionDescription.parse(answer_sdp)
    for media in description.media:
        if media.kind == "audio" and media.rtp.codecs:
            return media.rtp.codecs[0].mimeType
    return None


class _Collector:
    """Counts closed legs and runs the cyclic garbage collector every `COLLECT_AFTER`."""

    closed = 0
    collections = 0

    @classmethod
    def leg_closed(cls) -> None:
        cls.closed += 1
        if cls.closed % COLLECT_AFTER == 0:
            # Soon, not now: the leg being closed is still referenced by its caller.
            asyncio.get_running_loop().call_soon(cls.collect)

    @classmethod
    def collect(cls) -> None:
        cls.collections += 1
        gc.collect()


class RtcLeg:
    """One browser leg's peer connection, bound to one local IPv4 `address` (default: the
    machine's first non-loopback one). `codecs` are offered or accepted in that order (the
    first one both sides have is used). `on_state` hears every connection state change
    ("connecting", "connected", "failed", "closed")."""

    def __init__(
        self,
        audio: LegAudio,
        address: str | None = None,
        *,
        codecs: Sequence[str] = PREFERRED_CODECS,
        on_state: Callable[[str], None] | None = None,
    ) -> None:
        address = address or first_non_loopback_ipv4()
        if address is None:
            raise NoMediaAddress(
                "WebRTC media needs a non-loopback IPv4 address (browsers gather no loopback "
                "candidates) and this machine has none"
            )
        if not _usable(address):
            raise NoMediaAddress(f"cannot bind a UDP socket to {address}")
        preferences = _codec_preferences(codecs)
        self.audio = audio
        self.address = address
        self._on_state = on_state
        # iceServers=[]: with None, aiortc would add Google's STUN server.
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.track = LegAudioTrack(audio)
        self._transceiver = self.pc.addTransceiver(self.track, direction="sendrecv")
        self._transceiver.setCodecPreferences(preferences)
        _decode_on_loop(self._transceiver.receiver, self._deliver)
        self._consumer: asyncio.Task[None] | None = None
        self._gaps: asyncio.Task[None] | None = None
        self._last_inbound = 0.0
        self._frames_received = 0
        self._answer_sdp: str | None = None
        self._settled = asyncio.Event()
        self._closed = False
        self.pc.on("track", self._on_track)
        self.pc.on("connectionstatechange", self._on_connection_state)

    @property
    def state(self) -> str:
        return self.pc.connectionState

    # -- negotiation ----------------------------------------------------------------------------

    async def accept_offer(self, offer_sdp: str) -> str:
        """Answer the browser's offer (outgoing calls); returns the answer SDP."""
        await self.pc.setRemoteDescription(
            RTCSessionDescription(sdp=clean_remote_sdp(offer_sdp), type="offer")
        )
        self.track.codec = self._sending_codec()
        _restrict_host_candidates(self._transceiver, self.address)
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        self._answer_sdp = self.pc.localDescription.sdp
        return self._answer_sdp

    async def create_offer(self) -> str:
        """Offer to the browser (incoming calls); gathering is complete when this returns,
        so the SDP carries the candidates."""
        _restrict_host_candidates(self._transceiver, self.address)
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return self.pc.localDescription.sdp

    async def accept_answer(self, answer_sdp: str) -> None:
        """The browser's answer to `create_offer()`."""
        cleaned = clean_remote_sdp(answer_sdp)
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=cleaned, type="answer"))
        self.track.codec = self._sending_codec()
        self._answer_sdp = cleaned

    def _sending_codec(self) -> str | None:
        """The codec the sender will use: aiortc sends with the first negotiated one."""
        codecs = getattr(self._transceiver, "_codecs", None)
        return codecs[0].name if codecs else None

    async def wait_connected(self, timeout: float) -> bool:
        """True once media is connected; False if it failed, closed or took over `timeout`."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._settled.wait(), timeout)
        return self.state == "connected"

    # -- media ----------------------------------------------------------------------------------

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio" and self._consumer is None:
            self._last_inbound = asyncio.get_running_loop().time()
            self._consumer = asyncio.create_task(self._consume(track), name="rtc inbound audio")
            self._gaps = asyncio.create_task(self._fill_gaps(), name="rtc inbound gaps")

    def _deliver(self, pcm: bytes) -> None:
        """Inbound audio, decoded: from the track (Opus) or straight from the receiver (G.711,
        `_LoopDecoder`)."""
        self._frames_received += 1
        self._last_inbound = asyncio.get_running_loop().time()
        self.audio.push_inbound(pcm)

    async def _consume(self, track: MediaStreamTrack) -> None:
        """Frames aiortc decoded on its thread (G.711 never reaches the track)."""
        resampler = Resampler()
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            frame.pts = None  # the resampler needs no timestamps; gaps are filled apart
            self._deliver(resampler.convert(frame))

    async def _fill_gaps(self) -> None:
        """Every INBOUND_GAP_SECONDS without inbound audio counts as that much silence."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(INBOUND_GAP_SECONDS)
            if loop.time() - self._last_inbound >= INBOUND_GAP_SECONDS:
                self.audio.push_inbound(silence(INBOUND_GAP_SECONDS))

    def _on_connection_state(self) -> None:
        state = self.pc.connectionState
        log.debug("rtc %s: %s", self.audio.name, state)
        if state in ("connected", "failed", "closed"):
            self._settled.set()
        if self._on_state is not None:
            self._on_state(state)

    async def stats(self) -> RtcStats:
        packets_sent = bytes_sent = packets_received = transport_sent = transport_received = 0
        for report in (await self.pc.getStats()).values():
            if report.type == "outbound-rtp":
                packets_sent, bytes_sent = report.packetsSent, report.bytesSent
            elif report.type == "inbound-rtp":
                packets_received = report.packetsReceived
            elif report.type == "transport":
                transport_sent, transport_received = report.bytesSent, report.bytesReceived
        return RtcStats(
            packets_sent=packets_sent,
            bytes_sent=bytes_sent,
            packets_received=packets_received,
            transport_bytes_sent=transport_sent,
            transport_bytes_received=transport_received,
            frames_sent=self.track.frames_sent,
            frames_received=self._frames_received,
            codec=_first_codec(self._answer_sdp) if self._answer_sdp else None,
        )

    async def close(self) -> None:
        """Close the peer connection (sockets, tasks). The `LegAudio` stays open: it belongs
        to the call, which closes it."""
        if not self._closed:
            self._closed = True
            _Collector.leg_closed()
        await self.pc.close()
        self.track.stop()
        tasks = [task for task in (self._consumer, self._gaps) if task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._settled.set()
