"""The `dialtone` command line, in-process for `lines`, as real processes for `serve`/`dev`."""

import io
import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from dialtone.cli import main
from dialtone.devcreds import development_values
from tests.conftest import wait_until_up


@pytest.fixture
def cli(db_url, monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DIALTONE_DATABASE_URL", db_url)
    monkeypatch.setenv("DIALTONE_DEFAULT_REGION", "JP")

    def run(*argv, stdin=""):
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        code = main(list(argv))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


def test_lines_add_list_set_password_remove(cli):
    assert (
        cli(
            "lines",
            "add",
            "050-3123-4567",
            "DeviceId_0001",
            "--password-stdin",
            stdin="first password\n",
        )[0]
        == 0
    )
    code, out, _ = cli("lines", "list")
    assert code == 0
    assert "+815031234567" in out and "DeviceId_0001" in out
    assert "first password" not in out and "argon2" not in out
    code, out, _ = cli(
        "lines", "set-password", "+81-50-3123-4567", "--password-stdin", stdin="second password\n"
    )
    assert code == 0 and "password changed" in out
    code, out, _ = cli("lines", "remove", "+81 50 3123 4567")
    assert code == 0 and "removed +815031234567" in out
    assert "no lines registered" in cli("lines", "list")[1]


def test_refusals_are_one_line_errors_with_status_1(cli):
    cli(
        "lines",
        "add",
        "050-3123-4567",
        "DeviceId_0001",
        "--password-stdin",
        stdin="first password\n",
    )
    code, _, err = cli(
        "lines", "add", "+815031234567", "other", "--password-stdin", stdin="first password\n"
    )
    assert code == 1
    assert err == "dialtone: error: +815031234567 is already registered\n"
    code, _, err = cli("lines", "add", "12", "x", "--password-stdin", stdin="first password\n")
    assert code == 1 and "not a valid phone number" in err
    code, _, err = cli("lines", "remove", "+81-50-9999-0000")
    assert code == 1 and "not registered" in err


def test_without_a_terminal_the_password_must_come_from_stdin(cli):
    code, _, err = cli("lines", "add", "050-3123-4567", "DeviceId_0001")
    assert code == 1 and "--password-stdin" in err


def test_import_is_all_or_nothing(cli, tmp_path):
    good = tmp_path / "lines.csv"
    good.write_text("number,client_name,password\n050-3123-4567,DeviceId_0001,password one\n")
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "number,client_name,password\n050-1111-2222,a,password one\nnope,b,password two\n"
    )
    code, _, err = cli("lines", "import", str(bad))
    assert code == 1 and "row 3:" in err
    assert "no lines registered" in cli("lines", "list")[1]
    code, out, _ = cli("lines", "import", str(good))
    assert code == 0 and "imported 1 line(s)" in out
    code, _, err = cli("lines", "import", str(tmp_path / "missing.csv"))
    assert code == 1 and "cannot read" in err


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _clean_env(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "DIALTONE_"))}
    env["DIALTONE_DATABASE_URL"] = f"sqlite:///{tmp_path / 'serve.db'}"
    return env


