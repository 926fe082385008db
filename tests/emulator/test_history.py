"""Bounded call history: ended calls, their event logs, recordings and alerts are kept only up
to a count and an age, so an emulator left running does not grow; live calls and their legs are
never pruned, and a pruned call answers 404 as Twilio does."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
import tracemalloc
from collections.abc import Iterator

import httpx
import pytest

from dialtone.emulator import call as call_module
from dialtone.emulator.call import INBOUND, Call
from dialtone.emulator.config import Credentials, EmulatorConfig
from dialtone.emulator.history import Alerts, Recordings
from dialtone.emulator.media.cache import LruCache
from dialtone.emulator.resources import Recording
from dialtone.emulator.switch import Switch
from tests.emulator.conftest import EXTERNAL_NUMBER, TWILIO_NUMBER, Emulator, make_emulator

KEEP = 40
SHORT = "<Response><Pause length='1'/></Response>"
HOLD = "<Response><Pause length='100000'/></Response>"
CONCURRENCY = 16
TIMEOUT = 120.0


@pytest.fixture
def small() -> Iterator[Emulator]:
    """An emulator that keeps KEEP ended calls (and a day of them)."""
    for emulator in make_emulator(history_calls=KEEP):
        emulator.add_number(TWILIO_NUMBER)
        yield emulator


async def _place(emulator: Emulator, count: int, **params: str) -> list[str]:
    """`count` REST calls, CONCURRENCY at a time; their sids in order."""
    limits = httpx.Limits(max_connections=CONCURRENCY, keepalive_expiry=1.0)
    gate = asyncio.Semaphore(CONCURRENCY)
    data = {"From": TWILIO_NUMBER, "To": EXTERNAL_NUMBER, "Twiml": SHORT, **params}
    async with httpx.AsyncClient(
        base_url=emulator.base_url, auth=emulator.http.auth, limits=limits, timeout=TIMEOUT
    ) as http:

        async def one() -> str:
            async with gate:
                response = await http.post(f"{emulator.api}/Calls.json", data=data)
            assert response.status_code == 201, response.text
            return response.json()["sid"]

        return list(await asyncio.gather(*(one() for _ in range(count))))


def place(emulator: Emulator, count: int, **params: str) -> list[str]:
    sids = asyncio.run(_place(emulator, count, **params))
    emulator.idle(timeout=TIMEOUT)
    return sids


def fetch(emulator: Emulator, sid: str) -> httpx.Response:
    return emulator.http.get(f"{emulator.api}/Calls/{sid}.json")


def assert_pruned(emulator: Emulator, sid: str) -> None:
    response = fetch(emulator, sid)
    assert response.status_code == 404, response.text
    assert response.json() == {
        "code": 20404,
        "message": f"The requested resource /Calls/{sid}.json was not found",
        "more_info": "https://www.twilio.com/docs/errors/20404",
        "status": 404,
    }


def test_ended_calls_are_kept_up_to_the_count(small):
    first = place(small, KEEP)
    assert all(fetch(small, sid).json()["status"] == "completed" for sid in first)
    later = place(small, 3 * KEEP)

    switch = small.switch
    assert len(switch.calls) == KEEP and switch.history.ended_legs == KEEP
    assert switch.history.pruned == 3 * KEEP
    for sid in first:
        assert_pruned(small, sid)
    # Completion order is not placing order under concurrency: the newest KEEP ended remain.
    kept = {sid for sid in later if fetch(small, sid).status_code == 200}
    assert len(kept) == KEEP and kept == set(switch.calls)
    listed = small.http.get(f"{small.api}/Calls.json", params={"PageSize": 1000}).json()
    assert {c["sid"] for c in listed["calls"]} == kept
    # Updating or deleting a pruned call is the same 404.
    gone = first[0]
    assert small.http.post(f"{small.api}/Calls/{gone}.json", data={"Status": "completed"}).json()[
        "code"
    ] == (20404)
    assert small.http.delete(f"{small.api}/Calls/{gone}.json").status_code == 404


def test_live_calls_and_their_legs_survive_pruning(small):
    switch = small.switch
    small.set_phone("+819011112222", mode="busy")
    small.set_phone("+819033334444", mode="answer", answer_after=0.5)
    # A live call whose <Dial> leg has ended (busy), and one whose leg is up (bridged).
    dial_busy = small.call_out(
        Twiml="<Response><Dial>+819011112222</Dial><Pause length='100000'/></Response>"
    )["sid"]
    bridged = small.call_out(Twiml="<Response><Dial>+819033334444</Dial></Response>")["sid"]
    holding = small.call_out(Twiml=HOLD)["sid"]
    deadline = time.monotonic() + 30
    while len(small.children(dial_busy)) < 1 or any(
        c["status"] != "busy" for c in small.children(dial_busy)
    ):
        assert time.monotonic() < deadline, small.children(dial_busy)
        time.sleep(0.05)
    small.wait_status(bridged, ("in-progress",))
    while not [c for c in small.children(bridged) if c["status"] == "in-progress"]:
        assert time.monotonic() < deadline, small.children(bridged)
        time.sleep(0.05)
    (busy_leg,) = [c["sid"] for c in small.children(dial_busy)]
    (bridged_leg,) = [c["sid"] for c in small.children(bridged)]

    asyncio.run(_place(small, 3 * KEEP))  # many more calls end around them
    deadline = time.monotonic() + TIMEOUT
    while switch.history.pruned < 2 * KEEP:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    for sid in (dial_busy, bridged, holding, bridged_leg):
        assert fetch(small, sid).json()["status"] == "in-progress", sid
    assert fetch(small, busy_leg).json()["status"] == "busy"  # ended, but its parent is up
    assert switch.history.ended_legs <= KEEP + 1  # the busy leg waits for its parent

    for sid in (dial_busy, bridged, holding):
        small.http.post(f"{small.api}/Calls/{sid}.json", data={"Status": "completed"})
    small.idle(timeout=TIMEOUT)
    place(small, 2 * KEEP)  # now they are the oldest ended: pruned, legs with them
    for sid in (dial_busy, bridged, holding, busy_leg, bridged_leg):
        assert_pruned(small, sid)
    assert len(switch.calls) == KEEP


def test_calls_older_than_the_age_are_pruned_even_when_idle():
    # 30 emulated seconds of history: 0.6 s at the tests' clock scale.
    for emulator in make_emulator(history_seconds=30):
        emulator.add_number(TWILIO_NUMBER)
        sids = place(emulator, 5)
        assert all(fetch(emulator, sid).status_code == 200 for sid in sids)
        time.sleep(emulator.switch.clock.real(31))
        for sid in sids:
            assert_pruned(emulator, sid)
        assert emulator.switch.calls == {}
        assert emulator.switch.history.ended_legs == 0


def test_recordings_go_with_their_call(small):
    small.set_phone("+819055556666", mode="answer", answer_after=0.1, hangup_after=1)
    twiml = "<Response><Dial record='record-from-answer'>+819055556666</Dial></Response>"
    first = place(small, 5, Twiml=twiml)
    switch = small.switch
    assert len(switch.recordings) == 5
    media = [f"{small.api}/Recordings/{sid}" for sid in switch.recordings]  # RecordingUrl of each
    assert all(small.http.get(url).status_code == 200 for url in media)
    place(small, 2 * KEEP)
    assert all(fetch(small, sid).status_code == 404 for sid in first)
    assert len(switch.recordings) == 0 and switch.recordings.bytes == 0
    assert all(small.http.get(url).status_code == 404 for url in media)


def test_alerts_are_bounded(small):
    # Every call's <Play> fails: one 11200 alert each.
    twiml = "<Response><Play>http://127.0.0.1:9/missing.wav</Play></Response>"
    place(small, 3 * KEEP, Twiml=twiml)
    assert len(small.switch.alerts) == KEEP
    alerts = small.http.get("/v1/Alerts", params={"PageSize": 1000}).json()["alerts"]
    assert len(alerts) == KEEP and {a["error_code"] for a in alerts} == {"11200"}


def test_the_event_stream_lets_go_of_a_subscriber_that_disconnects(small):
    assert len(small.switch.bus) == 0
    for opened in range(1, 6):
        with small.http.stream("GET", "/emulator/events") as response:
            assert response.status_code == 200
            # Held: a dropped iterator closes the response (and so the stream) when collected.
            chunks = response.iter_text()
            next(chunks)  # ": connected": subscribed by now
            # The streams closed before may still be on their way out (the server notices a
            # disconnect a moment later): what must not happen is that they stay, below.
            assert 1 <= len(small.switch.bus) <= opened
    deadline = time.monotonic() + 10
    while len(small.switch.bus) > 0:
        assert time.monotonic() < deadline, "a disconnected subscriber is still subscribed"
        place(small, 1)  # an event to publish wakes the streams up
        time.sleep(0.05)


def test_memory_stays_flat_as_calls_keep_coming(small):
    """After the history is full, N more calls do not grow the Python heap by more than a small
    bound (unbounded, each ended call with its event log keeps ~10 KB)."""
    place(small, 2 * KEEP)  # history full; pools and caches warmed up
    # pytest keeps every captured log record for the report: that is not the emulator's memory.
    logging.disable(logging.CRITICAL)
    tracemalloc.start()
    try:
        place(small, 2 * KEEP)
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        place(small, 8 * KEEP)  # 320 more calls
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
        logging.disable(logging.NOTSET)
    assert len(small.switch.calls) == KEEP
    assert grown < 600_000, f"{grown} bytes more after {8 * KEEP} calls"


# -- the stores themselves ---------------------------------------------------------------------


def _switch(**config: object) -> Switch:
    return Switch(EmulatorConfig(credentials=Credentials.from_env({}), **config))


def test_a_family_goes_only_once_all_its_legs_have_ended():
    switch = _switch(history_calls=0)  # keep no ended call at all

    def new(parent: Call | None = None) -> Call:
        leg = Call(switch=switch, account_sid="AC", direction=INBOUND, from_="a", to="b")
        leg.parent = parent
        return switch.add_call(leg)

    root = new()
    child = new(root)
    grandchild = new(child)
    switch.finish(root, "completed")  # a parent can end a moment before its <Dial> legs do
    assert set(switch.calls) == {root.sid, child.sid, grandchild.sid}
    switch.finish(grandchild, "completed")
    assert set(switch.calls) == {root.sid, child.sid, grandchild.sid}
    switch.finish(child, "completed")
    assert switch.calls == {} and switch.history.ended_legs == 0
    assert switch.history.pruned == 3


def test_a_calls_event_log_stops_at_its_limit(monkeypatch):
    monkeypatch.setattr(call_module, "MAX_EVENTS", 10)
    switch = _switch()
    call = Call(switch=switch, account_sid="AC", direction=INBOUND, from_="a", to="b")
    for i in range(25):
        call.log("dtmf", digit=str(i % 10))
    assert len(call.events) == 11 and call.logged == 25
    assert call.events[-1]["kind"] == "events_truncated" and call.events[-1]["kept"] == 10
    assert [e["seq"] for e in call.events] == list(range(11))


def test_recordings_are_held_to_a_byte_budget():
    store = Recordings(max_bytes=1000)
    for i in range(5):
        store[f"RE{i}"] = Recording(f"RE{i}", f"CA{i % 2}", 1, None, wav=b"x" * 300)  # type: ignore[arg-type]
    assert list(store) == ["RE2", "RE3", "RE4"] and store.bytes == 900
    store.drop_call("CA0")
    assert list(store) == ["RE3"] and store.bytes == 300
    del store["RE3"]
    assert store.bytes == 0 and len(store) == 0


def test_alerts_are_pruned_by_age():
    from datetime import UTC, datetime, timedelta

    from dialtone.emulator.monitor import Alert

    now = datetime.now(UTC)
    alerts = Alerts(maxlen=3)
    for days in (5, 4, 3, 2, 1):
        alerts.append(Alert(f"NO{days}", "CA", 11200, "error", "m", now - timedelta(days=days)))
    assert [a.sid for a in alerts] == ["NO3", "NO2", "NO1"]
    alerts.prune(now - timedelta(days=1, hours=12))
    assert [a.sid for a in alerts] == ["NO1"]


def test_audio_caches_are_bounded_by_entries_and_bytes():
    cache: LruCache[bytes] = LruCache(3, 1000, len)
    for key in "abcd":
        cache[key] = b"x" * 100
    assert "a" not in cache and len(cache) == 3
    assert cache.get("b") is not None  # now the most recently used
    cache["e"] = b"x" * 900  # over the byte budget: the least recently used go
    assert "b" in cache and "e" in cache and "c" not in cache and "d" not in cache
    assert cache.bytes == 1000
    cache["huge"] = b"x" * 2000  # larger than the budget: not cached, nothing evicted
    assert "huge" not in cache and cache.bytes == 1000
