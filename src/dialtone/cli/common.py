"""What every command group shares: the refusal type and the environment."""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dialtone.server.db import Database

# Modules of the `emulator` extra (pip install 'dialtone[emulator]').
EMULATOR_MODULES = ("aiortc", "av", "websockets", "cryptography", "httpx")


class CommandError(Exception):
    """A refused command: printed as `dialtone: error: …`, exit status 1."""


def load_env() -> dict:
    from dialtone.server.config import load_environment

    return load_environment()


def settings_from(env: Mapping[str, str]):  # noqa: ANN201 - Settings imported lazily
    from dialtone.server.config import ConfigError, Settings

    try:
        return Settings.from_env(env)
    except ConfigError as exc:
        raise CommandError(str(exc)) from None


def require_emulator(command: str) -> None:
    """The emulator's heavy dependencies are an extra: say which, instead of a traceback."""
    missing = [name for name in EMULATOR_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise CommandError(
            f"`dialtone {command}` needs the emulator's dependencies ({', '.join(missing)} "
            "missing): pip install 'dialtone[emulator]'"
        )


def _database(url: str, bounded: bool) -> Database:
    from dialtone.server.db import Database

    try:
        return Database(url, bounded=bounded)
    except Exception as exc:  # a malformed URL or unknown driver; the URL may hold a password
        raise CommandError(
            f"cannot open the database: DIALTONE_DATABASE_URL is not usable ({type(exc).__name__})"
        ) from None


def open_database(url: str):  # noqa: ANN201 - Database imported lazily
    """The database at the newest schema, or a one-line refusal."""
    db = _database(url, bounded=False)  # a command may rightly take longer than a request
    try:
        db.upgrade()
    except Exception as exc:
        db.dispose()
        raise CommandError(f"cannot open the database: {type(exc).__name__}: {exc}") from None
    return db


def open_server_database(url: str):  # noqa: ANN201 - Database imported lazily
    """The server's database, upgraded when it answers. When it does not (it is down), the
    server starts anyway: Twilio then gets the apology TwiML instead of connection refused
    (11205), /healthz says 503, and the schema is upgraded as soon as the database answers
    (until then nothing is read or written). A URL or schema that is wrong still refuses."""
    import logging

    from dialtone import logs
    from dialtone.server.db import describe
    from dialtone.server.dbapi import unavailable

    db = _database(url, bounded=True)
    try:
        db.upgrade()
    except Exception as exc:
        if not unavailable(exc):
            db.dispose()
            raise CommandError(f"cannot open the database: {type(exc).__name__}: {exc}") from None
        db.defer_upgrade()
        logs.event(
            logging.getLogger("dialtone.server.db"),
            "database_unavailable",
            level=logging.WARNING,
            state="unreachable",
            detail=describe(exc),
            action="serving anyway: webhooks get the apology TwiML and /healthz 503 until "
            "the database answers; the schema is upgraded then",
        )
    return db
