"""`dialtone dev` as a real process, as a new user meets it: every credential and `curl` of
its banner works as printed (seed 003's call included, with real curl), the password stays
across restarts, and what it prints while running is one short sentence per event."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from dialtone.cli.dev import GREETING
from dialtone.devcreds import development_values
from dialtone.emulator import demo
from tests.conftest import IN_CI, _free_port, wait_until_up


@dataclass
class Dev:
    process: subprocess.Popen
    banner: list[str]
    port: int
    emulator: str
    stderr: Path

    def printed(self, label: str) -> str:
        (line,) = [line for line in self.banner if line.startswith(f"  {label}")]
        return line[len(label) + 2 :].strip()

    def stop(self) -> str:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            self.process.communicate(timeout=30)
        assert self.process.returncode == 0
        return self.stderr.read_text()


def start_dev(tmp_path: Path, *argv: str, **env_extra: str) -> Dev:
    """`dialtone dev` on free ports; its banner, read up to the line saying it is ready."""
    if shutil.which("curl") is None:
        if IN_CI:
            pytest.fail("CI=true but curl is not installed: the banner's curl is not tested")
        pytest.skip("curl is not installed")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "DIALTONE_"))}
    env.update(
        DIALTONE_DATA_DIR=str(tmp_path / "data"),
        DIALTONE_DATABASE_URL=f"sqlite:///{tmp_path / 'dev.db'}",
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
        **env_extra,
    )
    port, emulator_port, signal_port = _free_port(), _free_port(), _free_port()
    stderr = tmp_path / f"stderr-{port}.txt"
    with stderr.open("w") as err:
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "dialtone.cli", "dev", "--port", str(port)),
                *("--emulator-port", str(emulator_port), "--signal-port", str(signal_port)),
                *argv,
            ],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
    banner: list[str] = []
    for line in process.stdout:
        banner.append(line.rstrip("\n"))
        if line.startswith("ready:"):
            break
    emulator = f"http://127.0.0.1:{emulator_port}"
    dev = Dev(process, banner, port, emulator, stderr)
    wait_until_up(process, f"http://127.0.0.1:{port}/healthz", f"{emulator}/emulator/health")
    return dev


def _curl(command: str) -> dict:
    argv = shlex.split(command)
    assert argv[0] == "curl"
    result = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _events(dev: Dev, sid: str, kind: str) -> list[dict]:
    key = re.search(r"key=([\w-]+)", dev.printed("dev console")).group(1)
    log = httpx.get(
        f"{dev.emulator}/emulator/calls/{sid}/events", headers={"X-Emulator-Key": key}
    ).json()
    return [e for e in log["events"] if e["kind"] == kind]


def _wait(condition, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)
    return result


def test_the_banner_prints_every_credential_and_seed_003s_curl_works_as_printed(tmp_path):
    dev = start_dev(tmp_path)
    try:
        values = development_values()
        for name in (
            "TWILIO_ACCOUNT_SID",
            "TWILIO_AUTH_TOKEN",
            "TWILIO_API_KEY",
            "TWILIO_API_SECRET",
        ):
            assert f"    {name:<20}  {values[name]}" in dev.banner
        (app_line,) = [line for line in dev.banner if "TWILIO_TWIML_APP_SID" in line]
        app_sid = re.search(r"AP[0-9a-f]{32}", app_line).group(0)
        auth = (values["TWILIO_ACCOUNT_SID"], values["TWILIO_AUTH_TOKEN"])
        api = f"{dev.emulator}/2010-04-01/Accounts/{values['TWILIO_ACCOUNT_SID']}"
        apps = httpx.get(f"{api}/Applications.json", auth=auth).json()["applications"]
        assert [a["sid"] for a in apps] == [app_sid]  # the one `dialtone setup` made

        call = _curl(dev.printed("place a call"))
        assert call["sid"].startswith("CA") and call["direction"] == "outbound-api"
        assert (call["to"], call["from"]) == ("+819059876543", "+815031234567")
        final = _wait(
            lambda: (
                (c := httpx.get(f"{api}/Calls/{call['sid']}.json", auth=auth).json())["status"]
                in ("completed", "failed", "busy", "no-answer")
                and c
            )
        )
        assert final["status"] == "completed"
        (fetched,) = _events(dev, call["sid"], "webhook")
        assert fetched["url"] == demo.voice_xml_url(dev.emulator) and fetched["status"] == 200
        say, play = _events(dev, call["sid"], "audio")
        assert say["text"] == demo.GREETING and play["url"].endswith(demo.CHIME)
        if shutil.which("espeak-ng"):  # ./run installs it; the phone greets the call
            (hello,) = _events(dev, call["sid"], "far_end_audio")
            assert hello["text"] == GREETING and hello["seconds"] > 2
        # The root is the console's door, not a 404.
        root = httpx.get(f"{dev.emulator}/")
        assert root.status_code == 303 and root.headers["location"] == "/console"
    finally:
        dev.stop()


def test_the_password_is_kept_across_restarts_in_the_data_folder(tmp_path):
    first = start_dev(tmp_path)
    password = first.printed("password").split()[0]
    first.stop()
    kept = tmp_path / "data" / "dev-password"
    assert kept.read_text().strip() == password and len(password) >= 8
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    second = start_dev(tmp_path)
    try:
        assert second.printed("password").split()[0] == password
        token = _curl(second.printed("token"))
        assert token["success"] is True and token["identity"] == "DeviceId_0001"
    finally:
        second.stop()
    # DIALTONE_DEV_PASSWORD still wins, and leaves the kept one alone.
    third = start_dev(tmp_path, DIALTONE_DEV_PASSWORD="another password")
    try:
        assert third.printed("password").startswith("another password  (from DIALTONE_DEV")
        assert _curl(third.printed("token"))["success"] is True
    finally:
        third.stop()
    assert kept.read_text().strip() == password


def test_it_prints_one_readable_line_per_event(tmp_path):
    dev = start_dev(tmp_path)
    try:
        call = _curl(dev.printed("call the line"))  # nobody has signed in to the phone
        _wait(lambda: "nothing rings" in dev.stderr.read_text())
    finally:
        err = dev.stop()
    lines = err.splitlines()
    short = call["sid"][:10]
    assert f"call {short} from 090-5987-6543 to 050-3123-4567" in [line[10:] for line in lines]
    (nobody,) = [line for line in lines if "nothing rings" in line]
    assert re.fullmatch(
        rf"\d\d:\d\d:\d\d  warning: call {short}: no phone is signed in as DeviceId_0001, "
        "so nothing rings — open the phone and sign in",
        nobody,
    )
    assert not any(line.startswith("{") for line in lines), err
    assert "Started server process" not in err and "HTTP Request" not in err


def test_json_logs_on_request_with_uvicorns_lines_once(tmp_path):
    dev = start_dev(tmp_path, "--json-logs")
    err = dev.stop()
    entries = [json.loads(line) for line in err.splitlines()]
    said = [e["event"] for e in entries if e["logger"] == "uvicorn.error"]
    for once in (
        "Application startup complete.",
        "Shutting down",
        "Application shutdown complete.",
    ):
        assert said.count(once) == 1, said
    assert len([e for e in said if e.startswith("Uvicorn running on")]) == 3  # each its own URL
