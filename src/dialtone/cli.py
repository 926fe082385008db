"""`dialtone` command line: serve, dev, lines, db."""

from __future__ import annotations

import argparse
import contextlib
import getpass
import secrets
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TextIO

DEMO_NUMBER = "+815031234567"  # the seeds' Twilio number, 050-3123-4567
DEMO_CLIENT = "DeviceId_0001"
DEMO_EXTERNAL = "+819059876543"  # the seeds' external phone, 090-5987-6543
DEFAULT_PORT = 8000
DEFAULT_EMULATOR_PORT = 3000
DEFAULT_SIGNAL_PORT = 3443


class CommandError(Exception):
    """A refused command: printed as `dialtone: error: …`, exit status 1."""


def _env() -> dict:
    from dialtone.server.config import load_environment

    return load_environment()


def _registry(env: Mapping[str, str]):
    import phonenumbers

    from dialtone.server.config import database_url
    from dialtone.server.db import Database
    from dialtone.server.registry import LineRegistry

    region = env.get("DIALTONE_DEFAULT_REGION", "").strip().upper() or None
    if region and region not in phonenumbers.SUPPORTED_REGIONS:
        raise CommandError(
            f"DIALTONE_DEFAULT_REGION {region!r} is not an ISO region code such as JP"
        )
    db = Database(database_url(env))
    try:
        db.upgrade()
    except Exception as exc:
        raise CommandError(f"cannot open the database: {type(exc).__name__}: {exc}") from None
    return LineRegistry(db, region)


def _read_password(from_stdin: bool, stdin: TextIO) -> str:
    if from_stdin:
        return stdin.readline().rstrip("\r\n")
    if not stdin.isatty():
        raise CommandError("no terminal to ask for a password: use --password-stdin")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Repeat password: ") != first:
        raise CommandError("the passwords do not match")
    return first


def _print_lines(lines: Sequence, out: TextIO) -> None:
    if not lines:
        print("no lines registered", file=out)
        return
    width = max(len(line.client_name) for line in lines)
    print(f"{'NUMBER':<16}  {'CLIENT':<{width}}  {'CREATED':<20}  UPDATED", file=out)
    for line in lines:
        created = line.created_at.strftime("%Y-%m-%d %H:%M:%SZ")
        updated = line.updated_at.strftime("%Y-%m-%d %H:%M:%SZ")
        print(
            f"{line.phone_number:<16}  {line.client_name:<{width}}  {created:<20}  {updated}",
            file=out,
        )


def cmd_lines(args: argparse.Namespace, stdin: TextIO, out: TextIO) -> None:
    from dialtone.server.registry import RegistryError

    registry = _registry(_env())
    try:
        if args.lines_command == "add":
            password = _read_password(args.password_stdin, stdin)
            line = registry.add(args.number, args.client_name, password)
            print(f"added {line.phone_number} -> client {line.client_name}", file=out)
        elif args.lines_command == "list":
            _print_lines(registry.list(), out)
        elif args.lines_command == "remove":
            line = registry.remove(args.number)
            print(f"removed {line.phone_number} (client {line.client_name})", file=out)
        elif args.lines_command == "set-password":
            password = _read_password(args.password_stdin, stdin)
            line = registry.set_password(args.number, password)
            print(f"password changed for {line.phone_number}", file=out)
        elif args.lines_command == "import":
            path = Path(args.file)
            try:
                with path.open(newline="", encoding="utf-8-sig") as handle:
                    added = registry.import_csv(handle)
            except OSError as exc:
                raise CommandError(f"cannot read {path}: {exc.strerror}") from None
            print(f"imported {len(added)} line(s) from {path}", file=out)
    except RegistryError as exc:
        raise CommandError(str(exc)) from None
    finally:
        registry.db.dispose()


def cmd_db(args: argparse.Namespace, stdin: TextIO, out: TextIO) -> None:
    registry = _registry(_env())  # opening it upgrades it
    registry.db.dispose()
    print("database is at the newest schema", file=out)


def _server_app(settings: object):
    from dialtone import logs
    from dialtone.server.app import create_app
    from dialtone.server.db import Database

    logs.configure()
    db = Database(settings.database_url)  # type: ignore[attr-defined]
    try:
        db.upgrade()
    except Exception as exc:
        raise CommandError(f"cannot open the database: {type(exc).__name__}: {exc}") from None
    return create_app(settings, db)  # type: ignore[arg-type]


