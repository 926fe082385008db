"""`dialtone doctor`: the live Twilio configuration checked against ours, one line a check.

The commonest failure of a Twilio voice app is a URL typed slightly wrong: Twilio signs the
URL it was given, the server checks against DIALTONE_PUBLIC_URL, and a different scheme,
host, port or stage prefix makes every webhook fail its signature (error 11200).
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from dialtone.account.client import twilio_error
from dialtone.account.urls import (
    STATUS_PATH,
    Webhooks,
    application_settings,
    number_settings,
    url_difference,
)

SETUP = "run `dialtone setup`"
PROBE_TIMEOUT = 10.0


@dataclass(frozen=True)
class Check:
    subject: str
    ok: bool
    detail: str
    fix: str = ""

    def line(self) -> str:
        text = f"{'ok     ' if self.ok else 'PROBLEM'}  {self.subject}: {self.detail}"
        return text + (f" — fix: {self.fix}" if self.fix and not self.ok else "")


def _compare(resource: Any, wanted: dict[str, tuple[str, str]]) -> list[str]:
    problems = []
    for name, (attribute, value) in wanted.items():
        actual = getattr(resource, attribute, None) or ""
        if name == "VoiceApplicationSid":
            if actual:
                problems.append(f"bound to TwiML App {actual}, so its VoiceUrl is not used")
        elif attribute.endswith("url") or attribute == "status_callback":
            difference = url_difference(actual, value)
            if difference:
                problems.append(f"{name} {actual or '(none)'}: {difference}")
        elif actual.upper() != value.upper():
            problems.append(f"{name} {actual or '(none)'} instead of {value}")
    return problems


def _credentials(client: Any) -> Check:
    from twilio.base.exceptions import TwilioException

    try:
        client.applications.list(limit=1)
    except TwilioException as exc:
        return Check(
            "credentials",
            False,
            f"Twilio refused them ({twilio_error(exc)})",
            "copy the Account SID and Auth Token from Console → Account → API keys & tokens",
        )
    return Check("credentials", True, f"accepted for {client.account_sid}")


def _api_key(client: Any, env: Mapping[str, str], api_url: str | None) -> Check:
    from twilio.base.exceptions import TwilioException, TwilioRestException

    from dialtone.account.client import api_key_client

    key, secret = env.get("TWILIO_API_KEY", ""), env.get("TWILIO_API_SECRET", "")
    if not key or not secret:
        return Check("API key", False, "TWILIO_API_KEY or TWILIO_API_SECRET is not set", SETUP)
    try:
        client.keys(key).fetch()
    except TwilioRestException as exc:
        return Check("API key", False, f"{key} not found ({twilio_error(exc)})", SETUP)
    # The secret signs the phones' AccessTokens: prove Twilio accepts it.
    with_key = api_key_client(client.account_sid, key, secret, api_url)
    try:
        with_key.applications.list(limit=1)
    except TwilioException as exc:
        return Check(
            "API key",
            False,
            f"{key} exists but Twilio refused its secret ({twilio_error(exc)})",
            "set TWILIO_API_SECRET to the key's secret, or delete the key and "
            "unset TWILIO_API_KEY, then run `dialtone setup`",
        )
    return Check("API key", True, f"{key} exists and its secret is accepted")


def _application(client: Any, env: Mapping[str, str], hooks: Webhooks) -> Check:
    from twilio.base.exceptions import TwilioRestException

    sid = env.get("TWILIO_TWIML_APP_SID", "")
    if not sid:
        return Check("TwiML App", False, "TWILIO_TWIML_APP_SID is not set", SETUP)
    try:
        application = client.applications(sid).fetch()
    except TwilioRestException as exc:
        return Check("TwiML App", False, f"{sid} not found ({twilio_error(exc)})", SETUP)
    problems = _compare(application, application_settings(hooks))
    if problems:
        return Check(
            f"TwiML App {sid}",
            False,
            "; ".join(problems),
            f"{SETUP}, or Console → Voice → TwiML Apps → {application.friendly_name}: "
            f"Request URL {hooks.outgoing} (HTTP POST)",
        )
    return Check(f"TwiML App {sid}", True, f"voice URL {hooks.outgoing} (POST)")


def _number(client: Any, number: str, hooks: Webhooks) -> Check:
    owned = next(
        (
            n
            for n in client.incoming_phone_numbers.list(phone_number=number)
            if n.phone_number == number
        ),
        None,
    )
    if owned is None:
        return Check(
            number, False, "not a number of this Twilio account", "buy or port it, or fix the line"
        )
    problems = _compare(owned, number_settings(hooks))
    if problems:
        return Check(
            number,
            False,
            "; ".join(problems),
            f"{SETUP}, or Console → Phone Numbers → {number} → A CALL COMES IN: Webhook "
            f"{hooks.incoming} (HTTP POST)",
        )
    return Check(number, True, f"voice URL {hooks.incoming} (POST)")


def _public_url_answers(env: Mapping[str, str], hooks: Webhooks) -> Check:
    """A request signed as Twilio signs, to the status callback without a CallSid: a server
    that accepts the signature refuses the parameters (400) and stores nothing."""
    from twilio.request_validator import RequestValidator

    subject = f"DIALTONE_PUBLIC_URL {hooks.public_url}"
    auth_token = env.get("TWILIO_AUTH_TOKEN", "")
    if not auth_token:
        return Check(subject, False, "not checked: signing needs TWILIO_AUTH_TOKEN", "set it")
    params = {"AccountSid": env.get("TWILIO_ACCOUNT_SID", ""), "Probe": "dialtone doctor"}
    url = hooks.public_url + STATUS_PATH
    request = urllib.request.Request(
        url,
        data=urlencode(params).encode(),
        method="POST",
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "User-Agent": "TwilioProxy/1.1 (dialtone doctor)",
            "X-Twilio-Signature": RequestValidator(auth_token).compute_signature(url, params),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=PROBE_TIMEOUT) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return Check(subject, False, f"does not answer ({reason})", "start or deploy the server")
    if status == 400:
        return Check(subject, True, "answers and accepts Twilio's signature")
    if status == 403:
        return Check(
            subject,
            False,
            "the server refused a correctly signed request (403): it checks signatures "
            "against another URL or auth token",
            "give the server the same DIALTONE_PUBLIC_URL and TWILIO_AUTH_TOKEN as here",
        )
    return Check(subject, False, f"answered {status} to a signed status callback", "see its logs")


def _alerts(client: Any, now: datetime) -> Check:
    since = now - timedelta(hours=24)
    alerts = list(client.monitor.v1.alerts.list(start_date=since, limit=1000))
    if not alerts:
        return Check("alerts", True, "none recorded by Twilio in the last 24 h")
    counts = Counter(a.error_code for a in alerts)
    summary = ", ".join(
        f"{code} ×{count}" for code, count in sorted(counts.items(), key=lambda i: -i[1])
    )
    newest = alerts[0]
    return Check(
        "alerts",
        False,
        f"{len(alerts)} in the last 24 h: {summary}; newest {newest.error_code} on "
        f"{newest.resource_sid or 'the account'}: {(newest.alert_text or '')[:120]}",
        "Console → Monitor → Logs → Errors; https://www.twilio.com/docs/errors/"
        f"{newest.error_code}",
    )


def run_checks(
    client: Any,
    env: Mapping[str, str],
    public_url: str,
    numbers: list[str],
    api_url: str | None = None,
) -> Iterator[Check]:
    from twilio.base.exceptions import TwilioException

    hooks = Webhooks(public_url.rstrip("/"))
    credentials = _credentials(client)
    yield credentials
    if credentials.ok:
        try:
            yield _api_key(client, env, api_url)
            yield _application(client, env, hooks)
            for number in numbers:
                yield _number(client, number, hooks)
            yield _alerts(client, datetime.now(UTC))
        except TwilioException as exc:
            yield Check("Twilio", False, twilio_error(exc), "try again; see status.twilio.com")
    yield _public_url_answers(env, hooks)
