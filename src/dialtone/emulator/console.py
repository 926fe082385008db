"""The dev console, served by the emulator at /console: be an external phone in the browser
(real microphone and speaker through the emulator), and inspect calls as a live sequence
diagram of Twilio Client ↔ Twilio ↔ API server ↔ external phone, drawn from the event log.

The emulator side says what happened (one sentence per event, the TwiML answers
pretty-printed, each webhook as a `curl` command); the page only lays it out."""

from __future__ import annotations

import shlex
import xml.etree.ElementTree as ET
from collections.abc import Callable
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from dialtone.emulator.call import Call
from dialtone.emulator.control import public_event
from dialtone.emulator.signaling.devices import phone_number
from dialtone.emulator.webhooks import LOGGED_BODY, USER_AGENT

WEB = Path(__file__).resolve().parent / "web"
# The same npm bundle the phone uses (a shared static file, not server code).
SDK = (
    Path(__file__).resolve().parents[1]
    / "web"
    / "node_modules"
    / "@twilio"
    / "voice-sdk"
    / "dist"
    / "twilio.min.js"
)
_FILES = {
    "/console": ("console.html", "text/html"),
    "/console.js": ("console.js", "application/javascript"),
    "/console/diagram.js": ("diagram.js", "application/javascript"),
}

# The diagram's lanes, left to right.
CLIENT, TWILIO, SERVER, PHONE = 0, 1, 2, 3
LANES = ("Twilio Client", "Twilio (emulator)", "API server", "External phone")
MAX_FAMILY = 50  # legs drawn for one call (a <Dial> rings at most 10 at a time)


# -- the TwiML answer and the webhook as curl -------------------------------------------------


def pretty_twiml(body: str) -> str | None:
    """A TwiML document indented for reading, without the XML declaration (comments kept);
    None when it does not parse (the page then shows the body as it came)."""
    parser = ET.XMLParser(target=ET.TreeBuilder(insert_comments=True))
    try:
        root = ET.fromstring(body, parser=parser)
    except ET.ParseError:
        return None
    ET.indent(root, space="  ")
    return ET.tostring(root, encoding="unicode")


def curl_command(event: dict[str, Any]) -> str:
    """The webhook as a shell command that sends it again, byte for byte the request the
    emulator signed: same URL, parameters, headers and X-Twilio-Signature."""
    url, method = str(event["url"]), str(event.get("method") or "POST")
    params = {str(k): str(v) for k, v in (event.get("parameters") or {}).items()}
    words = ["curl", "--silent", "--show-error"]
    headers = [f"User-Agent: {USER_AGENT}", f"X-Twilio-Signature: {event.get('signature', '')}"]
    if method == "GET":
        query = urlencode(params)
        target = url + (("&" if urlsplit(url).query else "?") + query if query else "")
    else:
        target = url
        headers.append("Content-Type: application/x-www-form-urlencoded; charset=UTF-8")
    for header in headers:
        words += ["--header", header]
    if method != "GET":
        words += ["--data-raw", urlencode(params)]
    words.append(target)
    return " \\\n  ".join(shlex.quote(word) for word in words)


# -- events as sentences ----------------------------------------------------------------------


class Family:
    """A call and its legs, as the diagram names them."""

    def __init__(self, calls: list[Call]) -> None:
        self.calls = {c.sid: c for c in calls}
        self.root = calls[0]

    def leg(self, sid: str) -> str:
        """'the call' for the first leg, 'the leg to X' for the ones it dialled."""
        call = self.calls.get(sid)
        if call is None or call is self.root:
            return "the call"
        return f"the leg to {call.to}"

    def far_lane(self, sid: str) -> int:
        """Where the far party of a leg is drawn: a browser (client:…) or a phone."""
        call = self.calls.get(sid)
        if call is None:
            return PHONE
        party = call.from_ if call.direction == "inbound" else call.to
        return CLIENT if party.startswith("client:") else PHONE

    def far_party(self, sid: str) -> str:
        call = self.calls.get(sid)
        if call is None:
            return "the far end"
        return call.from_ if call.direction == "inbound" else call.to


def browser(identity: Any) -> str:
    """`DeviceId_0001's browser`; the console's own phones by their number."""
    identity = str(identity or "a")
    number = phone_number(identity)
    return f"{number}'s browser" if number else f"{identity}'s browser"


def device_lane(identity: Any) -> int:
    return PHONE if phone_number(str(identity or "")) else CLIENT


def _path(url: Any) -> str:
    try:
        parts = urlsplit(str(url))
    except ValueError:
        return str(url)
    return parts.path + (f"?{parts.query}" if parts.query else "") or "/"


