"""Load: one emulator process carries 1,000 concurrent calls on asyncio, with no thread per call
and no lost or repeated status callback. Speed and memory are measured in bench/, not here."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter

import httpx

from tests.emulator.conftest import TWILIO_NUMBER

CALLS = 1000
# Every call is answered (<Say>) and then holds (<Pause>) until its caller (a simulated phone)
# hangs up, so all of them overlap however slowly a loaded machine places them: nothing here
# depends on timing.
HOLD = '<Response><Say>Hello.</Say><Pause length="100000"/></Response>'
TIMEOUT = 120.0  # generous: a shared 2-core machine; a healthy run takes seconds
# Requests in flight at once from the test's own client. Kept small on purpose: httpcore's pool
# scans every connection for every queued request, so a deep queue costs more than it gains.
CONCURRENCY = 16


def caller(i: int) -> str:
    return f"+8190{10_000_000 + i:08d}"  # 090-1000-0000, 090-1000-0001, …


async def _all(
    base_url: str, requests: list[tuple[str, dict | None]], auth: httpx.Auth
) -> list[httpx.Response]:
    """POST every (path, form), CONCURRENCY at a time."""
    # Short keep-alive: never reuse a connection the server may be closing (uvicorn: 5 s idle).
    limits = httpx.Limits(
        max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY, keepalive_expiry=1.0
    )
    gate = asyncio.Semaphore(CONCURRENCY)
    async with httpx.AsyncClient(
        base_url=base_url, auth=auth, limits=limits, timeout=TIMEOUT
    ) as http:

        async def post(path: str, data: dict | None) -> httpx.Response:
            async with gate:
                return await http.post(path, data=data)

        return await asyncio.gather(*(post(path, data) for path, data in requests))


def _wait(condition, what: str, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.05)


def test_a_thousand_concurrent_calls_complete_without_a_lost_callback(emulator, hooks):
    emulator.add_number(
        TWILIO_NUMBER,
        VoiceUrl=hooks.on("/voice", HOLD),
        StatusCallback=hooks.on("/status", "<Response/>"),
    )
    switch = emulator.switch
    threads_before = threading.active_count()

    placed = asyncio.run(
        _all(
            emulator.base_url,
            [("/emulator/calls", {"From": caller(i), "To": TWILIO_NUMBER}) for i in range(CALLS)],
            emulator.http.auth,
        )
    )
    assert [r.status_code for r in placed] == [201] * CALLS, placed[0].text
    sids = [r.json()["sid"] for r in placed]
    assert len(set(sids)) == CALLS

    def answered() -> int:
        return sum(1 for call in list(switch.calls.values()) if call.status == "in-progress")

    _wait(lambda: answered() == CALLS, f"all {CALLS} calls are answered and holding")
    health = emulator.http.get("/emulator/health").json()
    threads_at_peak = threading.active_count()
    assert health["live_calls"] == CALLS
    assert answered() == CALLS  # no call ended while the others were still being answered
    # asyncio, not a thread per call (which would add 1,000): the test's servers, nothing more.
    assert threads_at_peak - threads_before < 10, (threads_before, threads_at_peak)

    hangups = asyncio.run(
        _all(
            emulator.base_url,
            [(f"/emulator/calls/{sid}/hangup", None) for sid in sids],
            emulator.http.auth,
        )
    )
    assert [r.status_code for r in hangups] == [200] * CALLS
    emulator.idle(timeout=TIMEOUT)

    calls = [switch.calls[sid] for sid in sids]
    assert Counter(call.status for call in calls) == {"completed": CALLS}
    assert emulator.http.get("/emulator/health").json()["live_calls"] == 0

    # Every voice request reached the application and was answered with its TwiML.
    voice = hooks.requests("/voice")
    assert sorted(r.form["CallSid"] for r in voice) == sorted(sids)
    for call in calls:
        fetches = [e for e in call.events if e["kind"] == "webhook"]
        assert [(e["purpose"], e["status"]) for e in fetches] == [
            ("voice_url", 200),
            ("status_callback:completed", 200),
        ], call.sid
        assert not [e for e in call.events if e["kind"] in ("error", "warning")], call.sid

    # Exactly one `completed` status callback per call: none lost, none repeated.
    status = hooks.requests("/status")
    per_call = Counter(r.form["CallSid"] for r in status)
    assert per_call == Counter(sids)
    assert {r.form["CallStatus"] for r in status} == {"completed"}
