"""Engine, sessions and Alembic migrations; every wait on the database is bounded.

Twilio gives a webhook 15 s in all, so no database fault may hold a request longer than a
few seconds: connecting, waiting for a pooled connection, waiting on a lock and each
statement all have their own timeout, and a watchdog cuts a connection that still has not
answered by its deadline (a thread blocked in the driver cannot be cancelled, but a socket
can be shut down, which wakes the driver with an error).
"""

from __future__ import annotations

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
from pathlib import Path
from typing import Any, TypeVar

import anyio.to_thread
from sqlalchemy import Engine, create_engine, event, exc, make_url
from sqlalchemy.orm import Session, sessionmaker

from dialtone import logs

MIGRATIONS = Path(__file__).with_name("migrations")

log = logging.getLogger("dialtone.server.db")

CONNECT_TIMEOUT = 2  # seconds; libpq's minimum
PING_TIMEOUT = 1.5  # a pooled connection that does not answer SELECT 1 by then is cut
STATEMENT_TIMEOUT = 3.0  # PostgreSQL's statement_timeout; SQLite's busy timeout
POOL_TIMEOUT = 3.0  # waiting for a free pooled connection
CHECKOUT_DEADLINE = 5.0  # the watchdog cuts a connection held longer (the server's own limit
# fires first, with a cleaner error)
REQUEST_DEADLINE = 6.0  # all of one webhook's database work (Twilio waits 15 s)
RETRY_INTERVAL = 1.0  # between attempts to check the schema while the database is down

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


def make_engine(url: str, sqlite_file: _SqliteFile | None = None, bounded: bool = True) -> Engine:
    if url.startswith("sqlite"):
        # The busy timeout bounds waits on another writer's lock (the default 5 s, or the
        # 15 s once used here, would use up all the time Twilio gives a webhook).
        engine = create_engine(url, connect_args={"timeout": STATEMENT_TIMEOUT})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: object) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
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
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
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
            if postgresql and not record.info.pop("fresh", False):
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
        def _checkin(_dbapi_connection: Any, record: Any) -> None:
            _watchdog.disarm(record)

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
        try:
            self.check()
            with self._sessions() as session, session.begin():
                yield session
        except DatabaseUnavailable as failure:
            self._report(failure.state, failure.reason)
            raise
        except UNAVAILABLE as failure:
            self._report("unreachable", describe(failure))
            raise
        if self._problem is not None:
            self._report(None, "")

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
        self.engine.dispose()


def describe(failure: BaseException) -> str:
    """The driver's first line (it names host and port, never the password) for the log."""
    original = getattr(failure, "orig", None) or failure
    text = str(original).strip().splitlines()
    return f"{type(original).__name__}: {text[0][:300] if text else ''}"


async def bounded(func: Callable[..., T], *args: object, timeout: float = REQUEST_DEADLINE) -> T:
    """Run blocking database work in a worker thread and give up waiting after `timeout`
    (TimeoutError). The thread itself is stopped by the driver timeouts and the watchdog."""
    with anyio.fail_after(timeout):
        return await anyio.to_thread.run_sync(func, *args, abandon_on_cancel=True)


def alembic_config(connection: object = None):  # noqa: ANN201 - alembic imported lazily
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config