def _run(apps: Sequence[tuple]) -> None:
    """Serve ASGI apps — (app, host, port[, (certfile, keyfile)]) — in this process on one
    event loop (the emulator's REST and signaling apps share state); Ctrl-C stops them all."""
    import asyncio

    import uvicorn

    for app in apps:
        _check_port_free(app[1], app[2])
    servers = []
    for app, host, port, *tls in apps:
        cert, key = tls[0] if tls else (None, None)
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_config=None,
            access_log=False,
            proxy_headers=True,
            ssl_certfile=str(cert) if cert else None,
            ssl_keyfile=str(key) if key else None,
        )
        servers.append(uvicorn.Server(config))

    async def serve_all() -> None:
        await asyncio.gather(*(server.serve() for server in servers))

    # uvicorn re-raises the Ctrl-C it handled once the servers have shut down cleanly.
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_all())


def _browser_host(host: str) -> str:
    """The name a local browser uses (the certificate covers `localhost`)."""
    return "localhost" if host in ("127.0.0.1", "0.0.0.0", "::") else host


def _signaling(switch: object, host: str, signal_port: int) -> tuple[tuple, list[str]]:
    """The emulator's WSS signaling app with its self-signed certificate, and what to print."""
    from dialtone.emulator.signaling.server import create_signaling_app
    from dialtone.emulator.tls import data_dir, ensure_certificate, fingerprint

    names = sorted({host, "localhost"} - {"0.0.0.0", "::"})
    cert, key = ensure_certificate(data_dir(), names)
    shown = _browser_host(host)
    lines = [
        f"  signaling       wss://{shown}:{signal_port}/signal  "
        f"(Voice SDK option chunderw: '{shown}:{signal_port}')",
        f"  certificate     {cert} (self-signed, SHA-256 {fingerprint(cert)[:23]}…);",
        f"                  trust it once: open https://{shown}:{signal_port}/ and accept, "
        "or see the README",
    ]
    return (create_signaling_app(switch), host, signal_port, (cert, key)), lines


def _check_port_free(host: str, port: int) -> None:
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise CommandError(
                f"cannot listen on {host}:{port}: {exc.strerror}; choose another with --port"
            ) from None


def _settings(env: Mapping[str, str]):
    from dialtone.server.config import ConfigError, Settings

    try:
        return Settings.from_env(env)
    except ConfigError as exc:
        raise CommandError(str(exc)) from None


def cmd_serve(args: argparse.Namespace, stdin: TextIO, out: TextIO) -> None:
    settings = _settings(_env())
    _run([(_server_app(settings), args.host, args.port)])


