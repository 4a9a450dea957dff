"""The generated fast path: `fast(row, now) -> bytes | None`, Python source written once per run
from the plan, with every field's rule inlined as the cheap test it performs (type, enum, length,
regex, range) and fast variants of the email and phone hashers.

It only ever *accepts*: when a value is not of the common shape, or anything fails, it returns
None (or raises) and the reference encodes the row, and names the error. Both give byte-identical
JSON for the rows the fast path accepts.
"""
from __future__ import annotations

import re
from typing import Any, Callable, Sequence

import orjson

from ..custom import parse_custom
from ..fields import (
    CUSTOM_SECTION,
    REQUIRED_SECTIONS,
    SECTIONS,
    TEST_FLAG_KEY,
    TEST_FLAG_SECTION,
    TIMESTAMP,
    check_cross_rules,
)
from ..hashing import fast_hasher
from ..rules import FORMATS, IP_FORMAT, IPV4_PLAIN_PATTERN, UNDEFINED_LITERAL, NumberRule, Rule, TextRule
from .plan import FieldPlan

FastEncode = Callable[[Sequence[Any], float], "bytes | None"]

_MEMO_LIMIT = 1 << 17
# A match is a sufficient (not necessary) condition for rules.is_ip; anything else asks is_ip.
_IPV4_PLAIN = re.compile(IPV4_PLAIN_PATTERN + r"\Z")


def _memo(fn: Callable[[str], bool]) -> Callable[[str], bool]:
    """A pure str -> bool test with a bounded memo (IP addresses repeat in event data)."""
    cache: dict[str, bool] = {}

    def test(value: str) -> bool:
        hit = cache.get(value)
        if hit is None:
            if len(cache) >= _MEMO_LIMIT:
                cache.clear()
            hit = cache[value] = bool(fn(value))
        return hit

    return test


def _format_test(name: str) -> Callable[[str], bool]:
    slow = _memo(FORMATS[name].test)
    if name != IP_FORMAT:
        return slow
    plain = _IPV4_PLAIN.match

    def ip_test(value: str) -> bool:
        return plain(value) is not None or slow(value)

    return ip_test


def _conditions(rule: Rule, check: Any, k: int, env: dict[str, Any]) -> tuple[list[str], bool]:
    """Python conditions on `v` that, all true, mean the rule passes; and whether v is a str."""
    if isinstance(rule, TextRule):
        conds = ["v.__class__ is str"]
        if rule.enum is not None:
            env[f"ENUM{k}"] = frozenset(rule.enum)
            conds.append(f"v in ENUM{k}")
        if rule.max_length is not None:
            conds.append(f"len(v) <= {int(rule.max_length)}")
        if rule.reject_undefined:
            conds.append(f"v != {UNDEFINED_LITERAL!r}")
        if rule.pattern is not None:
            env[f"RE{k}"] = re.compile(rule.pattern.python).match
            conds.append(f"RE{k}(v) is not None")
        if rule.format is not None:
            env[f"FMT{k}"] = _format_test(rule.format)
            conds.append(f"FMT{k}(v)")
        return conds, True
    if isinstance(rule, NumberRule):
        # floats (allow_float) take the reference path
        return ["v.__class__ is int", f"{int(rule.lo)} <= v <= {int(rule.hi)}"], False
    env[f"CHK{k}"] = check
    return [f"CHK{k}(v) is None"], False  # raises FieldError: the reference takes over


def compile_fast(plan: FieldPlan) -> FastEncode | None:
    """Generate the fast path from the plan (None if generation failed: use the reference)."""
    options = plan.options
    env: dict[str, Any] = {"dumps": orjson.dumps, "cross": check_cross_rules,
                           "parse_custom": parse_custom}
    slots = [f"s{i}" for i in range(len(SECTIONS))]
    lines = ["def fast(row, now):", *(f"    {s} = {{}}" for s in slots)]
    for k, item in enumerate(plan.items):
        f = item.field
        conds, is_str_check = _conditions(f.rule, f.check, k, env)
        if f.hashing is not None:
            kind = "hash"  # hash_email raises on an invalid address: the reference takes over
            env[f"NORM{k}"] = fast_hasher(f.hashing, options.default_phone_region)
        elif f.value == TIMESTAMP:
            kind = "int"  # ints pass unchanged; bool, datetime, str...: reference
        else:
            kind = "str"  # strings pass unchanged; int, UUID: reference
        if is_str_check:
            conds = conds[1:]  # the value is a str already
        test = f"if not ({' and '.join(conds)}): return None" if conds else ""
        store = f"{slots[item.slot]}[{f.key!r}] = v"
        lines.append(f"    v = row[{item.index}]")
        if kind == "int":
            # required or not: a non-int (also None) goes to the reference, which decides
            lines += ["    if v.__class__ is not int: return None", f"    {test}", f"    {store}"]
            continue
        inner = [f"v = NORM{k}(v)", "if v is None: return None"] if kind == "hash" else []
        inner += [test, store]
        if f.required:
            lines.append("    if v.__class__ is not str or not v: return None")
            lines += [f"    {x}" for x in inner if x]
        else:
            lines.append("    if v.__class__ is str:")
            lines.append("        if v:")
            lines += [f"            {x}" for x in inner if x]
            lines.append("    elif v is not None: return None")
    event, user = slots[SECTIONS.index("event")], slots[SECTIONS.index("user")]
    lines.append(f"    cross({event}, {user}, now, {bool(options.channel_id_present)!r})")
    if options.test_flag:
        lines.append(f"    {slots[SECTIONS.index(TEST_FLAG_SECTION)]}[{TEST_FLAG_KEY!r}] = True")
    lines.append("    out = {}")
    for name, slot in zip(SECTIONS, slots):
        if name in REQUIRED_SECTIONS:
            lines.append(f"    out[{name!r}] = {slot}")
        else:
            lines += [f"    if {slot}:", f"        out[{name!r}] = {slot}"]
    if plan.custom_index is not None:
        lines.append(f"    raw = row[{plan.custom_index}]")
        lines.append("    if raw is not None and raw != '':")
        lines.append("        custom = parse_custom(raw)")
        lines.append("        if custom:")
        lines.append(f"            out[{CUSTOM_SECTION!r}] = custom")
    lines.append("    return memoryview(dumps(out)).tobytes()")
    source = "\n".join(lines) + "\n"
    try:
        exec(compile(source, "<line_conversion fast path>", "exec"), env)  # noqa: S102 - our own text
    except SyntaxError:  # pragma: no cover - would be a bug in the generator
        return None
    fast = env["fast"]
    fast.source = source  # type: ignore[attr-defined]
    return fast
