"""The per-run plan every encoder reads: which row position feeds which field, and how.

Built once per run from the column binding and the field table, so that the per-row work has no
name look-ups and no rule is interpreted twice.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from ..fields import CUSTOM_COLUMN, FIELDS, SECTIONS, TIMESTAMP, Field, timestamp_seconds, to_text
from ..hashing import reference_hasher


@dataclass(frozen=True)
class EncodingOptions:
    channel_id_present: bool  # line_channel_id is set: events may carry line_uid
    test_flag: bool  # mark every event as a LINE test event
    default_phone_region: str | None  # read national phone numbers in this region


@dataclass(frozen=True)
class PlanItem:
    index: int  # position in the row
    field: Field
    slot: int  # position of the field's section in fields.SECTIONS
    normalise: Callable[[Any], Any]  # raw value -> wire value (the reference; raises FieldError)


@dataclass(frozen=True)
class FieldPlan:
    items: tuple[PlanItem, ...]
    custom_index: int | None
    options: EncodingOptions


def normaliser(field: Field, default_phone_region: str | None) -> Callable[[Any], Any]:
    """The reference normaliser of a field, from its declared hashing and value kinds."""
    if field.hashing is not None:
        return reference_hasher(field.hashing, default_phone_region)
    if field.value == TIMESTAMP:
        return timestamp_seconds
    return to_text(field.column)


def build_plan(columns: Mapping[str, int], options: EncodingOptions) -> FieldPlan:
    """`columns`: output column (lower case) -> position in the row (ColumnBinding.index)."""
    items = tuple(
        PlanItem(columns[f.column], f, SECTIONS.index(f.section),
                 normaliser(f, options.default_phone_region))
        for f in FIELDS if f.column in columns)
    return FieldPlan(items, columns.get(CUSTOM_COLUMN), options)
