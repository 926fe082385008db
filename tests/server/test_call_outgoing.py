"""POST /twilio/retrieve_twiml/call_outgoing: a browser phone dials out through the TwiML App."""

from dataclasses import replace

import pytest

from tests.conftest import SEED_NUMBER
from tests.twiml_helpers import structure

PATH = "/twilio/retrieve_twiml/call_outgoing"

# Seed 001/002: what Twilio posts when the browser of DeviceId_0001 connects.
SEED_PARAMS = {
    "AccountSid": "AC3e" + "0" * 30,
    "ApiVersion": "2010-04-01",
    "ApplicationSid": "AP75" + "0" * 30,
    "Called": "",
    "Caller": "client:DeviceId_0001",
    "CallSid": "CA06" + "0" * 30,
    "CallStatus": "ringing",
    "Direction": "inbound",
    "From": "client:DeviceId_0001",
    "To": "",
    "callerPhoneNumber": "+81-50-3123-4567",
    "callOutgoingPhoneNumber": "+81-90-5987-6543",
}


# An outgoing call answers the browser only when the callee picks up, so the phone can show
# Ringing… until then: "answerOnBridge: the inbound leg keeps ringing until the callee answers".
# Its action (relative: `…/retrieve_twiml/dial_ended`) tells how the dial ended.
OUTGOING_DIAL = {"action": "dial_ended", "timeout": "60", "answerOnBridge": "true"}


def _dial(number, caller_id=SEED_NUMBER):
    return (
        "Response",
        {},
        "",
        ((("Dial", {**OUTGOING_DIAL, "callerId": caller_id}, "", (("Number", {}, number, ()),))),),
    )


def _is_refusal(response, needle=""):
    assert response.status_code == 200
    tag, _, _, children = structure(response.text)
    assert tag == "Response"
    assert [c[0] for c in children] == ["Say", "Hangup"], response.text
    assert needle in children[0][2]
    return True


def test_seed_curl_check_3_dials_the_number_from_the_line(server):
    # Seed 002 §2-8 "TwiML Return API for Outgoing Call", signed; numbers now in E.164.
    response = server.webhook(PATH, SEED_PARAMS)
    assert response.headers["content-type"].startswith("application/xml")
    assert structure(response.text) == _dial("+819059876543")


def test_voice_sdk_2_puts_the_destination_in_to(server):
    params = dict(SEED_PARAMS, To="090-5987-6543", Called="090-5987-6543")
    del params["callOutgoingPhoneNumber"], params["callerPhoneNumber"]
    assert structure(server.webhook(PATH, params).text) == _dial("+819059876543")


def test_national_numbers_are_read_in_the_line_region(make_server, settings, registry):
    # Even with another default region, a JP line dials 090-… as a JP number.
    server = make_server(replace(settings, default_region="US"))
    params = dict(SEED_PARAMS, callOutgoingPhoneNumber="090-5987-6543")
    assert structure(server.webhook(PATH, params).text) == _dial("+819059876543")


@pytest.mark.parametrize(
    "claimed", ["+81-50-9999-0000", "+14155550100", "anything", "+81-50-3123-4568"]
)
def test_spoofed_caller_phone_number_is_refused(server, claimed):
    response = server.webhook(PATH, dict(SEED_PARAMS, callerPhoneNumber=claimed))
    assert _is_refusal(response, "does not belong")
    assert "<Dial" not in response.text


@pytest.mark.parametrize("claimed", ["+815031234567", "050-3123-4567", "+81 50 3123 4567", ""])
def test_caller_phone_number_may_repeat_the_line_number(server, claimed):
    response = server.webhook(PATH, dict(SEED_PARAMS, callerPhoneNumber=claimed))
    assert structure(response.text) == _dial("+819059876543")


def test_other_countries_are_refused_by_default(server):
    response = server.webhook(PATH, dict(SEED_PARAMS, callOutgoingPhoneNumber="+1 415 555 0100"))
    assert _is_refusal(response, "country code 1")


def test_allowed_countries_open_other_countries(make_server, settings, registry):
    server = make_server(replace(settings, allowed_countries=frozenset({81, 1})))
    response = server.webhook(PATH, dict(SEED_PARAMS, callOutgoingPhoneNumber="+1 415 555 0100"))
    assert structure(response.text) == _dial("+14155550100")
    uk = server.webhook(PATH, dict(SEED_PARAMS, callOutgoingPhoneNumber="+44 20 7946 0000"))
    assert _is_refusal(uk, "country code 44")


@pytest.mark.parametrize("number", ["+1 900 555 0100", "+44 844 980 0000"])
def test_premium_rate_and_shared_cost_numbers_are_never_dialled(
    make_server, settings, registry, number
):
    server = make_server(replace(settings, allowed_countries=frozenset({81, 1, 44})))
    assert _is_refusal(
        server.webhook(PATH, dict(SEED_PARAMS, callOutgoingPhoneNumber=number)), "premium"
    )


def test_a_line_cannot_dial_itself(server):
    response = server.webhook(PATH, dict(SEED_PARAMS, callOutgoingPhoneNumber="050-3123-4567"))
    assert _is_refusal(response, "itself")


def test_dialling_another_line_rings_its_client(server, registry):
    registry.add("+81-50-1111-2222", "DeviceId_0002", "another password")
    response = server.webhook(PATH, dict(SEED_PARAMS, callOutgoingPhoneNumber="050-1111-2222"))
    assert structure(response.text) == (
        "Response",
        {},
        "",
        (
            (
                "Dial",
                {**OUTGOING_DIAL, "callerId": SEED_NUMBER},
                "",
                (("Client", {}, "DeviceId_0002", ()),),
            ),
        ),
    )


def test_another_line_abroad_is_reachable_without_opening_the_country(server, registry):
    registry.add("+1 415 555 0199", "us_desk", "another password")
    response = server.webhook(PATH, dict(SEED_PARAMS, callOutgoingPhoneNumber="+14155550199"))
    assert "<Client>us_desk</Client>" in response.text


@pytest.mark.parametrize("number", ["", "   ", "not a number", "+81 10 1234 5678", "12"])
def test_invalid_or_missing_destinations_are_refused(server, number):
    assert _is_refusal(
        server.webhook(PATH, dict(SEED_PARAMS, callOutgoingPhoneNumber=number, To=""))
    )


@pytest.mark.parametrize("sender", ["+819059876543", "", "client:nobody", "client:"])
def test_only_registered_clients_can_dial_out(server, sender):
    response = server.webhook(PATH, dict(SEED_PARAMS, From=sender, Caller=sender))
    assert _is_refusal(response)
    assert "<Dial" not in response.text
