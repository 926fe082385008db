"""How calls ended, end to end over real HTTP: the emulator (with its signaling over TLS) asks
`dialtone`'s API server for TwiML, the server's <Dial action="dial_ended"> brings the dial's
outcome back, and the phone's recent calls (`GET /twilio/calls`) say it. A plain WebSocket
client stands in for the Voice SDK in the browser (no browser involved)."""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlencode

import httpx
import pytest
from twilio.jwt.access_token import AccessToken
from twilio.jwt.access_token.grants import VoiceGrant
from websockets.sync.client import ClientConnection, connect

from dialtone.emulator.app import create_app as create_emulator
from dialtone.emulator.config import Credentials, EmulatorConfig
from dialtone.emulator.signaling.server import create_signaling_app
from dialtone.emulator.switch import Switch
from dialtone.emulator.tls import ensure_certificate
from dialtone.server.app import create_app as create_server
from dialtone.server.config import Settings
from dialtone.server.db import Database
from dialtone.server.registry import LineRegistry
from tests.conftest import Serve, _free_port, serving
from tests.emulator.signaling.test_pstream import _receive, _send
from tests.emulator.signaling.test_reconnect import _offer, _until

LINE = "+815031234567"
CLIENT = "DeviceId_0001"
PASSWORD = "a line password"
CALLER = "+819059876543"
BUSY_PHONE = "+819011112222"
FINAL = ("completed", "busy", "failed", "no-answer", "canceled")


@dataclass
class System:
    switch: Switch
    credentials: Credentials
    application: str
    emulator: httpx.Client  # the emulator's REST API and /emulator controls
    server: httpx.Client  # the API server, as the phone calls it
    signal_port: int
    context: ssl.SSLContext

    @contextmanager
    def device(self) -> Iterator[ClientConnection]:
        """The line's browser phone, registered for incoming calls."""
        creds = self.credentials
        token = AccessToken(
            creds.account_sid, creds.api_key, creds.api_secret, identity=CLIENT, ttl=3600
        )
        token.add_grant(VoiceGrant(incoming_allow=True, outgoing_application_sid=self.application))
        with connect(f"wss://localhost:{self.signal_port}/signal", ssl=self.context) as ws:
            _send(ws, "listen", {"token": token.to_jwt()})
            assert _receive(ws)["type"] == "connected"
            _send(ws, "register", {"media": {"audio": True}})
            assert _receive(ws)["type"] == "ready"
            yield ws

    def call_status(self, sid: str) -> str:
        api = f"/2010-04-01/Accounts/{self.credentials.account_sid}"
        return self.emulator.get(f"{api}/Calls/{sid}.json").json()["status"]

    def wait_ended(self, sid: str, timeout: float = 15.0) -> str:
        deadline = time.monotonic() + timeout
        while (status := self.call_status(sid)) not in FINAL:
            assert time.monotonic() < deadline, f"call {sid} is still {status}"
            time.sleep(0.05)
        return status

    def recent_call(self, sid: str, timeout: float = 10.0) -> dict:
        """The phone's entry for `sid` once the call is over (its history settled)."""
        token = self.server.post(
            "/twilio/retrieve_capability_token",
            json={"twilioPhoneNumber": LINE, "password": PASSWORD},
        ).json()["accessToken"]
        deadline = time.monotonic() + timeout
        while True:
            response = self.server.get(
                "/twilio/calls", headers={"Authorization": f"Bearer {token}"}
            )
            assert response.status_code == 200, response.text
            entry = next((c for c in response.json()["calls"] if c["callSid"] == sid), None)
            if entry is not None and entry["outcome"] not in (None, "ongoing"):
                return entry
            assert time.monotonic() < deadline, f"no outcome for {sid}: {entry}"
            time.sleep(0.05)


