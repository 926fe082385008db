"""`dialtone aws package`: the zip Lambda runs, unzipped and run in an isolated interpreter.

The handler is invoked in `python -I -S` with only the unzipped folder on sys.path (as
Lambda puts /var/task first; its runtime adds boto3 only), with API Gateway REST (stage
`prod`) and HTTP API (named stage `prod`) events for seed 002's three curl checks.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from twilio.request_validator import RequestValidator

from dialtone.cli import main
from dialtone.devcreds import development_values
from dialtone.server.db import Database
from dialtone.server.registry import LineRegistry
from tests.conftest import SEED_CLIENT, SEED_NUMBER, SEED_PASSWORD
from tests.lambda_events import DOMAIN, http_api_event, rest_api_event
from tests.twiml_helpers import structure

PUBLIC_URL = f"https://{DOMAIN}/prod"
TOKEN = "/twilio/retrieve_capability_token"
INCOMING = "/twilio/retrieve_twiml/call_incoming"
OUTGOING = "/twilio/retrieve_twiml/call_outgoing"
# Seed 002's curl bodies (section 2-8), with the seed's placeholders as they are.
SEED_INCOMING = (
    "ApplicationSid=AP75zzzzzzzzzzzzzzzzzzzzzzzzzzzzzz&ApiVersion=2010-04-01&Called=&Caller="
    "%2B819059876543&CallStatus=ringing&CallSid=CCA86nnnnnnnnnnnnnnnnnnnnnnnnnnnnnn&To="
    "%2B815031234567&From=%2B819059876543&Direction=inbound&AccountSid="
    "AC3exxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
)
SEED_OUTGOING = (
    "AccountSid=AC3exxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx&ApiVersion=2010-04-01&ApplicationSid="
    "AP75zzzzzzzzzzzzzzzzzzzzzzzzzzzzzz&Called=&Caller=client%3ADeviceId_0001&CallSid="
    "CA06nnnnnnnnnnnnnnnnnnnnnnnnnnnnnn&CallStatus=ringing&Direction=inbound&From="
    "client%3ADeviceId_0001&To=&callerPhoneNumber=%2B81-50-3123-4567&callOutgoingPhoneNumber="
    "%2B81-90-5987-6543"
)
FORBIDDEN = (
    *("aiortc", "av", "aioice", "websockets", "cryptography", "httpx", "boto3", "botocore"),
    "httptools",  # `dialtone serve` only
)

# Runs inside the isolated interpreter: the handler over every event from stdin.
DRIVER = """
import json, sys
sys.path.insert(0, sys.argv[1])
from dialtone.server import aws_lambda
events = json.load(sys.stdin)
results = [aws_lambda.handler(event, None) for event in events]
outside = sorted(
    name for name, module in sys.modules.items()
    if getattr(module, "__file__", None)
    and not module.__file__.startswith((sys.argv[1], sys.base_prefix))
)
print(json.dumps({
    "results": results,
    "outside": outside,
    "twilio_rest_loaded": "twilio.rest" in sys.modules,
}))
"""


@pytest.fixture(scope="module")
def package(tmp_path_factory) -> tuple[Path, Path, str]:
    """x86_64 / this Python (3.11), built by the CLI, unzipped into an empty folder."""
    build = tmp_path_factory.mktemp("build")
    out = build / "lambda.zip"
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    printed = subprocess.run(
        [
            sys.executable,
            "-m",
            "dialtone.cli",
            "aws",
            "package",
            "--arch",
            "x86_64",
            "--python",
            version,
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert printed.returncode == 0, printed.stderr
    task = tmp_path_factory.mktemp("task")
    with zipfile.ZipFile(out) as archive:
        archive.extractall(task)
    return out, task, printed.stdout


def test_the_command_prints_the_sizes_against_lambdas_limits(package):
    out, task, printed = package
    unzipped = sum(p.stat().st_size for p in task.rglob("*") if p.is_file())
    mb = f"{out.stat().st_size / 2**20:.1f} MB zipped"
    assert mb in printed and f"{unzipped / 2**20:.1f} MB unzipped" in printed
    assert "limit 50.0 MB" in printed and "limit 250.0 MB" in printed
    assert out.stat().st_size < 50 * 2**20 and unzipped < 250 * 2**20


def test_only_the_server_goes_in(package):
    _, task, _ = package
    top = {p.name for p in task.iterdir()}
    assert {"dialtone", "starlette", "sqlalchemy", "mangum", "twilio", "psycopg"} <= top
    assert not (task / "dialtone" / "emulator").exists()
    assert not (task / "twilio" / "rest").exists()
    assert not any((task / name).exists() for name in FORBIDDEN), top
    assert not [p for p in task.rglob("*") if p.is_dir() and p.name in ("tests", "test")]
    assert not list(task.rglob("node_modules"))
    assert (task / "dialtone" / "server" / "migrations" / "versions").is_dir()


def test_every_module_has_bytecode_that_is_never_considered_stale(package):
    _, task, _ = package
    tag = f"cpython-{sys.version_info.major}{sys.version_info.minor}"
    sources = [p for p in (task / "dialtone" / "server").rglob("*.py")]
    assert sources
    for source in sources:
        pyc = source.parent / "__pycache__" / f"{source.stem}.{tag}.pyc"
        assert pyc.exists(), source
        # PEP 552 flags: 0b01 = hash-based, not checked (zip mtimes are only 2 s precise).
        assert int.from_bytes(pyc.read_bytes()[4:8], "little") == 0b01, pyc


def test_the_build_is_reproducible(package, tmp_path):
    out, _, _ = package
    again = tmp_path / "again.zip"
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    code = main(["aws", "package", "--arch", "x86_64", "--python", version, "--out", str(again)])
    assert code == 0
    assert again.read_bytes() == out.read_bytes()


def test_a_missing_interpreter_for_the_runtime_is_a_clear_error(tmp_path, capsys):
    code = main(
        [
            "aws",
            "package",
            "--python",
            "3.13",
            "--interpreter",
            sys.executable,
            "--out",
            str(tmp_path / "x.zip"),
        ]
    )
    assert code == 1
    assert "is not a working Python 3.13" in capsys.readouterr().err
    assert not (tmp_path / "x.zip").exists()


def _sign(url: str, body: str) -> str:
    from urllib.parse import parse_qsl

    params = dict(parse_qsl(body, keep_blank_values=True))
    return RequestValidator(development_values()["TWILIO_AUTH_TOKEN"]).compute_signature(
        url, params
    )


def _events(kind: str) -> list[dict]:
    """Token, incoming and outgoing (seed 002's curl checks), then a forged incoming."""
    token_body = json.dumps({"twilioPhoneNumber": "+81-50-3123-4567", "password": SEED_PASSWORD})
    forged = _sign(f"https://{DOMAIN}{INCOMING}", SEED_INCOMING)  # without the stage
    specs = [
        (TOKEN, token_body, "application/json", ""),
        (INCOMING, SEED_INCOMING, None, _sign(PUBLIC_URL + INCOMING, SEED_INCOMING)),
        (OUTGOING, SEED_OUTGOING, None, _sign(PUBLIC_URL + OUTGOING, SEED_OUTGOING)),
        (INCOMING, SEED_INCOMING, None, forged),
    ]
    events = []
    for path, body, content_type, signature in specs:
        extra = {"content_type": content_type} if content_type else {}
        if kind == "rest":
            events.append(rest_api_event(path, body, b64=False, signature=signature, **extra))
        else:  # HTTP API sends form bodies base64-encoded
            events.append(
                http_api_event(path, body, b64=True, signature=signature, stage="/prod", **extra)
            )
    return events


def _invoke(task: Path, db_url: str, events: list[dict], *, public_url: str | None) -> dict:
    env = {
        **development_values(),
        "DIALTONE_DATABASE_URL": db_url,
        "DIALTONE_API_GATEWAY_BASE_PATH": "/prod",
        "DIALTONE_DEFAULT_REGION": "JP",
        "PATH": "/usr/bin:/bin",
    }
    if public_url:
        env["DIALTONE_PUBLIC_URL"] = public_url
    ran = subprocess.run(
        [sys.executable, "-I", "-S", "-c", DRIVER, str(task)],
        input=json.dumps(events),
        capture_output=True,
        text=True,
        env=env,
        cwd=task.parent,
        timeout=120,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr[-3000:]
    return json.loads(ran.stdout.splitlines()[-1])


@pytest.mark.parametrize("kind", ["rest", "http"])
@pytest.mark.parametrize("public_url", [PUBLIC_URL, None], ids=["configured", "from-context"])
def test_the_packaged_handler_answers_seed_002s_curl_checks(package, db_url, kind, public_url):
    _, task, _ = package
    db = Database(db_url)
    db.upgrade()
    LineRegistry(db, "JP").add(SEED_NUMBER, SEED_CLIENT, SEED_PASSWORD)
    db.dispose()

    run = _invoke(task, db_url, _events(kind), public_url=public_url)
    token, incoming, outgoing, forged = run["results"]

    assert run["outside"] == []  # nothing came from this machine's site-packages
    assert run["twilio_rest_loaded"] is False

    assert token["statusCode"] == 200
    reply = json.loads(token["body"])
    assert reply["success"] is True and reply["identity"] == SEED_CLIENT
    assert reply["capabilityToken"].count(".") == 2 and reply["accessToken"].count(".") == 2

    for result in (incoming, outgoing):
        assert result["statusCode"] == 200
        assert result["isBase64Encoded"] is False
        assert result["headers"]["content-type"].startswith("application/xml")
        assert result["body"].startswith("<?xml")
    assert structure(incoming["body"]) == (
        "Response",
        {},
        "",
        (
            (
                "Dial",
                {"action": "dial_ended", "timeout": "60"},
                "",
                (("Client", {}, SEED_CLIENT, ()),),
            ),
        ),
    )
    assert structure(outgoing["body"]) == (
        "Response",
        {},
        "",
        (
            (
                "Dial",
                # answerOnBridge: the browser is answered when the callee picks up.
                {
                    "action": "dial_ended",
                    "timeout": "60",
                    "callerId": SEED_NUMBER,
                    "answerOnBridge": "true",
                },
                "",
                (("Number", {}, "+819059876543", ()),),
            ),
        ),
    )
    assert forged["statusCode"] == 403
    assert "<Response" not in forged["body"]

    # The phone's other calls with the token it got: refresh, and its recent calls (none:
    # the seed's placeholder CallSids, CCA86nnn…, are not SIDs, so no history was kept).
    bearer = {"authorization": f"Bearer {reply['accessToken']}"}
    if kind == "rest":
        follow = [rest_api_event("/twilio/refresh_token", "", b64=False), None]
        follow[0]["headers"].update(bearer)
        follow[0]["multiValueHeaders"].update({k: [v] for k, v in bearer.items()})
        calls = rest_api_event("/twilio/calls", "", b64=False)
        calls["httpMethod"] = calls["requestContext"]["httpMethod"] = "GET"
        calls["headers"].update(bearer)
        calls["multiValueHeaders"].update({k: [v] for k, v in bearer.items()})
        follow[1] = calls
    else:
        follow = [
            http_api_event("/twilio/refresh_token", "", b64=False, stage="/prod"),
            http_api_event("/twilio/calls", "", b64=False, stage="/prod", method="GET"),
        ]
        for event in follow:
            event["headers"].update(bearer)
    refreshed, recent = _invoke(task, db_url, follow, public_url=public_url)["results"]
    assert refreshed["statusCode"] == 200
    assert json.loads(refreshed["body"])["identity"] == SEED_CLIENT
    assert recent["statusCode"] == 200
    assert json.loads(recent["body"])["calls"] == []
