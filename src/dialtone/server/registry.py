"""The registry of lines: E.164 Twilio number ↔ Client identity ↔ password."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from dialtone import phone
from dialtone.server import passwords
from dialtone.server.db import Database
from dialtone.server.models import Line, utcnow

# Twilio identity rules: ≤ 256 characters, no control, space, delimiter or "unwise"
# characters (error 31105). The mobile SDKs accept only [A-Za-z0-9_], so we keep to a
# portable set: letters, digits and _ - . @
_CLIENT_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,256}$")


class RegistryError(ValueError):
    """A registry operation was refused; the message says why."""


class LineNotFound(RegistryError):
    pass


@dataclass(frozen=True)
class LineInfo:
    phone_number: str
    client_name: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, line: Line) -> LineInfo:
        return cls(line.phone_number, line.client_name, line.created_at, line.updated_at)


def check_client_name(name: str) -> str:
    if not name:
        raise RegistryError("the client name is empty")
    if len(name) > 256:
        raise RegistryError("the client name is longer than 256 characters")
    if not _CLIENT_NAME.match(name):
        bad = next(ch for ch in name if not _CLIENT_NAME.match(ch))
        raise RegistryError(
            f"the client name {name!r} contains {bad!r}; use letters, digits and _ - . @ only"
        )
    return name


class LineRegistry:
    def __init__(self, db: Database, default_region: str | None = None) -> None:
        self.db = db
        self.default_region = default_region

    def normalise(self, number: str) -> str:
        try:
            return phone.to_e164(number, self.default_region)
        except phone.InvalidNumber as exc:
            raise RegistryError(str(exc)) from None

    def add(self, number: str, client_name: str, password: str) -> LineInfo:
        return self.add_many([(number, client_name, password)])[0]

    def add_many(
        self, rows: Iterable[tuple[str, str, str]], first_row: int | None = None
    ) -> list[LineInfo]:
        """Add lines in one transaction: all are added, or none.

        With `first_row`, errors name the row (numbered from `first_row`)."""

        def refuse(index: int, message: str) -> RegistryError:
            where = "" if first_row is None else f"row {first_row + index}: "
            return RegistryError(where + message)

        prepared: list[Line] = []
        numbers: dict[str, int] = {}
        names: dict[str, int] = {}
        for index, (number, client_name, password) in enumerate(rows):
            try:
                e164 = self.normalise(number)
                check_client_name(client_name)
                passwords.check_policy(password)
            except (RegistryError, passwords.WeakPassword) as exc:
                raise refuse(index, str(exc)) from None
            if e164 in numbers:
                raise refuse(index, f"{e164} appears twice")
            if client_name in names:
                raise refuse(index, f"client {client_name!r} appears twice")
            numbers[e164], names[client_name] = index, index
            prepared.append(
                Line(phone_number=e164, client_name=client_name, password_hash=password)
            )
        for line in prepared:  # hash only once everything else is known to be valid
            line.password_hash = passwords.hash_password(line.password_hash)

        try:
            with self.db.session() as session:
                clash = session.execute(
                    select(Line.phone_number, Line.client_name).where(
                        Line.phone_number.in_(numbers) | Line.client_name.in_(names)
                    )
                ).first()
                if clash:
                    number, name = clash
                    if number in numbers:
                        raise refuse(numbers[number], f"{number} is already registered")
                    raise refuse(names[name], f"client {name!r} is already registered")
                session.add_all(prepared)
        except IntegrityError:
            # A concurrent writer won the race for the same number or name.
            raise RegistryError("that number or client name is already registered") from None
        return [LineInfo.of(line) for line in prepared]

    def remove(self, number: str) -> LineInfo:
        e164 = self.normalise(number)
        with self.db.session() as session:
            line = session.scalar(select(Line).where(Line.phone_number == e164))
            if line is None:
                raise LineNotFound(f"{e164} is not registered")
            info = LineInfo.of(line)
            session.execute(delete(Line).where(Line.id == line.id))
        return info

    def set_password(self, number: str, password: str) -> LineInfo:
        e164 = self.normalise(number)
        try:
            password_hash = passwords.hash_password(password)
        except passwords.WeakPassword as exc:
            raise RegistryError(str(exc)) from None
        with self.db.session() as session:
            line = session.scalar(select(Line).where(Line.phone_number == e164))
            if line is None:
                raise LineNotFound(f"{e164} is not registered")
            line.password_hash = password_hash
            line.updated_at = utcnow()
            session.flush()
            return LineInfo.of(line)

    def list(self) -> list[LineInfo]:
        with self.db.session() as session:
            return [
                LineInfo.of(line)
                for line in session.scalars(select(Line).order_by(Line.phone_number))
            ]

    def by_number(self, e164: str) -> LineInfo | None:
        with self.db.session() as session:
            line = session.scalar(select(Line).where(Line.phone_number == e164))
            return LineInfo.of(line) if line else None

    def by_client_name(self, client_name: str) -> LineInfo | None:
        with self.db.session() as session:
            line = session.scalar(select(Line).where(Line.client_name == client_name))
            return LineInfo.of(line) if line else None

    def authenticate(self, e164: str | None, password: str) -> LineInfo | None:
        """The line when the password matches; None otherwise, with equal work either way."""
        with self.db.session() as session:
            line = session.scalar(select(Line).where(Line.phone_number == e164)) if e164 else None
            if not passwords.verify(line.password_hash if line else None, password):
                return None
            assert line is not None
            if passwords.needs_rehash(line.password_hash):
                line.password_hash = passwords.hash_password(password)
            return LineInfo.of(line)
