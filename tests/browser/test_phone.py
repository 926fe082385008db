"""The browser phone served by `dialtone`'s API server, end to end against the emulator: sign
in, call an external phone and hang up, answer a call, recent calls; keyboard and console."""

from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from dialtone.devcreds import development_values
from dialtone.emulator.app import create_app as create_emulator
from dialtone.emulator.config import Credentials, EmulatorConfig
from dialtone.emulator.signaling.server import create_signaling_app
from dialtone.emulator.switch import Switch
from dialtone.emulator.tls import ensure_certificate
from dialtone.server.app import create_app as create_server
from dialtone.server.config import Settings
from dialtone.server.db import Database
from dialtone.server.registry import LineRegistry
from tests.conftest import Serve, _free_port, serving, wait_until_up

LINE = "+815031234567"
PHONE = "+819059876543"
PASSWORD = "a phone password"


@dataclass
class System:
    url: str  # the phone page, on localhost
    emulator: httpx.Client
    console: str  # the emulator's dev console


@pytest.fixture
def system(tmp_path, request):
    credentials = Credentials.from_env({})
    emulator_port, signal_port, server_port = _free_port(), _free_port(), _free_port()
    emulator_url, server_url = (
        f"http://127.0.0.1:{emulator_port}",
        f"http://localhost:{server_port}",
    )
    switch = Switch(
        EmulatorConfig(
            credentials=credentials, public_url=emulator_url, signal_host=f"localhost:{signal_port}"
        )
    )
    db = Database(f"sqlite:///{tmp_path / 'phone.db'}")
    db.upgrade()
    LineRegistry(db).add(LINE, "DeviceId_0001", PASSWORD)
    cert, key = ensure_certificate(tmp_path, ["localhost"])
    with (
        httpx.Client(
            base_url=emulator_url, auth=(credentials.account_sid, credentials.auth_token)
        ) as http,
        serving(
            Serve(create_emulator(switch), emulator_port, lifespan="on"),
            Serve(create_signaling_app(switch), signal_port, ssl=(cert, key)),
        ),
    ):
        api = f"/2010-04-01/Accounts/{credentials.account_sid}"
        app = http.post(
            f"{api}/Applications.json",
            data={
                "VoiceUrl": f"{server_url}/twilio/retrieve_twiml/call_outgoing",
                "StatusCallback": f"{server_url}/twilio/status_callback",
            },
        ).json()
        http.post(
            f"{api}/IncomingPhoneNumbers.json",
            data={
                "PhoneNumber": LINE,
                "VoiceUrl": f"{server_url}/twilio/retrieve_twiml/call_incoming",
                "StatusCallback": f"{server_url}/twilio/status_callback",
            },
        )
        http.put(f"/emulator/phones/{PHONE}", json={"answer_after": 1})
        settings = Settings(
            account_sid=credentials.account_sid,
            auth_token=credentials.auth_token,
            api_key=credentials.api_key,
            api_secret=credentials.api_secret,
            twiml_app_sid=app["sid"],
            public_url=server_url,
            database_url=db.url,
            default_region="JP",
            voice_signaling=f"localhost:{signal_port}",
        )
        # The server is reached as "localhost" (a secure context for the microphone).
        with serving(Serve(create_server(settings, db), server_port)):
            console = f"{emulator_url}/console?key={switch.config.console_key}"
            yield System(server_url + "/", http, console)
    db.dispose()


def _open_phone(browser, system):
    # A narrow phone screen, in English (the page follows the browser's language).
    context = browser.new_context(viewport={"width": 360, "height": 740}, locale="en-US")
    tab = context.new_page()
    console_errors: list[str] = []
    tab.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    tab.on(
        "response",
        lambda r: console_errors.append(f"{r.status} {r.url}") if r.status >= 400 else None,
    )
    tab.on("pageerror", lambda exc: console_errors.append(str(exc)))
    tab.goto(system.url)
    tab.console_errors = console_errors
    return context, tab


