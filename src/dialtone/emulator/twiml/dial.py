"""<Dial>: ring other parties and bridge the first to answer (reference §7, §8).

Attributes: action (none), method POST, timeout 30, callerId (the caller's), hangupOnStar
false, timeLimit 14400, answerOnBridge false, record do-not-record. Nouns: <Number
sendDigits url method statusCallback statusCallbackEvent statusCallbackMethod>, <Client>
(text or <Identity>, with <Parameter name value>), plain text as a number. Up to 10 nouns
ring at once; the first to answer wins and the rest are cancelled.

With `action`, Twilio requests it when the dialled leg ends (DialCallStatus, DialCallSid,
DialCallDuration) and later verbs are unreachable; without it, execution continues with the
next verb. If the caller hangs up, the action is still requested and its answer not run.
"""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from dialtone.emulator.call import (
    BUSY,
    CANCELED,
    COMPLETED,
    FAILED,
    IN_PROGRESS,
    INBOUND,
    NO_ANSWER,
    OUTBOUND_DIAL,
    Call,
    Webhooks,
)
from dialtone.emulator.params import call_params
from dialtone.emulator.switch import call_final_status
from dialtone.emulator.twiml import attributes
from dialtone.emulator.twiml.record import recording_url, silent_wav
from dialtone.emulator.twiml.session import Goto, Session

ATTRIBUTES = {
    "action",
    "method",
    "timeout",
    "callerId",
    "hangupOnStar",
    "timeLimit",
    "answerOnBridge",
    "record",
    "recordingStatusCallback",
    "recordingStatusCallbackMethod",
    "recordingStatusCallbackEvent",
    "recordingTrack",
    "trim",
    "ringTone",
    "sequential",
    "callReason",
    "referUrl",
    "referMethod",
    "events",
}
MAX_NOUNS = 10
NOUN_ATTRIBUTES = {
    "sendDigits",
    "url",
    "method",
    "statusCallback",
    "statusCallbackEvent",
    "statusCallbackMethod",
    "byoc",
    "machineDetection",
}


@dataclass
class Target:
    address: str  # E.164 number or client:<identity>
    element: ET.Element
    params: dict[str, str]


def _targets(session: Session, dial: ET.Element) -> list[Target]:
    targets: list[Target] = []
    plain = (dial.text or "").strip()
    if plain:
        targets.append(Target(plain, dial, {}))
    for noun in dial:
        if noun.tag == "Number":
            targets.append(Target(attributes.text(noun), noun, {}))
        elif noun.tag == "Client":
            identity = noun.find("Identity")
            name = attributes.text(identity) if identity is not None else attributes.text(noun)
            params = {
                p.get("name", ""): p.get("value", "")
                for p in noun.iter("Parameter")
                if p.get("name")
            }
            targets.append(Target(f"client:{name}", noun, params))
        else:
            session.call.log(
                "warning", code=12200, message=f"<Dial><{noun.tag}> is not supported here"
            )
    if len(targets) > MAX_NOUNS:
        session.call.log("warning", code=12200, message=f"only the first {MAX_NOUNS} nouns ring")
    return targets[:MAX_NOUNS]


def _child(session: Session, target: Target, caller_id: str) -> Call:
    noun = target.element
    is_noun = noun.tag in ("Number", "Client")  # plain text in <Dial> has no noun attributes
    events = (
        set((noun.get("statusCallbackEvent") or "").replace(",", " ").split()) if is_noun else set()
    )
    if not events and noun.tag != "Client":
        events = {"completed"}  # <Number> default; <Client> sends none by default
    callback = noun.get("statusCallback") if is_noun else None
    return Call(
        switch=session.switch,
        account_sid=session.call.account_sid,
        direction=OUTBOUND_DIAL,
        from_=caller_id,
        to=target.address,
        parent=session.call,
        webhooks=Webhooks(
            status_callback=session.resolve(callback) if callback else None,
            status_callback_method=attributes.method(session, noun, "statusCallbackMethod"),
            status_callback_events=frozenset(events),
        ),
        custom_params=target.params,
    )


async def _ring(session: Session, child: Call, timeout: float) -> str:
    switch = session.switch
    switch.add_call(child)
    status = await switch.ring(child, timeout)
    if status != IN_PROGRESS:
        switch.finish(child, status)
        return status
    return status


async def _whisper(session: Session, child: Call, noun: ET.Element) -> bool:
    """<Number sendDigits> and <Number url>: run before bridging; False if the child hung up."""
    from dialtone.emulator.twiml.session import Session as ChildSession

    switch = session.switch
    if noun.tag == "Number" and noun.get("sendDigits"):
        await switch.send_digits(child, noun.get("sendDigits", ""))
    url = noun.get("url") if noun.tag in ("Number", "Client") else None
    if not url:
        return True
    child_session = ChildSession(switch, child)
    status = await child_session.run(
        Goto(session.resolve(url), attributes.method(session, noun), {}, purpose="whisper")
    )
    return status is None and not child.far_end_gone.is_set() and child.status == IN_PROGRESS


