"""<Redirect method="POST">url</Redirect>: continue with the TwiML at url; later verbs never run."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from dialtone.emulator.twiml import attributes
from dialtone.emulator.twiml.session import End, Goto, Session

ATTRIBUTES = {"method"}


async def execute(session: Session, element: ET.Element) -> Goto | End:
    url = attributes.text(element)
    if not url:
        session.call.log("error", code=12100, message="<Redirect> without a URL")
        return End()
    return Goto(session.resolve(url), attributes.method(session, element), {}, purpose="redirect")
