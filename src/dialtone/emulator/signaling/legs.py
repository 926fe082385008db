"""Call legs whose far end is a Voice SDK device: outgoing calls from a browser, and ringing
the registered devices of a Client identity (reference §7, §8, §12)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from dialtone import logs
from dialtone.emulator.call import BUSY, IN_PROGRESS, INBOUND, NO_ANSWER, RINGING, Call, Webhooks
from dialtone.emulator.params import API_VERSION
from dialtone.emulator.signaling.reconnect import DeviceLeg

if TYPE_CHECKING:
    from dialtone.emulator.signaling.pstream import SignalingSession

log = logging.getLogger("dialtone.emulator.signaling")


def _attach(leg: DeviceLeg, audio: object) -> None:
    """The device is now the far end of its call: audio flows, and either side can hang up."""
    call = leg.call
    reconnects = call.switch.devices.reconnects
    call.media = audio
    call.transport = leg.rtc
    leg.session.legs[call.sid] = leg

    def ended() -> None:
        # `leg.session` is whichever socket carries the call now (it moves on reconnect).
        leg.session.legs.pop(call.sid, None)
        leg.session.unalias(call.sid)
        reconnects.ended(leg)
        call.switch.spawn(_hang_up_device(leg), f"device hangup {call.sid}")

    call.on_end = ended


async def _hang_up_device(leg: DeviceLeg) -> None:
    await leg.session.send("hangup", {"callsid": leg.call.sid})
    await leg.rtc.close()


def _answer_when_answered(leg: DeviceLeg, sdp: str) -> None:
    """The SDK fires `accept` on our `answer`: send it when the TwiML answers the call (the
    first verb that needs the line, or the bridge with answerOnBridge). It carries the call's
    first reconnect token."""
    call = leg.call
    reconnects = call.switch.devices.reconnects

    def answer() -> None:
        payload = {"callsid": call.sid, "sdp": sdp, "reconnect": reconnects.issue(leg)}
        call.switch.spawn(leg.session.send("answer", payload), f"answer {call.sid}")

    call.on_answer = answer


async def start_outgoing(
    session: SignalingSession, temporary_sid: str, offer: str, params: dict[str, str]
) -> Call | None:
    """`device.connect()`: a call from `client:<identity>` handled by the grant's TwiML App."""
    from dialtone.emulator.media import LegAudio, RtcLeg

    switch, grant = session.switch, session.grant
    assert grant is not None and grant.outgoing_application_sid
    application = switch.applications.get(grant.outgoing_application_sid)
    if application is None:
        await session.send(
            "hangup",
            {
                "callsid": temporary_sid,
                "error": {"code": 31002, "message": "the TwiML App of the token does not exist"},
            },
        )
        return None
    to = params.pop("To", "")
    call = Call(
        switch=switch,
        account_sid=switch.credentials.account_sid,
        direction=INBOUND,
        from_=f"client:{grant.identity}",
        to=to,
        webhooks=Webhooks.of(application),
        application_sid=application.sid,
        custom_params=params,
    )
    switch.add_call(call)
    call.log(
        "signal",
        way="from-device",
        type="invite",
        identity=grant.identity,
        params={"To": to, **params},
    )
    audio = LegAudio()
    rtc = RtcLeg(audio, switch.config.media_address)
    try:
        answer = await rtc.accept_offer(offer)
    except Exception as exc:
        logs.event(
            log,
            "signal_bad_offer",
            level=logging.WARNING,
            call_sid=call.sid,
            error=type(exc).__name__,
        )
        await rtc.close()
        await session.send(
            "hangup",
            {"callsid": temporary_sid, "error": {"code": 53400, "message": "bad SDP offer"}},
        )
        switch.finish(call, "failed")
        return None
    leg = DeviceLeg(call, session, rtc, session.identity)
    _attach(leg, audio)
    _answer_when_answered(leg, answer)
    call.set_status(RINGING)
    await session.send("ringing", {"callsid": call.sid})
    call.task = switch.spawn(switch.run_inbound_call(call), f"call {call.sid}")
    return call


