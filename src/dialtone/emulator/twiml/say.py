"""<Say>: text to speech. Attributes voice (man), language (en-US), loop (1; 0 = up to 1000).
It lasts about as long as the speech would (reference §7)."""

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


async def execute(session: Session, element: ET.Element) -> None:
    await session.answer()
    text = "".join(element.itertext()).strip()  # SSML children are spoken as their text
    language = element.get("language", "en-US")
    loops = int(attributes.number(session, element, "loop", 1, maximum=MAX_LOOPS)) or MAX_LOOPS
    seconds = speech_seconds(text, language)
    for _ in range(loops):
        await session.speak(
            seconds, "say", text=text[:200], language=language, voice=element.get("voice", "man")
        )
