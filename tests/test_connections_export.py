"""Exports through saved connections: `--result-connection`, `--result-settings`, `--result NAME`,
every kind of secret reference, the merge order, every error message, and that a secret never
shows, end to end: the real CLI, real SQL on DuckDB, and the LINE sandbox over HTTP bound to the
test's token (an event stored there proves the token was resolved right).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import result_url
from connector import ConfigError, ExportObserver, ExportSpec, run_export
from connector.connections import Connection, ConnectionStore, Reference, SecretLookup, SecretStore
from connector.masking import Redactor
from connector.outputs.line_conversion.sandbox import run_sandbox
from helpers import (REPO, TAG, TOKEN, blob, cli_env, gen_sql, no_traceback, result_config,
                     run_cli, run_command, stored_keys)

SCHEMA = json.loads((REPO / "schemas" / "line_conversion.json").read_text("utf-8"))
PROPS = SCHEMA["properties"]


@pytest.fixture(scope="module")
def bound_server():
    """A sandbox that accepts TAG only with TOKEN: 401 for any other token."""
    with run_sandbox(tags={TAG: TOKEN}) as sb:
        yield sb


@pytest.fixture
def bound(bound_server):
    bound_server.reset()
    bound_server.clear_faults()
    return bound_server


def save(tmp_path: Path, name: str, *args: str, type_name: str = "line_conversion") -> None:
    run = run_command(tmp_path, "connections", "add", name, "--type", type_name, *args)
    assert run.returncode == 0, run.stderr


def save_line(tmp_path: Path, sandbox: Any, name: str = "line", *args: str,
              token: str = "access_token=env:LINE_TOKEN") -> None:
    save(tmp_path, name, "--set", f"line_tag_id={TAG}", "--set", f"endpoint={sandbox.url}",
         "--set", "initial_retry_wait=1", "--secret", token, *args)


def batch_sizes(sandbox: Any) -> list[int]:
    """The accepted requests' sizes, largest first (several requests may be in flight, so they
    arrive in any order)."""
    return sorted((r["events"] for r in sandbox.requests() if r["status"] == 202), reverse=True)


# --------------------------------------------------------------------------- it works


@pytest.mark.parametrize("how", [["--result-connection", "line"], ["--result", "line"]])
def test_export_through_a_saved_connection(bound, tmp_path, how):
    """The token lives in the environment; the connection names it. Every event reaches the
    sandbox, which accepts only TAG with TOKEN. The token is in no output and no report."""
    save_line(tmp_path, bound)
    run = run_cli(tmp_path, gen_sql(5), None, *how, env={"LINE_TOKEN": TOKEN})
    assert run.returncode == 0, run.stderr
    assert run.report["events_sent"] == 5
    assert stored_keys(bound) == [f"k-{i}" for i in range(1, 6)]
    run.assert_no_secret()


def _secret_file(tmp_path: Path, content: str) -> Path:
    path = tmp_path / "line-token"
    path.write_text(content)
    path.chmod(0o600)
    return path


@pytest.mark.parametrize("kind", ["env", "file", "file-newline", "store", "store-in-settings",
                                  "env-secret", "env-secret-lower", "env-in-settings"])
def test_every_way_of_giving_the_token(bound, tmp_path, kind):
    """Each source of the token, resolved at run time: an environment variable, a file (one
    trailing newline dropped), the secrets store (`{secret = ...}` in the connection or
    `${secret:KEY}` in the settings), CONNECTOR_SECRET_<KEY> in either case, `${NAME}` in the
    settings."""
    env: dict[str, str] = {}
    settings_: dict[str, Any] | None = None
    if kind == "env":
        token, env = "access_token=env:MY_TOKEN", {"MY_TOKEN": TOKEN}
    elif kind.startswith("file"):
        path = _secret_file(tmp_path, TOKEN + ("\n" if kind == "file-newline" else ""))
        token = f"access_token=file:{path}"
    elif kind == "store":
        assert run_command(tmp_path, "secrets", "set", "line.token", input=TOKEN).returncode == 0
        token = "access_token=secret:line.token"
    elif kind == "store-in-settings":
        assert run_command(tmp_path, "secrets", "set", "line.token", input=TOKEN).returncode == 0
        token, settings_ = "access_token=env:UNSET", {"access_token": "${secret:line.token}"}
    elif kind == "env-secret":
        token, env = "access_token=secret:line.token", {"CONNECTOR_SECRET_LINE_TOKEN": TOKEN}
    elif kind == "env-secret-lower":
        token, env = "access_token=secret:line-token", {"CONNECTOR_SECRET_line_token": TOKEN}
    else:
        token, settings_ = "access_token=env:UNSET", {"access_token": "${TEST_LINE_TOKEN}"}
    save_line(tmp_path, bound, token=token)
    extra = ["--result-settings", json.dumps(settings_)] if settings_ else []
    run = run_cli(tmp_path, gen_sql(3), None, "--result-connection", "line", *extra, env=env)
    assert run.returncode == 0, run.stderr
    assert stored_keys(bound) == ["k-1", "k-2", "k-3"]
    run.assert_no_secret()


def test_the_environment_wins_over_the_secrets_store(bound, tmp_path):
    """The store holds a stale token (401 if used); CONNECTOR_SECRET_LINE_TOKEN holds the right
    one and is used."""
    assert run_command(tmp_path, "secrets", "set", "line.token",
                       input="stale-token-123").returncode == 0
    save_line(tmp_path, bound, token="access_token=secret:line.token")
    run = run_cli(tmp_path, gen_sql(2), None, "--result", "line",
                  env={"CONNECTOR_SECRET_LINE_TOKEN": TOKEN})
    assert run.returncode == 0, run.stderr
    assert len(stored_keys(bound)) == 2
    stale = run_cli(tmp_path, gen_sql(2), None, "--result", "line")
    assert stale.returncode == 1  # the store's token: the sandbox refuses it
    assert "stale-token-123" not in blob(stale)


# --------------------------------------------------------------------------- merge order


def test_merge_order_defaults_connection_settings(bound, tmp_path):
    """schema defaults < connection < settings, seen in what the sandbox received: batch sizes
    (max_records), the test flag and the channel header."""
    save_line(tmp_path, bound, "line", "--set", "max_records=2000", "--set", "test_flag=true",
              "--set", "line_channel_id=1234567890")
    save_line(tmp_path, bound, "bare")
    sql = gen_sql(2500)

    def export(*args: str) -> tuple[list[int], set[bool], set[bool]]:
        bound.reset()
        run = run_cli(tmp_path, sql, None, *args, env={"LINE_TOKEN": TOKEN})
        assert run.returncode == 0, run.stderr
        flags = {e["event"]["event"].get("test_flag", False) for e in bound.events(TAG)}
        channel = {r["channel_id"] for r in bound.requests()}
        return batch_sizes(bound), flags, channel

    # the connection over the defaults
    assert export("--result-connection", "line") == ([2000, 500], {True}, {True})
    # the settings over the connection
    assert export("--result-connection", "line", "--result-settings",
                  '{"max_records": 1000, "test_flag": false}') == ([1000, 1000, 500], {False},
                                                                    {True})
    # the defaults alone (max_records 1000, test_flag false, no channel)
    assert export("--result", "bare") == ([1000, 1000, 500], {False}, {False})
    # settings from a file, type repeated (allowed: it is the same)
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"type": "line_conversion", "max_records": 2500}))
    assert export("--result-connection", "bare", "--result-settings", f"@{path}")[0] == [2500]


def test_a_reference_replaced_by_a_setting_is_never_read(bound, tmp_path):
    """References are read after the merge: the connection's file is missing and its variable
    unset, but the settings replace both parameters, so the export runs."""
    save_line(tmp_path, bound, token=f"access_token=file:{tmp_path / 'missing'}")
    run = run_cli(tmp_path, gen_sql(1), None, "--result-connection", "line",
                  "--result-settings", json.dumps({"access_token": "${TEST_LINE_TOKEN}"}))
    assert run.returncode == 0, run.stderr


literal_values = {
    "max_records": st.integers(1000, 100000), "max_retry": st.integers(1, 10),
    "initial_retry_wait": st.integers(1, 30), "max_retry_wait": st.integers(100, 7200),
    "connection_timeout": st.integers(10, 600), "ignore_invalid_records": st.booleans(),
    "test_flag": st.booleans(), "line_channel_id": st.from_regex(r"[0-9]{1,20}", fullmatch=True),
    "line_tag_id": st.from_regex(r"[0-9A-Za-z_-]{1,64}", fullmatch=True),
    "default_phone_region": st.sampled_from(["JP", "TW", "TH"]),
}
layers = st.fixed_dictionaries({}, optional=literal_values)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(connection=layers, settings_=layers, repeat_type=st.booleans())
def test_any_layers_merge_in_order(tmp_path_factory, connection, settings_, repeat_type):
    """For any parameters in the connection and any in the settings, the configuration the
    output gets is the schema's defaults, then the connection, then the settings; the type is
    the connection's."""
    store = ConnectionStore(tmp_path_factory.mktemp("home"))
    store.save(Connection("c", "line_conversion",
                          {"access_token": Reference("env", "T"), **connection}))
    given_settings = {**settings_, **({"type": "line_conversion"} if repeat_type else {})}
    def resolve() -> dict[str, Any]:
        return result_url.resolve_config(
            given_settings, Redactor(), connection="c", store=store, env={"T": TOKEN},
            secrets=SecretLookup(SecretStore(tmp_path_factory.mktemp("s")), env={}))[1]

    defaults = {k: p["default"] for k, p in PROPS.items() if "default" in p}
    expected = {**defaults, "type": "line_conversion", "access_token": TOKEN, **connection,
                **settings_}
    if "line_tag_id" in expected:
        assert resolve() == expected
    else:  # required, and given by neither layer
        with pytest.raises(ConfigError, match="missing required parameter 'line_tag_id'"):
            resolve()


