"""Structured logging: one JSON object per line, one line per event (or, for a person
running `dialtone dev`, one short sentence per event).

Callers pass named fields, never whole requests, so secrets (tokens, passwords,
signatures, auth tokens) only reach a log if someone names them — and the
formatter drops any field whose name says it is a secret, as a last guard.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
import time
from collections import deque
from collections.abc import Callable
from typing import Any

_SECRET_WORDS = ("password", "token", "secret", "signature", "authorization", "cookie")
_RESERVED = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message"}
# One encoder for every line: json.dumps with options builds a new one per call.
_ENCODER = json.JSONEncoder(default=str, ensure_ascii=False)


@functools.lru_cache(maxsize=256)
def _is_secret(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in _SECRET_WORDS)


class JsonFormatter(logging.Formatter):
    _second = -1
    _second_text = ""

    def _timestamp(self, created: float, msecs: float) -> str:
        """ISO 8601 UTC to the millisecond; strftime once per second, not once per line."""
        second = int(created)
        if second != self._second:
            self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        return f"{self._second_text}.{int(msecs):03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": self._timestamp(record.created, record.msecs),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": getattr(record, "event", None) or record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if fields is None:
            fields = {k: v for k, v in vars(record).items() if k not in _RESERVED}
        for key, value in fields.items():
            if key in ("event", "color_message"):
                continue
            entry[key] = "[redacted]" if _is_secret(key) else value
        if record.exc_info and record.exc_info[0] is not None:
            # Type only: a traceback can quote request data.
            entry["exception"] = record.exc_info[0].__name__
        return _ENCODER.encode(entry)


# -- one line a person reads (`dialtone dev`) ------------------------------------------------

_Fields = dict[str, Any]
# Client identities that are the dev console being an external phone (the emulator's naming).
_PHONE_IDENTITY = "phone."
# What several servers in one process each say at start and stop: said once.
_SAID_ONCE = frozenset(
    {
        "Started server process [%d]",
        "Waiting for application startup.",
        "Application startup complete.",
        "Shutting down",
        "Waiting for application shutdown.",
        "Application shutdown complete.",
        "Finished server process [%d]",
    }
)
_STATUS_WORDS = {
    "no-answer": "did not answer",
    "busy": "was busy",
    "failed": "could not be reached",
    "canceled": "stopped ringing",
}


class _Once(logging.Filter):
    """Lets each of uvicorn's start-up and shut-down lines through once per process."""

    def __init__(self) -> None:
        super().__init__()
        self._seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name != "uvicorn.error" or record.msg not in _SAID_ONCE:
            return True
        if record.msg in self._seen:
            return False
        self._seen.add(str(record.msg))
        return True


