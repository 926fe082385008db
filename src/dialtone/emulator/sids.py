"""Twilio resource identifiers: a two-letter type prefix and 32 hex digits."""

from __future__ import annotations

import re
import secrets


def new_sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


def is_sid(value: str, prefix: str) -> bool:
    return bool(re.fullmatch(prefix + r"[0-9a-fA-F]{32}", value or ""))
