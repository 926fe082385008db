"""`dialtone dev`: the API server and the emulator as Twilio, on development defaults."""

from __future__ import annotations

import argparse
import json
import secrets
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

from dialtone.cli.common import CommandError, load_env, require_emulator, settings_from
from dialtone.cli.emulator import (
    DEFAULT_EMULATOR_PORT,
    DEFAULT_SIGNAL_PORT,
    browser_host,
    served_names,
    signaling,
)
from dialtone.cli.history import add_history_options, history_settings
from dialtone.cli.lines import open_registry
from dialtone.cli.serve import DEFAULT_PORT, run, server_app

DEMO_NUMBER = "+815031234567"  # the seeds' Twilio number, 050-3123-4567
DEMO_CLIENT = "DeviceId_0001"
DEMO_EXTERNAL = "+819059876543"  # the seeds' external phone, 090-5987-6543
# What the external phone says when it answers (and when someone answers its call): the
# first call proves that audio comes through.
GREETING = (
    "Hello, this is the external phone, 0 9 0, 5 9 8 7, 6 5 4 3. "
    "If you can hear me, the audio works."
)
PASSWORD_FILE = "dev-password"
PASSWORD_MIN_LENGTH = 8  # the registry's minimum
CREDENTIAL_NAMES = (
    "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN",
    "TWILIO_API_KEY",
    "TWILIO_API_SECRET",
)
SECRET_NAMES = frozenset({"TWILIO_AUTH_TOKEN", "TWILIO_API_SECRET"})


def dev_password(env: Mapping[str, str], folder: Path) -> tuple[str, str]:
    """The line's development password and where it comes from: DIALTONE_DEV_PASSWORD, else
    the one kept in `folder` (made once, mode 0600), so a reload or a restart keeps it."""
    from dialtone.emulator.tls import write_private

    given = env.get("DIALTONE_DEV_PASSWORD")
    if given:
        return given, "from DIALTONE_DEV_PASSWORD"
    path = folder / PASSWORD_FILE
    try:
        kept = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        kept = ""
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandError(f"cannot read the development password in {path}: {exc}") from None
    if len(kept) >= PASSWORD_MIN_LENGTH:
        return kept, f"kept in {path}"
    password = secrets.token_urlsafe(9)
    try:
        write_private(path, f"{password}\n".encode(), 0o600)
    except OSError as exc:
        raise CommandError(f"cannot keep the development password in {path}: {exc}") from None
    return password, f"new, kept in {path}"


def _credential_lines(env: Mapping[str, str], generated: list[str]) -> list[str]:
    """Every credential the README names: development values in full (they are public and
    never valid on Twilio); secrets that came from the environment are not printed."""
    shown = "development values" if generated else "from the environment"
    lines = [f"  credentials     {shown} (the emulator's; the same in every run)"]
    for name in (*CREDENTIAL_NAMES, "TWILIO_TWIML_APP_SID"):
        value = env.get(name, "")
        if name in SECRET_NAMES and name not in generated:
            value = "(from the environment, not shown)"
        note = "  (made by `dialtone setup`'s code)" if name == "TWILIO_TWIML_APP_SID" else ""
        lines.append(f"    {name:<20}  {value}{note}")
    return lines


def _seed_003_curl(env: Mapping[str, str], emulator_url: str, generated: list[str]) -> str:
    """Seed 003's `curl`, against the emulator, calling the external phone with the demo
    TwiML the emulator serves itself."""
    from dialtone.emulator.demo import voice_xml_url

    sid = env["TWILIO_ACCOUNT_SID"]
    if "TWILIO_AUTH_TOKEN" in generated:
        user = f"{sid}:{env['TWILIO_AUTH_TOKEN']}"
    else:
        user = '"$TWILIO_ACCOUNT_SID:$TWILIO_AUTH_TOKEN"'  # not printed: the shell has it
    return (
        f"curl -X POST {emulator_url}/2010-04-01/Accounts/{sid}/Calls.json "
        f'--data-urlencode "Url={voice_xml_url(emulator_url)}" '
        f'--data-urlencode "To={DEMO_EXTERNAL}" --data-urlencode "From={DEMO_NUMBER}" '
        f"-u {user}"
    )


