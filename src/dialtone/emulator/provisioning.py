"""A provisioning file (TOML) so a demo starts pre-configured:

[[applications]]
sid = "AP…"                 # optional; to match TWILIO_TWIML_APP_SID
friendly_name = "dialtone"
voice_url = "http://127.0.0.1:8000/twilio/retrieve_twiml/call_outgoing"
status_callback = "http://127.0.0.1:8000/twilio/status_callback"

[[numbers]]
phone_number = "+815031234567"
voice_url = "http://127.0.0.1:8000/twilio/retrieve_twiml/call_incoming"

[[phones]]
address = "+819059876543"
mode = "answer"
answer_after = 2
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from starlette.datastructures import ImmutableMultiDict

from dialtone.emulator.phones import Behaviour, BehaviourError
from dialtone.emulator.rest.errors import TwilioApiError
from dialtone.emulator.rest.voice_resources import add_application, add_number
from dialtone.emulator.switch import Switch

_KEYS = {
    "phone_number": "PhoneNumber",
    "friendly_name": "FriendlyName",
    "voice_url": "VoiceUrl",
    "voice_method": "VoiceMethod",
    "voice_fallback_url": "VoiceFallbackUrl",
    "voice_fallback_method": "VoiceFallbackMethod",
    "status_callback": "StatusCallback",
    "status_callback_method": "StatusCallbackMethod",
    "voice_application_sid": "VoiceApplicationSid",
}


class ProvisioningError(ValueError):
    pass


def _form(entry: dict[str, Any], where: str) -> ImmutableMultiDict:
    unknown = sorted(set(entry) - set(_KEYS) - {"sid"})
    if unknown:
        raise ProvisioningError(f"{where}: unknown key(s) {', '.join(unknown)}")
    return ImmutableMultiDict({_KEYS[k]: str(v) for k, v in entry.items() if k in _KEYS})


def provision(switch: Switch, data: dict[str, Any]) -> None:
    try:
        for index, entry in enumerate(data.get("applications", []), start=1):
            add_application(switch, _form(entry, f"applications[{index}]"), entry.get("sid"))
        for index, entry in enumerate(data.get("numbers", []), start=1):
            add_number(switch, _form(entry, f"numbers[{index}]"))
        for index, entry in enumerate(data.get("phones", []), start=1):
            entry = dict(entry)
            address = entry.pop("address", None)
            if not address:
                raise ProvisioningError(f"phones[{index}]: address is required")
            try:
                switch.phones.set(address, Behaviour.from_json(entry))
            except BehaviourError as exc:
                raise ProvisioningError(f"phones[{index}]: {exc}") from None
    except TwilioApiError as exc:
        raise ProvisioningError(exc.message) from None


def load(switch: Switch, path: Path) -> None:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ProvisioningError(f"{path}: {exc}") from None
    provision(switch, data)
