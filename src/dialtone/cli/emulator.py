"""`dialtone emulator`: a local Twilio (needs the `emulator` extra)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TextIO

from dialtone.cli.common import CommandError, load_env, require_emulator
from dialtone.cli.history import add_history_options, history_settings
from dialtone.cli.serve import run

DEFAULT_EMULATOR_PORT = 3000
DEFAULT_SIGNAL_PORT = 3443


def served_names(host: str, extra: list[str] | None = None) -> tuple[str, ...]:
    """Host names the emulator answers besides loopback and its public URL's: on a wildcard
    address, this machine's LAN addresses (a phone or a second computer uses those)."""
    from dialtone.emulator.tls import local_addresses

    names = list(extra or [])
    if host in ("0.0.0.0", "::"):
        names += local_addresses()
    return tuple(names)


def access_lines(base_url: str, key: str) -> list[str]:
    """How to reach the control API and the console: the per-run key, printed once here."""
    return [
        f"  control         {base_url}/emulator/  (events: {base_url}/emulator/events)",
        f"                  send -H 'X-Emulator-Key: {key}' or -u ACCOUNT_SID:AUTH_TOKEN",
        f"  dev console     {base_url}/console?key={key}",
    ]


def browser_host(host: str) -> str:
    """The name a local browser uses (the certificate covers `localhost`)."""
    return "localhost" if host in ("127.0.0.1", "0.0.0.0", "::") else host


def signaling(
    switch: object, host: str, signal_port: int, phone_url: str | None = None
) -> tuple[tuple, list[str]]:
    """The emulator's WSS signaling app with its self-signed certificate, and what to print.
    Its page links back to `phone_url` once the certificate is accepted."""
    from dialtone.emulator.signaling.server import create_signaling_app
    from dialtone.emulator.tls import data_dir, ensure_certificate, fingerprint

    names = sorted({host, "localhost"} - {"0.0.0.0", "::"})
    cert, key = ensure_certificate(data_dir(), names)
    shown = browser_host(host)
    lines = [
        f"  signaling       wss://{shown}:{signal_port}/signal  "
        f"(Voice SDK option chunderw: '{shown}:{signal_port}')",
        f"  certificate     {cert} (self-signed, SHA-256 {fingerprint(cert)[:23]}…);",
        f"                  trust it once: open https://{shown}:{signal_port}/ and accept, "
        "or see the README",
    ]
    app = create_signaling_app(switch, phone_url)  # type: ignore[arg-type]
    return (app, host, signal_port, (cert, key)), lines


def cmd_emulator(args: argparse.Namespace, stdin: TextIO, out: TextIO) -> None:
    """A local Twilio: REST API, webhooks, TwiML engine and simulated phones."""
    require_emulator("emulator")
    from dialtone import logs
    from dialtone.emulator.app import create_app
    from dialtone.emulator.config import Credentials, EmulatorConfig
    from dialtone.emulator.provisioning import ProvisioningError, load
    from dialtone.emulator.switch import Switch

    credentials = Credentials.from_env(load_env())
    if args.media_folder and not Path(args.media_folder).is_dir():
        raise CommandError(f"--media-folder {args.media_folder}: not a folder")
    public_url = args.public_url or f"http://{args.host}:{args.port}"
    switch = Switch(
        EmulatorConfig(
            credentials=credentials,
            public_url=public_url.rstrip("/"),
            media_address=args.media_address,
            signal_host=f"{browser_host(args.host)}:{args.signal_port}",
            allowed_hosts=served_names(args.host, args.allow_host),
            media_folder=Path(args.media_folder).resolve() if args.media_folder else None,
            **history_settings(args),
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
        *access_lines(public_url, switch.config.console_key),
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
    signaling_app, signal_lines = signaling(switch, args.host, args.signal_port)
    print("\n".join(lines[:5] + signal_lines + lines[5:]), file=out, flush=True)
    logs.configure()
    run([(create_app(switch), args.host, args.port), signaling_app])


def register(commands: argparse._SubParsersAction) -> None:
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
    emulator.add_argument(
        "--media-folder",
        metavar="DIR",
        help="the only folder file:// media (<Play>, say_audio) may come from (default: none)",
    )
    emulator.add_argument(
        "--allow-host",
        action="append",
        metavar="NAME",
        help="another host name it answers to (besides loopback and --public-url's)",
    )
    add_history_options(emulator)
    emulator.set_defaults(func=cmd_emulator)
