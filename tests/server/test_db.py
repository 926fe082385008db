"""Database.run: a request's short work on the event loop (SQLite) or in one thread hop."""

import itertools
import sqlite3
import threading
import time
import uuid

import anyio
import pytest
from sqlalchemy import text

from dialtone.server import call_routing
from dialtone.server import db as db_module
from dialtone.server.db import Database


@pytest.fixture
def db_url(tmp_path):
    """Everything here is about SQLite's path (PostgreSQL always takes the one thread hop,
    which the rest of tests/server covers)."""
    return f"sqlite:///{tmp_path / 'dialtone.db'}"


def _note(call_sid):
    return lambda c: call_routing.note_call(c, call_sid, "+815031234567", "a", "b", "inbound")


def _count(db, call_sid):
    with db.connection() as connection:
        return connection.execute(
            text("SELECT count(*) FROM calls WHERE call_sid = :s"), {"s": call_sid}
        ).scalar()


def test_sqlite_work_runs_on_the_loop_and_is_committed(db):
    call_sid = "CA" + uuid.uuid4().hex
    seen = {}

    async def work(connection):
        seen["thread"] = threading.get_ident()
        await _note(call_sid)(connection)

    async def main():
        seen["loop"] = threading.get_ident()
        await db.run(work)

    anyio.run(main)
    assert seen["thread"] == seen["loop"]
    assert _count(db, call_sid) == 1


def test_a_locked_sqlite_file_sends_the_work_to_a_thread_and_leaves_the_loop_free(
    db, tmp_path, monkeypatch
):
    """Another writer holds the lock: the loop waits only LOOP_BUSY_TIMEOUT, then the work
    waits in a thread while the loop goes on serving; it is written once the lock is free."""
    monkeypatch.setattr(db_module, "LOOP_CONTENDED_FOR", 60.0)
    holder = sqlite3.connect(db.sqlite_file.path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another writer (a bulk import, say)
    call_sid = "CA" + uuid.uuid4().hex
    ticks = []
    threads = set()

    async def work(connection):
        threads.add(threading.get_ident())
        await _note(call_sid)(connection)

    async def main():
        ticks.append(time.monotonic())
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(db.run, work)
            for _ in range(20):  # the loop keeps turning while the work waits for the lock
                await anyio.sleep(0.02)
                ticks.append(time.monotonic())
            assert _count(db, call_sid) == 0  # still waiting
            holder.execute("ROLLBACK")
        # Within LOOP_CONTENDED_FOR, work goes straight to a thread.
        await db.run(_note("CA" + uuid.uuid4().hex))

    try:
        anyio.run(main)
    finally:
        holder.close()
    # The loop was never held for the busy timeout (3 s), only for the loop's short one.
    assert max(b - a for a, b in itertools.pairwise(ticks)) < 1.5
    assert threading.get_ident() in threads and len(threads) == 2  # the loop's try, a thread's
    assert _count(db, call_sid) == 1


def test_the_wal_is_checkpointed_by_a_thread_not_by_requests(tmp_path, monkeypatch):
    monkeypatch.setattr(db_module, "CHECKPOINT_INTERVAL", 0.05)
    db = Database(f"sqlite:///{tmp_path / 'dialtone.db'}")
    try:
        db.upgrade()

        async def main():
            for _ in range(50):
                await db.run(_note("CA" + uuid.uuid4().hex))
            await anyio.sleep(0.5)

        anyio.run(main)
        with sqlite3.connect(tmp_path / "dialtone.db") as reader:
            # Nothing left to copy: the thread checkpointed every page the requests wrote.
            busy, wal_pages, copied = reader.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        assert busy == 0 and wal_pages == copied
        assert "dialtone-db-checkpoint" in {t.name for t in threading.enumerate()}
    finally:
        db.dispose()


def test_sqlite_requests_of_one_loop_turn_share_one_commit(db, monkeypatch):
    """Group commit: concurrent requests' rows go in one transaction; a request whose work
    fails fails alone, and the others' rows are still committed."""
    transactions = []
    on_loop = db._on_loop

    def counting(works):
        transactions.append(works)
        return on_loop(works)

    monkeypatch.setattr(db, "_on_loop", counting)
    sids = ["CA" + uuid.uuid4().hex for _ in range(10)]

    async def failing(connection):
        await _note(sids[3])(connection)
        raise ValueError("this request's own fault")

    works = [failing if i == 3 else _note(sid) for i, sid in enumerate(sids)]
    outcomes = {}

    async def one(i, work):
        try:
            outcomes[i] = await db.run(work)
        except ValueError as failure:
            outcomes[i] = failure

    async def main():
        async with anyio.create_task_group() as tasks:
            for i, work in enumerate(works):
                tasks.start_soon(one, i, work)

    anyio.run(main)
    assert isinstance(outcomes.pop(3), ValueError)
    assert set(outcomes.values()) == {None}
    assert [_count(db, sid) for sid in sids] == [1, 1, 1, 0, 1, 1, 1, 1, 1, 1]
    # One batch of ten failed on the bad one; then each alone.
    assert len(transactions) == 1 + 10

    transactions.clear()
    more = ["CA" + uuid.uuid4().hex for _ in range(10)]

    async def all_good():
        async with anyio.create_task_group() as tasks:
            for sid in more:
                tasks.start_soon(db.run, _note(sid))

    anyio.run(all_good)
    assert len(transactions) == 1 and [_count(db, sid) for sid in more] == [1] * 10


def _wal_frames_after_steady_writes(path, commits=2000):
    db = Database(f"sqlite:///{path}")
    try:
        db.upgrade()

        async def main():
            for i in range(commits):
                await db.run(_note("CA" + uuid.uuid4().hex))
                if i % 50 == 0:
                    await anyio.sleep(0.001)  # the checkpoint thread gets its turns

        anyio.run(main)
        with sqlite3.connect(path) as reader:
            # The frames in the WAL now: all written since it last started over. -1 while the
            # server's checkpoint thread holds the checkpoint lock: ask again.
            for _ in range(500):
                _busy, frames, _copied = reader.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                if frames >= 0:
                    return frames
                time.sleep(0.01)
        raise AssertionError("the WAL could not be checkpointed for 5 s")
    finally:
        db.dispose()


def test_the_wal_starts_over_under_steady_writes(tmp_path, monkeypatch):
    """A passive checkpoint never catches up with a writer that never pauses, and SQLite
    starts the WAL over only once one has: it would grow with every write. Past
    WAL_SIZE_LIMIT the loop's writer restarts it between two transactions."""
    monkeypatch.setattr(db_module, "CHECKPOINT_INTERVAL", 0.01)
    monkeypatch.setattr(db_module, "WAL_SIZE_LIMIT", 1 << 40)  # never: as SQLite alone
    unbounded = _wal_frames_after_steady_writes(tmp_path / "unbounded.db")
    monkeypatch.setattr(db_module, "WAL_SIZE_LIMIT", 64 * 1024)
    bounded = _wal_frames_after_steady_writes(tmp_path / "bounded.db")
    assert unbounded > 2000  # every commit's pages, never started over
    assert bounded < unbounded / 4
