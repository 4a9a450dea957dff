"""Normalise and hash email and phone the way LINE matches them.

A value that is already 64 hex characters is taken as pre-hashed: it is lower-cased and never
hashed again, because double hashing silently destroys match rates.
"""
from __future__ import annotations

import hashlib
import re
from typing import Callable

import phonenumbers

from .fields import HASH_EMAIL
from .rules import FieldError, Pattern

# A value of this shape is a digest already: lower-cased, never hashed again.
DIGEST = Pattern("[0-9a-fA-F]{64}")
# Treasure Data's email rule, applied after trimming and lower-casing.
EMAIL = Pattern("[a-zA-Z0-9_!#$%&'*+/=?`{|}~^.-]+@[a-zA-Z0-9.-]+")
_HEX64 = re.compile(DIGEST.python)
_EMAIL = re.compile(EMAIL.python)
# What people write in phone numbers; letters (keypad words) and anything else are refused.
_PHONE_CHARS = re.compile(r"^\+?[0-9 ().\-]+\Z")
E164_MAX_DIGITS = 15


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


def reference_hasher(kind: str, default_region: str | None) -> Callable[[object], str]:
    """The reference normalise-and-hash of a hashing kind (fields.HASH_EMAIL, HASH_PHONE)."""
    return hash_email if kind == HASH_EMAIL else make_phone_hasher(default_region)


def fast_hasher(kind: str, default_region: str | None) -> Callable[[object], str | None]:
    """A hasher for the common shapes: the digest, or None (or an error) for "ask the reference"."""
    return hash_email if kind == HASH_EMAIL else make_fast_phone_hasher(default_region)


# --------------------------------------------------------------------------- fast paths
# The functions above are the reference (hash_email is already cheap enough to serve both paths).
# The fast phone variant below returns the same string for the common shapes (a `+digits` E.164
# number, a hex digest) and None whenever it is not sure; the caller then runs the reference,
# which also produces the error.
# tests/test_fastpath_equivalence.py checks both paths against each other through DuckDB.

_sha256 = hashlib.sha256
_HEX = frozenset("0123456789abcdefABCDEF")


try:  # phonenumbers internals, used only to decide when the fast path is exact
    from phonenumbers.phonemetadata import PhoneMetadata as _PhoneMetadata
    from phonenumbers.phonenumberutil import (
        _MAX_LENGTH_COUNTRY_CODE,
        _extract_country_code,
    )
    from phonenumbers.re_util import re_compile as _pn_re_compile
except ImportError:  # pragma: no cover - another phonenumbers layout: reference path only
    _extract_country_code = None  # type: ignore[assignment]


def make_fast_phone_hasher(default_region: str | None) -> Callable[[object], str | None]:
    """hash_phone for pre-hashed values and `+<digits>` numbers, or None for "ask the reference".

    For `+<ASCII digits>` phonenumbers.parse goes: country code from the first 1-3 digits (a
    function of those digits only), then the national prefix of that country is stripped only if
    its pattern matches the start of the national number, then the number is "possible" by its
    length alone, and its E.164 form is the input itself. So when the prefix pattern does not
    match, the outcome depends only on (country code, length of the national number): it is
    learnt once per such pair from the reference normaliser and replayed.
    """
    normalise_phone = make_phone_normaliser(default_region)
    if _extract_country_code is None:
        return lambda value: None
    by_head: dict[str, tuple[int, int, object] | None] = {}  # first 3 digits -> (cc, cc len, prefix re)
    by_shape: dict[tuple[int, int], bool] = {}  # (cc, national length) -> reference gives E.164 == input

    def head_info(head: str) -> tuple[int, int, object] | None:
        cc, rest = _extract_country_code(head)
        if cc == 0:
            return None
        region = phonenumbers.region_code_for_country_code(cc)
        meta = _PhoneMetadata.metadata_for_region_or_calling_code(cc, region)
        if meta is None:
            return None
        prefix = meta.national_prefix_for_parsing
        return cc, len(head) - len(rest), (_pn_re_compile(prefix) if prefix else None)

    def hash_phone_fast(value: object) -> str | None:
        if value.__class__ is not str:
            return None
        text = value.strip()  # type: ignore[union-attr]
        n = len(text)
        if n == 64:
            if _HEX.issuperset(text):
                return text.lower()
            return None
        # E164_MAX_DIGITS bounds the whole number; at least 3 digits after the country code.
        if n < 5 or n > E164_MAX_DIGITS + 1 or text[0] != "+":
            return None
        digits = text[1:]
        if not (digits.isdigit() and digits.isascii()):
            return None
        head = digits[:_MAX_LENGTH_COUNTRY_CODE]
        try:
            info = by_head[head]
        except KeyError:
            info = by_head[head] = head_info(head)
        if info is None:
            return None
        cc, cc_len, prefix_re = info
        national = digits[cc_len:]
        if prefix_re is not None and prefix_re.match(national) is not None:
            return None
        shape = (cc, len(national))
        ok = by_shape.get(shape)
        if ok is None:
            try:
                ok = normalise_phone(text) == text
            except FieldError:
                ok = False
            by_shape[shape] = ok
        if not ok:
            return None
        return _sha256(text.encode()).hexdigest()

    return hash_phone_fast
