"""A TCP proxy for fault tests: pass bytes through, stall (accept, never forward) or cut.

It runs its own event loop in a thread, so synchronous tests can switch its mode while a
server talks through it:

    with TcpProxy("127.0.0.1", 5432) as proxy:
        url = f"postgresql+psycopg://user@127.0.0.1:{proxy.port}/db"
        proxy.stall()   # the database "accepts connections but never answers"
        proxy.cut()     # every connection reset, new ones too
        proxy.flow()    # back to normal
"""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType


class TcpProxy:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = 0
        self.mode = "flow"
        self.connections = 0  # accepted so far
        self._loop = asyncio.new_event_loop()
        self._flowing = asyncio.Event()
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> TcpProxy:
        self._thread.start()
        self._call(self._start)
        return self

    def __exit__(
        self, kind: type | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._call(self._stop)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def flow(self) -> None:
        """Forward everything, including what was held while stalled."""
        self._call(self._set, "flow")

    def stall(self) -> None:
        """Accept connections and keep them open, but forward nothing either way."""
        self._call(self._set, "stall")

    def cut(self) -> None:
        """Reset every open connection, and each new one as soon as it is accepted."""
        self._call(self._set, "cut")

    def _call(self, coroutine_function: object, *args: object) -> object:
        future = asyncio.run_coroutine_threadsafe(coroutine_function(*args), self._loop)  # type: ignore[operator]
        return future.result(10)

    async def _start(self) -> None:
        self._flowing.set()
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        assert self._server is not None
        self._server.close()
        self._abort_all()

    async def _set(self, mode: str) -> None:
        self.mode = mode
        if mode == "flow":
            self._flowing.set()
            return
        self._flowing.clear()
        if mode == "cut":
            self._abort_all()

    def _abort_all(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self.mode == "cut":
            writer.transport.abort()
            return
        self._writers.add(writer)
        await self._flowing.wait()  # stalled: accepted, but the upstream never hears of it
        if self.mode == "cut" or writer.transport.is_closing():
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.transport.abort()
            return
        self._writers.add(up_writer)
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                await self._flowing.wait()  # stalled: hold the bytes (and stop reading more)
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self._writers.discard(writer)
            writer.transport.abort() if self.mode == "cut" else writer.close()
