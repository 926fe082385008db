"""<Reject reason="rejected|busy">: only as the first verb, where it leaves the call unanswered
with status no-answer (rejected) or busy. Later, it just ends the call."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from dialtone.emulator.call import BUSY, NO_ANSWER
from dialtone.emulator.twiml.session import End, Session

ATTRIBUTES = {"reason"}


async def execute(session: Session, element: ET.Element) -> End:
    if session.call.answered or session.verbs_run > 0:
        session.call.log("warning", code=12200, message="<Reject> is only valid as the first verb")
        return End()
    reason = element.get("reason", "rejected")
    return End(BUSY if reason == "busy" else NO_ANSWER)
