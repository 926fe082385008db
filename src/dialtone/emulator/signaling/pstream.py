"""One Voice SDK connection: the PStream protocol over a WebSocket (reference §3–§8).

Envelope `{"type", "version", "payload"}`; a bare "\\n" text frame is a heartbeat both ways.
The device sends listen (token), register, invite, answer, reject, hangup, dtmf, message;
we send connected, ready, offline, ringing, answer, invite, cancel, hangup, ack, error.
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

if TYPE_CHECKING:
    from dialtone.emulator.call import Call
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
        self.calls: dict[str, Call] = {}  # CA sid → call leg this device is the far end of
        self.aliases: dict[str, str] = {}  # the SDK's temporary TJS… id → CA sid
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
        call = self.calls.get(self.aliases.get(callsid, callsid)) or self.switch.calls.get(callsid)
        if call is not None:
            # SDP and tokens are long and not what a reader of the diagram needs.
            call.log(
                "signal",
                way=way,
                type=kind,
                identity=self.identity,
                **{k: v for k, v in payload.items() if k not in ("sdp", "token")},
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
        # A lost socket ends the device's calls (no signaling reconnect is offered).
        for call in list(self.calls.values()):
            self.switch.far_end_hangup(call)
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
        if payload.get("reconnect"):
            # Signaling reconnect is not offered (no `reconnect` token is ever sent).
            await self.send(
                "hangup", {"callsid": callsid, "error": {"code": 31005, "message": "cannot resume"}}
            )
            return
        if phone_number(self.identity):
            from dialtone.emulator.signaling.legs import start_phone_call

            twilio = payload.get("twilio") or {}
            params = dict(parse_qsl(str(twilio.get("params", "")), keep_blank_values=True))
            call = await start_phone_call(self, callsid, str(payload.get("sdp", "")), params)
            if call is not None:
                self.aliases[callsid] = call.sid
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
        if call is None:
            return
        self.calls[call.sid] = call
        self.aliases[callsid] = call.sid

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
        return self.calls.get(self.aliases.get(callsid, callsid))

    async def on_hangup(self, payload: dict[str, Any]) -> None:
        call = self._call(payload)
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
