"""`dialtone web …`: the browser phone as static files for a static host."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TextIO

from dialtone.cli.common import CommandError


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


def register(commands: argparse._SubParsersAction) -> None:
    web = commands.add_parser("web", help="the browser phone as static files")
    web_commands = web.add_subparsers(dest="web_command", required=True, metavar="ACTION")
    build = web_commands.add_parser("build", help="write the phone's files for a static host")
    build.add_argument("out", help="output directory")
    build.add_argument(
        "--api-base", required=True, help="the API server's URL, e.g. https://api.example.com/prod"
    )
    build.add_argument("--chunderw", default=None, help=argparse.SUPPRESS)
    web.set_defaults(func=cmd_web)
