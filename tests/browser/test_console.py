"""The dev console in Chromium: the console is an external phone (the real Voice SDK) that calls
one of our numbers; the application dials a simulated phone. The diagram of that real call is
checked by the boxes the browser laid out, its webhooks are copied as curl and replayed, and it
is downloaded as SVG."""

from __future__ import annotations

import re
import subprocess
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from twilio.request_validator import RequestValidator

from dialtone.emulator.app import create_app
from dialtone.emulator.config import Credentials, EmulatorConfig
from dialtone.emulator.signaling.server import create_signaling_app
from dialtone.emulator.switch import Switch
from dialtone.emulator.tls import ensure_certificate
from tests.browser.test_phone import phone, system  # noqa: F401 - the whole system
from tests.conftest import Serve, _free_port, serving

TWILIO_NUMBER = "+815031234567"
ME = "+819059876543"  # the console's phone
CALLEE = "+819012345678"  # a simulated phone the application dials
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"

# Every label's box against every lifeline's and arrowhead's box, as the browser laid them out.
OVERLAPS = """() => {
  const box = (e) => e.getBoundingClientRect();
  const meets = (a, b) => a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
  const widen = (r) => ({ left: r.left - 0.5, right: r.right + 0.5, top: r.top, bottom: r.bottom });
  const svg = document.querySelector('#diagram svg');
  const labels = [...svg.querySelectorAll('text')].map((t) => [t.textContent, box(t)]);
  const lifelines = [...svg.querySelectorAll('.lifeline')].map((l) => ['lifeline', widen(box(l))]);
  const heads = [...svg.querySelectorAll('.head')].map((h) => ['arrowhead', box(h)]);
  const found = [];
  for (const [text, l] of labels)
    for (const [what, o] of [...lifelines, ...heads])
      if (meets(l, o)) found.push(`${text} × ${what}`);
  return { found, labels: labels.length, lifelines: lifelines.length, heads: heads.length };
}"""


@dataclass
class Console:
    base_url: str
    switch: Switch
    credentials: Credentials
    http: httpx.Client

    @property
    def url(self) -> str:
        return f"{self.base_url}/console?key={self.switch.config.console_key}"

    def post(self, resource: str, data: dict) -> httpx.Response:
        api = f"/2010-04-01/Accounts/{self.credentials.account_sid}"
        return self.http.post(f"{api}/{resource}", data=data)


@pytest.fixture
def emulator(tmp_path) -> Iterator[Console]:
    """The emulator in real time with its console, signaling over TLS."""
    credentials = Credentials.from_env({})
    port, signal_port = _free_port(), _free_port()
    base = f"http://127.0.0.1:{port}"
    switch = Switch(
        EmulatorConfig(
            credentials=credentials,
            public_url=base,
            signal_host=f"localhost:{signal_port}",
            media_folder=tmp_path,
        )
    )
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
        yield Console(base, switch, credentials, http)


@pytest.fixture
def console(browser, emulator):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=emulator.base_url)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.goto(emulator.url)
    yield tab
    context.close()
    assert errors == []


def _status_is(page, prefix: str, timeout: float = 20000) -> None:
    page.wait_for_function(
        "(p) => document.getElementById('status').textContent.startsWith(p)",
        arg=prefix,
        timeout=timeout,
    )


def _labels(page) -> str:
    """The diagram's texts, one a line, a wrapped label's lines joined by spaces."""
    return "\n".join(
        page.eval_on_selector_all(
            "#diagram text",
            "(nodes) => nodes.map((n) => [...n.querySelectorAll('tspan')]"
            ".map((t) => t.textContent).join(' ') || n.textContent)",
        )
    )


