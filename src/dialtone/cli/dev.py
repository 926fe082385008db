"""`dialtone dev`: the API server and the emulator as Twilio, on development defaults."""

from __future__ import annotations

import argparse
import secrets
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


def cmd_dev(args: argparse.Namespace, stdin: TextIO, out: TextIO) -> None:
    """The seeds' example on development defaults: the API server and the emulator as Twilio,
    one line and one external phone; no Twilio account needed."""
    require_emulator("dev")
    from dialtone.devcreds import development_values
    from dialtone.emulator.app import create_app as create_emulator
    from dialtone.emulator.config import Credentials, EmulatorConfig
    from dialtone.emulator.provisioning import provision
    from dialtone.emulator.switch import Switch
    from dialtone.server.registry import LineNotFound

    env = load_env()
    # No TwiML App SID: `dialtone setup`'s code makes the app on the emulator, as on Twilio.
    defaults = {k: v for k, v in development_values().items() if k != "TWILIO_TWIML_APP_SID"}
    generated = [name for name in defaults if not env.get(name)]
    env.update({name: defaults[name] for name in generated})
    env.setdefault("DIALTONE_PUBLIC_URL", f"http://{args.host}:{args.port}")
    env.setdefault("DIALTONE_DEFAULT_REGION", "JP")
    env.setdefault("DIALTONE_VOICE_SIGNALING", f"localhost:{args.signal_port}")

    password = env.get("DIALTONE_DEV_PASSWORD") or secrets.token_urlsafe(9)
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
            "phones": [{"address": DEMO_EXTERNAL, "mode": "answer", "answer_after": 2}],
        },
    )

    def configure_then_serve() -> list[tuple]:
        """`dialtone setup` against the emulator, then the API server with what it made."""
        from dialtone.account.client import AccountError, rest_client
        from dialtone.account.setup import apply, make_plan

        try:
            plan = make_plan(rest_client(env, emulator_url), base, env, [DEMO_NUMBER])
            apply(plan, env.update, lambda line: None)
        except AccountError as exc:
            raise CommandError(f"setting up the emulator: {exc}") from None
        if plan.problems:
            raise CommandError(f"setting up the emulator: {'; '.join(plan.problems)}")
        print(
            f"  set up          TwiML App {env['TWILIO_TWIML_APP_SID']} and {DEMO_NUMBER}'s "
            "voice URL, by `dialtone setup`'s code",
            file=out,
            flush=True,
        )
        return [(server_app(settings_from(env)), args.host, args.port)]

    signaling_app, signal_lines = signaling(switch, args.host, args.signal_port)
    key = switch.config.console_key  # for the control API and the console; this run only
    print(
        "dialtone dev\n"
        f"  open the phone  {base.replace('127.0.0.1', 'localhost')}/\n"
        f"  dev console     {emulator_url}/console?key={key}\n"
        "                  (be the external phone; watch calls)\n"
        f"  API server      {base}\n"
        f"  Twilio          emulator at {emulator_url} (REST API, webhooks, simulated phones)\n"
        f"  demo line       050-3123-4567 ({DEMO_NUMBER}) -> client {DEMO_CLIENT}\n"
        f"  password        {password}\n"
        f"  external phone  090-5987-6543 ({DEMO_EXTERNAL})\n"
        f"  credentials     {'development values' if generated else 'from the environment'}\n"
        f"  token           curl -s -X POST -H 'Content-Type: application/json' "
        f'-d \'{{"twilioPhoneNumber": "050-3123-4567", "password": "{password}"}}\' '
        f"{base}/twilio/retrieve_capability_token\n"
        f"  call the line   curl -s -H 'X-Emulator-Key: {key}' {emulator_url}/emulator/calls "
        f"--data-urlencode From={DEMO_EXTERNAL} --data-urlencode To={DEMO_NUMBER}\n"
        f"  follow calls    curl -sN -H 'X-Emulator-Key: {key}' {emulator_url}/emulator/events\n"
        + "\n".join(signal_lines)
        + "\n  Ctrl-C stops it.",
        file=out,
        flush=True,
    )
    run(
        [(create_emulator(switch), args.host, args.emulator_port), signaling_app],
        then=configure_then_serve,
        then_ports=[(args.host, args.port)],
    )


def register(commands: argparse._SubParsersAction) -> None:
    dev = commands.add_parser("dev", help="run everything locally on development defaults")
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=int, default=DEFAULT_PORT)
    dev.add_argument("--emulator-port", type=int, default=DEFAULT_EMULATOR_PORT)
    dev.add_argument("--signal-port", type=int, default=DEFAULT_SIGNAL_PORT)
    add_history_options(dev)
    dev.set_defaults(func=cmd_dev)