# --------------------------------------------------------------------------- every error


def _connections_file(tmp_path: Path, body: str) -> None:
    home = tmp_path / "config-home"
    home.mkdir(mode=0o700, exist_ok=True)
    (home / "connections.toml").write_text(textwrap.dedent(body))
    (home / "connections.toml").chmod(0o600)


ERRORS = [
    (["--result-settings", "{}"], "result_settings is valid only if result_connection is set"),
    (["--result", "line", "--result-settings", '{"max_records": 2000}'],
     "result_settings is valid only if result_connection is set"),
    (["--result", json.dumps(result_config()), "--result-connection", "line"],
     "--result and --result-connection cannot be used together"),
    ([], "one of --result or --result-connection is required"),
    (["--result-connection", "nope"], "no connection named 'nope' (saved: line)"),
    (["--result", "nope"], "no connection named 'nope' (saved: line)"),
    (["--result-connection", "line", "--result-settings", '{"type": "meta_capi"}'],
     "result settings: \"type\" cannot change the output type of connection 'line' "
     "(line_conversion)"),
    (["--result-connection", "line", "--result-settings", '{"foo": 1}'],
     "invalid configuration of connection 'line': unknown parameter 'foo' (from result "
     "settings)"),
    (["--result-connection", "line", "--result-settings", '{"max_records": 10}'],
     "invalid configuration of connection 'line': max_records (from result settings): must be "
     "from 1000 to 100000 (got 10)"),
    (["--result-connection", "line", "--result-settings", '{"test_flag": "yes"}'],
     "invalid configuration of connection 'line': test_flag (from result settings): must be of "
     "type boolean"),
    (["--result-connection", "line", "--result-settings", '{"max_records": '],
     "--result-settings: not valid JSON (line 1"),
    (["--result-connection", "line", "--result-settings", "[1]"],
     "--result-settings: must be a JSON object"),
    (["--result-connection", "line", "--result-settings", "@missing.json"],
     "--result-settings: cannot read missing.json"),
    (["--result-connection", "line", "--result-settings", '{"endpoint": "${NO_SUCH_VAR}"}'],
     "endpoint (from result settings): environment variable NO_SUCH_VAR is not set"),
    (["--result-connection", "line", "--result-settings",
      '{"access_token": "${secret:no.such}"}'],
     "access_token (from result settings): secret 'no.such' is not set (connector secrets set "
     "no.such, or the environment variable CONNECTOR_SECRET_NO_SUCH)"),
    (["--result-connection", "line", "--result-settings",
      '{"access_token": "${secret:bad key}"}'],
     "access_token (from result settings): not a valid secret key"),
    (["--result-connection", TOKEN + " "], "not a valid connection name"),
]


