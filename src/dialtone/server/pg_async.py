"""PostgreSQL on the event loop: a few psycopg `AsyncConnection`s, every wait bounded.

A webhook's round trip then costs no thread hop (~200 µs each, measured) and many requests
share the few connections while each waits on the network. Not psycopg_pool: its background
maintenance tasks live on one event loop, while this pool opens connections only when a
request needs one (a Lambda cold start opens exactly one) and follows the loop it runs on.

Bounds as in `db`: connecting (libpq's connect_timeout), waiting for a free connection, a ping
of a connection idle for a while, and a deadline for the whole checkout, past which the
connection's socket is shut down. Cancelling psycopg's await instead would first try to
cancel the query on the server, for up to 10 s; a shut-down socket fails it at once.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from typing import Any

PING = "SELECT 1"


def shut_down(connection: Any) -> None:
    """Shut a psycopg connection's socket down (through a duplicate: psycopg's own descriptor
    stays valid until it closes it), so whatever waits on it fails at once. Raises once the
    connection is closed (nothing left to cut)."""
    fd = connection.pgconn.socket
    with socket.socket(fileno=os.dup(fd)) as duplicate:
        duplicate.shutdown(socket.SHUT_RDWR)


def cut(connection: Any) -> Callable[[], None]:
    def shut() -> None:
        with suppress(Exception):  # already closed: nothing to cut
            shut_down(connection)

    return shut


class AsyncPool:
    def __init__(
        self,
        conninfo: str,
        *,
        size: int,
        wait_timeout: float,
        ping_after_idle: float,
        ping_timeout: float,
        checkout_deadline: float,
        on_cut: Callable[[float], None] = lambda seconds: None,
    ) -> None:
        self.conninfo = conninfo
        self.size = size
        self.wait_timeout = wait_timeout
        self.ping_after_idle = ping_after_idle
        self.ping_timeout = ping_timeout
        self.checkout_deadline = checkout_deadline
        self.on_cut = on_cut
        self._loop: asyncio.AbstractEventLoop | None = None
        self._slots: asyncio.Semaphore | None = None
        self._idle: list[tuple[Any, float]] = []  # (connection, when it last answered)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Any]:
        """A connection in autocommit mode (a single statement is its own transaction);
        closed instead of reused when the work fails."""
        slots = self._for_this_loop()
        async with asyncio.timeout(self.wait_timeout):
            await slots.acquire()
        try:
            connection = await self._checkout()
            deadline = self._loop.call_later(  # type: ignore[union-attr]
                self.checkout_deadline, self._cutter(connection, self.checkout_deadline)
            )
            try:
                yield connection
            except BaseException:
                await self._discard(connection)
                raise
            finally:
                deadline.cancel()
            if connection.closed or connection.info.transaction_status != 0:  # 0: IDLE
                await self._discard(connection)
            else:
                self._idle.append((connection, time.monotonic()))
        finally:
            slots.release()

    def _for_this_loop(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if loop is not self._loop or self._slots is None:
            # Connections made on another (finished) loop are not reused on this one.
            self.close()
            self._loop = loop
            self._slots = asyncio.Semaphore(self.size)
        return self._slots

    async def _checkout(self) -> Any:
        while self._idle:
            connection, answered_at = self._idle.pop()
            if connection.closed:
                continue
            if time.monotonic() - answered_at <= self.ping_after_idle:
                return connection
            # It may have died while idle; a ping that never answers is cut.
            timer = self._loop.call_later(  # type: ignore[union-attr]
                self.ping_timeout, self._cutter(connection, self.ping_timeout)
            )
            try:
                await connection.execute(PING)
            except Exception:
                await self._discard(connection)
                continue
            finally:
                timer.cancel()
            return connection
        import psycopg

        # connect_timeout (in conninfo) bounds this one.
        return await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True)

    def _cutter(self, connection: Any, seconds: float) -> Callable[[], None]:
        shut = cut(connection)

        def run() -> None:
            shut()
            self.on_cut(seconds)

        return run

    @staticmethod
    async def _discard(connection: Any) -> None:
        with suppress(Exception):
            connection.pgconn.finish()  # no round trip: it may be the broken one

    def close(self) -> None:
        """Close the idle connections (those in use are closed when their work ends)."""
        idle, self._idle = self._idle, []
        for connection, _answered_at in idle:
            with suppress(Exception):
                connection.pgconn.finish()


class Batches:
    """A connection for single-statement work (`dbapi.Connection`) that sends the
    statements of one turn of the event loop together: those with a batched form
    (`Statement.batched`) as one statement for all the requests, one round trip and one
    transaction, like SQLite's group commit; the others one by one. A batch that fails
    is retried one request at a time, so one request's fault fails only that request."""

    dialect = "postgresql"

    def __init__(self, pool: AsyncPool) -> None:
        self.pool = pool
        self._queue: list[tuple[Any, dict[str, Any], asyncio.Future]] = []
        self._tasks: set[asyncio.Task] = set()

    async def fetchone(self, statement: Any, params: dict[str, Any]) -> tuple | None:
        if statement.batched is None:
            return await self._alone(statement, params)
        loop = asyncio.get_running_loop()
        future: asyncio.Future = loop.create_future()
        if not self._queue:
            loop.call_soon(self._flush)
        self._queue.append((statement, params, future))
        return await future

    async def execute(self, statement: Any, params: dict[str, Any]) -> None:
        await self._alone(statement, params, fetch=False)

    async def _alone(
        self, statement: Any, params: dict[str, Any], fetch: bool = True
    ) -> tuple | None:
        async with self.pool.connection() as connection:
            cursor = await connection.execute(statement.postgresql, params)
            return await cursor.fetchone() if fetch else None

    def _flush(self) -> None:
        queue, self._queue = self._queue, []
        groups: dict[int, list[tuple[dict[str, Any], asyncio.Future]]] = {}
        statements = {}
        for statement, params, future in queue:
            if not future.cancelled():
                groups.setdefault(id(statement), []).append((params, future))
                statements[id(statement)] = statement
        for key, group in groups.items():
            task = asyncio.ensure_future(self._send(statements[key], group))
            self._tasks.add(task)  # held until done (the loop keeps only weak references)
            task.add_done_callback(self._tasks.discard)

    async def _send(
        self, statement: Any, group: list[tuple[dict[str, Any], asyncio.Future]]
    ) -> None:
        if len(group) > 1:
            arrays = {name: [params[name] for params, _ in group] for name in group[0][0]}
            try:
                async with self.pool.connection() as connection:
                    cursor = await connection.execute(statement.batched, arrays)
                    rows = await cursor.fetchall()
            except Exception:
                pass  # each alone, below: one request's fault must not fail the others
            else:
                answers = {row[0]: tuple(row[1:]) for row in rows}
                for n, (_params, future) in enumerate(group, start=1):
                    _settle(future, answers.get(n))
                return
        await asyncio.gather(*(self._one(statement, params, future) for params, future in group))

    async def _one(self, statement: Any, params: dict[str, Any], future: asyncio.Future) -> None:
        try:
            _settle(future, await self._alone(statement, params))
        except Exception as failure:
            if not future.done():
                future.set_exception(failure)


def _settle(future: asyncio.Future, result: object) -> None:
    if not future.done():  # its request gave up meanwhile
        future.set_result(result)
