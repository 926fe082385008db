"""Call history from Twilio's status callbacks: one row per call leg, one per event; and how
each call's <Dial> ended, from the <Dial> action request (DialCallStatus)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from dialtone import phone
from dialtone.server.db import Database
from dialtone.server.models import Call, CallEvent, Line, utcnow

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

_CALL_SID = re.compile(r"^CA[0-9a-fA-F]{32}$")
_STATUSES = frozenset(
    {
        "queued",
        "initiated",
        "ringing",
        "in-progress",
        "completed",
        "busy",
        "failed",
        "no-answer",
        "canceled",
    }
)

# A <Dial> action's DialCallStatus (reference §8; "answered" is unverified and not ours).
DIAL_STATUSES = frozenset({"completed", "busy", "no-answer", "failed", "canceled"})

# What a status callback carries (Twilio's names; none is a secret), the only parameters a
# log line may repeat. Anything else a request holds (a custom parameter, a CallToken) is
# left out, whatever it is.
STATUS_CALLBACK_PARAMETERS = frozenset(
    {
        "AccountSid",
        "ApiVersion",
        "ApplicationSid",
        "CallSid",
        "ParentCallSid",
        "CallStatus",
        "CallDuration",
        "Duration",
        "Direction",
        "From",
        "To",
        "Caller",
        "Called",
        "ForwardedFrom",
        "CallerName",
        *(
            f"{who}{part}"
            for who in ("From", "To", "Caller", "Called")
            for part in ("City", "State", "Zip", "Country")
        ),
        "SequenceNumber",
        "Timestamp",
        "CallbackSource",
        "SipResponseCode",
        "AnsweredBy",
        "QueueTime",
        "StirVerstat",
        "RecordingUrl",
        "RecordingSid",
        "RecordingDuration",
    }
)
# What a <Dial> action request adds to a call's parameters (reference §2.5).
DIAL_ACTION_PARAMETERS = frozenset({"DialCallStatus", "DialCallSid", "DialCallDuration"})


class BadStatusCallback(ValueError):
    pass


def replayable(params: Mapping[str, str]) -> dict[str, str]:
    """The status callback's (or <Dial> action's) own parameters, as a log line may keep them
    for a replay."""
    return {
        name: value[:300]
        for name, value in params.items()
        if name in STATUS_CALLBACK_PARAMETERS or name in DIAL_ACTION_PARAMETERS
    }


def _int(params: Mapping[str, str], name: str) -> int | None:
    value = params.get(name, "").strip()
    if not value:
        return None
    if not value.isdigit():
        raise BadStatusCallback(f"{name} must be a whole number, not {value[:20]!r}")
    return int(value)


def _timestamp(value: str) -> datetime:
    """Twilio's `Timestamp` is RFC 2822; without one, the time it arrived."""
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return utcnow()
    return parsed if parsed.tzinfo else utcnow()


def _call_of(params: Mapping[str, str], status: str) -> tuple[str, str, str | None]:
    """CallSid, CallStatus and ParentCallSid, checked."""
    call_sid = params.get("CallSid", "")
    if not _CALL_SID.match(call_sid):
        raise BadStatusCallback("CallSid must be CA followed by 32 hex digits")
    if status not in _STATUSES:
        raise BadStatusCallback(f"CallStatus {status[:20]!r} is not a call status")
    parent = params.get("ParentCallSid") or None
    if parent is not None and not _CALL_SID.match(parent):
        raise BadStatusCallback("ParentCallSid must be CA followed by 32 hex digits")
    return call_sid, status, parent


