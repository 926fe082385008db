"""What the application receives: Twilio's parameter sets, signatures and headers."""

from twilio.request_validator import RequestValidator

from tests.emulator.conftest import EXTERNAL_NUMBER, TWILIO_NUMBER

HELLO = "<Response><Say>Hello.</Say></Response>"

# Seed 001: the keys of the packet-captured request for a phone calling a Twilio number.
SEED_001_INBOUND_KEYS = {
    "AccountSid",
    "ApiVersion",
    "Called",
    "CalledCity",
    "CalledCountry",
    "CalledState",
    "CalledVia",
    "CalledZip",
    "Caller",
    "CallerCity",
    "CallerCountry",
    "CallerState",
    "CallerZip",
    "CallSid",
    "CallStatus",
    "Direction",
    "ForwardedFrom",
    "From",
    "FromCity",
    "FromCountry",
    "FromState",
    "FromZip",
    "To",
    "ToCity",
    "ToCountry",
    "ToState",
    "ToZip",
}


def _valid(emulator, received, url=None):
    validator = RequestValidator(emulator.credentials.auth_token)
    params = received.form if received.method == "POST" else {}
    return validator.validate(url or received.url, params, received.headers["x-twilio-signature"])


def test_a_phone_calling_our_number_sends_the_seed_001_parameters(emulator, hooks):
    emulator.add_number(TWILIO_NUMBER, VoiceUrl=hooks.on("/voice", HELLO))
    call = emulator.call_in(EXTERNAL_NUMBER, TWILIO_NUMBER)
    (request,) = hooks.wait("/voice")
    form = request.form
    assert set(form) == SEED_001_INBOUND_KEYS
    assert form["CallSid"] == call["sid"]
    assert form["AccountSid"] == emulator.credentials.account_sid
    assert form["ApiVersion"] == "2010-04-01"
    assert form["CallStatus"] == "ringing"
    assert form["Direction"] == "inbound"
    assert form["From"] == form["Caller"] == EXTERNAL_NUMBER
    assert form["To"] == form["Called"] == TWILIO_NUMBER
    assert form["FromCountry"] == form["ToCountry"] == form["CalledCountry"] == "JP"
    assert form["FromCity"] == form["CalledZip"] == ""  # unknown geo values are sent blank
    assert form["CalledVia"] == form["ForwardedFrom"] == "05031234567"  # as captured


def test_requests_are_signed_form_posts_from_twilioproxy(emulator, hooks):
    emulator.add_number(TWILIO_NUMBER, VoiceUrl=hooks.on("/voice", HELLO))
    emulator.call_in()
    (request,) = hooks.wait("/voice")
    assert request.method == "POST"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded; charset=UTF-8"
    assert request.headers["user-agent"] == "TwilioProxy/1.1"
    assert request.headers["i-twilio-idempotency-token"]
    assert _valid(emulator, request)
    assert not RequestValidator("wrong-token").validate(
        request.url, request.form, request.headers["x-twilio-signature"]
    )


def test_get_webhooks_carry_the_parameters_in_a_signed_query(emulator, hooks):
    url = hooks.on("/voice", HELLO) + "?line=1"
    emulator.add_number(TWILIO_NUMBER, VoiceUrl=url, VoiceMethod="GET")
    emulator.call_in()
    (request,) = hooks.wait("/voice")
    assert request.method == "GET"
    assert request.url.startswith(url + "&")
    assert request.form["To"] == TWILIO_NUMBER and request.form["line"] == "1"
    assert _valid(emulator, request)


def test_an_outbound_api_call_requests_its_url_when_answered(emulator, hooks):
    emulator.add_number(TWILIO_NUMBER)
    call = emulator.call_out(Url=hooks.on("/answered", HELLO))
    (request,) = hooks.wait("/answered")
    form = request.form
    assert form["CallSid"] == call["sid"]
    assert form["Direction"] == "outbound-api"
    assert form["CallStatus"] == "in-progress"
    assert form["From"] == TWILIO_NUMBER and form["To"] == EXTERNAL_NUMBER
    assert "CalledVia" not in form and "ApplicationSid" not in form
    assert _valid(emulator, request)


def test_an_outbound_call_to_a_client_sends_client_addresses(emulator, hooks):
    emulator.add_number(TWILIO_NUMBER)
    emulator.set_phone("client:alice", mode="answer", answer_after=0.5)
    emulator.call_out(To="client:alice", Url=hooks.on("/answered", HELLO))
    (request,) = hooks.wait("/answered")
    assert request.form["To"] == request.form["Called"] == "client:alice"
    assert "ToCountry" not in request.form


def test_application_sid_calls_use_the_application_urls(emulator, hooks):
    emulator.add_number(TWILIO_NUMBER)
    app = emulator.add_application(VoiceUrl=hooks.on("/app", HELLO), FriendlyName="dialtone")
    emulator.call_out(ApplicationSid=app["sid"])
    (request,) = hooks.wait("/app")
    assert request.form["ApplicationSid"] == app["sid"]
