"""Fixtures for the emulator: the emulator itself on loopback, and a webhook app of the test's own
that records every request Twilio's side makes and answers with what the test sets."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from twilio.rest import Client

from dialtone.emulator.app import create_app
from dialtone.emulator.config import Credentials, EmulatorConfig
from dialtone.emulator.switch import Switch
from tests.conftest import running

# One emulated second lasts 20 ms: a 30 s <Dial> timeout takes 0.6 s of test time.
CLOCK_SCALE = 0.02
TWILIO_NUMBER = "+815031234567"
EXTERNAL_NUMBER = "+819059876543"
FINAL = ("completed", "busy", "failed", "no-answer", "canceled")


@dataclass
class Received:
    method: str
    path: str
    url: str
    headers: dict[str, str]
    params: list[tuple[str, str]]  # form body (POST) or query (GET), in order, blanks kept

    @property
    def form(self) -> dict[str, str]:
        return dict(self.params)


Answer = str | tuple[int, str, str] | Callable[[Received], "str | tuple[int, str, str]"]


@dataclass
class Hooks:
    """The application under test: answers TwiML per path and records every request."""

    base_url: str = ""
    answers: dict[str, Answer] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    delays: dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return self.base_url + path

    def on(self, path: str, answer: Answer, delay: float = 0.0) -> str:
        """Answer `path` with TwiML (text/xml), or (status, content type, body), or a function."""
        self.answers[path] = answer
        self.delays[path] = delay
        return self.url(path)

    def requests(self, path: str | None = None) -> list[Received]:
        with self.lock:
            return [r for r in self.received if path is None or r.path == path]

    def wait(self, path: str, count: int = 1, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.requests(path)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"expected {count} request(s) to {path}, got {len(self.requests(path))}: "
                    f"{[r.path for r in self.requests()]}"
                )
            time.sleep(0.01)
        return self.requests(path)

    async def endpoint(self, request: Request) -> Response:
        import asyncio

        body = (await request.body()).decode()
        params = parse_qsl(
            body if request.method == "POST" else request.url.query, keep_blank_values=True
        )
        received = Received(
            request.method, request.url.path, str(request.url), dict(request.headers), params
        )
        with self.lock:
            self.received.append(received)
        if self.delays.get(request.url.path):
            await asyncio.sleep(self.delays[request.url.path])
        answer = self.answers.get(request.url.path, (404, "text/plain", "not found"))
        if callable(answer):
            answer = answer(received)
        if isinstance(answer, str):
            return Response(answer, media_type="text/xml")
        status, content_type, text = answer
        return Response(text, status_code=status, media_type=content_type or None)


@pytest.fixture
def hooks() -> Iterator[Hooks]:
    recorder = Hooks()
    app = Starlette(routes=[Route("/{path:path}", recorder.endpoint, methods=["GET", "POST"])])
    with running(app) as base:
        recorder.base_url = base
        yield recorder


@dataclass
class Emulator:
    base_url: str
    switch: Switch
    credentials: Credentials
    http: httpx.Client  # authenticated with the Account SID and auth token

    @property
    def api(self) -> str:
        return f"/2010-04-01/Accounts/{self.credentials.account_sid}"

    def post(self, resource: str, data: dict | list) -> httpx.Response:
        return self.http.post(f"{self.api}/{resource}", data=data)

    def add_number(self, number: str = TWILIO_NUMBER, **fields: str) -> dict:
        response = self.post("IncomingPhoneNumbers.json", {"PhoneNumber": number, **fields})
        assert response.status_code == 201, response.text
        return response.json()

    def add_application(self, **fields: str) -> dict:
        response = self.post("Applications.json", fields)
        assert response.status_code == 201, response.text
        return response.json()

    def set_phone(self, address: str, **behaviour: object) -> None:
        response = self.http.put(f"/emulator/phones/{address}", json=behaviour)
        assert response.status_code == 200, response.text

    def call_in(self, from_: str = EXTERNAL_NUMBER, to: str = TWILIO_NUMBER, **extra: str) -> dict:
        """An external phone calls one of our numbers."""
        response = self.http.post("/emulator/calls", data={"From": from_, "To": to, **extra})
        assert response.status_code == 201, response.text
        return response.json()

    def call_out(self, **params: object) -> dict:
        data = {"From": TWILIO_NUMBER, "To": EXTERNAL_NUMBER, **params}
        response = self.post("Calls.json", data)
        assert response.status_code == 201, response.text
        return response.json()

    def call(self, sid: str) -> dict:
        return self.http.get(f"{self.api}/Calls/{sid}.json").json()

    def events(self, sid: str, kind: str | None = None) -> list[dict]:
        events = self.http.get(f"/emulator/calls/{sid}/events").json()["events"]
        return [e for e in events if kind is None or e["kind"] == kind]

    def wait_status(
        self, sid: str, statuses: tuple[str, ...] = FINAL, timeout: float = 15.0
    ) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            call = self.call(sid)
            if call["status"] in statuses:
                return call
            if time.monotonic() > deadline:
                raise AssertionError(f"call {sid} is {call['status']}, expected one of {statuses}")
            time.sleep(0.01)

    def wait_event(self, sid: str, kind: str, timeout: float = 15.0, **match: object) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events(sid, kind):
                if all(event.get(k) == v for k, v in match.items()):
                    return event
            if time.monotonic() > deadline:
                raise AssertionError(f"no {kind} event {match} on {sid}: {self.events(sid)}")
            time.sleep(0.01)

    def children(self, parent_sid: str) -> list[dict]:
        return self.http.get(f"{self.api}/Calls.json", params={"ParentCallSid": parent_sid}).json()[
            "calls"
        ]

    def press(self, sid: str, digits: str) -> None:
        assert (
            self.http.post(f"/emulator/calls/{sid}/digits", data={"Digits": digits}).status_code
            == 200
        )

    def hang_up(self, sid: str) -> None:
        assert self.http.post(f"/emulator/calls/{sid}/hangup").status_code == 200

    def idle(self, timeout: float = 15.0) -> None:
        """Wait until no call is live and every callback has been delivered."""
        deadline = time.monotonic() + timeout
        while self.switch._tasks or any(not c.ended for c in list(self.switch.calls.values())):
            if time.monotonic() > deadline:
                raise AssertionError("the emulator did not become idle")
            time.sleep(0.01)


def make_emulator(scale: float = CLOCK_SCALE, **config: object) -> Iterator[Emulator]:
    credentials = Credentials.from_env({})
    from tests.conftest import _free_port

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    switch = Switch(
        EmulatorConfig(credentials=credentials, public_url=base, clock_scale=scale, **config)
    )
    with (
        running(create_app(switch), port=port, lifespan="on"),
        httpx.Client(
            base_url=base, auth=(credentials.account_sid, credentials.auth_token), timeout=30
        ) as http,
    ):
        yield Emulator(base, switch, credentials, http)


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[Emulator]:
    """The emulator on a scaled clock; `file://` media may come from the test's tmp_path."""
    yield from make_emulator(media_folder=tmp_path)


def host_of(url: str) -> str:
    return urlsplit(url).netloc


# -- twilio-python against the emulator ------------------------------------------------------


def twilio_client(emulator: Emulator, *credentials: str) -> Client:
    """twilio-python's REST Client with only its base URLs changed, as `dialtone setup` and
    `dialtone doctor` use it: the 2010 API and Monitor both at the emulator."""
    client = Client(*credentials)
    client.api.base_url = emulator.base_url
    client.monitor.base_url = emulator.base_url
    return client


@pytest.fixture
def account(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Client:
    """A Client with the account's own credentials (Account SID and auth token)."""
    # The Client reads TWILIO_REGION / TWILIO_EDGE and would rewrite the host; requests honours
    # proxy variables. Neither belongs in a test against a loopback emulator.
    for name in ("TWILIO_REGION", "TWILIO_EDGE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    return twilio_client(
        emulator, emulator.credentials.account_sid, emulator.credentials.auth_token
    )
