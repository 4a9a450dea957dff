"""The output mapping, as Treasure Data's Audience Studio defines it for an activation.

    {"all_columns": false,
     "columns": [
       {"source": "mail", "name": "email"},
       {"name": "deduplication_key", "string_builder": [
          {"type": "string", "value": "seg"}, {"type": "segment_id"},
          {"type": "string", "value": "-"}, {"source": "order_id"}]}],
     "metadata": {"segment_id": "42"}}

- `all_columns: true` ("Export All Columns") passes every query column through, in query
  order; `columns` entries then rename a column or add a built one. With `all_columns: false`
  only the listed columns reach the output.
- A column entry maps a `source` column to an output `name` (the name defaults to the source's),
  or builds a text value with `string_builder`: pieces of type `string` (a literal),
  `timestamp` (the time of the export, the same for every row of a run), `segment_id`,
  `segment_name`, `audience_id` (the segment's metadata), and `source` (a column's value; a NULL
  makes the whole built value NULL, so that validation, not concatenation, decides).

Parsing checks the mapping's own shape; `check` checks it against the query's columns. Every
problem is a ConfigError that names the entry, found before anything is sent.
"""
from __future__ import annotations

import datetime as dt
import json
import zoneinfo
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from connector.errors import ConfigError

METADATA_KEYS = ("segment_id", "segment_name", "audience_id")
PIECE_TYPES = ("string", "timestamp", "source") + METADATA_KEYS
DEFAULT_TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"  # ISO 8601 in UTC


@dataclass(frozen=True)
class Piece:
    type: str
    value: str | None = None  # string: the literal; source: the column
    format: str | None = None  # timestamp: strftime format
    timezone: str | None = None  # timestamp: IANA zone (default UTC)


@dataclass(frozen=True)
class MappedColumn:
    name: str  # the output column
    source: str | None = None  # the query column it is (None: built)
    pieces: tuple[Piece, ...] = ()  # string_builder

    @property
    def built(self) -> bool:
        return self.source is None


@dataclass(frozen=True)
class OutputMapping:
    """How query columns become output columns. The default passes every column as is."""

    all_columns: bool = True
    columns: tuple[MappedColumn, ...] = ()
    metadata: Mapping[str, str] = field(default_factory=dict)

    def is_identity(self) -> bool:
        return self.all_columns and not self.columns

    def needs_metadata(self) -> list[str]:
        return sorted({p.type for c in self.columns for p in c.pieces if p.type in METADATA_KEYS})


def _where(index: int) -> str:
    return f"output mapping: columns[{index}]"


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{what} must be a non-empty string")
    return value


def _piece(raw: Any, where: str) -> Piece:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: a string_builder piece must be an object")
    if "source" in raw and "type" not in raw:  # {"source": "order_id"}: a column's value
        raw = {"type": "source", **raw}
    kind = raw.get("type")
    if kind not in PIECE_TYPES:
        raise ConfigError(f"{where}: unknown piece type {kind!r} (known: {', '.join(PIECE_TYPES)})")
    allowed = {"string": {"type", "value"}, "source": {"type", "source"},
               "timestamp": {"type", "format", "timezone"}}.get(kind, {"type"})
    extra = sorted(set(raw) - allowed)
    if extra:
        raise ConfigError(f"{where}: a {kind} piece takes no {', '.join(map(repr, extra))}")
    if kind == "string":
        value = raw.get("value")
        if not isinstance(value, str):
            raise ConfigError(f"{where}: a string piece needs a text \"value\"")
        return Piece("string", value)
    if kind == "source":
        return Piece("source", _text(raw.get("source"), f"{where}: a source piece's \"source\""))
    if kind == "timestamp":
        fmt = raw.get("format", DEFAULT_TIMESTAMP_FORMAT)
        zone = raw.get("timezone", "UTC")
        _text(fmt, f"{where}: a timestamp piece's \"format\"")
        try:
            zoneinfo.ZoneInfo(_text(zone, f"{where}: a timestamp piece's \"timezone\""))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"{where}: unknown time zone {zone!r} (an IANA name such as "
                              "Asia/Tokyo)") from None
        return Piece("timestamp", format=fmt, timezone=zone)
    return Piece(kind)


