"""Runs TwiML on one call leg: fetches documents (with fallback), executes verbs in order,
follows actions and redirects, and ends the call when a document runs out (reference §7, §9)."""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urljoin

from dialtone.emulator.call import Call
from dialtone.emulator.params import call_params
from dialtone.emulator.twiml import document as twiml_document
from dialtone.emulator.twiml.document import AudioResponse, Document, SpokenText, TwimlError
from dialtone.emulator.webhooks import FetchError

if TYPE_CHECKING:
    from dialtone.emulator.switch import Switch

# "Users quote the message as …" — Twilio gives no exact wording (reference §9, unverified).
APPLICATION_ERROR = "We're sorry, an application error has occurred. Goodbye!"
MAX_DOCUMENTS = 1000  # a guard against redirect loops that never end


@dataclass
class Goto:
    """Fetch a document: the voice URL, an `action`, a <Redirect> target."""

    url: str | None
    method: str = "POST"
    params: dict[str, str] = field(default_factory=dict)
    purpose: str = "action"


@dataclass
class Inline:
    """Run TwiML given inline (REST `Twiml`)."""

    twiml: str


@dataclass
class End:
    """The call ends; `status` overrides the final status (e.g. <Reject reason="busy">)."""

    status: str | None = None


Outcome = Goto | Inline | End


class Session:
    def __init__(self, switch: Switch, call: Call) -> None:
        self.switch = switch
        self.call = call
        self.clock = switch.clock
        self.document_url: str | None = None
        self.verbs_run = 0  # <Reject> and a leading <Pause> care whether anything ran before
        self.redirected = asyncio.Event()
        call.session = self

    # -- the loop -----------------------------------------------------------------------------

    async def run(self, start: Goto | Inline) -> str | None:
        step: Outcome = start
        for _ in range(MAX_DOCUMENTS):
            if isinstance(step, End):
                return step.status
            loaded = await self.load(step)
            if isinstance(loaded, End):
                return loaded.status
            step = await self.execute(loaded)
        self.call.log("error", code=11200, message="too many documents in one call")
        return None

    async def load(self, step: Goto | Inline) -> Document | End:
        if isinstance(step, Inline):
            try:
                return twiml_document.parse(step.twiml, self.document_url)
            except TwimlError as exc:
                self.call.log("error", code=exc.code, message=exc.message)
                return await self.application_error()
        return await self.fetch(step)

    async def fetch(self, step: Goto) -> Document | End:
        hooks = self.call.webhooks
        params = {**call_params(self.call), **step.params}
        if not step.url:
            self.call.log("error", code=11200, message="no URL to request")
            return await self.application_error()
        try:
            return await self._fetch_document(step.url, step.method, params, step.purpose)
        except (FetchError, TwimlError) as exc:
            self.call.log("error", code=exc.code, message=exc.message, url=step.url)
            if not hooks.fallback_url:
                return await self.application_error()
            # The fallback gets the original parameters plus what went wrong (reference §2.5).
            params.update(ErrorCode=str(exc.code), ErrorUrl=step.url)
            try:
                return await self._fetch_document(
                    hooks.fallback_url, hooks.fallback_method, params, "fallback"
                )
            except (FetchError, TwimlError) as fallback_exc:
                self.call.log(
                    "error",
                    code=fallback_exc.code,
                    message=fallback_exc.message,
                    url=hooks.fallback_url,
                )
                return await self.application_error()

    async def _fetch_document(
        self, url: str, method: str, params: dict[str, str], purpose: str
    ) -> Document | End:
        fetched = await self.switch.webhooks.request(self.call, url, method, params, purpose)
        response = twiml_document.interpret(fetched)
        self.document_url = fetched.url
        if isinstance(response, Document):
            return response
        await self.answer()
        if isinstance(response, AudioResponse):
            await self.switch_play(response.url)
        elif isinstance(response, SpokenText):
            from dialtone.emulator.twiml import say

            await say.say(self, response.text, "en-US", "man")
        return End()

    async def switch_play(self, url: str) -> None:
        from dialtone.emulator.twiml import play

        loaded = await play.load_audio(self, url)
        if loaded is not None:
            await self.speak(loaded[0], "play", pcm=loaded[1], url=url)

    async def application_error(self) -> End:
        from dialtone.emulator.twiml import say

        await self.answer()
        self.call.log("application_error", message=APPLICATION_ERROR)
        await say.say(self, APPLICATION_ERROR, "en-US", "man")
        return End()

    async def execute(self, document: Document) -> Outcome:
        from dialtone.emulator.twiml.verbs import VERBS, check_attributes

        for element in document.verbs:
            handler = VERBS.get(element.tag)
            if handler is None:
                self.call.log(
                    "warning", code=12200, message=f"unknown verb <{element.tag}> skipped"
                )
                continue
            check_attributes(self, element)
            self.call.log(
                "verb",
                verb=element.tag,
                attributes=dict(element.attrib),
                text=(element.text or "").strip()[:200],
            )
            outcome = await self._run_verb(handler, element)
            self.verbs_run += 1
            if outcome is not None:
                return outcome
        return End()  # "When the document ends, the call hangs up."

    async def _run_verb(self, handler: object, element: ET.Element) -> Outcome | None:
        """Run one verb; a REST redirect interrupts it and replaces the document."""
        self.redirected.clear()
        verb = asyncio.ensure_future(handler(self, element))  # type: ignore[operator]
        redirect = asyncio.ensure_future(self.redirected.wait())
        try:
            await asyncio.wait({verb, redirect}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            redirect.cancel()
            if not verb.done():
                verb.cancel()
                await asyncio.gather(verb, return_exceptions=True)
        if self.redirected.is_set() and self.call.pending_redirect is not None:
            url, method, twiml = self.call.pending_redirect
            self.call.pending_redirect = None
            return Inline(twiml) if twiml else Goto(url, method, {}, purpose="redirect")
        return verb.result()

    def redirect(self, url: str | None, method: str, twiml: str | None) -> None:
        self.call.pending_redirect = (url, method, twiml)
        self.redirected.set()

    # -- helpers for verbs --------------------------------------------------------------------

    def resolve(self, url: str) -> str:
        """Relative URLs resolve against the current document's URL."""
        return urljoin(self.document_url or "", url.strip())

    async def answer(self) -> None:
        """An inbound call is answered by the first verb that needs the line open."""
        if not self.call.answered:
            self.switch.answer(self.call)

    async def speak(
        self, seconds: float, kind: str, pcm: bytes | None = None, **details: object
    ) -> None:
        """Audio to the far end (speech, a file, a beep): played in real time when the leg
        carries audio, else just its duration on the clock."""
        self.call.log("audio", source=kind, seconds=round(seconds, 3), **details)
        if pcm is not None and self.call.media is not None:
            await self.call.media.play(pcm)
        else:
            await self.clock.sleep(seconds)

    def drain_digits(self) -> str:
        stale = []
        while not self.call.dtmf.empty():
            stale.append(self.call.dtmf.get_nowait())
        return "".join(stale)

    async def next_digit(self, timeout: float) -> str | None:
        try:
            return await asyncio.wait_for(self.call.dtmf.get(), self.clock.real(timeout))
        except TimeoutError:
            return None
