"""The emulator's call-history bounds as options of `dialtone emulator` and `dialtone dev`."""

from __future__ import annotations

import argparse
import math
from typing import Any

from dialtone.emulator.config import HISTORY_CALLS, HISTORY_SECONDS


def _calls(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from None
    if number < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return number


def _hours(value: str) -> float:
    try:
        hours = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if not (math.isfinite(hours) and hours > 0):
        raise argparse.ArgumentTypeError("must be a positive number of hours")
    return hours


def add_history_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--history-calls",
        type=_calls,
        default=HISTORY_CALLS,
        metavar="N",
        help=f"ended calls kept for the REST API and the console (default {HISTORY_CALLS})",
    )
    parser.add_argument(
        "--history-hours",
        type=_hours,
        default=HISTORY_SECONDS / 3600,
        metavar="H",
        help=f"and for at most this long (default {HISTORY_SECONDS / 3600:g})",
    )


def history_settings(args: argparse.Namespace) -> dict[str, Any]:
    """EmulatorConfig fields from the parsed options."""
    return {"history_calls": args.history_calls, "history_seconds": args.history_hours * 3600}
