"""`dialtone call`: place a call through the REST API (seed 003), on Twilio or the emulator."""

from __future__ import annotations

import argparse
from typing import TextIO

from dialtone.cli.common import CommandError, load_env


def address(text: str, option: str, region: str | None) -> str:
    """A number as `dialtone lines` takes it (090-5987-6543 with DIALTONE_DEFAULT_REGION,
    +81 90 5987 6543, +81-90-…) in E.164, or a `client:` identity as it is."""
    from dialtone import phone

    if text.startswith("client:"):
        return text
    try:
        return phone.to_e164(text, region)
    except phone.InvalidNumber as exc:
        raise CommandError(f"{option}: {exc}") from None


def cmd_call(args: argparse.Namespace, stdin: TextIO, out: TextIO) -> None:
    """Place a call through twilio-python's Client (seed 003), against Twilio or the emulator."""
    import time

    from twilio.base.exceptions import TwilioException, TwilioRestException
    from twilio.rest import Client  # large: imported only for this command
    from twilio.twiml.voice_response import VoiceResponse

    from dialtone.devcreds import development_values

    env = load_env()
    api_url = args.api_url or env.get("DIALTONE_TWILIO_API_URL") or None
    if api_url:
        # An emulator started without TWILIO_* variables uses the development values.
        dev = development_values()
        username = env.get("TWILIO_ACCOUNT_SID") or dev["TWILIO_ACCOUNT_SID"]
        password = env.get("TWILIO_AUTH_TOKEN") or dev["TWILIO_AUTH_TOKEN"]
    else:
        username = env.get("TWILIO_ACCOUNT_SID") or ""
        password = env.get("TWILIO_AUTH_TOKEN") or ""
        if not username or not password:
            raise CommandError(
                "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are required to call through Twilio "
                "(or give --api-url for the emulator)"
            )
    client = Client(username, password)
    if api_url:
        client.api.base_url = api_url.rstrip("/")
    twiml = args.twiml
    if args.say is not None:
        response = VoiceResponse()
        response.say(args.say, language=args.language)
        twiml = response.to_xml()
    region = env.get("DIALTONE_DEFAULT_REGION", "").strip().upper() or None
    from_ = address(args.from_, "--from", region)
    if region is None and not from_.startswith("client:"):
        from dialtone.phone import region_of

        region = region_of(from_)  # a national --to is read as the line itself would dial it
    kwargs = {"to": address(args.to, "--to", region), "from_": from_}
    if args.url:
        kwargs["url"] = args.url
    else:
        kwargs["twiml"] = twiml
    if args.status_callback:
        kwargs["status_callback"] = args.status_callback
        kwargs["status_callback_event"] = ["initiated", "ringing", "answered", "completed"]
    try:
        call = client.calls.create(**kwargs)
        print(f"{call.sid} {call.status}", file=out, flush=True)
        if not args.wait:
            return
        seen = [call.status]
        deadline = time.monotonic() + args.max_wait
        while call.status not in ("completed", "busy", "failed", "no-answer", "canceled"):
            if time.monotonic() > deadline:
                raise CommandError(f"{call.sid} still {call.status} after {args.max_wait:g} s")
            time.sleep(args.poll)
            call = client.calls(call.sid).fetch()
            if call.status != seen[-1]:
                seen.append(call.status)
                print(f"{call.sid} {' -> '.join(seen)}", file=out, flush=True)
    except TwilioRestException as exc:
        raise CommandError(f"Twilio error {exc.code}: {exc.msg}") from None
    except TwilioException as exc:
        raise CommandError(str(exc)) from None
    duration = f", {call.duration} s" if call.duration is not None else ""
    print(f"{call.sid} ended: {call.status}{duration}", file=out, flush=True)
    if call.status != "completed":
        raise CommandError(f"the call ended {call.status}")


def register(commands: argparse._SubParsersAction) -> None:
    call = commands.add_parser("call", help="place a call through the REST API (seed 003)")
    call.add_argument(
        "--to", required=True, help="any format `lines` takes: 090-5987-6543, +81 90 5987 6543"
    )
    call.add_argument("--from", dest="from_", required=True, help="the Twilio number")
    what = call.add_mutually_exclusive_group(required=True)
    what.add_argument("--url", help="TwiML URL fetched when the call is answered")
    what.add_argument("--twiml", help="inline TwiML")
    what.add_argument("--say", help="text to speak")
    call.add_argument("--language", default="en-US", help="for --say")
    call.add_argument("--status-callback", help="URL for initiated/ringing/answered/completed")
    call.add_argument("--wait", action="store_true", help="follow the call to its final status")
    call.add_argument("--api-url", help="REST base URL, e.g. the emulator's http://127.0.0.1:3000")
    call.add_argument("--poll", type=float, default=1.0, help=argparse.SUPPRESS)
    call.add_argument("--max-wait", type=float, default=4 * 3600, help=argparse.SUPPRESS)
    call.set_defaults(func=cmd_call)
