"""Benchmark: concurrent bridged calls with real audio through one emulator (issue 11, P5).

    .venv/bin/python bench/media_calls.py              # 10, 25, 50, 75, 100, … calls
    .venv/bin/python bench/media_calls.py --quick      # 10 and 50 calls, shorter windows
    .venv/bin/python bench/media_calls.py --calls 50 --calls 80 --window 30

Each call is two browser-free Voice SDK devices (a WebSocket client speaking the SDK's
signaling protocol, registered with a real access token, and an aiortc peer connection): device
`caller_i` calls out (`invite` with an SDP offer, as `device.connect({To: "callee_i"})`), the
TwiML App's voice URL answers `<Dial><Client>callee_i</Client></Dial>`, the emulator rings
`callee_i`, which answers, and the emulator bridges the two WebRTC legs. RTP (DTLS-SRTP, PCMU,
20 ms) flows over UDP on a non-loopback address from each device to the emulator and back out to
the other device, both ways.

Every 20 ms frame a device sends is tagged in its first samples (a sync pattern, the sender's id
and a frame counter, as signs of loud samples: they survive mu-law). The receiving device reads
the tags back, so a frame counts as delivered only if it crossed the whole path (device, the
emulator's receive leg, its bridge, its send leg, the other device) and arrived at the right
device. Over a steady window: frames sent, tagged frames delivered, loss per direction; RTP
packets received and lost (aiortc's inbound-rtp stats) at each device; the emulator's CPU time
(utime + stime from /proc, split by thread), resident memory, and the load generator's CPU.

The emulator (`dialtone emulator`, the console script, as a subprocess) is pinned to the first
CPU and this process (the load generator: all devices on one asyncio loop) to the second. A
fresh emulator serves each count. Counts step up until frames are lost (>= 1 %), the emulator's
CPU saturates, or the generator does (then the limit measured is the generator's, not the
emulator's: reported as such). Results: bench/results/media_calls.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import os
import platform
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
import processes
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from twilio.jwt.access_token import AccessToken
from twilio.jwt.access_token.grants import VoiceGrant
from websockets.asyncio.client import ClientConnection, connect

from dialtone.devcreds import development_values
from dialtone.emulator.media.addresses import first_non_loopback_ipv4
from dialtone.emulator.media.audio import FRAME_BYTES, FRAME_SAMPLES, SILENT_FRAME, tone
from dialtone.emulator.media.leg_audio import LegAudio
from dialtone.emulator.media.rtc import RtcLeg

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "media_calls.json"

APPLICATION_SID = "AP" + "5" * 32
FRAMES_PER_SECOND = 50
LOSS_LIMIT = 1.0  # percent, per direction (P5)
GOAL_CALLS = 50
CPU_SATURATED = 95.0  # percent of one core
SEND_RATE_FLOOR = 0.99  # frames sent / real time below this: the generator fell behind
SETUP_CONCURRENCY = 8
SETUP_TIMEOUT = 30.0
GRACE_SECONDS = 1.0  # after the window: frames still in flight arrive
DEFAULT_COUNTS = (10, 25, 50, 75, 100, 125, 150, 200)
QUICK_COUNTS = (10, 50)

# -- tagged audio ----------------------------------------------------------------------------
# A tag: 8 sync samples, 16 bits of sender id, 32 bits of frame counter, each bit the sign of a
# loud sample (mu-law keeps signs exactly). The rest of the frame is a 400 Hz tone (20 samples a
# period: the same in every frame), so the path carries audio, not silence.
TAG_AMPLITUDE = 8000
TAG_THRESHOLD = 2000
SYNC = (1, 0, 1, 1, 0, 0, 1, 0)
TAG_SAMPLES = len(SYNC) + 16 + 32
_TAG_FORMAT = f"<{TAG_SAMPLES}h"
_TONE_TAIL = tone(400, FRAME_SAMPLES / 8000, amplitude=0.3)[TAG_SAMPLES * 2 : FRAME_BYTES]


def tag_frame(source: int, counter: int) -> bytes:
    bits = list(SYNC)
    bits += [(source >> i) & 1 for i in range(16)]
    bits += [(counter >> i) & 1 for i in range(32)]
    values = [TAG_AMPLITUDE if bit else -TAG_AMPLITUDE for bit in bits]
    return struct.pack(_TAG_FORMAT, *values) + _TONE_TAIL


def read_tag(frame: bytes) -> tuple[int, int] | None:
    """(source, counter) of a tagged frame, None for anything else (silence, noise)."""
    values = struct.unpack_from(_TAG_FORMAT, frame)
    if any(abs(v) < TAG_THRESHOLD for v in values):
        return None
    bits = [1 if v > 0 else 0 for v in values]
    if tuple(bits[: len(SYNC)]) != SYNC:
        return None
    source = sum(bit << i for i, bit in enumerate(bits[8:24]))
    counter = sum(bit << i for i, bit in enumerate(bits[24:56]))
    return source, counter


class ProbeAudio(LegAudio):
    """A device's audio: sends tagged frames (its RtcLeg pulls one every 20 ms) and reads the
    tags of what it hears."""

    def __init__(self, source: int, expected_source: int) -> None:
        super().__init__(f"probe {source}")
        self.source = source
        self.expected_source = expected_source
        self.sent = 0  # counter of the next frame
        self.received: list[int] = []  # counters from the expected source, in arrival order
        self.frames_heard = 0
        self.untagged = 0  # silence the path filled in, or damaged frames
        self.misrouted = 0  # tagged by another device than the bridged one
        self._pending = b""

    def next_outbound_frame(self) -> bytes:
        frame = tag_frame(self.source, self.sent)
        self.sent += 1
        return frame

    def push_inbound(self, pcm: bytes) -> None:
        data = self._pending + pcm
        whole = len(data) - len(data) % FRAME_BYTES
        self._pending = data[whole:]
        for start in range(0, whole, FRAME_BYTES):
            frame = data[start : start + FRAME_BYTES]
            self.frames_heard += 1
            tag = read_tag(frame) if frame != SILENT_FRAME else None
            if tag is None:
                self.untagged += 1
            elif tag[0] != self.expected_source:
                self.misrouted += 1
            else:
                self.received.append(tag[1])


# -- machine facts ---------------------------------------------------------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def machine() -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_at_start": load_average(),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


def _cpu_model() -> str | None:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return None


def cpu_seconds(pid: int | str = "self") -> float:
    """utime + stime of a process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds of the event loop (the main thread) and of all other threads (aiortc's
    decoding threads, executor pools; Python 3.11 gives them no OS-level names to tell apart).
    Threads that ended during the window are missing: the process total is the reference."""
    kinds: Counter[str] = Counter()
    with contextlib.suppress(OSError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError):
                text = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
                fields = text.rsplit(")", 1)[1].split()
                seconds = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
                kinds["event_loop" if int(tid) == pid else "other_threads"] += seconds
    return dict(kinds)


def thread_count(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return 0


def rss_kib(pid: int | str) -> int | None:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return None


def cpu_busy() -> dict[str, tuple[int, int]]:
    """Per CPU: (busy, total) jiffies from /proc/stat, to see what else ran on each core."""
    out: dict[str, tuple[int, int]] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/stat").read_text().splitlines():
            name, *values = line.split()
            if name.startswith("cpu") and name != "cpu":
                numbers = [int(v) for v in values[:8]]
                idle = numbers[3] + numbers[4]
                out[name] = (sum(numbers) - idle, sum(numbers))
    return out


def busy_percent(before: dict, after: dict) -> dict[str, float]:
    result = {}
    for name, (busy, total) in after.items():
        if name in before and total > before[name][1]:
            result[name] = round(100 * (busy - before[name][0]) / (total - before[name][1]), 1)
    return result


def cpu_split() -> tuple[set[int] | None, set[int] | None]:
    """The emulator's CPU and the generator's: the first and the second when there are two."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except AttributeError:
        return None, None
    if len(cpus) < 2:
        return None, None
    return {cpus[0]}, {cpus[1]}