_PURPOSES = {
    "voice_url": "Asks the API server what to do",
    "url": "Asks the API server what to do",
    "redirect": "Follows <Redirect>",
    "fallback": "Asks the fallback URL",
    "gather_action": "Sends the digits gathered",
    "dial_action": "Tells how <Dial> ended",
    "record_action": "Sends the recording",
    "recording_status_callback": "Recording status callback",
    "whisper": "Asks what to play to the callee first",
}

# (way, type) of Voice SDK signaling → what happened; {who} is the browser.
_SIGNALS = {
    ("from-device", "invite"): "{who} places a call",
    ("to-device", "invite"): "{who} gets an invite",
    ("to-device", "ringing"): "{who} hears ringing",
    ("to-device", "answer"): "{who} is connected (audio flows)",
    ("from-device", "answer"): "{who} accepts",
    ("from-device", "hangup"): "{who} hangs up",
    ("to-device", "hangup"): "{who} is told the call ended",
    ("to-device", "cancel"): "{who} stops ringing",
    ("from-device", "reject"): "{who} declines",
    ("from-device", "dtmf"): "{who} presses {dtmf}",
    ("from-device", "message"): "{who} sends a message",
    ("to-device", "ack"): "{who} gets an acknowledgement",
    ("to-device", "error"): "{who} gets an error",
    ("from-device", "reconnect"): "{who} reconnects",
}

_STATES = {
    "initiated": "is placed",
    "ringing": "is ringing",
    "in-progress": "is answered",
    "completed": "ended",
    "busy": "ended: busy",
    "failed": "failed",
    "no-answer": "ended: no answer",
    "canceled": "was canceled",
}


def _webhook(e: dict[str, Any], f: Family) -> str:
    purpose = str(e.get("purpose", ""))
    if purpose.startswith("status_callback:"):
        what = f"Status callback: {purpose.split(':', 1)[1]}"
    else:
        what = _PURPOSES.get(purpose, purpose.replace("_", " ").capitalize() or "Request")
    signed = "signed" if e.get("signature") else "unsigned"
    # A no-break space keeps the method with its path when the page wraps the sentence.
    return f"{what}: {e.get('method', 'POST')}\u00a0{_path(e.get('url'))} ({signed})"


def _signal(e: dict[str, Any], f: Family) -> str:
    template = _SIGNALS.get(
        (str(e.get("way")), str(e.get("type"))),
        "{who} gets “{type}”" if e.get("way") == "to-device" else "{who} sends “{type}”",
    )
    return template.format(who=browser(e.get("identity")), type=e.get("type"), dtmf=e.get("dtmf"))


def _created(e: dict[str, Any], f: Family) -> str:
    direction, from_, to = e.get("direction"), e.get("from"), e.get("to")
    if direction == "inbound":
        caller = browser(str(from_)[7:]) if str(from_).startswith("client:") else from_
        return f"{caller} calls {to}"
    if direction == "outbound-api":
        return f"A call from {from_} to {to} is placed through the REST API"
    return f"Twilio dials {to} (caller ID {from_})"


def _verb(e: dict[str, Any], f: Family) -> str:
    verb, text = e.get("verb"), str(e.get("text") or "")
    attributes = e.get("attributes") or {}
    if verb == "Say":
        return f"Runs <Say>: “{text}”"
    if verb == "Dial":
        extra = " (answerOnBridge)" if attributes.get("answerOnBridge") == "true" else ""
        return f"Runs <Dial>{' ' + text if text else ''}{extra}"
    if verb in ("Play", "Redirect"):
        return f"Runs <{verb}> {text}".rstrip()
    return f"Runs <{verb}>"


def _audio(e: dict[str, Any], f: Family) -> str:
    source, seconds = e.get("source"), e.get("seconds")
    if source == "pause":
        return f"Silence for {seconds} s"
    if source == "say":
        return f"Twilio says “{e.get('text', '')}” ({seconds} s)"
    if source == "play":
        return f"Twilio plays {e.get('url', 'audio')} ({seconds} s)"
    return f"Twilio plays {source} ({seconds} s)"


def _dial_result(e: dict[str, Any], f: Family) -> str:
    status = e.get("DialCallStatus", "?")
    duration = e.get("DialCallDuration")
    return f"Dial ended: {status}" + (f" after {duration} s" if duration not in (None, "") else "")


