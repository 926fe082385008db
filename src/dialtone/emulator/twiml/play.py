"""<Play loop="1" digits="">url</Play>: an audio file (WAV or MP3) for as long as it lasts, or
DTMF tones with `digits` (`w` = half a second). The file is fetched without Twilio's standard
parameters (reference §7); one that cannot be fetched or decoded is skipped with a warning.
`file://` URLs are read only inside the configured media folder (none by default)."""

from __future__ import annotations

import asyncio
import io
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx

from dialtone.emulator.twiml import attributes
from dialtone.emulator.twiml.session import Session

ATTRIBUTES = {"loop", "digits"}
MAX_LOOPS = 1000
MAX_AUDIO_BYTES = 50 * 1024 * 1024


def decode_seconds(data: bytes) -> float:
    """Length of an audio file, by decoding it (PyAV: WAV, MP3 and the rest of FFmpeg)."""
    import av

    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        samples = sum(frame.samples for frame in container.decode(stream))
        return samples / stream.rate


class MediaRefused(ValueError):
    """A `file://` URL the emulator will not read; the message says why."""


def local_media(url: str, folder: Path | None) -> Path:
    """The file a `file://` URL names, if it lies inside `folder` once symlinks and `..` are
    resolved; MediaRefused otherwise (no folder configured, another host, outside it)."""
    if folder is None:
        raise MediaRefused(
            "file:// media is off: start the emulator with --media-folder DIR to play files "
            "from DIR"
        )
    parts = urlsplit(url)
    if parts.scheme != "file" or parts.netloc not in ("", "localhost"):
        raise MediaRefused("a file:// URL names a file on this machine: file:///path")
    try:
        path = Path(unquote(parts.path)).resolve()
        inside = path.is_relative_to(Path(folder).resolve())
    except (OSError, ValueError, RuntimeError):  # NUL bytes, symlink loops
        inside = False
    if not inside:
        raise MediaRefused(f"{url[:200]} is not inside the media folder")
    return path


async def fetch_audio(url: str, media_folder: Path | None = None) -> bytes:
    if url.startswith("file://"):
        path = local_media(url, media_folder)
        data = await asyncio.to_thread(_read_file, path)
    else:
        async with httpx.AsyncClient(timeout=15, follow_redirects=True) as http:
            response = await http.get(url, headers={"User-Agent": "TwilioProxy/1.1"})
        response.raise_for_status()
        data = response.content
    if len(data) > MAX_AUDIO_BYTES:
        raise ValueError("audio file larger than 50 MB")
    return data


async def load_audio(session: Session, url: str) -> tuple[float, bytes | None] | None:
    """(seconds, PCM when the leg carries audio) of an audio URL, cached per URL."""
    cache = session.switch.audio_cache
    with_pcm = session.call.media is not None
    cached = cache.get(url)
    if cached is not None and (cached[1] is not None or not with_pcm):
        return cached
    try:
        data = await fetch_audio(url, session.switch.config.media_folder)
        if with_pcm:
            from dialtone.emulator.media import audio

            pcm = await audio.decode_async(data)
            loaded: tuple[float, bytes | None] = (audio.seconds(pcm), pcm)
        else:
            loaded = (await asyncio.to_thread(decode_seconds, data), None)
    except MediaRefused as exc:
        session.call.log("warning", code=11200, message=f"cannot play: {exc}", url=url)
        return None
    except Exception as exc:
        session.call.log(
            "warning", code=11200, message=f"cannot play {url}: {type(exc).__name__}", url=url
        )
        return None
    cache[url] = loaded
    return loaded


def _read_file(path: Path) -> bytes:
    with open(path, "rb") as handle:
        return handle.read(MAX_AUDIO_BYTES + 1)


async def execute(session: Session, element: ET.Element) -> None:
    await session.answer()
    loops = int(attributes.number(session, element, "loop", 1, maximum=MAX_LOOPS)) or MAX_LOOPS
    digits = element.get("digits")
    if digits is not None:
        for _ in range(loops):
            await session.switch.send_digits(session.call, digits)
        return
    url = attributes.text(element)
    if not url:
        session.call.log("warning", code=12200, message="<Play> without a URL")
        return
    url = session.resolve(url)
    loaded = await load_audio(session, url)
    if loaded is None:
        return
    seconds, pcm = loaded
    for _ in range(loops):
        await session.speak(seconds, "play", pcm=pcm, url=url)
