"""The verb table: one module per TwiML verb, each declaring the attributes it knows."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING

from dialtone.emulator.twiml import dial, gather, hangup, pause, play, record, redirect, reject, say

if TYPE_CHECKING:
    from dialtone.emulator.twiml.session import Session

_MODULES = {
    "Say": say,
    "Play": play,
    "Pause": pause,
    "Gather": gather,
    "Dial": dial,
    "Record": record,
    "Hangup": hangup,
    "Redirect": redirect,
    "Reject": reject,
}
VERBS = {name: module.execute for name, module in _MODULES.items()}


def check_attributes(session: Session, element: ET.Element) -> None:
    """Unknown attributes are a schema warning (12200); the verb still runs."""
    known = _MODULES[element.tag].ATTRIBUTES
    for name in element.attrib:
        if name not in known:
            session.call.log(
                "warning", code=12200, message=f"<{element.tag}> has no attribute {name!r}; ignored"
            )
