"""Calls with the real Voice SDK in Chromium: outgoing through a TwiML App, incoming via
<Dial><Client>, two-way WebRTC audio, DTMF into <Gather>, reject and cancel."""

import time

import pytest
from twilio.jwt.client import ClientCapabilityToken

from dialtone.emulator.media import audio
from tests.browser.conftest import start, wait_event
from tests.emulator.test_audio_calls import _pcm

TWILIO_NUMBER = "+815031234567"
PHONE = "+819059876543"


@pytest.fixture
def app(live_emulator, hooks):
    """A TwiML App whose voice URL dials the number the browser asks for."""

    def voice(request):
        return f'<Response><Dial callerId="{TWILIO_NUMBER}"><Number>{request.form.get("To", "")}</Number></Dial></Response>'

    response = live_emulator.post("Applications.json", {"VoiceUrl": hooks.on("/outgoing", voice)})
    live_emulator.post("IncomingPhoneNumbers.json", {"PhoneNumber": TWILIO_NUMBER})
    return response.json()["sid"]


def _line(emulator, hooks, twiml):
    """Our Twilio number, answered by `twiml` from the test's webhook app."""
    emulator.post(
        "IncomingPhoneNumbers.json",
        {"PhoneNumber": TWILIO_NUMBER, "VoiceUrl": hooks.on("/incoming", twiml)},
    )


def _setup(page, emulator, token):
    page.evaluate("([token, chunderw]) => window.setup(token, chunderw)", [token, emulator.signal])


def _registered(page, emulator, token):
    _setup(page, emulator, token)
    start(page, "window.device.register()")
    wait_event(page, "registered")


def _samples(page, label):
    return page.evaluate("(label) => window.calls[label].samples", label)


def _child(emulator, parent_sid):
    (child,) = emulator.calls(ParentCallSid=parent_sid)
    return child


def test_outgoing_call_to_a_phone_with_audio_both_ways(page, live_emulator, app, hooks, tmp_path):
    phone_says = tmp_path / "phone.wav"
    phone_says.write_bytes(audio.to_wav(audio.tone(500, 3.0, 0.3)))
    live_emulator.http.put(
        f"/emulator/phones/{PHONE}", json={"answer_after": 1, "say_audio": f"file://{phone_says}"}
    )
    _setup(page, live_emulator, live_emulator.access_token("alice", application_sid=app))
    start(page, f"window.connect({{To: '{PHONE}', note: 'from the test'}})")
    (accepted,) = wait_event(page, "accept")
    (request,) = hooks.wait("/outgoing")
    # The TwiML App's request (seed 001's outgoing parameter set).
    assert request.form["From"] == request.form["Caller"] == "client:alice"
    assert request.form["To"] == PHONE
    assert request.form["Direction"] == "inbound"
    assert request.form["ApplicationSid"] == app
    assert request.form["note"] == "from the test"
    parent = accepted["sid"]
    assert parent == request.form["CallSid"]
    time.sleep(4)
    samples = _samples(page, "outgoing")
    assert max(s["packetsReceived"] for s in samples) > 50
    assert max(s["packetsSent"] for s in samples) > 50
    assert max(s["audioOutputLevel"] for s in samples) > 0  # the phone's tone reached the browser
    start(page, "window.calls.outgoing.disconnect()")
    wait_event(page, "disconnect")
    assert live_emulator.wait_status(parent)["status"] == "completed"
    child = _child(live_emulator, parent)
    assert live_emulator.wait_status(child["sid"])["status"] == "completed"
    heard = _pcm(live_emulator.http.get(f"/emulator/calls/{child['sid']}/heard.wav").content)
    assert audio.voiced_seconds(heard) > 0.5, "the browser's microphone did not reach the phone"


def test_incoming_call_from_a_phone_via_dial_client(page, live_emulator, hooks, capsys):
    _line(
        live_emulator,
        hooks,
        '<Response><Dial timeout="60"><Client><Identity>alice</Identity><Parameter name="ticket" value="42"/></Client></Dial></Response>',
    )
    _registered(page, live_emulator, live_emulator.access_token("alice"))
    placed = time.time()
    call = live_emulator.http.post(
        "/emulator/calls", data={"From": PHONE, "To": TWILIO_NUMBER}
    ).json()
    (incoming,) = wait_event(page, "incoming")
    latency_ms = incoming["t"] - placed * 1000
    with capsys.disabled():
        print(f"\n[setup latency] phone dials -> browser 'incoming': {latency_ms:.0f} ms")
    assert incoming["from"] == PHONE
    assert incoming["params"] == {"ticket": "42"}
    child = _child(live_emulator, call["sid"])
    assert incoming["sid"] == child["sid"]
    start(page, "window.calls.incoming.accept()")
    wait_event(page, "accept")
    live_emulator.wait_status(child["sid"], ("in-progress",))
    time.sleep(3)
    samples = _samples(page, "incoming")
    assert max(s["packetsReceived"] for s in samples) > 50
    heard = _pcm(live_emulator.http.get(f"/emulator/calls/{call['sid']}/heard.wav").content)
    assert audio.voiced_seconds(heard) > 0.5, "the browser's microphone did not reach the caller"
    # The phone hangs up: the browser's call disconnects.
    live_emulator.http.post(f"/emulator/calls/{call['sid']}/hangup")
    wait_event(page, "disconnect")
    assert live_emulator.wait_status(child["sid"])["status"] == "completed"


