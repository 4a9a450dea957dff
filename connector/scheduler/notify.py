"""Telling someone about a run: a command, an HTTP webhook, an email through SMTP.

A schedule holds a list of targets (`schedule create --notify`), each with `on`: `failure` (the
default) or `always` (successes too). What a notification says is declared once, in FIELDS: the
command's environment variables, the webhook's JSON keys and the email's lines are the same
fields. A notification carries the run's error as the history holds it (secrets already
removed), and every secret the notification itself reads (a webhook URL or header written as a
reference, the SMTP password) is removed from anything it logs.
"""
from __future__ import annotations

import json
import logging
import os
import re
import smtplib
import ssl
import subprocess
import time
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import parseaddr
from typing import Any, Callable, Mapping, Sequence
from urllib.parse import urlsplit

import httpx
import jsonschema

import result_url
from connector.connections import Reference
from connector.delivery import RetryPolicy, parse_retry_after
from connector.delivery import check_https, is_loopback_host
from connector.errors import ConfigError
from connector.masking import Redactor

log = logging.getLogger("connector.scheduler")

ON = ("failure", "always")


@dataclass(frozen=True)
class Field:
    name: str
    description: str

    @property
    def env(self) -> str:
        return "CONNECTOR_" + self.name.upper()


# What every notification says. The command gets CONNECTOR_<NAME> variables, the webhook these
# keys (and `text`, a one-line summary chat services show), the email one line each.
FIELDS: tuple[Field, ...] = (
    Field("schedule", "the schedule's name"),
    Field("scheduled_time", "the slot's scheduled time, ISO 8601 in the schedule's zone"),
    Field("status", "`success` or `error`"),
    Field("reason", "why it failed: `config_error`, `source_error`, `events_not_accepted`, ..."),
    Field("error", "the error message, secrets removed"),
    Field("attempt", "the attempt number of the slot (1, or more after a takeover)"),
    Field("started", "when the run started, ISO 8601"),
    Field("finished", "when it ended, ISO 8601"),
    Field("rows_read", "rows the query returned"),
    Field("events_sent", "events the API accepted"),
    Field("invalid_records", "rows that failed validation (not sent)"),
    Field("rejected_events", "events the API rejected"),
    Field("failed_events", "events not delivered"),
    Field("report_path", "the run's JSON report"),
    Field("schedule_disabled", "`true` when this run disabled the schedule (the third "
                               "configuration error in a row)"),
    Field("note", "what the scheduler did because of the run, e.g. why it disabled the schedule"),
    Field("host", "the machine the run ran on"),
)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True)
class RunEvent:
    """One finished run, as every notification tells it."""
    values: Mapping[str, Any]

    def __post_init__(self) -> None:
        unknown = set(self.values) - {f.name for f in FIELDS}
        assert not unknown, unknown

    @property
    def failed(self) -> bool:
        return self.values.get("status") != "success"

    def get(self, name: str) -> Any:
        return self.values.get(name)

    def summary(self) -> str:
        status = "succeeded" if not self.failed else f"failed ({self.get('reason')})"
        tail = f": {self.get('error')}" if self.failed and self.get("error") else ""
        sent = (f", {self.get('events_sent')} events sent"
                if self.get("events_sent") is not None else "")
        disabled = "; the schedule is now disabled" if self.get("schedule_disabled") else ""
        return (f"connector schedule {self.get('schedule')}: the run for "
                f"{self.get('scheduled_time')} {status}{sent}{tail}{disabled}")

    def subject(self) -> str:
        disabled = " (schedule disabled)" if self.get("schedule_disabled") else ""
        return (f"connector schedule {self.get('schedule')}: {self.get('status')} for "
                f"{self.get('scheduled_time')}{disabled}")

    def as_json(self) -> dict[str, Any]:
        return {"text": self.summary(), **{f.name: self.values.get(f.name) for f in FIELDS}}

    def as_env(self) -> dict[str, str]:
        return {f.env: _text(self.values.get(f.name)) for f in FIELDS}

    def as_lines(self) -> str:
        return "\n".join(f"{f.name}: {_text(self.values.get(f.name))}" for f in FIELDS)


