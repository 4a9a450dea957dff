"""`connector docs`: documentation generated from the declarations: each output's parameter
schema and the sections it generates (a column table, say).

The README's tables sit between markers and are rewritten by `connector docs --write README.md`;
a test fails when they drift from the code.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

from connector.masking import show_value
from connector.outputs import available_outputs


def _range(prop: Mapping[str, Any]) -> str:
    lo, hi = prop.get("minimum"), prop.get("maximum")
    if lo is None and hi is None:
        return ""
    return f"{lo if lo is not None else ''}..{hi if hi is not None else ''}"


def value_text(value: Any) -> str:
    """A parameter value as it is written in --result: JSON (`true`, `1000`), a string bare."""
    return value if isinstance(value, str) else json.dumps(value)


def _default(prop: Mapping[str, Any]) -> str:
    if "const" in prop:
        return f"`{value_text(prop['const'])}`"
    if "default" not in prop:
        return ""
    return f"`{value_text(prop['default'])}`"


def parameters_markdown(schema: Mapping[str, Any]) -> str:
    required = set(schema.get("required", ()))
    rows = ["| Parameter | Required | Default | Range | Description |", "|---|---|---|---|---|"]
    for name, prop in schema.get("properties", {}).items():
        rows.append(f"| `{name}` | {'yes' if name in required else 'no'} | {_default(prop)} | "
                    f"{_range(prop)} | {prop.get('description', '')} |")
    return "\n".join(rows)


def parameters_text(schema: Mapping[str, Any]) -> str:
    required = set(schema.get("required", ()))
    lines = []
    for name, prop in schema.get("properties", {}).items():
        bits = ["required" if name in required else "optional"]
        if "default" in prop:
            bits.append(f"default {value_text(prop['default'])}")
        if _range(prop):
            bits.append(f"range {_range(prop)}")
        lines.append(f"  {name:<24} ({', '.join(bits)}) {prop.get('description', '')}")
    return "\n".join(lines)


def generated_sections() -> dict[str, str]:
    from connector.scheduler.dashboard import metrics_markdown
    from connector.scheduler.notify import fields_markdown, targets_markdown

    from .scheduler import options_markdown

    out = {}
    for name, cls in sorted(available_outputs().items()):
        out[f"{name}:parameters"] = parameters_markdown(cls.schema())
        for section, body in cls.docs_sections().items():
            out[f"{name}:{section}"] = body
    out.update({"scheduler:options": options_markdown(),
                "scheduler:notify-targets": targets_markdown(),
                "scheduler:notify-fields": fields_markdown(),
                "scheduler:metrics": metrics_markdown()})
    return out


def _marker(key: str) -> re.Pattern[str]:
    return re.compile(rf"(<!-- BEGIN generated {re.escape(key)} -->\n)(.*?)(<!-- END generated -->)",
                      re.S)


def render_into(text: str) -> str:
    for key, body in generated_sections().items():
        text = _marker(key).sub(lambda m, b=body: m.group(1) + b + "\n" + m.group(3), text)
    return text


def main(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(prog="connector docs",
                                description="Print the generated parameter and column tables, or "
                                            "rewrite them in place in a Markdown file.")
    p.add_argument("--write", metavar="FILE", help="rewrite the marked sections of FILE")
    args = p.parse_args(argv)
    if args.write:
        path = Path(args.write)
        try:
            path.write_text(render_into(path.read_text(encoding="utf-8")), encoding="utf-8")
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            reason = getattr(exc, "strerror", None) or "not UTF-8 text"
            print(f"connector docs: error: cannot rewrite {show_value(args.write, 256)}: {reason}",
                  file=sys.stderr)
            return 2
        return 0
    for key, body in generated_sections().items():
        print(f"<!-- BEGIN generated {key} -->\n{body}\n<!-- END generated -->\n")
    return 0
