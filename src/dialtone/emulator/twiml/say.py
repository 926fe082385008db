"""<Say>: text to speech. Attributes voice (man), language (en-US), loop (1; 0 = up to 1000).
On a leg with audio it is real synthesized speech (espeak-ng); without audio (a scaled test
clock) it lasts about as long as that speech would (reference §7)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from dialtone.emulator.twiml import attributes
from dialtone.emulator.twiml.session import Session

ATTRIBUTES = {"voice", "language", "loop"}
MAX_LOOPS = 1000
# Typical TTS rates: ~14 characters a second for alphabetic scripts, ~7 for CJK text.
_CJK = re.compile(r"[\u3000-\u9fff\uac00-\ud7af\uff00-\uffef]")


def speech_seconds(text: str, language: str) -> float:
    text = " ".join(text.split())
    if not text:
        return 0.0
    cjk = len(_CJK.findall(text))
    return max(0.3, cjk / 7.0 + (len(text) - cjk) / 14.0)


async def say(session: Session, text: str, language: str, voice: str, loops: int = 1) -> None:
    pcm = None
    seconds = speech_seconds(text, language)
    if session.call.media is not None and text:
        from dialtone.emulator.media import audio, tts

        try:
            pcm = await tts.synthesize(text, language, voice)
            seconds = audio.seconds(pcm)
        except tts.TtsError as exc:
            session.call.log("warning", code=13511, message=f"text to speech failed: {exc}")
    for _ in range(loops):
        await session.speak(
            seconds, "say", pcm=pcm, text=text[:200], language=language, voice=voice
        )


async def execute(session: Session, element: ET.Element) -> None:
    await session.answer()
    text = "".join(element.itertext()).strip()  # SSML children are spoken as their text
    language = element.get("language", "en-US")
    loops = int(attributes.number(session, element, "loop", 1, maximum=MAX_LOOPS)) or MAX_LOOPS
    await say(session, text, language, element.get("voice", "man"), loops)
