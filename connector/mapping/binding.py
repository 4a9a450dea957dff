"""Resolve the query's column names against an output's declared columns, once per run.

Names match without regard to case. Every later stage (encoders, the engine's SQL, invalid-row
samples) asks the binding where a column is instead of matching names again.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from connector.errors import ConfigError
from connector.masking import show_value

MAX_NAMES_LISTED = 20


def _listed(names: Sequence[str]) -> str:
    """Column names for a message: bounded, each and in number."""
    shown = ", ".join(show_value(n) for n in names[:MAX_NAMES_LISTED])
    more = len(names) - MAX_NAMES_LISTED
    return shown + (f" and {more} more" if more > 0 else "")


@dataclass(frozen=True)
class ColumnBinding:
    """The query's columns (in query order) and where each of the output's columns sits."""

    names: tuple[str, ...]
    index: Mapping[str, int]  # output column (lower case) -> position in the query's row
    types: Mapping[str, str]  # output column -> engine type, when the engine described them

    def present(self, column: str) -> bool:
        return column in self.index

    def name(self, column: str) -> str:
        """The query's own spelling of an output column."""
        return self.names[self.index[column]]

    def type_of(self, column: str) -> str | None:
        return self.types.get(column)

    def value(self, row: Sequence[Any], column: str) -> Any:
        """The raw value of `column` in a row the engine returned, or None if absent."""
        i = self.index.get(column)
        return None if i is None else row[i]


def bind_columns(names: Sequence[str], *, output: str, required: Iterable[str],
                 known: Iterable[str], types: Sequence[str] | None = None,
                 warn: Any = None) -> ColumnBinding:
    """Check the query's columns for an output; raise ConfigError for missing required or
    ambiguous columns, pass a warning for each column the output does not know."""
    lowered = [c.lower() for c in names]
    dupes = sorted({c for c in lowered if lowered.count(c) > 1})
    if dupes:
        raise ConfigError("the query returns these columns more than once (names are matched "
                          "without regard to case): " + _listed(dupes))
    missing = [c for c in required if c not in lowered]
    if missing:
        raise ConfigError(
            f"the query lacks required column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(missing)} for {output} "
            f"(it returns: {_listed(names) or 'none'})"
        )
    known = tuple(known)
    if warn is not None:
        for c in names:
            if c.lower() not in known:
                warn(f"column {show_value(c)!r} is not a {output} column and is ignored "
                     f"(known: {', '.join(known)})")
    index = {c: i for i, c in enumerate(lowered) if c in known}
    typed = {} if types is None else {c: types[i].upper() for c, i in index.items()}
    return ColumnBinding(tuple(names), index, typed)
