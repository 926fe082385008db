"""A call leg: Twilio's Call resource, its state machine and its ordered event log."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from dialtone.emulator.monitor import ALERT_KINDS, alert_for
from dialtone.emulator.sids import new_sid

if TYPE_CHECKING:
    from dialtone.emulator.switch import Switch

QUEUED, INITIATED, RINGING, IN_PROGRESS = "queued", "initiated", "ringing", "in-progress"
COMPLETED, BUSY, FAILED, NO_ANSWER, CANCELED = (
    "completed",
    "busy",
    "failed",
    "no-answer",
    "canceled",
)
FINAL_STATUSES = frozenset({COMPLETED, BUSY, FAILED, NO_ANSWER, CANCELED})

INBOUND, OUTBOUND_API, OUTBOUND_DIAL = "inbound", "outbound-api", "outbound-dial"

# A call's event log stops growing here (a TwiML loop left running for days); later events
# are still published live, and the log ends with one `events_truncated` marker.
MAX_EVENTS = 5000


@dataclass
class Webhooks:
    """Where a leg's TwiML and status callbacks go."""

    url: str | None = None
    method: str = "POST"
    twiml: str | None = None
    fallback_url: str | None = None
    fallback_method: str = "POST"
    status_callback: str | None = None
    status_callback_method: str = "POST"
    status_callback_events: frozenset[str] = frozenset({"completed"})

    @classmethod
    def of(cls, config: Any, **overrides: Any) -> Webhooks:
        """The voice URLs of an IncomingPhoneNumber or Application."""
        values = {
            "url": config.voice_url,
            "method": config.voice_method,
            "fallback_url": config.voice_fallback_url,
            "fallback_method": config.voice_fallback_method,
            "status_callback": config.status_callback,
            "status_callback_method": config.status_callback_method,
        }
        return cls(**{**values, **overrides})


@dataclass
class Call:
    switch: Switch = field(repr=False)
    account_sid: str
    direction: str
    from_: str
    to: str
    webhooks: Webhooks = field(default_factory=Webhooks)
    parent: Call | None = field(default=None, repr=False)
    phone_number_sid: str | None = None
    application_sid: str | None = None
    forwarded_from: str | None = None
    timeout: float = 60.0
    send_digits: str = ""
    custom_params: dict[str, str] = field(default_factory=dict)

    sid: str = field(default_factory=lambda: new_sid("CA"))
    status: str = QUEUED
    date_created: datetime = field(init=False)
    date_updated: datetime = field(init=False)
    start_time: datetime | None = None
    end_time: datetime | None = None
    answered_at: float | None = None  # clock seconds
    ended_at: float | None = None
    events: list[dict[str, Any]] = field(default_factory=list, repr=False)
    logged: int = 0  # events logged so far (the log itself stops at MAX_EVENTS)
    # What the far party of this leg does: digits it presses, and when it hangs up.
    dtmf: asyncio.Queue[str] = field(default_factory=asyncio.Queue, repr=False)
    far_end_gone: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    # Set by REST update (Url/Twiml): the running TwiML is replaced.
    pending_redirect: tuple[str | None, str, str | None] | None = None
    task: asyncio.Task | None = field(default=None, repr=False)
    pending_final: str | None = None  # the status to end with when the task is cancelled
    callback_sequence: int = 0
    caller_spoke: bool = False  # a simulated caller said its `say` (once per call)
    session: Any = field(default=None, repr=False)  # the TwiML session running on this leg
    media: Any = field(default=None, repr=False)  # LegAudio once the leg carries audio
    transport: Any = field(default=None, repr=False)  # what carries it (RtcLeg, PhoneAudio)
    on_answer: Any = field(default=None, repr=False)  # called once when the leg is answered
    on_end: Any = field(
        default=None, repr=False
    )  # called once when the leg ends  # filled by the media layer (issue: audio)

    def __post_init__(self) -> None:
        self.date_created = self.date_updated = self.switch.clock.utcnow()

    # -- state --------------------------------------------------------------------------

    @property
    def parent_sid(self) -> str | None:
        return self.parent.sid if self.parent else None

    @property
    def answered(self) -> bool:
        return self.answered_at is not None

    @property
    def ended(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def duration(self) -> int | None:
        """Whole seconds from answer to end; "empty for busy, failed, unanswered, or ongoing
        calls" (the Call resource's `duration`)."""
        if not self.ended or self.answered_at is None or self.ended_at is None:
            return None
        return int(self.ended_at - self.answered_at)

    def log(self, kind: str, **data: Any) -> dict[str, Any]:
        """Append to the ordered event log (up to MAX_EVENTS) and publish it live."""
        event = {
            "call_sid": self.sid,
            "seq": self.logged,
            "at": round(self.switch.clock.now(), 3),
            "timestamp": self.switch.clock.utcnow().isoformat(timespec="milliseconds"),
            "kind": kind,
            **data,
        }
        self.logged += 1
        if len(self.events) < MAX_EVENTS:
            self.events.append(event)
        elif len(self.events) == MAX_EVENTS:
            marker = {k: event[k] for k in ("call_sid", "seq", "at", "timestamp")}
            self.events.append({**marker, "kind": "events_truncated", "kept": MAX_EVENTS})
        if kind in ALERT_KINDS and "code" in data:
            self.switch.alerts.append(alert_for(self, event))  # Monitor Alerts
        self.switch.bus.publish(event)
        return event

    def set_status(self, status: str) -> None:
        if self.status == status or self.ended:
            return
        previous, self.status = self.status, status
        now = self.switch.clock.utcnow()
        self.date_updated = now
        if self.start_time is None:
            self.start_time = now
        if status == IN_PROGRESS and self.answered_at is None:
            self.answered_at = self.switch.clock.now()
        if status in FINAL_STATUSES:
            self.ended_at = self.switch.clock.now()
            self.end_time = now
        self.log("state", status=status, previous=previous)
