"""--result parsing and validation (result_url), the plugin's endpoint rule, and the CLI's exit 2.

Bounds are read from schemas/line_conversion.json, so a parameter added there is tested here;
Treasure Data's parameter table is checked against the schema separately.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import result_url
from connector import api, cli
from connector.errors import ConfigError
from connector.masking import Redactor
from connector.outputs import load_output
from connector.outputs.line_conversion import LineConversionOutput
from helpers import REPO, TAG, TOKEN

SCHEMA: dict[str, Any] = json.loads((REPO / "schemas" / "line_conversion.json").read_text("utf-8"))
PROPS: dict[str, Any] = SCHEMA["properties"]


def base(**kw: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {"type": "line_conversion", "access_token": TOKEN, "line_tag_id": TAG}
    cfg.update(kw)
    return cfg


def error_of(cfg: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as ei:
        result_url.validate(cfg, SCHEMA)
    return str(ei.value)


def build(cfg: dict[str, Any] | str) -> LineConversionOutput:
    text = cfg if isinstance(cfg, str) else json.dumps(cfg)
    return result_url.build_output(result_url.parse_result(text), Redactor())  # type: ignore[return-value]


# --------------------------------------------------------------------------- schema vs Treasure Data


def test_plugin_schema_is_the_file():
    assert LineConversionOutput.schema() == SCHEMA
    assert load_output("line_conversion") is LineConversionOutput


def test_schema_matches_treasure_datas_parameter_table():
    """Treasure Data's parameter table: default, min, max."""
    treasure_data = {
        "max_records": (1000, 1000, 100000),
        "max_retry": (8, 1, 10),
        "initial_retry_wait": (15, 1, 30),
        "max_retry_wait": (3600, 100, 7200),
        "connection_timeout": (300, 10, 600),
    }
    for name, (default, lo, hi) in treasure_data.items():
        p = PROPS[name]
        assert (p["default"], p["minimum"], p["maximum"]) == (default, lo, hi), name
    assert PROPS["ignore_invalid_records"]["default"] is True
    assert set(SCHEMA["required"]) == {"type", "access_token", "line_tag_id"}
    assert {"line_channel_id"} <= set(PROPS)
    assert PROPS["access_token"].get("x-secret") is True
    assert SCHEMA.get("additionalProperties") is False


# --------------------------------------------------------------------------- bounds

BOUNDED = sorted((k, p) for k, p in PROPS.items() if "minimum" in p or "maximum" in p)


def test_bounded_parameters_found():
    assert {k for k, _ in BOUNDED} == {"max_records", "max_retry", "initial_retry_wait",
                                       "max_retry_wait", "connection_timeout", "parallelism"}


@pytest.mark.parametrize("name, prop", BOUNDED, ids=[k for k, _ in BOUNDED])
def test_bounds_accepted(name, prop):
    for v in (prop["minimum"], prop["maximum"], prop["default"]):
        result_url.validate(base(**{name: v}), SCHEMA)
        plugin = build(base(**{name: v}))
        assert plugin.config[name] == v


@pytest.mark.parametrize("name, prop", BOUNDED, ids=[k for k, _ in BOUNDED])
def test_bounds_rejected(name, prop):
    lo, hi = prop["minimum"], prop["maximum"]
    for v in (lo - 1, hi + 1):
        msg = error_of(base(**{name: v}))
        assert name in msg
        assert f"from {lo} to {hi}" in msg
        with pytest.raises(ConfigError) as ei:
            build(base(**{name: v}))
        assert name in str(ei.value)


@pytest.mark.parametrize("name, prop", [(k, p) for k, p in BOUNDED if p["type"] == "number"],
                         ids=[k for k, p in BOUNDED if p["type"] == "number"])
def test_number_bounds_fractional(name, prop):
    lo, hi = prop["minimum"], prop["maximum"]
    result_url.validate(base(**{name: lo + 0.5}), SCHEMA)
    assert f"from {lo} to {hi}" in error_of(base(**{name: lo - 0.5}))
    assert f"from {lo} to {hi}" in error_of(base(**{name: hi + 0.5}))


