"""The signaling protocol on the wire, with a plain WebSocket client: envelope, versions 1.5
and 1.6, heartbeats, token checks, register/unregister, expiry during a session."""

import json
import ssl
import time

import pytest
from twilio.jwt.access_token import AccessToken
from twilio.jwt.access_token.grants import VoiceGrant
from websockets.sync.client import connect

from dialtone.emulator.app import create_app
from dialtone.emulator.config import Credentials, EmulatorConfig
from dialtone.emulator.signaling.server import create_signaling_app
from dialtone.emulator.switch import Switch
from dialtone.emulator.tls import ensure_certificate
from tests.conftest import Serve, _free_port, serving


@pytest.fixture
def signal(tmp_path):
    credentials = Credentials.from_env({})
    switch = Switch(EmulatorConfig(credentials=credentials))
    cert, key = ensure_certificate(tmp_path, ["localhost"])
    port = _free_port()
    context = ssl.create_default_context(cafile=str(cert))
    with serving(
        Serve(create_app(switch), lifespan="on"),
        Serve(create_signaling_app(switch), port, ssl=(cert, key)),
    ):

        def open_socket():
            return connect(f"wss://localhost:{port}/signal", ssl=context)

        yield open_socket, switch, credentials


def _token(credentials, identity="alice", ttl=3600):
    token = AccessToken(
        credentials.account_sid,
        credentials.api_key,
        credentials.api_secret,
        identity=identity,
        ttl=ttl,
    )
    token.add_grant(VoiceGrant(incoming_allow=True))
    return token.to_jwt()


def _send(ws, kind, payload, version="1.6"):
    ws.send(json.dumps({"type": kind, "version": version, "payload": payload}))


def _receive(ws, timeout=5):
    """The next JSON message, skipping "\\n" heartbeats."""
    deadline = time.monotonic() + timeout
    while True:
        text = ws.recv(timeout=max(0.01, deadline - time.monotonic()))
        if text.strip():
            return json.loads(text)


@pytest.mark.parametrize("version", ["1.5", "1.6"])
def test_listen_and_register(signal, version):
    open_socket, switch, credentials = signal
    with open_socket() as ws:
        _send(ws, "listen", {"token": _token(credentials), "browserinfo": {}}, version)
        connected = _receive(ws)
        assert connected["type"] == "connected" and connected["version"] == version
        assert connected["payload"]["token"]["identity"] == "alice"
        assert 3590 <= connected["payload"]["token"]["ttl"] <= 3600
        _send(ws, "register", {"media": {"audio": True}}, version)
        assert _receive(ws)["type"] == "ready"
        assert switch.devices.identities() == {"alice": 1}
        _send(ws, "register", {"media": {"audio": False}}, version)
        assert _receive(ws)["type"] == "offline"
        assert switch.devices.identities() == {}


def test_heartbeats_flow_and_echoes_are_ignored(signal):
    open_socket, _, credentials = signal
    with open_socket() as ws:
        ws.send("\n")  # the SDK echoes our heartbeats
        _send(ws, "listen", {"token": _token(credentials)})
        assert _receive(ws)["type"] == "connected"
        assert ws.recv(timeout=8) == "\n"  # every 5 s


def test_garbage_and_unknown_messages(signal):
    open_socket, _, _credentials = signal
    with open_socket() as ws:
        ws.send("{not json")
        error = _receive(ws)
        assert error["type"] == "error" and error["payload"]["error"]["code"] == 31000
        _send(ws, "no-such-type", {})
        _send(ws, "register", {"media": {"audio": True}})  # before listen
        assert _receive(ws)["payload"]["error"]["code"] == 31204


def test_a_token_expiring_during_the_session_unregisters(signal):
    open_socket, switch, credentials = signal
    with open_socket() as ws:
        _send(ws, "listen", {"token": _token(credentials, ttl=2)})
        assert _receive(ws)["type"] == "connected"
        _send(ws, "register", {"media": {"audio": True}})
        assert _receive(ws)["type"] == "ready"
        error = _receive(ws, timeout=5)
        assert error["type"] == "error" and error["payload"]["error"]["code"] == 31205
        assert switch.devices.identities() == {}


def test_closing_the_socket_unregisters(signal):
    open_socket, switch, credentials = signal
    with open_socket() as ws:
        _send(ws, "listen", {"token": _token(credentials)})
        _receive(ws)
        _send(ws, "register", {"media": {"audio": True}})
        _receive(ws)
    deadline = time.monotonic() + 5
    while switch.devices.identities() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert switch.devices.identities() == {}


def test_an_invite_without_an_outgoing_grant_is_hung_up(signal):
    open_socket, _, credentials = signal
    with open_socket() as ws:
        _send(ws, "listen", {"token": _token(credentials)})
        _receive(ws)
        _send(ws, "invite", {"callsid": "TJSabc", "sdp": "v=0", "twilio": {}})
        hangup = _receive(ws)
        assert hangup["type"] == "hangup" and hangup["payload"]["callsid"] == "TJSabc"
        assert hangup["payload"]["error"]["code"] == 31201