@pytest.fixture
def phone(browser, system):
    context, tab = _open_phone(browser, system)
    yield tab
    context.close()
    assert tab.console_errors == []


@pytest.fixture
def dev_system(tmp_path):
    """The README's main command itself: `dialtone dev` as a process."""
    import os
    import signal
    import subprocess
    import sys

    port, emulator_port, signal_port = _free_port(), _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "DIALTONE_"))}
    env.update(DIALTONE_DEV_PASSWORD=PASSWORD, DIALTONE_DATA_DIR=str(tmp_path / "data"))
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dialtone.cli",
            "dev",
            "--port",
            str(port),
            "--emulator-port",
            str(emulator_port),
            "--signal-port",
            str(signal_port),
        ],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    emulator_url = f"http://127.0.0.1:{emulator_port}"
    try:
        wait_until_up(
            process, f"http://localhost:{port}/healthz", f"{emulator_url}/emulator/health"
        )
        # The console URL as the banner prints it (it carries this run's key).
        console = next(line.split()[2] for line in process.stdout if "dev console" in line)
        dev = development_values()
        auth = (dev["TWILIO_ACCOUNT_SID"], dev["TWILIO_AUTH_TOKEN"])
        with httpx.Client(base_url=emulator_url, auth=auth) as http:
            yield System(f"http://localhost:{port}/", http, console)
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=30)
    assert process.returncode == 0


@pytest.fixture
def dev_phone(browser, dev_system):
    context, tab = _open_phone(browser, dev_system)
    yield tab
    context.close()
    assert tab.console_errors == []


ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