@pytest.mark.parametrize("args,message", ERRORS, ids=[m[:40] for _, m in ERRORS])
def test_usage_and_settings_errors(bound, tmp_path, args, message):
    """Each mistake exits 2 with one line that says what is wrong, before anything is sent;
    no traceback and no token."""
    save_line(tmp_path, bound)
    run = run_cli(tmp_path, gen_sql(1), None, *args, env={"LINE_TOKEN": TOKEN})
    assert run.returncode == 2, run.stderr
    assert f"connector: error: {message}" in run.stderr
    assert len(run.stderr.splitlines()) == 1, run.stderr
    assert bound.requests() == []
    no_traceback(run)
    run.assert_no_secret()


CONNECTION_ERRORS = [
    ("access_token = {env = \"NOT_SET_HERE\"}",
     "access_token (from connection 'line'): environment variable NOT_SET_HERE is not set"),
    ("access_token = {secret = \"line.token\"}",
     "access_token (from connection 'line'): secret 'line.token' is not set (connector secrets "
     "set line.token, or the environment variable CONNECTOR_SECRET_LINE_TOKEN)"),
    ("access_token = {file = \"/nonexistent/token\"}",
     "access_token (from connection 'line'): cannot read secret file /nonexistent/token: No such "
     "file or directory"),
    ("access_token = {file = \"EMPTY\"}", "access_token (from connection 'line'): secret file "),
    ("access_token = \"${TEST_LINE_TOKEN}\"\nmax_records = 5",
     "invalid configuration of connection 'line': max_records (from connection 'line'): must be "
     "from 1000 to 100000 (got 5)"),
    ("access_token = \"${TEST_LINE_TOKEN}\"\nfoo = 1",
     "invalid configuration of connection 'line': unknown parameter 'foo' (from connection "
     "'line') (known: access_token,"),
]


