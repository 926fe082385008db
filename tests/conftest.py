"""Shared fixtures: databases (SQLite and PostgreSQL), settings, a live server on loopback."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from urllib.parse import urlencode

import httpx
import pytest
import uvicorn
from sqlalchemy import create_engine, text
from twilio.request_validator import RequestValidator

from dialtone.server.app import create_app
from dialtone.server.config import Settings
from dialtone.server.db import Database
from dialtone.server.registry import LineRegistry
from dialtone.server.throttle import SignInThrottle

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
POSTGRES_URL = os.environ.get("DIALTONE_TEST_POSTGRES_URL", "")
_skipped_postgres: list[str] = []

SEED_NUMBER = "+815031234567"  # 050-3123-4567
SEED_CLIENT = "DeviceId_0001"
SEED_PASSWORD = "correct horse battery"
EXTERNAL_NUMBER = "+819059876543"  # 090-5987-6543
PUBLIC_URL = "https://abc123.execute-api.ap-northeast-1.amazonaws.com/prod"

TEST_SETTINGS = Settings(
    account_sid="AC" + "3e" * 16,
    auth_token="0123456789abcdef0123456789abcdef",
    api_key="SK" + "5a" * 16,
    api_secret="fedcba9876543210fedcba9876543210",
    twiml_app_sid="AP" + "75" * 16,
    public_url=PUBLIC_URL,
    database_url="sqlite://",
    default_region="JP",
)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _skipped_postgres:
        terminalreporter.write_sep(
            "!",
            f"POSTGRESQL NOT TESTED: {len(_skipped_postgres)} test(s) skipped because "
            "DIALTONE_TEST_POSTGRES_URL is not set "
            "(./test sets it up where PostgreSQL is installed)",
            red=True,
            bold=True,
        )


def _postgres_schema_url(request: pytest.FixtureRequest) -> Iterator[str]:
    if not POSTGRES_URL:
        if IN_CI:
            pytest.fail(
                "CI=true but DIALTONE_TEST_POSTGRES_URL is not set: PostgreSQL must be tested"
            )
        _skipped_postgres.append(request.node.nodeid)
        pytest.skip("PostgreSQL not configured (DIALTONE_TEST_POSTGRES_URL unset)")
    schema = "t_" + uuid.uuid4().hex[:16]
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{separator}{urlencode({'options': f'-csearch_path={schema}'})}"
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """Every test that touches the database runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'dialtone.db'}"
    else:
        yield from _postgres_schema_url(request)


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    database.upgrade()
    yield database
    database.dispose()


@pytest.fixture
def settings(db_url: str) -> Settings:
    return replace(TEST_SETTINGS, database_url=db_url)


@pytest.fixture
def registry(db: Database) -> LineRegistry:
    lines = LineRegistry(db, "JP")
    lines.add(SEED_NUMBER, SEED_CLIENT, SEED_PASSWORD)
    return lines


@pytest.fixture
def unavailable_db(db_url: str) -> Iterator[Database]:
    """A database of the same kind that cannot be reached (the server is down)."""
    if db_url.startswith("sqlite"):
        url = "sqlite:////nonexistent-directory/dialtone.db"
    else:
        url = "postgresql+psycopg://dialtone:dialtone@127.0.0.1:1/dialtone"
    database = Database(url)
    yield database
    database.dispose()


@dataclass
class LiveServer:
    base_url: str
    settings: Settings
    throttle: SignInThrottle
    http: httpx.Client

    def sign(self, path: str, params: dict[str, str], query: str = "") -> str:
        url = self.settings.public_url + path + (f"?{query}" if query else "")
        return RequestValidator(self.settings.auth_token).compute_signature(url, params)

    def webhook(
        self, path: str, params: dict[str, str], *, query: str = "", signature: str | None = None
    ) -> httpx.Response:
        """POST a form body as Twilio does, signed for the public URL unless told otherwise."""
        headers = {
            "Content-Type": "application/x-www-form-urlencoded; charset=UTF-8",
            "User-Agent": "TwilioProxy/1.1",
            "X-Twilio-Signature": signature
            if signature is not None
            else self.sign(path, params, query),
        }
        return self.http.post(
            path + (f"?{query}" if query else ""), content=urlencode(params), headers=headers
        )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_up(process: subprocess.Popen, *urls: str, timeout: float = 30.0) -> None:
    """Wait until every URL answers over HTTP; fail at once if the process has exited."""
    deadline = time.monotonic() + timeout
    for url in urls:
        while True:
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.TransportError:
                assert process.poll() is None, f"the process exited: {process.communicate()}"
                assert time.monotonic() < deadline, f"{url} did not come up"
                time.sleep(0.1)


@dataclass
class Serve:
    """One app for `serving`: on `port` (free one if None), lifespan on/off, optional TLS."""

    app: object
    port: int | None = None
    lifespan: str = "off"
    ssl: tuple | None = None


@contextmanager
def serving(*specs: Serve) -> Iterator[list[str]]:
    """Serve apps with uvicorn on loopback ports, all on one event loop in one thread (apps
    that share asyncio state, like the emulator's REST and signaling apps, need that)."""
    servers = []
    urls = []
    for spec in specs:
        port = spec.port or _free_port()
        servers.append(
            uvicorn.Server(
                uvicorn.Config(
                    spec.app,
                    host="127.0.0.1",
                    port=port,
                    log_config=None,
                    access_log=False,
                    proxy_headers=False,  # as `dialtone serve`: the app decides whom to trust
                    lifespan=spec.lifespan,
                    ssl_certfile=str(spec.ssl[0]) if spec.ssl else None,
                    ssl_keyfile=str(spec.ssl[1]) if spec.ssl else None,
                )
            )
        )
        urls.append(f"{'https' if spec.ssl else 'http'}://127.0.0.1:{port}")

    async def serve_all() -> None:
        await asyncio.gather(*(server.serve() for server in servers))

    thread = threading.Thread(target=lambda: asyncio.run(serve_all()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not all(server.started for server in servers):
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.01)
    try:
        yield urls
    finally:
        for server in servers:
            server.should_exit = True
        thread.join(10)


@contextmanager
def running(app: object, port: int | None = None, lifespan: str = "off") -> Iterator[str]:
    """Serve one app on a loopback port in a thread; yields its base URL."""
    with serving(Serve(app, port, lifespan)) as (url,):
        yield url


@pytest.fixture
def make_server(db: Database) -> Iterator:
    """Start a live server with (optionally) changed settings; stopped after the test."""
    with ExitStack() as stack:

        def start(
            settings: Settings,
            throttle: SignInThrottle | None = None,
            database: Database | None = None,
        ) -> LiveServer:
            app = create_app(settings, database or db, throttle)
            base = stack.enter_context(running(app))
            http = stack.enter_context(httpx.Client(base_url=base, timeout=10))
            return LiveServer(base, settings, app.state.services.throttle, http)

        yield start


@pytest.fixture
def server(make_server, settings: Settings, registry: LineRegistry) -> LiveServer:
    return make_server(settings)


@pytest.fixture
def mocked_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto's in-process AWS with fake credentials: no request can leave this process."""
    from moto import mock_aws

    for name in ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-northeast-1")
    with mock_aws():
        yield
