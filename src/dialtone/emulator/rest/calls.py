"""`/Accounts/{AccountSid}/Calls.json`: create, list, fetch, update, delete (reference §6.1)."""

from __future__ import annotations

import asyncio
import re

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dialtone import phone
from dialtone.emulator.call import (
    CANCELED,
    COMPLETED,
    IN_PROGRESS,
    OUTBOUND_API,
    QUEUED,
    RINGING,
    Call,
    Webhooks,
)
from dialtone.emulator.rest.errors import TwilioApiError, not_found
from dialtone.emulator.rest.request import (
    API,
    authenticate,
    form,
    method_param,
    page,
    rfc2822,
    url_param,
)
from dialtone.emulator.sids import is_sid
from dialtone.emulator.switch import Switch

CALLBACK_EVENTS = frozenset({"initiated", "ringing", "answered", "completed"})
MAX_TWIML = 4000
_SEND_DIGITS = re.compile(r"^[0-9A-D#*wW]{1,32}$")


def _formatted(address: str) -> str:
    if not address.startswith("+"):
        return address
    try:
        number = phone.parse(address)
    except phone.InvalidNumber:
        return address
    import phonenumbers

    # North American numbers are shown nationally, the rest in E.164 (the spec's description).
    if number.country_code == 1:
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    return phone.format_e164(number)


def call_json(switch: Switch, call: Call) -> dict:
    account = call.account_sid
    base = f"{API}/Accounts/{account}/Calls/{call.sid}"
    return {
        "sid": call.sid,
        "date_created": rfc2822(switch, call.date_created),
        "date_updated": rfc2822(switch, call.date_updated),
        "parent_call_sid": call.parent_sid,
        "account_sid": account,
        "to": call.to,
        "to_formatted": _formatted(call.to),
        "from": call.from_,
        "from_formatted": _formatted(call.from_),
        "phone_number_sid": call.phone_number_sid,
        "status": call.status,
        "start_time": rfc2822(switch, call.start_time),
        "end_time": rfc2822(switch, call.end_time),
        "duration": str(call.duration) if call.duration is not None else None,
        "price": None,
        "price_unit": "USD",
        "direction": call.direction,
        "answered_by": None,
        "api_version": "2010-04-01",
        "forwarded_from": call.forwarded_from,
        "group_sid": None,
        "caller_name": None,
        "queue_time": "0",
        "trunk_sid": None,
        "uri": f"{base}.json",
        "subresource_uris": {
            name: f"{base}/{path}.json"
            for name, path in (
                ("feedback", "Feedback"),
                ("notifications", "Notifications"),
                ("recordings", "Recordings"),
                ("streams", "Streams"),
                ("payments", "Payments"),
                ("siprec", "Siprec"),
                ("events", "Events"),
                ("feedback_summaries", "FeedbackSummary"),
                ("user_defined_message_subscriptions", "UserDefinedMessageSubscriptions"),
                ("user_defined_messages", "UserDefinedMessages"),
                ("transcriptions", "Transcriptions"),
            )
        },
    }


def _address(switch: Switch, value: str, name: str, missing: int, invalid: int) -> str:
    value = (value or "").strip()
    if not value:
        raise TwilioApiError(missing, f"No '{name}' number is specified")
    if value.startswith("client:"):
        if len(value) == len("client:"):
            raise TwilioApiError(invalid, f"Invalid '{name}' Phone Number: {value}")
        return value
    try:
        return phone.to_e164(value)
    except phone.InvalidNumber:
        raise TwilioApiError(invalid, f"Invalid '{name}' Phone Number: {value[:64]}") from None


