"""Who may talk to the emulator (access.py): the names it serves, its own origin for changes,
the account's credentials or the per-run console key for the control API and the console,
bounded bodies; and what the event log shows of fetched pages. Real HTTP over loopback."""

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import _free_port, wait_until_up
from tests.emulator.conftest import EXTERNAL_NUMBER, TWILIO_NUMBER

CALL = {"From": EXTERNAL_NUMBER, "To": TWILIO_NUMBER}


def _port(emulator) -> int:
    return urlsplit(emulator.base_url).port


def _twilio_error(response: httpx.Response, status: int, code: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["status"] == status and body["code"] == code and body["message"]
    assert body["more_info"] == f"https://www.twilio.com/docs/errors/{code}"
    return body


@pytest.fixture
def anonymous(emulator):
    with httpx.Client(base_url=emulator.base_url, timeout=10) as http:
        yield http


# -- Host ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/emulator/health", "/emulator/phones", "/console", "/2010-04-01/Accounts.json"]
)
def test_a_rebound_host_name_is_refused_even_with_credentials(emulator, path):
    """DNS rebinding: the attacker's name resolves to 127.0.0.1, the browser sends its Host."""
    response = emulator.http.get(path, headers={"Host": f"attacker.example:{_port(emulator)}"})
    body = _twilio_error(response, 403, 20403)
    assert "attacker.example" in body["message"]


@pytest.mark.parametrize("host", ["127.0.0.1:99999", "127.0.0.1:x", "[::1", "", "127.0.0.1 x"])
def test_a_garbled_host_is_refused_not_crashed(emulator, host):
    _twilio_error(emulator.http.get("/emulator/phones", headers={"Host": host}), 403, 20403)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]", "LOCALHOST."])
def test_loopback_names_are_served(emulator, host):
    response = emulator.http.get("/emulator/phones", headers={"Host": f"{host}:{_port(emulator)}"})
    assert response.status_code == 200, response.text


def test_configured_host_names_are_served():
    from tests.emulator.conftest import make_emulator

    for emulator in make_emulator(allowed_hosts=("phone-lab.lan",)):
        ok = emulator.http.get("/emulator/phones", headers={"Host": "phone-lab.lan:3000"})
        assert ok.status_code == 200
        _twilio_error(
            emulator.http.get("/emulator/phones", headers={"Host": "other.lan"}), 403, 20403
        )


# -- origins ---------------------------------------------------------------------------------


def test_a_cross_site_form_post_is_refused_and_changes_nothing(emulator):
    emulator.add_number()
    for headers in (
        {"Origin": "https://attacker.example"},
        {"Origin": "null"},  # sandboxed frames and some redirects
        {"Origin": f"http://localhost:{_port(emulator) + 1}"},  # another local app
        {"Sec-Fetch-Site": "cross-site"},  # a browser that left Origin out
        {"Sec-Fetch-Site": "same-site"},
    ):
        # With the account's credentials too: a browser may have cached them.
        response = emulator.http.post("/emulator/calls", data=CALL, headers=headers)
        _twilio_error(response, 403, 20403)
    assert not [c for c in emulator.switch.calls.values() if c.direction == "inbound"]
    rest = emulator.http.post(
        f"{emulator.api}/Calls.json",
        data={"To": EXTERNAL_NUMBER, "From": TWILIO_NUMBER, "Twiml": "<Response/>"},
        headers={"Origin": "https://attacker.example"},
    )
    _twilio_error(rest, 403, 20403)


def test_the_emulators_own_origin_and_curl_may_change_it(emulator):
    emulator.add_number()
    own = {"Origin": emulator.base_url, "Sec-Fetch-Site": "same-origin"}
    assert emulator.http.post("/emulator/calls", data=CALL, headers=own).status_code == 201
    assert emulator.http.post("/emulator/calls", data=CALL).status_code == 201  # no Origin
    # Reading is not a change: a foreign page cannot read the answer anyway (no CORS).
    assert (
        emulator.http.get("/emulator/phones", headers={"Origin": "https://x.example"}).status_code
        == 200
    )


