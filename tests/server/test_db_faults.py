"""Database faults under a running server: PostgreSQL stopped and started mid-load (our own
throwaway cluster), a database that accepts connections and never answers (a stalling
TCP proxy), and a SQLite file removed or replaced under the server."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import pytest
from sqlalchemy import exc, inspect, make_url, text

from dialtone.devcreds import development_values
from dialtone.server.app import create_app
from dialtone.server.config import Settings
from dialtone.server.db import Database
from dialtone.server.registry import LineRegistry
from tests.conftest import (
    IN_CI,
    SEED_CLIENT,
    SEED_NUMBER,
    SEED_PASSWORD,
    TEST_SETTINGS,
    LiveServer,
    _free_port,
    _postgres_schema_url,
    _skipped_postgres,
    running,
    wait_until_up,
)
from tests.server.test_call_incoming import SEED_001_PARAMS
from tests.tcp_proxy import TcpProxy
from tests.twiml_helpers import structure

INCOMING = "/twilio/retrieve_twiml/call_incoming"
STATUS = "/twilio/status_callback"
TOKEN = "/twilio/retrieve_capability_token"
SLOW = 8.0  # seconds: generous, and still well inside the 15 s Twilio waits


def _call_sid() -> str:
    return "CA" + uuid.uuid4().hex


def _incoming() -> dict[str, str]:
    return dict(SEED_001_PARAMS, CallSid=_call_sid())


def _outcome(response: httpx.Response) -> str:
    """`dial` (the line's phone rings), `apology` or whatever else came back."""
    if response.status_code != 200 or not response.headers["content-type"].startswith(
        "application/xml"
    ):
        return f"HTTP {response.status_code}"
    verbs = [child[0] for child in structure(response.text)[3]]
    if verbs == ["Dial"]:
        return "dial"
    if verbs == ["Say", "Hangup"] and "sorry" in response.text:
        return "apology"
    return response.text


def _timed(send: object) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = send()  # type: ignore[operator]
    return response, time.monotonic() - started


def _poll(fetch: object, until: object, timeout: float = 30.0) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()  # type: ignore[operator]
        if until(value):  # type: ignore[operator]
            return value
        assert time.monotonic() < deadline, f"still {value!r} after {timeout} s"
        time.sleep(0.2)


def _register(url: str) -> None:
    db = Database(url)
    try:
        db.upgrade()
        LineRegistry(db, "JP").add(SEED_NUMBER, SEED_CLIENT, SEED_PASSWORD)
    finally:
        db.dispose()


# --- our own PostgreSQL cluster, to stop and start (never the suite's shared one) ----------


@dataclass
class Cluster:
    bin: Path
    home: Path
    port: int
    as_owner: list[str]

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://dialtone@127.0.0.1:{self.port}/postgres"

    def _pg_ctl(self, *args: str) -> None:
        subprocess.run(
            [*self.as_owner, str(self.bin / "pg_ctl"), "-D", str(self.home / "data"), *args],
            check=True,
            capture_output=True,
            timeout=60,
        )

    def start(self) -> None:
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.home} -c fsync=off"
        self._pg_ctl("-l", str(self.home / "server.log"), "-w", "-o", options, "start")

    def stop(self) -> None:
        self._pg_ctl("-m", "fast", "-w", "stop")