@pytest.mark.parametrize("line,message", CONNECTION_ERRORS,
                         ids=[m[:40] for _, m in CONNECTION_ERRORS])
def test_connection_errors(bound, tmp_path, line, message):
    """A connection (written by hand, or whose reference broke since it was saved): exit 2, one
    line naming the connection, the parameter and the reference; nothing sent."""
    empty = tmp_path / "empty-token"
    empty.write_text("\n")
    _connections_file(tmp_path, f"""\
        [connections.line]
        type = "line_conversion"
        line_tag_id = "{TAG}"
        endpoint = "{bound.url}"
        {line.replace('EMPTY', str(empty))}
        """)
    run = run_cli(tmp_path, gen_sql(1), None, "--result-connection", "line")
    assert run.returncode == 2, run.stderr
    assert f"connector: error: {message}" in run.stderr
    if "EMPTY" in line:
        assert "is empty" in run.stderr
    assert bound.requests() == []
    no_traceback(run)


def test_a_connection_of_an_output_that_is_not_installed(tmp_path):
    """A connection saved for an output type that is not installed (here, one of another
    platform): `list` marks it, an export exits 2 naming the connection and the type."""
    _connections_file(tmp_path, """\
        [connections.meta]
        type = "meta_capi"
        pixel_id = "123"
        access_token = {env = "META_TOKEN"}
        """)
    listed = run_command(tmp_path, "connections", "list")
    assert listed.stdout.splitlines()[1].split() == ["meta", "meta_capi", "(not", "installed)",
                                                     "access_token=env:META_TOKEN"]
    shown = run_command(tmp_path, "connections", "show", "meta")
    assert 'pixel_id = "***"' in shown.stdout  # unknown schema: every text value is masked
    run = run_cli(tmp_path, gen_sql(1), None, "--result", "meta")
    assert run.returncode == 2
    assert ("connector: error: connection 'meta': unknown output type 'meta_capi' (registered: "
            "line_conversion)") in run.stderr


# --------------------------------------------------------------------------- secrets stay inside


def test_a_refused_token_is_never_shown(bound, tmp_path):
    """The sandbox refuses the stored token (401): the export fails (exit 1), and the token is
    not in stdout, stderr or the report."""
    wrong = "tok-WRONG-4a7c1e99"
    assert run_command(tmp_path, "secrets", "set", "line.token", input=wrong).returncode == 0
    save_line(tmp_path, bound, token="access_token=secret:line.token")
    run = run_cli(tmp_path, gen_sql(3), None, "--result", "line")
    assert run.returncode == 1
    assert run.report["status"] == "error"
    run.assert_no_secret(wrong)


def test_a_bad_token_from_a_file_is_never_shown(bound, tmp_path):
    """A file token with an inner newline is refused before sending: the message names the
    parameter, not the value."""
    secret = "tok-FILE-91b2c3d4"
    path = _secret_file(tmp_path, f"{secret}\nsecond line\n")
    save_line(tmp_path, bound, token=f"access_token=file:{path}")
    run = run_cli(tmp_path, gen_sql(1), None, "--result", "line")
    assert run.returncode == 2
    assert "access_token: must not contain control characters" in run.stderr
    run.assert_no_secret(secret, "second line")
    assert bound.requests() == []


