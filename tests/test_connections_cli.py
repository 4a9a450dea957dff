"""`connector connections add|list|show|delete` and `connector secrets set|list|delete`: what they
print, what they save, what they refuse, and that no value of a secret ever appears in what they
show. The commands run as subprocesses (and, for generated inputs, in-process through
`connector.cli.main`), each test with a config home of its own.
"""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Iterator

import pytest
import tomlkit
from hypothesis import given, settings
from hypothesis import strategies as st

import result_url
from connector import cli
from connector.connections import ConnectionStore, SecretStore
from connector.errors import ConfigError
from helpers import REPO, TAG, TOKEN, cli_env, run_command

SCHEMA = json.loads((REPO / "schemas" / "line_conversion.json").read_text("utf-8"))


def saved(tmp_path: Path) -> dict:
    path = tmp_path / "config-home" / "connections.toml"
    return tomlkit.parse(path.read_text()).unwrap()["connections"] if path.exists() else {}


def add(tmp_path: Path, name: str, *args: str, **kw) -> object:
    return run_command(tmp_path, "connections", "add", name, "--type", "line_conversion",
                       *args, **kw)


# --------------------------------------------------------------------------- connections


def test_add_list_show_delete(tmp_path):
    """The whole life of two connections through the real command."""
    run = add(tmp_path, "line_prod", "--set", f"line_tag_id={TAG}", "--set", "max_records=1500",
              "--secret", "access_token=env:LINE_TOKEN")
    assert run.returncode == 0, run.stderr
    assert run.stdout == ""
    assert "saved connection 'line_prod' (line_conversion) in" in run.stderr
    run = add(tmp_path, "line_wf", "--secret", "access_token=secret:line.token")
    assert run.returncode == 0, run.stderr
    assert saved(tmp_path) == {
        "line_prod": {"type": "line_conversion", "line_tag_id": TAG, "max_records": 1500,
                      "access_token": {"env": "LINE_TOKEN"}},
        "line_wf": {"type": "line_conversion", "access_token": {"secret": "line.token"}},
    }

    listed = run_command(tmp_path, "connections", "list")
    assert listed.returncode == 0
    assert listed.stdout.splitlines() == [
        "NAME       TYPE             SECRETS",
        "line_prod  line_conversion  access_token=env:LINE_TOKEN",
        "line_wf    line_conversion  access_token=secret:line.token",
    ]
    as_json = json.loads(run_command(tmp_path, "connections", "list", "--json").stdout)
    assert as_json == [
        {"name": "line_prod", "type": "line_conversion",
         "secrets": {"access_token": "env:LINE_TOKEN"}},
        {"name": "line_wf", "type": "line_conversion",
         "secrets": {"access_token": "secret:line.token"}},
    ]

    shown = run_command(tmp_path, "connections", "show", "line_wf")
    assert shown.returncode == 0
    assert shown.stdout.splitlines()[1:] == [
        'type = "line_conversion"',
        'access_token = {secret = "line.token"}',
        "# the run's settings must give: line_tag_id",
    ]
    shown = json.loads(run_command(tmp_path, "connections", "show", "line_prod", "--json").stdout)
    assert shown["values"] == {"line_tag_id": TAG, "max_records": 1500,
                               "access_token": {"env": "LINE_TOKEN"}}
    assert shown["settings_must_give"] == []

    assert run_command(tmp_path, "connections", "delete", "line_prod").returncode == 0
    assert list(saved(tmp_path)) == ["line_wf"]
    gone = run_command(tmp_path, "connections", "delete", "line_prod")
    assert gone.returncode == 2
    assert "no connection named 'line_prod'" in gone.stderr
    missing = run_command(tmp_path, "connections", "show", "nope")
    assert missing.returncode == 2
    assert "no connection named 'nope' (saved: line_wf)" in missing.stderr
    assert run_command(tmp_path, "connections", "delete", "line_wf").returncode == 0
    empty = run_command(tmp_path, "connections", "list")
    assert empty.returncode == 0 and empty.stdout == ""
    assert "no connections saved in" in empty.stderr


