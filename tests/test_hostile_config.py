"""Hostile output configurations, generated: every `--result` ends in exit 2 with one bounded line
that names the problem, or the export runs; every endpoint is refused at configuration time or
is one the delivery can use as it is.

The generated `--result` texts carry what Python's JSON parser accepts beyond JSON (NaN,
Infinity), numbers that overflow to infinity or exceed Python's digit limit, nesting deeper than
the parser's recursion limit, and values of hundreds of kilobytes. They run in-process through
the command line against the sandbox on loopback.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

import result_url
from connector.errors import ConfigError
from connector.masking import Redactor
from connector.outputs.line_conversion import wire
from helpers import TAG, TOKEN, gen_sql, result_config, run_main

SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "schemas" /
                     "line_conversion.json").read_text())
SCHEMA_KEYS = sorted(SCHEMA["properties"])
# The longest message a configuration error may print: several parameters may be wrong at once,
# but a value is never echoed whole.
MAX_MESSAGE = 2000
ROWS = 3


def assert_one_line_error(err: str, *secrets: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err[:3000]
    line = lines[0]
    assert line.startswith("connector: error: "), line[:500]
    assert len(line) <= MAX_MESSAGE, f"{len(line)} characters: {line[:300]}..."
    assert "Traceback" not in err
    for secret in (TOKEN, *secrets):
        assert secret not in line
    return line


# --------------------------------------------------------------------------- generated --result

def _json_token(value: Any) -> str:
    return json.dumps(value, allow_nan=True)


# Raw JSON text for one value: what Python's parser accepts, and what hurts it.
HOSTILE_TOKENS = st.one_of(
    st.sampled_from(["NaN", "-NaN", "Infinity", "-Infinity", "1e999", "-1e999", "1E400",
                     "0.1e-999", "[NaN]", '{"a": Infinity}']),
    st.integers(min_value=1, max_value=6000).map(lambda n: "9" * n),  # beyond 4300 digits
    st.integers(min_value=1, max_value=200_000).map(lambda d: "[" * d + "]" * d),
    st.integers(min_value=1, max_value=200_000).map(lambda d: '{"a":' * d + "1" + "}" * d),
    st.integers(min_value=1, max_value=400_000).map(lambda n: json.dumps("a" * n)),
    st.integers(min_value=1, max_value=300_000).map(lambda n: json.dumps(["x"] * (n // 4 + 1))),
)
PLAIN_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-2**70, max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=8,
)
VALUE_TOKENS = st.one_of(PLAIN_VALUES.map(_json_token), HOSTILE_TOKENS)
# Parameters a generated config may change: all but `endpoint` (an accepted endpoint would send
# to the outside world; endpoints are generated separately below, without sending).
MUTABLE_KEYS = [k for k in SCHEMA_KEYS if k != "endpoint"]
OTHER_KEYS = st.one_of(st.text(max_size=12),
                       st.integers(min_value=1, max_value=300_000).map(lambda n: "k" * n))


def valid_values(key: str) -> Any:
    """Values the schema allows for a parameter, boundaries included."""
    prop = SCHEMA["properties"].get(key, {})
    if "const" in prop:
        return st.just(prop["const"])
    kind = prop.get("type")
    lo, hi = prop.get("minimum"), prop.get("maximum")
    if kind == "integer":
        return st.integers(lo, hi)
    if kind == "number":
        return st.one_of(st.integers(lo, hi), st.floats(lo, hi))
    if kind == "boolean":
        return st.booleans()
    if key == "default_phone_region":
        return st.sampled_from(["JP", "US", "TH"])
    if "pattern" in prop:
        return st.from_regex(prop["pattern"].replace("$", r"\Z"), fullmatch=False)
    return st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=20)


@st.composite
def result_texts(draw: Any, endpoint: str) -> str:
    """A --result text: the valid base object with some parameters set to values the schema
    allows or replaced by raw tokens, or, now and then, a hostile token on its own."""
    if draw(st.integers(0, 9)) == 0:
        return draw(HOSTILE_TOKENS)
    base = result_config(None, endpoint=endpoint)
    tokens = {k: _json_token(v) for k, v in base.items()}
    for _ in range(draw(st.integers(1, 3))):
        # mostly the output's own parameters, now and then any key at all
        key = draw(st.sampled_from(MUTABLE_KEYS) if draw(st.integers(0, 4)) else OTHER_KEYS)
        if key in SCHEMA_KEYS and draw(st.booleans()):
            tokens[key] = _json_token(draw(valid_values(key)))
        else:
            tokens[key] = draw(VALUE_TOKENS)
    return "{" + ", ".join(f"{json.dumps(k)}: {v}" for k, v in tokens.items()) + "}"


@pytest.fixture(scope="module")
def query_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("hostile") / "q.sql"
    path.write_text(gen_sql(ROWS))
    return path


@settings(max_examples=max(10, settings.default.max_examples), suppress_health_check=[
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_generated_results_end_in_exit_2_or_run(data, sandbox_server, query_file, monkeypatch):
    monkeypatch.setenv("TEST_LINE_TOKEN", TOKEN)
    text = data.draw(result_texts(sandbox_server.url))
    # As a file: the command line's own limit on one argument is 128 KiB.
    path = query_file.parent / "result.json"
    path.write_text(text)
    before = sandbox_server.stats()["accepted"]
    rc, out, err = run_main([str(query_file), "--result", f"@{path}", "--quiet"])
    event(f"exit {rc}")
    if rc == 2:
        assert_one_line_error(err)
        assert sandbox_server.stats()["accepted"] == before, "sent despite a configuration error"
    else:
        # Accepted configuration: the export ran and delivered every row (any value that gets
        # this far must be one the delivery can use).
        assert rc == 0, err[-3000:]
        assert err == "" and out == ""


@pytest.mark.parametrize("token, words", [
    ("NaN", "NaN"), ("Infinity", "Infinity"), ("-Infinity", "Infinity"),
    ("1e999", "too large"), ("9" * 5000, "digits"),
])
@pytest.mark.parametrize("key", ["initial_retry_wait", "connection_timeout", "max_records"])
def test_non_finite_numbers_are_configuration_errors(key, token, words, query_file, tmp_path,
                                                     monkeypatch):
    """NaN and Infinity pass every range check (comparisons with NaN are false), and a dry run
    never uses the timeouts: they must be refused when the configuration is read."""
    monkeypatch.setenv("TEST_LINE_TOKEN", TOKEN)
    text = json.dumps(result_config(None))[:-1] + f', "{key}": {token}}}'
    rc, _, err = run_main([str(query_file), "--result", text, "--dry-run",
                           str(tmp_path / "out.jsonl")])
    assert rc == 2
    assert words in assert_one_line_error(err)
    assert not (tmp_path / "out.jsonl").exists()


def test_non_finite_numbers_from_python_are_configuration_errors():
    """The same through the API, where no JSON parser is involved."""
    for value in (float("nan"), float("inf"), float("-inf")):
        with pytest.raises(ConfigError, match="finite"):
            result_url.build_output(result_config(None, access_token="tok-12345",
                                                  connection_timeout=value), Redactor())


@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_deep_nesting_is_a_configuration_error(depth, query_file, tmp_path):
    path = tmp_path / "deep.json"
    path.write_text("[" * depth + "]" * depth)
    rc, _, err = run_main([str(query_file), "--result", f"@{path}"])
    assert rc == 2
    assert "nested" in assert_one_line_error(err)


@pytest.mark.parametrize("key, value", [
    ("line_tag_id", "a" * 300_000), ("z" * 300_000, 1), ("endpoint", "https://" + "h" * 300_000),
    ("default_phone_region", "X" * 300_000), ("max_records", "9" * 300_000),
])
def test_huge_values_are_not_echoed_whole(key, value, query_file, tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_LINE_TOKEN", TOKEN)
    path = tmp_path / "huge.json"
    path.write_text(json.dumps(result_config(None, **{key: value})))
    rc, _, err = run_main([str(query_file), "--result", f"@{path}", "--dry-run",
                           str(tmp_path / "out.jsonl")])
    assert rc == 2
    assert_one_line_error(err)


# --------------------------------------------------------------------------- generated endpoints

PASSWORDS = st.text(alphabet="ABCDEFGHJKMNPQRSTUVWXYZabcdefghjkmnpqrstuvwxyz23456789._~!$&'()*+,;=",
                    min_size=8, max_size=16)
HOSTS = st.one_of(
    st.sampled_from(["127.0.0.1", "localhost", "LOCALHOST", "[::1]", "127.8.9.10", "::1",
                     "conversion-api.tr.line.me", "example.com", "10.0.0.1", "[2001:db8::1]",
                     "0.0.0.0", "", "exa mple.com", "ex%41mple.com", "[::1", "h_st", "-x.com",
                     "a..b", "xn--bcher-kva.example"]),
    st.from_regex(r"[a-z0-9][a-z0-9.-]{0,20}", fullmatch=True),
    st.text(max_size=12),
)
PORTS = st.one_of(st.none(), st.integers(min_value=-5, max_value=70_000).map(str),
                  st.sampled_from(["", "abc", "80a", "+80", " 80", "0x50", "８０", "65535",
                                   "65536", "0", "00080"]),
                  st.text(max_size=6))
PATHS = st.one_of(st.none(), st.sampled_from(["/", "/base", "/base/", "//", "/a b", "/%zz",
                                               "/a/../b", "/ä", "/a;b", "/a\\b", "/@x", "/v1"]),
                  st.text(max_size=12).map(lambda t: "/" + t))


@st.composite
def endpoints(draw: Any) -> tuple[str, str | None]:
    """(endpoint, the password in it, if any)."""
    if draw(st.integers(0, 7)) == 0:
        return draw(st.text(max_size=40)), None
    scheme = draw(st.sampled_from(["https", "http", "HTTP", "Https", "ftp", "file", "", "http:",
                                   "javascript"]))
    password = None
    userinfo = ""
    kind = draw(st.integers(0, 4))
    if kind == 1:
        userinfo = "user@"
    elif kind == 2:
        password = draw(PASSWORDS)
        userinfo = f"user:{password}@"
    elif kind == 3:
        password = draw(PASSWORDS)
        userinfo = f":{password}@"
    host = draw(HOSTS)
    port = draw(PORTS)
    path = draw(PATHS) or ""
    query = draw(st.one_of(st.none(), st.text(max_size=8))) if draw(st.booleans()) else None
    fragment = draw(st.one_of(st.none(), st.text(max_size=8))) if draw(st.booleans()) else None
    url = f"{scheme}://{userinfo}{host}" + (f":{port}" if port is not None else "") + path
    if query is not None:
        url += "?" + query
    if fragment is not None:
        url += "#" + fragment
    return url, password


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@given(endpoints())
def test_generated_endpoints_are_refused_or_usable(generated):
    """An endpoint is refused when the configuration is read (a one-line message that never
    shows a password), or it is one the delivery sends to as it is: its own scheme, host, port
    and path prefix, no credentials, no query, no fragment."""
    endpoint, password = generated
    assume(password is None or endpoint.count(password) == 1)  # only in the userinfo
    raw = result_config(None, access_token="tok-Ab12345", endpoint=endpoint)
    try:
        plugin = result_url.build_output(raw, Redactor())
    except ConfigError as exc:
        message = str(exc)
        assert "\n" not in message and len(message) <= MAX_MESSAGE
        assert "endpoint" in message
        if password is not None:
            assert password not in message
        return
    parts = urlsplit(endpoint)
    assert parts.scheme in ("http", "https")
    assert parts.username is None and parts.password is None and "@" not in endpoint
    assert not parts.query and not parts.fragment and "?" not in endpoint and "#" not in endpoint
    assert parts.hostname
    if parts.scheme == "http":
        assert _is_loopback(parts.hostname)
    url = wire.events_url(plugin.config["endpoint"], TAG)
    request = httpx.Request("POST", url)  # what the delivery builds; must not raise
    assert request.url.raw_host.decode().lower() == parts.hostname
    default = {"http": 80, "https": 443}[parts.scheme]
    # parts.port raises ValueError for an invalid port, which must not have been accepted
    assert (request.url.port or default) == (parts.port or default)
    assert request.url.path.endswith(f"/v1/{TAG}/events")
    assert request.url.query == b""
    assert plugin.describe_destination() == url


@pytest.mark.parametrize("userinfo", ["user:pa55-Word-x@", ":pa55-Word-x@", "pa55-Word-x@"])
def test_credentials_in_the_endpoint_are_refused_and_never_shown(userinfo, query_file, tmp_path,
                                                                monkeypatch):
    monkeypatch.setenv("TEST_LINE_TOKEN", TOKEN)
    cfg = result_config(None, endpoint=f"http://{userinfo}127.0.0.1:9/x", max_retry=1)
    report = tmp_path / "r.json"
    rc, out, err = run_main([str(query_file), "--result", json.dumps(cfg),
                             "--report-file", str(report)])
    assert rc == 2
    line = assert_one_line_error(err, "pa55-Word-x")
    assert "credentials" in line or "user" in line
    assert "pa55-Word-x" not in out
    assert not report.exists() or "pa55-Word-x" not in report.read_text()


@pytest.mark.parametrize("endpoint, words", [
    ("http://127.0.0.1:abc", "port"), ("http://127.0.0.1:99999", "port"),
    ("http://127.0.0.1:0", "port"), ("https://example.com/base?x=1", "query"),
    ("https://example.com/base#frag", "fragment"), ("https://example.com/a%zz", "path"),
    ("https://example.com/a b", "spaces"), ("https://u:p@example.com", "credentials"),
])
def test_endpoint_parts_checked_when_the_configuration_is_read(endpoint, words):
    with pytest.raises(ConfigError) as ei:
        result_url.build_output(result_config(None, access_token="tok-Ab12345",
                                              endpoint=endpoint), Redactor())
    assert words in str(ei.value)


def test_endpoint_path_prefix_is_kept():
    plugin = result_url.build_output(result_config(
        None, access_token="tok-Ab12345", endpoint="https://gw.example.com:8443/line/"), Redactor())
    assert plugin.describe_destination() == f"https://gw.example.com:8443/line/v1/{TAG}/events"
