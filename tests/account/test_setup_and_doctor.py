"""`dialtone setup` and `dialtone doctor` against the emulator, through twilio-python's Client
with only its base URLs changed, and a live API server for doctor's signed probe."""

from __future__ import annotations

import io
import os
import stat
import sys
from dataclasses import replace

import pytest
from twilio.rest import Client

from dialtone.cli import main
from dialtone.server.app import create_app
from dialtone.server.db import Database
from dialtone.server.registry import LineRegistry
from tests.conftest import TEST_SETTINGS, _free_port, running
from tests.emulator.conftest import TWILIO_NUMBER, make_emulator

INCOMING = "/twilio/retrieve_twiml/call_incoming"
UNRELATED = "# my own settings\nDIALTONE_DEFAULT_REGION=JP\nFOO='keep me'\n"


@pytest.fixture
def emulator():
    yield from make_emulator(scale=0.02)


@pytest.fixture
def account(emulator, db_url, tmp_path, monkeypatch):
    """A fresh account owning the seed number, a registered line, and a live API server
    checking signatures with the account's auth token at its own URL."""
    for name in ("TWILIO_REGION", "TWILIO_EDGE"):
        monkeypatch.delenv(name, raising=False)
    for name in [n for n in os.environ if n.startswith(("TWILIO_", "DIALTONE_"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    emulator.add_number(TWILIO_NUMBER)
    db = Database(db_url)
    db.upgrade()
    LineRegistry(db, "JP").add(TWILIO_NUMBER, "DeviceId_0001", "correct horse battery")

    port = _free_port()
    public_url = f"http://127.0.0.1:{port}"
    settings = replace(
        TEST_SETTINGS,
        auth_token=emulator.credentials.auth_token,
        public_url=public_url,
        database_url=db_url,
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", emulator.credentials.account_sid)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", emulator.credentials.auth_token)
    monkeypatch.setenv("DIALTONE_PUBLIC_URL", public_url)
    monkeypatch.setenv("DIALTONE_DATABASE_URL", db_url)
    (tmp_path / ".env").write_text(UNRELATED)
    with running(create_app(settings, db), port=port):
        yield emulator
    db.dispose()


def dialtone(capsys, monkeypatch, *argv: str) -> tuple[int, str]:
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def twilio(emulator) -> Client:
    client = Client(emulator.credentials.account_sid, emulator.credentials.auth_token)
    client.api.base_url = client.monitor.base_url = emulator.base_url
    return client


def test_a_fresh_account_is_set_up_then_nothing_changes(account, capsys, monkeypatch, tmp_path):
    api = account.base_url
    code, out = dialtone(capsys, monkeypatch, "setup", "--api-url", api)
    assert code == 0, out
    env = (tmp_path / ".env").read_text()
    assert env.startswith(UNRELATED)  # the user's lines, as they were
    assert stat.S_IMODE((tmp_path / ".env").stat().st_mode) == 0o600
    values = dict(line.split("=", 1) for line in env.splitlines()[3:])
    assert set(values) == {"TWILIO_API_KEY", "TWILIO_API_SECRET", "TWILIO_TWIML_APP_SID"}

    client = twilio(account)
    public_url = os.environ["DIALTONE_PUBLIC_URL"]
    (application,) = client.applications.list(friendly_name="dialtone")
    assert application.sid == values["TWILIO_TWIML_APP_SID"]
    assert application.voice_url == f"{public_url}/twilio/retrieve_twiml/call_outgoing"
    assert application.voice_method == "POST"
    assert application.status_callback == f"{public_url}/twilio/status_callback"
    (number,) = client.incoming_phone_numbers.list(phone_number=TWILIO_NUMBER)
    assert number.voice_url == public_url + INCOMING and number.voice_method == "POST"
    assert client.keys(values["TWILIO_API_KEY"]).fetch().friendly_name == "dialtone"
    assert values["TWILIO_API_SECRET"] not in out  # shown once by Twilio, kept in the file

    code, out = dialtone(capsys, monkeypatch, "setup", "--api-url", api)
    assert (code, out.strip()) == (0, "nothing to change")
    assert (tmp_path / ".env").read_text() == env

    code, out = dialtone(capsys, monkeypatch, "doctor", "--api-url", api)
    assert code == 0, out
    assert "PROBLEM" not in out
    assert "accepts Twilio's signature" in out


def test_a_voice_url_changed_behind_our_back_is_named_then_repaired(account, capsys, monkeypatch):
    api = account.base_url
    assert dialtone(capsys, monkeypatch, "setup", "--api-url", api)[0] == 0
    client = twilio(account)
    (number,) = client.incoming_phone_numbers.list(phone_number=TWILIO_NUMBER)
    public_url = os.environ["DIALTONE_PUBLIC_URL"]
    client.incoming_phone_numbers(number.sid).update(voice_url=f"{public_url}/prod{INCOMING}")

    code, out = dialtone(capsys, monkeypatch, "doctor", "--api-url", api)
    assert code == 1
    (line,) = [line for line in out.splitlines() if line.startswith("PROBLEM")]
    assert TWILIO_NUMBER in line
    assert "stage prefix /prod instead of (none)" in line
    assert "dialtone setup" in line

    code, out = dialtone(capsys, monkeypatch, "setup", "--api-url", api)
    assert code == 0 and f"update number {TWILIO_NUMBER}" in out
    assert dialtone(capsys, monkeypatch, "doctor", "--api-url", api)[0] == 0


def test_a_dry_run_prints_the_plan_and_changes_nothing(account, capsys, monkeypatch, tmp_path):
    code, out = dialtone(capsys, monkeypatch, "setup", "--dry-run", "--api-url", account.base_url)
    assert code == 0
    assert "dry run" in out and "create TwiML App 'dialtone'" in out
    assert f"VoiceUrl: (none) -> {os.environ['DIALTONE_PUBLIC_URL']}{INCOMING}" in out
    assert (tmp_path / ".env").read_text() == UNRELATED
    assert twilio(account).applications.list(friendly_name="dialtone") == []


def test_a_number_the_account_does_not_own_is_reported(account, capsys, monkeypatch):
    code, out = dialtone(
        capsys, monkeypatch, "setup", "050-9999-0000", "--api-url", account.base_url
    )
    assert code == 1
    assert "+815099990000: not a number of this Twilio account" in out
    # The rest of the plan still went ahead: the TwiML App exists.
    assert len(twilio(account).applications.list(friendly_name="dialtone")) == 1


def test_a_wrong_auth_token_is_refused_clearly(account, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "0" * 32)
    code, out = dialtone(capsys, monkeypatch, "setup", "--api-url", account.base_url)
    assert code == 1
    assert "Twilio error 20003" in out
    assert "Traceback" not in out
    assert (tmp_path / ".env").read_text() == UNRELATED
    code, out = dialtone(capsys, monkeypatch, "doctor", "--api-url", account.base_url)
    assert code == 1
    assert out.startswith("PROBLEM  credentials: Twilio refused them")


def test_doctor_sees_a_server_that_checks_another_url(account, capsys, monkeypatch):
    assert dialtone(capsys, monkeypatch, "setup", "--api-url", account.base_url)[0] == 0
    # Twilio and we agree on a public URL the server does not use: its signatures fail.
    public_url = os.environ["DIALTONE_PUBLIC_URL"].replace("127.0.0.1", "localhost")
    monkeypatch.setenv("DIALTONE_PUBLIC_URL", public_url)
    assert dialtone(capsys, monkeypatch, "setup", "--api-url", account.base_url)[0] == 0
    code, out = dialtone(capsys, monkeypatch, "doctor", "--api-url", account.base_url)
    assert code == 1
    (line,) = [line for line in out.splitlines() if line.startswith("PROBLEM")]
    assert "refused a correctly signed request (403)" in line


def test_an_error_twilio_recorded_shows_in_the_alerts_summary(account, capsys, monkeypatch):
    api = account.base_url
    assert dialtone(capsys, monkeypatch, "setup", "--api-url", api)[0] == 0
    client = twilio(account)
    (number,) = client.incoming_phone_numbers.list(phone_number=TWILIO_NUMBER)
    # The server answers 404 for a path it does not have: Twilio records 11200.
    missing = os.environ["DIALTONE_PUBLIC_URL"] + "/no/such/webhook"
    client.incoming_phone_numbers(number.sid).update(voice_url=missing)
    call = account.call_in()
    account.wait_status(call["sid"], ("completed", "failed", "busy", "no-answer", "canceled"))
    client.incoming_phone_numbers(number.sid).update(
        voice_url=os.environ["DIALTONE_PUBLIC_URL"] + INCOMING
    )
    code, out = dialtone(capsys, monkeypatch, "doctor", "--api-url", api)
    assert code == 1
    (line,) = [line for line in out.splitlines() if line.startswith("PROBLEM")]
    assert line.startswith("PROBLEM  alerts: 1 in the last 24 h: 11200 ×1")
    assert call["sid"] in line