def cmd_dev(args: argparse.Namespace, stdin: TextIO, out: TextIO) -> None:
    """The seeds' example on development defaults: the API server and the emulator as Twilio,
    one line and one external phone; no Twilio account needed."""
    from dialtone.devcreds import development_values
    from dialtone.emulator.app import create_app as create_emulator
    from dialtone.emulator.config import Credentials, EmulatorConfig
    from dialtone.emulator.provisioning import provision
    from dialtone.emulator.switch import Switch
    from dialtone.server.registry import LineNotFound

    env = _env()
    generated = [name for name, value in development_values().items() if not env.get(name)]
    for name in generated:
        env[name] = development_values()[name]
    env.setdefault("DIALTONE_PUBLIC_URL", f"http://{args.host}:{args.port}")
    env.setdefault("DIALTONE_DEFAULT_REGION", "JP")
    env.setdefault("DIALTONE_VOICE_SIGNALING", f"localhost:{args.signal_port}")
    settings = _settings(env)

    password = env.get("DIALTONE_DEV_PASSWORD") or secrets.token_urlsafe(9)
    registry = _registry(env)
    try:
        try:
            registry.set_password(DEMO_NUMBER, password)
        except LineNotFound:
            registry.add(DEMO_NUMBER, DEMO_CLIENT, password)
    except Exception as exc:
        raise CommandError(str(exc)) from None
    finally:
        registry.db.dispose()

    base = settings.public_url
    emulator_url = f"http://{args.host}:{args.emulator_port}"
    switch = Switch(
        EmulatorConfig(
            credentials=Credentials.from_env(env),
            public_url=emulator_url,
            signal_host=f"{_browser_host(args.host)}:{args.signal_port}",
        )
    )
    provision(
        switch,
        {
            "applications": [
                {
                    "sid": settings.twiml_app_sid,
                    "friendly_name": "dialtone",
                    "voice_url": f"{base}/twilio/retrieve_twiml/call_outgoing",
                    "status_callback": f"{base}/twilio/status_callback",
                }
            ],
            "numbers": [
                {
                    "phone_number": DEMO_NUMBER,
                    "voice_url": f"{base}/twilio/retrieve_twiml/call_incoming",
                    "status_callback": f"{base}/twilio/status_callback",
                }
            ],
            "phones": [{"address": DEMO_EXTERNAL, "mode": "answer", "answer_after": 2}],
        },
    )
    signaling, signal_lines = _signaling(switch, args.host, args.signal_port)
    print(
        "dialtone dev\n"
        f"  open the phone  {base.replace('127.0.0.1', 'localhost')}/\n"
        f"  dev console     {emulator_url}/console  (be the external phone; watch calls)\n"
        f"  API server      {base}\n"
        f"  Twilio          emulator at {emulator_url} (REST API, webhooks, simulated phones)\n"
        f"  demo line       050-3123-4567 ({DEMO_NUMBER}) -> client {DEMO_CLIENT}\n"
        f"  password        {password}\n"
        f"  external phone  090-5987-6543 ({DEMO_EXTERNAL})\n"
        f"  credentials     {'development values' if generated else 'from the environment'}\n"
        f"  token           curl -s -X POST -H 'Content-Type: application/json' "
        f'-d \'{{"twilioPhoneNumber": "050-3123-4567", "password": "{password}"}}\' '
        f"{base}/twilio/retrieve_capability_token\n"
        f"  call the line   curl -s {emulator_url}/emulator/calls "
        f"--data-urlencode From={DEMO_EXTERNAL} --data-urlencode To={DEMO_NUMBER}\n"
        f"  follow calls    curl -sN {emulator_url}/emulator/events\n"
        + "\n".join(signal_lines)
        + "\n  Ctrl-C stops it.",
        file=out,
        flush=True,
    )
    _run(
        [
            (_server_app(settings), args.host, args.port),
            (create_emulator(switch), args.host, args.emulator_port),
            signaling,
        ]
    )


def cmd_emulator(args: argparse.Namespace, stdin: TextIO, out: TextIO) -> None:
    """A local Twilio: REST API, webhooks, TwiML engine and simulated phones."""

    from dialtone import logs
    from dialtone.emulator.app import create_app
    from dialtone.emulator.config import Credentials, EmulatorConfig
    from dialtone.emulator.provisioning import ProvisioningError, load
    from dialtone.emulator.switch import Switch

    credentials = Credentials.from_env(_env())
    public_url = args.public_url or f"http://{args.host}:{args.port}"
    switch = Switch(
        EmulatorConfig(
            credentials=credentials,
            public_url=public_url.rstrip("/"),
            media_address=args.media_address,
            signal_host=f"{_browser_host(args.host)}:{args.signal_port}",
        )
    )
    if args.provision:
        try:
            load(switch, Path(args.provision))
        except ProvisioningError as exc:
            raise CommandError(f"provisioning: {exc}") from None
    lines = [
        "dialtone emulator",
        f"  REST API        {public_url}/2010-04-01",
        f"                  (twilio-python: client.api.base_url = {public_url!r})",
        f"  control         {public_url}/emulator/  (events: {public_url}/emulator/events)",
        f"  dev console     {public_url}/console",
        f"  numbers         {', '.join(n.phone_number for n in switch.numbers.values()) or 'none'}",
    ]
    if credentials.generated:
        lines.append("  development credentials (no TWILIO_* variables set):")
        values = {
            "TWILIO_ACCOUNT_SID": credentials.account_sid,
            "TWILIO_AUTH_TOKEN": credentials.auth_token,
            "TWILIO_API_KEY": credentials.api_key,
            "TWILIO_API_SECRET": credentials.api_secret,
        }
        lines += [f"    {name}={values[name]}" for name in credentials.generated]
    signaling, signal_lines = _signaling(switch, args.host, args.signal_port)
    print("\n".join(lines[:4] + signal_lines + lines[4:]), file=out, flush=True)
    logs.configure()
    _run([(create_app(switch), args.host, args.port), signaling])