def test_list_says_when_the_settings_must_give_the_secret(tmp_path):
    assert add(tmp_path, "tag_only", "--set", f"line_tag_id={TAG}").returncode == 0
    listed = run_command(tmp_path, "connections", "list")
    assert listed.stdout.splitlines()[1] == "tag_only  line_conversion  access_token=(run settings)"


@pytest.mark.parametrize("item,value", [
    ("max_records=1500", 1500),
    ("max_records=100000", 100000),
    ("initial_retry_wait=2.5", 2.5),
    ("initial_retry_wait=3", 3),
    ("test_flag=true", True),
    ("ignore_invalid_records=FALSE", False),
    ("line_channel_id=0123456789", "0123456789"),  # text stays text, leading zero and all
    ("endpoint=http://127.0.0.1:8080", "http://127.0.0.1:8080"),
    ("default_phone_region=JP", "JP"),
])
def test_set_values_take_the_schema_types(tmp_path, item, value):
    run = add(tmp_path, "c", "--set", item)
    assert run.returncode == 0, run.stderr
    key = item.partition("=")[0]
    stored = saved(tmp_path)["c"][key]
    assert stored == value and type(stored) is type(value)


@pytest.mark.parametrize("args,message", [
    (["--set", "max_records=abc"], "max_records: must be an integer (got 'abc')"),
    (["--set", "max_records=1.5e3"], "max_records: must be an integer"),
    (["--set", "initial_retry_wait=nan"], "initial_retry_wait: must be a finite number"),
    (["--set", "test_flag=yes"], "test_flag: must be true or false (got 'yes')"),
    (["--set", "max_records=50"], "invalid connection 'c': max_records: must be from 1000 to "
                                  "100000 (got 50)"),
    (["--set", "line_tag_id=bad tag"], "invalid connection 'c': line_tag_id: 'bad tag' does not "
                                       "match"),
    (["--set", "endpoint=ftp://x"], "invalid connection 'c': endpoint: 'ftp://x' does not match"),
    (["--set", "foo=1"], "--set foo: the line_conversion output has no such parameter (known: "
                         "access_token, adaptive_parallelism, connection_timeout,"),
    (["--set", "type=line_conversion"], "--set type: give the output type with --type"),
    (["--set", "max_records"], "--set: expected KEY=VALUE"),
    (["--set", "max_records=1000", "--set", "max_records=2000"], "max_records: given twice"),
    (["--secret", "max_records=env:N"], "invalid connection 'c': max_records: a reference or "
                                        "${...} gives text, but max_records must be of type "
                                        "integer"),
    (["--secret", "access_token=env:1BAD"], "env: not a valid environment variable name"),
    (["--secret", "access_token=secret:a b"], "secret: not a valid secret key"),
    (["--secret", f"access_token=env:{TOKEN}"], "env: not a valid environment variable name"),
    (["--secret", "access_token=env:"], "env: reference without a name"),
])
def test_saved_values_are_checked(tmp_path, args, message):
    """Everything that can be checked without a run's settings is checked when saving: exit 2,
    one line naming the parameter, and nothing saved."""
    run = add(tmp_path, "c", *args)
    assert run.returncode == 2
    assert f"connector: error: {message}" in run.stderr, run.stderr
    assert len(run.stderr.splitlines()) == 1 and "Traceback" not in run.stderr
    run.assert_no_secret()
    assert saved(tmp_path) == {}


@pytest.mark.parametrize("args,message", [
    (["connections", "add", "bad name", "--type", "line_conversion"],
     "not a valid connection name (letters, digits,"),
    (["connections", "add", TOKEN + "/x", "--type", "line_conversion"],
     "not a valid connection name"),
    (["connections", "add", "c", "--type", "meta_capi"],
     "--type: unknown output type 'meta_capi' (registered: line_conversion)"),
    (["connections", "add", "c"], "the following arguments are required: --type"),
    (["connections"], "the following arguments are required: ACTION"),
    (["connections", "rename"], "invalid choice: 'rename'"),
])
def test_bad_usage_exits_2(tmp_path, args, message):
    run = run_command(tmp_path, *args)
    assert run.returncode == 2
    assert message in run.stderr
    assert "Traceback" not in run.stderr
    run.assert_no_secret()


