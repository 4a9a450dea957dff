"""The connections and secrets files: where they live, their modes, atomic replacement, the lock
around read-modify-write, hand edits, warnings about loose permissions, and that any value
survives a save and a load.

The commands run as subprocesses with a config home of their own under the test's tmp_path;
the atomicity and lock tests race real processes against each other.
"""
from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector.connections import (Connection, ConnectionStore, Reference, SecretStore,
                                   config_home)
from connector.errors import ConfigError
from helpers import TAG, TOKEN, cli_env, run_command

PY = sys.executable


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def add_args(name: str = "line_prod", *extra: str) -> list[str]:
    return ["connections", "add", name, "--type", "line_conversion", "--set",
            f"line_tag_id={TAG}", "--secret", "access_token=env:LINE_TOKEN", *extra]


# --------------------------------------------------------------------------- where


def test_config_home_order():
    """$CONNECTOR_CONFIG_HOME, else $XDG_CONFIG_HOME/connector (an absolute path only, as the
    XDG rules say), else ~/.config/connector."""
    assert config_home({"CONNECTOR_CONFIG_HOME": "/a/b", "XDG_CONFIG_HOME": "/x"}) == Path("/a/b")
    assert config_home({"XDG_CONFIG_HOME": "/x"}) == Path("/x/connector")
    assert config_home({"XDG_CONFIG_HOME": "relative"}) == Path.home() / ".config" / "connector"
    assert config_home({}) == Path.home() / ".config" / "connector"