def _column(raw: Any, index: int) -> MappedColumn:
    where = _where(index)
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be an object")
    extra = sorted(set(raw) - {"source", "name", "string_builder"})
    if extra:
        raise ConfigError(f"{where}: unknown key{'s' if len(extra) > 1 else ''} {', '.join(map(repr, extra))} (known: "
                          "source, name, string_builder)")
    if "string_builder" in raw:
        if "source" in raw:
            raise ConfigError(f"{where}: give either \"source\" or \"string_builder\", not both")
        name = _text(raw.get("name"), f"{where}: a built column's \"name\"")
        pieces = raw["string_builder"]
        if not isinstance(pieces, list) or not pieces:
            raise ConfigError(f"{where} ({name}): the string_builder is empty")
        return MappedColumn(name, None, tuple(_piece(p, f"{where} ({name})") for p in pieces))
    source = _text(raw.get("source"), f"{where}: \"source\" (or a \"string_builder\")")
    return MappedColumn(_text(raw.get("name", source), f"{where}: \"name\""), source)


def parse_metadata(raw: Any, where: str = "output mapping: metadata") -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be an object of {', '.join(METADATA_KEYS)}")
    out = {}
    for key, value in raw.items():
        if key not in METADATA_KEYS:
            raise ConfigError(f"{where}: unknown key {key!r} (known: {', '.join(METADATA_KEYS)})")
        if isinstance(value, bool) or not isinstance(value, (str, int)) or value == "":
            raise ConfigError(f"{where}: {key} must be a non-empty text or a whole number")
        out[key] = str(value)
    return out


def parse_mapping(raw: Any, metadata: Mapping[str, str] | None = None) -> OutputMapping:
    """The mapping block (a dict), with `metadata` (e.g. from --metadata) over its own."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError("output mapping: must be a JSON object")
    extra = sorted(set(raw) - {"all_columns", "columns", "metadata"})
    if extra:
        raise ConfigError(f"output mapping: unknown key{'s' if len(extra) > 1 else ''} {', '.join(map(repr, extra))} "
                          "(known: all_columns, columns, metadata)")
    all_columns = raw.get("all_columns", False if raw.get("columns") else True)
    if not isinstance(all_columns, bool):
        raise ConfigError("output mapping: all_columns must be true or false")
    columns = raw.get("columns", [])
    if not isinstance(columns, list):
        raise ConfigError("output mapping: columns must be a list")
    parsed = tuple(_column(c, i) for i, c in enumerate(columns))
    if not all_columns and not parsed:
        raise ConfigError("output mapping: with all_columns false, list the columns to export")
    merged = {**parse_metadata(raw.get("metadata")), **(metadata or {})}
    mapping = OutputMapping(all_columns, parsed, merged)
    missing = [k for k in mapping.needs_metadata() if k not in merged]
    if missing:
        raise ConfigError(f"output mapping: the string_builder uses {', '.join(missing)}, but no "
                          f"value was given (--metadata {missing[0]}=...)")
    return mapping


def read_mapping(text: str) -> Any:
    """`--output-mapping` text: JSON, or @path to a JSON file."""
    source = "--output-mapping"
    if text.startswith("@"):
        path = Path(text[1:])
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{source}: cannot read {path}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{source}: {path} is not UTF-8 text") from None
        source = str(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{source}: not valid JSON (line {exc.lineno}, column {exc.colno}: "
                          f"{exc.msg})") from None


def parse_metadata_args(items: Sequence[str]) -> dict[str, str]:
    """`--metadata KEY=VALUE` arguments."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--metadata: expected KEY=VALUE, got {item!r}")
        out[key.strip()] = value
    return parse_metadata(out, "--metadata")


def timestamp_text(piece: Piece, export_time: dt.datetime) -> str:
    zone = zoneinfo.ZoneInfo(piece.timezone or "UTC")
    return export_time.astimezone(zone).strftime(piece.format or DEFAULT_TIMESTAMP_FORMAT)


def mapping_to_dict(mapping: OutputMapping) -> dict[str, Any]:
    """The mapping as the JSON block it was parsed from (what a saved activation stores)."""
    def piece(p: Piece) -> dict[str, Any]:
        if p.type == "string":
            return {"type": "string", "value": p.value}
        if p.type == "source":
            return {"source": p.value}
        if p.type == "timestamp":
            return {"type": "timestamp", "format": p.format, "timezone": p.timezone}
        return {"type": p.type}

    columns = [{"name": c.name, "string_builder": [piece(p) for p in c.pieces]} if c.built
               else {"source": c.source, "name": c.name} for c in mapping.columns]
    return {"all_columns": mapping.all_columns, "columns": columns,
            "metadata": dict(mapping.metadata)}