def cmd_dev(args: argparse.Namespace, stdin: TextIO, out: TextIO) -> None:
    """The seeds' example on development defaults: the API server and the emulator as Twilio,
    one line and one external phone; no Twilio account needed."""
    require_emulator("dev")
    from dialtone import logs
    from dialtone.devcreds import development_values
    from dialtone.emulator.app import create_app as create_emulator
    from dialtone.emulator.config import Credentials, EmulatorConfig
    from dialtone.emulator.provisioning import provision
    from dialtone.emulator.switch import Switch
    from dialtone.emulator.tls import data_dir
    from dialtone.server.registry import LineNotFound

    env = load_env()
    # No TwiML App SID: `dialtone setup`'s code makes the app on the emulator, as on Twilio.
    defaults = {k: v for k, v in development_values().items() if k != "TWILIO_TWIML_APP_SID"}
    generated = [name for name in defaults if not env.get(name)]
    env.update({name: defaults[name] for name in generated})
    env.setdefault("DIALTONE_PUBLIC_URL", f"http://{args.host}:{args.port}")
    env.setdefault("DIALTONE_DEFAULT_REGION", "JP")
    env.setdefault("DIALTONE_VOICE_SIGNALING", f"localhost:{args.signal_port}")
    # Before anything starts, so every server's lines go through it.
    logs.configure(human=not args.json_logs, region=env["DIALTONE_DEFAULT_REGION"])

    password, password_source = dev_password(env, data_dir())
    registry = open_registry(env)
    try:
        try:
            registry.set_password(DEMO_NUMBER, password)
        except LineNotFound:
            registry.add(DEMO_NUMBER, DEMO_CLIENT, password)
    except Exception as exc:
        raise CommandError(str(exc)) from None
    finally:
        registry.db.dispose()

    base = env["DIALTONE_PUBLIC_URL"].rstrip("/")
    phone_url = f"{base.replace('127.0.0.1', 'localhost')}/"
    emulator_url = f"http://{args.host}:{args.emulator_port}"
    switch = Switch(
        EmulatorConfig(
            credentials=Credentials.from_env(env),
            public_url=emulator_url,
            signal_host=f"{browser_host(args.host)}:{args.signal_port}",
            allowed_hosts=served_names(args.host),
            **history_settings(args),
        )
    )
    # What buying a number and owning a phone would give; the rest is `dialtone setup`'s.
    provision(
        switch,
        {
            "numbers": [{"phone_number": DEMO_NUMBER}],
            "phones": [
                {"address": DEMO_EXTERNAL, "mode": "answer", "answer_after": 2, "say": GREETING}
            ],
        },
    )
    signaling_app, signal_lines = signaling(switch, args.host, args.signal_port, phone_url)
    key = switch.config.console_key  # for the control API and the console; this run only

    def configure_then_serve() -> list[tuple]:
        """`dialtone setup` against the emulator, then the banner, then the API server."""
        from dialtone.account.client import AccountError, rest_client
        from dialtone.account.setup import apply, make_plan

        try:
            plan = make_plan(rest_client(env, emulator_url), base, env, [DEMO_NUMBER])
            apply(plan, env.update, lambda line: None)
        except AccountError as exc:
            raise CommandError(f"setting up the emulator: {exc}") from None
        if plan.problems:
            raise CommandError(f"setting up the emulator: {'; '.join(plan.problems)}")
        token_body = {"twilioPhoneNumber": "050-3123-4567", "password": password}
        lines = [
            "dialtone dev",
            f"  open the phone  {phone_url}",
            f"  demo line       050-3123-4567 ({DEMO_NUMBER}) -> client {DEMO_CLIENT}",
            f"  password        {password}  ({password_source}; DIALTONE_DEV_PASSWORD sets "
            "another)",
            f"  external phone  090-5987-6543 ({DEMO_EXTERNAL}): answers after 2 s and says hello",
            f"  dev console     {emulator_url}/console?key={key}",
            "                  (be the external phone; watch calls)",
            f"  API server      {base}",
            f"  Twilio          emulator at {emulator_url} (REST API, webhooks, simulated phones)",
            *signal_lines,
            *_credential_lines(env, generated),
            f"  token           curl -s -X POST -H 'Content-Type: application/json' "
            f"-d {shlex.quote(json.dumps(token_body))} {base}/twilio/retrieve_capability_token",
            f"  call the line   curl -s -H 'X-Emulator-Key: {key}' {emulator_url}/emulator/calls "
            f"--data-urlencode From={DEMO_EXTERNAL} --data-urlencode To={DEMO_NUMBER}",
            f"  place a call    {_seed_003_curl(env, emulator_url, generated)}",
            "                  (seed 003: calls the external phone with the emulator's demo "
            "TwiML; be that phone in the dev console to hear it)",
            f"  follow calls    curl -sN -H 'X-Emulator-Key: {key}' {emulator_url}/emulator/events",
            "  Ctrl-C stops it.",
        ]
        print("\n".join(lines), file=out, flush=True)
        return [(server_app(settings_from(env), configure_logs=False), args.host, args.port)]

    def ready() -> None:
        print(f"ready: open the phone at {phone_url}", file=out, flush=True)

    run(
        [(create_emulator(switch), args.host, args.emulator_port), signaling_app],
        then=configure_then_serve,
        then_ports=[(args.host, args.port)],
        ready=ready,
    )


def register(commands: argparse._SubParsersAction) -> None:
    dev = commands.add_parser("dev", help="run everything locally on development defaults")
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=int, default=DEFAULT_PORT)
    dev.add_argument("--emulator-port", type=int, default=DEFAULT_EMULATOR_PORT)
    dev.add_argument("--signal-port", type=int, default=DEFAULT_SIGNAL_PORT)
    dev.add_argument(
        "--json-logs",
        action="store_true",
        help="log JSON lines, as `dialtone serve` does (default: one short sentence per event)",
    )
    add_history_options(dev)
    dev.set_defaults(func=cmd_dev)
