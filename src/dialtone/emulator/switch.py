"""The switch: owns the account's numbers, applications, calls and simulated phones, starts
call legs and carries them from ringing to their final status, and sends status callbacks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable, Coroutine
from typing import Any

from dialtone import logs, phone
from dialtone.emulator import phones as phone_modes
from dialtone.emulator.bus import EventBus
from dialtone.emulator.call import (
    BUSY,
    CANCELED,
    COMPLETED,
    FAILED,
    IN_PROGRESS,
    INBOUND,
    NO_ANSWER,
    RINGING,
    Call,
    Webhooks,
)
from dialtone.emulator.clock import Clock
from dialtone.emulator.config import EmulatorConfig
from dialtone.emulator.far_end import attach_phone_audio, release, say_file, say_text
from dialtone.emulator.history import Alerts, CallHistory, Recordings
from dialtone.emulator.media.cache import LruCache, played_size
from dialtone.emulator.params import call_params
from dialtone.emulator.phones import Behaviour, PhoneBook
from dialtone.emulator.resources import (
    ApiKey,
    Application,
    IncomingPhoneNumber,
    VoiceConfig,
)
from dialtone.emulator.signaling.devices import DeviceRegistry, phone_identity
from dialtone.emulator.webhooks import FetchError, WebhookClient

log = logging.getLogger("dialtone.emulator")

# Status callback event → the CallStatus it carries (reference §2.4).
_EVENT_STATUS = {"initiated": "initiated", "ringing": RINGING, "answered": IN_PROGRESS}
AUDIO_CACHE_ENTRIES = 64
AUDIO_CACHE_BYTES = 128 * 1024 * 1024


class RoutingError(Exception):
    """A call cannot be placed; `code` is Twilio's error code."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Switch:
    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.credentials = config.credentials
        self.clock = Clock(config.clock_scale)
        self.bus = EventBus()
        self.phones = PhoneBook()
        self.numbers: dict[str, IncomingPhoneNumber] = {}
        self.applications: dict[str, Application] = {}
        self.calls: dict[str, Call] = {}  # live calls and the recent ended ones (`history`)
        self.recordings = Recordings()
        # Oldest first; kept when their call is deleted, bounded like the calls.
        self.alerts = Alerts(maxlen=max(config.history_calls, 1))
        self.history = CallHistory(self, config.history_calls, config.history_seconds)
        now = self.clock.utcnow()
        self.api_keys: dict[str, ApiKey] = {
            self.credentials.api_key: ApiKey(
                self.credentials.api_key,
                self.credentials.api_secret,
                "dialtone development key",
                now,
                now,
            )
        }
        self.webhooks = WebhookClient(
            self.credentials.auth_token, config.webhook_timeout, config.webhook_connect_timeout
        )
        # Decoded <Play> URLs, least recently used dropped first.
        self.audio_cache: LruCache[tuple[float, bytes | None]] = LruCache(
            AUDIO_CACHE_ENTRIES, AUDIO_CACHE_BYTES, played_size
        )
        self.devices = DeviceRegistry()
        self._tasks: set[asyncio.Task] = set()

    def api_secret_of(self, key_sid: str) -> str | None:
        key = self.api_keys.get(key_sid)
        return key.secret if key else None

    # -- tasks ------------------------------------------------------------------------------

    def spawn(self, coroutine: Coroutine[Any, Any, Any], name: str) -> asyncio.Task:
        """Run in the background, tracked so shutdown and tests can wait for it."""
        task = asyncio.create_task(coroutine, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            logs.event(
                log,
                "emulator_task_failed",
                level=logging.ERROR,
                task=task.get_name(),
                error=type(exc).__name__,
                detail=str(exc)[:300],
            )

    async def idle(self) -> None:
        """Wait until no call, callback or timer is running (tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        await self.webhooks.close()
        self.bus.close()

    # -- lookups ----------------------------------------------------------------------------

    def number_for(self, address: str) -> IncomingPhoneNumber | None:
        return next((n for n in self.numbers.values() if n.phone_number == address), None)

    def voice_config(self, number: IncomingPhoneNumber) -> tuple[VoiceConfig, str | None]:
        """A number answers with its own URLs, or its application's when it names one."""
        if number.voice_application_sid and number.voice_application_sid in self.applications:
            return self.applications[number.voice_application_sid], number.voice_application_sid
        return number, None

    # -- placing calls ----------------------------------------------------------------------

    def add_call(self, call: Call) -> Call:
        self.history.prune()  # past its age, history goes even when no call is ending
        self.calls[call.sid] = call
        self.history.added(call)
        call.log(
            "created",
            direction=call.direction,
            **{"from": call.from_, "to": call.to},
            parent_call_sid=call.parent_sid,
        )
        logs.event(
            log,
            "call_created",
            call_sid=call.sid,
            parent_call_sid=call.parent_sid,
            direction=call.direction,
            **{"from": call.from_, "to": call.to},
        )
        return call

    def place_api_call(self, call: Call) -> Call:
        """A REST `Calls.json` create: ring the destination, then run the TwiML when answered."""
        self.add_call(call)
        call.task = self.spawn(self._run_api_call(call), f"call {call.sid}")
        return call

    def place_inbound_call(
        self,
        from_: str,
        to: str,
        forwarded_from: str | None = None,
        hangup_after: float | None = None,
        far_end: Callable[[Call], None] | None = None,
    ) -> Call:
        """A phone calls one of our numbers ("A CALL COMES IN")."""
        number = self.number_for(to)
        if number is None:
            raise RoutingError(21217, f"{to} is not an IncomingPhoneNumber of this account")
        config, application_sid = self.voice_config(number)
        call = Call(
            switch=self,
            account_sid=self.credentials.account_sid,
            direction=INBOUND,
            from_=from_,
            to=to,
            webhooks=Webhooks.of(config),
            phone_number_sid=number.sid,
            application_sid=application_sid,
            forwarded_from=forwarded_from,
        )
        self.add_call(call)
        if far_end is not None:
            far_end(call)  # a person calling from a browser
        attach_phone_audio(self, call)  # else the simulated calling phone
        call.set_status(RINGING)
        call.task = self.spawn(self.run_inbound_call(call), f"call {call.sid}")
        if hangup_after is not None:
            self.spawn(self._hang_up_later(call, hangup_after), f"caller hangup {call.sid}")
        return call

    async def run_inbound_call(self, call: Call) -> None:
        from dialtone.emulator.twiml.session import Goto, Session

        try:
            status = await Session(self, call).run(
                Goto(call.webhooks.url, call.webhooks.method, {}, purpose="voice_url")
            )
            self.finish(call, status or (COMPLETED if call.answered else NO_ANSWER))
        except asyncio.CancelledError:
            self.finish(call, call_final_status(call))

    async def _run_api_call(self, call: Call) -> None:
        from dialtone.emulator.twiml.session import Goto, Inline, Session

        try:
            status = await self.ring(call, call.timeout)
            if status != IN_PROGRESS:
                self.finish(call, status)
                return
            if call.send_digits:
                await self.send_digits(call, call.send_digits)
            start = (
                Inline(call.webhooks.twiml)
                if call.webhooks.twiml and not call.webhooks.url
                else Goto(call.webhooks.url, call.webhooks.method, {}, purpose="url")
            )
            status = await Session(self, call).run(start)
            self.finish(call, status or COMPLETED)
        except asyncio.CancelledError:
            self.finish(call, call_final_status(call))

    # -- ringing and the far end ------------------------------------------------------------

    async def ring(self, call: Call, timeout: float) -> str:
        """Ring the far end of an outgoing leg; IN_PROGRESS once answered, else a final status."""
        behaviour = self.phones.get(call.to)
        self.status_callback(call, "initiated")
        identity = call.to[7:] if call.to.startswith("client:") else phone_identity(call.to)
        if identity:
            devices = [d for d in self.devices.devices(identity) if d.registered]
            if devices:
                from dialtone.emulator.signaling.legs import ring_devices

                call.set_status(RINGING)
                self.status_callback(call, "ringing")
                _ringing(call, len(devices))
                status = await ring_devices(call, devices, timeout)
                if status == IN_PROGRESS:
                    self.answer(call)
                return status
        if behaviour.mode == phone_modes.UNAVAILABLE:
            # A Client identity with no registered device: Twilio gives up at once (unverified).
            call.log("unavailable", address=call.to)
            logs.event(
                log,
                "client_unavailable",
                level=logging.WARNING,
                call_sid=call.sid,
                parent_call_sid=call.parent_sid,
                to=call.to,
            )
            return NO_ANSWER
        if not call.to.startswith("client:"):
            try:
                phone.to_e164(call.to)
            except phone.InvalidNumber as exc:
                call.log("error", code=13224, message=str(exc))
                return FAILED
        if behaviour.mode == phone_modes.FAIL:
            await self.clock.sleep(0.5)
            return FAILED
        call.set_status(RINGING)
        self.status_callback(call, "ringing")
        _ringing(call, 0)
        if behaviour.mode == phone_modes.BUSY:
            await self.clock.sleep(0.5)
            return BUSY
        if behaviour.mode == phone_modes.NO_ANSWER or behaviour.answer_after >= timeout:
            await self.clock.sleep(timeout)
            return NO_ANSWER
        await self.clock.sleep(behaviour.answer_after)
        if behaviour.mode == phone_modes.REJECT:
            return BUSY  # a declined call reports busy (unverified)
        attach_phone_audio(self, call)
        self.answer(call)
        self.spawn(self._far_end(call, behaviour), f"far end {call.sid}")
        return IN_PROGRESS

    def answer(self, call: Call) -> None:
        if call.answered or call.ended:
            return
        call.set_status(IN_PROGRESS)
        self.status_callback(call, "answered")
        logs.event(
            log,
            "call_answered",
            call_sid=call.sid,
            parent_call_sid=call.parent_sid,
            direction=call.direction,
            to=call.to,
        )
        if call.on_answer is not None:
            call.on_answer()
        caller = call.parent
        if caller is not None and caller.direction == INBOUND and not caller.caller_spoke:
            # A simulated phone that called in speaks once someone picks up its <Dial>.
            behaviour = self.phones.get(caller.from_)
            if behaviour.say:
                caller.caller_spoke = True
                self.spawn(self._caller_speaks(caller, behaviour), f"caller speaks {caller.sid}")

    async def _far_end(self, call: Call, behaviour: Behaviour) -> None:
        """What an answered simulated phone does: press its digits, hang up when it is done."""
        if behaviour.say:
            await self.clock.sleep(0.5)
            await say_text(self, call, behaviour.say, behaviour.say_language)
        if behaviour.say_audio:
            await self.clock.sleep(0.5)
            await say_file(self, call, behaviour.say_audio)
        if behaviour.digits:
            await self.clock.sleep(0.5)
            await self.press(call, behaviour.digits)
        if behaviour.hangup_after is not None:
            await self._hang_up_later(call, behaviour.hangup_after)

    async def _caller_speaks(self, call: Call, behaviour: Behaviour) -> None:
        await self.clock.sleep(0.5)
        if not call.ended and behaviour.say:
            await say_text(self, call, behaviour.say, behaviour.say_language)

    async def _hang_up_later(self, call: Call, seconds: float) -> None:
        await self.clock.sleep(seconds)
        self.far_end_hangup(call)

    async def press(self, call: Call, digits: str) -> None:
        """The far end presses keys (`w` waits half a second)."""
        for digit in digits:
            if call.ended:
                return
            if digit in "wW":
                await self.clock.sleep(0.5)
                continue
            call.log("dtmf", digit=digit, source="far-end")
            call.dtmf.put_nowait(digit)
            await self.clock.sleep(0.1)

    async def send_digits(self, call: Call, digits: str) -> None:
        """Twilio plays DTMF tones to the far end (SendDigits, <Number sendDigits>, <Play>)."""
        for digit in digits:
            if digit in "wW":
                await self.clock.sleep(0.5)
            else:
                call.log("dtmf_sent", digit=digit)
                await self.clock.sleep(0.1)

    def far_end_hangup(self, call: Call) -> None:
        """The far party of `call` hangs up."""
        if call.ended or call.far_end_gone.is_set():
            return
        call.log("far_end_hangup")
        call.far_end_gone.set()
        if call.task is not None and not call.task.done():
            call.task.cancel()

    def hang_up(self, call: Call, status: str | None = None) -> None:
        """End a call from Twilio's side (REST update, the end of its TwiML, a <Dial> ending)."""
        if call.ended:
            return
        if (
            call.task is not None
            and not call.task.done()
            and call.task is not asyncio.current_task()
        ):
            call.pending_final = status
            call.task.cancel()
        else:
            self.finish(call, status or call_final_status(call))

    def finish(self, call: Call, status: str) -> None:
        if call.ended:
            return
        call.far_end_gone.set()
        call.set_status(status)
        self.status_callback(call, "completed")
        release(self, call)
        if call.on_end is not None:
            call.on_end()
        logs.event(
            log,
            "call_ended",
            call_sid=call.sid,
            parent_call_sid=call.parent_sid,
            direction=call.direction,
            to=call.to,
            status=status,
            duration=call.duration,
        )
        self.history.ended(call)

    def delete_call(self, call: Call) -> None:
        """`DELETE Calls/{sid}.json` of an ended call."""
        self.history.deleted(call)

    # -- status callbacks ---------------------------------------------------------------------

    def status_callback(self, call: Call, event: str) -> None:
        hooks = call.webhooks
        if not hooks.status_callback or event not in hooks.status_callback_events:
            return
        status = call.status if event == "completed" else _EVENT_STATUS[event]
        params = call_params(call, status)
        params.update(
            CallbackSource="call-progress-events",
            SequenceNumber=str(call.callback_sequence),
            Timestamp=self.clock.rfc2822(),
        )
        call.callback_sequence += 1
        if event == "completed":
            seconds = call.duration or 0
            params["CallDuration"] = str(seconds)
            params["Duration"] = str(math.ceil(seconds / 60))
        self.spawn(
            self._deliver(call, hooks.status_callback, hooks.status_callback_method, params, event),
            f"status callback {call.sid} {event}",
        )

    async def _deliver(
        self, call: Call, url: str, method: str, params: dict[str, str], event: str
    ) -> None:
        try:
            await self.webhooks.request(
                call, url, method, params, purpose=f"status_callback:{event}"
            )
        except FetchError as exc:
            # A failed status callback is only a warning on Twilio (15003).
            call.log("warning", code=15003, message=exc.message, url=url)

    async def fire(
        self, call: Call, url: str, method: str, params: dict[str, str], purpose: str
    ) -> None:
        """A request whose answer is not run (an action after the caller hung up, callbacks)."""
        with contextlib.suppress(FetchError):
            await self.webhooks.request(call, url, method, params, purpose=purpose)


def _ringing(call: Call, devices: int) -> None:
    """`devices` browsers (Voice SDK devices) ring, or a simulated phone when 0."""
    logs.event(
        log,
        "call_ringing",
        call_sid=call.sid,
        parent_call_sid=call.parent_sid,
        to=call.to,
        devices=devices,
    )


def call_final_status(call: Call) -> str:
    return call.pending_final or (COMPLETED if call.answered else CANCELED)
