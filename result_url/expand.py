"""Resolving a configuration's values at run time: `${NAME}` from the environment,
`${secret:KEY}` from the secrets store, and reference tables (`{env = ...}`, `{file = ...}`,
`{secret = ...}`, `{keyring = ...}`) from a saved connection.

Every value read from the secrets store, a secret file or the keyring is given to the run's
redactor as soon as it is read, so no message can show it afterwards.
"""
from __future__ import annotations

import os
import re
from typing import Any, Mapping

from connector.connections import KINDS, Reference, SecretLookup, SecretStore, resolve
from connector.connections.files import Warn
from connector.errors import ConfigError
from connector.masking import Redactor

_REF = re.compile(r"\$\{(?:secret:([^}]*)|([A-Za-z_][A-Za-z0-9_]*))\}")


def _is_reference_table(value: Any) -> bool:
    return isinstance(value, Mapping) and len(value) == 1 and next(iter(value)) in KINDS


class Expander:
    """Resolves the values of one run's configuration (once each: not recursively)."""

    def __init__(self, env: Mapping[str, str] | None = None,
                 secrets: SecretLookup | None = None, redactor: Redactor | None = None,
                 warn: Warn | None = None) -> None:
        self.env = os.environ if env is None else env
        self._secrets = secrets
        self.redactor = redactor or Redactor()
        self.warn = warn or (lambda _m: None)

    @property
    def secrets(self) -> SecretLookup:
        if self._secrets is None:  # the store is read only when a secret is asked for
            self._secrets = SecretLookup(SecretStore(warn=self.warn), env=self.env)
        return self._secrets

    def text(self, key: str, value: str) -> str:
        def repl(m: re.Match[str]) -> str:
            secret, name = m.group(1), m.group(2)
            if name is not None:
                if name not in self.env:
                    raise ConfigError(f"{key}: environment variable {name} is not set")
                return self.env[name]
            try:
                found = self.secrets.get(secret)
            except ConfigError as exc:
                raise ConfigError(f"{key}: {exc}") from None
            self.redactor.add(found)
            return found

        return _REF.sub(repl, value)

    def value(self, key: str, value: Any) -> Any:
        if _is_reference_table(value):
            try:
                ref = Reference.from_value(value)
                assert ref is not None
                found = resolve(ref, env=self.env, secrets=self.secrets, warn=self.warn)
            except ConfigError as exc:
                raise ConfigError(f"{key}: {exc}") from None
            if ref.kind != "env":  # an env reference is ${NAME}: a secret by its parameter
                self.redactor.add(found)
            return found
        if isinstance(value, str):
            return self.text(key, value)
        return value

    def config(self, config: Mapping[str, Any],
               origins: Mapping[str, str] | None = None) -> dict[str, Any]:
        """Every value resolved; `origins` (key -> layer) make errors say where a key came from."""
        origins = origins or {}
        return {k: self.value(f"{k} (from {origins[k]})" if k in origins else k, v)
                for k, v in config.items()}


def expand_env(config: Mapping[str, Any], env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Replace `${NAME}` (and `${secret:KEY}`) in string values, and resolve reference tables."""
    return Expander(env).config(config)