def _shot(page, name):
    """Screenshots of the main states, kept as test artifacts."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def _status_is(page, prefix, timeout=20000):
    page.wait_for_function(
        "(p) => document.getElementById('status').textContent.startsWith(p)",
        arg=prefix,
        timeout=timeout,
    )


def _sign_in(phone):
    phone.fill("#line", "050-3123-4567")
    phone.fill("#password", PASSWORD)
    phone.keyboard.press("Enter")  # keyboard: submit from the password field
    phone.wait_for_selector("#phone:not([hidden])", timeout=20000)
    phone.wait_for_function(
        "document.getElementById('status').textContent.startsWith('Ready')", timeout=20000
    )


def test_sign_in_call_out_and_hang_up(phone, system):
    _sign_in(phone)
    phone.wait_for_function("document.getElementById('me').textContent === '050-3123-4567'")
    assert phone.get_attribute("#me .number", "title") == LINE
    assert phone.evaluate("localStorage.getItem('dialtone.line')") == "050-3123-4567"
    assert "password" not in phone.evaluate("JSON.stringify(localStorage)")
    phone.fill("#number", "090-5987-6543")  # pasted as people write it
    phone.click("#call")
    phone.wait_for_function(
        "document.getElementById('status').textContent.startsWith('In a call')", timeout=20000
    )
    phone.wait_for_timeout(1500)
    assert phone.inner_text("#timer") != "0:00"
    phone.click("#mute")
    assert phone.get_attribute("#mute", "aria-pressed") == "true"
    phone.click("#hangup")
    phone.wait_for_function(
        "document.getElementById('status').textContent === 'Call ended.'", timeout=20000
    )
    phone.wait_for_selector("#recent li[data-outcome='answered']", timeout=20000)
    item = phone.locator("#recent li").first
    assert "090-5987-6543" in item.inner_text()  # the line's national format
    assert item.locator(".number").get_attribute("title") == PHONE  # E.164 on hover
    assert "Outgoing" in item.inner_text()


def test_answer_an_incoming_call(phone, system):
    _sign_in(phone)
    call = system.emulator.post("/emulator/calls", data={"From": PHONE, "To": LINE}).json()
    phone.wait_for_selector("#incoming:not([hidden])", timeout=20000)
    assert phone.inner_text("#incoming-from") == "090-5987-6543"  # PHONE, as written in Japan
    phone.click("#accept")
    phone.wait_for_function(
        "document.getElementById('status').textContent.startsWith('In a call')", timeout=20000
    )
    system.emulator.post(f"/emulator/calls/{call['sid']}/hangup")
    phone.wait_for_function(
        "document.getElementById('status').textContent === 'Call ended.'", timeout=20000
    )
    phone.wait_for_selector("#recent li.incoming.answered", timeout=20000)
    assert "090-5987-6543" in phone.inner_text("#recent li.incoming")
    assert "Incoming · Answered" in phone.inner_text("#recent li.incoming")


def test_a_wrong_password_is_a_human_sentence(phone, system):
    phone.fill("#line", "050-3123-4567")
    phone.fill("#password", "not it at all")
    phone.click("#signin button")
    phone.wait_for_selector("#problem:not([hidden])")
    assert phone.inner_text("#problem") == "Wrong number or password."
    # The browser itself logs the refused request; nothing else may appear.
    assert all("401" in entry for entry in phone.console_errors)
    phone.console_errors.clear()


def test_seed_check_4_2_from_the_dev_console(browser, dev_phone, dev_system):
    """Seed 002 §4-2, against `dialtone dev`: a phone calls 050-3123-4567 and the browser phone
    answers; the external phone is a person in the dev console, whose inspector draws the call."""
    _sign_in(dev_phone)
    context = browser.new_context()
    console = context.new_page()
    errors: list[str] = []
    console.on("pageerror", lambda exc: errors.append(str(exc)))
    console.goto(dev_system.console)
    console.click("#become")
    console.wait_for_function(
        "document.getElementById('status').textContent.startsWith('Ready')", timeout=20000
    )
    assert console.input_value("#dial") == LINE
    console.click("#call")
    dev_phone.wait_for_selector("#incoming:not([hidden])", timeout=20000)
    assert dev_phone.inner_text("#incoming-from") == "090-5987-6543"
    dev_phone.click("#accept")
    dev_phone.wait_for_function(
        "document.getElementById('status').textContent.startsWith('In a call')", timeout=20000
    )
    console.wait_for_function(
        "document.getElementById('status').textContent.startsWith('In a call')", timeout=20000
    )
    # Two-way audio: each side hears the other (remote level above zero on both pages).
    dev_phone.wait_for_selector("#remote-level[data-heard]", state="attached", timeout=20000)
    console.wait_for_selector("#remote-level[data-heard]", state="attached", timeout=20000)
    # The inspector shows the incoming webhook, signed, answered with <Dial><Client>.
    console.wait_for_function(
        "document.getElementById('diagram').textContent.includes('POST /twilio/retrieve_twiml/call_incoming')",
        timeout=20000,
    )
    diagram = console.inner_text("#diagram")
    assert "signed" in diagram and "invite" in diagram
    details = console.text_content("#details")
    assert "<Client>DeviceId_0001</Client>" in details and '"To": "+815031234567"' in details
    console.click("#hangup")
    dev_phone.wait_for_function(
        "document.getElementById('status').textContent === 'Call ended.'", timeout=20000
    )
    dev_phone.wait_for_selector("#recent li.incoming", timeout=20000)
    assert "090-5987-6543" in dev_phone.inner_text("#recent")
    context.close()
    assert errors == []


def _console(browser, system):
    context = browser.new_context()
    console = context.new_page()
    console.goto(system.console)
    console.click("#become")
    _status_is(console, "Ready")
    return context, console


def test_seed_check_4_3_the_phone_calls_the_external_phone(browser, dev_phone, dev_system):
    """Seed 002 §4-3, against `dialtone dev`: the browser phone dials 090-5987-6543; the external
    phone (the dev console) answers."""
    context, console = _console(browser, dev_system)
    _sign_in(dev_phone)
    _shot(dev_phone, "phone-ready")
    dev_phone.fill("#number", "090-5987-6543")
    dev_phone.click("#call")
    console.wait_for_selector("#answer:not([hidden])", timeout=20000)
    assert "+815031234567" in console.inner_text("#status")  # the line's own number as caller ID
    console.click("#answer")
    _status_is(dev_phone, "In a call")
    _status_is(console, "In a call")
    dev_phone.wait_for_selector("#remote-level[data-heard]", state="attached", timeout=20000)
    console.wait_for_selector("#remote-level[data-heard]", state="attached", timeout=20000)
    _shot(dev_phone, "phone-in-call")
    _shot(console, "console-sequence-diagram")
    dev_phone.click("#hangup")
    _status_is(console, "Call ended")
    _status_is(dev_phone, "Call ended")
    context.close()


def test_mute_silences_what_the_far_end_hears(phone, system):
    from dialtone.emulator.media import audio
    from tests.emulator.test_audio_calls import _pcm

    _sign_in(phone)
    phone.fill("#number", "090-5987-6543")
    phone.click("#call")
    _status_is(phone, "In a call")
    phone.wait_for_timeout(2500)
    (parent,) = [
        c for c in system.emulator.get("/console/calls.json").json()["calls"] if not c["parent"]
    ]
    child = next(
        c
        for c in system.emulator.get("/console/calls.json").json()["calls"]
        if c["parent"] == parent["sid"]
    )
    before = _pcm(system.emulator.get(f"/emulator/calls/{child['sid']}/heard.wav").content)
    assert audio.voiced_seconds(before) > 0.5  # the microphone reaches the far end
    phone.click("#mute")
    phone.wait_for_timeout(3000)
    after = _pcm(system.emulator.get(f"/emulator/calls/{child['sid']}/heard.wav").content)
    muted = after[len(before) + audio.FRAME_BYTES * 25 :]  # from half a second after the click
    assert audio.seconds(muted) > 1.5
    assert audio.voiced_seconds(muted) == 0
    phone.click("#mute")  # unmute, then keys reach the far end
    phone.click("#pad button[data-key='4']")
    phone.click("#pad button[data-key='2']")
    phone.wait_for_timeout(1000)
    events = system.emulator.get(f"/emulator/calls/{child['sid']}/events").json()["events"]
    assert "".join(e["digit"] for e in events if e["kind"] == "dtmf_sent") == "42"
    phone.click("#hangup")
    _status_is(phone, "Call ended")


def test_decline_an_incoming_call(phone, system):
    _sign_in(phone)
    call = system.emulator.post("/emulator/calls", data={"From": PHONE, "To": LINE}).json()
    phone.wait_for_selector("#incoming:not([hidden])", timeout=20000)
    _shot(phone, "phone-incoming")
    phone.click("#reject")
    _status_is(phone, "Call declined")
    deadline = 20
    status = None
    for _ in range(deadline * 10):
        status = system.emulator.get("/console/calls.json").json()["calls"]
        child = next((c for c in status if c["parent"] == call["sid"]), None)
        if child and child["status"] == "busy":
            break
        phone.wait_for_timeout(100)
    assert child and child["status"] == "busy"
    phone.wait_for_selector("#recent li.incoming.declined", timeout=20000)
    assert "Incoming · Declined" in phone.inner_text("#recent li.incoming")


@pytest.mark.parametrize("system", [12], indirect=True)
def test_the_token_is_refreshed_before_it_expires(phone, system):
    """With 12 s tokens the SDK asks for a new one after 2 s; the page gets it with its
    current token (no password kept) and the phone stays registered past the first expiry."""
    _sign_in(phone)
    phone.wait_for_timeout(14000)
    assert phone.is_hidden("#problem")
    assert phone.inner_text("#status").startswith("Ready")
    call = system.emulator.post("/emulator/calls", data={"From": PHONE, "To": LINE}).json()
    phone.wait_for_selector("#incoming:not([hidden])", timeout=20000)
    system.emulator.post(f"/emulator/calls/{call['sid']}/hangup")