def test_a_value_from_the_secrets_store_is_a_secret_everywhere(bound, tmp_path):
    """line_tag_id is not a secret parameter, but read from the secrets store its value is a
    secret: the schema error that would quote it shows *** instead."""
    value = "tag with spaces 77f1"
    assert run_command(tmp_path, "secrets", "set", "tag", input=value).returncode == 0
    save(tmp_path, "line", "--set", "line_tag_id=${secret:tag}", "--set",
         f"endpoint={bound.url}", "--secret", "access_token=env:TEST_LINE_TOKEN")
    run = run_cli(tmp_path, gen_sql(1), None, "--result", "line")
    assert run.returncode == 2
    assert "line_tag_id (from connection 'line'): '***' does not match" in run.stderr
    assert value not in blob(run)


class Watch(ExportObserver):
    """Keeps the warnings a run shows."""

    def __init__(self) -> None:
        self.warnings: list[str] = []

    def warning(self, message: str) -> None:
        self.warnings.append(message)


printable_tokens = st.text(st.characters(exclude_categories=("Cs", "Cc")), min_size=1,
                           max_size=40).map(lambda s: "tok-" + s)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(token=printable_tokens, where=st.sampled_from(["store", "file", "env"]))
def test_no_token_of_any_shape_reaches_the_report_or_an_error(bound, tmp_path_factory, token,
                                                              where):
    """Whatever the token (any script, quotes, spaces: some are not even valid in a header)
    and wherever it comes from, the run fails (the sandbox wants another token) and the token
    appears in no message, warning, exception or report."""
    home = tmp_path_factory.mktemp("home")
    store = ConnectionStore(home)
    env = {"T": token}
    if where == "store":
        SecretStore(home).set("t", token)
        ref = Reference("secret", "t")
    elif where == "file":
        path = home / "token"
        path.write_text(token)
        path.chmod(0o600)
        ref = Reference("file", str(path))
    else:
        ref = Reference("env", "T")
    store.save(Connection("c", "line_conversion", {"line_tag_id": TAG, "access_token": ref,
                                                   "endpoint": bound.url, "max_retry": 1,
                                                   "initial_retry_wait": 1}))
    watch = Watch()
    shown = watch.warnings
    old = {k: os.environ.get(k) for k in ("CONNECTOR_CONFIG_HOME", "T")}
    os.environ.update({"CONNECTOR_CONFIG_HOME": str(home), **env})
    try:
        try:
            report = run_export(ExportSpec(query=gen_sql(2), connection="c"), observer=watch)
            shown.append(json.dumps(report.to_dict()))
            shown.append(report.summary())
            assert report.status == "error"
        except ConfigError as exc:
            shown.append(str(exc))
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    for text in shown:
        assert token not in text and json.dumps(token)[1:-1] not in text


# --------------------------------------------------------------------------- warnings, rotation


def test_loose_permissions_are_warned_about_during_an_export(bound, tmp_path):
    """connections.toml and a secret file that group or others can read: the export runs,
    and says so on stderr and in the report's warnings."""
    path = _secret_file(tmp_path, TOKEN)
    save_line(tmp_path, bound, token=f"access_token=file:{path}")
    (tmp_path / "config-home" / "connections.toml").chmod(0o644)
    path.chmod(0o644)
    run = run_cli(tmp_path, gen_sql(1), None, "--result", "line")
    assert run.returncode == 0, run.stderr
    for file in (tmp_path / "config-home" / "connections.toml", path):
        message = f"{file} can be read by group or others (mode 0644); run: chmod 600 {file}"
        assert f"connector: warning: {message}" in run.stderr
        assert message in run.report["warnings"]
    run.assert_no_secret()


def test_a_stored_spec_picks_up_a_rotated_token(bound, tmp_path, monkeypatch):
    """An ExportSpec names the connection; the token is read when the run starts. The same spec
    object fails with the old token and succeeds once the file holds the new one."""
    monkeypatch.setenv("CONNECTOR_CONFIG_HOME", str(tmp_path / "home"))
    path = _secret_file(tmp_path, "old-token-5e6f7a")
    ConnectionStore().save(Connection("line", "line_conversion", {
        "line_tag_id": TAG, "endpoint": bound.url, "access_token": Reference("file", str(path)),
        "initial_retry_wait": 1}))
    spec = ExportSpec(query=gen_sql(2), connection="line", output={"max_records": 1000})
    assert run_export(spec).status == "error"
    assert stored_keys(bound) == []
    path.write_text(TOKEN)
    report = run_export(spec)
    assert report.status == "success" and report.events_sent == 2
    assert stored_keys(bound) == ["k-1", "k-2"]
    with pytest.raises(ConfigError, match="no connection named 'gone'"):
        run_export(ExportSpec(query=gen_sql(1), connection="gone"))


