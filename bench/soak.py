"""Soak: mixed load on one `dialtone dev` for minutes; memory must stay flat and nothing may
be lost.

    .venv/bin/python bench/soak.py               # 10 minutes
    .venv/bin/python bench/soak.py --minutes 3

The bench starts `dialtone dev` as a user does (the same CLI, as a subprocess) on free ports with
a temporary data folder and database, pinned to other CPUs than the load generator, and drives:

- token requests to the API server: the demo line's right password, and a few wrong ones a
  minute for a second line (401, or 429 once the sign-in throttle refuses them: both expected);
- signed webhooks sent straight to the API server (call_incoming, call_outgoing,
  status_callback, signed with twilio's RequestValidator and the dev account's auth token), and
  a few forged ones (403 expected);
- calls through the emulator's REST API (`POST /2010-04-01/Accounts/{sid}/Calls.json`, Basic
  auth) to the simulated external phone and to the demo line's Client identity, with every
  status callback event sent to a receiver the bench runs: each callback's signature is checked,
  and every expected callback must arrive exactly once (zero lost);
- phone calls into the demo number (`POST /emulator/calls`, Basic auth), which the API server
  answers with `<Dial><Client>`;
- a browser-free Voice SDK device: a WebSocket client speaking the SDK's signaling protocol,
  registered with the access token the API server issued. It answers (an aiortc SDP answer,
  held open while the call lasts) or rejects each invite and hangs up after a moment; it
  renews its token now and then, and a second device registers and leaves again (churn).

`dialtone dev` serves the API server and the emulator in one process, on one event loop, so
resident memory (`VmRSS` from /proc) is sampled for that one process every 10 s, with its
thread and open file counts and the emulator's call count. Pass: zero errors, zero lost
callbacks, and a memory slope under 1 MB/min: least squares over the samples after the
warm-up, which ends once the first 20 % of the run is over and the emulator's call history
is full (whichever is later; the JSON records when, and how the slope was computed).
Results: bench/results/soak.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import itertools
import json
import os
import platform
import secrets
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import processes
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from twilio.jwt.access_token import AccessToken
from twilio.jwt.access_token.grants import VoiceGrant
from twilio.request_validator import RequestValidator
from websockets.asyncio.client import ClientConnection, connect

from dialtone.devcreds import development_values

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "soak.json"

DEMO_NUMBER = "+815031234567"  # `dialtone dev`'s line, its Client identity and external phone
DEMO_NATIONAL = "050-3123-4567"
DEMO_CLIENT = "DeviceId_0001"
EXTERNAL = "+819059876543"
SECOND_NUMBER = "+815011112222"  # a second line, only ever given wrong passwords
SECOND_CLIENT = "SoakSecondLine"
CHURN_IDENTITY = "soak_churn"
API = "/2010-04-01"

# The emulator keeps this many ended calls (`dialtone dev --history-calls`): few, so the
# history is full within the warm-up and the slope shows whatever else would grow.
HISTORY_CALLS = 40
SAMPLE_EVERY = 10.0  # seconds between RSS samples
SAMPLE_READS = 5
WARMUP_SHARE = 0.2  # the first 20 % of the run is not in the slope
SLOPE_LIMIT = 1.0  # MB per minute
DRAIN_SECONDS = 90.0  # after the load: time for calls to end and callbacks to arrive
REQUEST_TIMEOUT = 30.0
MAX_IN_FLIGHT = 32  # per kind of load: a stalled server shows as errors, not a pile-up

# Seconds between two requests of each kind.
INTERVALS = {
    "token": 2.0,
    "token_wrong_password": 12.0,  # 5 a minute: the throttle's business, not the load's
    "webhook_call_incoming": 0.5,
    "webhook_call_outgoing": 0.5,
    "webhook_status_callback": 0.25,
    "webhook_forged": 5.0,
    "call_to_phone": 2.0,
    "call_to_device": 5.0,
    "call_into_number": 5.0,
    "device_churn": 15.0,
    "device_token_update": 120.0,
}
PHONE_TWIML = '<Response><Pause length="2"/></Response>'
DEVICE_TWIML = '<Response><Pause length="30"/></Response>'
CALLBACK_EVENTS = ("initiated", "ringing", "answered", "completed")
# Status callbacks a call sends, by its final status (all four events asked for).
EXPECTED_CALLBACKS = {"completed": 4, "busy": 3, "no-answer": 3, "canceled": 2, "failed": 2}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS (kB) and Threads of a process, from /proc (no psutil)."""
    values: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM", "Threads"):
            values[name] = int(rest.split()[0])
    return values


