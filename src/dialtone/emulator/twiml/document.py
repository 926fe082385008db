"""Turning a webhook response into TwiML to run (reference §2 "Your Response", §9)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from dialtone.emulator.webhooks import TWIML_TYPES, Fetched


class TwimlError(Exception):
    """The response cannot be run; `code` is Twilio's (12100, 12102, 12300)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass
class Document:
    verbs: list[ET.Element]
    url: str | None  # for relative URLs and the default `action`
    warnings: list[str] = field(default_factory=list)


@dataclass
class AudioResponse:
    """An audio file served as the response: played, then the call hangs up."""

    url: str


@dataclass
class SpokenText:
    """A text/plain response that is not TwiML: read aloud, then the call hangs up."""

    text: str


def parse(text: str | bytes, url: str | None = None) -> Document:
    raw = text if isinstance(text, bytes) else text.encode()
    try:
        root = ET.fromstring(raw)
    except ET.ParseError as exc:
        raise TwimlError(12100, f"document parse failure: {exc}") from None
    if root.tag != "Response":
        raise TwimlError(12102, f"the root element is <{root.tag}>, not <Response>")
    return Document(verbs=list(root), url=url)


def interpret(fetched: Fetched) -> Document | AudioResponse | SpokenText:
    """What Twilio does with a response, by its Content-Type."""
    content_type = fetched.content_type
    if content_type in TWIML_TYPES:
        return parse(fetched.body, fetched.url)
    if content_type.startswith("audio/"):
        return AudioResponse(fetched.url)
    if content_type == "text/plain":
        try:
            return parse(fetched.body, fetched.url)
        except TwimlError:
            return SpokenText(fetched.body.decode("utf-8", "replace"))
    raise TwimlError(12300, f"invalid Content-Type {content_type or '(none)'!r}")
