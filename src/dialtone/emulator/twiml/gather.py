"""<Gather>: collect DTMF digits (reference §7, §2.5).

action (current document), method POST, timeout 5 s between digits, finishOnKey `#`
("" disables; the key is not part of `Digits`), numDigits (unlimited), input dtmf.
Nested <Say>/<Play>/<Pause> are the prompt, which stops at the first digit. With no input
(or the finish key before any digit) execution falls through to the next verb, unless
actionOnEmptyResult="true"."""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET

from dialtone.emulator.twiml import attributes, pause, play, say
from dialtone.emulator.twiml.session import Goto, Session

ATTRIBUTES = {
    "action",
    "method",
    "timeout",
    "finishOnKey",
    "numDigits",
    "input",
    "speechTimeout",
    "language",
    "hints",
    "profanityFilter",
    "actionOnEmptyResult",
    "partialResultCallback",
    "partialResultCallbackMethod",
    "speechModel",
    "enhanced",
    "bargeIn",
}
PROMPT_VERBS = {"Say": say.execute, "Play": play.execute, "Pause": pause.execute}


async def _prompt(session: Session, element: ET.Element) -> None:
    for child in element:
        handler = PROMPT_VERBS.get(child.tag)
        if handler is None:
            session.call.log(
                "warning", code=12200, message=f"<{child.tag}> cannot be nested in <Gather>"
            )
            continue
        await handler(session, child)


async def execute(session: Session, element: ET.Element) -> Goto | None:
    await session.answer()
    timeout = attributes.number(session, element, "timeout", 5)
    finish_keys = element.get("finishOnKey", "#")
    num_digits = int(attributes.number(session, element, "numDigits", 0, minimum=1)) or None
    inputs = set(element.get("input", "dtmf").split())
    if "dtmf" not in inputs:
        session.call.log("warning", code=12200, message="speech input is not recognised here")
    stale = session.drain_digits()
    if stale:
        session.call.log("dtmf_ignored", digits=stale)

    # The prompt plays until it ends or a key is pressed, whichever is first.
    prompt = asyncio.ensure_future(_prompt(session, element))
    first = asyncio.ensure_future(session.call.dtmf.get())
    try:
        await asyncio.wait({prompt, first}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        prompt.cancel()
        await asyncio.gather(prompt, return_exceptions=True)
    digit = first.result() if first.done() else None
    if digit is None:
        first.cancel()
        digit = await session.next_digit(timeout) if "dtmf" in inputs else None

    digits, finished_on = "", ""
    while digit is not None:
        if digit in finish_keys and finish_keys:
            finished_on = digit
            break
        digits += digit
        if num_digits is not None and len(digits) >= num_digits:
            break
        digit = await session.next_digit(timeout)

    session.call.log("gather_result", digits=digits, finished_on_key=finished_on)
    if not digits and not attributes.boolean(element, "actionOnEmptyResult", False):
        return None
    action = session.resolve(element.get("action") or session.document_url or "")
    params = {"Digits": digits}
    if finished_on:
        params["FinishedOnKey"] = finished_on
    return Goto(action, attributes.method(session, element), params, purpose="gather_action")
