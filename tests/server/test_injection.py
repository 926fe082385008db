"""No request parameter can add an element to the TwiML: every value is escaped by VoiceResponse."""

import xml.etree.ElementTree as ET

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.server.test_call_incoming import SEED_001_PARAMS
from tests.server.test_call_outgoing import SEED_PARAMS

INCOMING = "/twilio/retrieve_twiml/call_incoming"
OUTGOING = "/twilio/retrieve_twiml/call_outgoing"

ATTACKS = [
    "+81-90-5987-6543</Number><Number>+19005550100",
    "+81-90-5987-6543</Number></Dial><Dial><Number>+19005550100</Number></Dial>",
    '+819059876543" callerId="+19005550100',
    "<![CDATA[</Number><Number>+19005550100]]>",
    "DeviceId_0001</Client><Client>victim",
    "&lt;Number&gt;+19005550100&lt;/Number&gt;",
    "+819059876543\x00<Play>http://evil</Play>",
    "<?xml version='1.0'?><!DOCTYPE x [<!ENTITY e SYSTEM 'file:///etc/passwd'>]>&e;",
]

ALLOWED_TAGS = {"Response", "Dial", "Number", "Client", "Say", "Hangup"}


def _check(xml: str) -> ET.Element:
    root = ET.fromstring(xml.encode())
    assert root.tag == "Response"
    tags = [e.tag for e in root.iter()]
    assert set(tags) <= ALLOWED_TAGS, tags
    assert tags.count("Dial") <= 1
    assert tags.count("Number") + tags.count("Client") <= 1
    for dial in root.iter("Dial"):
        assert set(dial.attrib) <= {"action", "timeout", "callerId", "answerOnBridge"}
        assert dial.attrib.get("action") == "dial_ended"
        assert dial.attrib.get("callerId") in (None, "+815031234567")
    for number in root.iter("Number"):
        assert (
            number.text is not None and number.text.startswith("+81") and number.text[1:].isdigit()
        )
    return root


@pytest.mark.parametrize("attack", ATTACKS)
@pytest.mark.parametrize(
    ("path", "base", "key"),
    [
        (OUTGOING, SEED_PARAMS, k)
        for k in ("callOutgoingPhoneNumber", "callerPhoneNumber", "To", "From", "CallSid")
    ]
    + [(INCOMING, SEED_001_PARAMS, k) for k in ("To", "Called", "From", "CallSid")],
)
def test_injection_attempts_never_yield_an_extra_element(server, path, base, key, attack):
    response = server.webhook(path, dict(base, **{key: attack}))
    assert response.status_code == 200
    _check(response.text)


def test_the_classic_number_injection_is_refused_outright(server):
    response = server.webhook(OUTGOING, dict(SEED_PARAMS, callOutgoingPhoneNumber=ATTACKS[0]))
    root = _check(response.text)
    assert [e.tag for e in root] == ["Say", "Hangup"]
    assert "19005550100" not in response.text


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    key=st.sampled_from(["callOutgoingPhoneNumber", "callerPhoneNumber", "To", "From"]),
    value=st.text(st.characters(blacklist_categories=("Cs",)), max_size=80),
)
def test_any_string_in_an_outgoing_parameter_yields_safe_twiml(server, key, value):
    response = server.webhook(OUTGOING, dict(SEED_PARAMS, **{key: value}))
    assert response.status_code == 200
    _check(response.text)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=st.text(st.characters(blacklist_categories=("Cs",)), max_size=80))
def test_any_string_as_the_called_number_yields_safe_twiml(server, value):
    response = server.webhook(INCOMING, dict(SEED_001_PARAMS, To=value, Called=value))
    assert response.status_code == 200
    _check(response.text)