def test_an_existing_name_is_replaced_only_with_force(tmp_path):
    assert add(tmp_path, "c", "--set", "max_records=2000").returncode == 0
    again = add(tmp_path, "c", "--set", "max_records=3000")
    assert again.returncode == 2
    assert "connection 'c' exists; add --force to replace it" in again.stderr
    assert saved(tmp_path)["c"]["max_records"] == 2000
    assert add(tmp_path, "c", "--set", "max_records=3000", "--force").returncode == 0
    assert saved(tmp_path)["c"] == {"type": "line_conversion", "max_records": 3000}


def test_a_relative_secret_file_is_saved_absolute(tmp_path):
    """`file:token.txt` means the file where the command ran, whatever directory a later export
    runs in; a file that does not exist yet is a warning, not an error."""
    run = add(tmp_path, "c", "--secret", "access_token=file:token.txt")
    assert run.returncode == 0
    assert saved(tmp_path)["c"]["access_token"] == {"file": str(tmp_path / "token.txt")}
    assert f"{tmp_path / 'token.txt'} does not exist yet" in run.stderr
    home = add(tmp_path, "d", "--secret", "access_token=file:~/.secrets/line")
    assert saved(tmp_path)["d"]["access_token"] == {"file": "~/.secrets/line"}
    assert home.returncode == 0


# --------------------------------------------------------------------------- plaintext


@pytest.mark.parametrize("flag", ["--set", "--secret"])
def test_a_literal_secret_is_refused_without_plaintext(tmp_path, flag):
    """access_token given as a value, not a reference: exit 2 with the ways to do it right;
    the token appears in no output and nothing is saved."""
    run = add(tmp_path, "c", "--set", f"line_tag_id={TAG}", flag, f"access_token={TOKEN}")
    assert run.returncode == 2
    assert "access_token is a secret: keep it by reference (--secret access_token=env:NAME, " \
           "file:PATH, secret:KEY or keyring:ENTRY), or add --plaintext" in run.stderr
    run.assert_no_secret()
    assert saved(tmp_path) == {}


@pytest.mark.parametrize("flag", ["--set", "--secret"])
def test_plaintext_stores_the_value_and_says_so(tmp_path, flag):
    run = add(tmp_path, "c", flag, f"access_token={TOKEN}", "--plaintext")
    assert run.returncode == 0
    assert "warning: access_token stored in clear text in" in run.stderr
    run.assert_no_secret()
    assert saved(tmp_path)["c"]["access_token"] == TOKEN
    listed = run_command(tmp_path, "connections", "list")
    assert "access_token=plaintext" in listed.stdout
    shown = run_command(tmp_path, "connections", "show", "c")
    assert 'access_token = "***"  # plaintext, masked' in shown.stdout
    as_json = run_command(tmp_path, "connections", "show", "c", "--json")
    assert json.loads(as_json.stdout)["values"]["access_token"] == "***"
    for r in (listed, shown, as_json):
        r.assert_no_secret()


def test_a_reference_written_as_text_is_not_a_literal(tmp_path):
    """`--set access_token='${LINE_TOKEN}'` is a reference, so --plaintext is not needed."""
    assert add(tmp_path, "a", "--set", "access_token=${LINE_TOKEN}").returncode == 0
    assert add(tmp_path, "b", "--set", "access_token=${secret:line.token}").returncode == 0
    listed = run_command(tmp_path, "connections", "list").stdout
    assert "access_token=env:LINE_TOKEN" in listed and "access_token=secret:line.token" in listed


def test_arguments_are_never_echoed(tmp_path):
    """A mistyped flag or a --secret without '=': argparse would print the arguments, and one of
    them is the token."""
    for args in (["--sett", f"access_token={TOKEN}"], ["--secret", TOKEN], ["--set", TOKEN],
                 [TOKEN]):
        run = add(tmp_path, "c", *args)
        assert run.returncode == 2
        run.assert_no_secret()


# Tokens of any shape: quotes, backslashes, newlines, control characters, any script. A saved
# parameter may hold no control character (the schema check refuses it), a stored secret may.
tokens = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=60).map(
    lambda s: "tok-" + s)
parameter_tokens = st.text(st.characters(exclude_categories=("Cs", "Cc")), min_size=1,
                           max_size=60).map(lambda s: "tok-" + s)


