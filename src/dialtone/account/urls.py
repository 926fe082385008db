"""The URLs Twilio must be given, and what differs when it was given others."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

INCOMING_PATH = "/twilio/retrieve_twiml/call_incoming"  # a number's "A CALL COMES IN"
OUTGOING_PATH = "/twilio/retrieve_twiml/call_outgoing"  # the TwiML App's Voice URL
STATUS_PATH = "/twilio/status_callback"  # "Call status changes" / the app's status callback
METHOD = "POST"


@dataclass(frozen=True)
class Webhooks:
    public_url: str

    @property
    def incoming(self) -> str:
        return self.public_url + INCOMING_PATH

    @property
    def outgoing(self) -> str:
        return self.public_url + OUTGOING_PATH

    @property
    def status_callback(self) -> str:
        return self.public_url + STATUS_PATH


def _port(parts: object) -> int | None:
    port = parts.port  # type: ignore[attr-defined]
    if port is None:
        return {"https": 443, "http": 80}.get(parts.scheme)  # type: ignore[attr-defined]
    return port


def url_difference(actual: str | None, expected: str) -> str | None:
    """None when Twilio would request exactly `expected` (explicit :443/:80 aside, which
    Twilio's signature check tolerates); else what differs, in words."""
    if not actual:
        return "not set"
    if actual == expected:
        return None
    have, want = urlsplit(actual), urlsplit(expected)
    differences = []
    if have.scheme != want.scheme:
        differences.append(f"scheme {have.scheme or '(none)'} instead of {want.scheme}")
    if (have.hostname or "") != (want.hostname or ""):
        differences.append(f"host {have.hostname} instead of {want.hostname}")
    if _port(have) != _port(want):
        differences.append(f"port {_port(have)} instead of {_port(want)}")
    if have.path != want.path:
        route = next(
            (p for p in (INCOMING_PATH, OUTGOING_PATH, STATUS_PATH) if want.path.endswith(p)), ""
        )
        have_prefix = have.path[: -len(route)] if route and have.path.endswith(route) else None
        if have_prefix is not None:
            want_prefix = want.path[: -len(route)]
            differences.append(
                f"stage prefix {have_prefix or '(none)'} instead of {want_prefix or '(none)'}"
            )
        else:
            differences.append(f"path {have.path or '/'} instead of {want.path}")
    if have.query != want.query:
        differences.append(f"query {have.query or '(none)'} instead of {want.query or '(none)'}")
    return "; ".join(differences) or None


def application_settings(hooks: Webhooks) -> dict[str, tuple[str, str]]:
    """The TwiML App's settings: Twilio's parameter name → (twilio-python attribute, value)."""
    return {
        "VoiceUrl": ("voice_url", hooks.outgoing),
        "VoiceMethod": ("voice_method", METHOD),
        "StatusCallback": ("status_callback", hooks.status_callback),
        "StatusCallbackMethod": ("status_callback_method", METHOD),
    }


def number_settings(hooks: Webhooks) -> dict[str, tuple[str, str]]:
    """A line's number: as the app's, but calls come in at the incoming webhook, and a
    number bound to a TwiML App ignores its VoiceUrl, so it must be bound to none."""
    return {
        "VoiceApplicationSid": ("voice_application_sid", ""),
        **application_settings(hooks),
        "VoiceUrl": ("voice_url", hooks.incoming),
    }
