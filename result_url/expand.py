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


_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def check_env(config: Mapping[str, Any], env: Mapping[str, str] | None = None) -> None:
    """Every `${NAME}` in string values names a variable that is set and not empty; else one
    ConfigError that lists every variable that is not, with the settings that read it."""
    env = os.environ if env is None else env
    unset: dict[str, list[str]] = {}
    empty: dict[str, list[str]] = {}
    for key, value in config.items():
        if not isinstance(value, str):
            continue
        for name in _ENV_REF.findall(value):
            if name not in env:
                unset.setdefault(name, []).append(str(key))
            elif env[name] == "":
                empty.setdefault(name, []).append(str(key))
    if len(unset) + len(empty) == 1:  # one variable: the same words as when it is read
        ((name, keys),), what = (unset or empty).items(), "not set" if unset else "set but empty"
        if len(keys) == 1:
            raise ConfigError(f"{keys[0]}: environment variable {name} is {what}")
    problems = []
    for found, what in ((unset, "not set"), (empty, "set but empty")):
        if found:
            names = ", ".join(f"{name} (for {', '.join(keys)})" for name, keys in found.items())
            problems.append(f"environment variable{'s' if len(found) > 1 else ''} {names} "
                            f"{'are' if len(found) > 1 else 'is'} {what}")
    if problems:
        raise ConfigError("; ".join(problems))


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
                if self.env[name] == "":
                    raise ConfigError(f"{key}: environment variable {name} is set but empty")
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
        # Every missing or empty variable at once, not one per run.
        check_env({f"{k} (from {origins[k]})" if k in origins else k: v
                   for k, v in config.items()}, self.env)
        return {k: self.value(f"{k} (from {origins[k]})" if k in origins else k, v)
                for k, v in config.items()}


def expand_env(config: Mapping[str, Any], env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Replace `${NAME}` (and `${secret:KEY}`) in string values, and resolve reference tables."""
    return Expander(env).config(config)