@pytest.mark.parametrize("name", [k for k, p in BOUNDED if p["type"] == "integer"])
def test_integer_params_reject_fractions_and_strings(name):
    lo = PROPS[name]["minimum"]
    assert name in error_of(base(**{name: lo + 0.5}))
    msg = error_of(base(**{name: str(lo)}))
    assert name in msg and "integer" in msg


@pytest.mark.parametrize("name", [k for k, _ in BOUNDED])
def test_bounded_params_reject_bool_and_null(name):
    assert name in error_of(base(**{name: True}))
    assert name in error_of(base(**{name: None}))


def test_several_errors_reported_together():
    msg = error_of(base(max_retry=0, connection_timeout=601))
    assert "max_retry" in msg and "connection_timeout" in msg


# --------------------------------------------------------------------------- required / unknown


@pytest.mark.parametrize("name", ["access_token", "line_tag_id", "type"])
def test_required_missing(name):
    cfg = base()
    del cfg[name]
    msg = error_of(cfg)
    assert "missing required parameter" in msg and name in msg


@pytest.mark.parametrize("name", ["access_token", "line_tag_id"])
def test_required_missing_via_build(name):
    cfg = base()
    del cfg[name]
    with pytest.raises(ConfigError) as ei:
        build(cfg)
    assert name in str(ei.value)
    assert TOKEN not in str(ei.value)


def test_type_missing_or_unknown():
    cfg = base()
    del cfg["type"]
    with pytest.raises(ConfigError, match="type"):
        build(cfg)
    with pytest.raises(ConfigError, match="line_conversoin"):
        build(base(type="line_conversoin"))


@pytest.mark.parametrize("typo", ["emial", "max_record", "acess_token", "Line_Tag_Id"])
def test_unknown_key_named(typo):
    msg = error_of(base(**{typo: "x"}))
    assert "unknown parameter" in msg
    assert repr(typo) in msg
    assert "max_records" in msg  # the known parameters are listed


def test_unknown_key_value_not_echoed():
    msg = error_of(base(acess_token="sekrit-value-123"))
    assert "sekrit-value-123" not in msg


# --------------------------------------------------------------------------- types and patterns


@pytest.mark.parametrize("name, value", [
    ("ignore_invalid_records", "true"), ("test_flag", 1), ("access_token", 12345),
    ("line_tag_id", 5), ("line_channel_id", 1234567890), ("endpoint", None),
])
def test_wrong_type(name, value):
    msg = error_of(base(**{name: value}))
    assert name in msg
    assert PROPS[name]["type"] in msg


@pytest.mark.parametrize("name, value", [
    ("line_tag_id", "tag/../x"), ("line_tag_id", ""), ("line_tag_id", "a" * 65),
    ("line_channel_id", "12ab"), ("line_channel_id", ""), ("line_channel_id", "1" * 21),
    ("default_phone_region", "jp"), ("default_phone_region", "JPN"),
    ("endpoint", "ftp://example.com"), ("endpoint", "example.com"),
    ("access_token", ""),
])
def test_pattern_rejected(name, value):
    assert name in error_of(base(**{name: value}))


@pytest.mark.parametrize("name, value", [
    ("line_tag_id", TAG + "\n"),
    ("line_channel_id", "1234567890\n"),
    ("default_phone_region", "JP\n"),
], ids=["line_tag_id", "line_channel_id", "default_phone_region"])
def test_pattern_trailing_newline_rejected(name, value):
    """`$` in the schema patterns matches before a final newline in Python's re.search, so these
    values pass validation and end up in the request path or the X-Line-ChannelID header."""
    with pytest.raises(ConfigError) as ei:
        build(base(**{name: value}))
    assert name in str(ei.value)


@pytest.mark.parametrize("region", ["XX", "ZZ", "AA"])
def test_default_phone_region_must_be_a_known_region(region):
    """An unknown region passes the schema; every national number then fails row by row with
    'format' instead of one configuration error before the query runs."""
    with pytest.raises(ConfigError) as ei:
        build(base(default_phone_region=region))
    assert "default_phone_region" in str(ei.value)


@pytest.mark.parametrize("region", ["JP", "US", "TW", "TH"])
def test_default_phone_region_known_ok(region):
    assert build(base(default_phone_region=region)).config["default_phone_region"] == region


