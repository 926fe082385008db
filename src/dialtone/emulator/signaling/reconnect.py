"""Signaling reconnect (reference §7): a call survives its device's WebSocket dropping.

Every call a device takes part in gets a `reconnect` token (in `answer` for outgoing calls, in
`invite` for incoming ones). When the socket drops, the call is held for the `reconnectTimeout`
the device announced in `listen` (the SDK's `maxCallSignalingTimeoutMs`, opt-in, at most 30 s;
0 ends the call at once, as Twilio does). A new socket of the same identity presents the token
in `invite {callsid, reconnect}` and gets `answer {callsid, reconnect: <new token>}`; the
peer connection never depended on the socket, so audio carries on. Past the hold, the call
ends as if the device had hung up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dialtone import logs

if TYPE_CHECKING:
    from dialtone.emulator.call import Call
    from dialtone.emulator.media import RtcLeg
    from dialtone.emulator.signaling.pstream import SignalingSession

log = logging.getLogger("dialtone.emulator.signaling")

# The SDK never asks for more (pstream.ts MAX_RECONNECT_TIMEOUT_ALLOWED).
MAX_RECONNECT_TIMEOUT = 30
# An ended call's token still answers a late reconnect with a plain `hangup` this long, so the
# SDK's call disconnects cleanly instead of erroring; then the token is forgotten.
ENDED_MEMORY = 30.0

# Twilio's error codes for a refused reconnect (the SDK's MalformedRequestErrors and
# AuthorizationErrors).
RECONNECT_PARAMETER_INVALID = 31107
RECONNECT_NOT_AUTHORIZED = 31209


def reconnect_timeout(value: object) -> int:
    """The hold in whole seconds a `listen` asks for: 0 to 30, anything else counts as 0."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return 0
    return int(min(max(value, 0), MAX_RECONNECT_TIMEOUT))


class ReconnectRefused(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(eq=False)
class DeviceLeg:
    """The device side of a call: the session carrying its signaling now, its peer connection,
    and the reconnect token the device holds (None until it has been given one)."""

    call: Call
    session: SignalingSession
    rtc: RtcLeg
    identity: str | None
    token: str | None = None
    hold: asyncio.TimerHandle | None = None  # while the device is away: when the call ends
    ended: bool = False

    @property
    def held(self) -> bool:
        return self.hold is not None


class Reconnects:
    """Reconnect tokens of live (and just-ended) device legs."""

    def __init__(self) -> None:
        self._legs: dict[str, DeviceLeg] = {}

    def __len__(self) -> int:
        return len(self._legs)

    def issue(self, leg: DeviceLeg) -> str:
        """A fresh token for `leg`; the one it replaces stops working."""
        if leg.token is not None:
            self._legs.pop(leg.token, None)
        leg.token = secrets.token_urlsafe(24)
        self._legs[leg.token] = leg
        return leg.token

    def forget(self, leg: DeviceLeg) -> None:
        if leg.token is not None and self._legs.get(leg.token) is leg:
            del self._legs[leg.token]

    def claim(self, token: str, callsid: str, identity: str | None) -> DeviceLeg:
        """The leg `token` resumes, for a device of `identity`; ReconnectRefused otherwise.
        A refused attempt changes nothing: the rightful device can still come back."""
        leg = self._legs.get(token) if token else None
        if leg is None or leg.call.sid != callsid:
            raise ReconnectRefused(RECONNECT_PARAMETER_INVALID, "unknown reconnect token")
        if identity is None or identity != leg.identity:
            raise ReconnectRefused(RECONNECT_NOT_AUTHORIZED, "reconnect attempt is not authorized")
        return leg

    def held(self, callsid: str, identity: str | None) -> DeviceLeg | None:
        """The held leg of call `callsid` if it belongs to `identity`."""
        for leg in self._legs.values():
            if leg.held and leg.call.sid == callsid and identity and leg.identity == identity:
                return leg
        return None

    def hold(self, leg: DeviceLeg, seconds: float) -> None:
        """The device's socket dropped: end the call unless it comes back within `seconds`."""
        call = leg.call

        def expire() -> None:
            leg.hold = None
            call.log("device_reconnect_timeout", identity=leg.identity, seconds=seconds)
            logs.event(log, "signal_hold_expired", call_sid=call.sid, identity=leg.identity)
            call.switch.far_end_hangup(call)

        leg.hold = asyncio.get_running_loop().call_later(seconds, expire)
        call.log("device_signaling_lost", identity=leg.identity, hold_seconds=seconds)
        logs.event(log, "signal_call_held", call_sid=call.sid, identity=leg.identity, hold=seconds)

    def resume(self, leg: DeviceLeg, session: SignalingSession) -> None:
        """`session` carries the leg's signaling from now on."""
        if leg.hold is not None:
            leg.hold.cancel()
            leg.hold = None
        if leg.session is not session:
            leg.session.legs.pop(leg.call.sid, None)
        leg.session = session
        session.legs[leg.call.sid] = leg
        leg.call.log("device_reconnected", identity=leg.identity)
        logs.event(log, "signal_call_resumed", call_sid=leg.call.sid, identity=leg.identity)

    def ended(self, leg: DeviceLeg) -> None:
        """The call is over: its token answers a late reconnect for a while, then goes."""
        leg.ended = True
        if leg.hold is not None:
            leg.hold.cancel()
            leg.hold = None
        loop: asyncio.AbstractEventLoop | None = None
        with contextlib.suppress(RuntimeError):
            loop = asyncio.get_running_loop()
        if loop is None:
            self.forget(leg)
        else:
            loop.call_later(ENDED_MEMORY, self.forget, leg)
