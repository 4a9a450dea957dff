"""Field rules as plain data, and what derives from them.

A rule says what a wire value must be (a pattern, length bounds, an enumeration, a numeric
range, a named format). Everything else is derived from that one declaration:
- `compile_check`: the reference check, a function that raises FieldError with the rule's name;
- `describe`: the human text of the docs' validation column;
- the generated fast path and the engine's SQL read the same fields (`Pattern.body`,
  `TextRule.max_length`, ...) to build their own forms of the check.
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any, Callable, Union

from connector.outputs.base import InvalidRecord

# The literal LINE reads as "not sent" in some fields.
UNDEFINED_LITERAL = "undefined"


class FieldError(InvalidRecord):
    """One broken LINE field rule. `reason` never contains the offending value: it may be PII."""


@dataclass(frozen=True)
class Pattern:
    """A regular expression, matched against the whole value (or, with full=False, its start).

    `body` is written once, without anchors; the Python, display and RE2 forms derive from it.
    """

    body: str
    full: bool = True
    name: str | None = None  # how docs and messages call it ("UUID") instead of the regex

    @property
    def python(self) -> str:
        """For re.match: `\\Z`, because `$` also matches before a final newline."""
        return "^" + self.body + ("\\Z" if self.full else "")

    @property
    def display(self) -> str:
        return "^" + self.body + ("$" if self.full else "")

    @property
    def message_text(self) -> str:
        return f"a {self.name}" if self.name else self.display

    @property
    def docs_text(self) -> str:
        return self.name or f"`{self.display}`"


@dataclass(frozen=True)
class Format:
    """A value shape no regex says exactly, checked by a function."""

    message_name: str
    docs_text: str
    test: Callable[[str], bool]


def is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


IP_FORMAT = "ip"
FORMATS: dict[str, Format] = {IP_FORMAT: Format("IPv4 or IPv6 address", "IPv4 or IPv6", is_ip)}

# Sufficient (not necessary) shapes of an address `is_ip` accepts, for derived fast paths: a
# dotted quad without leading zeros, and the RFC 4291 text forms of IPv6 without an embedded
# IPv4 part or a zone. Anything else is decided by `is_ip` itself.
IPV4_PLAIN_PATTERN = (r"(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}"
                      r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])")
_H = "[0-9a-fA-F]{1,4}"
IPV6_PLAIN_PATTERN = "|".join((
    f"(?:{_H}:){{7}}{_H}",
    f"(?:{_H}:){{1,7}}:",
    *(f"(?:{_H}:){{1,{7 - k}}}(?::{_H}){{1,{k}}}" for k in range(1, 7)),
    f":(?:(?::{_H}){{1,7}}|:)",
))


@dataclass(frozen=True)
class TextRule:
    pattern: Pattern | None = None
    max_length: int | None = None  # characters
    enum: tuple[str, ...] | None = None
    reject_undefined: bool = False  # the literal `undefined` means "not sent" to LINE
    format: str | None = None  # a key of FORMATS


@dataclass(frozen=True)
class NumberRule:
    lo: int
    hi: int
    allow_float: bool = False  # integers only unless set


@dataclass(frozen=True)
class BoolRule:
    pass


@dataclass(frozen=True)
class TextListRule:
    max_items: int


Rule = Union[TextRule, NumberRule, BoolRule, TextListRule]
Check = Callable[[Any], None]


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def compile_check(name: str, rule: Rule) -> Check:
    """The reference check of one rule: returns None or raises FieldError(name, rule kind, why)."""
    if isinstance(rule, TextRule):
        return _text_check(name, rule)
    if isinstance(rule, NumberRule):
        return _number_check(name, rule)
    if isinstance(rule, BoolRule):
        return _bool_check(name)
    return _text_list_check(name, rule)


def _text_check(name: str, rule: TextRule) -> Check:
    regex = re.compile(rule.pattern.python) if rule.pattern else None
    fmt = FORMATS[rule.format] if rule.format else None
    enum, max_len = rule.enum, rule.max_length

    def check(value: Any) -> None:
        if not isinstance(value, str):
            raise FieldError(name, "type", f"must be a string, got {type(value).__name__}")
        if enum is not None and value not in enum:
            raise FieldError(name, "enum", f"must be one of {', '.join(repr(e) for e in enum)}")
        if max_len is not None and len(value) > max_len:
            raise FieldError(name, "max_length", f"longer than {max_len} characters ({len(value)})")
        if rule.reject_undefined and value == UNDEFINED_LITERAL:
            raise FieldError(name, "undefined", "the literal 'undefined' means 'not sent' to LINE")
        if regex is not None and regex.match(value) is None:
            raise FieldError(name, "pattern", f"does not match {rule.pattern.message_text}")  # type: ignore[union-attr]
        if fmt is not None and not fmt.test(value):
            raise FieldError(name, "format", f"is not a valid {fmt.message_name}")

    return check


def _number_check(name: str, rule: NumberRule) -> Check:
    lo, hi = rule.lo, rule.hi

    def check(value: Any) -> None:
        if not (is_int(value) or (rule.allow_float and isinstance(value, float))):
            kind = "a number" if rule.allow_float else "an integer"
            raise FieldError(name, "type", f"must be {kind}, got {type(value).__name__}")
        if not lo <= value <= hi:
            raise FieldError(name, "range", f"must be between {lo} and {hi}")

    return check


def _bool_check(name: str) -> Check:
    def check(value: Any) -> None:
        if not isinstance(value, bool):
            raise FieldError(name, "type", f"must be a boolean, got {type(value).__name__}")

    return check


def _text_list_check(name: str, rule: TextListRule) -> Check:
    def check(value: Any) -> None:
        if not isinstance(value, list):
            raise FieldError(name, "type", f"must be a list of strings, got {type(value).__name__}")
        if len(value) > rule.max_items:
            raise FieldError(name, "max_items",
                             f"holds more than {rule.max_items} items ({len(value)})")
        for item in value:
            if not isinstance(item, str):
                raise FieldError(name, "type", "must hold only strings")

    return check


def describe(rule: Rule) -> str:
    """The docs' text for a rule."""
    if isinstance(rule, NumberRule):
        return f"{'number' if rule.allow_float else 'integer'}, {rule.lo}..{rule.hi}"
    if isinstance(rule, BoolRule):
        return "a boolean"
    if isinstance(rule, TextListRule):
        return f"at most {rule.max_items} strings"
    parts = []
    if rule.enum is not None:
        parts.append(f"only `{rule.enum[0]}`" if len(rule.enum) == 1
                     else " or ".join(f"`{e}`" for e in rule.enum))
    if rule.pattern is not None:
        parts.append(rule.pattern.docs_text)
    if rule.max_length is not None:
        parts.append(f"at most {rule.max_length} characters")
    if rule.format is not None:
        parts.append(FORMATS[rule.format].docs_text)
    if rule.reject_undefined:
        parts.append(f"not `{UNDEFINED_LITERAL}`")
    return ", ".join(parts) or "a string"
