"""Masking of values shown to people (connector/masking.py)."""
from __future__ import annotations

import pytest

from connector.masking import Redactor, mask_value, show_value


@pytest.mark.parametrize("value, expected", [
    ("taro@example.com", "t***@e***.com"),
    ("Taro.Yamada@Example.co.jp", "T***@E***.jp"),
    ("  taro@example.com  ", "t***@e***.com"),
    ("a@b", "a***@b***"),
    ("@example.com", "***@e***.com"),
    ("taro@", "t***@***"),
    ("a@b@c.com", "a***@c***.com"),
    ("x@y.abcdefghij", "x***@y***.abcdef"),  # at most 6 characters of TLD
    ("+818012345678", "+***"),
    ("abc", "a***"),
    ("ab", "**"),
    ("a", "*"),
    ("", "''"),
    ("   ", "''"),
])
def test_mask_value_shapes(value, expected):
    assert mask_value(value) == expected


@pytest.mark.parametrize("value, expected", [
    (12345, "1***"),
    (7, "*"),
    (None, "N***"),
    (True, "T***"),
    (1.5, "1***"),
    (b"secret", "b***"),
    (["taro@example.com"], "[***@e***.com']"),
])
def test_mask_value_non_strings(value, expected):
    assert mask_value(value) == expected


@pytest.mark.parametrize("value", ["taro.yamada@example.com", "+818012345678", "Yamada Taro",
                                   "0b5c6a3e-2f4d-4c1a-9e7b-5d8f1a2b3c4d", 818012345678,
                                   "U0123456789abcdef0123456789abcdef"])
def test_mask_never_reveals_more_than_a_character(value):
    masked = mask_value(value)
    text = value if isinstance(value, str) else repr(value)
    local = text.split("@")[0]
    assert local[1:] not in masked
    assert len(masked.replace("*", "").replace("@", "").replace(".", "")) <= 1 + 1 + 6


def test_show_value():
    assert show_value("conversion") == "conversion"
    assert show_value(1735689600) == "1735689600"
    assert show_value("x" * 100) == "x" * 64 + "…"
    assert show_value("x" * 10, limit=4) == "xxxx…"


def test_redactor_replaces_secrets():
    r = Redactor(["tok-SECRET-1", "other-secret"])
    assert r("auth failed for tok-SECRET-1 and other-secret") == "auth failed for *** and ***"
    assert r("nothing here") == "nothing here"


def test_redactor_every_occurrence():
    r = Redactor(["s3cr3t"])
    assert r("s3cr3t s3cr3t/s3cr3t") == "*** ***/***"


def test_redactor_longest_first():
    r = Redactor(["abcd", "abcdefgh"])
    assert r("x abcdefgh y") == "x *** y"
    r = Redactor()
    r.add("abcd")
    r.add("abcdefgh")
    assert r("x abcdefgh y") == "x *** y"


def test_redactor_add_and_ignores_short_or_empty():
    r = Redactor()
    r.add(None)
    r.add("")
    r.add("abc")  # too short to redact safely
    assert r("abc def") == "abc def"
    r.add("tok-ADDED")
    r.add("tok-ADDED")
    assert r("x tok-ADDED") == "x ***"
    assert Redactor(["", "ab"])("ab") == "ab"


def test_redactor_no_secrets_is_identity():
    assert Redactor()("tok-SECRET") == "tok-SECRET"
