"""The secrets store: values for `${secret:KEY}`, kept out of every other file.

`connector secrets set KEY` stores a value in `secrets.toml` (0600) beside connections.toml.
The environment variable `CONNECTOR_SECRET_<KEY>` (dots and dashes written as underscores, in
the key's case or in upper case) gives a value too and wins over the store, so a container or
CI job can supply secrets without a file.
"""
from __future__ import annotations

import os
import re
from typing import Mapping

import tomlkit

from connector.errors import ConfigError

from .files import HomeStore

SECRET_KEY_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}\Z")
ENV_PREFIX = "CONNECTOR_SECRET_"
FILE_NAME = "secrets.toml"


def check_key(key: str) -> str:
    if not SECRET_KEY_RE.match(key):  # not repeated: it may be a secret in the wrong place
        raise ConfigError("not a valid secret key (letters, digits, '_', '.' and '-', up to "
                          "128, not starting with '.' or '-')")
    return key


def env_names(key: str) -> list[str]:
    """The environment variables that may hold secret KEY, the exact one first."""
    name = ENV_PREFIX + re.sub(r"[.-]", "_", key)
    return list(dict.fromkeys([name, name.upper()]))


class SecretStore(HomeStore):
    """`secrets.toml` in the config home: a flat table of key = value."""

    file_name = FILE_NAME

    def _load(self) -> tomlkit.TOMLDocument:
        doc = self.file.read_toml()
        for key, value in doc.items():
            if not isinstance(value, str):
                raise ConfigError(f"{self.path}: {key}: a secret must be text")
        return doc

    def keys(self) -> list[str]:
        return sorted(self._load())

    def values(self) -> dict[str, str]:
        return {k: str(v) for k, v in self._load().items()}

    def get_stored(self, key: str) -> str | None:
        value = self._load().get(key)
        return None if value is None else str(value)

    def set(self, key: str, value: str) -> None:
        check_key(key)
        if not value:
            raise ConfigError(f"no value given for secret {key}")
        with self.file.locked():
            doc = self._load()
            doc[key] = value
            self.file.write_text(tomlkit.dumps(doc))

    def delete(self, key: str) -> None:
        if not self.path.exists():  # nothing to lock: create nothing
            raise ConfigError(f"no secret named {key!r} in {self.path}")
        with self.file.locked():
            doc = self._load()
            if key not in doc:
                raise ConfigError(f"no secret named {key!r} in {self.path}")
            del doc[key]
            self.file.write_text(tomlkit.dumps(doc))


class SecretLookup:
    """Where `${secret:KEY}` reads: the environment first, then the store (read once, lazily)."""

    def __init__(self, store: SecretStore | None = None,
                 env: Mapping[str, str] | None = None) -> None:
        self.store = store or SecretStore()
        self.env = os.environ if env is None else env
        self._stored: dict[str, str] | None = None

    def get(self, key: str) -> str:
        check_key(key)
        for name in env_names(key):
            if self.env.get(name):
                return self.env[name]
        if self._stored is None:
            self._stored = self.store.values()
        value = self._stored.get(key)
        if not value:
            raise ConfigError(f"secret {key!r} is not set (connector secrets set {key}, or the "
                              f"environment variable {env_names(key)[-1]})")
        return value