def open_files(pid: int) -> int | None:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def history_full_at(samples: list[dict[str, Any]], history_calls: int) -> float | None:
    """The first sample where the emulator holds `history_calls` calls (ended and live): its
    history is full, or within the few calls still up of full; None if never."""
    return next((s["t"] for s in samples if (s.get("emulator_calls") or 0) >= history_calls), None)


def warmup_end(samples: list[dict[str, Any]], seconds: float, history_calls: int) -> float:
    """The warm-up is the first WARMUP_SHARE of the run, and lasts at least until the history
    is full, so a history still filling never counts as growth."""
    return max(seconds * WARMUP_SHARE, history_full_at(samples, history_calls) or 0.0)


def slope_mb_per_min(samples: list[dict[str, Any]], key: str, since: float) -> float | None:
    """Least-squares slope of `key` (kB) over time (s) for samples at or after `since`."""
    points = [(s["t"], s[key]) for s in samples if s["t"] >= since and s.get(key) is not None]
    if len(points) < 3:
        return None
    fit = statistics.linear_regression([t for t, _ in points], [kb for _, kb in points])
    return round(fit.slope * 60 / 1024, 3)


def machine() -> dict[str, Any]:
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    return {
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_at_start": load,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


def cpu_split() -> tuple[set[int] | None, set[int] | None]:
    """CPUs for `dialtone dev` and for the load generator: disjoint when there are two or more."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return None, None
    if len(cpus) < 2:
        return None, None
    half = len(cpus) // 2
    return set(cpus[:half]), set(cpus[half:])


# -- the `dialtone dev` process ------------------------------------------------------------------


@dataclass
class Dev:
    folder: Path
    api_url: str
    emulator_url: str
    signal_port: int
    password: str
    process: subprocess.Popen | None = None
    log: Path | None = None

    @property
    def cert(self) -> Path:
        return self.folder / "data" / "emulator-cert.pem"


def dialtone_command() -> list[str]:
    """The `dialtone` a user runs: the console script beside this interpreter."""
    script = Path(sys.executable).with_name("dialtone")
    return [str(script)] if script.exists() else [sys.executable, "-m", "dialtone.cli"]


def dev_env(folder: Path) -> dict[str, str]:
    """This environment without any dialtone or Twilio settings: the dev defaults apply, and
    the database and certificate go to the temporary folder."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TWILIO_", "DIALTONE_")) and k not in ("HTTP_PROXY", "HTTPS_PROXY")
    }
    env["DIALTONE_DATA_DIR"] = str(folder / "data")
    env["NO_PROXY"] = "127.0.0.1,localhost"
    return env


def add_second_line(folder: Path, password: str) -> None:
    subprocess.run(
        [*dialtone_command(), "lines", "add", SECOND_NUMBER, SECOND_CLIENT, "--password-stdin"],
        input=password + "\n",
        text=True,
        cwd=folder,
        env=dev_env(folder),
        check=True,
        capture_output=True,
    )


def start_dev(folder: Path, cpus: set[int] | None, history_calls: int) -> Dev:
    port, emulator_port, signal_port = free_port(), free_port(), free_port()
    dev = Dev(
        folder=folder,
        api_url=f"http://127.0.0.1:{port}",
        emulator_url=f"http://127.0.0.1:{emulator_port}",
        signal_port=signal_port,
        password=secrets.token_urlsafe(12),
    )
    env = dev_env(folder) | {"DIALTONE_DEV_PASSWORD": dev.password}
    command = [*dialtone_command(), "dev", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--emulator-port", str(emulator_port), "--signal-port", str(signal_port)]
    command += ["--history-calls", str(history_calls)]
    dev.log = folder / "dev.log"
    with open(dev.log, "wb") as log:
        dev.process = subprocess.Popen(
            command,
            cwd=folder,  # the SQLite database goes here
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            # Set before exec, so every thread of the dev process inherits it.
            preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None,
        )
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"{dev.api_url}/healthz", timeout=2).status_code == 200:
                return dev  # the API server starts only once `dialtone setup` has run
        except httpx.TransportError:
            pass
        if dev.process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"dialtone dev did not start:\n{dev.log.read_text()[-3000:]}")
        time.sleep(0.2)


