"""Deterministic development credentials, shared by `dialtone dev` and the emulator.

With no Twilio account configured, both sides derive the same values from a fixed
seed, so a signature made by one validates in the other. Never used when the real
variables are set; never valid on Twilio.
"""

from __future__ import annotations

import hashlib


def _hex(label: str, length: int = 32) -> str:
    return hashlib.sha256(f"dialtone-development:{label}".encode()).hexdigest()[:length]


def development_values() -> dict[str, str]:
    """Environment variable name → development value."""
    return {
        "TWILIO_ACCOUNT_SID": "AC" + _hex("account"),
        "TWILIO_AUTH_TOKEN": _hex("auth-token"),
        "TWILIO_API_KEY": "SK" + _hex("api-key"),
        "TWILIO_API_SECRET": _hex("api-secret"),
        "TWILIO_TWIML_APP_SID": "AP" + _hex("twiml-app"),
    }