# -- credentials and the console key ---------------------------------------------------------

PROTECTED = [
    ("GET", "/emulator/phones"),
    ("GET", "/emulator/events"),
    ("GET", "/emulator/calls/CA00/events"),
    ("POST", "/emulator/calls"),
    ("PUT", f"/emulator/phones/{EXTERNAL_NUMBER}"),
    ("DELETE", f"/emulator/phones/{EXTERNAL_NUMBER}"),
    ("POST", f"/emulator/phones/{EXTERNAL_NUMBER}/token"),
    ("GET", "/console"),
    ("GET", "/console.js"),
    ("GET", "/console/config.json"),
    ("GET", "/console/calls.json"),
]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_the_control_api_and_the_console_need_credentials_or_the_key(
    emulator, anonymous, method, path
):
    _twilio_error(anonymous.request(method, path), 401, 20003)
    wrong = {"X-Emulator-Key": "not-this-runs-key", "Authorization": "Basic QUM6bm9wZQ=="}
    _twilio_error(anonymous.request(method, path, headers=wrong), 401, 20003)


def test_the_key_header_the_account_and_api_keys_are_accepted(emulator, anonymous):
    key = {"X-Emulator-Key": emulator.switch.config.console_key}
    assert anonymous.get("/emulator/phones", headers=key).status_code == 200
    assert anonymous.get("/console/calls.json", headers=key).status_code == 200
    assert emulator.http.get("/emulator/phones").status_code == 200  # AccountSid:AuthToken
    credentials = emulator.credentials
    as_api_key = anonymous.get(
        "/emulator/phones", auth=(credentials.api_key, credentials.api_secret)
    )
    assert as_api_key.status_code == 200


def test_health_stays_open_for_probes(anonymous):
    assert anonymous.get("/emulator/health").json()["status"] == "ok"


def test_the_printed_console_url_sets_a_strict_cookie_once(emulator, anonymous):
    key = emulator.switch.config.console_key
    opened = anonymous.get("/console", params={"key": key, "call": "CA1"})
    assert opened.status_code == 303
    assert opened.headers["location"] == "/console?call=CA1"  # the key leaves the address bar
    assert opened.headers["cache-control"] == "no-store"
    cookie = opened.headers["set-cookie"]
    assert f"dialtone_emulator_{_port(emulator)}={key}" in cookie
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    # The client now holds the cookie, as a browser would.
    page = anonymous.get("/console")
    assert page.status_code == 200 and "dev console" in page.text
    assert anonymous.get("/console/config.json").json()["numbers"] == []
    with anonymous.stream("GET", "/emulator/events") as stream:
        assert stream.status_code == 200
        assert next(stream.iter_lines()) == ": connected"


def test_a_wrong_console_key_sets_no_cookie(anonymous):
    refused = anonymous.get("/console", params={"key": "guess"})
    _twilio_error(refused, 401, 20003)
    assert "set-cookie" not in refused.headers


def test_non_ascii_basic_credentials_are_refused_not_crashed(emulator, anonymous):
    """`hmac.compare_digest` raises TypeError for non-ASCII str: a 500 before the fix."""
    sid = emulator.credentials.account_sid
    for user, password in ((sid, "pässwörd"), ("ÄC✓", "x"), (sid, "\u2603" * 40)):
        for path in (f"/2010-04-01/Accounts/{sid}/Calls.json", "/emulator/phones"):
            _twilio_error(anonymous.get(path, auth=(user, password)), 401, 20003)
    for header in ("Basic ###", "Basic w6k=", "Basic " + "é" * 8, "Bearer x"):
        raw = header.encode("utf-8")  # sent as raw bytes
        response = anonymous.get("/emulator/phones", headers={"Authorization": raw})
        _twilio_error(response, 401, 20003)


# -- the router's own answers ------------------------------------------------------------------


