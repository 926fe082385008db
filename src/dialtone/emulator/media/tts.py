"""Text to speech for <Say>, with Debian's espeak-ng (a subprocess; no shell, text on stdin).

Twilio's languages (`ja-JP`) map to espeak-ng voices (`ja`): the full tag, then its base
language, then `en-us`. Female voices (`woman`, `alice`, most `Polly.*`/`Google.*`) use the
`+f3` variant. Results are cached (LRU, bounded by entries and bytes) by text, language and
voice, and one synthesis is shared by every caller that asks for the same speech while it runs:
a thousand calls saying "Hello." at once start espeak-ng once. At most `MAX_PROCESSES` espeak-ng
processes run at a time (on Python 3.11 asyncio waits for each child on a thread of its own).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from dialtone.emulator.media import audio
from dialtone.emulator.media.cache import LruCache

ESPEAK = "espeak-ng"
DEFAULT_VOICE = "en-us"
FEMALE_VARIANT = "+f3"
CACHE_ENTRIES = 128
CACHE_BYTES = 32 * 1024 * 1024  # a long <Say> is megabytes of PCM
TIMEOUT_SECONDS = 30.0
# espeak-ng is CPU-bound: more processes than cores only queue in the kernel, and each one
# costs a child-watcher thread on Python 3.11.
MAX_PROCESSES = min(4, os.cpu_count() or 1)
# Where the base language alone is not what Twilio's tag means, or espeak-ng names it otherwise.
_ALIASES = {
    "zh-cn": "cmn",
    "zh-tw": "cmn",
    "zh-hk": "yue",
    "cmn-cn": "cmn",
    "yue-hk": "yue",
    "es-mx": "es-419",
    "es-us": "es-419",
    "nb-no": "nb",
    "no": "nb",
}
# Amazon Polly's male voices among those Twilio offers; other Polly and Google voices are
# treated as female (most are), which is all the distinction espeak-ng can make anyway.
_MALE_POLLY_NAMES = (
    "matthew joey justin kevin stephen gregory brian arthur russell geraint mathieu remi hans "
    "daniel enrique sergio andres miguel pedro giorgio adriano takumi ricardo thiago "
    "cristiano jacek jan maxim liam"
)
_MALE_POLLY = frozenset(_MALE_POLLY_NAMES.split())
_TAG = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,8})*$")


class TtsError(RuntimeError):
    """Speech could not be synthesized."""


class TtsUnavailable(TtsError):
    """espeak-ng is not installed."""


_cache: LruCache[bytes] = LruCache(CACHE_ENTRIES, CACHE_BYTES, len)
_voices: frozenset[str] | None = None


@dataclass
class _LoopState:
    """Per event loop: asyncio primitives and tasks belong to the loop that made them."""

    processes: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(MAX_PROCESSES))
    in_flight: dict[tuple[str, ...], asyncio.Task[Any]] = field(default_factory=dict)


_states: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState] = (
    weakref.WeakKeyDictionary()
)


def _state() -> _LoopState:
    loop = asyncio.get_running_loop()
    state = _states.get(loop)
    if state is None:
        state = _states[loop] = _LoopState()
    return state


async def _shared(key: tuple[str, ...], work: Callable[[], Awaitable[Any]]) -> Any:
    """The result of `work()`, run once for all concurrent callers with the same `key`. A caller
    that gives up (its call hung up) does not cancel the work for the others."""
    in_flight = _state().in_flight
    task = in_flight.get(key)
    if task is None:
        task = asyncio.ensure_future(work())
        in_flight[key] = task

        def done(finished: asyncio.Task[Any]) -> None:
            in_flight.pop(key, None)  # a failure is not remembered: the next caller retries
            if not finished.cancelled():
                finished.exception()  # retrieved, even if every caller has gone

        task.add_done_callback(done)
    return await asyncio.shield(task)


def available() -> bool:
    return shutil.which(ESPEAK) is not None


def _executable() -> str:
    path = shutil.which(ESPEAK)
    if path is None:
        raise TtsUnavailable(
            "espeak-ng is not installed: <Say> needs it for speech (apt-get install espeak-ng)"
        )
    return path


async def _run(args: list[str], stdin: bytes = b"") -> bytes:
    async with _state().processes:
        return await _run_now(args, stdin)


async def _run_now(args: list[str], stdin: bytes) -> bytes:
    process = await asyncio.create_subprocess_exec(
        _executable(),
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(stdin), TIMEOUT_SECONDS)
    except BaseException:
        # Timed out or cancelled: don't leave the process behind.
        if process.returncode is None:
            process.kill()
            await process.wait()
        raise
    if process.returncode != 0:
        raise TtsError(f"espeak-ng failed ({process.returncode}): {err.decode()[:200]}")
    return out


async def voices() -> frozenset[str]:
    """espeak-ng's voice names, with the language aliases it lists (`en`, `zh`, …)."""
    if _voices is None:
        return await _shared(("voices",), _list_voices)
    return _voices


async def _list_voices() -> frozenset[str]:
    global _voices
    listing = (await _run(["--voices"])).decode(errors="replace")
    names: set[str] = set()
    for line in listing.splitlines()[1:]:
        columns = line.split()
        if len(columns) >= 2:
            names.add(columns[1].lower())
        names.update(alias.lower() for alias in re.findall(r"\(([^ )]+) \d+\)", line))
    _voices = frozenset(names)
    return _voices


def espeak_voice(language: str, voice: str, known: frozenset[str]) -> str:
    """The espeak-ng voice for a Twilio `language` and `voice` attribute."""
    tag = language.strip().replace("_", "-").lower()
    if not _TAG.match(tag):
        tag = DEFAULT_VOICE
    base = tag.split("-")[0]
    candidates = [_ALIASES.get(tag), tag, _ALIASES.get(base), base]
    name = next((c for c in candidates if c and c in known), DEFAULT_VOICE)
    return name + (FEMALE_VARIANT if _female(voice) else "")


def _female(voice: str) -> bool:
    lowered = voice.strip().lower()
    if lowered in ("woman", "alice"):
        return True
    if lowered.startswith(("polly.", "google.")):
        person = lowered.split(".", 1)[1].split("-")[0]
        return person not in _MALE_POLLY
    return False


async def synthesize(text: str, language: str = "en-US", voice: str = "man") -> bytes:
    """Speech for `text` as internal PCM (mono 16-bit 8 kHz). Empty text is no audio."""
    text = " ".join(text.split())
    if not text:
        return b""
    key = f"{language}\0{voice}\0{text}"
    cached = _cache.get(key)
    if cached is not None:
        return cached
    return await _shared(("speech", key), lambda: _speak(key, text, language, voice))


async def _speak(key: str, text: str, language: str, voice: str) -> bytes:
    name = espeak_voice(language, voice, await voices())
    # -b 1: the text is UTF-8 whatever the locale; --stdin: text never parsed as options.
    wav = await _run(["-v", name, "-b", "1", "--stdout", "--stdin"], text.encode())
    if not wav:
        raise TtsError(f"espeak-ng produced no audio for voice {name}")
    pcm = await audio.decode_async(wav)
    _cache[key] = pcm
    return pcm
