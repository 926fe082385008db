"""PostgreSQL on the event loop (pg_async): the few asynchronous connections, and the batches
in which concurrent incoming calls share one statement."""

import asyncio
import uuid

import anyio
import pytest
from sqlalchemy import text

from dialtone.server import call_routing
from dialtone.server.db import Database
from tests.conftest import SEED_CLIENT, SEED_NUMBER, _postgres_schema_url

pytestmark = pytest.mark.postgres

OTHER_NUMBER = "+815099990000"  # no line


@pytest.fixture
def pg(registry) -> Database:
    return registry.db


@pytest.fixture(params=["postgresql"])
def db_url(request):
    """Only PostgreSQL here (the SQLite path has its own tests in test_db.py)."""
    yield from _postgres_schema_url(request)


def _rows(db, call_sid):
    with db.connection() as connection:
        return connection.execute(
            text('SELECT line_number, "from", direction FROM calls WHERE call_sid = :s'),
            {"s": call_sid},
        ).all()


def _incoming(db, number, call_sid, caller="+819059876543"):
    return db.run(
        lambda c: call_routing.route_incoming(c, number, call_sid, caller, "inbound"),
        one_statement=True,
    )


def test_concurrent_incoming_calls_share_one_statement(pg, monkeypatch):
    """One turn of the loop: one round trip for all, and each request gets its own answer."""
    sent = []

    async def main():
        await _incoming(pg, SEED_NUMBER, "CA" + uuid.uuid4().hex)  # the pool's connection
        pool = pg._async_pool
        connection_of = pool.connection

        def counting():
            sent.append(1)
            return connection_of()

        monkeypatch.setattr(pool, "connection", counting)
        sids = ["CA" + uuid.uuid4().hex for _ in range(30)]
        numbers = [OTHER_NUMBER if i % 5 == 0 else SEED_NUMBER for i in range(30)]
        answers = await asyncio.gather(
            *(
                _incoming(pg, n, s, f"+8190{i:08d}")
                for i, (n, s) in enumerate(zip(numbers, sids, strict=True))
            )
        )
        return sids, numbers, answers

    sids, numbers, answers = anyio.run(main)
    assert len(sent) == 1  # one checkout, one statement for the thirty
    for i, (number, sid, answer) in enumerate(zip(numbers, sids, answers, strict=True)):
        if number == OTHER_NUMBER:
            assert answer is None and _rows(pg, sid) == []
        else:
            assert answer == (SEED_NUMBER, SEED_CLIENT)
            assert _rows(pg, sid) == [(SEED_NUMBER, f"+8190{i:08d}", "inbound")]


def test_a_callsid_twice_in_one_batch_is_one_row(pg):
    """Twilio may redeliver a webhook while the first is in flight; ON CONFLICT cannot touch
    one row twice in one statement, so the batch writes it once (the last delivery)."""
    sid = "CA" + uuid.uuid4().hex

    async def main():
        return await asyncio.gather(
            _incoming(pg, SEED_NUMBER, sid, "+81901"), _incoming(pg, SEED_NUMBER, sid, "+81902")
        )

    assert anyio.run(main) == [(SEED_NUMBER, SEED_CLIENT)] * 2
    assert _rows(pg, sid) == [(SEED_NUMBER, "+81902", "inbound")]


def test_a_failing_batch_is_retried_one_request_at_a_time(pg):
    """One request's bad value fails that request only; the others are written."""
    good = ["CA" + uuid.uuid4().hex for _ in range(5)]
    bad = "CA" + uuid.uuid4().hex

    def broken(connection):
        # A value PostgreSQL refuses (a NUL character in text).
        return call_routing.route_incoming(connection, SEED_NUMBER, bad, "+81\x00", "inbound")

    async def main():
        return await asyncio.gather(
            *(_incoming(pg, SEED_NUMBER, sid) for sid in good),
            pg.run(broken, one_statement=True),
            return_exceptions=True,
        )

    *answers, failure = anyio.run(main)
    assert isinstance(failure, Exception)
    assert answers == [(SEED_NUMBER, SEED_CLIENT)] * 5
    assert all(len(_rows(pg, sid)) == 1 for sid in good) and _rows(pg, bad) == []


def test_the_pool_follows_the_event_loop_it_runs_on(pg):
    """A server runs one loop, but tests and commands run several one after the other:
    connections made on a finished loop are not reused on the next."""
    for _ in range(3):
        sid = "CA" + uuid.uuid4().hex
        assert anyio.run(lambda sid=sid: _incoming(pg, SEED_NUMBER, sid)) == (
            SEED_NUMBER,
            SEED_CLIENT,
        )
    assert len(pg._async_pool._idle) <= 1


def test_a_stalled_pooled_connection_is_cut_at_its_deadline(pg, monkeypatch):
    """A statement that never answers (here: pg_sleep past every bound) fails at the
    checkout deadline, through the socket being shut down, not after psycopg's own
    cancel-and-wait; the next request gets a fresh connection."""
    from dialtone.server import db as db_module
    from dialtone.server.dbapi import Statement

    monkeypatch.setattr(db_module, "CHECKOUT_DEADLINE", 0.3)
    sleep = Statement("SELECT pg_sleep(30)")

    async def stalls(connection):
        await connection.execute(sleep, {})

    async def main():
        started = asyncio.get_running_loop().time()
        with pytest.raises(Exception):  # noqa: B017 - the driver's error for a cut socket
            await pg.run(stalls)
        took = asyncio.get_running_loop().time() - started
        return took, await _incoming(pg, SEED_NUMBER, "CA" + uuid.uuid4().hex)

    # statement_timeout (3 s) would end it too: the cut must come well before.
    took, answer = anyio.run(main)
    assert took < 2.0
    assert answer == (SEED_NUMBER, SEED_CLIENT)
