"""Reading verb attributes with their documented defaults; bad values fall back with a warning."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dialtone.emulator.twiml.session import Session


def text(element: ET.Element) -> str:
    return (element.text or "").strip()


def number(
    session: Session,
    element: ET.Element,
    name: str,
    default: float,
    *,
    minimum: float = 0,
    maximum: float | None = None,
    code: int = 12200,
) -> float:
    raw = element.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = None
    if value is None or value < minimum or (maximum is not None and value > maximum):
        session.call.log(
            "warning",
            code=code,
            message=f"<{element.tag} {name}={raw!r}> is invalid; using {default:g}",
        )
        return default
    return value


def boolean(element: ET.Element, name: str, default: bool) -> bool:
    raw = element.get(name)
    if raw is None:
        return default
    return raw.strip().lower() == "true"


def method(session: Session, element: ET.Element, name: str = "method") -> str:
    raw = (element.get(name) or "POST").upper()
    if raw not in ("GET", "POST"):
        session.call.log(
            "warning", code=12200, message=f"<{element.tag} {name}={raw!r}> is not GET or POST"
        )
        return "POST"
    return raw