@contextmanager
def config_home(path: Path) -> Iterator[None]:
    before = os.environ.get("CONNECTOR_CONFIG_HOME")
    os.environ["CONNECTOR_CONFIG_HOME"] = str(path)
    try:
        yield
    finally:
        if before is None:
            del os.environ["CONNECTOR_CONFIG_HOME"]
        else:
            os.environ["CONNECTOR_CONFIG_HOME"] = before


def run_main(*argv: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = cli.main(list(argv))
        except SystemExit as exc:  # argparse
            code = int(exc.code or 0)
    return code, out.getvalue() + err.getvalue()


def strings_in(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from strings_in(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings_in(v)


@settings(max_examples=60, deadline=None)
@given(token=parameter_tokens, other=tokens)
def test_no_token_of_any_shape_is_shown(tmp_path_factory, token, other):
    """A plaintext token and a secret-store value of any shape never appear in what the
    commands print, raw or JSON-decoded; a token refused for lack of --plaintext neither."""
    with config_home(tmp_path_factory.mktemp("home")):
        code, refused = run_main("connections", "add", "r", "--type", "line_conversion",
                                 "--set", f"access_token={token}")
        assert code == 2 and token not in refused
        code, added = run_main("connections", "add", "p", "--type", "line_conversion",
                               "--secret", f"access_token={token}", "--plaintext")
        assert code == 0, added
        SecretStore().set("k", other)
        shown = [added, run_main("connections", "list")[1],
                 run_main("connections", "show", "p")[1], run_main("secrets", "list")[1]]
        decoded = [json.loads(run_main("connections", "list", "--json")[1]),
                   json.loads(run_main("connections", "show", "p", "--json")[1])]
        for text in shown:
            assert token not in text and other not in text
        for value in decoded:
            assert token not in list(strings_in(value))
        assert ConnectionStore().get("p").values["access_token"] == token


# --------------------------------------------------------------------------- --set types


@given(n=st.integers(-10**12, 10**12))
def test_integers_read_back_as_integers(n):
    assert result_url.typed_value(SCHEMA, "max_records", str(n)) == n


@given(x=st.floats(allow_nan=False, allow_infinity=False))
def test_numbers_read_back_exactly(x):
    assert result_url.typed_value(SCHEMA, "initial_retry_wait", repr(x)) == x


@given(text=st.text().filter(lambda s: s.strip().lstrip("+-").replace("_", "").isdigit() is False))
def test_text_that_is_not_an_integer_is_refused(text):
    with pytest.raises(ConfigError, match="max_records: must be an integer"):
        result_url.typed_value(SCHEMA, "max_records", text)


@given(text=st.text())
def test_text_parameters_are_taken_as_they_are(text):
    assert result_url.typed_value(SCHEMA, "line_tag_id", text) == text


# --------------------------------------------------------------------------- secrets


def test_secrets_set_list_delete(tmp_path):
    home = tmp_path / "config-home"
    run = run_command(tmp_path, "secrets", "set", "line.token", input=TOKEN + "\n")
    assert run.returncode == 0, run.stderr
    assert "saved secret line.token in" in run.stderr
    assert SecretStore(home).get_stored("line.token") == TOKEN  # the newline is not part of it
    assert run_command(tmp_path, "secrets", "set", "b-key", input="v" * 8 + "\r\n").returncode == 0
    assert SecretStore(home).get_stored("b-key") == "v" * 8
    assert run_command(tmp_path, "secrets", "set", "multi", input="a\nb\n").returncode == 0
    assert SecretStore(home).get_stored("multi") == "a\nb"
    listed = run_command(tmp_path, "secrets", "list")
    assert listed.stdout == "b-key\nline.token\nmulti\n"
    listed.assert_no_secret()
    assert run_command(tmp_path, "secrets", "delete", "multi").returncode == 0
    assert run_command(tmp_path, "secrets", "list").stdout == "b-key\nline.token\n"
    gone = run_command(tmp_path, "secrets", "delete", "multi")
    assert gone.returncode == 2 and "no secret named 'multi'" in gone.stderr
    assert TOKEN in (home / "secrets.toml").read_text()  # stored, 0600, and nowhere else
    assert TOKEN not in (home / "connections.toml").read_text() if (
        home / "connections.toml").exists() else True


@pytest.mark.parametrize("args,input,message", [
    (["secrets", "set", "k"], "", "no value given for secret k"),
    (["secrets", "set", "k"], "\n", "no value given for secret k"),
    (["secrets", "set", "bad key"], "v", "not a valid secret key"),
    (["secrets", "set", ".hidden"], "v", "not a valid secret key"),
    (["secrets", "set", TOKEN + "!"], "v", "not a valid secret key"),
    (["secrets"], None, "the following arguments are required: ACTION"),
])
def test_secrets_bad_usage(tmp_path, args, input, message):
    run = run_command(tmp_path, *args, input=input)
    assert run.returncode == 2
    assert message in run.stderr
    run.assert_no_secret()
    assert not (tmp_path / "config-home" / "secrets.toml").exists()


def test_secrets_set_warns_when_the_environment_wins(tmp_path):
    run = run_command(tmp_path, "secrets", "set", "line.token", input="stored-value",
                      env={"CONNECTOR_SECRET_LINE_TOKEN": "from-env"})
    assert run.returncode == 0
    assert "CONNECTOR_SECRET_LINE_TOKEN is set in this environment and wins" in run.stderr
    assert "from-env" not in run.stderr and "stored-value" not in run.stderr


def test_broken_secrets_file_is_reported_by_position(tmp_path):
    home = tmp_path / "config-home"
    home.mkdir(mode=0o700)
    (home / "secrets.toml").write_text(textwrap.dedent(f'''\
        a = "{TOKEN}"
        b = "{TOKEN}
        '''))
    run = run_command(tmp_path, "secrets", "list")
    assert run.returncode == 2
    assert "secrets.toml: not valid TOML (line 2" in run.stderr
    run.assert_no_secret()


# --------------------------------------------------------------------------- the docs


def test_the_docs_walkthrough_runs_as_written(tmp_path):
    """docs/connections.md's shell walkthrough, run by bash as written (the installed
    `connector` command, the example data, a config home of its own), prints the `list` output
    the page shows."""
    page = (REPO / "docs" / "connections.md").read_text("utf-8")
    script = page.split("<!-- example-shell: walkthrough -->\n```sh\n", 1)[1].split("```", 1)[0]
    shown = page.split("`connections list` shows where each secret comes from, never its "
                       "value:\n\n", 1)[1].split("\n\n", 1)[0]
    (tmp_path / "examples").symlink_to(REPO / "examples")
    env = {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path,
                          env=cli_env(tmp_path, env), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    for line in shown.splitlines():
        assert line.strip() in proc.stdout, (line, proc.stdout)
    assert proc.stderr.count("Dry run SUCCESS") == 3


def test_secrets_set_prompts_on_a_terminal_without_echo(tmp_path):
    """On a terminal, `secrets set` asks for the value and the terminal does not echo it: what
    is typed is stored, and the terminal never shows it."""
    import pty
    import select

    pid, fd = pty.fork()
    if pid == 0:  # the child: a session on the pseudo-terminal, as a user's shell would be
        os.execve(sys.executable, [sys.executable, "-m", "connector", "secrets", "set", "typed"],
                  cli_env(tmp_path))
    shown = b""

    def read_until(marker: bytes, timeout: float = 60) -> None:
        nonlocal shown
        while marker not in shown:
            ready, _, _ = select.select([fd], [], [], timeout)
            assert ready, shown
            try:
                chunk = os.read(fd, 1024)
            except OSError:  # the child closed the terminal
                return
            if not chunk:
                return
            shown += chunk

    read_until(b"value of secret typed: ")
    os.write(fd, TOKEN.encode() + b"\n")
    read_until(b"saved secret typed")
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    assert os.WEXITSTATUS(status) == 0, shown
    assert TOKEN.encode() not in shown
    assert SecretStore(tmp_path / "config-home").get_stored("typed") == TOKEN


def test_deleting_from_nothing_creates_nothing(tmp_path):
    for args in (["connections", "delete", "x"], ["secrets", "delete", "x"]):
        run = run_command(tmp_path, *args)
        assert run.returncode == 2 and "no " in run.stderr
    assert not (tmp_path / "config-home").exists()