@pytest.fixture
def cluster(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """A fresh cluster, initialised and stopped; stopped and removed after the test."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if not found:
        if IN_CI:
            pytest.fail("CI=true but PostgreSQL is not installed: its faults must be tested")
        _skipped_postgres.append(request.node.nodeid)
        pytest.skip("PostgreSQL is not installed (no initdb)")
    home = Path(tempfile.mkdtemp(prefix="dialtone-pg-"))
    as_owner = []
    if os.getuid() == 0:  # initdb refuses root: the cluster belongs to Debian's postgres user
        shutil.chown(home, "postgres")
        as_owner = ["runuser", "-u", "postgres", "--"]
    subprocess.run(
        [
            *as_owner,
            str(found[-1]),
            "-D",
            str(home / "data"),
            "-U",
            "dialtone",
            "-A",
            "trust",
            "--no-sync",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    pg = Cluster(found[-1].parent, home, _free_port(), as_owner)
    try:
        yield pg
    finally:
        subprocess.run(
            [
                *as_owner,
                str(pg.bin / "pg_ctl"),
                "-D",
                str(home / "data"),
                "-m",
                "immediate",
                "stop",
            ],
            capture_output=True,
        )
        shutil.rmtree(home, ignore_errors=True)


def _serve(url: str, tmp_path: Path) -> tuple[subprocess.Popen, LiveServer]:
    """`dialtone serve` as a real process on a free port; a client that signs as Twilio."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "DIALTONE_"))}
    env.update(development_values())
    env.update(
        DIALTONE_PUBLIC_URL=f"http://127.0.0.1:{port}",
        DIALTONE_DATABASE_URL=url,
        DIALTONE_DEFAULT_REGION="JP",
    )
    # Its log to a file: under load it would fill a pipe nobody reads until the end.
    with open(tmp_path / "serve.log", "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "dialtone.cli", "serve", "--port", str(port)],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    base = f"http://127.0.0.1:{port}"
    wait_until_up(process, f"{base}/healthz")
    settings = Settings.from_env(env)
    return process, LiveServer(base, settings, None, httpx.Client(base_url=base))  # type: ignore[arg-type]


def _stop(process: subprocess.Popen, tmp_path: Path) -> str:
    """Ctrl-C; its log."""
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=30) == 0
    return (tmp_path / "serve.log").read_text()


class Load:
    """Signed incoming-call webhooks, one after another, in a thread, until stopped."""

    def __init__(self, server: LiveServer) -> None:
        self.server = server
        self.results: list[tuple[str, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=self.server.base_url, timeout=20) as http:
            client = replace(self.server, http=http)
            while not self._stop.is_set():
                response, took = _timed(lambda: client.webhook(INCOMING, _incoming()))
                self.results.append((_outcome(response), took))

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(30)


@pytest.mark.postgres
def test_serve_rides_out_a_postgresql_restart_under_load(cluster, tmp_path):
    cluster.start()
    _register(cluster.url)
    process, server = _serve(cluster.url, tmp_path)
    try:
        with Load(server) as load:
            _poll(lambda: len(load.results), lambda n: n >= 5)
            cluster.stop()
            health = _poll(lambda: server.http.get("/healthz"), lambda r: r.status_code == 503)
            assert health.json()["database"] == "unreachable"
            outage = len(load.results)
            _poll(lambda: len(load.results), lambda n: n >= outage + 5)
            # While it is down, Twilio hears the apology at once (the answer is 200 TwiML).
            response, took = _timed(lambda: server.webhook(INCOMING, _incoming()))
            assert _outcome(response) == "apology" and took < SLOW

            cluster.start()
            health = _poll(lambda: server.http.get("/healthz"), lambda r: r.status_code == 200)
            assert health.json() == {"status": "ok", "database": "ok"}
            back = len(load.results)
            _poll(lambda: len(load.results), lambda n: n >= back + 5)
        assert process.poll() is None  # the same process throughout
    finally:
        err = _stop(process, tmp_path)
    outcomes = [outcome for outcome, _took in load.results]
    assert set(outcomes) == {"dial", "apology"}, set(outcomes)  # never a 5xx or an error page
    assert outcomes[0] == "dial" and outcomes[-5:] == ["dial"] * 5
    slowest = max(took for _outcome, took in load.results)
    assert slowest < SLOW, slowest
    assert '"event": "database_unavailable"' in err and '"event": "database_available"' in err
    assert "Traceback" not in err


@pytest.mark.postgres
def test_serve_starts_while_postgresql_is_down_and_upgrades_it_when_back(cluster, tmp_path):
    process, server = _serve(cluster.url, tmp_path)  # the cluster is not running
    try:
        health = server.http.get("/healthz")
        assert health.status_code == 503
        assert "not checked" in health.json()["reason"]
        response, took = _timed(lambda: server.webhook(INCOMING, _incoming()))
        assert _outcome(response) == "apology" and took < SLOW

        cluster.start()  # an empty database: the server brings it to the newest schema
        _poll(lambda: server.http.get("/healthz").status_code, lambda s: s == 200)
        db = Database(cluster.url)
        try:
            assert "lines" in inspect(db.engine).get_table_names()
            LineRegistry(db, "JP").add(SEED_NUMBER, SEED_CLIENT, SEED_PASSWORD)
        finally:
            db.dispose()
        assert _outcome(server.webhook(INCOMING, _incoming())) == "dial"
    finally:
        err = _stop(process, tmp_path)
    warning = next(line for line in err.splitlines() if "database_unavailable" in line)
    assert '"level": "warning"' in warning and "serving anyway" in warning
    assert '"event": "database_upgraded"' in err
    assert "Traceback" not in err


def test_other_commands_still_refuse_at_once_while_the_database_is_down(
    monkeypatch, capsys, tmp_path
):
    from dialtone.cli import main

    monkeypatch.setenv("DIALTONE_DATABASE_URL", "postgresql+psycopg://dialtone@127.0.0.1:1/x")
    started = time.monotonic()
    assert main(["lines", "list"]) == 1
    assert time.monotonic() - started < SLOW
    err = capsys.readouterr().err
    assert "cannot open the database: OperationalError" in err and "Traceback" not in err


# --- a database that accepts connections and never answers ---------------------------------


@pytest.fixture
def postgres_url(request: pytest.FixtureRequest) -> Iterator[str]:
    yield from _postgres_schema_url(request)


@pytest.fixture
def proxied(postgres_url: str) -> Iterator[tuple[TcpProxy, str]]:
    """The test database behind a TCP proxy; yields the proxy and the URL through it."""
    url = make_url(postgres_url)
    _register(postgres_url)
    with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        yield proxy, url.set(host="127.0.0.1", port=proxy.port).render_as_string(False)


@pytest.mark.postgres
def test_a_stalled_connection_is_cut_and_its_caller_freed(proxied):
    proxy, url = proxied
    db = Database(url)
    registry = LineRegistry(db, "JP")
    try:
        assert registry.by_number(SEED_NUMBER) is not None  # a pooled connection now
        proxy.stall()
        started = time.monotonic()
        with pytest.raises(exc.OperationalError):
            registry.by_number(SEED_NUMBER)
        assert time.monotonic() - started < SLOW
        proxy.flow()
        assert registry.by_number(SEED_NUMBER) is not None
    finally:
        db.dispose()


@pytest.mark.postgres
def test_a_stalled_database_holds_no_request_for_long(proxied):
    proxy, url = proxied
    settings = replace(TEST_SETTINGS, database_url=url)
    db = Database(url)
    app = create_app(settings, db)
    with running(app) as base, httpx.Client(base_url=base, timeout=30) as http:
        server = LiveServer(base, settings, app.state.services.throttle, http)
        assert _outcome(server.webhook(INCOMING, _incoming())) == "dial"

        proxy.stall()
        timings = {}
        response, timings["call_incoming"] = _timed(lambda: server.webhook(INCOMING, _incoming()))
        assert _outcome(response) == "apology"
        token, timings["token"] = _timed(
            lambda: http.post(TOKEN, json={"twilioPhoneNumber": SEED_NUMBER, "password": "x"})
        )
        assert token.status_code == 503 and "temporarily unavailable" in token.json()["error"]
        callback = dict(_incoming(), CallStatus="completed", SequenceNumber="0")
        stored, timings["status_callback"] = _timed(lambda: server.webhook(STATUS, callback))
        assert stored.status_code == 503
        health, timings["healthz"] = _timed(lambda: http.get("/healthz"))
        assert health.status_code == 503
        assert max(timings.values()) < SLOW, timings
        assert timings["healthz"] < 3.0, timings

        proxy.cut()  # a database that resets connections: refused fast
        response, took = _timed(lambda: server.webhook(INCOMING, _incoming()))
        assert _outcome(response) == "apology" and took < 3.0

        proxy.flow()
        _poll(lambda: http.get("/healthz").status_code, lambda s: s == 200)
        assert _outcome(server.webhook(INCOMING, _incoming())) == "dial"
    db.dispose()


# --- a SQLite file removed or replaced under the server ------------------------------------


def _events_in(path: Path) -> int:
    with sqlite3.connect(path) as connection:
        return connection.execute("SELECT count(*) FROM call_events").fetchone()[0]


@pytest.fixture
def sqlite_server(tmp_path: Path) -> Iterator[tuple[LiveServer, Path]]:
    path = tmp_path / "dialtone.db"
    url = f"sqlite:///{path}"
    _register(url)
    settings = replace(TEST_SETTINGS, database_url=url)
    db = Database(url)
    app = create_app(settings, db)
    with running(app) as base, httpx.Client(base_url=base, timeout=30) as http:
        yield LiveServer(base, settings, app.state.services.throttle, http), path
    db.dispose()


def _callback(sequence: int) -> dict[str, str]:
    return dict(
        SEED_001_PARAMS, CallStatus="ringing", SequenceNumber=str(sequence), CallSid="CA" + "7" * 32
    )


def test_a_removed_sqlite_file_is_noticed_and_nothing_is_written_to_it(sqlite_server, tmp_path):
    server, path = sqlite_server
    assert server.webhook(STATUS, _callback(0)).status_code == 200
    moved = path.rename(tmp_path / "moved.db")  # as good as deleted, for the server

    health = server.http.get("/healthz")
    assert health.status_code == 503
    assert health.json()["database"] == "removed" and "removed" in health.json()["reason"]
    assert server.webhook(STATUS, _callback(1)).status_code == 503  # logged for replay
    assert _outcome(server.webhook(INCOMING, _incoming())) == "apology"
    assert not path.exists()  # no write made a new empty database in its place

    moved.rename(path)  # put back: the same file, so the server goes on with it
    # In WAL mode the last commits are in dialtone.db-wal, beside the original path: the
    # file is whole again only back there. No write went to it meanwhile.
    assert _events_in(path) == 1
    _poll(lambda: server.http.get("/healthz").status_code, lambda s: s == 200)
    assert server.webhook(STATUS, _callback(1)).status_code == 200
    assert _events_in(path) == 2


def test_a_deleted_sqlite_file_is_noticed(sqlite_server):
    server, path = sqlite_server
    path.unlink()
    health = server.http.get("/healthz")
    assert (health.status_code, health.json()["database"]) == (503, "removed")
    assert server.webhook(STATUS, _callback(0)).status_code == 503
    assert not path.exists()


def test_a_replaced_sqlite_file_is_noticed_and_left_alone(sqlite_server, tmp_path):
    server, path = sqlite_server
    assert server.webhook(STATUS, _callback(0)).status_code == 200
    copy = tmp_path / "copy.db"
    shutil.copy(path, copy)
    os.replace(copy, path)  # another file at the same path (a restore, or a mistake)

    health = server.http.get("/healthz")
    assert health.status_code == 503
    assert health.json()["database"] == "replaced" and "restart" in health.json()["reason"]
    assert server.webhook(STATUS, _callback(1)).status_code == 503
    assert _outcome(server.webhook(INCOMING, _incoming())) == "apology"
    assert _events_in(path) == 1


def test_a_locked_sqlite_file_costs_a_webhook_seconds_not_the_call(sqlite_server):
    server, path = sqlite_server
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another writer that does not let go
    try:
        response, took = _timed(lambda: server.webhook(STATUS, _callback(0)))
        assert response.status_code == 503 and took < SLOW  # the busy timeout, not 15 s
        response, took = _timed(lambda: server.webhook(INCOMING, _incoming()))
        assert _outcome(response) == "apology" and took < SLOW
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert server.webhook(STATUS, _callback(0)).status_code == 200


@pytest.mark.postgres
def test_statements_time_out_on_the_server_but_not_in_commands(postgres_url):
    server, command = Database(postgres_url), Database(postgres_url, bounded=False)
    try:
        started = time.monotonic()
        with (
            pytest.raises(exc.OperationalError, match="statement timeout"),
            server.session() as session,
        ):
            session.execute(text("SELECT pg_sleep(10)"))
        assert time.monotonic() - started < SLOW
        with command.session() as session:  # a long import, say
            session.execute(text("SELECT pg_sleep(3.5)"))
    finally:
        server.dispose()
        command.dispose()
