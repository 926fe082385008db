"""GET /healthz: 200 when the database answers, else a quick 503 with a JSON reason."""

from __future__ import annotations

import asyncio
import time

import httpx
from sqlalchemy import event, inspect

from dialtone.server.app import create_app
from dialtone.server.db import Database
from tests.conftest import TEST_SETTINGS, running


def test_healthy_is_200_and_never_cached_by_a_proxy(server):
    response = server.http.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}
    assert response.headers["cache-control"] == "no-store"


def test_a_flood_of_probes_costs_the_database_a_few_queries(server, db):
    queries = []
    event.listen(db.engine, "before_cursor_execute", lambda *args: queries.append(args[2]))

    async def flood() -> list[int]:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
            answers = await asyncio.gather(*(http.get("/healthz") for _ in range(50)))
        return [answer.status_code for answer in answers]

    assert asyncio.run(flood()) == [200] * 50
    assert 1 <= queries.count("SELECT 1") <= 10


def test_while_the_schema_is_unchecked_a_probe_checks_it(tmp_path):
    # As `dialtone serve` leaves it when the database was down at start: here a SQLite file
    # in a folder that does not exist yet.
    folder = tmp_path / "later"
    database = Database(f"sqlite:///{folder / 'dialtone.db'}")
    database.defer_upgrade()
    with running(create_app(TEST_SETTINGS, database)) as base, httpx.Client(base_url=base) as http:
        started = time.monotonic()
        response = http.get("/healthz")
        assert time.monotonic() - started < 2.5
        assert response.status_code == 503
        assert response.json() == {
            "status": "unavailable",
            "database": "unreachable",
            "reason": "the database is unreachable; its schema is not checked yet",
        }

        folder.mkdir()
        deadline = time.monotonic() + 10
        while (response := http.get("/healthz")).status_code != 200:
            assert time.monotonic() < deadline, response.json()
            time.sleep(0.2)
    assert "lines" in inspect(database.engine).get_table_names()  # upgraded by a probe
    database.dispose()
