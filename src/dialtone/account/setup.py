"""`dialtone setup`: the TwiML App, the numbers' voice URLs and an API key, made to match
DIALTONE_PUBLIC_URL — planned first (what is, what will be), then applied; idempotent."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from dialtone.account.client import AccountError, twilio_error
from dialtone.account.urls import Webhooks, application_settings, number_settings

APP_NAME = "dialtone"
KEY_NAME = "dialtone"


@dataclass(frozen=True)
class Change:
    name: str  # Twilio's parameter name, as in the console and the REST API
    current: str | None
    new: str


@dataclass
class Step:
    """One resource to create or update; `run` does it and returns settings to write."""

    resource: str
    changes: list[Change]
    run: Callable[[], dict[str, str]]


@dataclass
class Plan:
    steps: list[Step] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # refused, nothing done for them
    settings: dict[str, str] = field(default_factory=dict)  # to write, known before running

    @property
    def empty(self) -> bool:
        return not self.steps and not self.settings

    def describe(self) -> list[str]:
        lines = [f"env file: {name} -> {value}" for name, value in self.settings.items()]
        for step in self.steps:
            lines.append(step.resource)
            lines += [
                f"  {c.name}: {c.current if c.current not in (None, '') else '(none)'} -> {c.new}"
                for c in step.changes
            ]
        return lines


def _rest_error(exc: Exception) -> AccountError:
    return AccountError(twilio_error(exc))


def _changes(resource: Any, wanted: dict[str, tuple[str, str]]) -> list[Change]:
    """wanted: Twilio parameter name → (attribute on the instance, value)."""
    return [
        Change(name, getattr(resource, attribute, None), value)
        for name, (attribute, value) in wanted.items()
        if (getattr(resource, attribute, None) or "") != value
    ]


def _kwargs(changes: Iterable[Change]) -> dict[str, str]:
    """Twilio's parameter names → twilio-python's keyword arguments."""
    snake = {
        "VoiceUrl": "voice_url",
        "VoiceMethod": "voice_method",
        "StatusCallback": "status_callback",
        "StatusCallbackMethod": "status_callback_method",
        "VoiceApplicationSid": "voice_application_sid",
        "FriendlyName": "friendly_name",
    }
    return {snake[c.name]: c.new for c in changes}


def _plan_application(client: Any, hooks: Webhooks, configured_sid: str, plan: Plan) -> None:
    from twilio.base.exceptions import TwilioRestException

    application = None
    if configured_sid:
        try:
            application = client.applications(configured_sid).fetch()
        except TwilioRestException as exc:
            if exc.status != 404:
                raise
    if application is None:
        found = client.applications.list(friendly_name=APP_NAME)
        if len(found) > 1:
            plan.problems.append(
                f"{len(found)} TwiML Apps are named {APP_NAME!r} "
                f"({', '.join(a.sid for a in found)}): set TWILIO_TWIML_APP_SID to the one to use"
            )
            return
        application = found[0] if found else None
    wanted = application_settings(hooks)
    if application is None:
        changes = [Change("FriendlyName", None, APP_NAME), *_changes(None, wanted)]

        def create() -> dict[str, str]:
            made = client.applications.create(**_kwargs(changes))
            return {"TWILIO_TWIML_APP_SID": made.sid}

        plan.steps.append(Step(f"create TwiML App {APP_NAME!r}", changes, create))
        return
    changes = _changes(application, wanted)
    if changes:
        sid = application.sid

        def update() -> dict[str, str]:
            client.applications(sid).update(**_kwargs(changes))
            return {}

        plan.steps.append(Step(f"update TwiML App {APP_NAME!r} ({sid})", changes, update))
    if configured_sid != application.sid:
        plan.settings["TWILIO_TWIML_APP_SID"] = application.sid


def _plan_number(client: Any, hooks: Webhooks, number: str, plan: Plan) -> None:
    found = [n for n in client.incoming_phone_numbers.list(phone_number=number)]
    owned = next((n for n in found if n.phone_number == number), None)
    if owned is None:
        plan.problems.append(
            f"{number}: not a number of this Twilio account (Twilio lists no "
            "IncomingPhoneNumber with it); buy or port it first, or check the account"
        )
        return
    changes = _changes(owned, number_settings(hooks))
    if changes:
        sid = owned.sid

        def update() -> dict[str, str]:
            client.incoming_phone_numbers(sid).update(**_kwargs(changes))
            return {}

        plan.steps.append(Step(f"update number {number} ({sid})", changes, update))


def _plan_api_key(client: Any, configured_key: str, plan: Plan) -> None:
    from twilio.base.exceptions import TwilioRestException

    if configured_key:
        try:
            client.keys(configured_key).fetch()
            return
        except TwilioRestException as exc:
            if exc.status != 404:
                raise
    changes = [Change("ApiKey", configured_key or None, f"a new Standard key {KEY_NAME!r}")]

    def create() -> dict[str, str]:
        key = client.new_keys.create(friendly_name=KEY_NAME)
        return {"TWILIO_API_KEY": key.sid, "TWILIO_API_SECRET": key.secret}

    plan.steps.append(Step("create API key", changes, create))


def make_plan(client: Any, public_url: str, env: dict[str, str], numbers: list[str]) -> Plan:
    """What must change on the account (and in the env file) for these numbers."""
    from twilio.base.exceptions import TwilioException

    hooks = Webhooks(public_url.rstrip("/"))
    plan = Plan()
    try:
        _plan_api_key(client, env.get("TWILIO_API_KEY", "").strip(), plan)
        _plan_application(client, hooks, env.get("TWILIO_TWIML_APP_SID", "").strip(), plan)
        for number in numbers:
            _plan_number(client, hooks, number, plan)
    except TwilioException as exc:
        raise _rest_error(exc) from None
    return plan


def apply(plan: Plan, save: Callable[[dict[str, str]], None], say: Callable[[str], None]) -> None:
    """Run each step; settings a step produced are saved at once (a new key's secret is
    shown by Twilio only once)."""
    from twilio.base.exceptions import TwilioException

    if plan.settings:
        save(plan.settings)
    for step in plan.steps:
        try:
            produced = step.run()
        except TwilioException as exc:
            raise AccountError(f"{step.resource}: {_rest_error(exc)}") from None
        if produced:
            save(produced)
        say(f"{step.resource}: done ({', '.join(c.name for c in step.changes)})")
