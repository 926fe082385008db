"""`dialtone emulator` as a real process: development credentials printed, provisioning loaded,
the REST API answering over HTTP, Ctrl-C stopping it cleanly."""

import os
import signal
import subprocess
import sys

import httpx

from dialtone.devcreds import development_values
from tests.conftest import _free_port, wait_until_up


def test_the_emulator_command_serves_the_rest_api(tmp_path):
    provision = tmp_path / "demo.toml"
    provision.write_text('[[numbers]]\nphone_number = "+815031234567"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWILIO_")}
    port = _free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dialtone.cli",
            "emulator",
            "--port",
            str(port),
            "--provision",
            str(provision),
        ],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    dev = development_values()
    try:
        wait_until_up(process, f"http://127.0.0.1:{port}/emulator/health")
        response = httpx.get(
            f"http://127.0.0.1:{port}/2010-04-01/Accounts/{dev['TWILIO_ACCOUNT_SID']}/IncomingPhoneNumbers.json",
            auth=(dev["TWILIO_ACCOUNT_SID"], dev["TWILIO_AUTH_TOKEN"]),
            timeout=2,
        )
        assert [n["phone_number"] for n in response.json()["incoming_phone_numbers"]] == [
            "+815031234567"
        ]
    finally:
        process.send_signal(signal.SIGINT)
        out, _err = process.communicate(timeout=30)
    assert process.returncode == 0
    assert f"TWILIO_ACCOUNT_SID={dev['TWILIO_ACCOUNT_SID']}" in out
    assert f"TWILIO_AUTH_TOKEN={dev['TWILIO_AUTH_TOKEN']}" in out
    assert "+815031234567" in out


def test_a_bad_provisioning_file_is_a_clear_error(tmp_path):
    provision = tmp_path / "demo.toml"
    provision.write_text('[[numbers]]\nphone_number = "nope"\n')
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "dialtone.cli",
            "emulator",
            "--port",
            str(_free_port()),
            "--provision",
            str(provision),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert "provisioning: PhoneNumber is invalid" in result.stderr
    assert "Traceback" not in result.stderr
