"""The config home and the private files in it.

The directory is created 0700 and every file 0600. A file is replaced atomically (a temporary
file in the same directory, flushed, then renamed over the old one), so a reader sees the old
content or the new, never half of it, and a crash leaves the old file whole. Read-modify-write
runs under a lock, so two commands saving at once both keep their change.
"""
from __future__ import annotations

import os
import stat
import tempfile
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Callable, Iterator, Mapping

import tomlkit
import tomlkit.exceptions

from connector.errors import ConfigError

try:  # POSIX; elsewhere concurrent writers are not serialised
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

CONFIG_HOME_ENV = "CONNECTOR_CONFIG_HOME"

Warn = Callable[[str], None]


def config_home(env: Mapping[str, str] | None = None) -> Path:
    """`$CONNECTOR_CONFIG_HOME`, else `$XDG_CONFIG_HOME/connector`, else `~/.config/connector`."""
    env = os.environ if env is None else env
    if env.get(CONFIG_HOME_ENV):
        return Path(env[CONFIG_HOME_ENV]).expanduser()
    xdg = env.get("XDG_CONFIG_HOME", "")
    # The XDG base directory rules: a relative path is invalid and is ignored.
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".config"
    return base / "connector"


def mode_text(path: Path) -> str:
    return f"{stat.S_IMODE(path.stat().st_mode):04o}"


def others_can_read(path: Path) -> bool:
    return os.name == "posix" and bool(path.stat().st_mode & 0o044)


def check_readable_only_by_owner(path: Path, warn: Warn) -> None:
    """Warn (never fail) when a file holding secrets can be read by group or others."""
    with suppress(OSError):
        if others_can_read(path):
            warn(f"{path} can be read by group or others (mode {mode_text(path)}); "
                 f"run: chmod 600 {path}")


def ensure_private_dir(path: Path, warn: Warn) -> None:
    """Create the directory 0700 (its parents with the usual mode). An existing directory that
    others can write to is reported: they could replace the files in it."""
    try:
        if not path.is_dir():
            path.parent.mkdir(parents=True, exist_ok=True)
            with suppress(FileExistsError):
                path.mkdir(mode=0o700)
            os.chmod(path, 0o700)  # exact, whatever the umask
        elif os.name == "posix" and path.stat().st_mode & 0o022:
            warn(f"{path} can be written by group or others (mode {mode_text(path)}); "
                 f"run: chmod 700 {path}")
    except OSError as exc:
        raise ConfigError(f"cannot create {path}: {exc.strerror}") from None


class PrivateFile:
    """One file in the config home: read, replaced atomically, locked while it is updated."""

    def __init__(self, path: Path, warn: Warn) -> None:
        self.path = path
        self.warn = warn
        self._updating = False  # under the lock: the file is about to be replaced 0600

    def read_text(self) -> str | None:
        """The content, or None when the file does not exist yet."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ConfigError(f"cannot read {self.path}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{self.path} is not UTF-8 text") from None
        if not self._updating:
            check_readable_only_by_owner(self.path, self.warn)
        return text

    def read_toml(self) -> tomlkit.TOMLDocument:
        """The file as a TOML document (empty when there is no file yet), comments kept."""
        try:
            return tomlkit.parse(self.read_text() or "")
        except tomlkit.exceptions.ParseError as exc:
            # The position only: the parser's message quotes the text, which holds secrets.
            raise ConfigError(f"{self.path}: not valid TOML (line {exc.line}, column {exc.col})"
                              ) from None

    def write_text(self, text: str) -> None:
        """Replace the file atomically with a new one of mode 0600."""
        directory = self.path.parent
        ensure_private_dir(directory, self.warn)
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=directory)
        except OSError as exc:
            raise ConfigError(f"cannot write {self.path}: {exc.strerror}") from None
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                if os.name == "posix":
                    os.fchmod(fh.fileno(), 0o600)
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException as exc:
            with suppress(OSError):
                os.unlink(tmp)
            if isinstance(exc, OSError):
                raise ConfigError(f"cannot write {self.path}: {exc.strerror}") from None
            raise
        _sync_directory(directory)

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the file's lock (a `.NAME.lock` file beside it) for a read-modify-write."""
        ensure_private_dir(self.path.parent, self.warn)
        lock = self.path.with_name(f".{self.path.name}.lock")
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise ConfigError(f"cannot lock {self.path}: {exc.strerror}") from None
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            self._updating = True
            yield
        finally:
            self._updating = False
            os.close(fd)  # closing releases the lock


def _sync_directory(directory: Path) -> None:
    """Make the rename itself durable (POSIX); a crash after this keeps the new file."""
    if os.name != "posix":
        return
    with suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class HomeStore:
    """A store kept in one private file of the config home (`file_name`)."""

    file_name: str

    def __init__(self, home: Path | None = None, warn: Warn | None = None) -> None:
        self.home = config_home() if home is None else home
        self.file = PrivateFile(self.home / self.file_name, warn or (lambda _m: None))

    @property
    def path(self) -> Path:
        return self.file.path