@pytest.mark.parametrize("where", ["xdg", "home"])
def test_the_command_writes_under_xdg_or_home(tmp_path, where):
    """Without CONNECTOR_CONFIG_HOME the real command writes to $XDG_CONFIG_HOME/connector, or
    ~/.config/connector (parents created), and nowhere else."""
    env = {k: v for k, v in cli_env(tmp_path).items()
           if k not in ("CONNECTOR_CONFIG_HOME", "XDG_CONFIG_HOME")}
    env["HOME"] = str(tmp_path / "home")
    expected = tmp_path / "home" / ".config" / "connector"
    if where == "xdg":
        env["XDG_CONFIG_HOME"] = str(tmp_path / "xdg")
        expected = tmp_path / "xdg" / "connector"
    proc = subprocess.run([PY, "-m", "connector", *add_args()], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert (expected / "connections.toml").is_file()
    assert str(expected / "connections.toml") in proc.stderr
    assert mode(expected) == 0o700


# --------------------------------------------------------------------------- modes


def test_modes_are_0700_and_0600_whatever_the_umask(tmp_path):
    """Under umask 000 (which would make files 0666) the directory is 0700 and both files
    0600, after a save, a second save and a delete."""
    home = tmp_path / "nested" / "config"
    env = {"CONNECTOR_CONFIG_HOME": str(home)}

    def run(*args: str, input: str | None = None) -> None:
        proc = subprocess.run([PY, "-m", "connector", *args], env=cli_env(tmp_path, env),
                              cwd=tmp_path, capture_output=True, text=True, input=input,
                              preexec_fn=lambda: os.umask(0), timeout=60)
        assert proc.returncode == 0, proc.stderr

    run(*add_args("one"))
    run(*add_args("two"))
    run("secrets", "set", "line.token", input=TOKEN)
    assert mode(home) == 0o700
    assert mode(home / "connections.toml") == 0o600
    assert mode(home / "secrets.toml") == 0o600
    run("connections", "delete", "one")
    run("secrets", "set", "other", input="x" * 10)
    assert mode(home / "connections.toml") == 0o600
    assert mode(home / "secrets.toml") == 0o600
    assert not [p.name for p in home.iterdir() if p.name.endswith(".tmp")]


def test_a_save_makes_a_loose_file_private_again(tmp_path):
    """A file someone made 0644 is replaced by a 0600 file on the next save (which therefore
    does not warn about the old mode)."""
    assert run_command(tmp_path, *add_args("one")).returncode == 0
    path = tmp_path / "config-home" / "connections.toml"
    path.chmod(0o644)
    run = run_command(tmp_path, *add_args("two"))
    assert run.returncode == 0 and "warning" not in run.stderr
    assert mode(path) == 0o600


def test_warns_when_group_or_others_can_read(tmp_path):
    """connections.toml or secrets.toml readable by group or others: every command that reads
    it warns, naming the file, its mode and the fix, and still works; never with a value."""
    assert run_command(tmp_path, "connections", "add", "plain", "--type", "line_conversion",
                       "--set", f"access_token={TOKEN}", "--plaintext").returncode == 0
    assert run_command(tmp_path, "secrets", "set", "k", input=TOKEN).returncode == 0
    home = tmp_path / "config-home"
    for perms in (0o640, 0o604, 0o644):
        (home / "connections.toml").chmod(perms)
        (home / "secrets.toml").chmod(perms)
        listed = run_command(tmp_path, "connections", "list")
        assert listed.returncode == 0
        assert f"{home / 'connections.toml'} can be read by group or others" in listed.stderr
        assert f"mode {perms:04o}" in listed.stderr and "chmod 600" in listed.stderr
        keys = run_command(tmp_path, "secrets", "list")
        assert keys.returncode == 0 and keys.stdout == "k\n"
        assert f"{home / 'secrets.toml'} can be read by group or others" in keys.stderr
        listed.assert_no_secret()
        keys.assert_no_secret()
    (home / "connections.toml").chmod(0o600)
    assert "warning" not in run_command(tmp_path, "connections", "list").stderr


def test_warns_when_others_can_write_the_directory(tmp_path):
    home = tmp_path / "config-home"
    home.mkdir(mode=0o777)
    home.chmod(0o777)
    run = run_command(tmp_path, *add_args())
    assert run.returncode == 0
    assert f"{home} can be written by group or others (mode 0777)" in run.stderr


# --------------------------------------------------------------------------- atomic, locked


WRITER = textwrap.dedent("""
    import sys
    from connector.connections import Connection, ConnectionStore
    store = ConnectionStore()
    for i in range(int(sys.argv[1])):
        big = "v%d-" % i + "x" * 200_000   # a large file makes a torn write likely
        store.save(Connection("c%d" % (i % 5), "line_conversion", {"endpoint": big}),
                   replace=True)
""")

READER = textwrap.dedent("""
    import sys, pathlib, tomlkit
    path = pathlib.Path(sys.argv[1]); done = pathlib.Path(sys.argv[2])
    reads = 0
    while not done.exists():
        data = path.read_bytes()
        table = tomlkit.parse(data.decode())["connections"]   # never empty, never torn
        assert sorted(table) == ["c0", "c1", "c2", "c3", "c4"], sorted(table)
        reads += 1
    print(reads)
""")


def test_a_reader_never_sees_a_torn_file(tmp_path):
    """A process reading connections.toml in a loop while another saves it 150 times (each
    file about 1 MB) always reads a whole, valid file with all five connections: the new file
    is written aside and renamed over the old one. Writing in place would show an empty or
    half-written file here."""
    env = cli_env(tmp_path)
    seed = subprocess.run([PY, "-c", WRITER, "5"], env=env, capture_output=True, text=True)
    assert seed.returncode == 0, seed.stderr
    path = tmp_path / "config-home" / "connections.toml"
    done = tmp_path / "writer-done"
    reader = subprocess.Popen([PY, "-c", READER, str(path), str(done)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    writer = subprocess.run([PY, "-c", WRITER, "150"], env=env, capture_output=True, text=True,
                            timeout=300)
    done.touch()
    out, err = reader.communicate(timeout=60)
    assert writer.returncode == 0, writer.stderr
    assert reader.returncode == 0, err[-2000:]
    assert int(out) > 10  # it really raced the writer
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("failing", ["replace", "fsync"])
def test_a_failed_write_keeps_the_old_file(tmp_path, monkeypatch, failing):
    """The disk fills up (ENOSPC) while saving: the old file is untouched, byte for byte, no
    temporary file is left behind, and the error is a one-line ConfigError."""
    store = ConnectionStore(tmp_path / "home")
    store.save(Connection("one", "line_conversion", {"line_tag_id": TAG}))
    before = store.path.read_bytes()

    def boom(*_a: object, **_k: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, failing, boom)
    with pytest.raises(ConfigError, match="cannot write .*No space left on device"):
        store.save(Connection("two", "line_conversion", {"line_tag_id": TAG}))
    monkeypatch.undo()
    assert store.path.read_bytes() == before
    assert sorted(p.name for p in store.path.parent.iterdir()) == [
        ".connections.toml.lock", "connections.toml"]


ADDER = textwrap.dedent("""
    import sys
    from connector.connections import Connection, ConnectionStore
    store = ConnectionStore()
    for i in range(25):
        store.save(Connection("p%s-%d" % (sys.argv[1], i), "line_conversion", {"max_retry": 3}))
""")


def test_concurrent_saves_keep_every_connection(tmp_path):
    """Four processes each save 25 connections at the same time: all 100 are in the file. The
    read-modify-write is locked; without the lock, saves would overwrite each other."""
    env = cli_env(tmp_path)
    procs = [subprocess.Popen([PY, "-c", ADDER, str(k)], env=env, stderr=subprocess.PIPE,
                              text=True) for k in range(4)]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    names = ConnectionStore(tmp_path / "config-home").names()
    assert len(names) == 100
    listed = run_command(tmp_path, "connections", "list")
    assert listed.returncode == 0 and len(listed.stdout.splitlines()) == 101


# --------------------------------------------------------------------------- the file itself


def test_hand_edits_and_comments_survive_add_and_delete(tmp_path):
    home = tmp_path / "config-home"
    home.mkdir(mode=0o700)
    path = home / "connections.toml"
    path.write_text(textwrap.dedent(f"""\
        # Production LINE tag: owned by the growth team
        [connections.line_prod]
        type = "line_conversion"
        line_tag_id = "{TAG}"   # from LINE Business Manager
        access_token = {{ env = "LINE_TOKEN" }}
        """))
    path.chmod(0o600)
    assert run_command(tmp_path, *add_args("line_dev")).returncode == 0
    assert run_command(tmp_path, "connections", "delete", "line_dev").returncode == 0
    text = path.read_text()
    assert "# Production LINE tag: owned by the growth team" in text
    assert "# from LINE Business Manager" in text
    assert "line_dev" not in text
    shown = run_command(tmp_path, "connections", "show", "line_prod")
    assert 'access_token = {env = "LINE_TOKEN"}' in shown.stdout


def test_broken_toml_is_reported_by_position_never_by_content(tmp_path):
    """A syntax error on the line after a plaintext token: exit 2, the file, line and column;
    the token appears nowhere (the parser's own message would quote the text)."""
    home = tmp_path / "config-home"
    home.mkdir(mode=0o700)
    (home / "connections.toml").write_text(
        f'[connections.x]\ntype = "line_conversion"\naccess_token = "{TOKEN}"\n'
        f'line_tag_id = "{TOKEN}\n')
    (home / "connections.toml").chmod(0o600)
    (tmp_path / "q.sql").write_text("SELECT 1")
    for args in (["connections", "list"], ["connections", "show", "x"],
                 ["q.sql", "--result", "x"]):
        run = run_command(tmp_path, *args)
        assert run.returncode == 2, run.stderr
        assert "not valid TOML (line 4" in run.stderr
        assert "Traceback" not in run.stderr
        run.assert_no_secret()


@pytest.mark.parametrize("body,message", [
    ('[connections.x]\nline_tag_id = "t"\n', "connection 'x': the \"type\" parameter is required"),
    ('[connections.x]\ntype = "line_conversion"\nline_tag_id = ["t"]\n',
     "connection 'x': line_tag_id: a value must be text, a number"),
    ('[connections.x]\ntype = "line_conversion"\naccess_token = {env = "A", file = "b"}\n',
     "connection 'x': access_token: a reference has exactly one of"),
    ('[connections.x]\ntype = "line_conversion"\naccess_token = {vault = "a"}\n',
     "connection 'x': access_token: unknown reference kind 'vault'"),
    ('[connections."bad name"]\ntype = "line_conversion"\n', "connection 'bad name': not a valid connection name"),
    ('connections = 3\n', "'connections' must be a table"),
])
def test_a_malformed_connection_is_named(tmp_path, body, message):
    home = tmp_path / "config-home"
    home.mkdir(mode=0o700)
    (home / "connections.toml").write_text(body)
    run = run_command(tmp_path, "connections", "list")
    assert run.returncode == 2
    assert message in run.stderr, run.stderr
    assert "Traceback" not in run.stderr


# --------------------------------------------------------------------------- any value round-trips

names = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", fullmatch=True)
texts = st.text(st.characters(exclude_categories=("Cs",)), max_size=200)
literals = st.one_of(texts.filter(lambda s: "${" not in s), st.integers(-2**63, 2**63 - 1),
                     st.floats(allow_nan=False, allow_infinity=False), st.booleans())
references = st.one_of(
    st.builds(Reference, st.just("env"), st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,40}",
                                                       fullmatch=True)),
    st.builds(Reference, st.just("secret"), st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,40}",
                                                          fullmatch=True)),
    st.builds(Reference, st.sampled_from(["file", "keyring"]), texts.filter(bool)),
)
value_maps = st.dictionaries(st.from_regex(r"[a-z_]{1,20}", fullmatch=True).filter(
    lambda k: k != "type"), st.one_of(literals, references), max_size=6)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=names, values=value_maps)
def test_any_connection_survives_a_save_and_a_load(tmp_path_factory, name, values):
    """Whatever the text (quotes, backslashes, newlines, control characters, any script),
    number or reference, the connection read back is the connection saved."""
    store = ConnectionStore(tmp_path_factory.mktemp("home"))
    saved = Connection(name, "line_conversion", values)
    store.save(saved)
    assert store.get(name) == saved
    assert list(store) == [saved]


@settings(max_examples=150, deadline=None)
@given(key=st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", fullmatch=True),
       value=texts.filter(bool))
def test_any_secret_survives_a_save_and_a_load(tmp_path_factory, key, value):
    store = SecretStore(tmp_path_factory.mktemp("home"))
    store.set(key, value)
    assert store.get_stored(key) == value
    assert store.keys() == [key]
