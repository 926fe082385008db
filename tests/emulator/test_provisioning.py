"""The provisioning file: a demo starts with its numbers, TwiML App and phones in place."""

import pytest

from dialtone.emulator.config import Credentials, EmulatorConfig
from dialtone.emulator.provisioning import ProvisioningError, load
from dialtone.emulator.switch import Switch

APP_SID = "AP" + "ab" * 16

GOOD = f"""
[[applications]]
sid = "{APP_SID}"
friendly_name = "dialtone"
voice_url = "http://127.0.0.1:8000/twilio/retrieve_twiml/call_outgoing"

[[numbers]]
phone_number = "050-3123-4567"
voice_url = "http://127.0.0.1:8000/twilio/retrieve_twiml/call_incoming"
status_callback = "http://127.0.0.1:8000/twilio/status_callback"

[[numbers]]
phone_number = "+815011112222"
voice_application_sid = "{APP_SID}"

[[phones]]
address = "+819059876543"
mode = "answer"
answer_after = 2
"""


def _switch():
    return Switch(EmulatorConfig(credentials=Credentials.from_env({})))


def test_a_file_provisions_numbers_applications_and_phones(tmp_path):
    path = tmp_path / "demo.toml"
    path.write_text(GOOD.replace("050-3123-4567", "+81-50-3123-4567"))
    switch = _switch()
    load(switch, path)
    assert switch.applications[APP_SID].voice_url.endswith("/call_outgoing")
    number = switch.number_for("+815031234567")
    assert number.voice_url.endswith("/call_incoming")
    config, application_sid = switch.voice_config(switch.number_for("+815011112222"))
    assert application_sid == APP_SID and config.voice_url.endswith("/call_outgoing")
    assert switch.phones.get("+819059876543").answer_after == 2


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[[numbers]]\nphone_number = 'nope'\n", "PhoneNumber is invalid"),
        ("[[numbers]]\nphone_number = '+815031234567'\ncolour = 'red'\n", "unknown key"),
        ("[[phones]]\nmode = 'busy'\n", "address is required"),
        ("[[phones]]\naddress = '+819059876543'\nmode = 'dance'\n", "mode must be"),
        ("[[applications]]\nsid = 'AP1'\n", "AP followed by 32 hex"),
        ("not toml = = =", "demo.toml"),
    ],
)
def test_mistakes_are_reported(tmp_path, text, needle):
    path = tmp_path / "demo.toml"
    path.write_text(text)
    with pytest.raises(ProvisioningError, match=needle):
        load(_switch(), path)
