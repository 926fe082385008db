"""What every command group shares: the refusal type and the environment."""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping

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


def open_database(url: str):  # noqa: ANN201 - Database imported lazily
    """The database at the newest schema, or a one-line refusal."""
    from dialtone.server.db import Database

    db = Database(url)
    try:
        db.upgrade()
    except Exception as exc:
        db.dispose()
        raise CommandError(f"cannot open the database: {type(exc).__name__}: {exc}") from None
    return db
