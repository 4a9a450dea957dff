"""Row → LINE event, through a plan compiled once per job from the field table.

The plan is a list of (column index, normaliser, check, section, key) so that the per-row work is a
tight loop with no name look-ups, no dict-of-columns and no regex compilation. That loop, `build`,
is the reference.

`encode` first tries a fast path: a function generated once per job from the same plan, with every
check of the field table inlined as the cheap test it performs (type, enum, length, regex, range,
read from the check itself) and fast variants of the email and phone hashers. The fast path only
ever *accepts*: when a value is not of the common shape, or anything fails, it returns None and the
reference encodes the row (and raises the FieldError). Both give byte-identical JSON; see
tests/test_fastpath_equivalence.py.
"""
from __future__ import annotations

import datetime as _dt
import decimal
import re
import time
from typing import Any, Callable, Mapping, Sequence

import orjson

from connector.masking import is_code_like
from connector.plugins.base import RecordEncoder

from .fields import (
    CUSTOM_BY_KEY,
    CUSTOM_COLUMN,
    CUSTOM_SECTION,
    FIELDS,
    UNDEFINED_LITERAL,
    IPV4_PLAIN_PATTERN,
    FieldError,
    IntRule,
    StringRule,
    _is_ip,
    check_cross_rules,
    timestamp_seconds,
    to_text,
)
from .hashing import hash_email, make_fast_phone_hasher, make_phone_hasher

_SECTION_SLOTS = {"event": 0, "user": 1, "web": 2}


def _plain(value: Any) -> Any:
    """JSON-ready form of an engine value inside custom_data (DECIMAL, MAP, STRUCT, ROW...)."""
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        names = getattr(value, "_names", None)  # trino's NamedRowTuple: a ROW value
        if names:
            return {n: _plain(v) for n, v in zip(names, value)}
        return [_plain(v) for v in value]
    if isinstance(value, (_dt.datetime, _dt.date)):
        return value.isoformat()
    return value


def parse_custom(value: Any) -> dict[str, Any]:
    """custom_data as a dict: a JSON string, or the engine's JSON, MAP, STRUCT or ROW value."""
    if isinstance(value, (str, bytes)):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise FieldError(CUSTOM_COLUMN, "json", "is not valid JSON") from None
    else:
        value = _plain(value)
        # DuckDB returns a MAP as {"key": [...], "value": [...]} in some versions.
        if isinstance(value, dict) and set(value) == {"key", "value"} \
                and isinstance(value["key"], list) and isinstance(value["value"], list):
            if not all(isinstance(k, str) for k in value["key"]):
                raise FieldError(CUSTOM_COLUMN, "type", "a MAP must have text keys")
            value = dict(zip(value["key"], value["value"]))
    if not isinstance(value, dict):
        raise FieldError(CUSTOM_COLUMN, "type", "must be a JSON object")
    out: dict[str, Any] = {}
    for key, item in value.items():
        spec = CUSTOM_BY_KEY.get(key)
        if spec is None:
            # Named only when it looks like a key: an email used as a key is personal data.
            shown = repr(key) if is_code_like(key) else "a key"
            raise FieldError(CUSTOM_COLUMN, "unknown_key",
                             f"has {shown} that is not one of: {', '.join(CUSTOM_BY_KEY)}")
        if item is None:
            continue
        item = _plain(item)
        spec.check(item)
        out[key] = item
    return out


def _compact(data: bytes) -> bytes:
    """A right-sized copy: orjson's bytes keep its whole output buffer (4 KiB for a ~650-byte
    event, measured with orjson 3.13), which made batches of 100,000 records cost ~400 MB each."""
    return memoryview(data).tobytes()


class LineEventEncoder(RecordEncoder):
    """Builds, validates and encodes one event per row; raises FieldError on the first broken rule."""

    def __init__(self, columns: Sequence[str], *, channel_id_present: bool, test_flag: bool,
                 default_phone_region: str | None, clock: Callable[[], float] = time.time,
                 fast: bool = True) -> None:
        index = {c.lower(): i for i, c in enumerate(columns)}
        special: Mapping[str, Callable[[Any], Any]] = {
            "email": hash_email,
            "phone": make_phone_hasher(default_phone_region),
        }
        plan = []
        for f in FIELDS:
            i = index.get(f.column)
            if i is None:
                continue
            norm = special.get(f.column) or f.normalise or to_text(f.column)
            plan.append((i, f.column, norm, f.check, _SECTION_SLOTS[f.section], f.key, f.required))
        self._plan = tuple(plan)
        self._custom_index = index.get(CUSTOM_COLUMN)
        self._channel = channel_id_present
        self._test_flag = test_flag
        self._clock = clock
        # Refreshed per batch by the runtime via refresh_clock(); reading the clock per row
        # would cost more than the window check itself.
        self._now = clock()
        self._fast = _compile_fast(self, columns, default_phone_region) if fast else None

    def refresh_clock(self) -> None:
        self._now = self._clock()

    @property
    def now(self) -> float:
        """The clock reading the window checks use (refreshed per batch)."""
        return self._now

    def build(self, row: Sequence[Any]) -> dict[str, Any]:
        sections: list[dict[str, Any]] = [{}, {}, {}]
        for i, column, norm, check, slot, key, required in self._plan:
            value = row[i]
            if value is None or (value == "" and not required):
                if required:
                    raise FieldError(column, "required", "is required but NULL")
                continue
            value = norm(value)
            check(value)
            sections[slot][key] = value
        # Required columns are all in the plan (checked before the query ran), so a missing
        # required value has already raised above.
        event, user, web = sections
        check_cross_rules(event, user, self._now, self._channel)
        if self._test_flag:
            event["test_flag"] = True
        out: dict[str, Any] = {"event": event, "user": user}
        if web:
            out["web"] = web
        if self._custom_index is not None:
            raw = row[self._custom_index]
            if raw is not None and raw != "":
                custom = parse_custom(raw)
                if custom:
                    out[CUSTOM_SECTION] = custom
        return out

    def encode(self, row: Sequence[Any]) -> bytes:
        fast = self._fast
        if fast is not None:
            try:
                out = fast(row, self._now)
            except Exception:  # noqa: BLE001 - the reference decides (and names the error)
                out = None
            if out is not None:
                return out
        return self.encode_reference(row)

    def encode_reference(self, row: Sequence[Any]) -> bytes:
        """The reference path alone (for tests and benchmarks)."""
        return _compact(orjson.dumps(self.build(row)))


