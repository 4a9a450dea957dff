"""The query's column names are bound once (connector/mapping/binding.py), and both ways of
reading rows, the engine building the events (pushdown) and Python encoding rows, see the same
names and end the same way: the same configuration error, or the same bodies and warnings.

Names are generated: the output's columns in any case, the same name twice in different cases,
names that only differ beyond ASCII, names the engine itself would give a renamed duplicate
(`email_1`), and names the pushdown's own SQL uses.
"""
from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector import CancelToken, ExportSpec, run_export
from connector.errors import ConfigError
from connector.outputs.line_conversion.encoders.pushdown import LEADING
from connector.outputs.line_conversion.fields import KNOWN_COLUMNS, REQUIRED_COLUMNS
from helpers import now_s, result_config

# A valid value for each of the output's columns (the same in every row but the key).
VALUES = {
    "deduplication_key": "'k-' || i", "event_type": "'conversion'", "event_name": "'Purchase'",
    "source_type": "'web'", "event_timestamp": f"{now_s() - 60}", "email": "'a@example.com'",
    "phone": "'+818012345678'", "line_uid": "NULL", "click_id": "'c-1'",
    "browser_id": "'0b5c6a3e-2f4d-4c1a-9e7b-5d8f1a2b3c4d'", "ifa": "NULL",
    "external_id": "'u-' || i", "url": "'https://x.example/'", "referrer": "NULL",
    "title": "'T'", "user_agent": "'UA'", "ip_address": "'10.0.0.1'",
    "custom_data": """'{"value": 1}'""",
}
assert set(VALUES) == set(KNOWN_COLUMNS)


def _cases(name: str) -> Any:
    """`name` in a case drawn per character."""
    return st.lists(st.booleans(), min_size=len(name), max_size=len(name)).map(
        lambda flags: "".join(c.upper() if f else c for c, f in zip(name, flags)))


NAMES = st.one_of(
    st.sampled_from(KNOWN_COLUMNS).flatmap(_cases),
    st.sampled_from(KNOWN_COLUMNS).map(lambda c: c + "_1"),
    st.sampled_from([*LEADING, "connector_ok", "connector_s0", "connector_source",
                     "connector_text_0", "ＥＭＡＩＬ", "emaİl", "e\u0301mail", "EMAİL", "Email ",
                     " email", "ß", "SS", "ǅ", "ǆ", "Ǆ", "x", "X"]),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
            min_size=1, max_size=10),
)


@st.composite
def column_sets(draw: Any) -> list[str]:
    """Query column names: usually the required ones (in any case) plus others."""
    names = [draw(_cases(c)) for c in REQUIRED_COLUMNS if draw(st.integers(0, 9))]
    names += draw(st.lists(NAMES, max_size=6))
    return draw(st.permutations(names))


def _query(names: list[str]) -> str:
    def value(name: str) -> str:
        return VALUES.get(name.lower(), "'x'")

    cols = ", ".join(f'{value(n)} AS "{n.replace(chr(34), chr(34) * 2)}"' for n in names)
    return f"SELECT {cols} FROM range(1, 4) t(i)"


_runs = itertools.count()


def _outcome(sql: str, pushdown: bool, folder: Path) -> tuple[Any, ...]:
    out = folder / f"bodies-{next(_runs)}.jsonl"
    spec = ExportSpec(query=sql, output=result_config(None, access_token="tok-12345",
                                                      line_channel_id="123"),
                      dry_run_path=str(out), pushdown=pushdown)
    try:
        report = run_export(spec, CancelToken())
    except ConfigError as exc:
        return ("config error", str(exc))
    bodies = out.read_bytes() if out.exists() else b""
    return (report.status, report.reason, report.error, report.warnings, report.events_sent,
            report.invalid_records, bodies)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("column-names")


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(names=column_sets())
def test_both_paths_bind_generated_column_names_the_same_way(names, folder):
    sql = _query(names)
    python = _outcome(sql, False, folder)
    pushdown = _outcome(sql, True, folder)
    assert pushdown == python
    lowered = [n.lower() for n in names]
    if len(set(lowered)) < len(lowered):  # a name twice, ignoring case: refused, on both paths
        assert python[1] == "config_error" and "more than once" in python[2]


@pytest.mark.parametrize("pushdown", [True, False])
def test_case_duplicate_columns_are_refused_on_both_paths(pushdown, folder):
    sql = _query(["deduplication_key", "event_type", "source_type", "event_timestamp", "email",
                  "EMAIL"])
    status, reason, error, warnings, *_ = _outcome(sql, pushdown, folder)
    assert (status, reason) == ("error", "config_error")
    assert "email" in error and "more than once" in error
    assert not any("EMAIL_1" in w for w in warnings)
