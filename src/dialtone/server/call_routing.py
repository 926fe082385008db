"""What a TwiML webhook reads and writes: the line a call is for, and the call's first row
in the history. SQLAlchemy Core statements on the request's own connection (Database.run),
built once and compiled once per dialect.

The tables are named here with only the columns used (`models` defines them whole and
imports SQLAlchemy's ORM, which a webhook does not need: a Lambda cold start skips it).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import NamedTuple

from sqlalchemy import DateTime, Integer, String, bindparam, column, literal_column, select, table

from dialtone.server.db import Direct, Statement

_CALL_SID = re.compile(r"^CA[0-9a-fA-F]{32}$")

LINES = table("lines", column("phone_number", String), column("client_name", String))
CALLS = table(
    "calls",
    column("call_sid", String),
    column("line_number", String),
    column("from", String),
    column("to", String),
    column("direction", String),
    column("status", String),
    column("last_sequence_number", Integer),
    # UTC, stored as models.UTCDateTime stores it (naive UTC on SQLite).
    column("started_at", DateTime(timezone=True)),
    column("updated_at", DateTime(timezone=True)),
)


class LineAddress(NamedTuple):
    """What a webhook needs of a line: its number and the Client identity that answers it."""

    phone_number: str
    client_name: str


# Both columns are unique: one index probe, whatever the number of lines.
_BY_NUMBER = Statement(
    select(LINES.c.phone_number, LINES.c.client_name).where(
        LINES.c.phone_number == bindparam("value")
    )
)
_BY_CLIENT_NAME = Statement(
    select(LINES.c.phone_number, LINES.c.client_name).where(
        LINES.c.client_name == bindparam("value")
    )
)


def line_by_number(connection: Direct, e164: str) -> LineAddress | None:
    row = connection.execute(_BY_NUMBER, {"value": e164}).fetchone()
    return LineAddress(*row) if row else None


def line_by_client_name(connection: Direct, client_name: str) -> LineAddress | None:
    row = connection.execute(_BY_CLIENT_NAME, {"value": client_name}).fetchone()
    return LineAddress(*row) if row else None


_NOTE_STATEMENTS: dict[str, Statement] = {}


def _note_statement(dialect: str) -> Statement:
    """INSERT … ON CONFLICT (call_sid) DO UPDATE, built once per dialect."""
    if dialect not in _NOTE_STATEMENTS:
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        statement = insert(CALLS)
        _NOTE_STATEMENTS[dialect] = Statement(
            statement.on_conflict_do_update(
                index_elements=["call_sid"],
                set_={"line_number": statement.excluded.line_number, "to": statement.excluded.to},
            )
        )
    return _NOTE_STATEMENTS[dialect]


def note_call(
    connection: Direct,
    call_sid: str,
    line_number: str,
    from_: str,
    to: str,
    direction: str,
) -> None:
    """What a TwiML webhook learned (whose line, the number really dialled), so history is
    right even before (or without) status callbacks, which update the row later. One
    statement in the request's transaction: the row is committed before the TwiML is sent."""
    if not _CALL_SID.match(call_sid):
        return
    now = datetime.now(UTC)
    connection.execute(
        _note_statement(connection.dialect.name),
        {
            "call_sid": call_sid,
            "line_number": line_number,
            "from": from_[:300],
            "to": to[:300],
            "direction": direction[:32],
            "status": "ringing",
            "last_sequence_number": -1,
            "started_at": now,
            "updated_at": now,
        },
    )


_INCOMING_POSTGRESQL: Statement | None = None


def _incoming_postgresql() -> Statement:
    """The line of a called number and its call noted, in one statement: one round trip."""
    global _INCOMING_POSTGRESQL
    if _INCOMING_POSTGRESQL is None:
        from sqlalchemy.dialects.postgresql import insert

        line = (
            select(LINES.c.phone_number, LINES.c.client_name)
            .where(LINES.c.phone_number == bindparam("number"))
            .cte("line")
        )
        now = bindparam("now", type_=DateTime(timezone=True))
        noted = insert(CALLS).from_select(
            [c.name for c in CALLS.c],
            select(
                bindparam("call_sid", type_=String),
                line.c.phone_number,
                bindparam("from", type_=String),
                line.c.phone_number,
                bindparam("direction", type_=String),
                literal_column("'ringing'"),
                literal_column("-1"),
                now,
                now,
            ),
        )
        noted = noted.on_conflict_do_update(
            index_elements=["call_sid"],
            set_={"line_number": noted.excluded.line_number, "to": noted.excluded.to},
        )
        _INCOMING_POSTGRESQL = Statement(
            select(line.c.phone_number, line.c.client_name).add_cte(noted.cte("noted"))
        )
    return _INCOMING_POSTGRESQL


def route_incoming(
    connection: Direct, e164: str, call_sid: str, from_: str, direction: str
) -> LineAddress | None:
    """The line whose number was called, with the call noted (`note_call`) when it is ours."""
    if connection.dialect.name == "postgresql" and _CALL_SID.match(call_sid):
        row = connection.execute(
            _incoming_postgresql(),
            {
                "number": e164,
                "call_sid": call_sid,
                "from": from_[:300],
                "direction": direction[:32],
                "now": datetime.now(UTC),
            },
        ).fetchone()
        return LineAddress(*row) if row else None
    # SQLite (on the event loop: two statements cost less than one round trip elsewhere).
    line = line_by_number(connection, e164)
    if line is not None:
        note_call(connection, call_sid, line.phone_number, from_, line.phone_number, direction)
    return line
