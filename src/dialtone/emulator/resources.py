"""Account resources the call engine routes by: IncomingPhoneNumbers and Applications."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from dialtone.emulator.sids import new_sid


@dataclass
class VoiceConfig:
    voice_url: str | None = None
    voice_method: str = "POST"
    voice_fallback_url: str | None = None
    voice_fallback_method: str = "POST"
    status_callback: str | None = None
    status_callback_method: str = "POST"


@dataclass
class IncomingPhoneNumber(VoiceConfig):
    phone_number: str = ""
    friendly_name: str = ""
    voice_application_sid: str | None = None
    sid: str = field(default_factory=lambda: new_sid("PN"))
    date_created: datetime | None = None
    date_updated: datetime | None = None


@dataclass
class Application(VoiceConfig):
    friendly_name: str = ""
    sid: str = field(default_factory=lambda: new_sid("AP"))
    date_created: datetime | None = None
    date_updated: datetime | None = None


@dataclass
class Recording:
    sid: str
    call_sid: str
    duration: int
    start_time: datetime
    channels: int = 1
    source: str = "RecordVerb"
    wav: bytes = b""


@dataclass
class ApiKey:
    """A Standard API key: signs AccessTokens and authenticates REST requests."""

    sid: str
    secret: str = field(repr=False)
    friendly_name: str = ""
    date_created: datetime | None = None
    date_updated: datetime | None = None
