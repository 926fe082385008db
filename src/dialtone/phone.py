"""Phone-number handling shared by the API server and the emulator.

Pure functions over `phonenumbers`; no I/O, no imports from either role.
"""

from __future__ import annotations

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType, ValidationResult

# Twilio strips these before dialling; users paste them from anywhere.
_MAX_INPUT = 64

_PARSE_REASONS = {
    NumberParseException.INVALID_COUNTRY_CODE: (
        "it has no valid country code (write it as +<country code><number>, "
        "or configure a default region for national numbers)"
    ),
    NumberParseException.NOT_A_NUMBER: "it is not a phone number",
    NumberParseException.TOO_SHORT_AFTER_IDD: "it is too short after the international prefix",
    NumberParseException.TOO_SHORT_NSN: "it is too short",
    NumberParseException.TOO_LONG: "it is too long",
}

_POSSIBLE_REASONS = {
    ValidationResult.INVALID_COUNTRY_CODE: "its country code does not exist",
    ValidationResult.TOO_SHORT: "it is too short for its country",
    ValidationResult.TOO_LONG: "it is too long for its country",
    ValidationResult.INVALID_LENGTH: "it has the wrong number of digits for its country",
}

# Toll-fraud classes: a line must never be able to call these.
COSTLY_TYPES = frozenset({PhoneNumberType.PREMIUM_RATE, PhoneNumberType.SHARED_COST})

_TYPE_NAMES = {
    value: name.lower().replace("_", "-")
    for name, value in vars(PhoneNumberType).items()
    if name.isupper() and isinstance(value, int)
}


class InvalidNumber(ValueError):
    """A string that is not a dialable phone number; the message says why."""

    def __init__(self, text: str, reason: str) -> None:
        shown = text if len(text) <= _MAX_INPUT else text[:_MAX_INPUT] + "…"
        super().__init__(f"{shown!r} is not a valid phone number: {reason}")
        self.text = text
        self.reason = reason


def parse(text: str, region: str | None = None) -> phonenumbers.PhoneNumber:
    """Parse `text` (any common format) into a valid number, or raise InvalidNumber.

    `region` (ISO 3166 alpha-2, e.g. "JP") is used only for numbers written without
    a country code, such as "050-3123-4567".
    """
    if not isinstance(text, str) or not text.strip():
        raise InvalidNumber(str(text), "it is empty")
    if len(text) > _MAX_INPUT:
        raise InvalidNumber(text, "it is too long")
    try:
        number = phonenumbers.parse(text, region.upper() if region else None)
    except NumberParseException as exc:
        raise InvalidNumber(text, _PARSE_REASONS.get(exc.error_type, str(exc))) from None
    if number.extension:
        raise InvalidNumber(text, "it has an extension, which cannot be dialled here")
    possible = phonenumbers.is_possible_number_with_reason(number)
    if possible not in (ValidationResult.IS_POSSIBLE, ValidationResult.IS_POSSIBLE_LOCAL_ONLY):
        raise InvalidNumber(text, _POSSIBLE_REASONS.get(possible, "it is not possible"))
    if not phonenumbers.is_valid_number(number):
        region_code = phonenumbers.region_code_for_number(number) or "its country"
        raise InvalidNumber(text, f"no such number range is in use in {region_code}")
    return number


def to_e164(text: str, region: str | None = None) -> str:
    """Normalise to E.164 ("+815031234567"), or raise InvalidNumber."""
    return format_e164(parse(text, region))


def format_e164(number: phonenumbers.PhoneNumber) -> str:
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def region_of(e164: str) -> str | None:
    """ISO region of a valid E.164 number ("JP"), or None for non-geographic ones."""
    code = phonenumbers.region_code_for_number(phonenumbers.parse(e164))
    return code if code and code != "001" else None


def country_code_of(e164: str) -> int:
    return phonenumbers.parse(e164).country_code


def number_type(number: phonenumbers.PhoneNumber) -> str:
    """The number's class as a word ("mobile", "premium-rate", …)."""
    return _TYPE_NAMES.get(phonenumbers.number_type(number), "unknown")


def is_costly(number: phonenumbers.PhoneNumber) -> bool:
    return phonenumbers.number_type(number) in COSTLY_TYPES


def national_digits(number: phonenumbers.PhoneNumber) -> str:
    """The number as dialled inside its country, digits only ("05031234567")."""
    national = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    return "".join(ch for ch in national if ch.isdigit())


def display(text: str, region: str | None = None) -> str:
    """A number as people at home in `region` write it: national format for its own numbers
    ("090-5987-6543"), international for others ("+1 415-555-0100"); anything that is not
    a valid number (a `client:` address, a typo) as it is."""
    try:
        number = phonenumbers.parse(text, region.upper() if region else None)
    except NumberParseException:
        return text
    if not phonenumbers.is_valid_number(number):
        return text
    home = region and phonenumbers.region_code_for_number(number) == region.upper()
    formats = phonenumbers.PhoneNumberFormat
    return phonenumbers.format_number(number, formats.NATIONAL if home else formats.INTERNATIONAL)