def _far_end_audio(e: dict[str, Any], f: Family) -> str:
    said = f"“{e['text']}”" if e.get("text") else e.get("url", "audio")
    return f"{f.far_party(e['call_sid'])} says {said} ({e.get('seconds')} s)"


def _record_result(e: dict[str, Any], f: Family) -> str:
    if not e.get("stored"):
        return "Nothing was recorded"
    return f"Recording {e.get('recording_sid', '')} stored ({e.get('duration')} s)"


def _gather_result(e: dict[str, Any], f: Family) -> str:
    digits = e.get("digits")
    if not digits:
        return "<Gather> ended without digits"
    key = e.get("finished_on_key")
    return f"Gathered {digits}" + (f", finished with {key}" if key else "")


# Every kind of event the emulator writes into a call's log → its sentence.
SENTENCES: dict[str, Callable[[dict[str, Any], Family], str]] = {
    "created": _created,
    "state": lambda e, f: (
        f"{f.leg(e['call_sid']).capitalize()} {_STATES.get(e['status'], e['status'])}"
    ),
    "webhook": _webhook,
    "signal": _signal,
    "verb": _verb,
    "audio": _audio,
    "dtmf": lambda e, f: f"{f.far_party(e['call_sid'])} presses {e.get('digit')}",
    "dtmf_sent": lambda e, f: (
        f"Twilio sends the tone {e.get('digit')} to {f.far_party(e['call_sid'])}"
    ),
    "dtmf_ignored": lambda e, f: f"Keys pressed before <Gather> ignored: {e.get('digits')}",
    "far_end_hangup": lambda e, f: f"{f.far_party(e['call_sid'])} hangs up",
    "far_end_audio": _far_end_audio,
    "error": lambda e, f: f"Error {e.get('code')}: {e.get('message', '')}",
    "warning": lambda e, f: f"Warning {e.get('code')}: {e.get('message', '')}",
    "application_error": lambda e, f: f"Twilio says “{e.get('message', '')}”",
    "bridge": lambda e, f: f"Bridged to {f.far_party(e['with_call_sid'])}",
    "dial_result": _dial_result,
    "gather_result": _gather_result,
    "record_start": lambda e, f: f"Recording starts (at most {e.get('max_length')} s)",
    "record_result": _record_result,
    "hangup_on_star": lambda e, f: "The caller pressed * and leaves the <Dial>",
    "redirected_by_api": lambda e, f: (
        f"The REST API redirects the call to {e.get('url') or 'new TwiML'}"
    ),
    "unavailable": lambda e, f: f"{e.get('address')} has no browser signed in",
    "device_invited": lambda e, f: f"{browser(e.get('identity'))} is invited",
    "device_answered": lambda e, f: f"{browser(e.get('identity'))} answers",
    "device_rejected": lambda e, f: f"{browser(e.get('identity'))} declines the call",
    "device_signaling_lost": lambda e, f: (
        f"{browser(e.get('identity'))} lost its connection; "
        f"the call waits {e.get('hold_seconds')} s"
    ),
    "device_reconnected": lambda e, f: f"{browser(e.get('identity'))} is back",
    "device_reconnect_timeout": lambda e, f: (
        f"{browser(e.get('identity'))} did not come back within {e.get('seconds')} s"
    ),
    "user_message": lambda e, f: "The browser sends a message to the application",
    "events_truncated": lambda e, f: f"Only the first {e.get('kept')} events of a leg are kept",
}

# Where each kind is drawn: (from lane, to lane) for an arrow, (lane, None) for a note.
# A callable gets the event and the family; "far" is the leg's far party.
_Lanes = tuple[int, int | None]


def _arrow(e: dict[str, Any], f: Family) -> _Lanes:
    kind, far = e["kind"], f.far_lane(e["call_sid"])
    if kind == "created":
        if e.get("direction") == "inbound":
            return (far, TWILIO)
        if e.get("direction") == "outbound-api":
            return (SERVER, TWILIO)
        return (TWILIO, far)
    if kind == "signal":
        lane = device_lane(e.get("identity"))
        return (TWILIO, lane) if e.get("way") == "to-device" else (lane, TWILIO)
    if kind in ("device_invited",):
        return (TWILIO, device_lane(e.get("identity")))
    if kind in ("device_answered", "device_rejected", "device_reconnected", "user_message"):
        return (device_lane(e.get("identity")), TWILIO)
    if kind in ("device_signaling_lost", "device_reconnect_timeout"):
        return (TWILIO, None)
    if kind in ("dtmf", "far_end_hangup", "far_end_audio"):
        return (far, TWILIO)
    if kind in ("dtmf_sent", "audio", "application_error"):
        return (TWILIO, far)
    if kind == "redirected_by_api":
        return (SERVER, TWILIO)
    return (TWILIO, None)