def cmd_call(args: argparse.Namespace, stdin: TextIO, out: TextIO) -> None:
    """Place a call through twilio-python's Client (seed 003), against Twilio or the emulator."""
    import time

    from twilio.base.exceptions import TwilioException, TwilioRestException
    from twilio.rest import Client  # large: imported only for this command
    from twilio.twiml.voice_response import VoiceResponse

    from dialtone.emulator.config import Credentials

    env = _env()
    api_url = args.api_url or env.get("DIALTONE_TWILIO_API_URL") or None
    if api_url:
        credentials = Credentials.from_env(env)  # the emulator's development values when unset
        username, password = credentials.account_sid, credentials.auth_token
    else:
        username = env.get("TWILIO_ACCOUNT_SID") or ""
        password = env.get("TWILIO_AUTH_TOKEN") or ""
        if not username or not password:
            raise CommandError(
                "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are required to call through Twilio "
                "(or give --api-url for the emulator)"
            )
    client = Client(username, password)
    if api_url:
        client.api.base_url = api_url.rstrip("/")
    twiml = args.twiml
    if args.say is not None:
        response = VoiceResponse()
        response.say(args.say, language=args.language)
        twiml = response.to_xml()
    kwargs = {"to": args.to, "from_": args.from_}
    if args.url:
        kwargs["url"] = args.url
    else:
        kwargs["twiml"] = twiml
    if args.status_callback:
        kwargs["status_callback"] = args.status_callback
        kwargs["status_callback_event"] = ["initiated", "ringing", "answered", "completed"]
    try:
        call = client.calls.create(**kwargs)
        print(f"{call.sid} {call.status}", file=out, flush=True)
        if not args.wait:
            return
        seen = [call.status]
        deadline = time.monotonic() + args.max_wait
        while call.status not in ("completed", "busy", "failed", "no-answer", "canceled"):
            if time.monotonic() > deadline:
                raise CommandError(f"{call.sid} still {call.status} after {args.max_wait:g} s")
            time.sleep(args.poll)
            call = client.calls(call.sid).fetch()
            if call.status != seen[-1]:
                seen.append(call.status)
                print(f"{call.sid} {' -> '.join(seen)}", file=out, flush=True)
    except TwilioRestException as exc:
        raise CommandError(f"Twilio error {exc.code}: {exc.msg}") from None
    except TwilioException as exc:
        raise CommandError(str(exc)) from None
    duration = f", {call.duration} s" if call.duration is not None else ""
    print(f"{call.sid} ended: {call.status}{duration}", file=out, flush=True)
    if call.status != "completed":
        raise CommandError(f"the call ended {call.status}")