def test_access_token_error_does_not_echo_value():
    msg = error_of(base(access_token=""))
    assert "access_token" in msg
    msg = error_of(base(access_token=["tok-LIST-SECRET"]))
    assert "tok-LIST-SECRET" not in msg


# --------------------------------------------------------------------------- env expansion


def test_env_expansion():
    cfg = result_url.expand_env(base(access_token="${LINE_TOKEN}", line_tag_id="${TAG}",
                                     max_records=5000),
                                {"LINE_TOKEN": "from-env-token", "TAG": TAG})
    assert cfg["access_token"] == "from-env-token"
    assert cfg["line_tag_id"] == TAG
    assert cfg["max_records"] == 5000


def test_env_expansion_inside_string_and_not_recursive():
    cfg = result_url.expand_env({"endpoint": "http://127.0.0.1:${PORT}", "access_token": "${A}"},
                                {"PORT": "8080", "A": "${B}", "B": "nope"})
    assert cfg["endpoint"] == "http://127.0.0.1:8080"
    assert cfg["access_token"] == "${B}"


def test_env_expansion_uses_os_environ(monkeypatch):
    monkeypatch.setenv("CONNECTOR_TEST_TOKEN", "os-env-token")
    assert result_url.expand_env({"access_token": "${CONNECTOR_TEST_TOKEN}"}) == {
        "access_token": "os-env-token"}


def test_env_missing_names_variable_not_token():
    with pytest.raises(ConfigError) as ei:
        result_url.expand_env(base(line_tag_id="${MISSING_TAG_VAR}"), {"OTHER": "other-secret"})
    msg = str(ei.value)
    assert "MISSING_TAG_VAR" in msg
    assert "line_tag_id" in msg
    assert TOKEN not in msg and "other-secret" not in msg


def test_env_missing_for_token():
    with pytest.raises(ConfigError) as ei:
        result_url.expand_env({"access_token": "${NO_SUCH_LINE_TOKEN}"}, {})
    assert "NO_SUCH_LINE_TOKEN" in str(ei.value)


def test_env_set_but_empty_says_so(failing_query, no_source, capsys, monkeypatch):
    """An empty variable is not a token with an invalid value: the message says the variable
    is empty (and names it and the parameter)."""
    monkeypatch.setenv("CONNECTOR_TEST_EMPTY", "")
    rc = cli.main([str(failing_query), "--result", json.dumps(base(access_token="${CONNECTOR_TEST_EMPTY}"))])
    err = capsys.readouterr().err
    assert rc == 2
    assert "CONNECTOR_TEST_EMPTY" in err and "empty" in err and "access_token" in err
    assert "minLength" not in err


