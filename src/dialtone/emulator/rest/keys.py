"""API keys: `/2010-04-01/Accounts/{AccountSid}/Keys` — create (the secret is returned then
and never again: "this field is ONLY returned when the API Key is first created", the spec's
`api.v2010.account.new_key`), list, fetch, update the friendly name, delete (then 20404).

Only the account's own credentials manage keys. Twilio's Key resource doc: a Standard key has
"access to all Twilio API resources, except for API key and Account resources", and "if your
API key requires access to the /Accounts or /Accounts/{SID}/Keys endpoints, then you'll need to
use a Main key", which only the Console creates (twilio.com/docs/usage/api/keys). Twilio
answers a key that asks anyway with 401 and 20003 "Authenticate" (twilio/twilio-python#259).
The emulator has no Main keys, so every Keys request needs the Account SID and auth token."""

from __future__ import annotations

import secrets
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dialtone.emulator.resources import ApiKey
from dialtone.emulator.rest.errors import not_found
from dialtone.emulator.rest.request import API, authenticate, form, page, rfc2822
from dialtone.emulator.sids import new_sid
from dialtone.emulator.switch import Switch


def key_json(switch: Switch, key: ApiKey) -> dict[str, Any]:
    return {
        "sid": key.sid,
        "friendly_name": key.friendly_name,
        "date_created": rfc2822(switch, key.date_created),
        "date_updated": rfc2822(switch, key.date_updated),
    }


def _key(switch: Switch, sid: str) -> ApiKey:
    if sid not in switch.api_keys:
        raise not_found("Keys", sid)
    return switch.api_keys[sid]


async def create_key(request: Request) -> JSONResponse:
    switch = authenticate(request, account_only=True)
    data = await form(request)
    now = switch.clock.utcnow()
    key = ApiKey(new_sid("SK"), secrets.token_hex(16), data.get("FriendlyName", ""), now, now)
    switch.api_keys[key.sid] = key
    return JSONResponse({**key_json(switch, key), "secret": key.secret}, status_code=201)


async def list_keys(request: Request) -> JSONResponse:
    switch = authenticate(request, account_only=True)
    return page(request, "keys", list(switch.api_keys.values()), lambda k: key_json(switch, k))


async def fetch_key(request: Request) -> JSONResponse:
    switch = authenticate(request, account_only=True)
    return JSONResponse(key_json(switch, _key(switch, request.path_params["Sid"])))


async def update_key(request: Request) -> JSONResponse:
    switch = authenticate(request, account_only=True)
    key = _key(switch, request.path_params["Sid"])
    data = await form(request)
    if "FriendlyName" in data:
        key.friendly_name = data["FriendlyName"]
    key.date_updated = switch.clock.utcnow()
    return JSONResponse(key_json(switch, key))


async def delete_key(request: Request) -> Response:
    switch = authenticate(request, account_only=True)
    del switch.api_keys[_key(switch, request.path_params["Sid"]).sid]
    return Response(status_code=204)


def routes() -> list[Route]:
    keys = f"{API}/Accounts/{{AccountSid}}/Keys"
    return [
        Route(f"{keys}.json", create_key, methods=["POST"]),
        Route(f"{keys}.json", list_keys, methods=["GET"]),
        Route(f"{keys}/{{Sid}}.json", fetch_key, methods=["GET"]),
        Route(f"{keys}/{{Sid}}.json", update_key, methods=["POST"]),
        Route(f"{keys}/{{Sid}}.json", delete_key, methods=["DELETE"]),
    ]
