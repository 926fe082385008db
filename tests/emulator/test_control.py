"""The /emulator/ control API: simulated phones, keys, hang-ups, event log and live stream."""

import json
import threading

from tests.emulator.conftest import EXTERNAL_NUMBER, TWILIO_NUMBER


def test_placing_a_call_needs_valid_numbers_and_one_of_ours(emulator):
    emulator.add_number()
    bad = emulator.http.post("/emulator/calls", data={"From": "nope", "To": TWILIO_NUMBER})
    assert bad.status_code == 400 and "From" in bad.json()["message"]
    unknown = emulator.http.post(
        "/emulator/calls", data={"From": EXTERNAL_NUMBER, "To": "+815099990000"}
    )
    assert unknown.status_code == 404 and "+815099990000" in unknown.json()["message"]
    as_json = emulator.http.post(
        "/emulator/calls", json={"From": "090-5987-6543", "To": TWILIO_NUMBER}
    )
    assert as_json.status_code == 400  # national format without a region is ambiguous
    ok = emulator.http.post(
        "/emulator/calls", json={"From": "+81 90 5987 6543", "To": "+81-50-3123-4567"}
    )
    assert ok.status_code == 201
    assert ok.json()["direction"] == "inbound" and ok.json()["from"] == EXTERNAL_NUMBER


def test_phone_behaviours_are_validated_listed_and_removed(emulator):
    put = emulator.http.put(f"/emulator/phones/{EXTERNAL_NUMBER}", json={"mode": "busy"})
    assert put.status_code == 200 and put.json()["mode"] == "busy"
    for bad in ({"mode": "explode"}, {"answer_after": -1}, {"digits": "12x"}, {"colour": "red"}):
        response = emulator.http.put(f"/emulator/phones/{EXTERNAL_NUMBER}", json=bad)
        assert response.status_code == 400, bad
        assert response.json()["message"]
    client = emulator.http.put("/emulator/phones/client:alice", json={"answer_after": 2})
    assert client.status_code == 200
    listed = emulator.http.get("/emulator/phones").json()["phones"]
    assert {p["address"] for p in listed} == {EXTERNAL_NUMBER, "client:alice"}
    assert emulator.http.delete(f"/emulator/phones/{EXTERNAL_NUMBER}").status_code == 204
    assert emulator.http.delete(f"/emulator/phones/{EXTERNAL_NUMBER}").status_code == 404


def test_caller_hangup_after_and_forwarded_from(emulator, hooks):
    emulator.add_number(
        VoiceUrl=hooks.on("/voice", '<Response><Say>hi</Say><Pause length="600"/></Response>')
    )
    call = emulator.call_in(HangupAfter="5", ForwardedFrom="0312345678")
    (request,) = hooks.wait("/voice")
    assert request.form["ForwardedFrom"] == "0312345678"
    done = emulator.wait_status(call["sid"])
    assert done["status"] == "completed"
    assert emulator.events(call["sid"], "far_end_hangup")


def test_digits_and_hangup_on_unknown_or_ended_calls(emulator, hooks):
    assert (
        emulator.http.post("/emulator/calls/CA00/digits", data={"Digits": "1"}).status_code == 404
    )
    assert emulator.http.post("/emulator/calls/CA00/hangup").status_code == 404
    assert emulator.http.get("/emulator/calls/CA00/events").status_code == 404
    emulator.add_number(VoiceUrl=hooks.on("/voice", "<Response><Hangup/></Response>"))
    call = emulator.call_in()
    emulator.wait_status(call["sid"])
    assert (
        emulator.http.post(
            f"/emulator/calls/{call['sid']}/digits", data={"Digits": "1"}
        ).status_code
        == 409
    )
    assert (
        emulator.http.post(
            f"/emulator/calls/{call['sid']}/digits", data={"Digits": "x"}
        ).status_code
        == 400
    )


def test_the_event_log_is_ordered(emulator, hooks):
    emulator.add_number(
        VoiceUrl=hooks.on("/voice", "<Response><Say>one</Say><Say>two</Say></Response>")
    )
    call = emulator.call_in()
    emulator.wait_status(call["sid"])
    events = emulator.events(call["sid"])
    assert [e["seq"] for e in events] == list(range(len(events)))
    assert [e["at"] for e in events] == sorted(e["at"] for e in events)
    kinds = [e["kind"] for e in events]
    assert kinds[:3] == ["created", "state", "webhook"]
    assert kinds[-1] == "state" and events[-1]["status"] == "completed"


def test_the_live_stream_carries_every_event(emulator, hooks):
    emulator.add_number(VoiceUrl=hooks.on("/voice", "<Response><Say>streamed</Say></Response>"))
    received: list[dict] = []
    connected = threading.Event()

    def listen():
        with emulator.http.stream("GET", "/emulator/events") as stream:
            for line in stream.iter_lines():
                if line.startswith(": connected"):
                    connected.set()
                if line.startswith("data: "):
                    event = json.loads(line[6:])
                    received.append(event)
                    if event["kind"] == "state" and event["status"] == "completed":
                        return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    assert connected.wait(10)
    call = emulator.call_in()
    listener.join(15)
    assert not listener.is_alive()
    assert [e["seq"] for e in received] == [e["seq"] for e in emulator.events(call["sid"])]


def test_health(emulator):
    assert emulator.http.get("/emulator/health").json() == {
        "status": "ok",
        "calls": 0,
        "live_calls": 0,
    }
