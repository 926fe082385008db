"""Compare TwiML as XML structure, not as text."""

from __future__ import annotations

import xml.etree.ElementTree as ET


def structure(xml: str) -> tuple:
    """(tag, attributes, stripped text, children…) of a document, recursively."""

    def walk(element: ET.Element) -> tuple:
        text = (element.text or "").strip()
        return (element.tag, dict(element.attrib), text, tuple(walk(child) for child in element))

    return walk(ET.fromstring(xml.encode()))


def elements(xml: str) -> list[str]:
    return [element.tag for element in ET.fromstring(xml.encode()).iter()]