def _shot(page, name: str, selector: str | None = None) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    target = page.locator(selector) if selector else page
    target.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def test_a_real_call_in_the_console(console, emulator, hooks, tmp_path):
    emulator.http.put(
        f"/emulator/phones/{CALLEE}",
        json={"answer_after": 2, "say": "Hello from the far phone.", "hangup_after": 4},
    )
    twiml = (
        '<?xml version="1.0" encoding="UTF-8"?><Response>'
        f'<Dial answerOnBridge="true" callerId="{TWILIO_NUMBER}">'
        f'<Number statusCallback="{hooks.url("/leg")}" '
        f'statusCallbackEvent="initiated ringing answered completed">{CALLEE}</Number></Dial>'
        "<Say>The other phone hung up &amp; so do we.</Say></Response>"
    )
    emulator.post(
        "IncomingPhoneNumbers.json",
        {
            "PhoneNumber": TWILIO_NUMBER,
            "VoiceUrl": hooks.on("/voice", twiml),
            "StatusCallback": hooks.url("/status"),
        },
    )
    hooks.on("/leg", "")
    hooks.on("/status", "")
    # Watch the phone's status and the call list's badges change, in this one page load.
    console.evaluate(
        """() => {
          window.loaded = true; window.said = []; window.badges = [];
          new MutationObserver(() => window.said.push([document.getElementById('status').textContent, performance.now()]))
            .observe(document.getElementById('status'), { childList: true, characterData: true, subtree: true });
          new MutationObserver(() => {
            for (const b of document.querySelectorAll('#calls .badge')) window.badges.push(b.dataset.status);
          }).observe(document.getElementById('calls'), { attributes: true, childList: true, subtree: true });
        }"""
    )
    console.click("#become")
    _status_is(console, "Ready")
    console.fill("#dial", TWILIO_NUMBER)
    assert console.is_enabled("#call")
    console.click("#call")
    _status_is(console, "In a call", timeout=30000)
    assert console.is_disabled("#call") and console.is_visible("#call-hint")
    assert console.inner_text("#call-hint") == "Call disabled while a call is up."
    assert console.is_disabled("#become")
    _shot(console, "console-in-call")
    _status_is(console, "Call ended", timeout=30000)
    assert console.is_enabled("#call") and console.is_hidden("#call-hint")
    said = console.evaluate("window.said")
    said = said[[text for text, _ in said].index(f"Calling {TWILIO_NUMBER}…") :]
    # Honest states: calling, then ringing, and in a call only when the callee answered
    # (it picks up after 2 s: answerOnBridge).
    assert [text for text, _ in said[:3]] == [
        f"Calling {TWILIO_NUMBER}…",
        f"Ringing {TWILIO_NUMBER}…",
        f"In a call with {TWILIO_NUMBER}.",
    ], said
    assert said[2][1] - said[1][1] > 1000
    (parent,) = [c for c in emulator.switch.calls.values() if c.parent is None]
    deadline = time.monotonic() + 20
    while emulator.switch._tasks and time.monotonic() < deadline:
        time.sleep(0.1)  # the last status callbacks
    # The call list followed the call live, without a reload.
    badge = f"#calls button[data-sid='{parent.sid}'] .badge"
    console.wait_for_selector(f"{badge}[data-status='completed']", timeout=20000)
    assert console.evaluate("window.loaded") is True
    assert {"ringing", "in-progress", "completed"} <= set(console.evaluate("window.badges"))

    # The diagram: sentences, the TwiML in full, nothing overlapping.
    console.wait_for_function(
        "document.querySelector('#diagram').textContent.includes('Status callback: completed')",
        timeout=20000,
    )
    text = _labels(console)
    for sentence in (
        f"{ME} calls {TWILIO_NUMBER}",
        f"Bridged to {CALLEE}",
        "Dial ended: completed after",
        f"{CALLEE} hangs up",
        "Asks the API server what to do: POST /voice (signed)",
    ):
        assert sentence in text, sentence
    for raw in ("device_invited", "dial_result", "bridge bridge", "far_end_hangup"):
        assert raw not in text
    twiml_lines = console.eval_on_selector_all(
        "#diagram .twiml-text tspan", "(nodes) => nodes.map((n) => n.textContent)"
    )
    assert twiml_lines[0] == "<Response>"
    assert "\u00a0\u00a0\u00a0\u00a0<Number" in twiml_lines[2]
    assert "\u00a0\u00a0<Say>The other phone hung up &amp; so do we.</Say>" in twiml_lines
    assert twiml_lines[-1] == "</Response>" and not any("<?xml" in line for line in twiml_lines)
    steps = console.eval_on_selector_all("#diagram .step", "(nodes) => nodes.length")
    assert steps >= 25  # a real call with many events
    layout = console.evaluate(OVERLAPS)
    assert (
        layout["labels"] > 25 and layout["lifelines"] == 3
    )  # the Client lane is unused here and layout["heads"] > 15
    assert layout["found"] == []
    _shot(console, "console-real-call", "#diagram")

    # Copy a webhook as curl, run it, and the application sees a valid signature.
    first = console.locator("#details details").first
    first.locator("summary").click()
    first.locator(".copy-curl").click()
    console.wait_for_function("document.getElementById('copied').textContent !== ''")
    command = console.evaluate("navigator.clipboard.readText()")
    assert command.startswith("curl ") and "X-Twilio-Signature" in command
    before = len(hooks.requests("/voice"))
    run = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=30)
    assert run.returncode == 0, run.stderr
    assert "<Dial" in run.stdout  # the application answered it as it answered Twilio
    replayed = hooks.requests("/voice")[before]
    validator = RequestValidator(emulator.credentials.auth_token)
    assert replayed.form["CallSid"] == parent.sid
    assert validator.validate(replayed.url, replayed.form, replayed.headers["x-twilio-signature"])

    # Export: a standalone SVG file with its styles, and the events in it.
    with console.expect_download() as download:
        console.click("#export")
    path = tmp_path / "diagram.svg"
    download.value.save_as(path)
    assert download.value.suggested_filename == f"call-{parent.sid}.svg"
    root = ET.parse(path).getroot()
    ns = "{http://www.w3.org/2000/svg}"
    assert root.tag == f"{ns}svg" and root.get("viewBox")
    style = root.find(f"{ns}style")
    assert style is not None and ".lifeline" in style.text
    exported = "".join(root.itertext())
    assert f"Bridged to {CALLEE}" in exported and f"{ME} calls {TWILIO_NUMBER}" in exported
    assert "href" not in path.read_text()  # nothing outside the file


