"""Normalise and hash email and phone the way LINE matches them.

A value that is already 64 hex characters is taken as pre-hashed: it is lower-cased and never
hashed again, because double hashing silently destroys match rates.
"""
from __future__ import annotations

import hashlib
import re
from typing import Callable

import phonenumbers

from .fields import FieldError

_HEX64 = re.compile(r"^[0-9a-fA-F]{64}\Z")
# The seed's email rule, applied after trimming and lower-casing.
# What people write in phone numbers; letters (keypad words) and anything else are refused.
_PHONE_CHARS = re.compile(r"^\+?[0-9 ().\-]+\Z")
E164_MAX_DIGITS = 15
_EMAIL = re.compile(r"^[a-zA-Z0-9_!#$%&'*+/=?`{|}~^.-]+@[a-zA-Z0-9.-]+\Z")


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _expect_str(column: str, value: object) -> str:
    if not isinstance(value, str):
        raise FieldError(column, "type", f"must be a string, got {type(value).__name__}")
    return value


def normalise_email(value: object) -> str:
    """Trimmed, lower-cased address (raises FieldError if it is not an address)."""
    text = _expect_str("email", value).strip().lower()
    if _EMAIL.match(text) is None:
        raise FieldError("email", "format", "is neither an email address nor a SHA-256 hex digest")
    return text


def hash_email(value: object) -> str:
    text = _expect_str("email", value).strip()
    if _HEX64.match(text):
        return text.lower()
    return sha256_hex(normalise_email(text))


def make_phone_normaliser(default_region: str | None) -> Callable[[object], str]:
    """E.164 form of a phone number. Without a default region a number needs its `+` prefix."""

    def normalise_phone(value: object) -> str:
        text = _expect_str("phone", value).strip()
        if not text.startswith("+") and default_region is None:
            raise FieldError(
                "phone", "country_code",
                "has no country code (+...); set default_phone_region to read national numbers",
            )
        if _PHONE_CHARS.match(text) is None:
            raise FieldError("phone", "format", "holds characters that are not part of a phone number")
        try:
            number = phonenumbers.parse(text, None if text.startswith("+") else default_region)
        except phonenumbers.NumberParseException:
            raise FieldError("phone", "format", "is not a phone number") from None
        if not phonenumbers.is_possible_number(number):
            raise FieldError("phone", "format", "is not a possible phone number for its country")
        e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        if len(e164) - 1 > E164_MAX_DIGITS:
            raise FieldError("phone", "format", f"has more than {E164_MAX_DIGITS} digits")
        return e164

    return normalise_phone


def make_phone_hasher(default_region: str | None) -> Callable[[object], str]:
    normalise_phone = make_phone_normaliser(default_region)

    def hash_phone(value: object) -> str:
        text = _expect_str("phone", value).strip()
        if _HEX64.match(text):
            return text.lower()
        return sha256_hex(normalise_phone(text))

    return hash_phone
