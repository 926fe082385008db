"""Many calls saying the same thing at once: one espeak-ng run per distinct text, shared by every
caller, a few processes at a time and no thread per call. espeak-ng launches are counted by a
wrapper placed first on PATH that logs its arguments and runs the real espeak-ng."""

from __future__ import annotations

import asyncio
import os
import shutil
import stat
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from dialtone.emulator.media import audio, tts
from dialtone.emulator.media.cache import LruCache
from tests.emulator.conftest import TWILIO_NUMBER, Hooks, Received, make_emulator
from tests.emulator.test_load import _all, caller

CALLERS = 300
TEXTS = 20
CALLS = 100
# Main thread, the asyncio child watcher's threads (one per running espeak-ng, at most
# MAX_PROCESSES) and the decoding pool; before sharing, every caller added one.
MAX_THREADS = 10


class Launches:
    """The wrapper's log: one line (arguments | text) per espeak-ng process started."""

    def __init__(self, log: Path) -> None:
        self.log = log

    def all(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []

    def speech(self) -> list[str]:
        return [line for line in self.all() if "--stdin" in line]

    def voices(self) -> list[str]:
        return [line for line in self.all() if "--voices" in line]


def _wrap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str) -> Launches:
    folder = tmp_path / "bin"
    folder.mkdir()
    log = tmp_path / "launches.log"
    script = folder / tts.ESPEAK
    # The text comes on stdin: logged with the arguments, then passed on.
    script.write_text(
        f'#!/bin/sh\ntext=$(cat)\nprintf "%s | %s\\n" "$*" "$text" >> "{log}"\n'
        f'printf "%s" "$text" | {{\n{body}\n}}\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    # A clean cache and voice list: nothing synthesized by earlier tests in this process.
    monkeypatch.setattr(tts, "_cache", LruCache(tts.CACHE_ENTRIES, tts.CACHE_BYTES, len))
    monkeypatch.setattr(tts, "_voices", None)
    return Launches(log)


@pytest.fixture
def launches(espeak: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Launches:
    real = shutil.which(tts.ESPEAK)
    return _wrap(tmp_path, monkeypatch, f'exec "{real}" "$@"')


@pytest.fixture
def failing_speech(espeak: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Launches:
    real = shutil.which(tts.ESPEAK)
    body = f'case "$*" in *--stdin*) echo broken >&2; exit 3;; esac\nexec "{real}" "$@"'
    return _wrap(tmp_path, monkeypatch, body)


async def _peak_threads(work: asyncio.Future) -> int:
    """The most threads alive while `work` runs, sampled from the loop (no sampling thread)."""
    peak = threading.active_count()
    while not work.done():
        peak = max(peak, threading.active_count())
        await asyncio.sleep(0.001)
    return peak


def test_concurrent_callers_of_one_text_share_one_synthesis(launches: Launches):
    async def main() -> tuple[list[bytes], int]:
        work = asyncio.gather(*(tts.synthesize("Hello.") for _ in range(CALLERS)))
        peak = await _peak_threads(work)
        return await work, peak

    results, peak = asyncio.run(main())
    assert len(launches.speech()) == 1
    assert len(launches.voices()) == 1
    assert results[0] and all(pcm is results[0] for pcm in results)
    assert peak < MAX_THREADS, peak


def test_distinct_texts_synthesize_once_each_with_few_threads(launches: Launches):
    texts = [f"Caller number {n}." for n in range(TEXTS)]

    async def main() -> tuple[list[bytes], int]:
        work = asyncio.gather(*(tts.synthesize(texts[i % TEXTS]) for i in range(TEXTS * 10)))
        peak = await _peak_threads(work)
        return await work, peak

    results, peak = asyncio.run(main())
    spoken = Counter(line for line in launches.speech())
    assert len(launches.speech()) == TEXTS and set(spoken.values()) == {1}
    assert len({id(pcm) for pcm in results}) == TEXTS
    assert peak < MAX_THREADS, peak


def test_a_caller_giving_up_does_not_cancel_the_others(launches: Launches):
    async def main() -> bytes:
        first = asyncio.ensure_future(tts.synthesize("Please hold."))
        while not launches.speech():  # the first caller's synthesis is under way
            await asyncio.sleep(0.001)
        second = asyncio.ensure_future(tts.synthesize("Please hold."))
        await asyncio.sleep(0)
        first.cancel()  # the caller who started it hung up
        return await second

    assert asyncio.run(main())
    assert len(launches.speech()) == 1


def test_a_failure_reaches_every_caller_and_is_not_cached(failing_speech: Launches):
    async def many() -> list[BaseException | bytes]:
        return await asyncio.gather(
            *(tts.synthesize("Hello.") for _ in range(20)), return_exceptions=True
        )

    results = asyncio.run(many())
    assert all(isinstance(r, tts.TtsError) and "broken" in str(r) for r in results), results
    assert len(failing_speech.speech()) == 1
    with pytest.raises(tts.TtsError):
        asyncio.run(tts.synthesize("Hello."))
    assert len(failing_speech.speech()) == 2  # tried again, not a remembered failure


@pytest.fixture
def realtime(tmp_path: Path) -> Iterator:
    yield from make_emulator(scale=1.0, media_folder=tmp_path)


def test_simultaneous_say_calls_share_speech_without_a_thread_per_call(
    launches: Launches, realtime, hooks: Hooks
):
    def answer(request: Received) -> str:
        n = int(request.form["From"][-2:]) % TEXTS
        return f'<Response><Say>Caller number {n}.</Say><Pause length="100000"/></Response>'

    realtime.add_number(
        TWILIO_NUMBER,
        VoiceUrl=hooks.on("/voice", answer),
        StatusCallback=hooks.on("/status", "<Response/>"),
    )
    switch = realtime.switch
    peak = threads_before = threading.active_count()
    sampling = True

    def sample() -> None:
        nonlocal peak
        while sampling:
            peak = max(peak, threading.active_count())
            time.sleep(0.001)

    sampler = threading.Thread(target=sample)
    sampler.start()
    threads_before += 1
    try:
        placed = asyncio.run(
            _all(
                realtime.base_url,
                [
                    ("/emulator/calls", {"From": caller(i), "To": TWILIO_NUMBER})
                    for i in range(CALLS)
                ],
                realtime.http.auth,
            )
        )
        assert [r.status_code for r in placed] == [201] * CALLS, placed[0].text
        sids = [r.json()["sid"] for r in placed]

        # Every distinct text synthesized and decoded (the test's fresh cache holds them all).
        deadline = time.monotonic() + 120
        while len(tts._cache) < TEXTS or any(
            switch.calls[sid].status != "in-progress" for sid in sids
        ):
            assert time.monotonic() < deadline, (len(launches.speech()), len(tts._cache))
            time.sleep(0.05)
    finally:
        sampling = False
        sampler.join()
    # The test's own servers were running before; the calls added at most a handful.
    assert peak - threads_before < MAX_THREADS - 1, (threads_before, peak)
    assert len(launches.speech()) == TEXTS
    assert set(Counter(launches.speech()).values()) == {1}

    hangups = asyncio.run(
        _all(
            realtime.base_url,
            [(f"/emulator/calls/{sid}/hangup", None) for sid in sids],
            realtime.http.auth,
        )
    )
    assert [r.status_code for r in hangups] == [200] * CALLS
    realtime.idle(timeout=120)
    for sid in sids:
        warnings = [e for e in switch.calls[sid].events if e["kind"] in ("error", "warning")]
        assert not warnings, warnings
    status = hooks.requests("/status")
    assert Counter(r.form["CallSid"] for r in status) == Counter(sids)  # exactly once each
    assert {r.form["CallStatus"] for r in status} == {"completed"}


def test_decoding_many_files_at_once_uses_the_small_shared_pool():
    pcm = audio.tone(440, 0.5)
    wav = audio.to_wav(pcm)

    async def many() -> list[bytes]:
        return await asyncio.gather(*(audio.decode_async(wav) for _ in range(50)))

    assert asyncio.run(many()) == [pcm] * 50
    decoders = [t for t in threading.enumerate() if t.name.startswith("dialtone-decode")]
    assert 1 <= len(decoders) <= audio.DECODE_WORKERS
