"""<Pause length="1">: silence. As the first verb of an inbound call it delays the answer."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from dialtone.emulator.twiml import attributes
from dialtone.emulator.twiml.session import Session

ATTRIBUTES = {"length"}


async def execute(session: Session, element: ET.Element) -> None:
    length = attributes.number(session, element, "length", 1)
    if session.verbs_run > 0:
        await session.answer()
    session.call.log("audio", source="pause", seconds=length)
    await session.clock.sleep(length)
