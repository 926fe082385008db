"""`dialtone serve`: the API server under uvicorn; and the one way commands run ASGI apps."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Callable, Sequence
from typing import TextIO

from dialtone.cli.common import CommandError, load_env, open_server_database, settings_from

DEFAULT_PORT = 8000


def server_app(settings: object, configure_logs: bool = True):  # noqa: ANN201 - lazy Starlette
    from dialtone import logs
    from dialtone.server.app import create_app

    if configure_logs:  # `dialtone dev` has configured them already, its own way
        logs.configure()
    # Starts even while the database is down (Twilio then hears an apology, not 11205).
    app = create_app(settings, open_server_database(settings.database_url))  # type: ignore[arg-type,attr-defined]
    _freeze_startup_objects()
    return app


def _freeze_startup_objects() -> None:
    """Leave what startup made (modules, SQLAlchemy's metadata: ~100,000 objects) out of the
    garbage collector's full collections, which otherwise walk them all every few thousand
    requests — a pause of tens of milliseconds, straight into the p99 latency."""
    import gc

    gc.collect()
    gc.freeze()


def check_port_free(host: str, port: int) -> None:
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise CommandError(
                f"cannot listen on {host}:{port}: {exc.strerror}; choose another with --port"
            ) from None


def _server(app: object, host: str, port: int, *tls: tuple):
    import uvicorn

    cert, key = tls[0] if tls else (None, None)
    # HTTP/1.1 by httptools (a dependency; uvicorn picks it itself). The loop stays
    # asyncio's own: uvloop, measured with the webhook bench, was no faster here (the work per
    # request is Python) and under saturation starved some connections (p99 at 64
    # connections ten times asyncio's).
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        # Never uvicorn's own X-Forwarded-* handling (it trusts 127.0.0.1 by default, so any
        # local client could pose as another address): the API server trusts exactly the
        # proxies in DIALTONE_TRUSTED_PROXIES (server/app.py), the emulator none.
        proxy_headers=False,
        ssl_certfile=str(cert) if cert else None,
        ssl_keyfile=str(key) if key else None,
    )
    return uvicorn.Server(config)


def run(
    apps: Sequence[tuple],
    then: Callable[[], Sequence[tuple]] | None = None,
    then_ports: Sequence[tuple[str, int]] = (),
    ready: Callable[[], None] | None = None,
) -> None:
    """Serve ASGI apps — (app, host, port[, (certfile, keyfile)]) — in this process on one
    event loop (the emulator's REST and signaling apps share state); Ctrl-C stops them all.
    `then`, run in a thread once those are listening, returns more apps to serve (on
    `then_ports`, checked free up front); `ready` is called once all of them listen."""
    import asyncio

    for app in apps:
        check_port_free(app[1], app[2])
    for host, port in then_ports:
        check_port_free(host, port)

    async def started(servers: list, tasks: list[asyncio.Task]) -> bool:
        while not all(server.started for server in servers):
            if any(task.done() for task in tasks):
                return False  # one could not start: its error surfaces below
            await asyncio.sleep(0.02)
        return True

    async def serve_all() -> None:
        servers = [_server(*app) for app in apps]
        tasks = [asyncio.create_task(server.serve()) for server in servers]
        if then is not None and await started(servers, tasks):
            more = [_server(*app) for app in await asyncio.to_thread(then)]
            servers += more
            tasks += [asyncio.create_task(server.serve()) for server in more]
        if ready is not None and await started(servers, tasks):
            ready()
        await asyncio.gather(*tasks)

    # uvicorn re-raises the Ctrl-C it handled once the servers have shut down cleanly.
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_all())


def cmd_serve(args: argparse.Namespace, stdin: TextIO, out: TextIO) -> None:
    settings = settings_from(load_env())
    run([(server_app(settings), args.host, args.port)])


def register(commands: argparse._SubParsersAction) -> None:
    serve = commands.add_parser(
        "serve", help="run the API server (configuration from the environment)"
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT)
    serve.set_defaults(func=cmd_serve)
