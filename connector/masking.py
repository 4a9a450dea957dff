"""Masking for anything that may show a value to a person: samples, logs, error text.

Masks keep just enough shape to recognise a mistake (`t***@e***.com`) and never enough to
identify a person.
"""
from __future__ import annotations

import re
from typing import Any, Iterable

_CODE_LIKE = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,31}\Z")


def is_code_like(value: Any) -> bool:
    """A short identifier (`page_view`, `currency`): safe to show, unlike free text that may be
    shifted personal data (an email or phone in the wrong column)."""
    return isinstance(value, str) and _CODE_LIKE.match(value) is not None


# Control characters written as escapes, so that a shown value never breaks a line or a terminal.
_ESCAPES = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F)} | {0x0A: "\\n", 0x0D: "\\r",
                                                               0x09: "\\t"}


def mask_value(value: Any) -> str:
    """A masked text form of any value: first character, ***, and for an address its TLD."""
    text = value if isinstance(value, str) else repr(value)
    text = text.strip()
    if not text:
        return repr(text)
    if "@" in text:
        local, _, domain = text.rpartition("@")
        head, dot, tld = domain.rpartition(".")
        masked_domain = f"{domain[:1]}***" + (f".{tld[:6]}" if dot and head else "")
        return f"{local[:1]}***@{masked_domain}"
    if len(text) <= 2:
        return "*" * len(text)
    return f"{text[:1]}***".translate(_ESCAPES)


def show_value(value: Any, limit: int = 64) -> str:
    """An unmasked but bounded text form on one line, for values that are known not to be
    personal."""
    text = value if isinstance(value, str) else repr(value)
    text = text if len(text) <= limit else text[:limit] + "…"
    return text.translate(_ESCAPES)


# `scheme://user:password@`: everything between `//` and the last `@` of the authority.
_USERINFO = re.compile(r"(?<=//)[^/?#\s]*@")


def hide_userinfo(text: str) -> str:
    """Text with the credentials of any URL in it (`//user:password@host`) replaced by `***@`."""
    return _USERINFO.sub("***@", text)


class Redactor:
    """Replaces known secret values in free text: the last line of defence for error messages."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def add(self, secret: str | None) -> None:
        if secret and len(secret) >= 4 and secret not in self._secrets:
            self._secrets.append(secret)
            self._secrets.sort(key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for s in self._secrets:
            text = text.replace(s, "***")
        return text
