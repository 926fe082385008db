"""Bounded call history: the switch keeps ended calls (with their event logs, recordings and
alerts) for the REST API and the console, but only the newest `history_calls` legs and none
older than `history_seconds`, so an emulator left running for days does not grow.

A call and its child legs (`<Dial>`) go together, oldest ended first, and never while one of
them is still up. Pruning is amortised O(1): each ended call is queued once and removed once.
A pruned call answers `GET Calls/{sid}.json` with Twilio's 404 (20404), as a deleted one does.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Iterator
from datetime import timedelta
from typing import TYPE_CHECKING

from dialtone.emulator.resources import Recording

if TYPE_CHECKING:
    from dialtone.emulator.call import Call
    from dialtone.emulator.monitor import Alert
    from dialtone.emulator.switch import Switch

# Ended calls that keep what only a live call needs for a while after it (the audio a simulated
# phone heard, up to 10 minutes of it, for `heard.wav`; the peer connection; the TwiML
# session): the newest few, the others are lightened to their resource and event log.
AUDIBLE_CALLS = 10
# Recordings are whole WAVs in memory (an hour of <Record> is 57 MB): past this many bytes the
# oldest go first, whatever the call count allows.
RECORDING_BYTES = 256 * 1024 * 1024


class Recordings(dict[str, Recording]):
    """The account's recordings by sid, indexed by call so a pruned call's go with it, and
    held to RECORDING_BYTES of audio (oldest dropped first)."""

    def __init__(self, max_bytes: int = RECORDING_BYTES) -> None:
        super().__init__()
        self.max_bytes = max_bytes
        self.bytes = 0
        self._by_call: dict[str, list[str]] = {}

    def __setitem__(self, sid: str, recording: Recording) -> None:
        self.pop(sid, None)
        super().__setitem__(sid, recording)
        self._by_call.setdefault(recording.call_sid, []).append(sid)
        self.bytes += len(recording.wav)
        while self.bytes > self.max_bytes and len(self) > 1:
            self.pop(next(iter(self)))

    def __delitem__(self, sid: str) -> None:
        self.pop(sid)

    def pop(self, sid: str, *default: Recording | None) -> Recording | None:  # type: ignore[override]
        if sid not in self:
            if default:
                return default[0]
            raise KeyError(sid)
        recording = super().pop(sid)
        self.bytes -= len(recording.wav)
        sids = self._by_call.get(recording.call_sid)
        if sids is not None:
            if sid in sids:
                sids.remove(sid)
            if not sids:
                del self._by_call[recording.call_sid]
        return recording

    def drop_call(self, call_sid: str) -> None:
        for sid in list(self._by_call.get(call_sid, ())):
            self.pop(sid, None)


class Alerts(deque["Alert"]):
    """Monitor Alerts, oldest first: at most `maxlen`, and pruned by age with the calls."""

    def prune(self, oldest: object) -> None:
        while self and self[0].when < oldest:  # type: ignore[operator]
            self.popleft()


class CallHistory:
    """Which ended calls the switch still holds, in the order their families ended."""

    def __init__(self, switch: Switch, max_calls: int, max_seconds: float) -> None:
        if max_calls < 0 or not max_seconds > 0:
            raise ValueError("history_calls must be >= 0 and history_seconds > 0")
        self.switch = switch
        self.max_calls = max_calls
        self.max_seconds = max_seconds
        self.ended_legs = 0  # ended calls still in switch.calls
        self.pruned = 0  # calls removed so far (for the health check and tests)
        self._families: OrderedDict[str, Call] = OrderedDict()  # ended top-level calls
        self._children: dict[str, list[Call]] = {}  # parent sid → its legs
        self._audible: deque[Call] = deque()  # the newest ended calls, not yet lightened

    def __len__(self) -> int:
        return self.ended_legs

    def added(self, call: Call) -> None:
        if call.parent is not None:
            self._children.setdefault(call.parent.sid, []).append(call)

    def ended(self, call: Call) -> None:
        """`call` reached its final status: count it, then prune what the bounds allow."""
        self.ended_legs += 1
        if call.parent is None:
            self._families[call.sid] = call
        self._audible.append(call)
        while len(self._audible) > AUDIBLE_CALLS:
            lighten(self._audible.popleft())
        self.prune()

    def deleted(self, call: Call) -> None:
        """`DELETE Calls/{sid}.json` removed an ended call. Its family stays queued: its other
        legs and its recordings go when the family is pruned."""
        if self.switch.calls.get(call.sid) is call:
            del self.switch.calls[call.sid]
            self.ended_legs -= 1

    def _family(self, call: Call) -> Iterator[Call]:
        yield call
        for child in self._children.get(call.sid, ()):
            yield from self._family(child)

    def prune(self) -> None:
        """Drop the oldest ended families while over the count or past the age; a family
        with a leg still up is passed over (kept) and looked at again later."""
        now = self.switch.clock.now()
        passes = len(self._families)  # each family looked at most once per call
        while self._families and passes > 0:
            sid, call = next(iter(self._families.items()))
            too_many = self.ended_legs > self.max_calls
            too_old = call.ended_at is not None and now - call.ended_at > self.max_seconds
            if not (too_many or too_old):
                break
            passes -= 1
            family = list(self._family(call))
            if not all(leg.ended for leg in family):
                self._families.move_to_end(sid)
                continue
            del self._families[sid]
            for leg in family:
                self._forget(leg)
            self.pruned += len(family)
        alerts = self.switch.alerts
        if isinstance(alerts, Alerts):
            alerts.prune(self.switch.clock.utcnow() - timedelta(seconds=self.max_seconds))

    def _forget(self, call: Call) -> None:
        switch = self.switch
        if switch.calls.get(call.sid) is call:
            del switch.calls[call.sid]
            if call.ended:
                self.ended_legs -= 1
        self._children.pop(call.sid, None)
        if isinstance(switch.recordings, Recordings):
            switch.recordings.drop_call(call.sid)


def lighten(call: Call) -> None:
    """Drop what only a live call (or the newest ended ones) needs: its audio and what the
    phone heard, its transport (a peer connection), its TwiML session and task, its hooks."""
    call.media = call.transport = call.session = call.task = None
    call.on_answer = call.on_end = None
    call.pending_redirect = None
