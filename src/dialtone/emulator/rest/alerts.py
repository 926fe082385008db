"""Monitor Alerts: `GET /v1/Alerts` and `GET /v1/Alerts/{Sid}` (monitor.twilio.com, served
here at the emulator's own base URL): the errors and warnings recorded on calls
(`dialtone.emulator.monitor`), newest first, filtered by `StartDate`, `EndDate` and `LogLevel`
as twilio-python's `client.monitor.v1.alerts.list(start_date=, end_date=, log_level=)` sends
them, in the v1 paging envelope (`alerts`, `meta`)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from dialtone.emulator.monitor import Alert
from dialtone.emulator.rest.errors import TwilioApiError
from dialtone.emulator.rest.request import Paging, authenticate
from dialtone.emulator.switch import Switch

ALERTS = "/v1/Alerts"


def _iso(when: datetime) -> str:
    """v1 dates: ISO 8601 in UTC to the second (`2015-07-30T20:00:00Z`)."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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
        "request_method": alert.request_method,
        "request_url": alert.request_url,
        "resource_sid": alert.call_sid,
        "service_sid": None,
        "sid": alert.sid,
        "url": f"{switch.config.public_url}{ALERTS}/{alert.sid}",
    }
    if details:
        # The spec: these are "only returned when a single Alert resource is fetched".
        body |= {
            "request_variables": alert.request_variables,
            "request_headers": None,  # Twilio leaves it null in the alerts it returns
            "response_body": alert.response_body,
            "response_headers": alert.response_headers,
        }
    return body


def _date(request: Request, name: str, *, end_of_day: bool) -> datetime | None:
    """`YYYY-MM-DD` or `YYYY-MM-DDThh:mm:ssZ`, in GMT (the spec's StartDate/EndDate). A bare
    date given as EndDate ("on or before this date") covers that whole day."""
    value = request.query_params.get(name, "").strip()
    if not value:
        return None
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            return datetime.combine(day, time.max if end_of_day else time.min, tzinfo=UTC)
        when = datetime.fromisoformat(value)
    except ValueError:
        raise TwilioApiError(
            20001, f"{name} must be YYYY-MM-DD or YYYY-MM-DDThh:mm:ssZ: {value[:40]}"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _selected(request: Request, switch: Switch) -> list[Alert]:
    start = _date(request, "StartDate", end_of_day=False)
    end = _date(request, "EndDate", end_of_day=True)
    level = request.query_params.get("LogLevel", "").strip().lower()
    found = []
    for alert in reversed(switch.alerts):  # newest first
        when = alert.when.replace(microsecond=0)  # as dated in the response and the filters
        if start is not None and when < start:
            continue
        if end is not None and when > end:
            continue
        if level and alert.log_level != level:
            continue
        found.append(alert)
    return found


async def list_alerts(request: Request) -> JSONResponse:
    switch = authenticate(request)
    found = _selected(request, switch)
    paging = Paging.of(request)
    # Page URLs are absolute in v1 (twilio-python follows `meta.next_page_url` as given) and
    # carry the filters, as in the spec's examples.
    base, number = f"{switch.config.public_url}{ALERTS}", paging.number

    return JSONResponse(
        {
            "alerts": [alert_json(switch, a) for a in paging.chunk(found)],
            "meta": {
                "first_page_url": paging.link(base, 0),
                "key": "alerts",
                "next_page_url": paging.link(base, number + 1)
                if paging.has_next(len(found))
                else None,
                "page": number,
                "page_size": paging.size,
                "previous_page_url": paging.link(base, number - 1) if number > 0 else None,
                "url": paging.link(base, number),
            },
        }
    )


async def fetch_alert(request: Request) -> JSONResponse:
    switch = authenticate(request)
    sid = request.path_params["Sid"]
    for alert in switch.alerts:
        if alert.sid == sid:
            return JSONResponse(alert_json(switch, alert, details=True))
    raise TwilioApiError(20404, f"The requested resource /Alerts/{sid} was not found", 404)


def routes() -> list[Route]:
    return [
        Route(ALERTS, list_alerts, methods=["GET"]),
        Route(f"{ALERTS}/{{Sid}}", fetch_alert, methods=["GET"]),
    ]
