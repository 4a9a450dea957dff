"""Secret references: where a value is read from at run time, instead of the value itself.

In connections.toml a reference is an inline table with one key:

    access_token = { env = "LINE_TOKEN" }        # an environment variable
    access_token = { file = "~/.secrets/line" }  # a file's content (one trailing newline dropped)
    access_token = { secret = "line.token" }     # the secrets store (connector secrets set)
    access_token = { keyring = "line_prod" }     # the OS keyring, service "connector"

On the command line the same is written `env:LINE_TOKEN`, `file:PATH`, `secret:KEY`,
`keyring:ENTRY`. A reference is never resolved silently from somewhere else: a variable that
is not set, a missing file or an unavailable keyring is an error naming the reference.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from connector.errors import ConfigError

from .files import Warn, check_readable_only_by_owner
from .secrets import SECRET_KEY_RE, SecretLookup

KINDS = ("env", "file", "secret", "keyring")
KEYRING_SERVICE = "connector"
ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# A whole string that is only `${NAME}` or `${secret:KEY}` is a reference written as text.
_WHOLE_REF = re.compile(r"\$\{(?:(secret):([^}]*)|([A-Za-z_][A-Za-z0-9_]*))\}\Z")


@dataclass(frozen=True)
class Reference:
    kind: str  # one of KINDS
    target: str  # the variable, path, secret key or keyring entry

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"unknown reference kind {self.kind!r} (known: {', '.join(KINDS)})")
        if not self.target:
            raise ConfigError(f"{self.kind}: reference without a name")
        # An invalid name is not repeated: it may be a secret written in the wrong place.
        if self.kind == "env" and not ENV_NAME_RE.match(self.target):
            raise ConfigError("env: not a valid environment variable name (letters, digits and "
                              "'_', not starting with a digit)")
        if self.kind == "secret" and not SECRET_KEY_RE.match(self.target):
            raise ConfigError("secret: not a valid secret key (letters, digits, '_', '.', '-')")

    def describe(self) -> str:
        """`env:LINE_TOKEN`: says where the value comes from, never what it is."""
        return f"{self.kind}:{self.target}"

    def as_table(self) -> dict[str, str]:
        return {self.kind: self.target}

    @classmethod
    def from_value(cls, value: Any) -> "Reference | None":
        """The reference a stored value is, or None for a literal value. A table that looks
        like a reference but is not a valid one is an error, not a literal."""
        if isinstance(value, Mapping):
            if len(value) != 1:
                raise ConfigError(f"a reference has exactly one of {', '.join(KINDS)}")
            ((kind, target),) = value.items()
            if not isinstance(target, str):
                raise ConfigError(f"{kind}: the reference must be text")
            return cls(str(kind), target)
        if isinstance(value, str):
            m = _WHOLE_REF.match(value)
            if m:
                return cls("secret", m.group(2)) if m.group(1) else cls("env", m.group(3))
        return None

    @classmethod
    def from_text(cls, text: str) -> "Reference | None":
        """`env:NAME`, `file:PATH`, `secret:KEY` or `keyring:ENTRY`; None for anything else
        (a literal value). A relative file path is made absolute here, so the reference means
        the same file whatever directory the export later runs in."""
        kind, sep, target = text.partition(":")
        if not sep or kind not in KINDS:
            return cls.from_value(text)
        if kind == "file" and target and not target.startswith("~"):
            target = os.path.abspath(target)
        return cls(kind, target)


def resolve(ref: Reference, *, env: Mapping[str, str], secrets: SecretLookup, warn: Warn) -> str:
    """The value `ref` points at (ConfigError naming the reference when it cannot be read)."""
    if ref.kind == "env":
        if ref.target not in env:
            raise ConfigError(f"environment variable {ref.target} is not set")
        return env[ref.target]
    if ref.kind == "secret":
        return secrets.get(ref.target)
    if ref.kind == "file":
        return _read_file(Path(ref.target).expanduser(), warn)
    return _read_keyring(ref.target)


def _read_file(path: Path, warn: Warn) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read secret file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"secret file {path} is not UTF-8 text") from None
    check_readable_only_by_owner(path, warn)
    # `echo token > file` writes a newline that is not part of the secret.
    value = text[:-1] if text.endswith("\n") else text
    value = value[:-1] if value.endswith("\r") else value
    if not value:
        raise ConfigError(f"secret file {path} is empty")
    return value


def _read_keyring(entry: str) -> str:
    try:
        import keyring
    except ImportError:
        raise ConfigError(f"keyring:{entry}: the keyring package is not installed "
                          "(pip install 'connector[keyring]')") from None
    try:
        value = keyring.get_password(KEYRING_SERVICE, entry)
    except Exception as exc:  # KeyringError, or whatever a backend (D-Bus...) raises
        # No usable backend (a headless Linux has none) is an error: never fall back.
        raise ConfigError(f"keyring:{entry}: no OS keyring is available "
                          f"({type(exc).__name__}); use env:, file: or secret: instead") from None
    if value is None:
        raise ConfigError(f"keyring:{entry}: no entry in the OS keyring (add it with: "
                          f"keyring set {KEYRING_SERVICE} {entry})")
    return value