class HumanFormatter(logging.Formatter):
    """`12:03:04  call CA1b2c3d4e from 090-5987-6543 to 050-3123-4567`: the events a person
    running `dialtone dev` follows, as short sentences in local time; other events as their
    name and fields; the bookkeeping (status callbacks, token refreshes, libraries' INFO lines)
    as nothing. Numbers are shown as people write them: national inside `region`."""

    def __init__(self, region: str | None = None) -> None:
        super().__init__()
        self.region = region.upper() if region else None
        # Legs that rang nobody: their "did not answer" would only repeat why.
        self.unavailable: deque[str] = deque(maxlen=64)

    def format(self, record: logging.LogRecord) -> str:
        """The line, or "" for an event not worth a line (the handler drops those)."""
        name = getattr(record, "event", None)
        fields = getattr(record, "fields", None) or {}
        if name is None:
            text = self._plain(record)
        else:
            describe = _DESCRIPTIONS.get(name)
            text = describe(self, fields) if describe else self._generic(name, fields)
        if not text:
            return ""
        if record.levelno >= logging.ERROR:
            text = f"error: {text}"
        elif record.levelno >= logging.WARNING:
            text = f"warning: {text}"
        if record.exc_info and record.exc_info[0] is not None:
            text += f" ({record.exc_info[0].__name__})"  # the type only, as in JSON
        clock = time.strftime("%H:%M:%S", time.localtime(record.created))
        return f"{clock}  {text}"

    def _plain(self, record: logging.LogRecord) -> str:
        # Libraries' INFO lines (uvicorn's start-up, httpx's requests) repeat the banner.
        if record.levelno < logging.WARNING:
            return ""
        return f"{record.name}: {record.getMessage()}"[:300]

    def _generic(self, name: str, fields: _Fields) -> str:
        shown = " ".join(
            f"{key}={'[redacted]' if _is_secret(key) else _short(value)}"
            for key, value in fields.items()
            if value is not None
        )
        return f"{name.replace('_', ' ')}  {shown}".strip()

    # -- the parts of a sentence ------------------------------------------------------------

    def number(self, value: object) -> str:
        """090-5987-6543 at home, +1 202-555-0100 abroad; Client identities as themselves."""
        text = str(value or "")
        text = text.removeprefix("client:")
        digits = text.removeprefix(_PHONE_IDENTITY)
        if text.startswith(_PHONE_IDENTITY) and digits.isdigit():
            return f"{self.number('+' + digits)} (dev console)"
        if not text.startswith("+"):
            return text
        import phonenumbers  # only when a person reads the log

        try:
            parsed = phonenumbers.parse(text)
        except phonenumbers.NumberParseException:
            return text
        home = self.region and phonenumbers.region_code_for_number(parsed) == self.region
        style = phonenumbers.PhoneNumberFormat
        return phonenumbers.format_number(parsed, style.NATIONAL if home else style.INTERNATIONAL)

    @staticmethod
    def call(fields: _Fields) -> str:
        """The call a person follows: a <Dial>'s leg is shown as its parent call."""
        sid = str(fields.get("parent_call_sid") or fields.get("call_sid") or "")
        return f"call {sid[:10]}" if sid else "call"


def _short(value: object) -> str:
    text = str(value)
    text = text if len(text) <= 80 else text[:79] + "…"
    return f'"{text}"' if " " in text else text


def _call_created(h: HumanFormatter, f: _Fields) -> str:
    direction = f.get("direction")
    if direction == "outbound-dial":
        return ""  # its ringing line says it
    caller = str(f.get("from") or "")
    if caller.startswith("client:"):
        where = f"from {h.number(caller)}'s browser phone"
    else:
        where = f"from {h.number(caller)} to {h.number(f.get('to'))}"
    return f"{h.call(f)} {where}" + (" (REST API)" if direction == "outbound-api" else "")


def _call_ringing(h: HumanFormatter, f: _Fields) -> str:
    devices = f.get("devices") or 0
    what = f"{devices} browser{'s' if devices != 1 else ''}" if devices else "simulated phone"
    return f"{h.call(f)} → ringing {h.number(f.get('to'))} ({what})"


def _call_answered(h: HumanFormatter, f: _Fields) -> str:
    if f.get("parent_call_sid"):
        return f"{h.call(f)} answered by {h.number(f.get('to'))}"
    if f.get("direction") == "outbound-api":
        return f"{h.call(f)} answered by {h.number(f.get('to'))}"
    return ""  # an incoming call's own answer is its TwiML starting


def _call_ended(h: HumanFormatter, f: _Fields) -> str:
    status = str(f.get("status"))
    if f.get("parent_call_sid"):
        if status in ("completed", "canceled") or f.get("call_sid") in h.unavailable:
            return ""  # the call's own end follows
        return f"{h.call(f)}: {h.number(f.get('to'))} {_STATUS_WORDS.get(status, status)}"
    duration = f.get("duration")
    length = f", {duration} s" if duration is not None and status == "completed" else ""
    return f"{h.call(f)} ended ({status}{length})"


def _client_unavailable(h: HumanFormatter, f: _Fields) -> str:
    h.unavailable.append(str(f.get("call_sid")))
    return (
        f"{h.call(f)}: no phone is signed in as {h.number(f.get('to'))}, so nothing rings — "
        "open the phone and sign in"
    )


