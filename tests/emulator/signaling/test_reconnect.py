"""Signaling reconnect on the wire, with a plain WebSocket client standing in for the SDK: a
call outlives its socket for the `reconnectTimeout` the device asked for, the same identity
resumes it with the call's reconnect token, and nobody else can."""

import asyncio
import math
import ssl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlencode

import httpx
import pytest
from twilio.jwt.access_token import AccessToken
from twilio.jwt.access_token.grants import VoiceGrant
from websockets.sync.client import ClientConnection, connect

from dialtone.emulator.app import create_app
from dialtone.emulator.config import Credentials, EmulatorConfig
from dialtone.emulator.media import LegAudio, RtcLeg
from dialtone.emulator.signaling.reconnect import reconnect_timeout
from dialtone.emulator.signaling.server import create_signaling_app
from dialtone.emulator.switch import Switch
from dialtone.emulator.tls import ensure_certificate
from tests.conftest import Serve, _free_port, serving
from tests.emulator.signaling.test_pstream import _receive, _send

TWILIO_NUMBER = "+815031234567"
PHONE = "+819059876543"
FINAL = ("completed", "busy", "failed", "no-answer", "canceled")


class TlsEmulator:
    def __init__(self, switch, credentials, base_url, signal_port, context, application) -> None:
        self.switch = switch
        self.credentials = credentials
        self.http = httpx.Client(
            base_url=base_url, auth=(credentials.account_sid, credentials.auth_token), timeout=10
        )
        self.signal_port = signal_port
        self.context = context
        self.application = application

    def token(self, identity: str) -> str:
        creds = self.credentials
        token = AccessToken(
            creds.account_sid, creds.api_key, creds.api_secret, identity=identity, ttl=3600
        )
        token.add_grant(VoiceGrant(incoming_allow=True, outgoing_application_sid=self.application))
        return token.to_jwt()

    @contextmanager
    def device(self, identity: str = "alice", hold: object = 10) -> Iterator[ClientConnection]:
        """A socket that has sent `listen` (with `reconnectTimeout: hold`) and got `connected`."""
        with connect(f"wss://localhost:{self.signal_port}/signal", ssl=self.context) as ws:
            _send(ws, "listen", {"token": self.token(identity), "reconnectTimeout": hold})
            connected = _receive(ws)
            assert connected["type"] == "connected", connected
            yield ws

    def wait_event(self, sid: str, kind: str, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not any(e["kind"] == kind for e in self.switch.calls[sid].events):
            assert time.monotonic() < deadline, f"no {kind} event in {sid}"
            time.sleep(0.05)

    def call(self, sid: str) -> dict:
        api = f"/2010-04-01/Accounts/{self.credentials.account_sid}"
        return self.http.get(f"{api}/Calls/{sid}.json").json()

    def wait_status(self, sid: str, statuses=FINAL, timeout: float = 10.0) -> dict:
        deadline = time.monotonic() + timeout
        while (call := self.call(sid))["status"] not in statuses:
            assert time.monotonic() < deadline, f"call {sid} is {call['status']}"
            time.sleep(0.05)
        return call


@pytest.fixture
def tls_emulator(tmp_path, hooks):
    # Media on loopback: the test's own aiortc offers carry candidates, so no browser rules apply.
    credentials = Credentials.from_env({})
    switch = Switch(EmulatorConfig(credentials=credentials, media_address="127.0.0.1"))
    cert, key = ensure_certificate(tmp_path, ["localhost"])
    signal_port = _free_port()
    context = ssl.create_default_context(cafile=str(cert))
    with serving(
        Serve(create_app(switch), lifespan="on"),
        Serve(create_signaling_app(switch), signal_port, ssl=(cert, key)),
    ) as (base_url, _):
        api = f"/2010-04-01/Accounts/{credentials.account_sid}"
        with httpx.Client(
            base_url=base_url, auth=(credentials.account_sid, credentials.auth_token)
        ) as http:
            application = http.post(
                f"{api}/Applications.json",
                data={
                    "VoiceUrl": hooks.on(
                        "/outgoing", '<Response><Pause length="0"/><Pause length="60"/></Response>'
                    ),
                    "StatusCallback": hooks.url("/status"),
                },
            ).json()["sid"]
        device = TlsEmulator(switch, credentials, base_url, signal_port, context, application)
        yield device
        device.http.close()


def _offer() -> str:
    """An SDP offer as a device would make it (aiortc standing in for the browser)."""

    async def make() -> str:
        leg = RtcLeg(LegAudio("device"), "127.0.0.1")
        try:
            return await leg.create_offer()
        finally:
            await leg.close()

    return asyncio.run(make())


def _answer_to(offer: str) -> str:
    async def make() -> str:
        leg = RtcLeg(LegAudio("device"), "127.0.0.1")
        try:
            return await leg.accept_offer(offer)
        finally:
            await leg.close()

    return asyncio.run(make())


def _until(ws, kind: str) -> dict:
    while (message := _receive(ws))["type"] != kind:
        pass
    return message


def _place_call(ws) -> tuple[str, str]:
    """`device.connect()`: returns the CallSid and the reconnect token from `answer`."""
    params = urlencode({"To": PHONE})
    _send(ws, "invite", {"callsid": "TJS-1", "sdp": _offer(), "twilio": {"params": params}})
    ringing = _until(ws, "ringing")
    answer = _until(ws, "answer")["payload"]
    assert answer["callsid"] == ringing["payload"]["callsid"]
    assert answer["sdp"].startswith("v=0")
    assert isinstance(answer["reconnect"], str) and len(answer["reconnect"]) >= 24
    return answer["callsid"], answer["reconnect"]


def _reconnect(ws, callsid: str, token: str) -> dict:
    _send(ws, "invite", {"callsid": callsid, "reconnect": token, "sdp": _offer(), "twilio": {}})
    return _receive(ws)


def test_reconnect_timeout_is_what_the_sdk_may_ask_for():
    assert reconnect_timeout(20) == 20
    assert reconnect_timeout(2.5) == 2
    assert reconnect_timeout(45) == 30  # the SDK's own ceiling
    for bad in (None, -1, "10", True, math.nan, math.inf, [5]):
        assert reconnect_timeout(bad) == 0, bad


def test_a_call_survives_its_socket_dropping_and_is_resumed(tls_emulator, hooks):
    with tls_emulator.device(hold=10) as first:
        callsid, token = _place_call(first)
        tls_emulator.wait_status(callsid, ("in-progress",))
    tls_emulator.wait_event(callsid, "device_signaling_lost")
    time.sleep(1)
    assert tls_emulator.call(callsid)["status"] == "in-progress"  # held, not ended

    with tls_emulator.device() as second:
        answer = _reconnect(second, callsid, token)
        assert answer["type"] == "answer", answer
        assert answer["payload"]["callsid"] == callsid
        renewed = answer["payload"]["reconnect"]
        assert renewed and renewed != token  # a fresh token for the next drop
        assert "sdp" not in answer["payload"]  # the peer connection never changed
        # The old token was used up.
        stale = _reconnect(second, callsid, token)
        assert stale["type"] == "hangup" and stale["payload"]["error"]["code"] == 31107
        assert tls_emulator.call(callsid)["status"] == "in-progress"
        # The resumed socket carries the call: its hangup ends it.
        _send(second, "hangup", {"callsid": callsid})
        assert tls_emulator.wait_status(callsid)["status"] == "completed"

    events = tls_emulator.http.get(f"/emulator/calls/{callsid}/events").text
    assert "device_signaling_lost" in events and "device_reconnected" in events
    assert token not in events and renewed not in events  # tokens are credentials
    (status,) = hooks.wait("/status")
    assert status.form["CallStatus"] == "completed"


def test_foreign_and_forged_reconnect_tokens_are_refused(tls_emulator):
    with tls_emulator.device(hold=10) as first:
        callsid, token = _place_call(first)
        tls_emulator.wait_status(callsid, ("in-progress",))
    with tls_emulator.device("mallory") as stranger:
        refused = _reconnect(stranger, callsid, token)  # a stolen token, another identity
        assert refused["type"] == "hangup"
        assert refused["payload"] == {
            "callsid": callsid,
            "error": {"code": 31209, "message": "reconnect attempt is not authorized"},
        }
    with tls_emulator.device("alice") as forger:
        assert _reconnect(forger, callsid, token[:-4] + "AAAA")["payload"]["error"]["code"] == (
            31107
        )
        assert _reconnect(forger, callsid, "")["payload"]["error"]["code"] == 31107
        other = "CA" + "0" * 32  # the right token for the wrong call
        assert _reconnect(forger, other, token)["payload"]["error"]["code"] == 31107
    # None of it ended the call or spent the token.
    assert tls_emulator.call(callsid)["status"] == "in-progress"
    with tls_emulator.device("alice") as owner:
        assert _reconnect(owner, callsid, token)["type"] == "answer"
        _send(owner, "hangup", {"callsid": callsid})
        tls_emulator.wait_status(callsid)


def test_a_device_that_never_comes_back_ends_its_call_after_the_hold(tls_emulator, hooks):
    with tls_emulator.device(hold=2) as first:
        callsid, token = _place_call(first)
        tls_emulator.wait_status(callsid, ("in-progress",))
    dropped = time.monotonic()
    call = tls_emulator.wait_status(callsid, timeout=10)
    assert time.monotonic() - dropped >= 1.5  # held for the 2 s asked for, not ended at once
    assert call["status"] == "completed"
    (status,) = hooks.wait("/status")
    assert status.form["CallStatus"] == "completed" and status.form["CallSid"] == callsid
    kinds = [e["kind"] for e in tls_emulator.switch.calls[callsid].events]
    assert "device_reconnect_timeout" in kinds
    # Coming back too late: the call is over, and the SDK is told so without an error.
    with tls_emulator.device() as late:
        assert _reconnect(late, callsid, token) == {
            "type": "hangup",
            "version": "1.6",
            "payload": {"callsid": callsid},
        }


def test_without_a_reconnect_timeout_a_dropped_socket_ends_the_call(tls_emulator, hooks):
    with tls_emulator.device(hold=0) as first:  # the SDK's default: maxCallSignalingTimeoutMs 0
        callsid, _token = _place_call(first)
        tls_emulator.wait_status(callsid, ("in-progress",))
    assert tls_emulator.wait_status(callsid, timeout=5)["status"] == "completed"
    kinds = [e["kind"] for e in tls_emulator.switch.calls[callsid].events]
    assert "device_signaling_lost" not in kinds


def test_an_incoming_call_is_resumed_with_the_token_from_its_invite(tls_emulator, hooks):
    dial = "<Response><Dial><Client>alice</Client></Dial></Response>"
    tls_emulator.http.post(
        f"/2010-04-01/Accounts/{tls_emulator.credentials.account_sid}/IncomingPhoneNumbers.json",
        data={"PhoneNumber": TWILIO_NUMBER, "VoiceUrl": hooks.on("/incoming", dial)},
    )
    with tls_emulator.device(hold=10) as first:
        _send(first, "register", {"media": {"audio": True}})
        assert _receive(first)["type"] == "ready"
        placed = tls_emulator.http.post(
            "/emulator/calls",
            data={"From": PHONE, "To": TWILIO_NUMBER},
        )
        assert placed.status_code in (200, 201), placed.text
        invite = _until(first, "invite")["payload"]
        token = invite["reconnect"]
        assert isinstance(token, str) and token
        _send(first, "answer", {"callsid": invite["callsid"], "sdp": _answer_to(invite["sdp"])})
        child = tls_emulator.wait_status(invite["callsid"], ("in-progress",))
    tls_emulator.wait_event(child["sid"], "device_signaling_lost")
    assert tls_emulator.call(child["sid"])["status"] == "in-progress"
    with tls_emulator.device() as second:
        answer = _reconnect(second, child["sid"], token)
        assert answer["type"] == "answer" and answer["payload"]["callsid"] == child["sid"]
        # The caller hangs up: the hangup reaches the device on its new socket.
        tls_emulator.http.post(f"/emulator/calls/{placed.json()['sid']}/hangup")
        hangup = _until(second, "hangup")
        assert hangup["payload"] == {"callsid": child["sid"]}
    assert tls_emulator.wait_status(child["sid"])["status"] == "completed"


def test_a_reconnect_message_is_not_an_outgoing_call(tls_emulator):
    """A reconnect invite never falls through to a new call, whatever its token."""
    with tls_emulator.device() as ws:
        reply = _reconnect(ws, "TJS-2", "made-up")
        assert reply["type"] == "hangup" and reply["payload"]["error"]["code"] == 31107
    assert tls_emulator.switch.calls == {}


def test_a_hangup_queued_during_the_outage_ends_the_held_call(tls_emulator):
    """The SDK queues `hangup` while its socket is down and sends it on the new socket."""
    with tls_emulator.device(hold=10) as first:
        callsid, _token = _place_call(first)
        tls_emulator.wait_status(callsid, ("in-progress",))
    tls_emulator.wait_event(callsid, "device_signaling_lost")
    with tls_emulator.device("mallory") as stranger:
        _send(stranger, "hangup", {"callsid": callsid})
        time.sleep(0.5)
    assert tls_emulator.call(callsid)["status"] == "in-progress"  # not someone else's to end
    with tls_emulator.device() as second:
        _send(second, "hangup", {"callsid": callsid})
        assert tls_emulator.wait_status(callsid, timeout=5)["status"] == "completed"
