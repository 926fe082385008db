"""An API key made through the REST API signs AccessTokens the signaling accepts in `listen`,
until the key is deleted: then its tokens are refused as an unknown issuer (31204)."""

from __future__ import annotations

import ssl

import httpx
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
from tests.emulator.signaling.test_pstream import _receive, _send


@pytest.fixture
def emulator_with_signaling(tmp_path):
    credentials = Credentials.from_env({})
    switch = Switch(EmulatorConfig(credentials=credentials))
    cert, key = ensure_certificate(tmp_path, ["localhost"])
    port = _free_port()
    context = ssl.create_default_context(cafile=str(cert))
    with (
        serving(
            Serve(create_app(switch), lifespan="on"),
            Serve(create_signaling_app(switch), port, ssl=(cert, key)),
        ) as (rest_url, _),
        httpx.Client(
            base_url=f"{rest_url}/2010-04-01/Accounts/{credentials.account_sid}",
            auth=(credentials.account_sid, credentials.auth_token),
        ) as rest,
    ):

        def open_socket():
            return connect(f"wss://localhost:{port}/signal", ssl=context)

        yield open_socket, rest, credentials


def _listen(open_socket, token: str) -> dict:
    with open_socket() as ws:
        _send(ws, "listen", {"token": token, "browserinfo": {}})
        return _receive(ws)


def test_a_key_made_over_rest_signs_tokens_until_deleted(emulator_with_signaling):
    open_socket, rest, credentials = emulator_with_signaling
    made = rest.post("Keys.json", data={"FriendlyName": "phones"})
    assert made.status_code == 201, made.text
    sid, secret = made.json()["sid"], made.json()["secret"]
    token = AccessToken(credentials.account_sid, sid, secret, identity="alice")
    token.add_grant(VoiceGrant(incoming_allow=True))
    jwt = token.to_jwt()

    connected = _listen(open_socket, jwt)
    assert connected["type"] == "connected"
    assert connected["payload"]["token"]["identity"] == "alice"

    assert rest.delete(f"Keys/{sid}.json").status_code == 204
    refused = _listen(open_socket, jwt)
    assert refused["type"] == "error" and refused["payload"]["error"]["code"] == 31204