def test_the_console_has_labelled_controls_and_visible_focus(console):
    unlabelled = console.evaluate(
        """() => [...document.querySelectorAll('button, input, select, meter')].filter((e) => {
             const named = e.getAttribute('aria-label') || e.labels?.length || e.textContent.trim();
             return !named;
           }).map((e) => e.outerHTML)"""
    )
    assert unlabelled == []
    console.focus("#become")
    console.keyboard.press("Shift+Tab")
    console.keyboard.press("Tab")
    outline = console.evaluate(
        "() => { const s = getComputedStyle(document.activeElement);"
        " return [document.activeElement.id, s.outlineStyle, parseFloat(s.outlineWidth)]; }"
    )
    assert outline[0] == "become" and outline[1] != "none" and outline[2] >= 2


def test_a_call_from_the_browser_phone_to_the_console(browser, phone, system):  # noqa: F811
    """The whole system: the browser phone (the real API server) calls the console's phone,
    which answers and presses a key; the diagram draws all four lanes without overlaps. Its
    screenshot (test-artifacts/screenshots/console-call.png) is docs/console-sequence-diagram.png."""
    from tests.browser.test_phone import _sign_in

    context = browser.new_context(viewport={"width": 1440, "height": 900})
    console = context.new_page()
    errors: list[str] = []
    console.on("pageerror", lambda exc: errors.append(str(exc)))
    console.goto(system.console)
    console.click("#become")
    _status_is(console, "Ready")
    _sign_in(phone)
    phone.fill("#number", "090-5987-6543")
    phone.click("#call")
    console.wait_for_selector("#answer:not([hidden])", timeout=20000)
    assert console.is_disabled("#call") and console.is_visible("#call-hint")
    console.click("#answer")
    _status_is(console, "In a call")
    console.wait_for_selector("#remote-level[data-heard]", state="attached", timeout=20000)
    console.click(".pad button[data-key='5']")
    console.wait_for_timeout(1500)
    phone.click("#hangup")
    _status_is(console, "Call ended")
    console.wait_for_function(
        "document.querySelector('#calls .badge')?.dataset.status === 'completed'", timeout=20000
    )
    console.wait_for_timeout(1000)  # the last status callback drawn
    text = _labels(console)
    # As the phone sent it: typed with dashes or not, it dials the digits.
    assert re.search(r"DeviceId_0001's browser calls 090-?5987-?6543", text), text[:600]
    assert "+819059876543's browser is invited" in text and "presses 5" in text
    layout = console.evaluate(OVERLAPS)
    assert layout["lifelines"] == 4 and layout["found"] == []
    console.screenshot(path=str(ARTIFACTS / "console-call.png"), full_page=True)
    context.close()
    assert errors == []
