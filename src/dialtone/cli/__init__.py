"""`dialtone` command line: one module per command group."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from dialtone.cli import account, aws, call, dev, emulator, lines, serve, web
from dialtone.cli.common import CommandError

GROUPS = (serve, dev, lines, account, emulator, call, web, aws)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dialtone", description="A browser phone on Twilio Programmable Voice."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in GROUPS:
        group.register(commands)
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
