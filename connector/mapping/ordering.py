"""The query's own order, for SQL that wraps the query.

Some engines (Trino) drop an ORDER BY inside a subquery, so a projection around the user's query
would lose the order the user asked for. `top_level_order` finds the query's outermost ORDER BY
and says which of its result columns it sorts by, so the wrapper can sort by them again.

A light tokenizer is enough: string literals, quoted identifiers, comments and parentheses are
skipped, and an ORDER BY counts only outside every parenthesis (window specifications, aggregate
arguments and subqueries are all in parentheses).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterator, Sequence

_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<comment>--[^\n]*|/\*.*?(?:\*/|\Z))
  | (?P<string>'(?:[^']|'')*(?:'|\Z))
  | (?P<quoted>"(?:[^"]|"")*(?:"|\Z))
  | (?P<word>[A-Za-z_][A-Za-z0-9_$]*)
  | (?P<number>\d+(?:\.\d*)?(?:[eE][+-]?\d+)?)
  | (?P<other>.)
""", re.VERBOSE | re.DOTALL)

_END_OF_ORDER = {"limit", "offset", "fetch"}
_DIRECTION = {"asc", "desc"}
_NULLS = {"first", "last"}


@dataclass(frozen=True)
class OrderKey:
    column: str  # the result column's name, as the query returns it
    modifiers: str  # "DESC NULLS FIRST", or "" (the engine's defaults)


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    depth: int


def _tokens(sql: str) -> Iterator[_Token]:
    depth = 0
    for m in _TOKEN.finditer(sql):
        kind = m.lastgroup or "other"
        text = m.group(0)
        if kind in ("space", "comment"):
            continue
        if text == ")":
            depth -= 1
        yield _Token(kind, text, depth)
        if text == "(":
            depth += 1


class UnorderableQuery(ValueError):
    """The query sorts by something other than its result columns: a wrapper cannot re-sort it."""


def top_level_order(sql: str, columns: Sequence[str]) -> list[OrderKey] | None:
    """The result columns the query's outermost ORDER BY sorts by, or None when it has none.

    Raises UnorderableQuery when an ORDER BY item is an expression, or names no result column
    (`columns`: the query's result columns, in order)."""
    tokens = list(_tokens(sql))
    start = None
    for i in range(len(tokens) - 1):
        a, b = tokens[i], tokens[i + 1]
        if a.depth == 0 and a.text.lower() == "order" and b.text.lower() == "by" and b.depth == 0:
            start = i + 2  # the last one at depth 0 is the query's own
    if start is None:
        return None
    items: list[list[_Token]] = [[]]
    for t in tokens[start:]:
        if t.depth == 0 and t.kind == "word" and t.text.lower() in _END_OF_ORDER:
            break
        if t.depth == 0 and t.text == ";":
            break
        if t.depth == 0 and t.text == ",":
            items.append([])
        else:
            items[-1].append(t)
    by_name = {c.lower(): c for c in columns}
    keys = []
    for item in items:
        keys.append(_key(item, columns, by_name))
    return keys


def _key(item: list[_Token], columns: Sequence[str], by_name: dict[str, str]) -> OrderKey:
    if not item:
        raise UnorderableQuery("an empty ORDER BY item")
    head, rest = item[0], item[1:]
    words = [t.text.lower() for t in rest]
    if not all(t.kind == "word" for t in rest) or not _modifiers_ok(words):
        raise UnorderableQuery("ORDER BY sorts by an expression")
    if head.kind == "number" and head.text.isdigit():
        k = int(head.text)
        if not 1 <= k <= len(columns):
            raise UnorderableQuery(f"ORDER BY {k} is not a result column")
        column = columns[k - 1]
    elif head.kind == "quoted":
        column = by_name.get(head.text[1:-1].replace('""', '"').lower(), "")
    elif head.kind == "word":
        column = by_name.get(head.text.lower(), "")
    else:
        column = ""
    if not column:
        raise UnorderableQuery("ORDER BY sorts by something that is not a result column")
    return OrderKey(column, " ".join(t.text.upper() for t in rest))


def _modifiers_ok(words: list[str]) -> bool:
    """[ASC | DESC] [NULLS FIRST | NULLS LAST]"""
    if words and words[0] in _DIRECTION:
        words = words[1:]
    if words and words[0] == "nulls":
        return len(words) == 2 and words[1] in _NULLS
    return not words
