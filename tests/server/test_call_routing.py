"""The webhook's own statements (call_routing): lookups and the call's first history row."""

import uuid
from datetime import UTC, datetime

import anyio
import pytest
from sqlalchemy import select

from dialtone.server import call_routing
from dialtone.server.dbapi import Statement
from dialtone.server.models import Base, Call
from tests.conftest import SEED_CLIENT, SEED_NUMBER


def test_the_plain_sql_names_real_columns():
    """call_routing writes SQL without SQLAlchemy: each column it names must be the models'."""
    named = {c.strip().strip('"') for c in call_routing._CALL_COLUMNS.split(",")}
    assert named <= {c.name for c in Base.metadata.tables["calls"].c}
    # Every NOT NULL column without a default is given a value.
    required = {
        c.name
        for c in Base.metadata.tables["calls"].c
        if not c.nullable and c.default is None and c.server_default is None
    }
    assert required <= named


def test_the_same_work_on_the_event_loop(db, registry):
    """What a webhook runs (Database.run: PostgreSQL's asynchronous connections, SQLite's
    loop connection) reads and writes what the blocking path does."""
    call_sid = "CA" + uuid.uuid4().hex

    async def main():
        return await db.run(
            lambda c: call_routing.route_incoming(c, SEED_NUMBER, call_sid, "+8190", "inbound"),
            one_statement=True,
        )

    assert anyio.run(main) == (SEED_NUMBER, SEED_CLIENT)
    [call] = _calls(db, call_sid)
    assert (call.line_number, call.from_, call.to, call.direction) == (
        SEED_NUMBER,
        "+8190",
        SEED_NUMBER,
        "inbound",
    )
    assert abs((datetime.now(UTC) - call.started_at).total_seconds()) < 60


def _calls(db, call_sid):
    with db.session() as session:
        return session.scalars(select(Call).where(Call.call_sid == call_sid)).all()


def test_an_incoming_call_to_a_line_is_routed_and_noted(db, registry):
    call_sid = "CA" + uuid.uuid4().hex
    line = db.transact(
        lambda c: call_routing.route_incoming(c, SEED_NUMBER, call_sid, "+819059876543", "inbound")
    )
    assert line == (SEED_NUMBER, SEED_CLIENT)
    [call] = _calls(db, call_sid)
    assert (call.line_number, call.from_, call.to, call.status) == (
        SEED_NUMBER,
        "+819059876543",
        SEED_NUMBER,
        "ringing",
    )
    assert call.started_at.utcoffset() is not None  # read back as UTC, as the ORM stores it
    # A redelivery of the same webhook updates the row; it adds none.
    again = db.transact(
        lambda c: call_routing.route_incoming(c, SEED_NUMBER, call_sid, "+819059876543", "inbound")
    )
    assert again == line and len(_calls(db, call_sid)) == 1


def test_a_call_to_no_line_is_not_noted(db, registry):
    call_sid = "CA" + uuid.uuid4().hex
    assert (
        db.transact(
            lambda c: call_routing.route_incoming(c, "+815099990000", call_sid, "+8190", "inbound")
        )
        is None
    )
    assert _calls(db, call_sid) == []


@pytest.mark.parametrize("call_sid", ["", "CA123", "XX" + "0" * 32])
def test_a_malformed_call_sid_routes_without_a_row(db, registry, call_sid):
    line = db.transact(
        lambda c: call_routing.route_incoming(c, SEED_NUMBER, call_sid, "+8190", "inbound")
    )
    assert line == (SEED_NUMBER, SEED_CLIENT)
    assert _calls(db, call_sid) == []


def test_lookups_by_client_name(db, registry):
    assert db.transact(lambda c: call_routing.line_by_client_name(c, SEED_CLIENT)) == (
        SEED_NUMBER,
        SEED_CLIENT,
    )
    assert db.transact(lambda c: call_routing.line_by_client_name(c, "nobody")) is None


@pytest.mark.parametrize("path", ["blocking", "event loop"])
def test_a_failing_statement_rolls_the_whole_work_back(db, registry, path):
    call_sid = "CA" + uuid.uuid4().hex

    async def twice(connection):
        await call_routing.note_call(connection, call_sid, SEED_NUMBER, "x", "y", "inbound")
        await connection.fetchone(call_routing._BY_NUMBER, {"value": SEED_NUMBER})
        await connection.execute(Statement("SELECT * FROM no_such_table"), {})

    async def on_the_loop():
        await db.run(twice)

    with pytest.raises(Exception, match="no_such_table"):
        db.transact(twice) if path == "blocking" else anyio.run(on_the_loop)
    assert _calls(db, call_sid) == []  # rolled back with the failure