def _style(kind: str) -> str:
    if kind in ("signal", "device_invited", "device_answered", "device_rejected"):
        return "signal"
    if kind in ("error", "warning", "application_error", "unavailable"):
        return "problem"
    if kind in ("created", "dtmf", "dtmf_sent", "far_end_hangup", "far_end_audio", "audio"):
        return "media"
    return "note"


def sentence(event: dict[str, Any], family: Family) -> str:
    describe = SENTENCES.get(event["kind"])
    if describe is None:  # a kind added later: still shown, by its name
        return event["kind"].replace("_", " ").capitalize()
    try:
        return describe(event, family)
    except (KeyError, TypeError, ValueError):
        return event["kind"].replace("_", " ").capitalize()


def _status_line(status: Any) -> str:
    try:
        return f"{status} {HTTPStatus(int(status)).phrase}"
    except (TypeError, ValueError):
        return str(status)


def _webhook_steps(e: dict[str, Any], text: str) -> list[dict[str, Any]]:
    request = {
        "method": e.get("method"),
        "url": e.get("url"),
        "purpose": e.get("purpose"),
        "parameters": e.get("parameters") or {},
        "signature": e.get("signature"),
        "curl": curl_command(e),
    }
    steps = [{"from": TWILIO, "to": SERVER, "text": text, "style": "webhook", "webhook": request}]
    if e.get("error_code"):
        answer = (
            f"No answer: error {e['error_code']}, {e.get('error', '')} ({e.get('latency_ms')} ms)"
        )
        steps.append({"from": SERVER, "to": TWILIO, "text": answer, "style": "problem"})
        return steps
    status, latency = e.get("status"), e.get("latency_ms")
    body = e.get("response_body")
    twiml = pretty_twiml(body) if e.get("twiml") and body else None
    if twiml:
        answer = f"{_status_line(status)}, TwiML in {latency} ms"
    else:
        kind = e.get("content_type") or "no content type"
        answer = (
            f"{_status_line(status)}, {kind}, {e.get('response_size', 0)} bytes in {latency} ms"
        )
    step: dict[str, Any] = {
        "from": SERVER,
        "to": TWILIO,
        "text": answer,
        "style": "twiml" if (status or 0) < 400 else "problem",
    }
    if twiml:
        step["twiml"] = twiml
    elif e.get("twiml") and body:
        step["twiml"] = body  # cut at LOGGED_BODY: shown as it came
    if body and e.get("twiml") and (e.get("response_size") or 0) > LOGGED_BODY:
        step["truncated"] = f"the first {LOGGED_BODY} of {e['response_size']} bytes"
    steps.append(step)
    return steps


# Signaling messages that an event of the call already tells in words: (way, type) → the
# kind that tells it. The browser's invite is the call being created.
_SAID_BY = {
    ("to-device", "invite"): "device_invited",
    ("from-device", "answer"): "device_answered",
    ("from-device", "reject"): "device_rejected",
    ("from-device", "dtmf"): "dtmf",
    ("from-device", "invite"): "created",
}


def _key(event: dict[str, Any]) -> tuple[Any, ...]:
    return (event["call_sid"], event["kind"], event.get("way"), event.get("type"))


def _told_twice(events: list[dict[str, Any]]) -> set[tuple[Any, ...]]:
    """What to leave out so each thing that happened reads once: signaling that a sentence
    already says, and the far end hanging up right after its browser said so."""
    kinds = {(e["call_sid"], e["kind"]) for e in events}
    hung_up = {
        e["call_sid"] for e in events if (e.get("way"), e.get("type")) == ("from-device", "hangup")
    }
    skip = {
        _key(e)
        for e in events
        if e["kind"] == "signal"
        and (e["call_sid"], _SAID_BY.get((e.get("way"), e.get("type")))) in kinds
    }
    skip |= {(sid, "far_end_hangup", None, None) for sid in hung_up}
    return skip


