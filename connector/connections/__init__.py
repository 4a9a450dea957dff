"""Saved connections and secrets: Treasure Data's Authentications, kept locally.

- `ConnectionStore`: `connections.toml` in the config home (`$CONNECTOR_CONFIG_HOME`, else
  `$XDG_CONFIG_HOME/connector`, else `~/.config/connector`), directory 0700, file 0600,
  replaced atomically.
- `Reference`: a secret kept by reference (`{env = ...}`, `{file = ...}`, `{secret = ...}`,
  `{keyring = ...}`) and read at run time by `resolve`.
- `SecretStore` / `SecretLookup`: the values of `${secret:KEY}`, from `secrets.toml` or the
  environment (`CONNECTOR_SECRET_<KEY>`).

`result_url` merges a connection with the run's settings and resolves the references; the
commands are `connector connections ...` and `connector secrets ...`.
"""
from __future__ import annotations

from .files import CONFIG_HOME_ENV, config_home
from .references import KINDS, Reference, resolve
from .secrets import SecretLookup, SecretStore, env_names
from .store import NAME_RE, Connection, ConnectionStore, check_name

__all__ = ["CONFIG_HOME_ENV", "KINDS", "NAME_RE", "Connection", "ConnectionStore", "Reference",
           "SecretLookup", "SecretStore", "check_name", "config_home", "env_names", "resolve"]
