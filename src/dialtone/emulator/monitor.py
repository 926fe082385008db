"""The debugger's alerts (Monitor Alerts, `NO…`): one for each error or warning Twilio records
on a call — webhook failures (11200, 11205), TwiML errors (12100, 12300), status callbacks
answered with an error (15003), … — with the request it is about. The switch keeps them apart
from the calls: Twilio keeps alerts for 30 days, whatever becomes of the call."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from dialtone.emulator.sids import new_sid

if TYPE_CHECKING:
    from dialtone.emulator.call import Call

# Event kinds of a call's log that Twilio reports as alerts.
ALERT_KINDS = ("error", "warning")

# Twilio's Error and Warning Dictionary gives each code one log level
# (twilio.com/docs/api/errors/<code>, "Log Level: ERROR" / "WARNING"): HTTP failures, document
# errors and 13224 are errors — a <Play> URL that fails is an "error" 11200 alert too (an alert
# recorded from Twilio in kevinburke/twilio-go's fixtures) — while 12200 and 15003 are warnings.
# A code not listed keeps the level the call's event log gave it.
LOG_LEVELS = {
    **dict.fromkeys((11100, 11200, 11205, 11210, 11215, 11750), "error"),
    **dict.fromkeys((12100, 12101, 12102, 12300, 13224), "error"),
    **dict.fromkeys((12200, 15003), "warning"),
}


@dataclass(frozen=True)
class Alert:
    sid: str
    call_sid: str
    error_code: int
    log_level: str  # "error" or "warning"
    message: str
    when: datetime
    request_url: str | None = None
    request_method: str | None = None
    request_variables: str | None = None  # form-encoded, as Twilio shows them
    response_status: int | None = None
    response_body: str | None = None
    response_headers: str | None = None  # form-encoded

    @property
    def text(self) -> str:
        """`alert_text` as Twilio writes it: form-encoded `Msg`, `ErrorCode`, `LogLevel`, `url`
        and `httpResponse` (e.g. `Msg=…&ErrorCode=11200&httpResponse=405&url=…&LogLevel=ERROR`
        in alerts recorded from Twilio)."""
        fields: list[tuple[str, object]] = [
            ("Msg", self.message),
            ("ErrorCode", self.error_code),
            ("LogLevel", self.log_level.upper()),
        ]
        if self.request_url:
            fields.append(("url", self.request_url))
        if self.response_status is not None:
            fields.append(("httpResponse", self.response_status))
        return urlencode(fields)


def _request_of(call: Call, event: dict[str, Any]) -> dict[str, Any] | None:
    """The webhook request an error is about: the last one to its URL before it."""
    url = event.get("url")
    if not url:
        return None
    url = str(url).split("#", 1)[0]  # overrides (#ct=…) are never sent, so never logged
    for earlier in reversed(call.events[: event["seq"]]):
        if earlier["kind"] == "webhook" and earlier.get("url") == url:
            return earlier
    return None


def alert_for(call: Call, event: dict[str, Any]) -> Alert:
    """The alert Twilio records for an `error`/`warning` event that carries a `code`."""
    code = int(event["code"])
    request = _request_of(call, event) or {}
    headers = request.get("response_headers")
    parameters = request.get("parameters")
    return Alert(
        sid=new_sid("NO"),
        call_sid=call.sid,
        error_code=code,
        log_level=LOG_LEVELS.get(code, event["kind"]),
        message=str(event.get("message", "")),
        when=datetime.fromisoformat(event["timestamp"]),
        request_url=event.get("url"),
        request_method=request.get("method"),
        request_variables=urlencode(parameters) if parameters is not None else None,
        response_status=request.get("status"),
        response_body=request.get("response_body"),
        response_headers=urlencode(headers) if headers is not None else None,
    )
