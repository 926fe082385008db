"""A device's signaling session holds nothing per call once the call is over: a socket left
open for days, placing call after call, does not grow."""

from urllib.parse import urlencode

from tests.emulator.signaling.test_pstream import _send
from tests.emulator.signaling.test_reconnect import (  # noqa: F401 (a fixture)
    PHONE,
    _offer,
    _until,
    tls_emulator,
)


def test_outgoing_calls_over_one_socket_leave_no_aliases(tls_emulator):  # noqa: F811
    with tls_emulator.device(hold=0) as ws:
        _send(ws, "register", {"media": {"audio": True}})
        assert _until(ws, "ready")["type"] == "ready"
        (session,) = tls_emulator.switch.devices.devices("alice")
        for n in range(5):
            temporary = f"TJS-{n}"
            params = urlencode({"To": PHONE})
            _send(
                ws, "invite", {"callsid": temporary, "sdp": _offer(), "twilio": {"params": params}}
            )
            callsid = _until(ws, "ringing")["payload"]["callsid"]
            _until(ws, "answer")
            assert session.aliases == {temporary: callsid}  # the SDK may use either name
            # Hung up by its temporary name: the alias works while the call is up.
            _send(ws, "hangup", {"callsid": temporary})
            assert tls_emulator.wait_status(callsid)["status"] == "completed"
            _until(ws, "hangup")
            assert session.aliases == {}
            assert session.legs == {}