def stop_dev(dev: Dev) -> int | None:
    assert dev.process is not None
    return processes.stop(dev.process)


def dev_log_problems(dev: Dev) -> list[str]:
    """Error-level log lines and tracebacks of the dev process."""
    assert dev.log is not None
    return processes.log_problems(dev.log)


# -- bookkeeping -------------------------------------------------------------------------------


@dataclass
class Tally:
    counts: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)

    def ok(self, kind: str) -> None:
        self.counts[kind] += 1

    def error(self, kind: str, detail: str) -> None:
        self.errors[kind] += 1
        if len(self.examples) < 30:
            self.examples.append(f"{kind}: {detail[:300]}")


@dataclass
class Callbacks:
    """What the receiver got, per CallSid."""

    sequences: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    final: dict[str, str] = field(default_factory=dict)
    received: int = 0


# -- the load ----------------------------------------------------------------------------------


class Soak:
    def __init__(
        self, dev: Dev, minutes: float, tally: Tally, only: list[str] | None = None
    ) -> None:
        self.dev = dev
        self.only = set(only or INTERVALS)
        self.seconds = minutes * 60
        self.tally = tally
        creds = development_values()
        self.account_sid = creds["TWILIO_ACCOUNT_SID"]
        self.auth_token = creds["TWILIO_AUTH_TOKEN"]
        self.api_key = creds["TWILIO_API_KEY"]
        self.api_secret = creds["TWILIO_API_SECRET"]
        self.validator = RequestValidator(self.auth_token)
        self.callbacks = Callbacks()
        self.receiver_url = ""
        self.placed: dict[str, str] = {}  # REST CallSid → what it was ("phone" / "device")
        self.device_decisions: dict[str, str] = {}  # CallSid → "answer" / "reject"
        self.inbound: list[str] = []  # CallSids of calls into the demo number
        self.invites = 0
        self.samples: list[dict[str, Any]] = []
        self.started = 0.0
        self.stopping = asyncio.Event()
        self._sid = itertools.count()
        self._gates: dict[str, asyncio.Semaphore] = {}
        self._tasks: set[asyncio.Task] = set()
        self.http = httpx.AsyncClient(
            timeout=REQUEST_TIMEOUT,
            limits=httpx.Limits(max_connections=64, keepalive_expiry=1.0),
        )
        self.account = httpx.BasicAuth(self.account_sid, self.auth_token)

    # -- helpers --------------------------------------------------------------------------

    def call_sid(self) -> str:
        return "CA" + secrets.token_hex(16)

    def spawn(self, coroutine: Any) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def every(self, kind: str, action: Any) -> None:
        """Run `action` every INTERVALS[kind] seconds until the load stops, each run in its
        own task (a slow answer does not slow the rate), at most MAX_IN_FLIGHT at once."""
        gate = self._gates.setdefault(kind, asyncio.Semaphore(MAX_IN_FLIGHT))
        interval = INTERVALS[kind]
        next_at = time.monotonic() + interval * secrets.randbelow(1000) / 1000

        async def run() -> None:
            async with gate:
                try:
                    await action()
                except Exception as exc:
                    self.tally.error(kind, f"{type(exc).__name__}: {exc}")

        while not self.stopping.is_set():
            delay = next_at - time.monotonic()
            if delay > 0:
                try:
                    await asyncio.wait_for(self.stopping.wait(), delay)
                    return
                except TimeoutError:
                    pass
            next_at += interval
            if gate.locked():
                self.tally.error(kind, f"{MAX_IN_FLIGHT} requests still in flight")
                continue
            self.spawn(run())

    # -- the API server -----------------------------------------------------------------------

    async def token(self, number: str = DEMO_NATIONAL, password: str | None = None) -> dict:
        response = await self.http.post(
            f"{self.dev.api_url}/twilio/retrieve_capability_token",
            json={"twilioPhoneNumber": number, "password": password or self.dev.password},
        )
        if response.status_code != 200:
            raise RuntimeError(f"token {response.status_code}: {response.text[:200]}")
        return response.json()

    async def good_token(self) -> None:
        body = await self.token()
        if body.get("identity") != DEMO_CLIENT or not body.get("accessToken"):
            raise RuntimeError(f"unexpected token answer: {sorted(body)}")
        self.tally.ok("token")

    async def wrong_password(self) -> None:
        response = await self.http.post(
            f"{self.dev.api_url}/twilio/retrieve_capability_token",
            json={"twilioPhoneNumber": SECOND_NUMBER, "password": secrets.token_urlsafe(8)},
        )
        if response.status_code not in (401, 429):
            raise RuntimeError(f"wrong password answered {response.status_code}")
        self.tally.ok(f"token_wrong_password_{response.status_code}")

    async def webhook(self, name: str, params: dict[str, str], forged: bool = False) -> str:
        url = f"{self.dev.api_url}/twilio/{name}"
        signature = self.validator.compute_signature(url, params)
        if forged:
            signature = signature[:-4] + ("AAAA" if not signature.endswith("AAAA") else "BBBB")
        response = await self.http.post(
            url,
            data=params,
            headers={"X-Twilio-Signature": signature, "User-Agent": "TwilioProxy/1.1"},
        )
        expected = 403 if forged else 200
        if response.status_code != expected:
            raise RuntimeError(f"{name} answered {response.status_code}: {response.text[:200]}")
        return response.text

    def _call_params(self, **more: str) -> dict[str, str]:
        return {
            "AccountSid": self.account_sid,
            "CallSid": self.call_sid(),
            "ApiVersion": "2010-04-01",
            **more,
        }

    async def webhook_incoming(self) -> None:
        params = self._call_params(
            From=EXTERNAL, To=DEMO_NUMBER, CallStatus="ringing", Direction="inbound"
        )
        body = await self.webhook("retrieve_twiml/call_incoming", params)
        if f"<Client>{DEMO_CLIENT}</Client>" not in body.replace("\n", ""):
            raise RuntimeError(f"call_incoming TwiML does not ring the line: {body[:200]}")
        self.tally.ok("webhook_call_incoming")

    async def webhook_outgoing(self) -> None:
        params = self._call_params(
            From=f"client:{DEMO_CLIENT}",
            To="090-1234-5678",
            CallStatus="ringing",
            Direction="inbound",
            ApplicationSid="AP" + "0" * 32,
        )
        body = await self.webhook("retrieve_twiml/call_outgoing", params)
        if "+819012345678" not in body:
            raise RuntimeError(f"call_outgoing TwiML does not dial the number: {body[:200]}")
        self.tally.ok("webhook_call_outgoing")

    async def webhook_status(self) -> None:
        params = self._call_params(
            From=EXTERNAL,
            To=DEMO_NUMBER,
            CallStatus="completed",
            Direction="inbound",
            CallDuration="3",
            SequenceNumber="0",
            CallbackSource="call-progress-events",
            Timestamp=datetime.datetime.now(datetime.UTC).strftime("%a, %d %b %Y %H:%M:%S +0000"),
        )
        await self.webhook("status_callback", params)
        self.tally.ok("webhook_status_callback")

    async def webhook_forged(self) -> None:
        params = self._call_params(From=EXTERNAL, To=DEMO_NUMBER, CallStatus="ringing")
        await self.webhook("retrieve_twiml/call_incoming", params, forged=True)
        self.tally.ok("webhook_forged_403")

    # -- the emulator ---------------------------------------------------------------------------

    async def rest_call(self, kind: str, to: str, twiml: str) -> None:
        response = await self.http.post(
            f"{self.dev.emulator_url}{API}/Accounts/{self.account_sid}/Calls.json",
            auth=self.account,
            data={
                "From": DEMO_NUMBER,
                "To": to,
                "Twiml": twiml,
                "StatusCallback": f"{self.receiver_url}/status",
                "StatusCallbackEvent": list(CALLBACK_EVENTS),  # repeated, as twilio-python
            },
        )
        if response.status_code != 201:
            raise RuntimeError(f"Calls.json answered {response.status_code}: {response.text}")
        self.placed[response.json()["sid"]] = kind
        self.tally.ok(kind)

    async def call_to_phone(self) -> None:
        await self.rest_call("call_to_phone", EXTERNAL, PHONE_TWIML)

    async def call_to_device(self) -> None:
        await self.rest_call("call_to_device", f"client:{DEMO_CLIENT}", DEVICE_TWIML)

    async def call_into_number(self) -> None:
        response = await self.http.post(
            f"{self.dev.emulator_url}/emulator/calls",
            auth=self.account,
            data={"From": EXTERNAL, "To": DEMO_NUMBER},
        )
        if response.status_code != 201:
            raise RuntimeError(f"/emulator/calls answered {response.status_code}: {response.text}")
        self.inbound.append(response.json()["sid"])
        self.tally.ok("call_into_number")

    async def receive_status(self, request: Request) -> Response:
        body = (await request.body()).decode()
        params = dict(parse_qsl(body, keep_blank_values=True))
        url = f"{self.receiver_url}{request.url.path}"
        if not self.validator.validate(url, params, request.headers.get("x-twilio-signature", "")):
            self.tally.error("status_callback_signature", params.get("CallSid", "?"))
        sid = params.get("CallSid", "")
        self.callbacks.received += 1
        self.callbacks.sequences[sid].append(int(params.get("SequenceNumber", "-1")))
        if params.get("CallStatus") in EXPECTED_CALLBACKS:
            if sid in self.callbacks.final:
                self.tally.error("status_callback_repeated_final", sid)
            self.callbacks.final[sid] = params["CallStatus"]
        return Response("<Response/>", media_type="text/xml")

    # -- a Voice SDK device over signaling ----------------------------------------------------

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.dev.cert))

    async def _receive(self, ws: ClientConnection) -> dict:
        while True:
            text = await ws.recv()
            if isinstance(text, str) and text.strip():
                return json.loads(text)
            await ws.send("\n")  # the SDK echoes heartbeats

    async def _send(self, ws: ClientConnection, kind: str, payload: dict) -> None:
        await ws.send(json.dumps({"type": kind, "version": "1.6", "payload": payload}))

    async def _listen(self, ws: ClientConnection, token: str) -> None:
        await self._send(ws, "listen", {"token": token, "browserinfo": {}})
        connected = await asyncio.wait_for(self._receive(ws), 10)
        if connected["type"] != "connected":
            raise RuntimeError(f"listen answered {connected}")

    async def device(self) -> None:
        """The demo line's phone: registered with the API server's access token; answers
        three invites in four, rejects the fourth, hangs up after a moment."""
        url = f"wss://localhost:{self.dev.signal_port}/signal"
        token = (await self.token())["accessToken"]
        calls: dict[str, asyncio.Queue[str]] = {}
        async with connect(url, ssl=self.ssl_context(), max_size=2**22) as ws:
            await self._listen(ws, token)
            await self._send(ws, "register", {"media": {"audio": True}})
            ready = await asyncio.wait_for(self._receive(ws), 10)
            if ready["type"] != "ready":
                raise RuntimeError(f"register answered {ready}")
            self.tally.ok("device_registered")
            renew = asyncio.create_task(self._renew_tokens(ws))
            try:
                while True:
                    receiving = asyncio.ensure_future(self._receive(ws))
                    stop = asyncio.ensure_future(self.drained.wait())
                    done, _ = await asyncio.wait(
                        {receiving, stop}, return_when=asyncio.FIRST_COMPLETED
                    )
                    if stop in done:
                        receiving.cancel()
                        break
                    stop.cancel()
                    message = receiving.result()
                    kind, payload = message["type"], message.get("payload") or {}
                    callsid = str(payload.get("callsid", ""))
                    if kind == "invite":
                        self.invites += 1
                        calls[callsid] = asyncio.Queue()
                        self.spawn(self._take_call(ws, payload, calls))
                    elif kind in ("cancel", "hangup") and callsid in calls:
                        calls[callsid].put_nowait(kind)
                    elif kind == "connected":
                        self.tally.ok("device_token_update")
                    elif kind == "error":
                        self.tally.error("device_signaling", json.dumps(payload))
            finally:
                renew.cancel()

    async def _renew_tokens(self, ws: ClientConnection) -> None:
        """`device.updateToken()`: a fresh token from the API server on the same socket."""
        while True:
            await asyncio.sleep(INTERVALS["device_token_update"])
            token = (await self.token())["accessToken"]
            await self._send(ws, "listen", {"token": token, "browserinfo": {}})

    async def _take_call(
        self, ws: ClientConnection, invite: dict, calls: dict[str, asyncio.Queue[str]]
    ) -> None:
        from dialtone.emulator.media import LegAudio, NoMediaAddress, RtcLeg

        callsid = str(invite["callsid"])
        events = calls[callsid]
        answer = self.invites % 4 != 0
        self.device_decisions[callsid] = "answer" if answer else "reject"
        try:
            await asyncio.sleep(0.3 + secrets.randbelow(700) / 1000)  # it rings a moment
            if not events.empty():
                self.tally.ok("device_invite_canceled")
                return
            if not answer:
                await self._send(ws, "reject", {"callsid": callsid})
                self.tally.ok("device_rejected")
                return
            try:
                peer = RtcLeg(LegAudio("soak device"))
            except NoMediaAddress:
                peer = RtcLeg(LegAudio("soak device"), "127.0.0.1")
            try:
                sdp = await peer.accept_offer(str(invite["sdp"]))
                await self._send(ws, "answer", {"callsid": callsid, "sdp": sdp})
                self.tally.ok("device_answered")
                try:
                    ended = await asyncio.wait_for(events.get(), 1 + secrets.randbelow(2000) / 1000)
                    self.tally.ok(f"device_call_ended_by_{ended}")
                except TimeoutError:
                    await self._send(ws, "hangup", {"callsid": callsid})
                    self.tally.ok("device_hung_up")
            finally:
                await peer.close()
        finally:
            calls.pop(callsid, None)

    async def churn(self) -> None:
        """Another device comes, registers, and goes: sessions must not pile up."""
        grant = AccessToken(
            self.account_sid,
            self.api_key,
            self.api_secret,
            identity=CHURN_IDENTITY,
            ttl=600,
        )
        grant.add_grant(VoiceGrant(incoming_allow=True))
        url = f"wss://localhost:{self.dev.signal_port}/signal"
        async with connect(url, ssl=self.ssl_context()) as ws:
            await self._listen(ws, grant.to_jwt())
            await self._send(ws, "register", {"media": {"audio": True}})
            if (await asyncio.wait_for(self._receive(ws), 10))["type"] != "ready":
                raise RuntimeError("the churn device was not registered")
            await asyncio.sleep(1)
        self.tally.ok("device_churn")

    # -- sampling -----------------------------------------------------------------------------

    async def sample(self) -> None:
        assert self.dev.process is not None
        pid = self.dev.process.pid
        while True:
            # A few reads 0.2 s apart, the lowest kept: a password hash (scrypt takes 64 MB
            # for a moment) must not pass for growth. The highest is kept too.
            reads = []
            for _ in range(SAMPLE_READS):
                reads.append(proc_status(pid))
                await asyncio.sleep(0.2)
            status = min(reads, key=lambda r: r.get("VmRSS", 0))
            mine = proc_status(os.getpid())
            health: dict[str, Any] = {}
            try:
                answer = await self.http.get(
                    f"{self.dev.emulator_url}/emulator/health", auth=self.account
                )
                if answer.status_code == 200:
                    health = answer.json()
            except httpx.HTTPError:
                pass
            self.samples.append(
                {
                    "t": round(time.monotonic() - self.started, 1),
                    "rss_kib": status.get("VmRSS"),
                    "rss_max_kib": max(r.get("VmRSS", 0) for r in reads),
                    "threads": status.get("Threads"),
                    "open_files": open_files(pid),
                    "emulator_calls": health.get("calls"),
                    "emulator_live_calls": health.get("live_calls"),
                    "load_generator_rss_kib": mine.get("VmRSS"),
                }
            )
            try:
                await asyncio.wait_for(self.drained.wait(), SAMPLE_EVERY)
                return
            except TimeoutError:
                pass

    # -- the run ------------------------------------------------------------------------------

    async def run(self) -> None:
        self.drained = asyncio.Event()
        receiver_port = free_port()
        self.receiver_url = f"http://127.0.0.1:{receiver_port}"
        receiver = uvicorn.Server(
            uvicorn.Config(
                Starlette(routes=[Route("/status", self.receive_status, methods=["POST"])]),
                host="127.0.0.1",
                port=receiver_port,
                log_level="warning",
                access_log=False,
            )
        )
        serving = asyncio.create_task(receiver.serve())
        while not receiver.started:
            await asyncio.sleep(0.05)

        self.started = time.monotonic()
        sampler = asyncio.create_task(self.sample())
        device = asyncio.create_task(self.device())
        loads = {
            "token": self.good_token,
            "token_wrong_password": self.wrong_password,
            "webhook_call_incoming": self.webhook_incoming,
            "webhook_call_outgoing": self.webhook_outgoing,
            "webhook_status_callback": self.webhook_status,
            "webhook_forged": self.webhook_forged,
            "call_to_phone": self.call_to_phone,
            "call_to_device": self.call_to_device,
            "call_into_number": self.call_into_number,
            "device_churn": self.churn,
        }
        drivers = [
            asyncio.create_task(self.every(kind, action))
            for kind, action in loads.items()
            if kind in self.only
        ]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(device), self.seconds)
        if device.done() and device.exception() is not None:
            exc = device.exception()
            self.tally.error("device", f"{type(exc).__name__}: {exc}")
        self.stopping.set()
        await asyncio.gather(*drivers)
        # Drain: every call placed ends and reports, the device finishes what it holds.
        deadline = time.monotonic() + DRAIN_SECONDS
        while time.monotonic() < deadline and (
            self._tasks or set(self.placed) - set(self.callbacks.final)
        ):
            await asyncio.sleep(0.5)
        await asyncio.sleep(2)  # stragglers: a callback delivered twice would show now
        self.drained.set()
        await asyncio.gather(device, sampler, return_exceptions=True)
        await self.check_inbound_calls()
        receiver.should_exit = True
        await serving
        await self.http.aclose()

    async def check_inbound_calls(self) -> None:
        """Every call into the demo number ended (answered, rejected or never answered by the
        device: completed); one pruned from the history answers 404, which is fine."""
        for sid in self.inbound:
            response = await self.http.get(
                f"{self.dev.emulator_url}{API}/Accounts/{self.account_sid}/Calls/{sid}.json",
                auth=self.account,
            )
            if response.status_code == 404:
                self.tally.ok("call_into_number_pruned")
            elif response.status_code != 200 or response.json()["status"] != "completed":
                self.tally.error("call_into_number", f"{sid}: {response.text[:200]}")

    def lost_callbacks(self) -> tuple[int, dict[str, int]]:
        """Callbacks missing for the REST calls: by their final status, and gaps in their
        SequenceNumbers; plus device calls that ended otherwise than the device chose."""
        lost = 0
        finals: Counter[str] = Counter()
        for sid, kind in self.placed.items():
            final = self.callbacks.final.get(sid)
            sequences = sorted(self.callbacks.sequences.get(sid, []))
            if final is None:
                lost += max(1, EXPECTED_CALLBACKS["completed"] - len(sequences))
                finals["(none)"] += 1
                continue
            finals[final] += 1
            expected = EXPECTED_CALLBACKS[final]
            lost += max(0, expected - len(set(sequences)))
            if sequences != list(range(len(sequences))):
                self.tally.error("status_callback_sequence", f"{sid}: {sequences}")
            if kind == "call_to_device":
                decision = self.device_decisions.get(sid)
                wanted = {"answer": "completed", "reject": "busy"}.get(decision or "", "?")
                if final != wanted:
                    self.tally.error("call_to_device", f"{sid}: {decision} but {final}")
        return lost, dict(finals)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="how long (default 10)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the JSON goes")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument(
        "--history-calls",
        type=int,
        default=HISTORY_CALLS,
        help=f"`dialtone dev --history-calls` (default {HISTORY_CALLS}: full within the warm-up)",
    )
    parser.add_argument(
        "--only", action="append", choices=sorted(INTERVALS), help="run only these loads"
    )
    args = parser.parse_args()

    dev_cpus, load_cpus = cpu_split()
    if load_cpus:
        os.sched_setaffinity(0, load_cpus)
    folder = Path(tempfile.mkdtemp(prefix="dialtone-soak-"))
    tally = Tally()
    info = machine()
    second_password = secrets.token_urlsafe(12)
    add_second_line(folder, second_password)
    dev = start_dev(folder, dev_cpus, args.history_calls)
    print(
        f"dialtone dev (pid {dev.process.pid if dev.process else '?'}) on {dev.api_url}, "
        f"emulator {dev.emulator_url}; {args.minutes:g} min of load…",
        flush=True,
    )
    soak = Soak(dev, args.minutes, tally, args.only)
    try:
        asyncio.run(soak.run())
    finally:
        exit_code = stop_dev(dev)
    problems = dev_log_problems(dev)
    for line in problems:
        tally.error("dev_log", line)
    lost, finals = soak.lost_callbacks()

    since = warmup_end(soak.samples, soak.seconds, args.history_calls)
    slope = slope_mb_per_min(soak.samples, "rss_kib", since)
    steady = [s["rss_kib"] for s in soak.samples if s["t"] >= since and s.get("rss_kib")]
    passed = (
        sum(tally.errors.values()) == 0
        and lost == 0
        and slope is not None
        and slope < SLOPE_LIMIT
        and exit_code == 0
    )
    report = {
        "benchmark": "soak",
        "machine": info,
        "config": {
            "minutes": args.minutes,
            "history_calls": args.history_calls,
            "loads": sorted(soak.only),
            "intervals_s": INTERVALS,
            "sample_every_s": SAMPLE_EVERY,
            "warmup_share": WARMUP_SHARE,
            "slope_method": "least-squares slope of rss_kib (the lowest of "
            f"{SAMPLE_READS} reads 0.2 s apart) against t, over every sample with t >= "
            "warmup_end_s; warmup_end_s = the later of warmup_share of the run and "
            "history_full_at_s (the first sample with emulator_calls >= history_calls)",
            "slope_limit_mb_per_min": SLOPE_LIMIT,
            "dev_cpus": sorted(dev_cpus) if dev_cpus else None,
            "load_generator_cpus": sorted(load_cpus) if load_cpus else None,
            "processes": "dialtone dev serves the API server and the emulator in one process "
            "(one event loop): its RSS is sampled as both",
        },
        "counts": dict(sorted(tally.counts.items())),
        "errors": dict(tally.errors),
        "error_count": sum(tally.errors.values()),
        "error_examples": tally.examples,
        "calls_placed": len(soak.placed),
        "calls_into_number": len(soak.inbound),
        "device_invites": soak.invites,
        "status_callbacks_received": soak.callbacks.received,
        "final_statuses": finals,
        "lost_callbacks": lost,
        "dev_exit_code": exit_code,
        "rss_samples": soak.samples,
        "warmup_end_s": since,
        "history_full_at_s": history_full_at(soak.samples, args.history_calls),
        "steady_samples": len(steady),
        "steady_rss_kib": (
            {"first": steady[0], "last": steady[-1], "min": min(steady), "max": max(steady)}
            if steady
            else None
        ),
        "slope_mb_per_min": {"dialtone dev (API server + emulator)": slope},
        "load_generator_slope_mb_per_min": slope_mb_per_min(
            soak.samples, "load_generator_rss_kib", since
        ),
        "pass": passed,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    first = soak.samples[0]["rss_kib"] if soak.samples else None
    last = soak.samples[-1]["rss_kib"] if soak.samples else None
    print(
        f"counts: {dict(sorted(tally.counts.items()))}\n"
        f"errors: {dict(tally.errors) or 0}  lost callbacks: {lost}  "
        f"callbacks received: {soak.callbacks.received}\n"
        f"RSS {first} → {last} KiB over {len(soak.samples)} samples; slope after the warm-up "
        f"(t >= {since:g} s, {len(steady)} samples) {slope} MB/min (limit {SLOPE_LIMIT})\n"
        f"{'PASS' if passed else 'FAIL'}; written to {args.out}"
    )
    for example in tally.examples[:10]:
        print("  " + example)
    if args.keep:
        print(f"kept {folder}")
    else:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