async def create(request: Request) -> JSONResponse:
    switch = authenticate(request)
    data = await form(request)
    to = _address(switch, data.get("To", ""), "To", 21201, 21211)
    from_ = _address(switch, data.get("From", ""), "From", 21213, 21212)
    if not from_.startswith("client:") and switch.number_for(from_) is None:
        raise TwilioApiError(
            21210,
            f"The source phone number provided, {from_}, is not yet verified for your account.",
        )
    url = url_param(data, "Url")
    twiml = data.get("Twiml") or None
    application_sid = data.get("ApplicationSid") or None
    if not (url or twiml or application_sid):
        raise TwilioApiError(21205, "Either Url, Twiml, or ApplicationSid parameter is required.")
    if twiml and len(twiml) > MAX_TWIML:
        raise TwilioApiError(21232, f"Twiml is limited to {MAX_TWIML} characters")
    events = frozenset(e for value in data.getlist("StatusCallbackEvent") for e in value.split())
    if events - CALLBACK_EVENTS:
        raise TwilioApiError(
            21626, f"Invalid StatusCallbackEvent: {', '.join(sorted(events - CALLBACK_EVENTS))}"
        )
    try:
        timeout = int(data.get("Timeout") or 60)
    except ValueError:
        raise TwilioApiError(21216, "Timeout must be an integer") from None
    if not 1 <= timeout <= 600:
        raise TwilioApiError(21216, "Timeout must be between 1 and 600 seconds")
    send_digits = data.get("SendDigits") or ""
    if send_digits and not _SEND_DIGITS.match(send_digits):
        raise TwilioApiError(21606, "SendDigits may hold at most 32 of 0-9, A-D, #, * and w")

    hooks = Webhooks(
        url=url,
        method=method_param(data, "Method"),
        twiml=twiml if not url else None,
        fallback_url=url_param(data, "FallbackUrl"),
        fallback_method=method_param(data, "FallbackMethod"),
        status_callback=url_param(data, "StatusCallback"),
        status_callback_method=method_param(data, "StatusCallbackMethod"),
        status_callback_events=events or frozenset({"completed"}),
    )
    if application_sid and not (url or twiml):
        application = switch.applications.get(application_sid)
        if application is None or not is_sid(application_sid, "AP"):
            raise TwilioApiError(
                21218, f"ApplicationSid {application_sid[:40]} is not an application"
            )
        # The app's URLs win over the request's (reference §6.1).
        hooks = Webhooks.of(
            application,
            status_callback=application.status_callback or hooks.status_callback,
            status_callback_events=hooks.status_callback_events,
        )
    call = Call(
        switch=switch,
        account_sid=switch.credentials.account_sid,
        direction=OUTBOUND_API,
        from_=from_,
        to=to,
        webhooks=hooks,
        application_sid=application_sid if not (url or twiml) else None,
        timeout=float(timeout),
        send_digits=send_digits,
    )
    switch.place_api_call(call)
    return JSONResponse(call_json(switch, call), status_code=201)


def _find(switch: Switch, sid: str) -> Call:
    switch.history.prune()  # a call past the history's age is gone even on an idle emulator
    call = switch.calls.get(sid)
    if call is None:
        raise not_found("Calls", sid)
    return call


async def fetch(request: Request) -> JSONResponse:
    switch = authenticate(request)
    return JSONResponse(call_json(switch, _find(switch, request.path_params["Sid"])))


async def list_calls(request: Request) -> JSONResponse:
    switch = authenticate(request)
    query = request.query_params
    switch.history.prune()
    calls = list(reversed(switch.calls.values()))  # newest first, as Twilio lists them
    for name, attribute in (
        ("To", "to"),
        ("From", "from_"),
        ("Status", "status"),
        ("ParentCallSid", "parent_sid"),
    ):
        if query.get(name):
            wanted = query[name]
            calls = [c for c in calls if getattr(c, attribute) == wanted]
    return page(request, "calls", calls, lambda call: call_json(switch, call))


async def update(request: Request) -> JSONResponse:
    switch = authenticate(request)
    call = _find(switch, request.path_params["Sid"])
    data = await form(request)
    status = data.get("Status")
    url = url_param(data, "Url")
    twiml = data.get("Twiml") or None
    if status not in (None, "", COMPLETED, CANCELED):
        raise TwilioApiError(21218, "Status must be completed or canceled")
    if status:
        if call.ended:
            pass  # nothing left to end
        elif status == CANCELED:
            # `canceled` only affects calls that have not been answered.
            if call.status in (QUEUED, RINGING):
                switch.hang_up(call, CANCELED)
        else:
            switch.hang_up(call, COMPLETED if call.status == IN_PROGRESS else CANCELED)
        if call.task is not None and not call.task.done():
            # Let the hang-up take effect so the answer shows the final status.
            await asyncio.wait({call.task}, timeout=2)
    elif url or twiml:
        if call.status != IN_PROGRESS or call.session is None:
            raise TwilioApiError(21220, "Call is not in-progress. Cannot redirect.")
        call.log("redirected_by_api", url=url, twiml=(twiml or "")[:200])
        call.session.redirect(url, method_param(data, "Method"), None if url else twiml)
    for name, attribute in (("StatusCallback", "status_callback"),):
        value = url_param(data, name)
        if value:
            setattr(call.webhooks, attribute, value)
    call.date_updated = switch.clock.utcnow()
    return JSONResponse(call_json(switch, call))


async def delete(request: Request) -> Response:
    switch = authenticate(request)
    call = _find(switch, request.path_params["Sid"])
    if not call.ended:
        raise TwilioApiError(20009, "Cannot delete a call that is still in progress")
    switch.delete_call(call)
    return Response(status_code=204)


def routes() -> list[Route]:
    base = f"{API}/Accounts/{{AccountSid}}/Calls"
    return [
        Route(f"{base}.json", create, methods=["POST"]),
        Route(f"{base}.json", list_calls, methods=["GET"]),
        Route(f"{base}/{{Sid}}.json", fetch, methods=["GET"]),
        Route(f"{base}/{{Sid}}.json", update, methods=["POST"]),
        Route(f"{base}/{{Sid}}.json", delete, methods=["DELETE"]),
    ]
