"""Every form of the output configuration, from text to a validated, defaulted output.

A result is a JSON object (or `@path` to a JSON file), or a saved connection (by name) with the
run's settings layered over it: schema defaults < connection < settings. String values written
`${NAME}` are read from the environment and `${secret:KEY}` from the secrets store; a
connection's references (`{env = ...}`, `{file = ...}`, ...) are read too, all after the merge.
The result is checked against the output's JSON Schema (each output ships its own; the LINE
output's is `schemas/line_conversion.json`) before anything runs, and defaults are filled in from
the same schema.
"""
from __future__ import annotations

from typing import Any, Mapping

from connector.connections import ConnectionStore, SecretLookup
from connector.connections.files import Warn
from connector.masking import Redactor
from connector.outputs import OutputPlugin, load_output

from .expand import Expander, check_env, expand_env
from .layers import SETTINGS, connection_problems, merge, origin, typed_value
from .parse import connection_name, parse_result
from .validate import apply_defaults, problems, secret_keys, validate

__all__ = ["SETTINGS", "Expander", "apply_defaults", "check_env", "build_output", "check_type",
           "connection_name", "connection_problems", "expand_env", "merge", "parse_result",
           "problems", "resolve_config", "secret_keys", "typed_value", "validate"]


def resolve_config(raw: Mapping[str, Any], redactor: Redactor, *, connection: str | None = None,
                   store: ConnectionStore | None = None, secrets: SecretLookup | None = None,
                   env: Mapping[str, str] | None = None, warn: Warn | None = None
                   ) -> tuple[type[OutputPlugin], dict[str, Any]]:
    """The output class and the merged, resolved, validated configuration with defaults.

    Without `connection`, `raw` is the whole configuration (`--result`); with it, `raw` is the
    settings over that saved connection. Every secret met on the way (secret parameters, and
    anything read from the secrets store, a secret file or the keyring) is added to `redactor`,
    a literal secret before a `${NAME}` in another value can fail."""
    warn = warn or (lambda _m: None)
    origins: dict[str, str] = {}
    if connection is None:
        plugin_cls = load_output(raw.get("type"))
        layered, label = dict(raw), "invalid --result"
    else:
        saved = (store or ConnectionStore(warn=warn)).get(connection)
        plugin_cls = load_output(saved.type, where=origin(saved))
        layered, origins = merge(saved, raw)
        label = f"invalid configuration of {origin(saved)}"
    schema = plugin_cls.schema()
    secret = secret_keys(schema)
    for key in secret:
        if isinstance(layered.get(key), str):
            redactor.add(layered[key])
    config = Expander(env, secrets, redactor, warn).config(layered, origins)
    for key in secret:
        if isinstance(config.get(key), str):
            redactor.add(config[key])
    validate(config, schema, label=label, origins=origins)
    return plugin_cls, apply_defaults(config, schema)


def build_output(raw: Mapping[str, Any], redactor: Redactor, *, connection: str | None = None,
                 store: ConnectionStore | None = None, warn: Warn | None = None) -> OutputPlugin:
    """A result object (or settings over a saved connection) → the validated, defaulted output
    (ConfigError on any problem)."""
    plugin_cls, config = resolve_config(raw, redactor, connection=connection, store=store,
                                        warn=warn)
    return plugin_cls(config)


def check_type(type_name: str) -> type[OutputPlugin]:
    """The output class for a connection's `--type` (ConfigError naming the registered ones)."""
    return load_output(type_name, where="--type")
