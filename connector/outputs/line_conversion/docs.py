"""The output's generated documentation: the column table, from the field table."""
from __future__ import annotations

from .fields import CUSTOM_COLUMN, CUSTOM_KEYS, CUSTOM_SECTION, FIELDS


def columns_markdown() -> str:
    """The column table of the README, from FIELDS and CUSTOM_KEYS."""
    rows = ["| Column | Type | Required | Hashed | Sent as | Validation | Description |",
            "|---|---|---|---|---|---|---|"]
    for f in FIELDS:
        rows.append(f"| `{f.column}` | {f.column_type} | {'yes' if f.required else 'no'} | "
                    f"{'yes, if raw' if f.hashed else 'no'} | `{f.path}` | {f.validation} | "
                    f"{f.description} |")
    keys = "; ".join(f"`{c.key}`: {c.validation}" for c in CUSTOM_KEYS)
    rows.append(f"| `{CUSTOM_COLUMN}` | JSON object (string, JSON, MAP, STRUCT or ROW) | no | no | "
                f"`{CUSTOM_SECTION}` | only these keys: {keys} | Custom data for standard events "
                "such as Purchase. |")
    return "\n".join(rows)