def test_every_missing_variable_reported_at_once(failing_query, no_source, capsys, monkeypatch):
    """Unset and empty variables, in the result and in the database URL, in one message: a user
    fixes them all in one go rather than one per run."""
    for name in ("CONNECTOR_T_A", "CONNECTOR_T_B", "CONNECTOR_T_C"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CONNECTOR_T_EMPTY", "")
    cfg = base(access_token="${CONNECTOR_T_A}", line_tag_id="${CONNECTOR_T_B}",
               line_channel_id="${CONNECTOR_T_EMPTY}")
    rc = cli.main([str(failing_query), "--result", json.dumps(cfg), "--database",
                   "trino://me:${CONNECTOR_T_C}@127.0.0.1:1/c"])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1
    for name in ("CONNECTOR_T_A", "CONNECTOR_T_B", "CONNECTOR_T_C", "CONNECTOR_T_EMPTY"):
        assert name in err
    assert "--database" in err and "line_channel_id" in err


def test_env_non_strings_untouched():
    cfg = {"max_retry": 3, "test_flag": True, "x": None}
    assert result_url.expand_env(cfg, {}) == cfg


# --------------------------------------------------------------------------- parse_result


def test_parse_inline_json():
    assert result_url.parse_result(json.dumps(base())) == base()


def test_parse_at_file(tmp_path):
    p = tmp_path / "result.json"
    p.write_text(json.dumps(base(max_retry=3)), encoding="utf-8")
    assert result_url.parse_result(f"@{p}") == base(max_retry=3)
    plugin = build(f"@{p}")
    assert plugin.config["max_retry"] == 3


def test_parse_at_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        result_url.parse_result(f"@{tmp_path / 'nope.json'}")


def test_parse_bad_json_inline_does_not_echo():
    text = '{"type": "line_conversion", "access_token": "' + TOKEN + '", "line_tag_id": '
    with pytest.raises(ConfigError) as ei:
        result_url.parse_result(text)
    msg = str(ei.value)
    assert "not valid JSON" in msg and "line 1" in msg
    assert TOKEN not in msg
    assert "line_conversion" not in msg


def test_parse_bad_json_file_does_not_echo(tmp_path):
    p = tmp_path / "bad.json"
    p.write_text('{\n  "access_token": "' + TOKEN + '",\n  "max_retry": 3,,\n}\n', encoding="utf-8")
    with pytest.raises(ConfigError) as ei:
        result_url.parse_result(f"@{p}")
    msg = str(ei.value)
    assert str(p) in msg and "line 3" in msg
    assert TOKEN not in msg


@pytest.mark.parametrize("text", ["[1]", '"x"', "3", "null"])
def test_parse_not_an_object(text):
    with pytest.raises(ConfigError, match="JSON object"):
        result_url.parse_result(text)


# --------------------------------------------------------------------------- defaults


def test_defaults_applied():
    cfg = result_url.apply_defaults(base(), SCHEMA)
    for name, prop in PROPS.items():
        if "default" in prop:
            assert cfg[name] == prop["default"], name
    assert cfg["endpoint"] == "https://conversion-api.tr.line.me"
    assert cfg["test_flag"] is False
    assert cfg["ignore_invalid_records"] is True
    assert "line_channel_id" not in cfg and "default_phone_region" not in cfg


def test_given_values_override_defaults():
    cfg = result_url.apply_defaults(base(max_records=5000, ignore_invalid_records=False), SCHEMA)
    assert cfg["max_records"] == 5000
    assert cfg["ignore_invalid_records"] is False
    assert cfg["max_retry"] == 8


def test_plugin_reads_defaults():
    plugin = build(base())
    assert plugin.batch_size == 1000
    assert plugin.ignore_invalid_records is True
    assert plugin.describe_destination() == f"https://conversion-api.tr.line.me/v1/{TAG}/events"
    assert TOKEN not in plugin.describe_destination()


def test_secret_keys():
    assert result_url.secret_keys(SCHEMA) == frozenset({"access_token"})


# --------------------------------------------------------------------------- endpoint


@pytest.mark.parametrize("endpoint", [
    "https://conversion-api.tr.line.me", "https://example.com:8443/base",
    "http://127.0.0.1", "http://127.0.0.1:8080", "http://localhost", "http://localhost:9000/x",
    "http://[::1]", "http://[::1]:8080", "http://LOCALHOST:1", "http://127.0.0.2:80",
])
def test_endpoint_allowed(endpoint):
    assert build(base(endpoint=endpoint)).config["endpoint"] == endpoint


@pytest.mark.parametrize("endpoint", [
    "http://conversion-api.tr.line.me", "http://example.com", "http://10.0.0.1:8080",
    "http://0.0.0.0:8080", "http://localhost.evil.example", "http://127.0.0.1.nip.io",
    "http://192.168.1.10", "http://[2001:db8::1]:8080",
])
def test_endpoint_plain_http_non_loopback_rejected(endpoint):
    with pytest.raises(ConfigError) as ei:
        build(base(endpoint=endpoint))
    assert "endpoint" in str(ei.value)
    assert "https" in str(ei.value)


@pytest.mark.parametrize("endpoint", ["https://", "http://", "https:///path"])
def test_endpoint_without_host(endpoint):
    with pytest.raises(ConfigError, match="endpoint"):
        build(base(endpoint=endpoint))


# --------------------------------------------------------------------------- CLI


@pytest.fixture
def failing_query(tmp_path) -> Path:
    """A query that fails if it is ever run."""
    p = tmp_path / "q.sql"
    p.write_text("SELECT * FROM this_table_does_not_exist_anywhere;\n", encoding="utf-8")
    return p


@pytest.fixture
def no_source(monkeypatch):
    """Any attempt to open the database during a config error fails the test."""
    def boom(*_a: Any, **_k: Any) -> None:
        raise AssertionError("the query source was opened despite a configuration error")

    monkeypatch.setattr(api, "Source", boom)


BAD_CONFIGS = {
    "max_records_low": json.dumps(base(max_records=999)),
    "max_retry_high": json.dumps(base(max_retry=11)),
    "connection_timeout_low": json.dumps(base(connection_timeout=9)),
    "unknown_key": json.dumps(base(emial="x")),
    "missing_tag": json.dumps({"type": "line_conversion", "access_token": TOKEN}),
    "bad_tag": json.dumps(base(line_tag_id="bad tag!")),
    "http_endpoint": json.dumps(base(endpoint="http://example.com")),
    "no_host_endpoint": json.dumps(base(endpoint="https://")),
    "bad_json": '{"type": "line_conversion", "access_token": "' + TOKEN + '",',
    "not_object": json.dumps([base()]),
    "unknown_type": json.dumps(base(type="line_conversoin")),
    "no_type": json.dumps({"access_token": TOKEN, "line_tag_id": TAG}),
    "missing_env": json.dumps(base(line_tag_id="${CONNECTOR_TEST_UNSET_VAR}")),
    "wrong_type": json.dumps(base(ignore_invalid_records="yes")),
    "typo_secret_key": json.dumps({"type": "line_conversion", "acess_token": TOKEN,
                                   "line_tag_id": TAG}),
    "bad_channel": json.dumps(base(line_channel_id="abc")),
}


@pytest.mark.parametrize("name", sorted(BAD_CONFIGS))
def test_cli_config_error_exit_2_before_query(name, failing_query, no_source, capsys, monkeypatch):
    monkeypatch.delenv("CONNECTOR_TEST_UNSET_VAR", raising=False)
    rc = cli.main([str(failing_query), "--result", BAD_CONFIGS[name], "--quiet"])
    captured = capsys.readouterr()
    assert rc == 2
    assert "connector: error:" in captured.err
    assert TOKEN not in captured.err
    assert TOKEN not in captured.out


def test_cli_token_from_env_never_printed(failing_query, no_source, capsys, monkeypatch):
    monkeypatch.setenv("CONNECTOR_TEST_TOKEN", TOKEN)
    cfg = base(access_token="${CONNECTOR_TEST_TOKEN}", max_records=1)
    rc = cli.main([str(failing_query), "--result", json.dumps(cfg)])
    err = capsys.readouterr().err
    assert rc == 2
    assert "max_records" in err
    assert TOKEN not in err


def test_cli_token_in_wrong_field_is_redacted(failing_query, no_source, capsys):
    """The token pasted into a pattern-checked field is echoed by the pattern message; the
    redactor must still hide it because it is also the access_token."""
    cfg = base(line_tag_id=TOKEN + "!")
    rc = cli.main([str(failing_query), "--result", json.dumps(cfg)])
    err = capsys.readouterr().err
    assert rc == 2
    assert TOKEN not in err


def test_cli_config_file_errors(tmp_path, failing_query, no_source, capsys):
    p = tmp_path / "r.json"
    p.write_text(json.dumps(base(max_retry_wait=99)), encoding="utf-8")
    assert cli.main([str(failing_query), "--result", f"@{p}"]) == 2
    err = capsys.readouterr().err
    assert "max_retry_wait" in err and "from 100 to 7200" in err and TOKEN not in err
    assert cli.main([str(failing_query), "--result", f"@{tmp_path / 'missing.json'}"]) == 2


def test_cli_missing_query_file(tmp_path, no_source, capsys):
    rc = cli.main([str(tmp_path / "nope.sql"), "--result", json.dumps(base())])
    assert rc == 2
    assert TOKEN not in capsys.readouterr().err


def test_cli_empty_query_file(tmp_path, no_source, capsys):
    q = tmp_path / "empty.sql"
    q.write_text("  ;\n", encoding="utf-8")
    assert cli.main([str(q), "--result", json.dumps(base())]) == 2


def test_cli_query_would_fail_if_run(failing_query, tmp_path, capsys):
    """Control: with a valid config the same query file does run, and fails with exit 1."""
    rc = cli.main([str(failing_query), "--result", json.dumps(base()), "--quiet",
                   "--dry-run", str(tmp_path / "out.jsonl")])
    captured = capsys.readouterr()
    assert rc == 1
    assert TOKEN not in captured.err + captured.out