async def start_phone_call(
    session: SignalingSession, temporary_sid: str, offer: str, params: dict[str, str]
) -> Call | None:
    """A person on a browser "external phone" dials a number: a phone call into Twilio."""
    from dialtone import phone
    from dialtone.emulator.media import LegAudio, RtcLeg
    from dialtone.emulator.signaling.devices import phone_number
    from dialtone.emulator.switch import RoutingError

    switch = session.switch
    caller = phone_number(session.identity)
    assert caller is not None

    async def refuse(code: int, message: str) -> None:
        await session.send(
            "hangup", {"callsid": temporary_sid, "error": {"code": code, "message": message}}
        )

    try:
        to = phone.to_e164(params.get("To", ""), phone.region_of(caller))
    except phone.InvalidNumber as exc:
        await refuse(31404, str(exc))
        return None
    audio = LegAudio()
    rtc = RtcLeg(audio, switch.config.media_address)
    try:
        answer = await rtc.accept_offer(offer)
    except Exception:
        await rtc.close()
        await refuse(53400, "bad SDP offer")
        return None

    def far_end(call: Call) -> None:
        leg = DeviceLeg(call, session, rtc, session.identity)
        _attach(leg, audio)
        _answer_when_answered(leg, answer)

    try:
        call = switch.place_inbound_call(caller, to, far_end=far_end)
    except RoutingError as exc:
        await rtc.close()
        await refuse(31404, exc.message)  # not one of our numbers: "not found"
        return None
    call.log(
        "signal", way="from-device", type="invite", identity=session.identity, params={"To": to}
    )
    await session.send("ringing", {"callsid": call.sid})
    return call


async def ring_devices(call: Call, sessions: list[SignalingSession], timeout: float) -> str:
    """Ring every registered device of `call.to`; the first `answer` wins, the rest get `cancel`.
    Returns IN_PROGRESS once answered, else BUSY (rejected) or NO_ANSWER."""
    from dialtone.emulator.media import LegAudio, RtcLeg

    switch = call.switch
    reconnects = switch.devices.reconnects
    parameters = {
        "CallSid": call.sid,
        "AccountSid": call.account_sid,
        "From": call.from_,
        "To": call.to,
        "ApiVersion": API_VERSION,
    }
    if call.custom_params:
        parameters["Params"] = urlencode(call.custom_params)
    offers: dict[asyncio.Future, tuple[DeviceLeg, object]] = {}
    loop = asyncio.get_running_loop()
    for session in sessions:
        audio = LegAudio()
        rtc = RtcLeg(audio, switch.config.media_address)
        offer = await rtc.create_offer()
        future: asyncio.Future = loop.create_future()
        session.pending[call.sid] = future
        leg = DeviceLeg(call, session, rtc, session.identity)
        offers[future] = (leg, audio)
        # Each device's invite carries its own token: only the one that answers stays valid.
        await session.send(
            "invite",
            {
                "callsid": call.sid,
                "sdp": offer,
                "parameters": parameters,
                "reconnect": reconnects.issue(leg),
            },
        )
        call.log("device_invited", identity=session.identity)

    winner: tuple[DeviceLeg, object] | None = None
    status = NO_ANSWER
    try:
        pending = set(offers)
        deadline = loop.time() + switch.clock.real(timeout)
        while pending and winner is None:
            done, pending = await asyncio.wait(
                pending,
                timeout=max(0.0, deadline - loop.time()),
                return_when=asyncio.FIRST_COMPLETED,
            )
            if not done:
                break  # rang out
            for future in done:
                reply = future.result()
                if reply and "answer" in reply and winner is None:
                    leg, _audio = offers[future]
                    try:
                        await leg.rtc.accept_answer(reply["answer"])
                    except Exception as exc:
                        call.log(
                            "error", code=53400, message=f"bad SDP answer: {type(exc).__name__}"
                        )
                        continue
                    winner = offers[future]
                elif reply and reply.get("reject"):
                    # A rejecting device declines the call for all of them.
                    call.log("device_rejected", identity=offers[future][0].identity)
                    status = BUSY
                    pending = set()
    finally:
        for future, (leg, _audio) in offers.items():
            leg.session.pending.pop(call.sid, None)
            if winner is None or leg is not winner[0]:
                reconnects.forget(leg)
                if not future.done() or not (future.result() or {}).get("reject"):
                    with contextlib.suppress(Exception):
                        await leg.session.send("cancel", {"callsid": call.sid})
                await leg.rtc.close()
    if winner is None:
        return status
    leg, audio = winner
    call.log("device_answered", identity=leg.identity)
    _attach(leg, audio)
    return IN_PROGRESS
