"""`GET /healthz`: 200 when the database answers, else 503 with a JSON reason.

Cheap and bounded: one `SELECT 1` on a pooled connection, at most one probe at a time
(a flood of probes shares the last answer for a moment), and an answer within 2 s
even when the database accepts connections and never replies. A probe also does what a
request would: while the schema is unchecked it checks it, so the server recovers by
itself even when no webhook arrives.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse

from dialtone.server.db import Database, DatabaseUnavailable, bounded

TIMEOUT = 2.0  # seconds for the whole probe
REUSE = 0.5  # seconds a probe's answer is reused for concurrent or repeated requests

_NO_STORE = {"Cache-Control": "no-store"}


@dataclass
class _Probe:
    lock: anyio.Lock = field(default_factory=anyio.Lock)
    at: float = float("-inf")
    answer: tuple[int, dict] = (503, {})


def probe(db: Database) -> tuple[int, dict]:
    """The status code and body /healthz answers (blocking: run it in a thread)."""
    try:
        with db.connection() as connection:
            connection.exec_driver_sql("SELECT 1")
    except DatabaseUnavailable as failure:
        return 503, {"status": "unavailable", "database": failure.state, "reason": failure.reason}
    except Exception as failure:  # the database's fault whatever the kind: never a 500
        # The details (host, port, driver message) are in the server's log, not here.
        return 503, {
            "status": "unavailable",
            "database": "unreachable",
            "reason": f"the database does not answer ({type(failure).__name__})",
        }
    return 200, {"status": "ok", "database": "ok"}


async def healthz(request: Request) -> JSONResponse:
    db: Database = request.app.state.services.db
    state: _Probe | None = getattr(request.app.state, "health_probe", None)
    if state is None:
        state = request.app.state.health_probe = _Probe()
    try:
        with anyio.fail_after(TIMEOUT):
            async with state.lock:
                if time.monotonic() - state.at > REUSE:
                    state.answer = await bounded(probe, db, timeout=TIMEOUT)
                    state.at = time.monotonic()
                status, body = state.answer
    except TimeoutError:
        status, body = (
            503,
            {
                "status": "unavailable",
                "database": "timeout",
                "reason": f"the database did not answer within {TIMEOUT:g} s",
            },
        )
    return JSONResponse(body, status_code=status, headers=_NO_STORE)
