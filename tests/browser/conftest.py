"""The real Voice SDK in a real browser against the emulator: Debian's Chromium driven by
Playwright, the unmodified npm bundle on a localhost page, signaling over WSS with the
emulator's self-signed certificate, media over WebRTC on a non-loopback address."""

from __future__ import annotations

import asyncio
import io
import json
import os
import shutil
import time
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import FileResponse, Response
from starlette.routing import Route
from twilio.jwt.access_token import AccessToken
from twilio.jwt.access_token.grants import VoiceGrant

from dialtone.emulator.app import create_app
from dialtone.emulator.config import Credentials, EmulatorConfig
from dialtone.emulator.media import audio, tts
from dialtone.emulator.signaling.server import create_signaling_app
from dialtone.emulator.switch import Switch
from dialtone.emulator.tls import ensure_certificate, first_non_loopback_address
from tests.conftest import IN_CI, Serve, _free_port, running, serving
from tests.emulator.conftest import hooks  # noqa: F401 - the webhook app fixture

ROOT = Path(__file__).resolve().parents[2]
SDK = (
    ROOT
    / "src"
    / "dialtone"
    / "web"
    / "node_modules"
    / "@twilio"
    / "voice-sdk"
    / "dist"
    / "twilio.min.js"
)
MICROPHONE_TEXT = "This is the browser speaking into its microphone."
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--ignore-certificate-errors",
    "--autoplay-policy=no-user-gesture-required",
]


def _require(condition: bool, what: str) -> None:
    if condition:
        return
    if IN_CI:
        pytest.fail(f"CI=true but {what}: browser tests must run under CI")
    pytest.skip(f"BROWSER TESTS SKIPPED: {what} (./test installs it where it can)")


def _silent_wav() -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\x00\x00" * 800)
    return buffer.getvalue()


# Package scope: sync Playwright runs an event loop in this thread while it is open, which
# would break later tests that use asyncio.run.
@pytest.fixture(scope="package")
def browser(tmp_path_factory):
    _require(os.path.exists(CHROMIUM), "Chromium is not installed (apt-get install chromium)")
    _require(SDK.exists(), "@twilio/voice-sdk is not installed (npm ci in src/dialtone/web)")
    _require(first_non_loopback_address() is not None, "no non-loopback interface for WebRTC")
    _require(tts.available(), "espeak-ng is not installed (apt-get install espeak-ng)")
    from playwright.sync_api import sync_playwright

    # The browser's microphone says a sentence over and over (Chromium's own fake device
    # only beeps now and then).
    microphone = tmp_path_factory.mktemp("microphone") / "speech.wav"
    speech = asyncio.run(tts.synthesize(MICROPHONE_TEXT))
    microphone.write_bytes(audio.to_wav(speech + audio.silence(0.5)))
    args = [*CHROMIUM_ARGS, f"--use-file-for-fake-audio-capture={microphone}"]
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=args)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def web_base() -> Iterator[str]:
    """The test page, the SDK bundle and local sounds from http://localhost (a secure context)."""
    silence = _silent_wav()

    async def page(request):
        return FileResponse(Path(__file__).with_name("page.html"))

    async def sdk(request):
        return FileResponse(SDK, media_type="application/javascript")

    async def sound(request):
        return Response(silence, media_type="audio/wav")

    app = Starlette(
        routes=[
            Route("/", page),
            Route("/vendor/twilio.min.js", sdk),
            Route("/sounds/{name}", sound),
        ]
    )
    port = _free_port()
    with running(app, port=port):
        yield f"http://localhost:{port}"