# -- the emulator process --------------------------------------------------------------------


def dialtone_command() -> list[str]:
    script = Path(sys.executable).with_name("dialtone")
    return [str(script)] if script.exists() else [sys.executable, "-m", "dialtone.cli"]


@dataclass
class Emulator:
    process: subprocess.Popen
    url: str
    signal_port: int
    cert: Path
    log: Path


def start_emulator(
    folder: Path, cpus: set[int] | None, address: str, voice_url: str, profile: Path | None
) -> Emulator:
    port, signal_port = free_port(), free_port()
    provision = folder / "provision.toml"
    provision.write_text(
        f'[[applications]]\nsid = "{APPLICATION_SID}"\nfriendly_name = "media bench"\n'
        f'voice_url = "{voice_url}"\n'
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TWILIO_", "DIALTONE_")) and k not in ("HTTP_PROXY", "HTTPS_PROXY")
    }
    env |= {"DIALTONE_DATA_DIR": str(folder / "data"), "NO_PROXY": "127.0.0.1,localhost"}
    command = dialtone_command()
    if profile is not None:  # the same CLI under cProfile
        command = [sys.executable, "-m", "cProfile", "-o", str(profile), "-m", "dialtone.cli"]
    command += ["emulator", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--signal-port", str(signal_port), "--media-address", address]
    command += ["--provision", str(provision)]
    log = folder / f"emulator-{port}.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            command,
            cwd=folder,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None,
        )
    emulator = Emulator(
        process, f"http://127.0.0.1:{port}", signal_port, folder / "data" / "emulator-cert.pem", log
    )
    creds = development_values()
    auth = (creds["TWILIO_ACCOUNT_SID"], creds["TWILIO_AUTH_TOKEN"])
    deadline = time.monotonic() + 60
    while True:
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{emulator.url}/emulator/health", auth=auth, timeout=2).is_success:
                # The signaling port opens with the REST one; wait for it too.
                with (
                    contextlib.suppress(OSError),
                    socket.create_connection(("127.0.0.1", signal_port), timeout=1),
                ):
                    return emulator
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"dialtone emulator did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)


