"""Generated documentation covers every parameter and every column (connector/cli/docs.py)."""
from __future__ import annotations

from connector.cli import docs
from connector.outputs.line_conversion import LineConversionOutput
from connector.outputs.line_conversion.fields import CUSTOM_COLUMN, CUSTOM_KEYS, FIELDS


def sections() -> dict[str, str]:
    return docs.generated_sections()


def test_sections_exist():
    s = sections()
    assert "line_conversion:parameters" in s
    assert "line_conversion:columns" in s


def test_every_schema_parameter_documented():
    schema = LineConversionOutput.schema()
    table = sections()["line_conversion:parameters"]
    rows = {line.split("|")[1].strip(): line for line in table.splitlines()[2:]}
    for name, prop in schema["properties"].items():
        row = rows[f"`{name}`"]
        if "minimum" in prop:
            assert f"{prop['minimum']}..{prop['maximum']}" in row, name
        if "default" in prop and not isinstance(prop["default"], bool):
            assert f"`{prop['default']}`" in row, name
        assert ("| yes |" in row) == (name in schema["required"]), name
    assert len(rows) == len(schema["properties"])


def test_every_column_documented():
    table = sections()["line_conversion:columns"]
    rows = {line.split("|")[1].strip(): line for line in table.splitlines()[2:]}
    for f in FIELDS:
        row = rows[f"`{f.column}`"]
        assert f"`{f.path}`" in row
    assert f"`{CUSTOM_COLUMN}`" in rows
    for c in CUSTOM_KEYS:
        assert f"`{c.key}`" in rows[f"`{CUSTOM_COLUMN}`"]
    assert len(rows) == len(FIELDS) + 1


def test_required_and_hashed_flags_in_columns():
    table = sections()["line_conversion:columns"]
    for f in FIELDS:
        line = next(l for l in table.splitlines() if l.startswith(f"| `{f.column}` |"))
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[2] == ("yes" if f.required else "no"), f.column
        assert cells[3].startswith("yes") == f.hashed, f.column


def test_parameters_text_lists_everything():
    schema = LineConversionOutput.schema()
    text = docs.parameters_text(schema)
    for name in schema["properties"]:
        assert name in text


def test_outputs_command_prints_json_values(capsys):
    """`connector outputs` writes defaults as they are written in --result: true, not True."""
    from connector.cli import outputs

    assert outputs.main([]) == 0
    text = capsys.readouterr().out
    assert "default true" in text and "default false" in text
    assert "True" not in text and "False" not in text
    assert "default https://conversion-api.tr.line.me" in text


def test_render_into_replaces_marked_sections():
    body = ("intro\n<!-- BEGIN generated line_conversion:columns -->\nstale\n<!-- END generated -->\n"
            "outro\n")
    out = docs.render_into(body)
    assert "stale" not in out
    assert sections()["line_conversion:columns"] in out
    assert out.startswith("intro\n") and out.endswith("outro\n")
