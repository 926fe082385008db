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
right on the event loop there (see `run`).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import anyio.to_thread
from sqlalchemy import Connection, Engine, create_engine, event, exc, make_url
from sqlalchemy.pool import StaticPool

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

from dialtone import logs

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
HOPS = 4  # threads running requests' database work at once (SQLAlchemy's pool_size)

T = TypeVar("T")

# Failures that mean "the database is not answering", as opposed to bad data.
UNAVAILABLE = (exc.OperationalError, exc.InterfaceError, exc.TimeoutError, TimeoutError)


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
            logs.event(log, "database_connection_cut", level=logging.WARNING, unanswered_s=seconds)


_watchdog = _Watchdog()


def _cut_postgresql(dbapi_connection: Any) -> Callable[[], None]:
    def cut() -> None:
        fd = dbapi_connection.pgconn.socket  # raises once the connection is closed
        # Shut the socket down through a duplicate: the driver's blocked wait wakes with an
        # error and its own descriptor stays valid until it closes it.
        with socket.socket(fileno=os.dup(fd)) as duplicate:
            duplicate.shutdown(socket.SHUT_RDWR)

    return cut


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
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return _SqliteFile(database)


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


def _no_autocheckpoint(dbapi_connection: Any, _record: object) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.close()


def _is_busy(failure: BaseException) -> bool:
    """SQLITE_BUSY or SQLITE_LOCKED (extended codes included): another writer holds the lock."""
    code = getattr(getattr(failure, "orig", None), "sqlite_errorcode", None)
    return code is not None and code & 0xFF in (5, 6)


def make_engine(
    url: str,
    sqlite_file: _SqliteFile | None = None,
    bounded: bool = True,
    *,
    busy_timeout: float = STATEMENT_TIMEOUT,
    **options: Any,
) -> Engine:
    if url.startswith("sqlite"):
        # The busy timeout bounds waits on another writer's lock (the default 5 s, or the
        # 15 s once used here, would use up all the time Twilio gives a webhook).
        connect_args = {"timeout": busy_timeout, **options.pop("connect_args", {})}
        engine = create_engine(url, connect_args=connect_args, **options)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: object) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            if sqlite_file is not None:
                # WAL is a property of the file (kept once set); synchronous is per
                # connection. See the module's docstring for the durability trade-off.
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()
            if sqlite_file is not None:
                sqlite_file.record()

        return engine
    connect_args: dict[str, Any] = {}
    if url.startswith("postgresql"):
        query = make_url(url).query
        if "connect_timeout" not in query:
            connect_args["connect_timeout"] = CONNECT_TIMEOUT
        options = query.get("options", "")
        options = " ".join(options) if isinstance(options, tuple) else options
        if bounded and "statement_timeout" not in options:
            # connect_args replace the URL's `options` (a search_path, say): keep them.
            ms = int(STATEMENT_TIMEOUT * 1000)
            connect_args["options"] = f"{options} -c statement_timeout={ms}".strip()
    # No pool_pre_ping: its SELECT 1 can itself hang on a connection that stopped
    # answering. The checkout listener below pings under the watchdog instead.
    return create_engine(url, pool_timeout=POOL_TIMEOUT, connect_args=connect_args)