def test_incoming_call_rejected_in_the_browser(page, live_emulator, hooks):
    _line(
        live_emulator,
        hooks,
        '<Response><Dial action="/dialed"><Client>alice</Client></Dial></Response>',
    )
    hooks.on("/dialed", "<Response/>")
    _registered(page, live_emulator, live_emulator.access_token("alice"))
    live_emulator.http.post("/emulator/calls", data={"From": PHONE, "To": TWILIO_NUMBER})
    wait_event(page, "incoming")
    start(page, "window.calls.incoming.reject()")
    (action,) = hooks.wait("/dialed", timeout=20)
    assert action.form["DialCallStatus"] == "busy"


def test_incoming_call_canceled_before_answer(page, live_emulator, hooks):
    _line(live_emulator, hooks, "<Response><Dial><Client>alice</Client></Dial></Response>")
    _registered(page, live_emulator, live_emulator.access_token("alice"))
    call = live_emulator.http.post(
        "/emulator/calls", data={"From": PHONE, "To": TWILIO_NUMBER}
    ).json()
    wait_event(page, "incoming")
    live_emulator.http.post(f"/emulator/calls/{call['sid']}/hangup")
    wait_event(page, "cancel")
    child = _child(live_emulator, call["sid"])
    assert live_emulator.wait_status(child["sid"])["status"] == "canceled"


def test_dtmf_from_the_browser_reaches_a_gather(page, live_emulator, hooks):
    gather = '<Response><Gather action="/gathered" numDigits="3"><Say>Enter your code.</Say></Gather></Response>'
    app = live_emulator.post(
        "Applications.json", {"VoiceUrl": hooks.on("/outgoing", gather)}
    ).json()["sid"]
    hooks.on("/gathered", "<Response><Say>Thanks.</Say></Response>")
    _setup(page, live_emulator, live_emulator.access_token("alice", application_sid=app))
    start(page, "window.connect({})")
    wait_event(page, "accept")
    time.sleep(1)
    page.evaluate("window.calls.outgoing.sendDigits('123')")
    (action,) = hooks.wait("/gathered", timeout=20)
    assert action.form["Digits"] == "123"


def test_the_legacy_capability_token_places_and_receives_calls(page, live_emulator, hooks, app):
    creds = live_emulator.credentials
    capability = ClientCapabilityToken(creds.account_sid, creds.auth_token)
    capability.allow_client_incoming("legacy_bob")
    capability.allow_client_outgoing(app, line="seed")
    live_emulator.http.put(
        f"/emulator/phones/{PHONE}", json={"answer_after": 0.5, "hangup_after": 2}
    )
    _registered(page, live_emulator, capability.to_jwt())
    start(page, f"window.connect({{To: '{PHONE}'}})")
    wait_event(page, "accept")
    (request,) = hooks.wait("/outgoing")
    assert request.form["From"] == "client:legacy_bob"
    assert request.form["line"] == "seed"  # appParams from the token
    wait_event(page, "disconnect", timeout=20)  # the phone hangs up after 2 s


def test_a_person_in_a_browser_is_the_external_phone(page, second_page, live_emulator, hooks):
    """The emulator gives a page a token for an external number; that page calls our number,
    which rings alice's browser: two people talk through the emulator."""
    _line(live_emulator, hooks, "<Response><Dial><Client>alice</Client></Dial></Response>")
    _registered(page, live_emulator, live_emulator.access_token("alice"))
    phone = live_emulator.http.post(f"/emulator/phones/{PHONE}/token").json()
    assert phone["identity"] == "phone.819059876543"
    _registered(second_page, live_emulator, phone["token"])
    start(second_page, "window.connect({To: '050-3123-4567'})")  # dialled as a person would
    (incoming,) = wait_event(page, "incoming")
    assert incoming["from"] == PHONE
    start(page, "window.calls.incoming.accept()")
    wait_event(page, "accept")
    wait_event(second_page, "accept")
    time.sleep(3)
    assert max(s["packetsReceived"] for s in _samples(page, "incoming")) > 50
    assert max(s["packetsReceived"] for s in _samples(second_page, "outgoing")) > 50
    assert max(s["audioOutputLevel"] for s in _samples(second_page, "outgoing")) > 0
    start(second_page, "window.calls.outgoing.disconnect()")
    wait_event(page, "disconnect")
    (call,) = live_emulator.calls(To=TWILIO_NUMBER)
    assert call["from"] == PHONE and call["direction"] == "inbound"
    assert live_emulator.wait_status(call["sid"])["status"] == "completed"


