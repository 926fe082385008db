"""`dialtone lines …` and `dialtone db upgrade`: the registry of lines."""

from __future__ import annotations

import argparse
import getpass
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from dialtone.cli.common import CommandError, load_env, open_database

if TYPE_CHECKING:
    from dialtone.server.registry import LineRegistry


def open_registry(env: Mapping[str, str]):  # noqa: ANN201 - LineRegistry imported lazily
    import phonenumbers

    from dialtone.server.config import database_url
    from dialtone.server.registry import LineRegistry

    region = env.get("DIALTONE_DEFAULT_REGION", "").strip().upper() or None
    if region and region not in phonenumbers.SUPPORTED_REGIONS:
        raise CommandError(
            f"DIALTONE_DEFAULT_REGION {region!r} is not an ISO region code such as JP"
        )
    return LineRegistry(open_database(database_url(env)), region)


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


def _import(registry: LineRegistry, path: Path, workers: int | None, out: TextIO) -> None:
    import sys

    from dialtone.cli.progress import ProgressBar
    from dialtone.server.line_import import import_lines

    bar = ProgressBar(sys.stderr, {"checking": "chars"})
    try:
        result = import_lines(
            registry.db, path, registry.default_region, progress=bar, workers=workers
        )
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror}") from None
    finally:
        bar.close()
    hashed = f", {result.hashed} password(s) hashed" if result.hashed else ""
    print(
        f"imported {result.imported} line(s) from {path} in {result.seconds:.1f} s{hashed}",
        file=out,
    )


def cmd_lines(args: argparse.Namespace, stdin: TextIO, out: TextIO) -> None:
    from dialtone.server.registry import RegistryError

    registry = open_registry(load_env())
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
            _import(registry, Path(args.file), args.workers, out)
    except RegistryError as exc:
        raise CommandError(str(exc)) from None
    finally:
        registry.db.dispose()


def cmd_db(args: argparse.Namespace, stdin: TextIO, out: TextIO) -> None:
    from dialtone.server.config import database_url

    open_database(database_url(load_env())).dispose()  # opening it upgrades it
    print("database is at the newest schema", file=out)


def register(commands: argparse._SubParsersAction) -> None:
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
        "import",
        help="add lines from a CSV (number,client_name,password): all or nothing",
        description="Add lines from a CSV with a header row: number,client_name and password "
        "(hashed here, on every core) or password_hash (a ready Argon2id hash in PHC format, "
        "at OWASP's parameters or above); an optional region column reads national numbers. "
        "The whole file is imported, or nothing.",
    )
    imp.add_argument("file")
    imp.add_argument(
        "--workers",
        type=int,
        default=None,
        help="threads hashing plain passwords (default: every CPU)",
    )

    db = commands.add_parser("db", help="database maintenance")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    db_commands.add_parser("upgrade", help="apply the migrations")
    db.set_defaults(func=cmd_db)