@pytest.fixture
def system(tmp_path) -> Iterator[System]:
    credentials = Credentials.from_env({})
    # Media on loopback: the test's own aiortc offers carry candidates.
    switch = Switch(EmulatorConfig(credentials=credentials, media_address="127.0.0.1"))
    cert, key = ensure_certificate(tmp_path, ["localhost"])
    signal_port, server_port = _free_port(), _free_port()
    server_url = f"http://127.0.0.1:{server_port}"
    db = Database(f"sqlite:///{tmp_path / 'server.db'}")
    db.upgrade()
    LineRegistry(db, "JP").add(LINE, CLIENT, PASSWORD)
    with (
        serving(
            Serve(create_emulator(switch), lifespan="on"),
            Serve(create_signaling_app(switch), signal_port, ssl=(cert, key)),
        ) as (emulator_url, _),
        httpx.Client(
            base_url=emulator_url, auth=(credentials.account_sid, credentials.auth_token)
        ) as emulator,
    ):
        api = f"/2010-04-01/Accounts/{credentials.account_sid}"
        application = emulator.post(
            f"{api}/Applications.json",
            data={
                "VoiceUrl": f"{server_url}/twilio/retrieve_twiml/call_outgoing",
                "StatusCallback": f"{server_url}/twilio/status_callback",
            },
        ).json()["sid"]
        number = emulator.post(
            f"{api}/IncomingPhoneNumbers.json",
            data={
                "PhoneNumber": LINE,
                "VoiceUrl": f"{server_url}/twilio/retrieve_twiml/call_incoming",
                "StatusCallback": f"{server_url}/twilio/status_callback",
            },
        )
        assert number.status_code == 201, number.text
        settings = Settings(
            account_sid=credentials.account_sid,
            auth_token=credentials.auth_token,
            api_key=credentials.api_key,
            api_secret=credentials.api_secret,
            twiml_app_sid=application,
            public_url=server_url,
            database_url=db.url,
            default_region="JP",
        )
        with (
            serving(Serve(create_server(settings, db), server_port)),
            httpx.Client(base_url=server_url, timeout=10) as server,
        ):
            yield System(
                switch,
                credentials,
                application,
                emulator,
                server,
                signal_port,
                ssl.create_default_context(cafile=str(cert)),
            )
    db.dispose()


def _dial_action(system: System, sid: str) -> dict:
    (action,) = [
        e
        for e in system.switch.calls[sid].events
        if e["kind"] == "webhook" and e["purpose"] == "dial_action"
    ]
    return action


def test_an_incoming_call_the_phone_declines_reads_declined(system):
    with system.device() as ws:
        placed = system.emulator.post("/emulator/calls", data={"From": CALLER, "To": LINE})
        assert placed.status_code == 201, placed.text
        invite = _until(ws, "invite")["payload"]
        _send(ws, "reject", {"callsid": invite["callsid"]})  # the SDK's call.reject()
        assert system.wait_ended(invite["callsid"]) == "busy"
        parent = placed.json()["sid"]
        # The parent leg was answered by the <Dial>: it alone cannot tell a decline.
        assert system.wait_ended(parent) == "completed"
    action = _dial_action(system, parent)
    assert action["status"] == 200
    assert action["parameters"]["DialCallStatus"] == "busy"
    entry = system.recent_call(parent)
    assert (entry["direction"], entry["number"]) == ("incoming", CALLER)
    assert (entry["outcome"], entry["dialStatus"]) == ("declined", "busy")


def test_an_outgoing_call_to_a_busy_phone_reads_busy(system):
    put = system.emulator.put(f"/emulator/phones/{BUSY_PHONE}", json={"mode": "busy"})
    assert put.status_code == 200, put.text
    with system.device() as ws:
        params = urlencode({"To": "090-1111-2222"})
        _send(ws, "invite", {"callsid": "TJS-1", "sdp": _offer(), "twilio": {"params": params}})
        sid = _until(ws, "ringing")["payload"]["callsid"]
        # answerOnBridge: the browser's leg was never answered; its own status says no-answer.
        assert _until(ws, "hangup")["payload"]["callsid"] == sid
        assert system.wait_ended(sid) == "no-answer"
    assert _dial_action(system, sid)["parameters"]["DialCallStatus"] == "busy"
    entry = system.recent_call(sid)
    assert (entry["direction"], entry["number"]) == ("outgoing", BUSY_PHONE)
    assert (entry["outcome"], entry["dialStatus"]) == ("busy", "busy")
