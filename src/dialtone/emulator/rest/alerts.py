"""Monitor Alerts: `/v1/Alerts` (monitor.twilio.com), the errors and warnings the emulator
recorded on its calls (webhook failures 11200/11205, TwiML errors 12100, …), newest first,
filtered by StartDate/EndDate (ISO 8601) and LogLevel, in the v1 paging envelope."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from dialtone.emulator.rest.errors import TwilioApiError, not_found
from dialtone.emulator.rest.request import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, authenticate
from dialtone.emulator.switch import Switch

ALERTS = "/v1/Alerts"


@dataclass(frozen=True)
class Alert:
    sid: str
    call_sid: str
    error_code: int
    log_level: str  # "error" or "warning", as the call's event log has it
    text: str
    url: str | None
    when: datetime


def _iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def alerts(switch: Switch) -> list[Alert]:
    found = []
    for call in list(switch.calls.values()):
        for event in list(call.events):
            if event["kind"] not in ("error", "warning") or "code" not in event:
                continue
            digest = hashlib.sha256(f"{call.sid}:{event['seq']}".encode()).hexdigest()[:32]
            found.append(
                Alert(
                    sid="NO" + digest,
                    call_sid=call.sid,
                    error_code=int(event["code"]),
                    log_level=event["kind"],
                    text=str(event.get("message", "")),
                    url=event.get("url"),
                    when=datetime.fromisoformat(event["timestamp"]),
                )
            )
    return sorted(found, key=lambda a: a.when, reverse=True)


def alert_json(switch: Switch, alert: Alert, *, details: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "account_sid": switch.credentials.account_sid,
        "alert_text": alert.text,
        "api_version": "2010-04-01",
        "date_created": _iso(alert.when),
        "date_generated": _iso(alert.when),
        "date_updated": _iso(alert.when),
        "error_code": str(alert.error_code),
        "log_level": alert.log_level,
        "more_info": f"https://www.twilio.com/docs/errors/{alert.error_code}",
        "request_method": "POST" if alert.url else None,
        "request_url": alert.url,
        "resource_sid": alert.call_sid,
        "service_sid": None,
        "sid": alert.sid,
        "url": f"{switch.config.public_url}{ALERTS}/{alert.sid}",
    }
    if details:  # only a single alert carries what was sent and received
        body |= {
            "request_variables": None,
            "request_headers": None,
            "response_body": None,
            "response_headers": None,
        }
    return body


def _date(request: Request, name: str) -> datetime | None:
    value = request.query_params.get(name)
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise TwilioApiError(20001, f"{name} must be an ISO 8601 date and time") from None


async def list_alerts(request: Request) -> JSONResponse:
    switch = authenticate(request)
    start, end = _date(request, "StartDate"), _date(request, "EndDate")
    level = request.query_params.get("LogLevel")
    found = [
        a
        for a in alerts(switch)
        if (start is None or a.when >= start)
        and (end is None or a.when <= end)
        and (not level or a.log_level == level)
    ]
    try:
        size = int(request.query_params.get("PageSize", DEFAULT_PAGE_SIZE))
        number = int(request.query_params.get("Page", 0))
    except ValueError:
        raise TwilioApiError(20001, "PageSize and Page must be integers") from None
    size, number = max(1, min(size, MAX_PAGE_SIZE)), max(0, number)
    chunk = found[number * size : (number + 1) * size]
    filters = [
        (k, v)
        for k, v in request.query_params.multi_items()
        if k not in ("Page", "PageSize", "PageToken")
    ]
    base = f"{switch.config.public_url}{ALERTS}"

    def url(page_number: int) -> str:
        return f"{base}?{urlencode([*filters, ('PageSize', size), ('Page', page_number)])}"

    return JSONResponse(
        {
            "alerts": [alert_json(switch, a) for a in chunk],
            "meta": {
                "first_page_url": url(0),
                "key": "alerts",
                "next_page_url": url(number + 1) if (number + 1) * size < len(found) else None,
                "page": number,
                "page_size": size,
                "previous_page_url": url(number - 1) if number > 0 else None,
                "url": url(number),
            },
        }
    )


async def fetch_alert(request: Request) -> JSONResponse:
    switch = authenticate(request)
    sid = request.path_params["Sid"]
    for alert in alerts(switch):
        if alert.sid == sid:
            return JSONResponse(alert_json(switch, alert, details=True))
    raise not_found("Alerts", sid)


def routes() -> list[Route]:
    return [
        Route(ALERTS, list_alerts, methods=["GET"]),
        Route(f"{ALERTS}/{{Sid}}", fetch_alert, methods=["GET"]),
    ]
