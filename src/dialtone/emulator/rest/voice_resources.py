"""`IncomingPhoneNumbers.json` and `Applications.json`: the voice URLs calls are routed by
(reference §6.2): create, list, fetch, update, delete."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from typing import Any

from starlette.datastructures import ImmutableMultiDict
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dialtone import phone
from dialtone.emulator.resources import Application, IncomingPhoneNumber, VoiceConfig
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

# Twilio's error codes for these resources' parameters: 21502 "Invalid callback url" ("not a
# fully qualified URL"), 21403 "Invalid Method" ("the HTTP method Twilio uses when somebody
# calls your phone number … Valid Method values are GET or POST"), 21420 "ApplicationSid is not
# accessible" ("a VoiceApplicationSid … not controlled by your account, or … invalid").
INVALID_URL = 21502
INVALID_METHOD = 21403
INACCESSIBLE_APPLICATION = 21420

_VOICE_FIELDS = {
    "VoiceUrl": "voice_url",
    "VoiceFallbackUrl": "voice_fallback_url",
    "StatusCallback": "status_callback",
}
_METHOD_FIELDS = {
    "VoiceMethod": "voice_method",
    "VoiceFallbackMethod": "voice_fallback_method",
    "StatusCallbackMethod": "status_callback_method",
}


def apply_voice_fields(resource: VoiceConfig, data: ImmutableMultiDict) -> None:
    """Every field is checked before any is set, so a refused update changes nothing."""
    values: dict[str, str | None] = {
        attribute: url_param(data, name, INVALID_URL)
        for name, attribute in _VOICE_FIELDS.items()
        if name in data
    }
    for name, attribute in _METHOD_FIELDS.items():
        if name in data:
            values[attribute] = method_param(data, name, code=INVALID_METHOD)
    for attribute, value in values.items():
        setattr(resource, attribute, value)
    if "FriendlyName" in data:
        resource.friendly_name = data["FriendlyName"][:64]  # type: ignore[attr-defined]


def _voice_json(switch: Switch, resource: VoiceConfig) -> dict[str, Any]:
    return {
        "voice_url": resource.voice_url,
        "voice_method": resource.voice_method,
        "voice_fallback_url": resource.voice_fallback_url,
        "voice_fallback_method": resource.voice_fallback_method,
        "status_callback": resource.status_callback,
        "status_callback_method": resource.status_callback_method,
        "voice_caller_id_lookup": False,
    }


def number_json(switch: Switch, number: IncomingPhoneNumber) -> dict[str, Any]:
    account = switch.credentials.account_sid
    return {
        "account_sid": account,
        "address_sid": None,
        "address_requirements": "none",
        "api_version": "2010-04-01",
        "beta": False,
        "capabilities": {"voice": True, "sms": False, "mms": False, "fax": False},
        "date_created": rfc2822(switch, number.date_created),
        "date_updated": rfc2822(switch, number.date_updated),
        "friendly_name": number.friendly_name,
        "identity_sid": None,
        "phone_number": number.phone_number,
        "origin": "twilio",
        "sid": number.sid,
        "sms_application_sid": None,
        "sms_fallback_method": "POST",
        "sms_fallback_url": None,
        "sms_method": "POST",
        "sms_url": None,
        "trunk_sid": None,
        "uri": f"{API}/Accounts/{account}/IncomingPhoneNumbers/{number.sid}.json",
        "voice_receive_mode": "voice",
        "voice_application_sid": number.voice_application_sid,
        "emergency_status": "Inactive",
        "emergency_address_sid": None,
        "emergency_address_status": "unregistered",
        "bundle_sid": None,
        "status": "in-use",
        "type": "local",
        **_voice_json(switch, number),
    }


def application_json(switch: Switch, application: Application) -> dict[str, Any]:
    account = switch.credentials.account_sid
    return {
        "account_sid": account,
        "api_version": "2010-04-01",
        "date_created": rfc2822(switch, application.date_created),
        "date_updated": rfc2822(switch, application.date_updated),
        "friendly_name": application.friendly_name,
        "message_status_callback": None,
        "sid": application.sid,
        "sms_fallback_method": "POST",
        "sms_fallback_url": None,
        "sms_method": "POST",
        "sms_status_callback": None,
        "sms_url": None,
        "uri": f"{API}/Accounts/{account}/Applications/{application.sid}.json",
        "public_application_connect_enabled": True,
        **_voice_json(switch, application),
    }


def add_number(switch: Switch, data: ImmutableMultiDict) -> IncomingPhoneNumber:
    raw = data.get("PhoneNumber", "")
    if not raw:
        raise TwilioApiError(
            21452, "A PhoneNumber is required (this emulator provisions no AreaCode search)"
        )
    try:
        e164 = phone.to_e164(raw)
    except phone.InvalidNumber as exc:
        raise TwilioApiError(21421, f"PhoneNumber is invalid: {exc.reason}") from None
    if switch.number_for(e164) is not None:
        raise TwilioApiError(21422, f"PhoneNumber {e164} is not available")
    now = switch.clock.utcnow()
    number = IncomingPhoneNumber(
        phone_number=e164, friendly_name=raw, date_created=now, date_updated=now
    )
    _check_application(switch, data)
    apply_voice_fields(number, data)
    _set_application(switch, number, data)
    switch.numbers[number.sid] = number
    return number


def _check_application(switch: Switch, data: ImmutableMultiDict) -> None:
    """Before anything is changed: a refused request leaves the number as it was."""
    sid = data.get("VoiceApplicationSid")
    if sid and sid not in switch.applications:
        raise TwilioApiError(
            INACCESSIBLE_APPLICATION, f"VoiceApplicationSid {sid[:40]} is not an application"
        )


def _set_application(switch: Switch, number: IncomingPhoneNumber, data: ImmutableMultiDict) -> None:
    """`VoiceApplicationSid` (checked) routes the number's calls to that TwiML App; empty
    unbinds it."""
    if "VoiceApplicationSid" in data:
        number.voice_application_sid = data["VoiceApplicationSid"] or None


def add_application(
    switch: Switch, data: ImmutableMultiDict, sid: str | None = None
) -> Application:
    now = switch.clock.utcnow()
    application = Application(friendly_name="", date_created=now, date_updated=now)
    if sid is not None:
        if not is_sid(sid, "AP"):
            raise TwilioApiError(20001, "an application SID is AP followed by 32 hex digits")
        application.sid = sid
    apply_voice_fields(application, data)
    switch.applications[application.sid] = application
    return application


async def create_number(request: Request) -> JSONResponse:
    switch = authenticate(request)
    return JSONResponse(
        number_json(switch, add_number(switch, await form(request))), status_code=201
    )


def number_matcher(pattern: str) -> Callable[[str], bool]:
    """The `PhoneNumber` filter: "You can specify partial numbers and use '*' as a wildcard
    for any digit" (the spec). A complete number in any format with its country code matches
    only itself; otherwise the digits (and `*`) are looked for anywhere in the E.164 number,
    from its start when the pattern starts with `+`. A `+` a client left unencoded in the
    query string arrives as a space, so a leading space counts as `+`."""
    text = pattern.strip()
    anchored = text.startswith("+") or (pattern[:1] == " " and text[:1].isdigit())
    if "*" not in text:
        with contextlib.suppress(phone.InvalidNumber):
            exact = phone.to_e164(("+" if anchored and text[0] != "+" else "") + text)
            return lambda number: number == exact
    digits = "".join(c for c in text if c.isdigit() or c == "*")
    if not digits:
        return lambda number: False
    regex = re.compile(
        ("^" if anchored else "") + "".join(r"\d" if c == "*" else c for c in digits)
    )
    return lambda number: regex.search(number.lstrip("+")) is not None


async def list_numbers(request: Request) -> JSONResponse:
    switch = authenticate(request)
    numbers = list(switch.numbers.values())
    query = request.query_params
    if query.get("PhoneNumber", "").strip():
        matches = number_matcher(query["PhoneNumber"])
        numbers = [n for n in numbers if matches(n.phone_number)]
    if query.get("FriendlyName"):  # exact, as for Applications
        numbers = [n for n in numbers if n.friendly_name == query["FriendlyName"]]
    if query.get("Origin"):  # every number here is bought from Twilio, none is hosted
        numbers = [n for n in numbers if query["Origin"] == "twilio"]
    return page(request, "incoming_phone_numbers", numbers, lambda n: number_json(switch, n))


def _number(switch: Switch, sid: str) -> IncomingPhoneNumber:
    if sid not in switch.numbers:
        raise not_found("IncomingPhoneNumbers", sid)
    return switch.numbers[sid]


async def fetch_number(request: Request) -> JSONResponse:
    switch = authenticate(request)
    return JSONResponse(number_json(switch, _number(switch, request.path_params["Sid"])))


async def update_number(request: Request) -> JSONResponse:
    switch = authenticate(request)
    number = _number(switch, request.path_params["Sid"])
    data = await form(request)
    _check_application(switch, data)
    apply_voice_fields(number, data)
    _set_application(switch, number, data)
    number.date_updated = switch.clock.utcnow()
    return JSONResponse(number_json(switch, number))


async def delete_number(request: Request) -> Response:
    switch = authenticate(request)
    del switch.numbers[_number(switch, request.path_params["Sid"]).sid]
    return Response(status_code=204)


async def create_application(request: Request) -> JSONResponse:
    switch = authenticate(request)
    application = add_application(switch, await form(request))
    return JSONResponse(application_json(switch, application), status_code=201)


async def list_applications(request: Request) -> JSONResponse:
    switch = authenticate(request)
    applications = list(switch.applications.values())
    if request.query_params.get("FriendlyName"):  # exact: "dialtone" is not "dialtone 2"
        applications = [
            a for a in applications if a.friendly_name == request.query_params["FriendlyName"]
        ]
    return page(request, "applications", applications, lambda a: application_json(switch, a))


def _application(switch: Switch, sid: str) -> Application:
    if sid not in switch.applications:
        raise not_found("Applications", sid)
    return switch.applications[sid]


async def fetch_application(request: Request) -> JSONResponse:
    switch = authenticate(request)
    return JSONResponse(application_json(switch, _application(switch, request.path_params["Sid"])))


async def update_application(request: Request) -> JSONResponse:
    switch = authenticate(request)
    application = _application(switch, request.path_params["Sid"])
    apply_voice_fields(application, await form(request))
    application.date_updated = switch.clock.utcnow()
    return JSONResponse(application_json(switch, application))


async def delete_application(request: Request) -> Response:
    switch = authenticate(request)
    application = _application(switch, request.path_params["Sid"])
    del switch.applications[application.sid]
    for number in switch.numbers.values():
        if number.voice_application_sid == application.sid:
            number.voice_application_sid = None
    return Response(status_code=204)


def routes() -> list[Route]:
    numbers = f"{API}/Accounts/{{AccountSid}}/IncomingPhoneNumbers"
    apps = f"{API}/Accounts/{{AccountSid}}/Applications"
    return [
        Route(f"{numbers}.json", create_number, methods=["POST"]),
        Route(f"{numbers}.json", list_numbers, methods=["GET"]),
        Route(f"{numbers}/{{Sid}}.json", fetch_number, methods=["GET"]),
        Route(f"{numbers}/{{Sid}}.json", update_number, methods=["POST"]),
        Route(f"{numbers}/{{Sid}}.json", delete_number, methods=["DELETE"]),
        Route(f"{apps}.json", create_application, methods=["POST"]),
        Route(f"{apps}.json", list_applications, methods=["GET"]),
        Route(f"{apps}/{{Sid}}.json", fetch_application, methods=["GET"]),
        Route(f"{apps}/{{Sid}}.json", update_application, methods=["POST"]),
        Route(f"{apps}/{{Sid}}.json", delete_application, methods=["DELETE"]),
    ]