# --------------------------------------------------------------------------- fast path

_MEMO_LIMIT = 1 << 17


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


# fields.IPV4_PLAIN_PATTERN: a match is a sufficient (not necessary) condition for fields._is_ip;
# anything else asks _is_ip itself.
_IPV4_PLAIN = re.compile(IPV4_PLAIN_PATTERN + r"\Z")


def _format_test(fn: Callable[[str], bool]) -> Callable[[str], bool]:
    slow = _memo(fn)
    if fn is not _is_ip:
        return slow
    plain = _IPV4_PLAIN.match

    def ip_test(value: str) -> bool:
        return plain(value) is not None or slow(value)

    return ip_test


def _check_conditions(check: Any, k: int, env: dict[str, Any]) -> tuple[list[str], bool]:
    """Python conditions on `v` that, all true, mean check(v) passes; and whether v is a str."""
    rule = getattr(check, "rule", None)
    if isinstance(rule, StringRule):
        conds = ["v.__class__ is str"]
        if rule.enum is not None:
            env[f"ENUM{k}"] = frozenset(rule.enum)
            conds.append(f"v in ENUM{k}")
        if rule.max_len is not None:
            conds.append(f"len(v) <= {int(rule.max_len)}")
        if rule.reject_undefined:
            conds.append(f"v != {UNDEFINED_LITERAL!r}")
        if rule.pattern is not None:
            env[f"RE{k}"] = re.compile(rule.pattern).match
            conds.append(f"RE{k}(v) is not None")
        if rule.format_check is not None:
            env[f"FMT{k}"] = _format_test(rule.format_check)
            conds.append(f"FMT{k}(v)")
        return conds, True
    if isinstance(rule, IntRule):
        # floats (allow_float) take the reference path
        return ["v.__class__ is int", f"{int(rule.lo)} <= v <= {int(rule.hi)}"], False
    env[f"CHK{k}"] = check
    return [f"CHK{k}(v) is None"], False  # raises FieldError: the reference takes over


def _compile_fast(enc: LineEventEncoder, columns: Sequence[str],
                  default_phone_region: str | None) -> Callable[[Sequence[Any], float], bytes | None] | None:
    """Generate `fast(row, now) -> bytes | None` from the encoder's plan (None: use the reference)."""
    env: dict[str, Any] = {"dumps": orjson.dumps, "cross": check_cross_rules,
                           "parse_custom": parse_custom}
    # hash_email raises on an invalid address; the caller then takes the reference path.
    special = {"email": hash_email, "phone": make_fast_phone_hasher(default_phone_region)}
    lines = ["def fast(row, now):", "    s0 = {}", "    s1 = {}", "    s2 = {}"]
    for k, (i, column, norm, check, slot, key, required) in enumerate(enc._plan):
        conds, is_str_check = _check_conditions(check, k, env)
        if column in special:
            kind = "special"
            env[f"NORM{k}"] = special[column]
        elif norm is timestamp_seconds:
            kind = "int"  # ints pass unchanged; bool, datetime, str...: reference
        elif getattr(norm, "is_to_text", False):
            kind = "str"  # strings pass unchanged; int, UUID: reference
        else:
            kind = "other"
            env[f"NORM{k}"] = norm
        if kind in ("str", "special") and is_str_check:
            conds = conds[1:]  # the value is a str already
        test = f"if not ({' and '.join(conds)}): return None" if conds else ""
        store = f"s{slot}[{key!r}] = v"
        lines.append(f"    v = row[{i}]")
        if kind == "int":
            # required or not: a non-int (also None) goes to the reference, which decides
            lines += ["    if v.__class__ is not int: return None", f"    {test}", f"    {store}"]
        elif kind in ("str", "special"):
            body = ([f"NORM{k}(v)"] if kind == "special" else [])
            inner = []
            if body:
                inner += [f"v = NORM{k}(v)", "if v is None: return None"]
            inner += [test, store]
            if required:
                lines.append("    if v.__class__ is not str or not v: return None")
                lines += [f"    {x}" for x in inner if x]
            else:
                lines.append("    if v.__class__ is str:")
                lines.append("        if v:")
                lines += [f"            {x}" for x in inner if x]
                lines.append("    elif v is not None: return None")
        else:
            if required:
                lines.append("    if v is None: return None")
                ind = "    "
            else:
                lines.append("    if v is not None and v != '':")
                ind = "        "
            lines += [f"{ind}v = NORM{k}(v)", f"{ind}{test}", f"{ind}{store}"]
    lines.append(f"    cross(s0, s1, now, {bool(enc._channel)!r})")
    if enc._test_flag:
        lines.append("    s0['test_flag'] = True")
    lines.append("    out = {'event': s0, 'user': s1}")
    lines.append("    if s2:")
    lines.append("        out['web'] = s2")
    if enc._custom_index is not None:
        lines.append(f"    raw = row[{enc._custom_index}]")
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