# --------------------------------------------------------------------------- the targets' schema

_ON = {"enum": list(ON), "description": "`failure` (default): failed runs only; `always`: every "
                                         "run"}
_SECONDS = {"type": "number", "exclusiveMinimum": 0, "maximum": 3600}
# A value that may be written out or be a reference table ({"secret": KEY}, ...).
_TEXT_OR_TABLE = [{"type": "string", "minLength": 1},
                  {"type": "object", "minProperties": 1, "maxProperties": 1}]
_REFERENCE = {"description": "`${secret:KEY}`, `${NAME}` (an environment variable), or "
                             "`{\"secret\": KEY}`, `{\"env\": NAME}`, `{\"file\": PATH}`, "
                             "`{\"keyring\": ENTRY}`",
              "oneOf": _TEXT_OR_TABLE}

# Each target type's keys, declared once: validation and the docs' table read these.
TARGETS: dict[str, dict[str, Any]] = {
    "command": {
        "type": "object", "additionalProperties": False, "required": ["type", "command"],
        "properties": {
            "type": {"const": "command"},
            "command": {"description": "a shell command line (run by /bin/sh -c), or a list: "
                                       "the program and its arguments",
                        "oneOf": [{"type": "string", "minLength": 1},
                                  {"type": "array", "minItems": 1,
                                   "items": {"type": "string"}}]},
            "on": _ON,
            "timeout": {**_SECONDS, "description": "seconds before the command is killed "
                                                   "(default 60)"},
        },
    },
    "webhook": {
        "type": "object", "additionalProperties": False, "required": ["type", "url"],
        "properties": {
            "type": {"const": "webhook"},
            "url": {"description": "where to POST the JSON: https, or http to a loopback host; "
                                   "may be a secret reference (webhook URLs often hold a token)",
                    "oneOf": _TEXT_OR_TABLE},
            "headers": {"type": "object", "description": "extra request headers; a value may "
                                                         "be a secret reference, and must be "
                                                         "for a header whose name says auth, "
                                                         "token, key, secret, signature, "
                                                         "password or cookie",
                        "additionalProperties": _REFERENCE},
            "on": _ON,
            "timeout": {**_SECONDS, "description": "seconds per request (default 10)"},
            "retries": {"type": "integer", "minimum": 0, "maximum": 10,
                        "description": "resends after a connection error, a 5xx or a 429 "
                                       "(default 3)"},
            "retry_wait": {**_SECONDS, "description": "seconds before the first resend, "
                                                      "doubling (default 1; Retry-After wins)"},
        },
    },
    "email": {
        "type": "object", "additionalProperties": False, "required": ["type", "to", "from", "host"],
        "properties": {
            "type": {"const": "email"},
            "to": {"description": "the recipient, or a list of recipients",
                   "oneOf": [{"type": "string"},
                             {"type": "array", "minItems": 1, "items": {"type": "string"}}]},
            "from": {"type": "string", "description": "the sender address"},
            "host": {"type": "string", "minLength": 1, "description": "the SMTP server"},
            "port": {"type": "integer", "minimum": 1, "maximum": 65535,
                     "description": "default 587 (465 with `ssl`)"},
            "starttls": {"type": "boolean", "description": "upgrade the connection with "
                                                          "STARTTLS (default true; false only "
                                                          "for a loopback server)"},
            "ssl": {"type": "boolean", "description": "TLS from the start (SMTPS, port 465) "
                                                     "instead of STARTTLS (default false)"},
            "user": {"type": "string", "description": "log in as this user (needs `password`)"},
            "password": {**_REFERENCE, "description": "the SMTP password as a secret "
                                                      "reference, never the password itself: "
                                                      + _REFERENCE["description"]},
            "ca_file": {"type": "string", "description": "a CA bundle to trust for the server's "
                                                        "certificate (a private CA)"},
            "on": _ON,
            "timeout": {**_SECONDS, "description": "seconds for the SMTP conversation "
                                                   "(default 30)"},
        },
    },
}

