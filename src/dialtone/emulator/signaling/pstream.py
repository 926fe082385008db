"""One Voice SDK connection: the PStream protocol over a WebSocket (reference §3–§8).

Envelope `{"type", "version", "payload"}`; a bare "\\n" text frame is a heartbeat both ways.
The device sends listen (token), register, invite, answer, reject, hangup, dtmf, message;
we send connected, ready, offline, ringing, answer, invite, cancel, hangup, ack, error.
A call outlives a dropped socket and resumes on a new one: see `reconnect`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from starlette.websockets import WebSocket, WebSocketDisconnect

from dialtone import logs
from dialtone.emulator.client_tokens import ClientGrant, TokenError, verify
from dialtone.emulator.signaling.devices import phone_number
from dialtone.emulator.signaling.reconnect import ReconnectRefused, reconnect_timeout

if TYPE_CHECKING:
    from dialtone.emulator.call import Call
    from dialtone.emulator.signaling.reconnect import DeviceLeg
    from dialtone.emulator.switch import Switch

log = logging.getLogger("dialtone.emulator.signaling")

VERSIONS = ("1.5", "1.6")
HEARTBEAT = 5.0  # the SDK closes the socket after 15 s without a frame
REGION = "emulator"


class SignalingSession:
    def __init__(self, websocket: WebSocket, switch: Switch) -> None:
        self.websocket = websocket
        self.switch = switch
        self.grant: ClientGrant | None = None
        self.registered = False
        self.version = "1.6"
        self.legs: dict[str, DeviceLeg] = {}  # CA sid → the calls this device is the far end of
        # How long this device's calls outlive its socket (`listen.reconnectTimeout`, seconds).
        self.reconnect_timeout = 0
        self.aliases: dict[str, str] = {}  # the SDK's temporary TJS… id → CA sid, while up
        self.pending: dict[str, asyncio.Future[dict[str, Any] | None]] = {}  # incoming invites
        self._expiry: asyncio.TimerHandle | None = None
        self._closed = False

    @property
    def identity(self) -> str | None:
        return self.grant.identity if self.grant else None

    # -- transport ----------------------------------------------------------------------

    async def send(self, kind: str, payload: dict[str, Any] | None = None) -> None:
        if self._closed:
            return
        message = {"type": kind, "version": self.version, "payload": payload or {}}
        self._trace("to-device", kind, message["payload"])
        with contextlib.suppress(Exception):  # a socket closing under us ends the session anyway
            await self.websocket.send_text(json.dumps(message))

    def _trace(self, way: str, kind: str, payload: dict[str, Any]) -> None:
        """Signaling about a call goes into that call's event log (the sequence diagram)."""
        callsid = str(payload.get("callsid", ""))
        call = self._call(payload) or self.switch.calls.get(callsid)
        if call is not None:
            # SDP is long and not what a reader of the diagram needs; tokens are credentials.
            call.log(
                "signal",
                way=way,
                type=kind,
                identity=self.identity,
                **{k: v for k, v in payload.items() if k not in ("sdp", "token", "reconnect")},
                **({"reconnect": "…"} if "reconnect" in payload else {}),
            )

    async def run(self) -> None:
        await self.websocket.accept()
        heartbeat = asyncio.create_task(self._heartbeat())
        try:
            while True:
                text = await self.websocket.receive_text()
                if not text.strip():
                    continue  # the SDK echoes our "\n" heartbeats
                try:
                    message = json.loads(text)
                    kind, payload = message["type"], message.get("payload") or {}
                except (ValueError, KeyError, TypeError):
                    await self.send(
                        "error", {"error": {"code": 31000, "message": "malformed message"}}
                    )
                    continue
                if str(message.get("version", "1.6")) in VERSIONS:
                    self.version = str(message.get("version", "1.6"))
                if isinstance(payload, dict):
                    self._trace("from-device", str(kind), payload)
                handler = getattr(self, f"on_{kind}", None)
                if handler is None:
                    logs.event(
                        log, "signal_unknown_message", level=logging.WARNING, type=str(kind)[:40]
                    )
                    continue
                try:
                    await handler(payload)
                except Exception as exc:  # one bad message must not end the device's session
                    logs.event(
                        log,
                        "signal_handler_failed",
                        level=logging.ERROR,
                        type=str(kind)[:40],
                        error=type(exc).__name__,
                    )
                    await self.send(
                        "error", {"error": {"code": 31000, "message": "internal error"}}
                    )
        except WebSocketDisconnect:
            pass
        finally:
            heartbeat.cancel()
            await self.close()

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT)
            try:
                await self.websocket.send_text("\n")
            except Exception:
                return

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._expiry:
            self._expiry.cancel()
        self._unregister()
        for future in self.pending.values():
            if not future.done():
                future.set_result(None)
        # A lost socket ends the device's calls, unless the device asked for them to be held
        # (`reconnectTimeout`) and holds their reconnect tokens: then it may come back.
        reconnects = self.switch.devices.reconnects
        for leg in list(self.legs.values()):
            del self.legs[leg.call.sid]
            if self.reconnect_timeout > 0 and leg.token is not None:
                reconnects.hold(leg, self.reconnect_timeout)
            else:
                self.switch.far_end_hangup(leg.call)
        logs.event(log, "signal_closed", identity=self.identity)

    # -- device messages ----------------------------------------------------------------

    async def on_listen(self, payload: dict[str, Any]) -> None:
        """A token, on every socket open and on every `updateToken()`."""
        try:
            grant = verify(
                str(payload.get("token", "")),
                self.switch.credentials,
                api_secret_of=self.switch.api_secret_of,
            )
        except TokenError as exc:
            logs.event(log, "signal_token_refused", level=logging.WARNING, code=exc.code)
            await self.send("error", {"error": {"code": exc.code, "message": exc.message}})
            return
        if self.grant and self.registered and grant.identity != self.grant.identity:
            self._unregister()
        self.grant = grant
        self.reconnect_timeout = reconnect_timeout(payload.get("reconnectTimeout"))
        ttl = grant.ttl(time.time())
        if self._expiry:
            self._expiry.cancel()
        self._expiry = asyncio.get_running_loop().call_later(
            ttl, lambda: asyncio.ensure_future(self._expired())
        )
        await self.send(
            "connected",
            {
                "token": {"identity": grant.identity, "ttl": ttl},
                "region": REGION,
                "edge": REGION,
                "home": "",
                "gateway": REGION,
            },
        )
        logs.event(log, "signal_connected", identity=grant.identity, kind=grant.kind, ttl=ttl)

    async def _expired(self) -> None:
        self._unregister()
        self.grant = None
        await self.send("error", {"error": {"code": 31205, "message": "JWT token expired"}})

    async def on_register(self, payload: dict[str, Any]) -> None:
        wants_audio = bool((payload.get("media") or {}).get("audio"))
        if not wants_audio:
            self._unregister()
            await self.send("offline", {})
            return
        if self.grant is None:
            await self.send(
                "error", {"error": {"code": 31204, "message": "register before listen"}}
            )
            return
        if not self.grant.incoming or not self.grant.identity:
            await self.send(
                "error",
                {"error": {"code": 31201, "message": "the token does not allow incoming calls"}},
            )
            return
        if not self.registered:
            self.switch.devices.register(self.grant.identity, self)
            self.registered = True
            logs.event(log, "signal_registered", identity=self.grant.identity)
        await self.send("ready", {})

    def _unregister(self) -> None:
        if self.registered and self.grant and self.grant.identity:
            self.switch.devices.unregister(self.grant.identity, self)
            logs.event(log, "signal_unregistered", identity=self.grant.identity)
        self.registered = False

    async def on_invite(self, payload: dict[str, Any]) -> None:
        """An outgoing call from the device (`device.connect()`)."""
        from dialtone.emulator.signaling.legs import start_outgoing

        callsid = str(payload.get("callsid", ""))
        if "reconnect" in payload:
            await self._resume(callsid, str(payload.get("reconnect") or ""))
            return
        if phone_number(self.identity):
            from dialtone.emulator.signaling.legs import start_phone_call

            twilio = payload.get("twilio") or {}
            params = dict(parse_qsl(str(twilio.get("params", "")), keep_blank_values=True))
            call = await start_phone_call(self, callsid, str(payload.get("sdp", "")), params)
            self._alias(callsid, call)
            return
        if self.grant is None or not self.grant.outgoing_application_sid:
            await self.send(
                "hangup",
                {
                    "callsid": callsid,
                    "error": {"code": 31201, "message": "the token does not allow outgoing calls"},
                },
            )
            return
        params = dict(self.grant.outgoing_params)
        twilio = payload.get("twilio") or {}
        params.update(parse_qsl(str(twilio.get("params", "")), keep_blank_values=True))
        call = await start_outgoing(self, callsid, str(payload.get("sdp", "")), params)
        self._alias(callsid, call)

    def _alias(self, temporary_sid: str, call: Call | None) -> None:
        """The SDK may name its outgoing call by its temporary id: map it while the call is up
        on this socket (`unalias` drops it when the call ends)."""
        if call is not None and self.legs.get(call.sid) is not None:
            self.aliases[temporary_sid] = call.sid

    def unalias(self, call_sid: str) -> None:
        for temporary_sid in [t for t, sid in self.aliases.items() if sid == call_sid]:
            del self.aliases[temporary_sid]

    async def _resume(self, callsid: str, token: str) -> None:
        """`invite {callsid, reconnect}` on a new socket: take over a call whose socket dropped
        (or is about to be noticed as dropped). The SDK waits for `answer`, and keeps the new
        token for the next drop; the peer connection is untouched, so no SDP is exchanged."""
        reconnects = self.switch.devices.reconnects
        try:
            leg = reconnects.claim(token, callsid, self.identity)
        except ReconnectRefused as exc:
            logs.event(
                log,
                "signal_reconnect_refused",
                level=logging.WARNING,
                code=exc.code,
                identity=self.identity,
            )
            await self.send(
                "hangup", {"callsid": callsid, "error": {"code": exc.code, "message": exc.message}}
            )
            return
        if leg.ended or leg.call.ended:
            await self.send("hangup", {"callsid": callsid})  # it ended while the device was away
            return
        reconnects.resume(leg, self)
        await self.send("answer", {"callsid": callsid, "reconnect": reconnects.issue(leg)})

    async def on_answer(self, payload: dict[str, Any]) -> None:
        future = self.pending.get(str(payload.get("callsid", "")))
        if future is not None and not future.done():
            future.set_result({"answer": str(payload.get("sdp", ""))})

    async def on_reject(self, payload: dict[str, Any]) -> None:
        future = self.pending.get(str(payload.get("callsid", "")))
        if future is not None and not future.done():
            future.set_result({"reject": True})

    def _call(self, payload: dict[str, Any]) -> Call | None:
        callsid = str(payload.get("callsid", ""))
        leg = self.legs.get(self.aliases.get(callsid, callsid))
        return leg.call if leg is not None else None

    async def on_hangup(self, payload: dict[str, Any]) -> None:
        call = self._call(payload)
        if call is None:
            # Hung up while the socket was down: the SDK queues the hangup and sends it on its
            # new socket without resuming the call first.
            leg = self.switch.devices.reconnects.held(
                str(payload.get("callsid", "")), self.identity
            )
            call = leg.call if leg is not None else None
        if call is not None:
            self.switch.far_end_hangup(call)

    async def on_dtmf(self, payload: dict[str, Any]) -> None:
        call = self._call(payload)
        if call is None:
            return
        for digit in str(payload.get("dtmf", "")):
            if digit in "0123456789*#ABCD":
                call.log("dtmf", digit=digit, source="device")
                call.dtmf.put_nowait(digit)

    async def on_message(self, payload: dict[str, Any]) -> None:
        call = self._call(payload)
        if call is not None:
            call.log(
                "user_message",
                content=payload.get("content"),
                contenttype=payload.get("contenttype"),
            )
        await self.send(
            "ack",
            {
                "acktype": "message",
                "callsid": payload.get("callsid"),
                "voiceeventsid": payload.get("voiceeventsid"),
            },
        )

    async def on_reinvite(self, payload: dict[str, Any]) -> None:
        # aiortc has no ICE restart: end the call rather than leave it silent.
        call = self._call(payload)
        if call is not None:
            self.switch.far_end_hangup(call)