@dataclass
class LiveEmulator:
    base_url: str
    signal: str  # host:port for the SDK's `chunderw`
    switch: Switch
    credentials: Credentials
    http: httpx.Client

    def post(self, resource: str, data: dict) -> httpx.Response:
        return self.http.post(f"{self.api}/{resource}", data=data)

    def call(self, sid: str) -> dict:
        return self.http.get(f"{self.api}/Calls/{sid}.json").json()

    def calls(self, **filters: str) -> list[dict]:
        return self.http.get(f"{self.api}/Calls.json", params=filters).json()["calls"]

    def wait_status(
        self,
        sid: str,
        statuses: tuple[str, ...] = ("completed", "busy", "failed", "no-answer", "canceled"),
        timeout: float = 20.0,
    ) -> dict:
        deadline = time.monotonic() + timeout
        while (call := self.call(sid))["status"] not in statuses:
            if time.monotonic() > deadline:
                raise AssertionError(f"call {sid} is {call['status']}, expected {statuses}")
            time.sleep(0.05)
        return call

    def access_token(
        self,
        identity: str,
        *,
        ttl: int = 3600,
        incoming: bool = True,
        application_sid: str | None = None,
        params: dict | None = None,
    ) -> str:
        token = AccessToken(
            self.credentials.account_sid,
            self.credentials.api_key,
            self.credentials.api_secret,
            identity=identity,
            ttl=ttl,
        )
        token.add_grant(
            VoiceGrant(
                incoming_allow=incoming,
                outgoing_application_sid=application_sid,
                outgoing_application_params=params,
            )
        )
        return token.to_jwt()

    @property
    def api(self) -> str:
        return f"/2010-04-01/Accounts/{self.credentials.account_sid}"


@pytest.fixture
def live_emulator(tmp_path) -> Iterator[LiveEmulator]:
    """The emulator in real time, with signaling over TLS and media on a real interface."""
    credentials = Credentials.from_env({})
    port, signal_port = _free_port(), _free_port()
    base = f"http://127.0.0.1:{port}"
    switch = Switch(EmulatorConfig(credentials=credentials, public_url=base, media_folder=tmp_path))
    cert, key = ensure_certificate(tmp_path, ["localhost"])
    with (
        serving(
            Serve(create_app(switch), port, lifespan="on"),
            Serve(create_signaling_app(switch), signal_port, ssl=(cert, key)),
        ),
        httpx.Client(
            base_url=base, auth=(credentials.account_sid, credentials.auth_token), timeout=30
        ) as http,
    ):
        yield LiveEmulator(base, f"localhost:{signal_port}", switch, credentials, http)


def _open_page(browser, web_base):
    context = browser.new_context()
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    frames: list[dict] = []  # what the emulator sent the SDK, as seen by the browser

    def on_websocket(websocket) -> None:
        def received(payload) -> None:
            if isinstance(payload, str) and payload.strip():
                frames.append(json.loads(payload))

        websocket.on("framereceived", received)

    tab.on("websocket", on_websocket)
    tab.signal_frames = frames
    tab.goto(web_base + "/")
    return context, tab, errors


@pytest.fixture
def page(browser, web_base):
    context, tab, errors = _open_page(browser, web_base)
    yield tab
    context.close()
    assert errors == [], errors


@pytest.fixture
def second_page(browser, web_base):
    """Another browser profile: a second person."""
    context, tab, errors = _open_page(browser, web_base)
    yield tab
    context.close()
    assert errors == [], errors


def wait_event(page, kind: str, timeout: float = 20.0, count: int = 1) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        seen = page.evaluate("(kind) => window.seen(kind)", kind)
        if len(seen) >= count:
            return seen
        if time.monotonic() > deadline:
            events = page.evaluate("window.events")
            raise AssertionError(f"no {kind!r} event in the page: {events}")
        time.sleep(0.05)


def start(page, expression: str) -> None:
    """Run a promise-returning SDK call without waiting for it (its events tell the outcome)."""
    page.evaluate(
        f"() => {{ Promise.resolve({expression}).catch((e) => "
        f"window.events.push({{type: 'rejected', message: String(e)}})); }}"
    )


def sent_errors(page) -> list[int]:
    """Error codes the emulator sent on the wire (before the SDK maps them)."""
    return [f["payload"]["error"]["code"] for f in page.signal_frames if f.get("type") == "error"]