_TYPES = ", ".join(TARGETS)
_ADDRESS = re.compile(r"[^@\s]+@[^@\s]+\Z")
_CREDENTIAL = re.compile(r"auth|token|key|secret|signature|password|cookie", re.IGNORECASE)


def _problem(index: int, error: jsonschema.ValidationError) -> str:
    where = "/".join(str(p) for p in error.absolute_path)
    prefix = f"--notify: target {index + 1}" + (f", {where}" if where else "")
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        return f"{prefix}: unknown key {', '.join(map(repr, extra))}"
    if error.validator == "required":
        return f"{prefix}: {error.message.split(' is ')[0]} is required"
    # Never repeat the value: it may be a secret written in the wrong place.
    expected = error.schema.get("type") or error.schema.get("enum") or error.validator
    return f"{prefix}: not valid ({error.validator}: {expected})"


def _is_literal_url(value: Any) -> bool:
    return isinstance(value, str) and "${" not in value


def check_targets(value: Any) -> list[dict[str, Any]]:
    """The notification targets as stored; ConfigError (one line, no value repeated) when a
    target is not valid. References are checked for form only: they are read when a run ends."""
    targets = [value] if isinstance(value, Mapping) else value
    if not isinstance(targets, list):
        raise ConfigError("--notify: a JSON object or a list of objects, each with a type "
                          f"({_TYPES})")
    out = []
    for index, target in enumerate(targets):
        kind = target.get("type") if isinstance(target, Mapping) else None
        if kind not in TARGETS:
            raise ConfigError(f"--notify: target {index + 1}: type must be one of {_TYPES}")
        errors = sorted(jsonschema.Draft202012Validator(TARGETS[kind]).iter_errors(target),
                        key=lambda e: list(e.absolute_path))
        if errors:
            raise ConfigError(_problem(index, errors[0]))
        where = f"--notify: target {index + 1}"
        if kind == "webhook":
            if _is_literal_url(target["url"]):
                check_https(f"{where}, url", target["url"])
            else:
                _reference(f"{where}, url", target["url"])
            for name, header in (target.get("headers") or {}).items():
                # A header that carries a credential is given by reference, never stored as
                # written; others (X-Source: connector) may be literal.
                if not isinstance(header, str) or "${" in header or _CREDENTIAL.search(name):
                    _reference(f"{where}, headers/{name}", header)
        if kind == "email":
            _check_email(where, target)
        out.append(dict(target))
    return out


def _reference(key: str, value: Any) -> Reference:
    try:
        ref = Reference.from_value(value)
    except ConfigError as exc:
        raise ConfigError(f"{key}: {exc}") from None
    if ref is None:
        raise ConfigError(f"{key}: give a secret reference (${{secret:KEY}}, ${{NAME}}, "
                          "{\"secret\": KEY}, ...), not the value itself")
    return ref


def _check_email(where: str, target: Mapping[str, Any]) -> None:
    recipients = target["to"] if isinstance(target["to"], list) else [target["to"]]
    for address in [*recipients, target["from"]]:
        if not _ADDRESS.match(parseaddr(address)[1] or ""):
            raise ConfigError(f"{where}: {'from' if address is target['from'] else 'to'} is not "
                              "an email address")
    if "password" in target:
        _reference(f"{where}, password", target["password"])
    if target.get("user") and "password" not in target:
        raise ConfigError(f"{where}: user needs a password (a secret reference)")
    if "password" in target and not target.get("user"):
        raise ConfigError(f"{where}: password needs a user")
    encrypted = target.get("ssl", False) or target.get("starttls", True)
    if not encrypted and not is_loopback_host(target["host"]):
        raise ConfigError(f"{where}: starttls may be turned off only for a loopback SMTP server "
                          "(the password and the message would cross the network in clear "
                          "text)")


# --------------------------------------------------------------------------- sending

class NotificationError(Exception):
    """A target could not be told; the message holds no secret."""


