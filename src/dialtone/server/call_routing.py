"""What a TwiML webhook reads and writes: the line a call is for, and the call's first row
in the history. Plain SQL on the request's own connection (`Database.run`, `dbapi`): no
SQLAlchemy on a webhook's path (`models` defines these tables whole, for everything else).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import NamedTuple

from dialtone.server.dbapi import Connection, Statement, timestamp

_CALL_SID = re.compile(r"^CA[0-9a-fA-F]{32}$")


class LineAddress(NamedTuple):
    """What a webhook needs of a line: its number and the Client identity that answers it."""

    phone_number: str
    client_name: str


# Both columns are unique: one index probe, whatever the number of lines.
_BY_NUMBER = Statement("SELECT phone_number, client_name FROM lines WHERE phone_number = %(value)s")
_BY_CLIENT_NAME = Statement(
    "SELECT phone_number, client_name FROM lines WHERE client_name = %(value)s"
)

_CALL_COLUMNS = (
    'call_sid, line_number, "from", "to", direction, status, last_sequence_number, '
    "started_at, updated_at"
)
# What a TwiML webhook learned wins over what a status callback stored first: whose line,
# the number really dialled. Valid on SQLite (3.24+) and PostgreSQL alike.
_ON_CONFLICT = (
    'ON CONFLICT (call_sid) DO UPDATE SET line_number = excluded.line_number, "to" = excluded."to"'
)
_NOTE = Statement(
    f"INSERT INTO calls ({_CALL_COLUMNS}) VALUES (%(call_sid)s, %(line_number)s, %(from)s, "
    f"%(to)s, %(direction)s, 'ringing', -1, %(now)s, %(now)s) {_ON_CONFLICT}"
)
# A call the server refused: noted with the reason (the caller only hears it), so the phone
# can show it in its history.
_NOTE_REFUSAL = Statement(
    f"INSERT INTO calls ({_CALL_COLUMNS}, refusal) VALUES (%(call_sid)s, %(line_number)s, "
    "%(from)s, %(to)s, %(direction)s, 'ringing', -1, %(now)s, %(now)s, %(refusal)s) "
    f"{_ON_CONFLICT}, refusal = excluded.refusal"
)
# PostgreSQL: the line of a called number and its call noted, in one statement (one round
# trip). The CTE's insert happens whether or not the outer SELECT reads it. Batched: the
# same for many calls at once, their values in arrays; one row per call (the last of a
# redelivered CallSid) is written, as ON CONFLICT cannot update a row twice in one statement.
_INCOMING_POSTGRESQL = Statement(
    "WITH line AS (SELECT phone_number, client_name FROM lines "
    "WHERE phone_number = %(number)s), "
    f"noted AS (INSERT INTO calls ({_CALL_COLUMNS}) "
    "SELECT %(call_sid)s, phone_number, %(from)s, phone_number, %(direction)s, 'ringing', -1, "
    f"%(now)s, %(now)s FROM line {_ON_CONFLICT}) "
    "SELECT phone_number, client_name FROM line",
    batched="WITH given AS (SELECT * FROM unnest(%(number)s::text[], %(call_sid)s::text[], "
    "%(from)s::text[], %(direction)s::text[], %(now)s::timestamptz[]) "
    'WITH ORDINALITY AS given(number, call_sid, "from", direction, at, n)), '
    "line AS (SELECT given.*, lines.client_name FROM given "
    "JOIN lines ON lines.phone_number = given.number), "
    f"noted AS (INSERT INTO calls ({_CALL_COLUMNS}) "
    "SELECT DISTINCT ON (call_sid) call_sid, number, \"from\", number, direction, 'ringing', -1, "
    f"at, at FROM line ORDER BY call_sid, n DESC {_ON_CONFLICT}) "
    "SELECT n, number, client_name FROM line",
)


async def line_by_number(connection: Connection, e164: str) -> LineAddress | None:
    row = await connection.fetchone(_BY_NUMBER, {"value": e164})
    return LineAddress(*row) if row else None


async def line_by_client_name(connection: Connection, client_name: str) -> LineAddress | None:
    row = await connection.fetchone(_BY_CLIENT_NAME, {"value": client_name})
    return LineAddress(*row) if row else None


async def note_call(
    connection: Connection,
    call_sid: str,
    line_number: str,
    from_: str,
    to: str,
    direction: str,
    refusal: str | None = None,
) -> None:
    """What a TwiML webhook learned (whose line, the number really dialled), so history is
    right even before (or without) status callbacks, which update the row later. One
    statement in the request's transaction: the row is committed before the TwiML is sent."""
    if not _CALL_SID.match(call_sid):
        return
    values = {
        "call_sid": call_sid,
        "line_number": line_number,
        "from": from_[:300],
        "to": to[:300],
        "direction": direction[:32],
        "now": timestamp(connection.dialect, datetime.now(UTC)),
    }
    if refusal is None:
        await connection.execute(_NOTE, values)
    else:
        await connection.execute(_NOTE_REFUSAL, {**values, "refusal": refusal[:200]})


async def route_incoming(
    connection: Connection, e164: str, call_sid: str, from_: str, direction: str
) -> LineAddress | None:
    """The line whose number was called, with the call noted (`note_call`) when it is ours."""
    if connection.dialect == "postgresql" and _CALL_SID.match(call_sid):
        row = await connection.fetchone(
            _INCOMING_POSTGRESQL,
            {
                "number": e164,
                "call_sid": call_sid,
                "from": from_[:300],
                "direction": direction[:32],
                "now": datetime.now(UTC),
            },
        )
        return LineAddress(*row) if row else None
    # SQLite (on the event loop: two statements cost less than one round trip elsewhere).
    line = await line_by_number(connection, e164)
    if line is not None:
        await note_call(
            connection, call_sid, line.phone_number, from_, line.phone_number, direction
        )
    return line