async def execute(session: Session, element: ET.Element) -> Goto | None:
    call, switch, clock = session.call, session.switch, session.clock
    timeout = attributes.number(session, element, "timeout", 30, minimum=1, maximum=600, code=13212)
    time_limit = attributes.number(session, element, "timeLimit", 14400, minimum=1)
    answer_on_bridge = attributes.boolean(element, "answerOnBridge", False)
    hangup_on_star = attributes.boolean(element, "hangupOnStar", False)
    record = element.get("record", "do-not-record")
    action = element.get("action")
    method = attributes.method(session, element)
    # The default caller ID is the caller's own number (reference §8).
    caller_id = element.get("callerId") or (call.from_ if call.direction == INBOUND else call.to)

    if not answer_on_bridge:
        await session.answer()
    targets = _targets(session, element)
    children = [_child(session, target, caller_id) for target in targets]
    rings = {asyncio.ensure_future(_ring(session, child, timeout)): child for child in children}
    winner: Call | None = None
    result_status = NO_ANSWER
    record_from: float | None = None
    dial_started = clock.now()
    try:
        pending = set(rings)
        while pending and winner is None:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for future in done:
                if future.result() == IN_PROGRESS and winner is None:
                    winner = rings[future]
        # The first to answer wins; the others stop ringing.
        for future in pending:
            future.cancel()
        for future, child in rings.items():
            if child is not winner and not child.ended:
                await asyncio.gather(future, return_exceptions=True)
                switch.finish(child, CANCELED)
        if winner is None:
            result_status = _aggregate([c.status for c in children]) if children else FAILED
        else:
            noun = targets[children.index(winner)].element
            if not await _whisper(session, winner, noun):
                result_status = COMPLETED
            else:
                if answer_on_bridge:
                    await session.answer()
                if record.startswith("record-from-ringing"):
                    record_from = dial_started
                elif record.startswith("record-from-answer"):
                    record_from = clock.now()
                call.log("bridge", with_call_sid=winner.sid)
                winner.log("bridge", with_call_sid=call.sid)
                await _bridge(session, winner, time_limit, hangup_on_star)
                result_status = COMPLETED
            if not winner.ended:
                switch.hang_up(winner, COMPLETED)
    except asyncio.CancelledError:
        # The caller hung up while ringing or bridged.
        for future in rings:
            future.cancel()
        for child in children:
            if not child.ended:
                switch.finish(child, COMPLETED if child is winner and child.answered else CANCELED)
        if action:
            # The action request carries the call's own parameters too (reference §2.5), as
            # the one a Session fetches does; the caller is gone, so its final status.
            params = {
                **call_params(call, call_final_status(call)),
                **_action_params(
                    session, winner, CANCELED if winner is None else COMPLETED, record_from
                ),
            }
            switch.spawn(
                switch.fire(call, session.resolve(action), method, params, "dial_action"),
                f"dial action {call.sid}",
            )
        raise

    # DialCallSid names the bridged leg, or the (first) leg that was tried.
    reported = winner or (children[0] if children else None)
    params = _action_params(session, reported, result_status, record_from)
    call.log("dial_result", **params)
    if action:
        return Goto(session.resolve(action), method, params, purpose="dial_action")
    return None


async def _bridge(session: Session, winner: Call, time_limit: float, hangup_on_star: bool) -> None:
    """Audio both ways until the callee hangs up, `timeLimit` passes, or the caller presses *
    (hangupOnStar)."""
    from dialtone.emulator.media.leg_audio import bridge, unbridge

    caller = session.call
    if caller.media is not None and winner.media is not None:
        bridge(caller.media, winner.media)
    waits = [asyncio.ensure_future(winner.far_end_gone.wait())]
    waits.append(asyncio.ensure_future(_relay_digits(session, winner, hangup_on_star)))
    try:
        await asyncio.wait(
            waits, timeout=session.clock.real(time_limit), return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        for wait in waits:
            wait.cancel()
        if caller.media is not None:
            unbridge(caller.media)


async def _relay_digits(session: Session, winner: Call, hangup_on_star: bool) -> None:
    """The caller's keys reach the other party; with hangupOnStar, * ends the bridge instead."""
    while True:
        digit = await session.call.dtmf.get()
        if digit == "*" and hangup_on_star:
            session.call.log("hangup_on_star")
            return
        winner.log("dtmf_sent", digit=digit)


def _aggregate(statuses: list[str]) -> str:
    """One DialCallStatus for several unanswered legs."""
    if any(s in (NO_ANSWER, CANCELED) for s in statuses):
        return NO_ANSWER
    if statuses and all(s == BUSY for s in statuses):
        return BUSY
    if statuses and all(s == FAILED for s in statuses):
        return FAILED
    return statuses[0] if statuses else FAILED


def _action_params(
    session: Session, leg: Call | None, status: str, record_from: float | None
) -> dict[str, str]:
    params = {"DialCallStatus": status}
    if leg is not None:
        params["DialCallSid"] = leg.sid
        params["DialCallDuration"] = str(leg.duration or 0)
    if record_from is not None and leg is not None:
        from dialtone.emulator.resources import Recording
        from dialtone.emulator.sids import new_sid

        duration = max(0, int(session.clock.now() - record_from))
        sid = new_sid("RE")
        session.switch.recordings[sid] = Recording(
            sid=sid,
            call_sid=session.call.sid,
            duration=duration,
            start_time=session.clock.utcnow(),
            source="DialVerb",
            wav=silent_wav(duration),
        )
        params.update(
            RecordingUrl=recording_url(session, sid),
            RecordingSid=sid,
            RecordingDuration=str(duration),
        )
    return params