class Secrets:
    """Reads the references of one notification, remembering each value to redact it."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self.redactor = Redactor()
        self.expander = result_url.Expander(env=env, redactor=self.redactor)

    def read(self, key: str, value: Any) -> str:
        try:
            found = str(self.expander.value(key, value))
        except ConfigError as exc:
            raise NotificationError(str(exc)) from None
        if Reference.from_value(value) is not None or found != value:
            self.redactor.add(found)
        return found


def host_of(url: str) -> str:
    """What a log line may say about a URL: its scheme and host, never its path or query."""
    try:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    except ValueError:
        return "(not a URL)"


def referenced_names(value: Any) -> set[str]:
    """Environment variables a configuration refers to (`${NAME}`, `{"env": NAME}`)."""
    if isinstance(value, str):
        return set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", value))
    if isinstance(value, Mapping):
        if len(value) == 1 and next(iter(value)) == "env" and isinstance(value["env"], str):
            return {value["env"]}
        return set().union(*(referenced_names(v) for v in value.values())) if value else set()
    if isinstance(value, (list, tuple)):
        return set().union(*(referenced_names(v) for v in value)) if value else set()
    return set()


def command_environment(hidden: set[str]) -> dict[str, str]:
    """The scheduler's environment without the variables the schedule's configuration reads
    (its token) and without the secrets store's CONNECTOR_SECRET_* variables."""
    return {k: v for k, v in os.environ.items()
            if k not in hidden and not k.startswith("CONNECTOR_SECRET_")}


