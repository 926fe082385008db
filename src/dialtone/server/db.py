"""Engine, sessions and Alembic migrations; every wait on the database is bounded.

Twilio gives a webhook 15 s in all, so no database fault may hold a request longer than a
few seconds: connecting, waiting for a pooled connection, waiting on a lock and each
statement all have their own timeout, and a watchdog cuts a connection that still has not
answered by its deadline (a thread blocked in the driver cannot be cancelled, but a socket
can be shut down, which wakes the driver with an error).

SQLite runs in WAL mode with `synchronous=NORMAL`: readers never wait for the writer, and a
commit is an append to the WAL without an fsync. A commit survives the process crashing or
being frozen (Lambda) — the WAL is in the OS's page cache — but the last transactions before
a power loss or kernel crash may be lost (never corrupted); `synchronous=FULL` would fsync
every commit, at several milliseconds each. A webhook's short work (`Database.run`) runs
right on the event loop there (see `run`); on PostgreSQL it runs on psycopg's asynchronous
connections, on the loop too (`pg_async`).

SQLAlchemy is imported only when `engine` is first used: a webhook's work goes straight to the
drivers (`dbapi`), so a Lambda cold start answers its first webhook without it.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import anyio.to_thread

from dialtone import logs
from dialtone.server import dbapi, pg_async
from dialtone.server.dbapi import drive, is_busy, unavailable

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine
    from sqlalchemy.orm import Session

    from dialtone.server.pg_async import AsyncPool, Batches

MIGRATIONS = Path(__file__).with_name("migrations")

log = logging.getLogger("dialtone.server.db")

CONNECT_TIMEOUT = 2  # seconds; libpq's minimum
PING_TIMEOUT = 1.5  # a pooled connection that does not answer SELECT 1 by then is cut
# A pooled connection that answered less than this ago is not pinged again: under load the
# ping would be a round trip per request. One that died meanwhile fails its request (which
# is answered safely) and is replaced.
PING_AFTER_IDLE = 1.0
STATEMENT_TIMEOUT = 3.0  # PostgreSQL's statement_timeout; SQLite's busy timeout
POOL_TIMEOUT = 3.0  # waiting for a free pooled connection
CHECKOUT_DEADLINE = 5.0  # the watchdog cuts a connection held longer (the server's own limit
# fires first, with a cleaner error)
REQUEST_DEADLINE = 6.0  # all of one webhook's database work (Twilio waits 15 s)
RETRY_INTERVAL = 1.0  # between attempts to check the schema while the database is down
# SQLite on the event loop (`Database.run`): how long a request may hold the whole loop
# waiting for another writer's lock before it goes to a worker thread (with the full
# STATEMENT_TIMEOUT) instead; and for how long after that all go there.
LOOP_BUSY_TIMEOUT = 0.05
LOOP_CONTENDED_FOR = 1.0
# The loop's connection never checkpoints the WAL itself (SQLite would do it inside a commit
# every 1,000 pages, with an fsync of the database file: a stall of the whole loop). A thread
# does it instead, this often while there are writes.
CHECKPOINT_INTERVAL = 1.0
WAL_SIZE_LIMIT = 256 * 1024 * 1024  # bytes; past it a checkpoint empties the WAL (`_checkpoint`)
HOPS = 4  # threads running requests' database work at once (SQLAlchemy's pool_size)

T = TypeVar("T")
# A request's database work: a coroutine over one connection in one transaction (`dbapi`).
Work = Callable[[dbapi.Connection], Awaitable[T]]


class DatabaseUnavailable(Exception):
    """The database cannot be used now; `state` names why in one word (for /healthz)."""

    def __init__(self, state: str, reason: str) -> None:
        super().__init__(reason)
        self.state = state
        self.reason = reason


class _Watchdog:
    """One daemon thread that runs each armed `cut` once its deadline has passed."""

    def __init__(self) -> None:
        self._armed: dict[object, tuple[float, int]] = {}
        self._heap: list[tuple[float, int, object, Callable[[], None], float]] = []
        self._counter = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def arm(self, key: object, seconds: float, cut: Callable[[], None]) -> None:
        deadline, serial = time.monotonic() + seconds, next(self._counter)
        with self._wake:
            self._armed[key] = (deadline, serial)
            heapq.heappush(self._heap, (deadline, serial, key, cut, seconds))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="dialtone-db-watchdog", daemon=True
                )
                self._thread.start()
            self._wake.notify()

    def disarm(self, key: object) -> None:
        with self._wake:
            self._armed.pop(key, None)

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._heap or self._heap[0][0] > time.monotonic():
                    timeout = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._wake.wait(timeout)
                _deadline, serial, key, cut, seconds = heapq.heappop(self._heap)
                if self._armed.get(key, (0, None))[1] != serial:
                    continue  # disarmed or re-armed since
                del self._armed[key]
            try:
                cut()
            except Exception:  # the connection closed meanwhile: nothing left to cut
                continue
            _log_cut(seconds)


def _log_cut(seconds: float) -> None:
    logs.event(log, "database_connection_cut", level=logging.WARNING, unanswered_s=seconds)


_watchdog = _Watchdog()


def _cut_postgresql(dbapi_connection: Any) -> Callable[[], None]:
    # Raises once the connection is closed: the watchdog then logs no cut.
    return partial(pg_async.shut_down, dbapi_connection)


class _SqliteFile:
    """Which file the database opened, to notice it being removed or replaced under us
    (open connections would go on writing to the unlinked file: those writes are lost)."""

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(path)
        self.opened: tuple[int, int] | None = None
        with contextlib.suppress(FileNotFoundError):
            self.record()  # the file there now is the one this server is to use

    def record(self) -> None:
        """Called once SQLite has opened (or made) the file."""
        if self.opened is None:
            st = os.stat(self.path)
            self.opened = (st.st_dev, st.st_ino)

    def check(self) -> None:
        if self.opened is None:
            return  # not created yet
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            raise DatabaseUnavailable(
                "removed",
                "the database file was removed while the server had it open; nothing is "
                "written until it is back (restore it, or restart the server)",
            ) from None
        if (st.st_dev, st.st_ino) != self.opened:
            raise DatabaseUnavailable(
                "replaced",
                "the database file was replaced while the server had it open; nothing is "
                "written until the server is restarted to open the new file",
            )


def _sqlite_file(url: str) -> _SqliteFile | None:
    path = dbapi.sqlite_path(url)
    return None if path is None else _SqliteFile(path)


class _Checkpoints:
    """A daemon thread that runs `checkpoint` at most every CHECKPOINT_INTERVAL, and only
    after `due` (a write) since the last one; started by the first write."""

    def __init__(self, checkpoint: Callable[[], None]) -> None:
        self._checkpoint = checkpoint
        self._pending = False
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def due(self) -> None:
        self._pending = True
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="dialtone-db-checkpoint", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        self._stopped.set()

    def _run(self) -> None:
        while not self._stopped.wait(CHECKPOINT_INTERVAL):
            if not self._pending:
                continue
            self._pending = False
            try:
                self._checkpoint()
            except Exception as failure:  # the next request reports an unusable database
                logs.event(
                    log,
                    "database_checkpoint_failed",
                    level=logging.WARNING,
                    error=describe(failure),
                )


def _settle(
    future: asyncio.Future, result: object = None, exception: BaseException | None = None
) -> None:
    if future.done():  # cancelled meanwhile
        return
    if exception is not None:
        future.set_exception(exception)
    else:
        future.set_result(result)


def _sqlite_pragmas(dbapi_connection: Any, wal: bool) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    if wal:
        # WAL is a property of the file (kept once set); synchronous is per connection.
        # See the module's docstring for the durability trade-off.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def make_engine(
    url: str,
    sqlite_file: _SqliteFile | None = None,
    bounded: bool = True,
    *,
    busy_timeout: float = STATEMENT_TIMEOUT,
    **options: Any,
) -> Engine:
    from sqlalchemy import create_engine, event, make_url

    if url.startswith("sqlite"):
        # The busy timeout bounds waits on another writer's lock (the default 5 s, or the
        # 15 s once used here, would use up all the time Twilio gives a webhook).
        connect_args = {"timeout": busy_timeout, **options.pop("connect_args", {})}
        engine = create_engine(url, connect_args=connect_args, **options)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: object) -> None:
            _sqlite_pragmas(dbapi_connection, wal=sqlite_file is not None)
            if sqlite_file is not None:
                sqlite_file.record()

        return engine
    connect_args: dict[str, Any] = {}
    if url.startswith("postgresql"):
        query = make_url(url).query
        options = query.get("options", "")
        connect_args = _postgresql_bounds(
            "connect_timeout" in query,
            " ".join(options) if isinstance(options, tuple) else options,
            bounded,
        )
    # No pool_pre_ping: its SELECT 1 can itself hang on a connection that stopped
    # answering. The checkout listener below pings under the watchdog instead.
    return create_engine(url, pool_timeout=POOL_TIMEOUT, connect_args=connect_args)


def _postgresql_bounds(has_connect_timeout: bool, options: str, bounded: bool) -> dict[str, Any]:
    """libpq parameters bounding connecting and (for the server) each statement."""
    bounds: dict[str, Any] = {}
    if not has_connect_timeout:
        bounds["connect_timeout"] = CONNECT_TIMEOUT
    if bounded and "statement_timeout" not in options:
        # These replace the URL's `options` (a search_path, say): keep them.
        ms = int(STATEMENT_TIMEOUT * 1000)
        bounds["options"] = f"{options} -c statement_timeout={ms}".strip()
    return bounds


class Database:
    """`bounded` (the server's): statements time out and a connection held past
    CHECKOUT_DEADLINE is cut. Commands (`dialtone lines import` of a million lines) run
    unbounded; connecting, lock waits and pings are bounded either way."""

    def __init__(self, url: str, *, bounded: bool = True) -> None:
        self.url = url
        self.bounded = bounded
        self.dialect = dbapi.dialect_of(url)
        self.sqlite_file = _sqlite_file(url) if self.dialect == "sqlite" else None
        self._engine: Engine | None = None  # made (and SQLAlchemy imported) when first used
        self._sessions: Any = None  # a sessionmaker, made (and the ORM imported) when first used
        # SQLite: one connection used only by the event loop's thread (`run`), and until when
        # another writer's lock sends that work to worker threads instead.
        self._loop_connection: sqlite3.Connection | None = None
        self._contended_until = 0.0
        # PostgreSQL: the event loop's connections (`run`).
        self._async_pool: AsyncPool | None = None
        self._batches: Batches | None = None
        self._hops: anyio.CapacityLimiter | None = None
        self._queue: list[tuple[Work, asyncio.Future]] = []
        self._checkpoints = _Checkpoints(self._checkpoint)
        self._checkpoint_connection: sqlite3.Connection | None = None
        self._page_bytes: int | None = None
        self._restart_wal = False  # set by the checkpoint thread, done by the loop
        self._unbounded = threading.local()
        # Set by `defer_upgrade`: sessions first bring the schema to the newest migration.
        self._upgrade_pending = False
        self._upgrade_lock = threading.Lock()
        self._next_upgrade = 0.0
        self._problem: str | None = None

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = make_engine(self.url, self.sqlite_file, self.bounded)
            self._bound_connections(self._engine)
        return self._engine

    def _bound_connections(self, engine: Engine) -> None:
        from sqlalchemy import event, exc

        postgresql = engine.dialect.name == "postgresql"

        @event.listens_for(engine, "connect")
        def _fresh(_dbapi_connection: Any, record: Any) -> None:
            record.info["fresh"] = True

        @event.listens_for(engine, "checkout")
        def _checkout(dbapi_connection: Any, record: Any, _proxy: object) -> None:
            cut = _cut_postgresql(dbapi_connection) if postgresql else dbapi_connection.interrupt
            idle = time.monotonic() - record.info.get("answered_at", float("-inf"))
            if postgresql and not record.info.pop("fresh", False) and idle > PING_AFTER_IDLE:
                # pool_pre_ping's job, but cut if the connection accepts and never answers.
                _watchdog.arm(record, PING_TIMEOUT, cut)
                try:
                    cursor = dbapi_connection.cursor()
                    cursor.execute("SELECT 1")
                    cursor.close()
                except Exception as ping_failed:
                    _watchdog.disarm(record)
                    # The pool replaces the connection and tries once more.
                    raise exc.DisconnectionError(str(ping_failed)) from ping_failed
            record.info.pop("fresh", None)
            if self.bounded and not getattr(self._unbounded, "on", False):
                _watchdog.arm(record, CHECKOUT_DEADLINE, cut)
            else:
                _watchdog.disarm(record)

        @event.listens_for(engine, "checkin")
        def _checkin(dbapi_connection: Any, record: Any) -> None:
            _watchdog.disarm(record)
            if dbapi_connection is not None:  # None: invalidated on the way
                # Its transaction has just ended without a fault: it was answering then.
                record.info["answered_at"] = time.monotonic()

        @event.listens_for(engine, "invalidate")
        def _invalidate(_dbapi_connection: Any, record: Any, _exception: object) -> None:
            _watchdog.disarm(record)

    def check(self) -> None:
        """Raise DatabaseUnavailable when the database must not be used now: its file was
        removed or replaced, or its schema is still unchecked and the database unreachable."""
        if self.sqlite_file is not None:
            self.sqlite_file.check()
        if self._upgrade_pending:
            self._upgrade_when_back()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on error."""
        if self._sessions is None:
            from sqlalchemy.orm import sessionmaker

            self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        with self._reporting():
            self.check()
            with self._sessions() as session, session.begin():
                yield session

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        """A Core connection in one transaction: committed on success, rolled back on error."""
        with self._reporting():
            self.check()
            with self.engine.begin() as connection:
                yield connection

    @contextmanager
    def _reporting(self, quiet_busy: bool = False) -> Iterator[None]:
        try:
            yield
        except DatabaseUnavailable as failure:
            self._report(failure.state, failure.reason)
            raise
        except Exception as failure:
            if unavailable(failure) and not (quiet_busy and is_busy(failure)):
                self._report("unreachable", describe(failure))
            raise
        if self._problem is not None:
            self._report(None, "")

    def transact(self, work: Work[T]) -> T:
        """`work` on a pooled DB-API connection in one transaction (blocking)."""
        with self._reporting():
            self.check()
            raw = self.engine.raw_connection()  # the pool's checkout: pings, watchdog, as ever
            try:
                result = drive(work(dbapi.Direct(raw.driver_connection, self.dialect)))
                raw.commit()
            except BaseException:
                try:
                    raw.rollback()
                except Exception:
                    raw.invalidate()  # broken: the pool makes a new one
                raise
            finally:
                raw.close()
            return result

    async def run(
        self,
        work: Work[T],
        timeout: float = REQUEST_DEADLINE,
        *,
        one_statement: bool = False,
    ) -> T:
        """A request's short database work in one transaction, committed before it returns.

        PostgreSQL: on the event loop, on one of a few asynchronous connections
        (`_on_postgresql`); `one_statement` work runs in autocommit (it is its own
        transaction: one round trip instead of BEGIN, it, COMMIT), and is sent with the
        same statement of the other requests of that turn of the loop when it has a batched
        form (`pg_async.Batches`).

        SQLite: right on the event loop, with no thread hop — a lookup and an insert on a
        local file take tens of microseconds, less than the hop itself — and committed with
        the other requests of the same turn of the loop (`_batched`). What could hold the
        loop is another writer's lock: the loop's connection waits at most LOOP_BUSY_TIMEOUT
        for it, then the work goes to a worker thread with the full busy timeout (and the
        `timeout` deadline), and so does all work for LOOP_CONTENDED_FOR after, so a long
        writer elsewhere (a bulk import) costs the loop one short wait, not one per request.
        """
        if self.dialect == "postgresql":
            with self._reporting():
                self.check()
                async with asyncio.timeout(timeout):
                    return await self._on_postgresql(work, one_statement)
        if self.sqlite_file is not None and time.monotonic() >= self._contended_until:
            try:
                return await self._batched(work)
            except Exception as failure:
                if not is_busy(failure):
                    raise
                self._contended_until = time.monotonic() + LOOP_CONTENDED_FOR
                logs.event(
                    log,
                    "database_contended",
                    level=logging.WARNING,
                    detail="another writer holds the SQLite lock; requests wait for it in "
                    f"threads for {LOOP_CONTENDED_FOR:g} s",
                )
        if self._hops is None:
            # As many threads as pooled connections: more would only queue for a connection
            # (and the GIL) inside the driver instead of here.
            self._hops = anyio.CapacityLimiter(HOPS)
        return await bounded(partial(self.transact, work), timeout=timeout, limiter=self._hops)

    async def _on_postgresql(self, work: Work[T], one_statement: bool) -> T:
        if self._async_pool is None:
            conninfo = dbapi.postgresql_conninfo(self.url)
            from psycopg.conninfo import conninfo_to_dict, make_conninfo

            given = conninfo_to_dict(conninfo)
            bounds = _postgresql_bounds(
                "connect_timeout" in given, str(given.get("options", "")), self.bounded
            )
            self._async_pool = pg_async.AsyncPool(
                make_conninfo(conninfo, **bounds),
                size=HOPS,
                wait_timeout=POOL_TIMEOUT,
                ping_after_idle=PING_AFTER_IDLE,
                ping_timeout=PING_TIMEOUT,
                checkout_deadline=CHECKOUT_DEADLINE,
                on_cut=_log_cut,
            )
            self._batches = pg_async.Batches(self._async_pool)
        if one_statement:
            return await work(self._batches)
        async with self._async_pool.connection() as raw, raw.transaction():
            return await work(dbapi.AsyncDirect(raw))

    def _batched(self, work: Work[T]) -> asyncio.Future[T]:
        """Group commit: the work of every request that reaches this point in one turn of
        the event loop runs in one transaction, right after that turn; each request's
        future is resolved once it is committed. A commit writes each page it touched to the
        WAL once, so under load a row costs a fraction of a commit of its own."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        if not self._queue:
            loop.call_soon(self._flush)
        self._queue.append((work, future))
        return future

    def _flush(self) -> None:
        queue = [(work, future) for work, future in self._queue if not future.cancelled()]
        self._queue = []
        if not queue:
            return
        try:
            results = self._on_loop([work for work, _future in queue])
        except Exception as failure:
            if len(queue) > 1 and not is_busy(failure):
                # One request's own fault must not fail the others: each alone, then.
                for work, future in queue:
                    try:
                        (result,) = self._on_loop([work])
                    except Exception as alone:
                        _settle(future, exception=alone)
                    else:
                        _settle(future, result)
                self._checkpoints.due()
                return
            for _work, future in queue:
                _settle(future, exception=failure)
            return
        for (_work, future), result in zip(queue, results, strict=True):
            _settle(future, result)
        self._checkpoints.due()

    def _on_loop(self, works: list[Work]) -> list:
        """SQLite: `works` in one transaction on the loop's own connection."""
        with self._reporting(quiet_busy=True):
            self.check()
            if self._loop_connection is None:
                # Autocommit mode (isolation_level None): BEGIN and COMMIT are ours.
                connection = sqlite3.connect(
                    self.sqlite_file.path,  # type: ignore[union-attr]
                    timeout=LOOP_BUSY_TIMEOUT,
                    isolation_level=None,
                    check_same_thread=False,
                )
                _sqlite_pragmas(connection, wal=True)
                connection.execute("PRAGMA wal_autocheckpoint=0")
                self.sqlite_file.record()  # type: ignore[union-attr]
                self._loop_connection = connection
            connection = self._loop_connection
            direct = dbapi.Direct(connection, "sqlite")
            connection.execute("BEGIN")
            try:
                results = [drive(work(direct)) for work in works]
                connection.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    connection.execute("ROLLBACK")
                raise
            if self._restart_wal:
                # Copies the few frames the checkpoint thread has not (it did the rest) and
                # starts the WAL over: a pause of the loop for one fsync, once per
                # WAL_SIZE_LIMIT of writes. Busy (a reader, the checkpoint thread): tried
                # again after the next transaction.
                with contextlib.suppress(sqlite3.Error):
                    ((busy, _frames, _copied),) = connection.execute(
                        "PRAGMA wal_checkpoint(RESTART)"
                    )
                    self._restart_wal = bool(busy)
            return results

    def _checkpoint(self) -> None:
        """Copy the WAL's pages into the database file, without waiting for any reader or
        writer (PASSIVE); runs in the checkpoint thread, on a connection of its own."""
        self.check()
        if self._checkpoint_connection is None:
            self._checkpoint_connection = sqlite3.connect(
                self.sqlite_file.path,  # type: ignore[union-attr]
                timeout=STATEMENT_TIMEOUT,
                check_same_thread=False,  # closed by `dispose`
            )
        connection = self._checkpoint_connection
        ((_busy, frames, _copied),) = connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
        if frames * self._page_size(connection) > WAL_SIZE_LIMIT:
            # Under steady writes a passive checkpoint never catches up with the writer, and
            # the WAL only starts over once one has: it would grow without end. The loop's
            # writer restarts it itself, between two of its transactions (`_on_loop`).
            self._restart_wal = True

    def _page_size(self, connection: sqlite3.Connection) -> int:
        if self._page_bytes is None:
            (self._page_bytes,) = connection.execute("PRAGMA page_size").fetchone()
        return self._page_bytes

    def _report(self, state: str | None, detail: str) -> None:
        """One log line when the database becomes unavailable and one when it is back."""
        if state == self._problem:
            return
        self._problem = state
        if state is None:
            logs.event(log, "database_available")
        else:
            logs.event(
                log, "database_unavailable", level=logging.WARNING, state=state, detail=detail
            )

    def defer_upgrade(self) -> None:
        """The schema could not be checked (the database is down): refuse all work until
        the database answers, then bring it to the newest migration first."""
        self._upgrade_pending = True

    def _upgrade_when_back(self) -> None:
        # One thread tries; the others refuse at once instead of queueing behind it.
        if not self._upgrade_lock.acquire(timeout=0.2):
            raise DatabaseUnavailable("unreachable", "the database schema is being checked")
        try:
            if not self._upgrade_pending:
                return
            if time.monotonic() < self._next_upgrade:
                raise DatabaseUnavailable(
                    "unreachable", "the database is unreachable; its schema is not checked yet"
                )
            try:
                self.upgrade()
            except Exception as failure:
                self._next_upgrade = time.monotonic() + RETRY_INTERVAL
                self._report("unreachable", describe(failure))
                raise DatabaseUnavailable(
                    "unreachable", "the database is unreachable; its schema is not checked yet"
                ) from failure
            self._upgrade_pending = False
            logs.event(log, "database_upgraded", when="the database came back")
        finally:
            self._upgrade_lock.release()

    def upgrade(self) -> None:
        """Bring the schema to the newest migration."""
        from alembic import command

        with self.unbounded(), self.engine.begin() as connection:
            if self.engine.dialect.name == "postgresql":
                connection.exec_driver_sql("SET LOCAL statement_timeout = 0")
            command.upgrade(alembic_config(connection), "head")

    @contextmanager
    def unbounded(self) -> Iterator[None]:
        """For work that may rightly outlast a request (a migration, a bulk import): no
        watchdog on connections this thread checks out meanwhile. PostgreSQL's
        statement_timeout still applies: `SET LOCAL statement_timeout = 0` lifts it."""
        self._unbounded.on = True
        try:
            yield
        finally:
            self._unbounded.on = False

    def dispose(self) -> None:
        self._checkpoints.stop()
        if self._engine is not None:
            self._engine.dispose()
        for connection in (self._loop_connection, self._checkpoint_connection):
            if connection is not None:
                connection.close()
        self._loop_connection = self._checkpoint_connection = None
        if self._async_pool is not None:
            self._async_pool.close()


def describe(failure: BaseException) -> str:
    """The driver's first line (it names host and port, never the password) for the log."""
    original = getattr(failure, "orig", None) or failure
    text = str(original).strip().splitlines()
    return f"{type(original).__name__}: {text[0][:300] if text else ''}"


async def bounded(
    func: Callable[..., T],
    *args: object,
    timeout: float = REQUEST_DEADLINE,
    limiter: anyio.CapacityLimiter | None = None,
) -> T:
    """Run blocking database work in a worker thread and give up waiting after `timeout`
    (TimeoutError). The thread itself is stopped by the driver timeouts and the watchdog."""
    with anyio.fail_after(timeout):
        return await anyio.to_thread.run_sync(func, *args, abandon_on_cancel=True, limiter=limiter)


def alembic_config(connection: object = None):  # noqa: ANN201 - alembic imported lazily
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config
