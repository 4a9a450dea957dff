"""How counts read in messages: `1 event`, `2 events`, with thousands separators."""
from __future__ import annotations


def plural(count: int, noun: str, plural_form: str | None = None) -> str:
    """`count noun` with the noun in the plural unless count is 1 (`1 retry`, `3 retries`)."""
    if count == 1:
        return f"1 {noun}"
    if plural_form is None:
        plural_form = noun[:-1] + "ies" if noun.endswith("y") and noun[-2:-1] not in "aeiou" \
            else noun + "s"
    return f"{count:,} {plural_form}"