def send_command(target: Mapping[str, Any], event: RunEvent, hidden: set[str]) -> str:
    command = target["command"]
    env = {**command_environment(hidden), **event.as_env()}
    timeout = float(target.get("timeout", 60))
    try:
        done = subprocess.run(command, shell=isinstance(command, str), env=env,
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise NotificationError(f"the command ran longer than {timeout:g} s and was killed") from None
    except OSError as exc:
        raise NotificationError(f"the command could not start: {exc.strerror or exc}") from None
    if done.returncode != 0:
        raise NotificationError(f"the command exited with status {done.returncode}")
    return "command"


def send_webhook(target: Mapping[str, Any], event: RunEvent, secrets: Secrets,
                 sleep: Callable[[float], None] = time.sleep) -> str:
    url = secrets.read("url", target["url"])
    try:
        check_https("url", url)
    except ConfigError as exc:
        raise NotificationError(str(exc)) from None
    headers = {"Content-Type": "application/json", "User-Agent": "connector-scheduler"}
    for name, value in (target.get("headers") or {}).items():
        headers[name] = secrets.read(f"headers/{name}", value)
    policy = RetryPolicy(max_retry=int(target.get("retries", 3)),
                         initial_wait=float(target.get("retry_wait", 1.0)), max_wait=60.0)
    body = json.dumps(event.as_json()).encode()
    where = host_of(url)
    loopback = is_loopback_host(urlsplit(url).hostname)
    last = ""
    with httpx.Client(timeout=float(target.get("timeout", 10)), trust_env=not loopback) as client:
        for attempt in range(1, policy.max_retry + 2):
            retry_after = None
            try:
                response = client.post(url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__} from {where}"
            else:
                if 200 <= response.status_code < 300:
                    return where
                last = f"HTTP {response.status_code} from {where}"
                if response.status_code != 429 and response.status_code < 500:
                    raise NotificationError(last)
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if attempt <= policy.max_retry:
                sleep(policy.wait(attempt, retry_after))
    raise NotificationError(f"{last} after {policy.max_retry + 1} attempts")


def send_email(target: Mapping[str, Any], event: RunEvent, secrets: Secrets) -> str:
    recipients = target["to"] if isinstance(target["to"], list) else [target["to"]]
    message = EmailMessage()
    message["Subject"] = event.subject()
    message["From"] = target["from"]
    message["To"] = ", ".join(recipients)
    message.set_content(event.summary() + "\n\n" + event.as_lines() + "\n")
    use_ssl = bool(target.get("ssl", False))
    port = int(target.get("port", 465 if use_ssl else 587))
    timeout = float(target.get("timeout", 30))
    context = ssl.create_default_context(cafile=target.get("ca_file"))
    host = target["host"]
    password = secrets.read("password", target["password"]) if "password" in target else None
    try:
        smtp = (smtplib.SMTP_SSL(host, port, timeout=timeout, context=context) if use_ssl
                else smtplib.SMTP(host, port, timeout=timeout))
        with smtp:
            smtp.ehlo()
            if not use_ssl and target.get("starttls", True):
                smtp.starttls(context=context)
                smtp.ehlo()
            if target.get("user"):
                smtp.login(target["user"], password or "")
            smtp.send_message(message)
    except smtplib.SMTPException as exc:
        code = getattr(exc, "smtp_code", None)
        raise NotificationError(f"SMTP {host}:{port}: {type(exc).__name__}"
                                + (f" ({code})" if code else "")) from None
    except (OSError, ssl.SSLError) as exc:
        raise NotificationError(f"SMTP {host}:{port}: {type(exc).__name__}: "
                                f"{exc.strerror or exc}") from None
    return f"{len(recipients)} recipient{'s' if len(recipients) != 1 else ''} via {host}:{port}"


def describe_target(target: Mapping[str, Any]) -> str:
    """A target as `schedule show` prints it: what it is and where it goes, never a URL's path
    or query, a header or a password (they may hold secrets)."""
    on = target.get("on", "failure")
    kind = target.get("type")
    if kind == "command":
        command = target.get("command")
        program = command[0] if isinstance(command, list) and command else \
            str(command or "").split(" ", 1)[0]
        return f"command {program} ... (on {on})"
    if kind == "webhook":
        url = target.get("url")
        where = host_of(url) if isinstance(url, str) and "${" not in url else "a secret URL"
        return f"webhook to {where} (on {on})"
    if kind == "email":
        to = target.get("to")
        count = len(to) if isinstance(to, list) else 1
        return (f"email to {count} recipient{'s' if count != 1 else ''} via "
                f"{target.get('host')} (on {on})")
    return f"{kind} (on {on})"


def wanted(target: Mapping[str, Any], event: RunEvent) -> bool:
    return target.get("on", "failure") == "always" or event.failed


def notify(targets: Sequence[Mapping[str, Any]], event: RunEvent, hidden: set[str]) -> list[str]:
    """Tell every target that wants this run; one log line each. Returns the failures (for
    tests); a failed notification never fails the run."""
    failures = []
    for index, target in enumerate(targets, 1):
        if not wanted(target, event):
            continue
        secrets = Secrets()
        kind = target.get("type")
        try:
            if kind == "command":
                where = send_command(target, event, hidden)
            elif kind == "webhook":
                where = send_webhook(target, event, secrets)
            elif kind == "email":
                where = send_email(target, event, secrets)
            else:
                raise NotificationError(f"unknown type {kind!r}")
        except NotificationError as exc:
            message = secrets.redactor(str(exc))
            failures.append(message)
            log.warning("notify %s: target %d (%s) failed: %s", event.get("schedule"), index,
                        kind, message)
            continue
        log.info("notify %s: target %d (%s) told: %s", event.get("schedule"), index, kind,
                 secrets.redactor(where))
    return failures


# --------------------------------------------------------------------------- docs

def targets_markdown() -> str:
    """Each target type's keys, from TARGETS."""
    rows = ["| Type | Key | Required | Meaning |", "|---|---|---|---|"]
    for kind, schema in TARGETS.items():
        required = set(schema["required"])
        for key, prop in schema["properties"].items():
            if key == "type":
                continue
            rows.append(f"| `{kind}` | `{key}` | {'yes' if key in required else 'no'} | "
                        f"{prop.get('description', '')} |")
    return "\n".join(rows)


def fields_markdown() -> str:
    """What a notification says, from FIELDS."""
    rows = ["| Webhook key / email line | Command variable | Meaning |", "|---|---|---|"]
    rows += [f"| `{f.name}` | `{f.env}` | {f.description} |" for f in FIELDS]
    return "\n".join(rows)