def stop_emulator(emulator: Emulator) -> int | None:
    return processes.stop(emulator.process)


def log_problems(emulator: Emulator) -> list[str]:
    return processes.log_problems(emulator.log, width=300)


# -- devices ---------------------------------------------------------------------------------


class SignalingError(RuntimeError):
    pass


class Device:
    """A browser-free Voice SDK device: one WebSocket, one registered identity."""

    def __init__(self, identity: str, ws: ClientConnection) -> None:
        self.identity = identity
        self.ws = ws
        self.messages: asyncio.Queue[dict] = asyncio.Queue()
        self._reader = asyncio.create_task(self._read(), name=f"device {identity}")

    @classmethod
    async def register(cls, url: str, context: ssl.SSLContext, token: str, identity: str) -> Device:
        ws = await connect(url, ssl=context, max_size=2**22, ping_interval=None)
        device = cls(identity, ws)
        await device.send("listen", {"token": token, "browserinfo": {}})
        await device.expect("connected")
        await device.send("register", {"media": {"audio": True}})
        await device.expect("ready")
        return device

    async def _read(self) -> None:
        with contextlib.suppress(Exception):
            async for text in self.ws:
                if isinstance(text, str) and text.strip():
                    await self.messages.put(json.loads(text))
                else:
                    await self.ws.send("\n")  # the SDK echoes heartbeats

    async def send(self, kind: str, payload: dict) -> None:
        await self.ws.send(json.dumps({"type": kind, "version": "1.6", "payload": payload}))

    async def expect(self, kind: str, timeout: float = SETUP_TIMEOUT) -> dict:
        """The next message of `kind` (others, like `ringing`, are skipped); a hangup or an
        error first is a failure."""
        async with asyncio.timeout(timeout):
            while True:
                message = await self.messages.get()
                if message.get("type") == kind:
                    return message.get("payload") or {}
                if message.get("type") in ("hangup", "error", "cancel"):
                    raise SignalingError(f"{self.identity}: {json.dumps(message)[:300]}")

    async def close(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(Exception):
            await self.ws.close()


@dataclass
class BridgedCall:
    index: int
    caller: Device
    callee: Device
    caller_audio: ProbeAudio
    callee_audio: ProbeAudio
    caller_leg: RtcLeg | None = None
    callee_leg: RtcLeg | None = None
    call_sid: str | None = None

    @property
    def legs(self) -> list[RtcLeg]:
        return [leg for leg in (self.caller_leg, self.callee_leg) if leg is not None]


def token(identity: str) -> str:
    creds = development_values()
    grant = AccessToken(
        creds["TWILIO_ACCOUNT_SID"],
        creds["TWILIO_API_KEY"],
        creds["TWILIO_API_SECRET"],
        identity=identity,
        ttl=3600,
    )
    grant.add_grant(VoiceGrant(outgoing_application_sid=APPLICATION_SID, incoming_allow=True))
    return grant.to_jwt()


async def place(call: BridgedCall, address: str) -> None:
    """caller_i dials callee_i; callee_i answers; both peer connections connect."""
    call.caller_leg = RtcLeg(call.caller_audio, address)
    offer = await call.caller_leg.create_offer()
    temporary = f"TJS{uuid.uuid4()}"
    params = urlencode({"To": call.callee.identity})
    await call.caller.send(
        "invite", {"callsid": temporary, "sdp": offer, "twilio": {"params": params}}
    )

    async def callee_answers() -> None:
        invite = await call.callee.expect("invite")
        call.callee_leg = RtcLeg(call.callee_audio, address)
        answer = await call.callee_leg.accept_offer(str(invite["sdp"]))
        await call.callee.send("answer", {"callsid": invite["callsid"], "sdp": answer})

    async def caller_is_answered() -> None:
        answer = await call.caller.expect("answer")
        call.call_sid = str(answer["callsid"])
        assert call.caller_leg is not None
        await call.caller_leg.accept_answer(str(answer["sdp"]))

    await asyncio.gather(callee_answers(), caller_is_answered())
    for leg in call.legs:
        if not await leg.wait_connected(SETUP_TIMEOUT):
            raise SignalingError(f"call {call.index}: media {leg.state}")


async def hang_up(call: BridgedCall) -> None:
    with contextlib.suppress(Exception):
        if call.call_sid:
            await call.caller.send("hangup", {"callsid": call.call_sid})
    for leg in call.legs:
        with contextlib.suppress(Exception):
            await leg.close()


# -- one measurement -------------------------------------------------------------------------


@dataclass
class Snapshot:
    at: float
    sent: list[tuple[int, int]]  # per call: (caller sent, callee sent)
    heard: list[tuple[int, int, int, int]]  # per call: frames heard, untagged; caller, callee
    emulator_cpu: float
    emulator_threads_cpu: dict[str, float]
    generator_cpu: float
    cpus: dict[str, tuple[int, int]]
    rtp: dict[str, int] = field(default_factory=dict)


async def rtp_totals(calls: list[BridgedCall]) -> dict[str, int]:
    """inbound-rtp packetsReceived/packetsLost and outbound-rtp packetsSent over all devices."""
    totals: Counter[str] = Counter()
    for call in calls:
        for leg in call.legs:
            for report in (await leg.pc.getStats()).values():
                if report.type == "inbound-rtp":
                    totals["packets_received"] += report.packetsReceived
                    totals["packets_lost"] += report.packetsLost
                elif report.type == "outbound-rtp":
                    totals["packets_sent"] += report.packetsSent
    return dict(totals)


async def snapshot(calls: list[BridgedCall], pid: int) -> Snapshot:
    shot = Snapshot(
        at=time.monotonic(),
        sent=[(c.caller_audio.sent, c.callee_audio.sent) for c in calls],
        heard=[
            (
                c.caller_audio.frames_heard,
                c.caller_audio.untagged,
                c.callee_audio.frames_heard,
                c.callee_audio.untagged,
            )
            for c in calls
        ],
        emulator_cpu=cpu_seconds(pid),
        emulator_threads_cpu=thread_cpu(pid),
        generator_cpu=cpu_seconds(),
        cpus=cpu_busy(),
    )
    return shot


def delivered(received: list[int], first: int, end: int) -> int:
    """How many distinct counters in [first, end) arrived."""
    return len({c for c in received if first <= c < end})


class LoopLag:
    """The generator's own event loop: how late a 20 ms timer fires (it paces every frame)."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            planned = loop.time() + 0.02
            await asyncio.sleep(0.02)
            self.samples.append(max(0.0, loop.time() - planned))

    def stop(self) -> dict[str, float]:
        if self._task:
            self._task.cancel()
        ordered = sorted(self.samples) or [0.0]
        return {
            "p50_ms": round(1000 * ordered[len(ordered) // 2], 2),
            "p99_ms": round(1000 * ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 2),
            "max_ms": round(1000 * ordered[-1], 2),
        }


def percent(part: float, whole: float) -> float:
    return round(100 * part / whole, 3) if whole else 0.0


async def measure(
    count: int,
    emulator: Emulator,
    address: str,
    warmup: float,
    window: float,
) -> dict[str, Any]:
    pid = emulator.process.pid
    context = ssl.create_default_context(cafile=str(emulator.cert))
    url = f"wss://localhost:{emulator.signal_port}/signal"
    result: dict[str, Any] = {"calls": count}
    gate = asyncio.Semaphore(SETUP_CONCURRENCY)

    async def device(identity: str) -> Device:
        async with gate:
            return await Device.register(url, context, token(identity), identity)

    started = time.monotonic()
    callers = await asyncio.gather(*(device(f"caller_{i}") for i in range(count)))
    callees = await asyncio.gather(*(device(f"callee_{i}") for i in range(count)))
    calls = [
        BridgedCall(
            i, callers[i], callees[i], ProbeAudio(2 * i, 2 * i + 1), ProbeAudio(2 * i + 1, 2 * i)
        )
        for i in range(count)
    ]
    failures: list[str] = []

    async def setup(call: BridgedCall) -> None:
        async with gate:
            try:
                await place(call, address)
            except (SignalingError, TimeoutError) as exc:
                failures.append(f"{type(exc).__name__}: {exc}"[:300])

    lag = LoopLag()
    try:
        await asyncio.gather(*(setup(call) for call in calls))
        result["setup_s"] = round(time.monotonic() - started, 2)
        result["setup_failures"] = len(failures)
        result["setup_failure_examples"] = failures[:5]
        live = [c for c in calls if c.caller_leg and c.callee_leg and not failures]
        if failures:
            return result
        await asyncio.sleep(warmup)
        lag.start()
        before = await snapshot(live, pid)
        before.rtp = await rtp_totals(live)
        await asyncio.sleep(window)
        after = await snapshot(live, pid)
        after.rtp = await rtp_totals(live)
        emulator_threads = thread_count(pid)
        emulator_rss = rss_kib(pid)
        result["generator_loop_lag"] = lag.stop()
        await asyncio.sleep(GRACE_SECONDS)
    finally:
        lag.stop()
        await asyncio.gather(*(hang_up(call) for call in calls))
        await asyncio.gather(*(d.close() for d in [*callers, *callees]))

    elapsed = after.at - before.at
    expected_frames = count * elapsed * FRAMES_PER_SECOND
    directions = {}
    for name, receiver, index in (
        ("caller_to_callee", "callee_audio", 0),
        ("callee_to_caller", "caller_audio", 1),
    ):
        sent = lost = 0
        worst = 0.0
        for call, first, last in zip(live, before.sent, after.sent, strict=True):
            frames = last[index] - first[index]
            got = delivered(getattr(call, receiver).received, first[index], last[index])
            sent += frames
            lost += frames - got
            worst = max(worst, percent(frames - got, frames))
        heard_index = 2 if index == 0 else 0  # the receiving device's columns
        heard = sum(
            a[heard_index] - b[heard_index] for a, b in zip(after.heard, before.heard, strict=True)
        )
        untagged = sum(
            a[heard_index + 1] - b[heard_index + 1]
            for a, b in zip(after.heard, before.heard, strict=True)
        )
        directions[name] = {
            "frames_sent": sent,
            "frames_delivered": sent - lost,
            "frames_lost": lost,
            "loss_percent": percent(lost, sent),
            "worst_call_loss_percent": worst,
            "send_rate": round(sent / expected_frames, 4),  # 1.0 = real time
            "frames_heard": heard,
            "heard_rate": round(heard / expected_frames, 4),  # 1.0 = 50 frames/s, any audio
            "untagged_frames_heard": untagged,  # silence the emulator filled in
            "misrouted_frames": sum(getattr(c, receiver).misrouted for c in live),
        }
    rtp = {k: after.rtp.get(k, 0) - before.rtp.get(k, 0) for k in after.rtp}
    emulator_cpu = percent(after.emulator_cpu - before.emulator_cpu, elapsed)
    generator_cpu = percent(after.generator_cpu - before.generator_cpu, elapsed)
    threads_cpu = {
        kind: percent(
            after.emulator_threads_cpu.get(kind, 0) - before.emulator_threads_cpu.get(kind, 0),
            elapsed,
        )
        for kind in after.emulator_threads_cpu
    }
    loss = max(d["loss_percent"] for d in directions.values())
    send_rate = min(d["send_rate"] for d in directions.values())
    busy = busy_percent(before.cpus, after.cpus)
    lag_p50 = result["generator_loop_lag"]["p50_ms"]
    # A core counts as saturated by its own process or by anything else running on it (these
    # machines are shared); the generator also when its loop runs a frame late on average.
    emulator_saturated = emulator_cpu >= CPU_SATURATED or core_busy(busy, pid) >= CPU_SATURATED
    generator_saturated = (
        generator_cpu >= CPU_SATURATED
        or core_busy(busy, os.getpid()) >= CPU_SATURATED
        or lag_p50 >= 1000 / FRAMES_PER_SECOND
    )
    result |= {
        "window_s": round(elapsed, 2),
        "directions": directions,
        "loss_percent": loss,
        "rtp_devices": rtp
        | {
            "loss_percent": percent(
                rtp.get("packets_lost", 0),
                rtp.get("packets_received", 0) + rtp.get("packets_lost", 0),
            )
        },
        "emulator_cpu_percent": round(emulator_cpu, 1),
        "emulator_cpu_percent_per_call": round(emulator_cpu / count, 3),
        "emulator_cpu_by_thread_percent": {k: round(v, 1) for k, v in sorted(threads_cpu.items())},
        "emulator_threads": emulator_threads,
        "emulator_rss_kib": emulator_rss,
        "emulator_rss_kib_per_call": round((emulator_rss or 0) / count),
        "generator_cpu_percent": round(generator_cpu, 1),
        "generator_rss_kib": rss_kib("self"),
        "cpu_busy_percent": busy,
        "load_average": load_average(),
        # Carried: < 1 % lost, with the generator offering real-time audio.
        "carried": loss < LOSS_LIMIT and send_rate >= SEND_RATE_FLOOR,
        "send_rate": send_rate,
        "emulator_saturated": emulator_saturated,
        "generator_saturated": generator_saturated,
    }
    return result


# -- the run ---------------------------------------------------------------------------------


async def voice(request: Request) -> Response:
    """The TwiML App's voice URL: bridge the caller to the Client identity it dialled."""
    params = dict(parse_qsl((await request.body()).decode()))
    to = params.get("To", "")
    if not to.startswith("callee_"):
        return Response("<Response><Reject/></Response>", media_type="text/xml")
    return Response(
        f"<Response><Dial><Client>{to}</Client></Dial></Response>", media_type="text/xml"
    )


async def run(args: argparse.Namespace, folder: Path, cpus: set[int] | None) -> list[dict]:
    receiver_port = free_port()
    receiver = uvicorn.Server(
        uvicorn.Config(
            Starlette(routes=[Route("/voice", voice, methods=["POST"])]),
            host="127.0.0.1",
            port=receiver_port,
            log_level="warning",
            access_log=False,
        )
    )
    serving = asyncio.create_task(receiver.serve())
    while not receiver.started:
        await asyncio.sleep(0.05)
    voice_url = f"http://127.0.0.1:{receiver_port}/voice"
    steps: list[dict] = []
    try:
        for count in args.calls:
            profile = folder / f"profile-{count}.pstats" if args.profile else None
            emulator = await asyncio.to_thread(
                start_emulator, folder, cpus, args.address, voice_url, profile
            )
            try:
                step = await measure(count, emulator, args.address, args.warmup, args.window)
            finally:
                step_exit = await asyncio.to_thread(stop_emulator, emulator)
            step["emulator_exit_code"] = step_exit
            step["emulator_log_problems"] = log_problems(emulator)[:5]
            if profile is not None:
                step["profile"] = str(profile)
            steps.append(step)
            print(summary_line(step), flush=True)
            if not args.all and (step.get("setup_failures") or not step.get("carried")):
                break
    finally:
        receiver.should_exit = True
        await serving
    return steps


def core_busy(busy: dict[str, float], pid: int) -> float:
    """How busy the core `pid` is pinned to was (0 when it is not pinned to one)."""
    cpus = os.sched_getaffinity(pid)
    return busy.get(f"cpu{min(cpus)}", 0.0) if len(cpus) == 1 else 0.0


def limited_by(step: dict | None) -> str | None:
    """What the first count not carried ran out of."""
    if step is None:
        return None
    if step.get("setup_failures"):
        return "setup_failures"
    if step.get("send_rate", 1.0) < SEND_RATE_FLOOR:
        return "generator_fell_behind"  # it could not even send in real time
    emulator, generator = step.get("emulator_saturated"), step.get("generator_saturated")
    if emulator and generator:
        return "both_cores_saturated"
    if generator:
        return "generator_saturated"
    if emulator:
        return "emulator_saturated"
    return "frame_loss"


def summary_line(step: dict) -> str:
    if step.get("setup_failures"):
        examples = step["setup_failure_examples"][:1]
        return f"{step['calls']:4d} calls: {step['setup_failures']} set-ups failed: {examples}"
    d = step["directions"]
    return (
        f"{step['calls']:4d} calls: loss {d['caller_to_callee']['loss_percent']:.3f} % / "
        f"{d['callee_to_caller']['loss_percent']:.3f} %, "
        f"emulator CPU {step['emulator_cpu_percent']:.0f} % "
        f"({step['emulator_cpu_percent_per_call']:.2f} %/call, "
        f"by thread {step['emulator_cpu_by_thread_percent']}), "
        f"generator CPU {step['generator_cpu_percent']:.0f} %, send rate "
        f"{min(x['send_rate'] for x in d.values()):.3f}, RSS {step['emulator_rss_kib'] // 1024} MB"
        f"{'' if step['carried'] else '  NOT CARRIED'}"
        f"{'  (emulator core saturated)' if step['emulator_saturated'] else ''}"
        f"{'  (generator saturated)' if step['generator_saturated'] else ''}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, action="append", help="counts to step through")
    parser.add_argument("--window", type=float, help="steady window per count, s (default 15)")
    parser.add_argument("--warmup", type=float, default=3.0, help="s after set-up (default 3)")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_COUNTS} calls, 8 s windows")
    parser.add_argument("--all", action="store_true", help="measure every count, do not stop early")
    parser.add_argument("--address", help="media address (default: first non-loopback IPv4)")
    parser.add_argument("--profile", action="store_true", help="run the emulator under cProfile")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    args.calls = sorted(args.calls or (QUICK_COUNTS if args.quick else DEFAULT_COUNTS))
    args.window = args.window or (8.0 if args.quick else 15.0)
    args.address = args.address or first_non_loopback_ipv4()
    if args.address is None:
        print("WebRTC needs a non-loopback IPv4 address; this machine has none", file=sys.stderr)
        return 2

    emulator_cpus, generator_cpus = cpu_split()
    if generator_cpus:
        os.sched_setaffinity(0, generator_cpus)
    info = machine()
    folder = Path(tempfile.mkdtemp(prefix="dialtone-media-"))
    started = time.monotonic()
    steps = asyncio.run(run(args, folder, emulator_cpus))
    carried = [s["calls"] for s in steps if s.get("carried")]
    largest = max(carried, default=0)
    at_goal = next((s for s in steps if s["calls"] == GOAL_CALLS), None)
    limit = next((s for s in steps if not s.get("carried")), None)
    report = {
        "benchmark": "media_calls",
        "machine": info | {"load_average_at_end": load_average()},
        "config": {
            "call": "device caller_i -> emulator (TwiML App: <Dial><Client>callee_i</Client>) -> "
            "device callee_i; two WebRTC legs in the emulator, bridged; tagged PCMU audio both "
            "ways",
            "codec": "PCMU, 20 ms frames (50 per second each way)",
            "media_address": args.address,
            "emulator_cpus": sorted(emulator_cpus) if emulator_cpus else None,
            "generator_cpus": sorted(generator_cpus) if generator_cpus else None,
            "counts": args.calls,
            "warmup_s": args.warmup,
            "window_s": args.window,
            "loss_limit_percent": LOSS_LIMIT,
            "cpu_saturated_percent": CPU_SATURATED,
            "send_rate_floor": SEND_RATE_FLOOR,
            "wall_time_s": round(time.monotonic() - started, 1),
        },
        "steps": steps,
        "largest_carried": largest,
        "limited_by": limited_by(limit),
        "goal": {
            "calls": GOAL_CALLS,
            "loss_limit_percent": LOSS_LIMIT,
            "met": bool(at_goal and at_goal.get("carried")) or largest >= GOAL_CALLS,
            "verdict": "PASS" if largest >= GOAL_CALLS else "FAIL",
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(
        f"largest count carried with < {LOSS_LIMIT:g} % loss: {largest} "
        f"(limited by {report['limited_by']}); P5 (>= {GOAL_CALLS}): {report['goal']['verdict']}; "
        f"written to {args.out}"
    )
    if not args.profile:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
    else:
        print(f"profiles kept in {folder}")
    return 0 if largest >= GOAL_CALLS else 1


if __name__ == "__main__":
    sys.exit(main())