class CallHistory:
    def __init__(self, db: Database) -> None:
        self.db = db

    def record(self, params: Mapping[str, str]) -> bool:
        """Store one status callback. False when it was already stored (a redelivery)."""
        call_sid, status, parent = _call_of(params, params.get("CallStatus", ""))
        sequence = _int(params, "SequenceNumber")
        duration = _int(params, "CallDuration")
        when = _timestamp(params.get("Timestamp", ""))
        # Delivery order is not guaranteed: order by SequenceNumber, dedupe on it.
        key = f"seq:{sequence}" if sequence is not None else f"status:{status}"
        order = sequence if sequence is not None else -1

        for attempt in range(2):
            try:
                with self.db.session() as session:
                    exists = session.scalar(
                        select(CallEvent.id).where(
                            CallEvent.call_sid == call_sid, CallEvent.event_key == key
                        )
                    )
                    if exists:
                        return False
                    session.add(
                        CallEvent(
                            call_sid=call_sid,
                            event_key=key,
                            sequence_number=sequence,
                            call_status=status,
                            call_duration=duration,
                            timestamp=when,
                        )
                    )
                    call = session.get(Call, call_sid)
                    if call is None:
                        call = self._new_call(session, params, call_sid, parent, status, when)
                        call.duration = duration
                        call.last_sequence_number = order
                        session.add(call)
                    else:
                        call.started_at = min(call.started_at, when)
                        if order >= call.last_sequence_number:
                            call.status = status
                            call.last_sequence_number = order
                            call.updated_at = max(call.updated_at, when)
                            if duration is not None:
                                call.duration = duration
                return True
            except IntegrityError:
                # A concurrent delivery of the same event (or first event of the call) won.
                if attempt:
                    raise
        return False

    def record_dial(self, params: Mapping[str, str]) -> bool:
        """Store how a call's <Dial> ended, from its action request. The request may come
        before any status callback of the call (the parent's `completed` comes after it) or
        with none configured: it then creates the call's row from its own parameters, which
        later status callbacks complete. False when it was already stored (a redelivery)."""
        call_sid, status, parent = _call_of(params, params.get("CallStatus", "") or "in-progress")
        dial_status = params.get("DialCallStatus", "")
        if dial_status not in DIAL_STATUSES:
            raise BadStatusCallback(f"DialCallStatus {dial_status[:20]!r} is not a dial status")
        dial_duration = _int(params, "DialCallDuration")
        now = utcnow()

        for attempt in range(2):
            try:
                with self.db.session() as session:
                    call = session.get(Call, call_sid)
                    if call is None:
                        # Status callbacks (their SequenceNumber >= 0) override this status.
                        call = self._new_call(session, params, call_sid, parent, status, now)
                        call.last_sequence_number = -1
                        call.dial_status, call.dial_duration = dial_status, dial_duration
                        session.add(call)
                        return True
                    if (call.dial_status, call.dial_duration) == (dial_status, dial_duration):
                        return False
                    call.dial_status = dial_status
                    call.dial_duration = dial_duration
                    call.updated_at = max(call.updated_at, now)
                return True
            except IntegrityError:
                # A status callback created the row meanwhile: update it instead.
                if attempt:
                    raise
        return False

    @classmethod
    def _new_call(
        cls,
        session: Session,
        params: Mapping[str, str],
        call_sid: str,
        parent: str | None,
        status: str,
        when: datetime,
    ) -> Call:
        """A call's row from the first request that tells of it (its own parameters)."""
        return Call(
            call_sid=call_sid,
            parent_call_sid=parent,
            line_number=cls._line_of(session, params),
            from_=params.get("From", "")[:300],
            to=params.get("To", "")[:300],
            direction=params.get("Direction", "")[:32],
            status=status,
            started_at=when,
            updated_at=when,
        )

    @staticmethod
    def _line_of(session: Session, params: Mapping[str, str]) -> str | None:
        """The line of a call: its client caller, else our number it reached or left from."""
        sender = params.get("From", "")
        if sender.startswith("client:"):
            return session.scalar(
                select(Line.phone_number).where(Line.client_name == sender.removeprefix("client:"))
            )
        candidates = []
        for name in ("To", "From"):
            try:
                candidates.append(phone.to_e164(params.get(name, "")))
            except phone.InvalidNumber:
                continue
        if not candidates:
            return None
        found = set(
            session.scalars(select(Line.phone_number).where(Line.phone_number.in_(candidates)))
        )
        return next((number for number in candidates if number in found), None)


# A call still "ringing" (or queued) this long after its last news, or "in-progress" past
# <Dial>'s longest timeLimit (4 h), has ended without its final status callback reaching us
# (lost, or status callbacks not configured): shown as "unknown", never ringing forever.
RINGING_STATUSES = frozenset({"queued", "initiated", "ringing"})
RINGING_FOR_AT_MOST = timedelta(minutes=5)
IN_PROGRESS_FOR_AT_MOST = timedelta(hours=4, minutes=5)


