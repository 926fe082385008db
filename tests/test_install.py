"""`pip install dialtone` (the core) is the API server alone: none of the emulator's
dependencies, yet every server module imports and a signed webhook goes through the Lambda
handler; commands that need the emulator say which extra to install."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlencode

import pytest
from twilio.request_validator import RequestValidator

from dialtone.devcreds import development_values
from tests.conftest import SEED_CLIENT, SEED_NUMBER
from tests.lambda_events import DOMAIN, http_api_event

ROOT = Path(__file__).resolve().parents[1]
EMULATOR_ONLY = ("aiortc", "av", "aioice", "websockets", "cryptography", "httpx", "boto3")
INCOMING = "/twilio/retrieve_twiml/call_incoming"

# Runs in the core-only venv: import every server module, then one signed webhook.
SCRIPT = """
import importlib, json, pkgutil, sys
import dialtone.server
names = [m.name for m in pkgutil.walk_packages(dialtone.server.__path__, "dialtone.server.")]
for name in names:
    importlib.import_module(name)
from dialtone.server import aws_lambda
result = aws_lambda.handler(json.load(sys.stdin), None)
print(json.dumps({"modules": names, "result": result}))
"""


@pytest.fixture(scope="module")
def core_venv(tmp_path_factory) -> Path:
    venv = tmp_path_factory.mktemp("core") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    installed = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(ROOT)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert installed.returncode == 0, installed.stderr[-3000:]
    return venv


def _run(venv: Path, *argv: str, cwd: Path, env: dict | None = None, stdin: str = ""):
    return subprocess.run(
        [str(venv / "bin" / argv[0]), *argv[1:]],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd,
        env={"PATH": os.environ["PATH"], "HOME": str(cwd), **(env or {})},
        timeout=300,
        check=False,
    )


def test_the_core_install_has_none_of_the_emulators_dependencies(core_venv, tmp_path):
    listed = _run(core_venv, "python", "-m", "pip", "list", "--format=json", cwd=tmp_path)
    names = {p["name"].lower() for p in json.loads(listed.stdout)}
    assert {"dialtone", "starlette", "sqlalchemy", "twilio", "mangum"} <= names
    assert names.isdisjoint(EMULATOR_ONLY), names & set(EMULATOR_ONLY)


def test_the_server_runs_on_the_core_alone(core_venv, tmp_path):
    env = {
        **development_values(),
        "DIALTONE_DATABASE_URL": f"sqlite:///{tmp_path / 'core.db'}",
        "DIALTONE_PUBLIC_URL": f"https://{DOMAIN}",
        "DIALTONE_DEFAULT_REGION": "JP",
    }
    added = _run(
        core_venv,
        "dialtone",
        "lines",
        "add",
        "050-3123-4567",
        SEED_CLIENT,
        "--password-stdin",
        cwd=tmp_path,
        env=env,
        stdin="correct horse battery\n",
    )
    assert added.returncode == 0, added.stderr

    params = {"CallSid": "CA" + "1a" * 16, "From": "+819059876543", "To": SEED_NUMBER}
    signature = RequestValidator(env["TWILIO_AUTH_TOKEN"]).compute_signature(
        f"https://{DOMAIN}{INCOMING}", params
    )
    event = http_api_event(INCOMING, urlencode(params), b64=True, signature=signature)
    ran = _run(core_venv, "python", "-c", SCRIPT, cwd=tmp_path, env=env, stdin=json.dumps(event))
    assert ran.returncode == 0, ran.stderr[-3000:]
    out = json.loads(ran.stdout.splitlines()[-1])
    assert "dialtone.server.aws_lambda" in out["modules"]
    assert out["result"]["statusCode"] == 200
    assert f"<Client>{SEED_CLIENT}</Client>" in out["result"]["body"]


@pytest.mark.parametrize("command", ["dev", "emulator"])
def test_commands_that_need_the_emulator_name_the_extra(core_venv, tmp_path, command):
    ran = _run(core_venv, "dialtone", command, "--port", "1", cwd=tmp_path)
    assert ran.returncode == 1
    assert ran.stderr.startswith(f"dialtone: error: `dialtone {command}` needs the emulator")
    assert "pip install 'dialtone[emulator]'" in ran.stderr
    assert "Traceback" not in ran.stderr