def cmd_web(args: argparse.Namespace, stdin: TextIO, out: TextIO) -> None:
    """`dialtone web build OUT`: the phone as static files for any static host (the seeds'
    S3 layout), talking to the API server at --api-base (which must allow this origin in
    DIALTONE_CORS_ORIGINS)."""
    import json
    import shutil

    from dialtone.server import sounds
    from dialtone.server.web import SDK, WEB

    if not SDK.exists():
        raise CommandError("the Voice SDK is not installed: run `npm ci` in src/dialtone/web")
    api_base = args.api_base.rstrip("/")
    if not api_base.startswith(("https://", "http://")):
        raise CommandError("--api-base must be the API server's http(s) URL")
    target = Path(args.out)
    (target / "vendor").mkdir(parents=True, exist_ok=True)
    (target / "sounds").mkdir(exist_ok=True)
    for name in ("index.html", "app.js", "style.css"):
        shutil.copyfile(WEB / name, target / name)
    shutil.copyfile(SDK, target / "vendor" / "twilio.min.js")
    for name in sounds.NAMES:
        (target / "sounds" / f"{name}.wav").write_bytes(sounds.wav(name))
    config = {"apiBase": api_base, "chunderw": args.chunderw}
    (target / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    print(f"built the phone in {target} for the API at {api_base}", file=out)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dialtone", description="A browser phone on Twilio Programmable Voice."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    for name, func, help_text in (
        ("serve", cmd_serve, "run the API server (configuration from the environment)"),
        ("dev", cmd_dev, "run everything locally on development defaults"),
    ):
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument("--host", default="127.0.0.1")
        sub.add_argument("--port", type=int, default=DEFAULT_PORT)
        sub.set_defaults(func=func)
        if name == "dev":
            sub.add_argument("--emulator-port", type=int, default=DEFAULT_EMULATOR_PORT)
            sub.add_argument("--signal-port", type=int, default=DEFAULT_SIGNAL_PORT)

    lines = commands.add_parser("lines", help="manage the registry of lines")
    lines.set_defaults(func=cmd_lines)
    line_commands = lines.add_subparsers(dest="lines_command", required=True, metavar="ACTION")
    add = line_commands.add_parser("add", help="register a Twilio number for a client")
    add.add_argument("number", help="Twilio number, e.g. +81-50-3123-4567")
    add.add_argument("client_name", help="Client identity, e.g. DeviceId_0001")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    line_commands.add_parser("list", help="list the registered lines")
    remove = line_commands.add_parser("remove", help="unregister a number")
    remove.add_argument("number")
    set_password = line_commands.add_parser("set-password", help="change a line's password")
    set_password.add_argument("number")
    set_password.add_argument("--password-stdin", action="store_true")
    imp = line_commands.add_parser(
        "import", help="add lines from a CSV (number,client_name,password): all or nothing"
    )
    imp.add_argument("file")

    emulator = commands.add_parser("emulator", help="run the local Twilio emulator")
    emulator.add_argument("--host", default="127.0.0.1")
    emulator.add_argument("--port", type=int, default=DEFAULT_EMULATOR_PORT)
    emulator.add_argument(
        "--signal-port", type=int, default=DEFAULT_SIGNAL_PORT, help="Voice SDK signaling (WSS)"
    )
    emulator.add_argument(
        "--media-address", help="local address for WebRTC audio (default: first non-loopback)"
    )
    emulator.add_argument("--provision", metavar="FILE", help="TOML: numbers, applications, phones")
    emulator.add_argument(
        "--public-url", help="base URL others use to reach it (default http://HOST:PORT)"
    )
    emulator.set_defaults(func=cmd_emulator)

    call = commands.add_parser("call", help="place a call through the REST API (seed 003)")
    call.add_argument("--to", required=True)
    call.add_argument("--from", dest="from_", required=True)
    what = call.add_mutually_exclusive_group(required=True)
    what.add_argument("--url", help="TwiML URL fetched when the call is answered")
    what.add_argument("--twiml", help="inline TwiML")
    what.add_argument("--say", help="text to speak")
    call.add_argument("--language", default="en-US", help="for --say")
    call.add_argument("--status-callback", help="URL for initiated/ringing/answered/completed")
    call.add_argument("--wait", action="store_true", help="follow the call to its final status")
    call.add_argument("--api-url", help="REST base URL, e.g. the emulator's http://127.0.0.1:3000")
    call.add_argument("--poll", type=float, default=1.0, help=argparse.SUPPRESS)
    call.add_argument("--max-wait", type=float, default=4 * 3600, help=argparse.SUPPRESS)
    call.set_defaults(func=cmd_call)

    web = commands.add_parser("web", help="the browser phone as static files")
    web_commands = web.add_subparsers(dest="web_command", required=True, metavar="ACTION")
    build = web_commands.add_parser("build", help="write the phone's files for a static host")
    build.add_argument("out", help="output directory")
    build.add_argument(
        "--api-base", required=True, help="the API server's URL, e.g. https://api.example.com/prod"
    )
    build.add_argument("--chunderw", default=None, help=argparse.SUPPRESS)
    web.set_defaults(func=cmd_web)

    db = commands.add_parser("db", help="database maintenance")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    db_commands.add_parser("upgrade", help="apply the migrations")
    db.set_defaults(func=cmd_db)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args, sys.stdin, sys.stdout)
    except CommandError as exc:
        print(f"dialtone: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