# --------------------------------------------------------------------------- keyring


KEYRING_BACKEND = textwrap.dedent("""
    import json, os, pathlib
    from keyring.backend import KeyringBackend

    class FileKeyring(KeyringBackend):
        '''A real keyring backend (the keyring package's interface) kept in one JSON file.'''
        priority = 1

        def _load(self):
            path = pathlib.Path(os.environ["TEST_KEYRING_FILE"])
            return path, (json.loads(path.read_text()) if path.exists() else {})

        def get_password(self, service, username):
            return self._load()[1].get(service + "/" + username)

        def set_password(self, service, username, password):
            path, data = self._load()
            data[service + "/" + username] = password
            path.write_text(json.dumps(data))

        def delete_password(self, service, username):
            path, data = self._load()
            data.pop(service + "/" + username)
            path.write_text(json.dumps(data))
""")


def test_keyring_with_a_backend(bound, tmp_path):
    """`{keyring = ENTRY}` reads the OS keyring through the keyring package: the value set with
    `keyring set connector ENTRY` (the command the docs give) is the token the export sends."""
    (tmp_path / "filekeyring.py").write_text(KEYRING_BACKEND)
    env = {"PYTHON_KEYRING_BACKEND": "filekeyring.FileKeyring", "PYTHONPATH": str(tmp_path),
           "TEST_KEYRING_FILE": str(tmp_path / "keyring.json")}
    proc = subprocess.run([sys.executable, "-m", "keyring", "set", "connector", "line_prod"],
                          input=TOKEN + "\n", env=cli_env(tmp_path, env), capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    save_line(tmp_path, bound, token="access_token=keyring:line_prod")
    run = run_cli(tmp_path, gen_sql(2), None, "--result", "line", env=env)
    assert run.returncode == 0, run.stderr
    assert stored_keys(bound) == ["k-1", "k-2"]
    run.assert_no_secret()
    missing = run_cli(tmp_path, gen_sql(1), None, "--result-connection", "line",
                      "--result-settings", '{"access_token": {"keyring": "other"}}', env=env)
    assert missing.returncode == 2
    assert ("access_token (from result settings): keyring:other: no entry in the OS keyring "
            "(add it with: keyring set connector other)") in missing.stderr


@pytest.mark.parametrize("case", ["no backend", "no package"])
def test_keyring_never_falls_back(bound, tmp_path, case):
    """Without a keyring backend (a headless server) or without the keyring package, a keyring
    reference is an error that says so (exit 2), never a silent fallback; nothing is sent."""
    if case == "no backend":
        env = {"PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
        message = "keyring:line_prod: no OS keyring is available"
    else:
        shim = tmp_path / "shim" / "keyring"
        shim.mkdir(parents=True)
        (shim / "__init__.py").write_text("raise ImportError('keyring is not installed')\n")
        env = {"PYTHONPATH": str(tmp_path / "shim")}
        message = ("keyring:line_prod: the keyring package is not installed (pip install "
                   "'connector[keyring]')")
    save_line(tmp_path, bound, token="access_token=keyring:line_prod")
    run = run_cli(tmp_path, gen_sql(1), None, "--result", "line", env=env)
    assert run.returncode == 2
    assert f"connector: error: access_token (from connection 'line'): {message}" in run.stderr
    assert bound.requests() == []


# --------------------------------------------------------------------------- --database


def test_database_url_from_the_secrets_store(sandbox, tmp_path):
    """`${secret:KEY}` in --database: the path comes from the store, the query runs on it."""
    db = tmp_path / "events.duckdb"
    con = duckdb.connect(str(db))
    con.execute(f"CREATE TABLE ev AS {gen_sql(4)}")
    con.close()
    assert run_command(tmp_path, "secrets", "set", "db.path", input=str(db)).returncode == 0
    run = run_cli(tmp_path, "SELECT * FROM ev", result_config(sandbox), "--database",
                  "duckdb:///${secret:db.path}")
    assert run.returncode == 0, run.stderr
    assert run.report["events_sent"] == 4