def diagram(root: Call, calls: dict[str, Call]) -> dict[str, Any]:
    """A call and its legs as steps of a sequence diagram, in the order they happened."""
    members = [root]
    for call in calls.values():  # a parent is always added before its legs
        if call.parent is not None and any(call.parent is m for m in members):
            members.append(call)
            if len(members) >= MAX_FAMILY:
                break
    family = Family(members)
    events = sorted(
        (public_event(e) for c in members for e in list(c.events)),
        key=lambda e: (e["at"], e["timestamp"], e["seq"]),
    )
    steps: list[dict[str, Any]] = []
    parties: dict[int, list[str]] = {lane: [] for lane in range(len(LANES))}
    told = _told_twice(events)
    for event in events:
        kind = event["kind"]
        if kind == "bridge" and event.get("call_sid") != root.sid:
            continue  # the same bridge, told once (from the first leg)
        if _key(event) in told:
            continue
        text = sentence(event, family)
        common = {
            "call_sid": event["call_sid"],
            "seq": event["seq"],
            "at": event["at"],
            "kind": kind,
        }
        if kind == "webhook":
            host = urlsplit(str(event.get("url"))).netloc
            if host and host not in parties[SERVER]:
                parties[SERVER].append(host)
            steps += [{**common, **s} for s in _webhook_steps(event, text)]
            continue
        if kind in ("signal", "device_invited"):
            lane, name = device_lane(event.get("identity")), browser(event.get("identity"))
            name = name.removesuffix("'s browser")
            if name not in parties[lane]:
                parties[lane].append(name)
        start, end = _arrow(event, family)
        steps.append({**common, "from": start, "to": end, "text": text, "style": _style(kind)})
    for call in members:
        party = family.far_party(call.sid)
        lane = family.far_lane(call.sid)
        name = party.removeprefix("client:")
        ours = lane == PHONE and call.switch.number_for(party) is not None
        if not ours and name not in parties[lane]:
            parties[lane].append(name)
    first = events[0]["at"] if events else 0.0
    return {
        "call_sid": root.sid,
        "status": root.status,
        "lanes": [{"name": name, "parties": parties[i]} for i, name in enumerate(LANES)],
        "start": first,
        "steps": steps,
        "title": f"{root.from_} → {root.to}",
    }


# -- routes -----------------------------------------------------------------------------------


async def static(request: Request) -> Response:
    name, media_type = _FILES[request.url.path]
    return FileResponse(WEB / name, media_type=media_type, headers={"Cache-Control": "no-cache"})


async def sdk(request: Request) -> Response:
    if not SDK.exists():
        return PlainTextResponse(
            "the Voice SDK is not installed: npm ci in src/dialtone/web\n", 503
        )
    return FileResponse(SDK, media_type="application/javascript")


async def sound(request: Request) -> Response:
    """Short local tones for the SDK (it must never fetch Twilio's CDN)."""
    from dialtone.emulator.media import audio

    name = request.path_params["name"]
    pcm = (
        audio.tone(440, 1.0, 0.2) + audio.silence(2.0)
        if name == "incoming"
        else audio.tone(600, 0.1, 0.2)
    )
    return Response(audio.to_wav(pcm), media_type="audio/wav")


async def config(request: Request) -> JSONResponse:
    switch = request.app.state.switch
    return JSONResponse(
        {
            "chunderw": switch.config.signal_host,
            "numbers": [n.phone_number for n in switch.numbers.values()],
            # The page follows these on the event stream (SSE events are named by kind).
            "event_kinds": sorted(SENTENCES),
        }
    )


async def calls(request: Request) -> JSONResponse:
    """Recent calls for the inspector's picker, newest first (parents with their legs)."""
    switch = request.app.state.switch
    listed = [
        {
            "sid": c.sid,
            "parent": c.parent_sid,
            "from": c.from_,
            "to": c.to,
            "status": c.status,
            "direction": c.direction,
            "created": c.date_created.isoformat(),
        }
        for c in list(switch.calls.values())[-100:]
    ]
    return JSONResponse({"calls": listed[::-1]})


async def call_diagram(request: Request) -> JSONResponse:
    """One call (with the legs it dialled) as the steps of its sequence diagram."""
    switch = request.app.state.switch
    call = switch.calls.get(request.path_params["sid"])
    if call is None:
        return JSONResponse({"message": "no such call (or it is no longer kept)"}, 404)
    while call.parent is not None and call.parent.sid in switch.calls:
        call = call.parent
    return JSONResponse(diagram(call, dict(switch.calls)))


def routes() -> list[Route]:
    return [
        *(Route(path, static, methods=["GET"]) for path in _FILES),
        Route("/console/vendor/twilio.min.js", sdk, methods=["GET"]),
        Route("/console/sounds/{name}.wav", sound, methods=["GET"]),
        Route("/console/config.json", config, methods=["GET"]),
        Route("/console/calls.json", calls, methods=["GET"]),
        Route("/console/calls/{sid}/diagram.json", call_diagram, methods=["GET"]),
    ]
