"""The parameters Twilio sends with each request about a call (reference §2, seed 001)."""

from __future__ import annotations

from functools import lru_cache

from dialtone import phone
from dialtone.emulator.call import INBOUND, Call

API_VERSION = "2010-04-01"
_GEO = ("City", "State", "Zip", "Country")


def _geo(prefix: str, address: str) -> dict[str, str]:
    """PSTN geo fields; Twilio sends unknown values blank (`FromCity=`)."""
    if not address.startswith("+"):
        return {}
    region = _region(address)
    return {f"{prefix}{part}": (region if part == "Country" else "") for part in _GEO}


@lru_cache(maxsize=4096)
def _region(address: str) -> str:
    try:
        return phone.region_of(phone.to_e164(address)) or ""
    except phone.InvalidNumber:
        return ""


@lru_cache(maxsize=4096)
def _national_digits(address: str) -> str:
    try:
        number = phone.parse(address)
    except phone.InvalidNumber:
        return address
    return phone.national_digits(number)


def call_params(call: Call, status: str | None = None) -> dict[str, str]:
    """The parameters of every voice request about `call` (the voice URL, actions, fallback)."""
    params = {
        "AccountSid": call.account_sid,
        "ApiVersion": API_VERSION,
        "CallSid": call.sid,
        "CallStatus": status or call.status,
        "Direction": call.direction,
        "From": call.from_,
        "To": call.to,
        "Caller": call.from_,
        "Called": call.to,
    }
    if call.application_sid:
        params["ApplicationSid"] = call.application_sid
    if call.parent is not None:
        params["ParentCallSid"] = call.parent.sid
    for prefix, address in (
        ("From", call.from_),
        ("Caller", call.from_),
        ("To", call.to),
        ("Called", call.to),
    ):
        params.update(_geo(prefix, address))
    if call.direction == INBOUND and call.from_.startswith("+") and call.to.startswith("+"):
        # Seed 001's capture of a phone calling a Twilio number in Japan carried these two,
        # both the called number in national digits (`05031234567`). Twilio documents
        # neither for this case (unverified); we send them as captured.
        national = _national_digits(call.to)
        params["CalledVia"] = call.forwarded_from or national
        params["ForwardedFrom"] = call.forwarded_from or national
    # Custom parameters of a browser call come last and never replace Twilio's own.
    for key, value in call.custom_params.items():
        params.setdefault(key, value)
    return params