def _incoming(h: HumanFormatter, f: _Fields) -> str:
    if f.get("outcome") != "refused":
        return ""  # the emulator's ringing line says where it went
    if f.get("reason") == "number not registered":
        return (
            f"{h.call(f)}: {h.number(f.get('to'))} is not a registered line "
            "(see `dialtone lines`); the caller hears an apology"
        )
    return f"{h.call(f)} refused by the API server: {f.get('reason')}"


def _outgoing(h: HumanFormatter, f: _Fields) -> str:
    outcome = f.get("outcome")
    if outcome == "dial_number":
        return f"{h.call(f)}: {h.number(f.get('from'))} dials {h.number(f.get('to'))}"
    if outcome == "dial_client":
        return f"{h.call(f)}: {h.number(f.get('from'))} dials another line ({f.get('client')})"
    return f"{h.call(f)} refused by the API server: {f.get('reason')}"


def _token_issued(h: HumanFormatter, f: _Fields) -> str:
    return f"{h.number(f.get('number'))} signed in as {f.get('identity')} (from {f.get('client')})"


def _token_refused(h: HumanFormatter, f: _Fields) -> str:
    return f"sign-in to {h.number(f.get('number'))} refused: unknown line or wrong password"


def _registered(h: HumanFormatter, f: _Fields) -> str:
    return f"{h.number(f.get('identity'))} is ready for calls"


def _unregistered(h: HumanFormatter, f: _Fields) -> str:
    return f"{h.number(f.get('identity'))} is no longer ready for calls"


def _held(h: HumanFormatter, f: _Fields) -> str:
    return (
        f"{h.call(f)}: {h.number(f.get('identity'))}'s connection dropped; "
        f"the call waits {f.get('hold')} s for it to come back"
    )


def _resumed(h: HumanFormatter, f: _Fields) -> str:
    return f"{h.call(f)}: {h.number(f.get('identity'))} is back, the call goes on"


def _hold_expired(h: HumanFormatter, f: _Fields) -> str:
    return f"{h.call(f)}: {h.number(f.get('identity'))} did not come back in time"


def _nothing(h: HumanFormatter, f: _Fields) -> str:
    return ""


_DESCRIPTIONS: dict[str, Callable[[HumanFormatter, _Fields], str]] = {
    "call_created": _call_created,
    "call_ringing": _call_ringing,
    "call_answered": _call_answered,
    "call_ended": _call_ended,
    "client_unavailable": _client_unavailable,
    "webhook_call_incoming": _incoming,
    "webhook_call_outgoing": _outgoing,
    "webhook_status_callback": _nothing,
    "webhook_dial_ended": _nothing,  # the emulator's own lines say how the call ended
    "token_issued": _token_issued,
    "token_refused": _token_refused,
    "token_refreshed": _nothing,
    "signal_connected": _nothing,
    "signal_closed": _nothing,
    "signal_registered": _registered,
    "signal_unregistered": _unregistered,
    "signal_call_held": _held,
    "signal_call_resumed": _resumed,
    "signal_hold_expired": _hold_expired,
}


class _LineHandler(logging.StreamHandler):
    """Writes a formatted line unless the formatter made it empty."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
            if line:
                self.stream.write(line + self.terminator)
                self.flush()
        except Exception:
            self.handleError(record)


def configure(level: str = "INFO", *, human: bool = False, region: str | None = None) -> None:
    """Route every logger (ours, uvicorn's, alembic's) through one formatter: JSON lines, or
    with `human` one short sentence per event (`dialtone dev`)."""
    # The formatter writes none of these: not collecting them saves a frame walk and three
    # lookups per line (the logging HOWTO's "Optimization").
    logging._srcfile = None  # type: ignore[attr-defined]
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = _LineHandler(sys.stderr)
    handler.setFormatter(HumanFormatter(region) if human else JsonFormatter())
    handler.addFilter(_Once())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "alembic"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    # Below WARNING these narrate every request, candidate pair and packet timer.
    for name in ("alembic", "aioice", "aiortc", "httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)


def event(
    logger: logging.Logger, name: str, *, level: int = logging.INFO, **fields: object
) -> None:
    """Log one event with named fields."""
    logger.log(level, name, extra={"event": name, "fields": fields})