def test_calls_to_the_number_ring_the_browser_phone(page, second_page, live_emulator, app):
    phone = live_emulator.http.post(f"/emulator/phones/{PHONE}/token").json()
    _registered(second_page, live_emulator, phone["token"])
    _setup(page, live_emulator, live_emulator.access_token("alice", application_sid=app))
    start(page, f"window.connect({{To: '{PHONE}'}})")
    (incoming,) = wait_event(second_page, "incoming")
    assert incoming["from"] == TWILIO_NUMBER  # the app's callerId
    start(second_page, "window.calls.incoming.accept()")
    wait_event(page, "accept")
    time.sleep(2)
    assert max(s["packetsReceived"] for s in _samples(page, "outgoing")) > 30
    start(page, "window.calls.outgoing.disconnect()")
    wait_event(second_page, "disconnect")


def test_every_device_of_an_identity_rings_and_the_first_answer_wins(
    page, second_page, live_emulator, hooks
):
    _line(live_emulator, hooks, "<Response><Dial><Client>alice</Client></Dial></Response>")
    for tab in (page, second_page):
        _registered(tab, live_emulator, live_emulator.access_token("alice"))
    assert live_emulator.switch.devices.identities() == {"alice": 2}
    call = live_emulator.http.post(
        "/emulator/calls", data={"From": PHONE, "To": TWILIO_NUMBER}
    ).json()
    wait_event(page, "incoming")
    wait_event(second_page, "incoming")
    start(second_page, "window.calls.incoming.accept()")
    wait_event(second_page, "accept")
    wait_event(page, "cancel")  # the other device stops ringing
    live_emulator.http.post(f"/emulator/calls/{call['sid']}/hangup")
    wait_event(second_page, "disconnect")


def test_call_messages_are_acknowledged(page, live_emulator, hooks):
    app = live_emulator.post(
        "Applications.json",
        {
            "VoiceUrl": hooks.on(
                "/outgoing", '<Response><Pause length="10"/><Say>x</Say></Response>'
            )
        },
    ).json()["sid"]
    _setup(page, live_emulator, live_emulator.access_token("alice", application_sid=app))
    start(page, "window.connect({})")
    wait_event(page, "ringing")  # the CallSid has arrived
    page.evaluate("""() => {
        const call = window.calls.outgoing;
        call.on("messageSent", (m) => window.events.push({type: "messageSent", sid: m.voiceEventSid}));
        window.sentSid = call.sendMessage({content: {hello: "world"}, messageType: "user-defined-message"});
    }""")
    (sent,) = wait_event(page, "messageSent")
    assert sent["sid"] == page.evaluate("window.sentSid")


def test_answer_on_bridge_delays_accept_until_the_phone_answers(page, live_emulator, hooks):
    twiml = f'<Response><Dial answerOnBridge="true"><Number>{PHONE}</Number></Dial></Response>'
    app = live_emulator.post(
        "Applications.json", {"VoiceUrl": hooks.on("/outgoing", twiml)}
    ).json()["sid"]
    live_emulator.http.put(f"/emulator/phones/{PHONE}", json={"answer_after": 3, "hangup_after": 1})
    _setup(page, live_emulator, live_emulator.access_token("alice", application_sid=app))
    start(page, "window.connect({})")
    (ringing,) = wait_event(page, "ringing")
    (accepted,) = wait_event(page, "accept")
    # "answerOnBridge: the inbound leg keeps ringing until the callee answers"
    assert accepted["t"] - ringing["t"] >= 2500
    wait_event(page, "disconnect", timeout=20)


def test_without_answer_on_bridge_the_browser_is_answered_at_once(page, live_emulator, hooks):
    twiml = f"<Response><Dial><Number>{PHONE}</Number></Dial></Response>"
    app = live_emulator.post(
        "Applications.json", {"VoiceUrl": hooks.on("/outgoing", twiml)}
    ).json()["sid"]
    live_emulator.http.put(f"/emulator/phones/{PHONE}", json={"answer_after": 3, "hangup_after": 1})
    _setup(page, live_emulator, live_emulator.access_token("alice", application_sid=app))
    start(page, "window.connect({})")
    (ringing,) = wait_event(page, "ringing")
    (accepted,) = wait_event(page, "accept")
    assert accepted["t"] - ringing["t"] < 2000
    wait_event(page, "disconnect", timeout=20)