def test_unknown_paths_and_methods_answer_twilio_json(emulator):
    sid = emulator.credentials.account_sid
    encoded_slash = emulator.http.get(f"/2010-04-01/Accounts/{sid}%2F..%2F/Calls.json")
    _twilio_error(encoded_slash, 404, 20404)
    _twilio_error(emulator.http.get("/nothing/here"), 404, 20404)
    wrong_method = emulator.http.delete("/emulator/calls")
    _twilio_error(wrong_method, 405, 20004)
    assert "POST" in wrong_method.headers["allow"]
    preflight = emulator.http.options(
        "/emulator/calls",
        headers={"Origin": "https://x.example", "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code == 405 and preflight.json()["code"] == 20004
    assert "access-control-allow-origin" not in preflight.headers


# -- bodies ----------------------------------------------------------------------------------


def test_an_oversize_body_is_refused_with_413(emulator):
    big = b"From=" + b"1" * (200 * 1024)
    declared = emulator.http.post(
        "/emulator/calls",
        content=big,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    _twilio_error(declared, 413, 20413)

    def chunks():  # no Content-Length: counted as it arrives
        for _ in range(100):
            yield b"x" * 8192

    chunked = emulator.http.post(
        f"{emulator.api}/Calls.json",
        content=chunks(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    _twilio_error(chunked, 413, 20413)


def test_an_oversize_body_is_not_read(emulator):
    """413 as soon as the headers declare too much: the rest is never buffered."""
    port = _port(emulator)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        raw.sendall(
            b"POST /emulator/calls HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: 209715200\r\n\r\n"
        )
        head = raw.recv(4096)
    assert head.startswith(b"HTTP/1.1 413")


# -- file:// media -----------------------------------------------------------------------------


def test_file_media_only_from_the_media_folder(emulator, tmp_path, tmp_path_factory):
    inside = tmp_path / "hello.wav"
    inside.write_bytes(b"RIFF")
    outside = tmp_path_factory.mktemp("elsewhere") / "secret.wav"
    outside.write_bytes(b"RIFF")
    (tmp_path / "link.wav").symlink_to(outside)
    phone = f"/emulator/phones/{EXTERNAL_NUMBER}"
    ok = emulator.http.put(phone, json={"say_audio": f"file://{inside}"})
    assert ok.status_code == 200, ok.text
    for refused in (
        f"file://{outside}",
        f"file://{tmp_path}/../{outside.parent.name}/secret.wav",
        f"file://{tmp_path}/link.wav",  # a symlink out of the folder
        "file:///etc/passwd",
        f"file://otherhost{inside}",
        "file://%00",
    ):
        response = emulator.http.put(phone, json={"say_audio": refused})
        body = _twilio_error(response, 400, 20001)
        assert "media folder" in body["message"] or "file:///path" in body["message"]
    assert emulator.http.get("/emulator/phones").json()["phones"][0]["say_audio"] == (
        f"file://{inside}"
    )


def test_file_media_is_off_without_a_media_folder(hooks, tmp_path):
    from tests.emulator.conftest import make_emulator

    sound = tmp_path / "tone.wav"
    sound.write_bytes(b"RIFF")
    for emulator in make_emulator():
        phone = f"/emulator/phones/{EXTERNAL_NUMBER}"
        refused = emulator.http.put(phone, json={"say_audio": f"file://{sound}"})
        assert "--media-folder" in _twilio_error(refused, 400, 20001)["message"]
        # <Play> of a refused file is skipped with Twilio's 11200 warning, like a failed fetch.
        emulator.add_number(
            VoiceUrl=hooks.on("/voice", f"<Response><Play>file://{sound}</Play></Response>")
        )
        call = emulator.call_in()
        emulator.wait_status(call["sid"])
        (warning,) = emulator.events(call["sid"], "warning")
        assert warning["code"] == 11200 and "--media-folder" in warning["message"]
        assert emulator.events(call["sid"], "audio") == []


# -- the event log ---------------------------------------------------------------------------


def test_the_event_log_shows_twiml_but_not_other_pages(emulator, hooks):
    secret = "<html><body>internal admin page: token=s3cr3t</body></html>"
    emulator.add_number(
        VoiceUrl=hooks.on("/voice", (200, "text/html", secret)),
        VoiceFallbackUrl=hooks.on("/fallback", "<Response><Say>sorry</Say></Response>"),
        StatusCallback=hooks.on("/status", (200, "application/json", '{"token": "s3cr3t"}')),
    )
    call = emulator.call_in()
    emulator.wait_status(call["sid"])
    hooks.wait("/status")
    emulator.idle()
    webhooks = {urlsplit(e["url"]).path: e for e in emulator.events(call["sid"], "webhook")}
    page = webhooks["/voice"]
    assert page["status"] == 200 and page["content_type"] == "text/html"
    assert page["response_size"] == len(secret) and page["twiml"] is False
    assert "response_body" not in page and "response_headers" not in page
    assert "<Say>sorry</Say>" in webhooks["/fallback"]["response_body"]
    assert "response_body" not in webhooks["/status"]
    assert "s3cr3t" not in emulator.http.get(f"/emulator/calls/{call['sid']}/events").text


# -- the banners, as printed -----------------------------------------------------------------


def _start(tmp_path, *argv: str) -> tuple[subprocess.Popen, list[str]]:
    """`dialtone …` as a process; its banner up to the console line."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "DIALTONE_"))}
    env["DIALTONE_DATA_DIR"] = str(tmp_path / "data")
    env["DIALTONE_DATABASE_URL"] = f"sqlite:///{tmp_path / 'dev.db'}"
    process = subprocess.Popen(
        [sys.executable, "-m", "dialtone.cli", *argv],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    banner: list[str] = []
    for line in process.stdout:
        banner.append(line.rstrip("\n"))
        if "Ctrl-C" in line or line.startswith("  numbers"):
            break
    return process, banner


def _stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=30)


def _printed(banner: list[str], label: str) -> str:
    (line,) = [line for line in banner if line.startswith(f"  {label}")]
    return line[len(label) + 2 :].strip()


def _curl(command: str, *extra: str) -> subprocess.CompletedProcess[str]:
    argv = shlex.split(command)
    assert argv[0] == "curl"
    return subprocess.run([*argv, *extra], capture_output=True, text=True, timeout=30)


def test_the_emulator_banner_prints_a_key_that_works(tmp_path):
    port, signal_port = _free_port(), _free_port()
    process, banner = _start(
        tmp_path,
        "emulator",
        "--port",
        str(port),
        "--signal-port",
        str(signal_port),
        "--media-folder",
        str(tmp_path),
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(process, f"{base}/emulator/health")
        (key,) = re.findall(r"X-Emulator-Key: ([\w-]+)'", "\n".join(banner))
        assert len(key) >= 20
        phones = _curl(f"curl -s -H 'X-Emulator-Key: {key}' {base}/emulator/phones")
        assert json.loads(phones.stdout) == {"phones": []}
        refused = _curl(f"curl -s {base}/emulator/phones")
        assert json.loads(refused.stdout)["code"] == 20003
        console = _printed(banner, "dev console")
        assert console == f"{base}/console?key={key}"
        with httpx.Client(follow_redirects=True) as browser:
            page = browser.get(console)
            assert page.status_code == 200 and str(page.url) == f"{base}/console"
            assert browser.get(f"{base}/console/config.json").status_code == 200
    finally:
        _stop(process)


def test_the_dev_banners_curl_lines_work_as_printed(tmp_path):
    port, emulator_port, signal_port = _free_port(), _free_port(), _free_port()
    process, banner = _start(
        tmp_path,
        "dev",
        "--port",
        str(port),
        "--emulator-port",
        str(emulator_port),
        "--signal-port",
        str(signal_port),
    )
    try:
        wait_until_up(
            process,
            f"http://127.0.0.1:{port}/healthz",
            f"http://127.0.0.1:{emulator_port}/emulator/health",
        )
        follow = _curl(_printed(banner, "follow calls"), "--max-time", "1")
        assert follow.stdout.startswith(": connected")
        called = _curl(_printed(banner, "call the line"))
        call = json.loads(called.stdout)
        assert call["sid"].startswith("CA") and call["direction"] == "inbound"
    finally:
        _stop(process)
