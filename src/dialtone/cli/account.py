"""`dialtone setup` and `dialtone doctor`: the Twilio account configured and checked from
the command line (twilio-python's REST Client; `--api-url` points it at the emulator)."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO
from urllib.parse import urlsplit

from dialtone.cli.common import CommandError


def _public_url(env: Mapping[str, str]) -> str:
    url = env.get("DIALTONE_PUBLIC_URL", "").strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
        raise CommandError(
            "DIALTONE_PUBLIC_URL must be the server's public base URL, e.g. "
            "https://abc123.execute-api.ap-northeast-1.amazonaws.com/prod (the stack's ApiBaseUrl)"
        )
    return url


def _numbers(env: Mapping[str, str], given: list[str]) -> list[str]:
    """The numbers given (any common format), else every registered line's."""
    from dialtone import phone

    region = env.get("DIALTONE_DEFAULT_REGION", "").strip().upper() or None
    if given:
        try:
            return list(dict.fromkeys(phone.to_e164(number, region) for number in given))
        except phone.InvalidNumber as exc:
            raise CommandError(str(exc)) from None
    from dialtone.cli.lines import open_registry

    registry = open_registry(env)
    try:
        return [line.phone_number for line in registry.list()]
    finally:
        registry.db.dispose()


def cmd_setup(args: argparse.Namespace, stdin: TextIO, out: TextIO) -> None:
    from dialtone.account.client import AccountError, rest_client
    from dialtone.account.envfile import update_env_file
    from dialtone.account.setup import apply, make_plan
    from dialtone.server.config import load_environment

    env_file = Path(args.env_file)
    env = load_environment(dotenv=env_file)
    public_url = _public_url(env)
    numbers = _numbers(env, args.numbers)
    try:
        plan = make_plan(rest_client(env, args.api_url), public_url, env, numbers)
    except AccountError as exc:
        raise CommandError(str(exc)) from None
    if not numbers:
        print("no lines registered (dialtone lines add …) and no numbers given", file=out)
    for problem in plan.problems:
        print(f"problem: {problem}", file=out)
    if plan.empty:
        print("nothing to change", file=out)
    elif args.dry_run:
        print(f"dry run: would change (nothing written, {env_file} untouched):", file=out)
        for line in plan.describe():
            print(f"  {line}", file=out)
    else:

        def save(values: dict[str, str]) -> None:
            update_env_file(env_file, values)
            print(f"wrote {', '.join(values)} to {env_file}", file=out, flush=True)

        try:
            apply(plan, save, lambda line: print(line, file=out, flush=True))
        except AccountError as exc:
            raise CommandError(str(exc)) from None
    if plan.problems:
        raise CommandError(f"{len(plan.problems)} problem(s): see above")


def cmd_doctor(args: argparse.Namespace, stdin: TextIO, out: TextIO) -> None:
    from dialtone.account.client import AccountError, rest_client
    from dialtone.account.doctor import run_checks
    from dialtone.server.config import load_environment

    env = load_environment(dotenv=Path(args.env_file))
    public_url = _public_url(env)
    numbers = _numbers(env, args.numbers)
    try:
        client = rest_client(env, args.api_url)
    except AccountError as exc:
        raise CommandError(str(exc)) from None
    failed = 0
    for check in run_checks(client, env, public_url, numbers, args.api_url):
        failed += not check.ok
        print(check.line(), file=out, flush=True)
    if failed:
        raise CommandError(f"{failed} problem(s)")


def register(commands: argparse._SubParsersAction) -> None:
    setup = commands.add_parser(
        "setup", help="configure the Twilio account: TwiML App, numbers' voice URLs, API key"
    )
    setup.add_argument("numbers", nargs="*", metavar="NUMBER", help="default: every line")
    setup.add_argument("--api-url", help="REST base URL of an emulator instead of Twilio")
    setup.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    setup.add_argument("--env-file", default=".env", help="where settings go (default .env)")
    setup.set_defaults(func=cmd_setup)

    doctor = commands.add_parser(
        "doctor", help="check the Twilio account and the server against each other"
    )
    doctor.add_argument("numbers", nargs="*", metavar="NUMBER", help="default: every line")
    doctor.add_argument("--api-url", help="REST base URL of an emulator instead of Twilio")
    doctor.add_argument("--env-file", default=".env", help="settings file (default .env)")
    doctor.set_defaults(func=cmd_doctor)
