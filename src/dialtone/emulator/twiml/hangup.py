"""<Hangup/>: end the call. As the first verb it answers the call first (reference §7)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from dialtone.emulator.twiml.session import End, Session

ATTRIBUTES: set[str] = set()


async def execute(session: Session, element: ET.Element) -> End:
    await session.answer()
    return End()