def _final_status(call: Call, now: datetime) -> str:
    if call.dial_status is not None and (
        call.status in RINGING_STATUSES or call.status == "in-progress"
    ):
        # Its <Dial> ended and the server's action answers no further verb: the call ended
        # then, whether or not its final status callback reached us.
        return "completed"
    silent_for = now - call.updated_at
    if call.status in RINGING_STATUSES and silent_for > RINGING_FOR_AT_MOST:
        return "unknown"
    if call.status == "in-progress" and silent_for > IN_PROGRESS_FOR_AT_MOST:
        return "unknown"
    return call.status


# What the server's refusal reasons (webhooks.Refusal) mean, for the phone's own words.
_REFUSAL_KINDS = (
    (re.compile(r"^country code \+(?P<code>\d+) not allowed"), "country"),
    (re.compile(r"^(premium-rate|shared-cost) destination"), "costly"),
    (re.compile(r"^invalid destination"), "invalid"),
    (re.compile(r"^destination is the line itself"), "self"),
    (re.compile(r"^caller id does not belong"), "caller-id"),
)
_FINAL = {"busy": "busy", "no-answer": "no-answer", "canceled": "canceled", "failed": "failed"}
# How a <Dial> ended (DialCallStatus), as each side's phone says it. An incoming call's
# <Dial><Client> ends `busy` when the browser declines it (the Voice SDK's call.reject()).
_DIALLED_OUT = {
    "completed": "answered",
    "busy": "busy",
    "no-answer": "no-answer",
    "failed": "failed",
    "canceled": "canceled",
}
_DIALLED_IN = {
    "completed": "answered",
    "busy": "declined",
    "no-answer": "missed",
    "canceled": "missed",
    "failed": "missed",
}


def _refusal(reason: str) -> dict:
    for pattern, kind in _REFUSAL_KINDS:
        if match := pattern.match(reason):
            found = {"kind": kind, "reason": reason}
            if "code" in pattern.groupindex:
                found["countryCode"] = int(match["code"])
            return found
    return {"kind": "other", "reason": reason}


def _outcome(call: Call, status: str, outgoing: bool) -> str | None:
    """How the call ended, as a phone's history says it: from its <Dial>'s DialCallStatus
    when the action request told it. Without one (rows from before it, or a lost action) from
    the parent leg's status, which cannot tell everything: an incoming call's parent leg ends
    `completed` whether the browser answered, declined or missed it (its <Dial> answered the
    caller): None then."""
    if call.refusal:
        return "refused"
    if call.dial_status is not None:
        return (_DIALLED_OUT if outgoing else _DIALLED_IN).get(call.dial_status, "unknown")
    if status in _FINAL:
        return _FINAL[status] if outgoing else "missed"
    if status == "unknown":
        return "unknown"
    if status != "completed":
        return "ongoing"
    # answerOnBridge: an outgoing call is answered only when the callee picks up.
    return "answered" if outgoing else None


def recent_calls(db: Database, line_number: str, limit: int = 50) -> list[dict]:
    """The line's calls, newest first, as a phone shows them: which way, the other party
    (E.164, and as people at home write it), how it ended and how long it lasted (parent legs
    only)."""
    region = phone.region_of(line_number)
    with db.session() as session:
        calls = session.scalars(
            select(Call)
            .where(Call.line_number == line_number, Call.parent_call_sid.is_(None))
            .order_by(Call.started_at.desc())
            .limit(limit)
        ).all()
        children = {
            c.parent_call_sid: c
            for c in session.scalars(
                select(Call).where(Call.parent_call_sid.in_([c.call_sid for c in calls]))
            )
        }
    entries = []
    now = datetime.now(UTC)
    for call in calls:
        outgoing = call.from_.startswith("client:")
        status = _final_status(call, now)
        child = children.get(call.call_sid)
        other = call.to if outgoing else call.from_
        if outgoing and child is not None and child.to.startswith("+"):
            other = child.to
        entries.append(
            {
                "callSid": call.call_sid,
                "direction": "outgoing" if outgoing else "incoming",
                "number": other,
                "display": phone.display(other, region),
                "status": status,
                "outcome": _outcome(call, status, outgoing),
                "refusal": _refusal(call.refusal) if call.refusal else None,
                "duration": call.duration,
                "dialStatus": call.dial_status,
                "dialDuration": call.dial_duration,
                "startedAt": call.started_at.isoformat(),
            }
        )
    return entries