def _dialtone(*argv, env, cwd, **kwargs):
    return subprocess.Popen(
        [sys.executable, "-m", "dialtone.cli", *argv],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def test_serve_names_a_missing_variable(tmp_path):
    env = _clean_env(tmp_path)
    env.update({k: v for k, v in development_values().items() if k != "TWILIO_API_SECRET"})
    env["DIALTONE_PUBLIC_URL"] = "https://api.example.com"
    process = _dialtone("serve", env=env, cwd=tmp_path)
    _out, err = process.communicate(timeout=30)
    assert process.returncode == 1
    assert "TWILIO_API_SECRET is required but not set" in err
    assert "Traceback" not in err


def test_serve_answers_over_http_and_stops_cleanly_on_ctrl_c(tmp_path):
    env = _clean_env(tmp_path)
    env.update(development_values())
    env["DIALTONE_PUBLIC_URL"] = "https://api.example.com"
    port = _free_port()
    process = _dialtone("serve", "--port", str(port), env=env, cwd=tmp_path)
    try:
        wait_until_up(process, f"http://127.0.0.1:{port}/healthz")
        response = httpx.get(f"http://127.0.0.1:{port}/healthz")
        assert response.json() == {"status": "ok", "database": "ok"}
    finally:
        process.send_signal(signal.SIGINT)
        _out, err = process.communicate(timeout=30)
    assert process.returncode == 0
    for line in err.strip().splitlines():
        assert line.startswith("{") and line.endswith("}"), line  # structured logs only


def test_serve_starts_while_the_database_is_down_and_recovers_alone(tmp_path):
    env = _clean_env(tmp_path)
    env.update(development_values())
    env["DIALTONE_PUBLIC_URL"] = "https://api.example.com"
    env["DIALTONE_DATABASE_URL"] = f"sqlite:///{tmp_path / 'later' / 'serve.db'}"
    port = _free_port()
    process = _dialtone("serve", "--port", str(port), env=env, cwd=tmp_path)
    try:
        wait_until_up(process, f"http://127.0.0.1:{port}/healthz")
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 503
        (tmp_path / "later").mkdir()  # the database can be opened now
        deadline = time.monotonic() + 10
        while httpx.get(f"http://127.0.0.1:{port}/healthz").status_code != 200:
            assert time.monotonic() < deadline, "/healthz stayed 503"
            time.sleep(0.2)
    finally:
        process.send_signal(signal.SIGINT)
        _out, err = process.communicate(timeout=30)
    assert process.returncode == 0
    assert '"event": "database_unavailable"' in err and "serving anyway" in err
    assert '"event": "database_upgraded"' in err and "Traceback" not in err


def test_a_busy_port_is_a_clear_error(tmp_path):
    env = _clean_env(tmp_path)
    env.update(development_values())
    env["DIALTONE_PUBLIC_URL"] = "https://api.example.com"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        process = _dialtone("serve", "--port", str(port), env=env, cwd=tmp_path)
        _out, err = process.communicate(timeout=30)
    assert process.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in err and "--port" in err


def test_dev_serves_the_seed_line_with_the_printed_password(tmp_path):
    env = _clean_env(tmp_path)
    env["DIALTONE_DEV_PASSWORD"] = "development pw"
    port, emulator_port, signal_port = _free_port(), _free_port(), _free_port()
    env["DIALTONE_DATA_DIR"] = str(tmp_path / "data")
    process = _dialtone(
        "dev",
        "--port",
        str(port),
        "--emulator-port",
        str(emulator_port),
        "--signal-port",
        str(signal_port),
        env=env,
        cwd=tmp_path,
    )
    try:
        wait_until_up(
            process,
            f"http://127.0.0.1:{port}/healthz",
            f"http://127.0.0.1:{emulator_port}/emulator/health",
        )
        response = httpx.post(
            f"http://127.0.0.1:{port}/twilio/retrieve_capability_token",
            json={"twilioPhoneNumber": "050-3123-4567", "password": "development pw"},
            timeout=5,
        )
        assert response.status_code == 200
        assert response.json()["identity"] == "DeviceId_0001"
        # The embedded emulator routes the seed's incoming call to the API server.
        emulator = f"http://127.0.0.1:{emulator_port}"
        dev = development_values()  # the control API takes the account's credentials
        auth = (dev["TWILIO_ACCOUNT_SID"], dev["TWILIO_AUTH_TOKEN"])
        call = httpx.post(
            f"{emulator}/emulator/calls",
            data={"From": "+819059876543", "To": "+815031234567"},
            auth=auth,
        ).json()
        deadline = time.monotonic() + 30
        while True:
            log = httpx.get(f"{emulator}/emulator/calls/{call['sid']}/events", auth=auth).json()
            webhooks = [e for e in log["events"] if e["kind"] == "webhook"]
            if webhooks or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert webhooks[0]["status"] == 200
        assert "<Client>DeviceId_0001</Client>" in webhooks[0]["response_body"]
    finally:
        process.send_signal(signal.SIGINT)
        out, _err = process.communicate(timeout=30)
    assert "development pw" in out
    assert f"http://127.0.0.1:{port}" in out and f"http://127.0.0.1:{emulator_port}" in out
    assert f"wss://localhost:{signal_port}/signal" in out
    assert f"open the phone  http://localhost:{port}/" in out
    assert (tmp_path / "data" / "emulator-cert.pem").exists()
    assert process.returncode == 0


def test_web_build_writes_a_static_phone(tmp_path, capsys):
    import json
    import re

    from dialtone.server import sounds
    from dialtone.server.web import SDK, VENDOR, WEB

    if not SDK.exists():
        pytest.skip("the Voice SDK is not installed (npm ci in src/dialtone/web)")
    out = tmp_path / "site"
    assert main(["web", "build", str(out), "--api-base", "https://api.example.com/prod/"]) == 0
    assert json.loads((out / "config.json").read_text()) == {
        "apiBase": "https://api.example.com/prod",
        "chunderw": None,
    }
    # Everything but the page and its config is under one content-addressed folder.
    (folder,) = (out / "assets").iterdir()
    assert re.fullmatch(r"[0-9a-f]{12}", folder.name)
    files = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assets = {f"assets/{folder.name}/{name}" for name in ("app.js", "style.css")}
    assets |= {f"assets/{folder.name}/{name}" for name in VENDOR}
    assets |= {f"assets/{folder.name}/sounds/{name}.wav" for name in sounds.NAMES}
    assert files == {"index.html", "config.json", *assets}
    for name in files:
        assert (out / name).stat().st_size > 0, name
    # The page's references (stylesheet, SDK, app) all point at files that exist.
    page = (out / "index.html").read_text()
    # (In-page references, `href="#i-call"` to the inline SVG icons, are not files.)
    refs = re.findall(r'(?:src|href)="([^":#][^":]*)"', page)
    assert sorted(refs) == sorted(
        f"assets/{folder.name}/{name}" for name in ("style.css", *VENDOR, "app.js")
    )
    assert all((out / ref).is_file() for ref in refs)
    # app.js finds its sounds beside itself (assets/<digest>/sounds/), not beside the page.
    app = (out / "assets" / folder.name / "app.js").read_text()
    assert app == (WEB / "app.js").read_text()
    assert "new URL(`sounds/${n}.wav`, assetBase)" in app and "document.currentScript" in app
    # Same files, same folder: a rebuild is deterministic.
    again = tmp_path / "again"
    assert main(["web", "build", str(again), "--api-base", "https://other.example.com"]) == 0
    assert [p.name for p in (again / "assets").iterdir()] == [folder.name]
    assert (again / "index.html").read_text() == page
    assert main(["web", "build", str(out), "--api-base", "api.example.com"]) == 1


def test_web_build_refuses_an_index_html_it_cannot_ship():
    from dialtone.cli.common import CommandError
    from dialtone.cli.web import rewrite_index
    from dialtone.server.web import WEB

    page = (WEB / "index.html").read_text()
    assert 'src="assets/abc/app.js"' in rewrite_index(page, "assets/abc")
    broken = [
        page.replace('src="app.js"', 'src="main.js"'),  # renamed: would 404
        page.replace('href="style.css"', "href='style.css'"),  # not the exact attribute
        page.replace("</body>", '<img src="logo.png"></body>'),  # a new asset not shipped
        page.replace('<script src="app.js"></script>', ""),  # the app is gone
    ]
    for variant in broken:
        with pytest.raises(CommandError):
            rewrite_index(variant, "assets/abc")
