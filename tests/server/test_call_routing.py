"""The webhook's own statements (call_routing): lookups and the call's first history row."""

import uuid

import pytest
from sqlalchemy import select

from dialtone.server import call_routing
from dialtone.server.models import Base, Call
from tests.conftest import SEED_CLIENT, SEED_NUMBER


def test_the_light_tables_name_real_columns():
    """call_routing names the tables without the ORM: each column must exist in the models."""
    for light in (call_routing.LINES, call_routing.CALLS):
        real = Base.metadata.tables[light.name]
        assert {c.name for c in light.c} <= {c.name for c in real.c}, light.name


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


def test_the_driver_s_errors_surface_as_sqlalchemy_s(db, registry):
    from sqlalchemy import exc

    def twice(connection):
        call_routing.note_call(connection, "CA" + "0" * 32, SEED_NUMBER, "x", "y", "inbound")
        connection.execute(call_routing._BY_NUMBER, {"value": SEED_NUMBER})
        connection.call(connection.raw.cursor().execute, "SELECT * FROM no_such_table")

    with pytest.raises(exc.DBAPIError):
        db.transact(twice)
    assert _calls(db, "CA" + "0" * 32) == []  # rolled back with the failure