class Database:
    """`bounded` (the server's): statements time out and a connection held past
    CHECKOUT_DEADLINE is cut. Commands (`dialtone lines import` of a million lines) run
    unbounded; connecting, lock waits and pings are bounded either way."""

    def __init__(self, url: str, *, bounded: bool = True) -> None:
        self.url = url
        self.bounded = bounded
        self.sqlite_file = _sqlite_file(url) if url.startswith("sqlite") else None
        self.engine = make_engine(url, self.sqlite_file, bounded)
        self._sessions: Any = None  # a sessionmaker, made (and the ORM imported) when first used
        # SQLite: one connection used only by the event loop's thread (`run`), and until when
        # another writer's lock sends that work to worker threads instead.
        self._loop_engine: Engine | None = None
        self._contended_until = 0.0
        self._hops: anyio.CapacityLimiter | None = None
        self._queue: list[tuple[Callable[[Direct], Any], asyncio.Future]] = []
        self._checkpoints = _Checkpoints(self._checkpoint)
        self._unbounded = threading.local()
        # Set by `defer_upgrade`: sessions first bring the schema to the newest migration.
        self._upgrade_pending = False
        self._upgrade_lock = threading.Lock()
        self._next_upgrade = 0.0
        self._problem: str | None = None
        self._bound_connections()

    def _bound_connections(self) -> None:
        postgresql = self.engine.dialect.name == "postgresql"

        @event.listens_for(self.engine, "connect")
        def _fresh(_dbapi_connection: Any, record: Any) -> None:
            record.info["fresh"] = True

        @event.listens_for(self.engine, "checkout")
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

        @event.listens_for(self.engine, "checkin")
        def _checkin(dbapi_connection: Any, record: Any) -> None:
            _watchdog.disarm(record)
            if dbapi_connection is not None:  # None: invalidated on the way
                # Its transaction has just ended without a fault: it was answering then.
                record.info["answered_at"] = time.monotonic()

        @event.listens_for(self.engine, "invalidate")
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
        except UNAVAILABLE as failure:
            if not (quiet_busy and _is_busy(failure)):
                self._report("unreachable", describe(failure))
            raise
        if self._problem is not None:
            self._report(None, "")

    def transact(
        self,
        work: Callable[[Direct], T],
        engine: Engine | None = None,
        *,
        one_statement: bool = False,
    ) -> T:
        """`work` on a pooled DB-API connection in one transaction (blocking); the
        connection's faults as SQLAlchemy's exceptions, reported as `session`'s are.
        `one_statement`: on PostgreSQL the work is a single statement, run in autocommit
        (it is its own transaction: one round trip instead of BEGIN, it, COMMIT)."""
        engine = engine or self.engine
        with self._reporting(quiet_busy=engine is not self.engine):
            self.check()
            raw = engine.raw_connection()  # the pool's checkout: pings, watchdog, as ever
            autocommit = one_statement and engine.dialect.name == "postgresql"
            try:
                direct = Direct(raw, engine.dialect)
                if autocommit:
                    raw.driver_connection.autocommit = True
                result = work(direct)
                direct.call(raw.commit)
            except BaseException:
                try:
                    raw.rollback()
                except Exception:
                    raw.invalidate()  # broken: the pool makes a new one
                raise
            finally:
                if autocommit and raw.driver_connection is not None:
                    with contextlib.suppress(Exception):  # closed: the pool replaces it
                        raw.driver_connection.autocommit = False
                raw.close()
            return result

    async def run(
        self,
        work: Callable[[Direct], T],
        timeout: float = REQUEST_DEADLINE,
        *,
        one_statement: bool = False,
    ) -> T:
        """A request's short database work in one transaction, committed before it returns.

        PostgreSQL: in a worker thread (one hop), bounded by `timeout`; the driver's round
        trips release the GIL there while the loop serves other requests.

        SQLite: right on the event loop, with no thread hop — a lookup and an insert on a
        local file take tens of microseconds, less than the hop itself — and committed with
        the other requests of the same turn of the loop (`_batched`). What could hold the
        loop is another writer's lock: the loop's connection waits at most LOOP_BUSY_TIMEOUT
        for it, then the work goes to a worker thread with the full busy timeout (and the
        `timeout` deadline), and so does all work for LOOP_CONTENDED_FOR after, so a long
        writer elsewhere (a bulk import) costs the loop one short wait, not one per request.
        """
        if self.sqlite_file is not None and time.monotonic() >= self._contended_until:
            if self._loop_engine is None:
                # StaticPool: the one connection, reused; only this (the loop's) thread uses it.
                self._loop_engine = make_engine(
                    self.url,
                    self.sqlite_file,
                    busy_timeout=LOOP_BUSY_TIMEOUT,
                    poolclass=StaticPool,
                    connect_args={"check_same_thread": False},
                )
                event.listen(self._loop_engine, "connect", _no_autocheckpoint)
            try:
                return await self._batched(work)
            except UNAVAILABLE as failure:
                if not _is_busy(failure):
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
        return await bounded(
            partial(self.transact, work, one_statement=one_statement),
            timeout=timeout,
            limiter=self._hops,
        )

    def _batched(self, work: Callable[[Direct], T]) -> asyncio.Future[T]:
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
            results = self.transact(
                lambda direct: [work(direct) for work, _future in queue], self._loop_engine
            )
        except Exception as failure:
            if len(queue) > 1 and not _is_busy(failure):
                # One request's own fault must not fail the others: each alone, then.
                for work, future in queue:
                    try:
                        result = self.transact(work, self._loop_engine)
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

    def _checkpoint(self) -> None:
        """Copy the WAL's pages into the database file, without waiting for any reader or
        writer (PASSIVE); runs in the checkpoint thread."""
        self.check()
        with self.engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")

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
        self.engine.dispose()
        if self._loop_engine is not None:
            self._loop_engine.dispose()


class Statement:
    """A Core statement compiled once per dialect and set of parameters, then run straight on
    the DB-API cursor. For a webhook's few statements: SQLAlchemy's per-execution work (about
    25 µs a statement, 40 µs a transaction, measured) is several times SQLite's own."""

    def __init__(self, statement: Any) -> None:
        self.statement = statement
        self._compiled: dict[tuple[str, tuple[str, ...]], tuple[str, list, bool]] = {}

    def prepare(self, dialect: Any, keys: tuple[str, ...]) -> tuple[str, list, bool]:
        """The SQL, the parameters in order with their types' bind processors, and whether
        the driver takes them by position."""
        found = self._compiled.get((dialect.name, keys))
        if found is None:
            compiled = self.statement.compile(dialect=dialect, column_keys=list(keys))
            names = list(compiled.positiontup) if compiled.positional else list(compiled.binds)
            binds = [
                (name, compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect))
                for name in names
            ]
            found = self._compiled[(dialect.name, keys)] = (
                compiled.string,
                binds,
                compiled.positional,
            )
        return found


class Direct:
    """A pooled DB-API connection in one transaction (see `Database.transact`); driver errors
    surface as SQLAlchemy's (OperationalError, IntegrityError …), as from a Session."""

    def __init__(self, raw: Any, dialect: Any) -> None:
        self.raw = raw
        self.dialect = dialect

    def execute(self, statement: Statement, params: dict[str, Any]) -> Any:
        """Run it; the DB-API cursor (fetchone, fetchall)."""
        sql, binds, positional = statement.prepare(self.dialect, tuple(params))
        values: Any
        if positional:
            values = tuple(p(params[n]) if p else params[n] for n, p in binds)
        else:
            values = {n: p(params[n]) if p else params[n] for n, p in binds}
        cursor = self.raw.cursor()
        self.call(cursor.execute, sql, values)
        return cursor

    def call(self, method: Callable[..., T], *args: object) -> T:
        try:
            return method(*args)
        except self.dialect.loaded_dbapi.Error as failure:
            raise exc.DBAPIError.instance(
                None, None, failure, self.dialect.loaded_dbapi.Error
            ) from failure


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
